"""Per-volume alarms: an anomaly-band alarm and a static ceiling alarm, kept healed.

The anomaly alarm ``{prefix}{volume id}`` compares ``ChangedBlocks`` (Maximum) with
``ANOMALY_DETECTION_BAND(m1, width)``; CloudWatch trains the model on first evaluation and
needs about two weeks of data. The ceiling alarm ``{prefix}{volume id}-ceiling`` covers
those weeks: it fires when more than ``CEILING_PERCENT`` of the blocks ever written on the
volume changed between two backups.

When to put the alarms, without describing them on every event: the volume's state holds a
fingerprint of the alarm configuration and the ceiling base they were put with. They are
put on first sighting, when the fingerprint differs (settings or code changed), when the
base moved by more than 10 %, and, to notice an alarm that was deleted or edited, when the
last verification is older than ``VERIFY_INTERVAL``: then one ``DescribeAlarms`` call for
both names compares what exists with what should. We chose a periodic check keyed on state
over checking on errors because nothing errors when an alarm is deleted (PutMetricData still
succeeds), and over a CloudTrail ``DeleteAlarms`` rule because it needs no trail and no
extra wiring. With daily backups this is about one describe per volume per 12 hours at
most, far below the DescribeAlarms quota even when every volume backs up at once.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from backup_anomaly import metrics
from backup_anomaly.settings import Settings

# Bump when the shape of the alarms changes in code, so every volume's alarms are re-put.
ALARM_SCHEMA = 1
VERIFY_INTERVAL = timedelta(hours=12)
BASE_TOLERANCE = 0.10
# A backup that does not happen says nothing about change: keep the last state (an ALARM
# stays up until the next measurement clears it) instead of flapping to OK or
# INSUFFICIENT_DATA between daily data points.
TREAT_MISSING_DATA = "ignore"
MANAGED_BY = "backup-anomaly-detection"
# The fingerprint recorded once a volume's alarms were deleted because they are switched off.
DISABLED = "disabled"


def anomaly_alarm_name(settings: Settings, volume_id: str) -> str:
    """Name of a volume's anomaly-band alarm."""
    return f"{settings.alarm_prefix}{volume_id}"


def ceiling_alarm_name(settings: Settings, volume_id: str) -> str:
    """Name of a volume's static ceiling alarm."""
    return f"{settings.alarm_prefix}{volume_id}-ceiling"


def ceiling_threshold(settings: Settings, base_blocks: int | None) -> int | None:
    """Ceiling in blocks, or None when disabled or the volume size is unknown."""
    if settings.ceiling_percent <= 0 or not base_blocks:
        return None
    return max(1, math.ceil(base_blocks * settings.ceiling_percent / 100))


def fingerprint(settings: Settings) -> str:
    """Fingerprint of everything in the alarms except the ceiling base."""
    config = {
        "schema": ALARM_SCHEMA,
        "namespace": settings.metric_namespace,
        "prefix": settings.alarm_prefix,
        "width": settings.band_width,
        "ceiling": settings.ceiling_percent,
        "period": settings.alarm_period_seconds,
        "evaluation": settings.evaluation_periods,
        "actions": settings.alarm_actions_enabled,
        "missing": TREAT_MISSING_DATA,
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _tags(volume_id: str, kind: str) -> list[dict]:
    return [
        {"Key": "ManagedBy", "Value": MANAGED_BY},
        {"Key": "VolumeId", "Value": volume_id},
        {"Key": "AlarmKind", "Value": kind},
    ]


def _metric(settings: Settings, volume_id: str) -> dict:
    return {
        "Namespace": settings.metric_namespace,
        "MetricName": metrics.CHANGED_BLOCKS,
        "Dimensions": [{"Name": "VolumeId", "Value": volume_id}],
    }


def definitions(settings: Settings, volume_id: str, base_blocks: int | None) -> list[dict]:
    """PutMetricAlarm arguments of a volume's alarms (the ceiling only when it applies)."""
    width = f"{settings.band_width:g}"
    anomaly = {
        "AlarmName": anomaly_alarm_name(settings, volume_id),
        "AlarmDescription": (
            f"Blocks changed on EBS volume {volume_id} between two consecutive backups are "
            f"above the expected band ({width} standard deviations). A sudden rewrite of a "
            "volume is what ransomware encryption looks like: check the instance using it. "
            "Managed by the backup anomaly detector; edits are overwritten."
        ),
        "Metrics": [
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": _metric(settings, volume_id),
                    "Period": settings.alarm_period_seconds,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            },
            {
                "Id": "ad1",
                "Expression": f"ANOMALY_DETECTION_BAND(m1, {width})",
                "Label": "ChangedBlocks (expected)",
                "ReturnData": True,
            },
        ],
        "ThresholdMetricId": "ad1",
        "ComparisonOperator": "GreaterThanUpperThreshold",
        "EvaluationPeriods": settings.evaluation_periods,
        "DatapointsToAlarm": settings.evaluation_periods,
        "TreatMissingData": TREAT_MISSING_DATA,
        "ActionsEnabled": settings.alarm_actions_enabled,
        "Tags": _tags(volume_id, "anomaly"),
    }
    result = [anomaly]
    threshold = ceiling_threshold(settings, base_blocks)
    if threshold is not None:
        result.append(
            {
                "AlarmName": ceiling_alarm_name(settings, volume_id),
                "AlarmDescription": (
                    f"More than {settings.ceiling_percent:g} % of the blocks written on EBS "
                    f"volume {volume_id} ({threshold} of {base_blocks} blocks of 512 KiB) "
                    "changed between two consecutive backups. This static ceiling covers the "
                    "weeks the anomaly model needs to learn. Managed by the backup anomaly "
                    "detector; edits are overwritten."
                ),
                **_metric(settings, volume_id),
                "Statistic": "Maximum",
                "Period": settings.alarm_period_seconds,
                "EvaluationPeriods": settings.evaluation_periods,
                "DatapointsToAlarm": settings.evaluation_periods,
                "Threshold": float(threshold),
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": TREAT_MISSING_DATA,
                "ActionsEnabled": settings.alarm_actions_enabled,
                "Tags": _tags(volume_id, "ceiling"),
            }
        )
    return result


def _essentials(alarm: dict) -> dict:
    """The fields that decide what an alarm does, from PutMetricAlarm args or DescribeAlarms."""
    keys = (
        "AlarmName",
        "Namespace",
        "MetricName",
        "Statistic",
        "Period",
        "EvaluationPeriods",
        "ComparisonOperator",
        "ThresholdMetricId",
        "TreatMissingData",
        "ActionsEnabled",
    )
    result = {key: alarm.get(key) for key in keys}
    result["Threshold"] = float(alarm["Threshold"]) if alarm.get("Threshold") is not None else None
    result["Dimensions"] = sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions") or [])
    result["Metrics"] = [
        (m.get("Id"), m.get("Expression"), json.dumps(m.get("MetricStat"), sort_keys=True))
        for m in alarm.get("Metrics") or []
    ]
    return result


@dataclass(frozen=True)
class AlarmOutcome:
    """What :meth:`AlarmManager.ensure` did: ``unchanged``, ``created``, ``updated``,
    ``rebased``, ``verified`` or ``healed``."""

    action: str


class AlarmManager:
    """Creates, updates and heals a volume's alarms.

    Args:
        settings: the environment contract.
        cloudwatch: boto3 CloudWatch client.
        store: the state store (records the fingerprint and verification time).
    """

    def __init__(self, settings: Settings, cloudwatch, store):
        self.settings = settings
        self.cloudwatch = cloudwatch
        self.store = store

    def _reason(self, state, base_blocks: int | None, now: datetime) -> str | None:
        if state is None or state.alarm_fingerprint is None:
            return "created"
        if state.alarm_fingerprint != fingerprint(self.settings):
            return "updated"
        old = ceiling_threshold(self.settings, state.alarm_base_blocks)
        new = ceiling_threshold(self.settings, base_blocks)
        if (old is None) != (new is None):
            return "rebased"
        if old and new and abs(new - old) > BASE_TOLERANCE * old:
            return "rebased"
        if state.alarms_verified_at is None or now - state.alarms_verified_at > VERIFY_INTERVAL:
            return "verify"
        return None

    def _matches(self, wanted: list[dict]) -> bool:
        names = [alarm["AlarmName"] for alarm in wanted]
        response = self.cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])
        found = {alarm["AlarmName"]: alarm for alarm in response.get("MetricAlarms", [])}
        return all(
            alarm["AlarmName"] in found
            and _essentials(found[alarm["AlarmName"]]) == _essentials(alarm)
            for alarm in wanted
        )

    def _delete_ceiling(self, volume_id: str) -> None:
        try:
            self.cloudwatch.delete_alarms(AlarmNames=[ceiling_alarm_name(self.settings, volume_id)])
        except ClientError as exc:
            # Nothing to delete is the state we want, not an error to retry.
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
                raise

    def _disable(self, state, volume_arn: str, volume_id: str, now: datetime) -> AlarmOutcome:
        """Alarms switched off: delete the volume's alarms once, if it ever had any."""
        if state is None or state.alarm_fingerprint in (None, DISABLED):
            return AlarmOutcome("disabled")
        try:
            self.cloudwatch.delete_alarms(
                AlarmNames=[
                    anomaly_alarm_name(self.settings, volume_id),
                    ceiling_alarm_name(self.settings, volume_id),
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
                raise
        self.store.record_alarms(
            volume_arn, fingerprint=DISABLED, base_blocks=None, verified_at=now
        )
        return AlarmOutcome("deleted")

    def ensure(
        self,
        state,
        volume_arn: str,
        volume_id: str,
        base_blocks: int | None,
        now: datetime | None = None,
    ) -> AlarmOutcome:
        """Puts the volume's alarms when they may be missing or out of date.

        Args:
            state: the volume's state as read (None on first sighting).
            volume_arn: the volume.
            volume_id: ``vol-...``.
            base_blocks: blocks written on the volume at the newest snapshot, when known.
            now: current time (tests).

        Returns:
            What was done.
        """
        now = now or datetime.now(UTC)
        if not self.settings.cloudwatch_alarms:
            return self._disable(state, volume_arn, volume_id, now)
        reason = self._reason(state, base_blocks, now)
        if reason is None:
            return AlarmOutcome("unchanged")
        # The baseline's base is what the ceiling is put with; a stale base never reaches here
        # because callers pass the base of a snapshot at least as new as the baseline.
        wanted = definitions(self.settings, volume_id, base_blocks)
        if reason == "verify" and self._matches(wanted):
            action = "verified"
        else:
            if reason == "verify":
                reason = "healed"
                metrics.put_counter(
                    self.cloudwatch, self.settings.metric_namespace, metrics.ALARMS_HEALED
                )
            for alarm in wanted:
                self.cloudwatch.put_metric_alarm(**alarm)
            if ceiling_threshold(self.settings, base_blocks) is None and reason != "created":
                # Ceiling disabled (CEILING_PERCENT=0) or size unknown: remove an old one.
                self._delete_ceiling(volume_id)
            action = reason
        self.store.record_alarms(
            volume_arn,
            fingerprint=fingerprint(self.settings),
            base_blocks=base_blocks,
            verified_at=now,
        )
        return AlarmOutcome(action)
