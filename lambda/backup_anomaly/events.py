"""Read-only typed views over the events the detector receives, and the act-or-skip decision.

Two kinds of events are acted on: AWS Backup ``Backup Job State Change`` events that report
a COMPLETED job of a measured resource type, and the detector's own ``Backup Count
Continuation`` messages (a count that did not fit in one invocation). Everything else is a
:class:`Skip` with a reason code; an event that cannot be read is a :class:`Skip` with code
``malformed``, never an exception, because retrying it would never succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backup_anomaly.settings import SUPPORTED_RESOURCE_TYPES, Settings

if TYPE_CHECKING:
    from backup_anomaly.snapshots import VolumeSnapshot

BACKUP_SOURCE = "aws.backup"
BACKUP_JOB_DETAIL_TYPE = "Backup Job State Change"
COPY_JOB_DETAIL_TYPE = "Copy Job State Change"
CONTINUATION_DETAIL_TYPE = "Backup Count Continuation"
MEASURED_DETAIL_TYPE = "Backup Change Measured"
BASELINE_RESET_DETAIL_TYPE = "Backup Baseline Reset"
ANOMALY_DETECTED_DETAIL_TYPE = "Backup Anomaly Detected"
HEARTBEAT_DETAIL_TYPE = "Backup Detector Heartbeat"
SCAN_JOB_DETAIL_TYPE = "Scan Job State Change"
SCHEDULE_SOURCE = "aws.events"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"
COMPLETED = "COMPLETED"
# A scan job's final states (AWS Backup's malware scan jobs).
SCAN_FINAL_STATES = ("COMPLETED", "COMPLETED_WITH_ISSUES", "FAILED", "CANCELED")


class MalformedEvent(ValueError):
    """A required field is missing or has the wrong type; the message names the field."""


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN (``arn:partition:service:region:account:type/id``)."""

    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource_id: str

    @classmethod
    def parse(cls, value: object, *, where: str = "ARN") -> Arn:
        """Parses an ARN whose resource is ``type/id`` or ``type:id``.

        Raises:
            MalformedEvent: the value is not such an ARN.
        """
        if not isinstance(value, str):
            raise MalformedEvent(f"{where} must be a string, got {type(value).__name__}")
        parts = value.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
            raise MalformedEvent(f"{where} is not an ARN: {value!r}")
        resource = parts[5]
        sep = "/" if "/" in resource else ":"
        resource_type, _, resource_id = resource.partition(sep)
        if not resource_type or not resource_id:
            raise MalformedEvent(f"{where} has no resource type/id: {value!r}")
        return cls(parts[1], parts[2], parts[3], parts[4], resource_type, resource_id)

    def __str__(self) -> str:
        return (
            f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:"
            f"{self.resource_type}/{self.resource_id}"
        )


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise MalformedEvent(f"{where}.{key} must be a non-empty {kind.__name__}, got {got}")
    return value


def parse_time(value: object, where: str) -> datetime:
    """Parses an ISO 8601 timestamp into an aware UTC datetime.

    Raises:
        MalformedEvent: the value is not such a timestamp.
    """
    if not isinstance(value, str):
        raise MalformedEvent(f"{where} must be an ISO 8601 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvent(f"{where} must be an ISO 8601 timestamp, got {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class EventBridgeEvent:
    """View over an EventBridge event envelope."""

    def __init__(self, raw: Mapping[str, Any]):
        self._raw = raw

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._raw

    @property
    def id(self) -> str | None:
        value = self._raw.get("id")
        return value if isinstance(value, str) else None

    @property
    def source(self) -> str:
        return _field(self._raw, "source", str, "event")

    @property
    def detail_type(self) -> str:
        return _field(self._raw, "detail-type", str, "event")

    @property
    def account(self) -> str:
        return _field(self._raw, "account", str, "event")

    @property
    def region(self) -> str:
        return _field(self._raw, "region", str, "event")

    @property
    def resources(self) -> list[str]:
        value = self._raw.get("resources")
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise MalformedEvent("event.resources must be a list of strings")
        return value

    @property
    def detail(self) -> Mapping[str, Any]:
        return _field(self._raw, "detail", dict, "event")


class BackupJobEvent(EventBridgeEvent):
    """View over a ``Backup Job State Change`` event."""

    @property
    def backup_job_id(self) -> str:
        return _field(self.detail, "backupJobId", str, "detail")

    @property
    def state(self) -> str:
        return _field(self.detail, "state", str, "detail")

    @property
    def resource_type(self) -> str:
        return _field(self.detail, "resourceType", str, "detail")

    @property
    def resource_arn(self) -> Arn:
        return Arn.parse(self.detail.get("resourceArn"), where="detail.resourceArn")

    @property
    def completion_time(self) -> datetime:
        """``detail.completionDate``; the event's ``time`` when AWS Backup left it out."""
        if self.detail.get("completionDate") is None:
            return parse_time(self._raw.get("time"), "event.time (no detail.completionDate)")
        return parse_time(self.detail.get("completionDate"), "detail.completionDate")

    @property
    def status_message(self) -> str | None:
        value = self.detail.get("statusMessage")
        return value if isinstance(value, str) else None

    @property
    def vault_name(self) -> str | None:
        """``detail.backupVaultName``: where the recovery point is (a scan names it)."""
        value = self.detail.get("backupVaultName")
        return value if isinstance(value, str) and value else None

    @property
    def iam_role_arn(self) -> str | None:
        """``detail.iamRoleArn``: the role that created the recovery point (a scan needs it)."""
        value = self.detail.get("iamRoleArn")
        return value if isinstance(value, str) and value else None

    @property
    def recovery_point_arn(self) -> Arn | None:
        """The recovery point in ``resources[]``, or None when the list is empty."""
        resources = self.resources
        if not resources:
            return None
        return Arn.parse(resources[0], where="event.resources[0]")


def continuation_event(
    target: VolumeSnapshot, previous_snapshot_id: str, generation: int, source: str, now: datetime
) -> dict[str, Any]:
    """The detector's own ``Backup Count Continuation`` message (read back by
    :class:`ContinuationEvent`): an EventBridge-shaped envelope on the work queue, so one
    classification path serves it and the backup events."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": CONTINUATION_DETAIL_TYPE,
        "source": source,
        "account": target.account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": target.region,
        "resources": [target.volume_arn],
        "detail": {
            "volumeArn": target.volume_arn,
            "volumeId": target.volume_id,
            "snapshotId": target.snapshot_id,
            "previousSnapshotId": previous_snapshot_id,
            "completionTime": target.completion_time.isoformat(),
            "generation": generation,
            "backupJobId": target.backup_job_id,
        },
    }


class ContinuationEvent(EventBridgeEvent):
    """View over the detector's own ``Backup Count Continuation`` message."""

    @property
    def volume_arn(self) -> str:
        value = _field(self.detail, "volumeArn", str, "detail")
        Arn.parse(value, where="detail.volumeArn")
        return value

    @property
    def snapshot_id(self) -> str:
        return _field(self.detail, "snapshotId", str, "detail")

    @property
    def completion_time(self) -> datetime:
        return parse_time(self.detail.get("completionTime"), "detail.completionTime")

    @property
    def generation(self) -> int:
        value = self.detail.get("generation")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise MalformedEvent(f"detail.generation must be an integer >= 1, got {value!r}")
        return value


@dataclass(frozen=True)
class BackupJob:
    """A validated completed backup job to measure."""

    event: BackupJobEvent
    backup_job_id: str
    resource_type: str
    resource_arn: Arn
    recovery_point_arn: Arn | None
    completion_time: datetime
    account: str
    region: str
    vault_name: str | None = None
    iam_role_arn: str | None = None


@dataclass(frozen=True)
class ScanResult:
    """A finished malware scan of a recovery point of one of this account's volumes.

    Attributes:
        scan_job_id: the job.
        state: its final state (``SCAN_FINAL_STATES``).
        result: ``THREATS_FOUND``, ``NO_THREATS_FOUND`` or ``UNKNOWN``; None when none.
        volume_arn: the scanned recovery point's source volume (``detail.resourceArn``).
        recovery_point_arn: the recovery point scanned.
    """

    event: EventBridgeEvent
    scan_job_id: str
    state: str
    result: str | None
    volume_arn: str
    recovery_point_arn: str
    account: str
    region: str


@dataclass(frozen=True)
class Heartbeat:
    """The schedule's tick: say centrally that this detector is alive."""

    event: EventBridgeEvent
    account: str
    region: str


@dataclass(frozen=True)
class Continuation:
    """A validated continuation of a count saved in the volume's state."""

    event: ContinuationEvent
    volume_arn: str
    snapshot_id: str
    completion_time: datetime
    generation: int
    account: str
    region: str


@dataclass(frozen=True)
class Act:
    """The event is work: a backup job or a continuation."""

    work: BackupJob | Continuation | ScanResult | Heartbeat


@dataclass(frozen=True)
class Skip:
    """The event is not work.

    Attributes:
        code: stable reason code (``other_source``, ``other_detail_type``, ``not_completed``,
            ``unsupported_resource_type``, ``resource_type_disabled``, ``copy_job``,
            ``malformed``).
        message: what a human needs to know.
        account: the event's account when readable.
        region: the event's region when readable.
        event_id: the event's id when readable.
    """

    code: str
    message: str
    account: str | None = None
    region: str | None = None
    event_id: str | None = None


def _optional_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) else None


def classify(raw: object, settings: Settings) -> Act | Skip:
    """Decides whether an event is work for the detector.

    Args:
        raw: the decoded event (anything; it is validated here).
        settings: the environment contract (resource types, own event source).

    Returns:
        :class:`Act` with the validated work, or :class:`Skip` with a reason.
    """
    if not isinstance(raw, Mapping):
        return Skip("malformed", f"event must be a JSON object, got {type(raw).__name__}")
    ids = {
        "account": _optional_str(raw, "account"),
        "region": _optional_str(raw, "region"),
        "event_id": _optional_str(raw, "id"),
    }
    try:
        return _classify(raw, settings, ids)
    except MalformedEvent as exc:
        return Skip("malformed", str(exc), **ids)


def _classify(raw: Mapping[str, Any], settings: Settings, ids: dict) -> Act | Skip:
    envelope = EventBridgeEvent(raw)
    source = envelope.source
    detail_type = envelope.detail_type
    if source == settings.event_source:
        if detail_type != CONTINUATION_DETAIL_TYPE:
            return Skip("other_detail_type", f"detail-type {detail_type!r} of {source}", **ids)
        event = ContinuationEvent(raw)
        return Act(
            Continuation(
                event=event,
                volume_arn=event.volume_arn,
                snapshot_id=event.snapshot_id,
                completion_time=event.completion_time,
                generation=event.generation,
                account=event.account,
                region=event.region,
            )
        )
    if source == SCHEDULE_SOURCE and detail_type == SCHEDULED_DETAIL_TYPE:
        return Act(Heartbeat(envelope, envelope.account, envelope.region))
    if source != BACKUP_SOURCE:
        return Skip("other_source", f"source {source!r} is not {BACKUP_SOURCE}", **ids)
    if detail_type == SCAN_JOB_DETAIL_TYPE:
        return _scan_result(envelope, ids)
    if detail_type == COPY_JOB_DETAIL_TYPE:
        # A copy carries the same changes as its source: measuring it would count twice.
        return Skip("copy_job", "copy jobs repeat their source's changes", **ids)
    if detail_type != BACKUP_JOB_DETAIL_TYPE:
        return Skip("other_detail_type", f"detail-type {detail_type!r}", **ids)
    job = BackupJobEvent(raw)
    state = job.state
    if state != COMPLETED:
        return Skip("not_completed", f"state {state}", **ids)
    resource_type = job.resource_type
    if resource_type not in SUPPORTED_RESOURCE_TYPES:
        return Skip("unsupported_resource_type", f"resource type {resource_type}", **ids)
    if resource_type not in settings.resource_types:
        return Skip(
            "resource_type_disabled",
            f"resource type {resource_type} not in RESOURCE_TYPES",
            **ids,
        )
    return Act(
        BackupJob(
            event=job,
            backup_job_id=job.backup_job_id,
            resource_type=resource_type,
            resource_arn=job.resource_arn,
            recovery_point_arn=job.recovery_point_arn,
            completion_time=job.completion_time,
            account=job.account,
            region=job.region,
            vault_name=job.vault_name,
            iam_role_arn=job.iam_role_arn,
        )
    )


def _scan_result(envelope: EventBridgeEvent, ids: dict) -> Act | Skip:
    detail = envelope.detail
    state = _field(detail, "state", str, "detail")
    if state not in SCAN_FINAL_STATES:
        return Skip("not_completed", f"scan job state {state}", **ids)
    volume = Arn.parse(detail.get("resourceArn"), where="detail.resourceArn")
    if volume.account != envelope.account or volume.resource_type != "volume":
        # Only this account's volumes have findings here; anything else is not ours to judge.
        return Skip("other_resource", f"scan of {volume} is not of a volume of this account", **ids)
    result = detail.get("scanResult")
    status = result.get("scanResultStatus") if isinstance(result, Mapping) else None
    return Act(
        ScanResult(
            event=envelope,
            scan_job_id=_field(detail, "scanJobId", str, "detail"),
            state=state,
            result=status if isinstance(status, str) else None,
            volume_arn=str(detail["resourceArn"]),
            recovery_point_arn=_field(detail, "recoveryPointArn", str, "detail"),
            account=envelope.account,
            region=envelope.region,
        )
    )
