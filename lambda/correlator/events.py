"""Read-only views over the events the correlator receives, and the act-or-skip decision.

Every event is an EventBridge envelope from the central bus (one per SQS message body), or
the scheduled event that runs the sweep. What it acts on:

* from the member detectors (source ``MEMBER_EVENT_SOURCE``): ``Backup Change Measured``,
  ``Backup Anomaly Detected``, ``Backup Baseline Reset``, ``Backup Detector Heartbeat``;
* from AWS Backup in the members, forwarded by a rule: ``Scan Job State Change`` once the
  scan job has finished;
* ``Scheduled Event`` from ``aws.events``: the sweep.

Trust rule: the account of anything is the envelope's ``account``, which EventBridge sets
to the sender and a sender cannot choose. A detail (or an ARN in it) that names another
account is recorded as :class:`~correlator.records.Forgery` on the record, never believed.
The region is the detail's (``detail.region``): the detector puts its events on the
central bus, whose region the envelope carries, so only the detail says where the volume
is; it is the sender's claim about itself.

Everything else is a :class:`Skip` with a reason code; an event that cannot be read is a
:class:`Skip` with code ``malformed``, never an exception, because retrying it would never
succeed.

The heartbeat each member detector sends once per backup interval from each
account-region (source ``backup-anomaly-detection``, detail-type ``Backup Detector
Heartbeat``, put on the central bus like its measurements; the envelope's ``time`` is when
it was sent)::

    {
      "account": "111111111111",        # its own account (must be the envelope's)
      "region": "eu-west-1",            # its region
      "intervalSeconds": 86400,         # the backup interval it expects (60 .. 30 days)
      "volumesKnown": 42,               # volumes with a baseline in its state (optional)
      "lastMeasurementTime": "2025-06-03T05:41:05+00:00",  # newest measured backup, or null
      "detectorVersion": "0.2.0"        # optional
    }
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from correlator.records import (
    SCAN_TERMINAL_STATES,
    Content,
    Forgery,
    Heartbeat,
    Measurement,
    Reset,
    Scan,
    Severity,
    Verdict,
    parse_iso,
)

MEASURED_DETAIL_TYPE = "Backup Change Measured"
ANOMALY_DETAIL_TYPE = "Backup Anomaly Detected"
RESET_DETAIL_TYPE = "Backup Baseline Reset"
HEARTBEAT_DETAIL_TYPE = "Backup Detector Heartbeat"
SCAN_DETAIL_TYPE = "Scan Job State Change"
BACKUP_SOURCE = "aws.backup"
SCHEDULE_SOURCE = "aws.events"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"
# Every detail type of the member detectors the correlator acts on (the central bus rule
# that feeds its queue matches these and the scan events).
MEMBER_DETAIL_TYPES = (
    MEASURED_DETAIL_TYPE,
    ANOMALY_DETAIL_TYPE,
    RESET_DETAIL_TYPE,
    HEARTBEAT_DETAIL_TYPE,
)

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")  # eusc-de-east-1 too
# A heartbeat names the backup interval it expects: at least a minute, at most 30 days.
_MIN_INTERVAL, _MAX_INTERVAL = 60, 30 * 86400


class MalformedEvent(ValueError):
    """A required field is missing or has the wrong type; the message names the field."""


@dataclass(frozen=True)
class Scheduled:
    """The scheduled event: run the sweep (silence, resolutions, deferred updates)."""

    time: datetime | None


@dataclass(frozen=True)
class Skip:
    """The event is not work.

    Attributes:
        code: stable reason code (``other_source``, ``other_detail_type``,
            ``scan_not_finished``, ``malformed``).
        message: what a human needs to know.
        account: the envelope's account when readable.
        region: the envelope's region when readable.
        event_id: the envelope's id when readable.
        detail_type: the envelope's detail-type when readable.
    """

    code: str
    message: str
    account: str | None = None
    region: str | None = None
    event_id: str | None = None
    detail_type: str | None = None


Record = Measurement | Reset | Heartbeat | Scan
Classified = Record | Scheduled | Skip


def _str(data: Mapping[str, Any], key: str, where: str = "detail") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise MalformedEvent(f"{where}.{key} must be a non-empty string, got {got}")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str = "detail") -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{where}.{key} must be a string, got a {type(value).__name__}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str, *, whole: bool) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent(f"{where}.{key} must be a number, got {value!r}")
    if whole and not float(value).is_integer():
        raise MalformedEvent(f"{where}.{key} must be a whole number, got {value!r}")
    if value < 0:
        raise MalformedEvent(f"{where}.{key} must not be negative, got {value!r}")
    return value


def _int(data: Mapping[str, Any], key: str, where: str = "detail") -> int | None:
    value = _number(data, key, where, whole=True)
    return None if value is None else int(value)


def _float(data: Mapping[str, Any], key: str, where: str = "detail") -> float | None:
    value = _number(data, key, where, whole=False)
    return None if value is None else float(value)


def _time(data: Mapping[str, Any], key: str, where: str = "detail") -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedEvent(f"{where}.{key} must be an ISO 8601 timestamp, got {value!r}")
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise MalformedEvent(f"{where}.{key} must be an ISO 8601 timestamp, got {value!r}") from exc


def _opt_time(data: Mapping[str, Any], key: str, where: str = "detail") -> datetime | None:
    return None if data.get(key) in (None, "") else _time(data, key, where)


def _dict(data: Mapping[str, Any], key: str, where: str = "detail") -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{where}.{key} must be an object, got a {type(value).__name__}")
    return value


def arn_account(value: str, where: str) -> str:
    """The account field of an ARN (empty for snapshots and images: they carry none).

    Raises:
        MalformedEvent: the value is not an ARN.
    """
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        raise MalformedEvent(f"{where} is not an ARN: {value!r}")
    return parts[4]


def _region(data: Mapping[str, Any]) -> str:
    region = _str(data, "region")
    if not _REGION.fullmatch(region):
        raise MalformedEvent(f"detail.region is not a region: {region!r}")
    return region


def _forgery(sender: str, claims: list[tuple[str, str | None]]) -> Forgery | None:
    """The first claim naming another account than the sender's, if any."""
    for where, claimed in claims:
        if claimed and claimed != sender:
            return Forgery(claimed, where)
    return None


class Envelope:
    """View over an EventBridge event envelope."""

    def __init__(self, raw: Mapping[str, Any]):
        self._raw = raw

    @property
    def id(self) -> str | None:
        value = self._raw.get("id")
        return value if isinstance(value, str) else None

    @property
    def source(self) -> str:
        return _str(self._raw, "source", "event")

    @property
    def detail_type(self) -> str:
        return _str(self._raw, "detail-type", "event")

    @property
    def account(self) -> str:
        account = _str(self._raw, "account", "event")
        if not _ACCOUNT.fullmatch(account):
            raise MalformedEvent(f"event.account is not an account id: {account!r}")
        return account

    @property
    def region(self) -> str:
        return _str(self._raw, "region", "event")

    @property
    def time(self) -> datetime:
        return _time(self._raw, "time", "event")

    @property
    def detail(self) -> Mapping[str, Any]:
        value = self._raw.get("detail")
        if not isinstance(value, Mapping):
            raise MalformedEvent("event.detail must be an object")
        return value


def _content(detail: Mapping[str, Any]) -> Content | None:
    data = _dict(detail, "content")
    if data is None:
        return None
    where = "detail.content"
    values = [
        _int(data, key, where)
        for key in ("sampledBlocks", "pages", "incompressibleBefore", "incompressibleAfter")
    ]
    if any(v is None for v in values):
        raise MalformedEvent(f"{where} needs sampledBlocks, pages, incompressibleBefore/After")
    sampled, pages, before, after = (int(v or 0) for v in values)
    return Content(sampled, pages, before, after)


def _verdict(detail: Mapping[str, Any]) -> Verdict | None:
    data = _dict(detail, "verdict")
    if data is None:
        return None
    where = "detail.verdict"
    severity = data.get("severity")
    try:
        parsed = Severity(str(severity))
    except ValueError:
        raise MalformedEvent(
            f"{where}.severity must be none, low, medium, high or critical, got {severity!r}"
        ) from None
    reasons = data.get("reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise MalformedEvent(f"{where}.reasons must be a list of strings")
    # The anomaly event carries ``expected`` beside the verdict; the measurement inside it.
    expected = _dict(data, "expected", where) or _dict(detail, "expected") or {}
    if expected.get("unit", "share") != "share":
        # A range in blocks (written data unknown) is no share of written data: the
        # message would print it as a percentage, so it is left out.
        expected = {}
    score = data.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise MalformedEvent(f"{where}.score must be a number, got {score!r}")
    return Verdict(
        severity=parsed,
        score=float(score) if score is not None else None,
        reasons=tuple(reasons),
        expected_low=_float(expected, "low", f"{where}.expected"),
        expected_high=_float(expected, "high", f"{where}.expected"),
        expected_median=_float(expected, "median", f"{where}.expected"),
        share=_float(data, "share", where),
        # The detector writes ``multipleOfUsual``; ``multiple`` is read from older events.
        multiple=_float(
            data, "multipleOfUsual" if "multipleOfUsual" in data else "multiple", where
        ),
    )


def _measurement(envelope: Envelope, anomaly: bool) -> Measurement:
    detail = envelope.detail
    sender = envelope.account
    volume_arn = _str(detail, "volumeArn")
    changed = _int(detail, "changedBlocks")
    if changed is None:
        raise MalformedEvent("detail.changedBlocks must be a whole number, got missing")
    verdict = _verdict(detail)
    if anomaly and verdict is None:
        raise MalformedEvent("detail.verdict is required in a Backup Anomaly Detected event")
    late = detail.get("lateForAlarms")
    return Measurement(
        id=_str(detail, "measurementId"),
        account=sender,
        region=_region(detail),
        volume_id=_str(detail, "volumeId"),
        volume_arn=volume_arn,
        previous_snapshot_id=_str(detail, "previousSnapshotId"),
        snapshot_id=_str(detail, "snapshotId"),
        changed_blocks=changed,
        completion_time=_time(detail, "completionTime"),
        changed_bytes=_int(detail, "changedBytes"),
        percent_of_volume=_float(detail, "percentOfVolume"),
        volume_size_gib=_int(detail, "volumeSizeGiB"),
        written_blocks=_int(detail, "writtenBlocks"),
        backup_job_id=_opt_str(detail, "backupJobId"),
        resource_type=_opt_str(detail, "resourceType"),
        measured_at=_opt_time(detail, "measuredAt"),
        content=_content(detail),
        verdict=verdict,
        late_for_alarms=late if isinstance(late, bool) else None,
        instance_id=_opt_str(detail, "instanceId"),
        instance_name=_opt_str(detail, "instanceName"),
        last_clean_snapshot_id=_opt_str(detail, "lastCleanSnapshotId"),
        anomaly_event=anomaly,
        forged=_forgery(
            sender,
            [
                ("detail.account", _opt_str(detail, "account")),
                ("detail.volumeArn", arn_account(volume_arn, "detail.volumeArn")),
            ],
        ),
    )


def _reset(envelope: Envelope) -> Reset:
    detail = envelope.detail
    sender = envelope.account
    volume_arn = _str(detail, "volumeArn")
    return Reset(
        id=_str(detail, "resetId"),
        account=sender,
        region=_region(detail),
        volume_id=_str(detail, "volumeId"),
        volume_arn=volume_arn,
        previous_snapshot_id=_str(detail, "previousSnapshotId"),
        snapshot_id=_str(detail, "snapshotId"),
        reason=_str(detail, "reason"),
        completion_time=_time(detail, "completionTime"),
        backup_job_id=_opt_str(detail, "backupJobId"),
        resource_type=_opt_str(detail, "resourceType"),
        reset_at=_opt_time(detail, "resetAt"),
        forged=_forgery(
            sender,
            [
                ("detail.account", _opt_str(detail, "account")),
                ("detail.volumeArn", arn_account(volume_arn, "detail.volumeArn")),
            ],
        ),
    )


def _heartbeat(envelope: Envelope) -> Heartbeat:
    detail = envelope.detail
    interval = _int(detail, "intervalSeconds")
    if interval is None or not _MIN_INTERVAL <= interval <= _MAX_INTERVAL:
        raise MalformedEvent(
            f"detail.intervalSeconds must be {_MIN_INTERVAL}..{_MAX_INTERVAL}, got {interval!r}"
        )
    return Heartbeat(
        account=envelope.account,
        region=_region(detail),
        sent_at=envelope.time,
        interval_seconds=interval,
        volumes_known=_int(detail, "volumesKnown"),
        last_measurement_time=_opt_time(detail, "lastMeasurementTime"),
        detector_version=_opt_str(detail, "detectorVersion"),
        forged=_forgery(envelope.account, [("detail.account", _opt_str(detail, "account"))]),
    )


def _scan(envelope: Envelope) -> Scan | Skip:
    detail = envelope.detail
    state = _str(detail, "state")
    if state not in SCAN_TERMINAL_STATES:
        return Skip("scan_not_finished", f"scan job state {state}")
    result_info = _dict(detail, "scanResult") or {}
    result = _opt_str(result_info, "scanResultStatus", "detail.scanResult")
    resource_arn = _str(detail, "resourceArn")
    recovery_point = _str(detail, "recoveryPointArn")
    vault_arn = _opt_str(detail, "backupVaultArn")
    claims = [
        ("detail.accountId", _opt_str(detail, "accountId")),
        ("detail.resourceArn", arn_account(resource_arn, "detail.resourceArn")),
        ("detail.recoveryPointArn", arn_account(recovery_point, "detail.recoveryPointArn")),
    ]
    if vault_arn:
        claims.append(("detail.backupVaultArn", arn_account(vault_arn, "detail.backupVaultArn")))
    return Scan(
        job_id=_str(detail, "scanJobId"),
        account=envelope.account,
        # AWS Backup emits the event in the region it scanned; forwarding keeps the field.
        region=envelope.region,
        state=state,
        result=result,
        recovery_point_arn=recovery_point,
        resource_arn=resource_arn,
        resource_type=_opt_str(detail, "resourceType"),
        base_recovery_point_arn=_opt_str(detail, "scanBaseRecoveryPointArn"),
        vault_name=_opt_str(detail, "backupVaultName"),
        created_at=_opt_time(detail, "creationDate"),
        completed_at=_opt_time(detail, "completionDate"),
        status_message=_opt_str(detail, "statusMessage"),
        forged=_forgery(envelope.account, claims),
    )


def classify(raw: object, member_source: str) -> Classified:
    """Decides what an event is.

    Args:
        raw: the decoded event (anything; it is validated here).
        member_source: the ``source`` of the member detectors' events.

    Returns:
        A record, :class:`Scheduled`, or :class:`Skip` with a reason.
    """
    if not isinstance(raw, Mapping):
        return Skip("malformed", f"event must be a JSON object, got {type(raw).__name__}")
    ids = {
        "account": raw.get("account") if isinstance(raw.get("account"), str) else None,
        "region": raw.get("region") if isinstance(raw.get("region"), str) else None,
        "event_id": raw.get("id") if isinstance(raw.get("id"), str) else None,
        "detail_type": raw.get("detail-type") if isinstance(raw.get("detail-type"), str) else None,
    }
    try:
        result = _classify(Envelope(raw), member_source)
    except MalformedEvent as exc:
        return Skip("malformed", str(exc), **ids)
    if isinstance(result, Skip):
        return Skip(result.code, result.message, **ids)
    return result


def _classify(envelope: Envelope, member_source: str) -> Classified:
    source = envelope.source
    detail_type = envelope.detail_type
    if source == SCHEDULE_SOURCE and detail_type == SCHEDULED_DETAIL_TYPE:
        raw_time = envelope._raw.get("time")
        return Scheduled(envelope.time if isinstance(raw_time, str) else None)
    if source == member_source:
        if detail_type == MEASURED_DETAIL_TYPE:
            return _measurement(envelope, anomaly=False)
        if detail_type == ANOMALY_DETAIL_TYPE:
            return _measurement(envelope, anomaly=True)
        if detail_type == RESET_DETAIL_TYPE:
            return _reset(envelope)
        if detail_type == HEARTBEAT_DETAIL_TYPE:
            return _heartbeat(envelope)
        return Skip("other_detail_type", f"detail-type {detail_type!r} of {source}")
    if source == BACKUP_SOURCE:
        if detail_type == SCAN_DETAIL_TYPE:
            return _scan(envelope)
        return Skip("other_detail_type", f"detail-type {detail_type!r} of {source}")
    return Skip("other_source", f"source {source!r}")
