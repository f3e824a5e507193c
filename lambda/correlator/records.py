"""The correlator's records, as typed values: what arrives, what is stored, what is decided.

``events`` builds the arriving records, ``incidents`` decides on them, ``store`` writes
them and ``messages`` renders them; they pass these between them, never dicts. Each record
that is stored has exactly one place, here, that turns it into JSON and back
(``to_json`` / ``from_json``), with camelCase keys like the event details.

Times are aware UTC datetimes; stored as :func:`iso` text, a fixed-width format, so that
DynamoDB sort keys built from it order as the times do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """A verdict's (or an incident's) severity, in rising order."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def raised(self) -> Severity:
        """One level up (critical stays critical)."""
        return _BY_RANK[min(self.rank + 1, _RANK[Severity.CRITICAL])]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {s: i for i, s in enumerate(Severity)}
_BY_RANK = dict(enumerate(Severity))


def worst(severities: Iterable[Severity]) -> Severity:
    """The highest of ``severities`` (NONE when there are none)."""
    return max(severities, key=lambda s: s.rank, default=Severity.NONE)


class SignalKind(StrEnum):
    """What makes a volume part of an incident."""

    REWRITE = "rewrite"  # a verdict of low or above on a measurement
    SNAPSHOT_DELETED = "snapshot_deleted"  # the previous backup snapshot disappeared
    THREATS = "threats_found"  # a malware scan of its recovery point found threats


class Status(StrEnum):
    """An incident's state."""

    OPEN = "open"
    RESOLVED = "resolved"  # every volume measured normal after its last anomaly
    EXPIRED = "expired"  # no new anomaly for the quiet period, not every volume normal
    MERGED = "merged"  # an anomaly bridged it with an older incident, which holds it now

    @property
    def closed(self) -> bool:
        return self is not Status.OPEN


class NoticeKind(StrEnum):
    """What a notification says happened to an incident."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"
    EXPIRED = "expired"
    MERGED = "merged"
    REOPENED = "reopened"


class Decision(StrEnum):
    """What happened to one event (or one scheduled run); the ``decision`` of its log line."""

    STORED = "stored"
    CORRELATED = "correlated"
    DUPLICATE = "duplicate"
    HEARTBEAT = "heartbeat"
    SCAN = "scan"
    FORGED = "forged"
    SKIPPED = "skipped"
    MALFORMED = "malformed"
    PUBLISHED = "published"
    SWEEP = "sweep"
    DEFERRED = "deferred"
    ERROR = "error"


SCAN_THREATS = "THREATS_FOUND"
SCAN_CLEAN = "NO_THREATS_FOUND"
SCAN_UNKNOWN = "UNKNOWN"
# Scan job states after which the job's result no longer changes.
SCAN_TERMINAL_STATES = ("COMPLETED", "COMPLETED_WITH_ISSUES", "FAILED", "CANCELED")


def iso(value: datetime) -> str:
    """Fixed-width UTC text (``2025-06-01T05:02:03.000000Z``): sorts as the time does."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    """Inverse of :func:`iso`; also reads any ISO 8601 text with an offset or ``Z``."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _opt_time(value: object) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) and value else None


def _opt_iso(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Drops None values: absent keys keep stored items and messages small."""
    return {k: v for k, v in data.items() if v is not None}


def partition_of(arn: str) -> str:
    """The partition of an ARN (``aws``, ``aws-us-gov``, ``aws-cn``); ``aws`` when unreadable."""
    parts = arn.split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


# -- what arrives -----------------------------------------------------------------------


@dataclass(frozen=True)
class Forgery:
    """A detail that names another account than the envelope's (which EventBridge sets).

    Attributes:
        claimed_account: the account the detail claims.
        field: the detail field that claims it.
    """

    claimed_account: str
    field: str


@dataclass(frozen=True)
class Content:
    """Content evidence of a measurement: counts of sampled 4 KiB pages, never contents."""

    sampled_blocks: int
    pages: int
    incompressible_before: int
    incompressible_after: int

    def to_json(self) -> dict[str, Any]:
        return {
            "sampledBlocks": self.sampled_blocks,
            "pages": self.pages,
            "incompressibleBefore": self.incompressible_before,
            "incompressibleAfter": self.incompressible_after,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Content:
        return cls(
            sampled_blocks=int(data["sampledBlocks"]),
            pages=int(data["pages"]),
            incompressible_before=int(data["incompressibleBefore"]),
            incompressible_after=int(data["incompressibleAfter"]),
        )


@dataclass(frozen=True)
class Verdict:
    """The detector's judgement of one measurement (absent from older detectors' events).

    Attributes:
        severity: none .. critical.
        score: the scoring module's score.
        reasons: short human reasons.
        expected_low: low end of the usual share of written data rewritten.
        expected_high: high end of it.
        expected_median: its median.
        share: share of the written data rewritten by this backup (0..1).
        multiple: ``share`` as a multiple of the usual median.
    """

    severity: Severity
    score: float | None = None
    reasons: tuple[str, ...] = ()
    expected_low: float | None = None
    expected_high: float | None = None
    expected_median: float | None = None
    share: float | None = None
    multiple: float | None = None

    def to_json(self) -> dict[str, Any]:
        expected = _clean(
            {"low": self.expected_low, "high": self.expected_high, "median": self.expected_median}
        )
        return _clean(
            {
                "severity": self.severity.value,
                "score": self.score,
                "reasons": list(self.reasons),
                "expected": expected or None,
                "share": self.share,
                "multiple": self.multiple,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        expected = data.get("expected") or {}
        return cls(
            severity=Severity(data["severity"]),
            score=_opt_float(data.get("score")),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            expected_low=_opt_float(expected.get("low")),
            expected_high=_opt_float(expected.get("high")),
            expected_median=_opt_float(expected.get("median")),
            share=_opt_float(data.get("share")),
            multiple=_opt_float(data.get("multiple")),
        )


def _opt_float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def _opt_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"not a whole number: {value!r}")


@dataclass(frozen=True)
class Measurement:
    """A ``Backup Change Measured`` (or ``Backup Anomaly Detected``) event's detail.

    Attributes:
        id: ``measurementId`` (volume ARN / previous snapshot / snapshot), stable across
            retries.
        account: the envelope's account (never the detail's; see ``forged``).
        region: the volume's region (``detail.region``, the sender's claim about itself).
        anomaly_event: it came as ``Backup Anomaly Detected``.
        forged: set when the detail names another account than the envelope.
    """

    id: str
    account: str
    region: str
    volume_id: str
    volume_arn: str
    previous_snapshot_id: str
    snapshot_id: str
    changed_blocks: int
    completion_time: datetime
    changed_bytes: int | None = None
    percent_of_volume: float | None = None
    volume_size_gib: int | None = None
    written_blocks: int | None = None
    backup_job_id: str | None = None
    resource_type: str | None = None
    measured_at: datetime | None = None
    content: Content | None = None
    verdict: Verdict | None = None
    late_for_alarms: bool | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    last_clean_snapshot_id: str | None = None
    anomaly_event: bool = False
    forged: Forgery | None = None

    @property
    def severity(self) -> Severity | None:
        """The verdict's severity; None for a measurement an older detector did not judge."""
        return self.verdict.severity if self.verdict else None

    @property
    def normal(self) -> bool:
        """Judged and found none or low: it ends a volume's part in an incident."""
        return self.severity is not None and not self.severity.at_least(Severity.MEDIUM)

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "measurementId": self.id,
                "account": self.account,
                "region": self.region,
                "volumeId": self.volume_id,
                "volumeArn": self.volume_arn,
                "previousSnapshotId": self.previous_snapshot_id,
                "snapshotId": self.snapshot_id,
                "changedBlocks": self.changed_blocks,
                "changedBytes": self.changed_bytes,
                "percentOfVolume": self.percent_of_volume,
                "volumeSizeGiB": self.volume_size_gib,
                "writtenBlocks": self.written_blocks,
                "backupJobId": self.backup_job_id,
                "resourceType": self.resource_type,
                "completionTime": iso(self.completion_time),
                "measuredAt": _opt_iso(self.measured_at),
                "content": self.content.to_json() if self.content else None,
                "verdict": self.verdict.to_json() if self.verdict else None,
                "lateForAlarms": self.late_for_alarms,
                "instanceId": self.instance_id,
                "instanceName": self.instance_name,
                "lastCleanSnapshotId": self.last_clean_snapshot_id,
                "anomalyEvent": self.anomaly_event or None,
                "forged": _forgery_json(self.forged),
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            id=data["measurementId"],
            account=data["account"],
            region=data["region"],
            volume_id=data["volumeId"],
            volume_arn=data["volumeArn"],
            previous_snapshot_id=data["previousSnapshotId"],
            snapshot_id=data["snapshotId"],
            changed_blocks=int(data["changedBlocks"]),
            completion_time=parse_iso(data["completionTime"]),
            changed_bytes=_opt_int(data.get("changedBytes")),
            percent_of_volume=_opt_float(data.get("percentOfVolume")),
            volume_size_gib=_opt_int(data.get("volumeSizeGiB")),
            written_blocks=_opt_int(data.get("writtenBlocks")),
            backup_job_id=data.get("backupJobId"),
            resource_type=data.get("resourceType"),
            measured_at=_opt_time(data.get("measuredAt")),
            content=Content.from_json(data["content"]) if data.get("content") else None,
            verdict=Verdict.from_json(data["verdict"]) if data.get("verdict") else None,
            late_for_alarms=data.get("lateForAlarms"),
            instance_id=data.get("instanceId"),
            instance_name=data.get("instanceName"),
            last_clean_snapshot_id=data.get("lastCleanSnapshotId"),
            anomaly_event=bool(data.get("anomalyEvent")),
            forged=_forgery_from(data.get("forged")),
        )


def _forgery_json(forged: Forgery | None) -> dict[str, str] | None:
    if forged is None:
        return None
    return {"claimedAccount": forged.claimed_account, "field": forged.field}


def _forgery_from(data: object) -> Forgery | None:
    if not isinstance(data, Mapping):
        return None
    return Forgery(str(data["claimedAccount"]), str(data["field"]))


RESET_PREVIOUS_SNAPSHOT_MISSING = "previous_snapshot_missing"
RESET_UNRELATED_SNAPSHOTS = "unrelated_snapshots"


@dataclass(frozen=True)
class Reset:
    """A ``Backup Baseline Reset`` event's detail (account and region as in Measurement)."""

    id: str
    account: str
    region: str
    volume_id: str
    volume_arn: str
    previous_snapshot_id: str
    snapshot_id: str
    reason: str
    completion_time: datetime
    backup_job_id: str | None = None
    resource_type: str | None = None
    reset_at: datetime | None = None
    forged: Forgery | None = None

    @property
    def security_relevant(self) -> bool:
        """A deleted previous backup snapshot: deleting recovery points precedes encryption."""
        return self.reason == RESET_PREVIOUS_SNAPSHOT_MISSING

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "resetId": self.id,
                "account": self.account,
                "region": self.region,
                "volumeId": self.volume_id,
                "volumeArn": self.volume_arn,
                "previousSnapshotId": self.previous_snapshot_id,
                "snapshotId": self.snapshot_id,
                "reason": self.reason,
                "completionTime": iso(self.completion_time),
                "backupJobId": self.backup_job_id,
                "resourceType": self.resource_type,
                "resetAt": _opt_iso(self.reset_at),
                "forged": _forgery_json(self.forged),
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reset:
        return cls(
            id=data["resetId"],
            account=data["account"],
            region=data["region"],
            volume_id=data["volumeId"],
            volume_arn=data["volumeArn"],
            previous_snapshot_id=data["previousSnapshotId"],
            snapshot_id=data["snapshotId"],
            reason=data["reason"],
            completion_time=parse_iso(data["completionTime"]),
            backup_job_id=data.get("backupJobId"),
            resource_type=data.get("resourceType"),
            reset_at=_opt_time(data.get("resetAt")),
            forged=_forgery_from(data.get("forged")),
        )


@dataclass(frozen=True)
class Heartbeat:
    """A ``Backup Detector Heartbeat``: the member chain works, even with nothing to measure.

    Attributes:
        account: the envelope's account.
        region: the detector's region (``detail.region``).
        sent_at: the envelope's ``time``.
        interval_seconds: the backup interval the detector expects.
        volumes_known: volumes with a baseline in the detector's state.
        last_measurement_time: completion time of its newest measurement, if any.
        detector_version: the detector package's version.
    """

    account: str
    region: str
    sent_at: datetime
    interval_seconds: int
    volumes_known: int | None = None
    last_measurement_time: datetime | None = None
    detector_version: str | None = None
    forged: Forgery | None = None

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "account": self.account,
                "region": self.region,
                "sentAt": iso(self.sent_at),
                "intervalSeconds": self.interval_seconds,
                "volumesKnown": self.volumes_known,
                "lastMeasurementTime": _opt_iso(self.last_measurement_time),
                "detectorVersion": self.detector_version,
                "forged": _forgery_json(self.forged),
            }
        )


@dataclass(frozen=True)
class Scan:
    """A finished ``Scan Job State Change`` (AWS Backup + GuardDuty Malware Protection).

    Attributes:
        job_id: ``scanJobId``.
        account: the envelope's account (the member the event was forwarded from).
        region: the envelope's region (AWS Backup emits it in the scanned region).
        state: COMPLETED, COMPLETED_WITH_ISSUES, FAILED or CANCELED.
        result: THREATS_FOUND, NO_THREATS_FOUND, UNKNOWN, or None (failed, canceled).
        recovery_point_arn: the scanned recovery point (an EBS snapshot ARN for EBS).
        resource_arn: the backed-up resource (volume or instance).
        created_at: the scan job's creation.
        completed_at: its completion.
    """

    job_id: str
    account: str
    region: str
    state: str
    result: str | None
    recovery_point_arn: str
    resource_arn: str
    resource_type: str | None = None
    base_recovery_point_arn: str | None = None
    vault_name: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    status_message: str | None = None
    forged: Forgery | None = None

    @property
    def threats(self) -> bool:
        return self.result == SCAN_THREATS

    @property
    def snapshot_id(self) -> str | None:
        """The snapshot scanned, when the recovery point is an EBS snapshot."""
        tail = self.recovery_point_arn.rsplit(":", 1)[-1]
        return tail.split("/", 1)[1] if tail.startswith("snapshot/") else None

    @property
    def at(self) -> datetime | None:
        return self.completed_at or self.created_at

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "scanJobId": self.job_id,
                "account": self.account,
                "region": self.region,
                "state": self.state,
                "scanResultStatus": self.result,
                "recoveryPointArn": self.recovery_point_arn,
                "resourceArn": self.resource_arn,
                "resourceType": self.resource_type,
                "scanBaseRecoveryPointArn": self.base_recovery_point_arn,
                "backupVaultName": self.vault_name,
                "creationDate": _opt_iso(self.created_at),
                "completionDate": _opt_iso(self.completed_at),
                "statusMessage": self.status_message,
                "forged": _forgery_json(self.forged),
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scan:
        return cls(
            job_id=data["scanJobId"],
            account=data["account"],
            region=data["region"],
            state=data["state"],
            result=data.get("scanResultStatus"),
            recovery_point_arn=data["recoveryPointArn"],
            resource_arn=data["resourceArn"],
            resource_type=data.get("resourceType"),
            base_recovery_point_arn=data.get("scanBaseRecoveryPointArn"),
            vault_name=data.get("backupVaultName"),
            created_at=_opt_time(data.get("creationDate")),
            completed_at=_opt_time(data.get("completionDate")),
            status_message=data.get("statusMessage"),
            forged=_forgery_from(data.get("forged")),
        )


# -- what incidents are made of ---------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Why a volume is in an incident: the facts of its worst signal, counts and ids only."""

    kind: SignalKind
    severity: Severity
    at: datetime
    signal_id: str
    snapshot_id: str | None = None
    previous_snapshot_id: str | None = None
    changed_blocks: int | None = None
    written_blocks: int | None = None
    percent_of_volume: float | None = None
    volume_size_gib: int | None = None
    share: float | None = None
    multiple: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    expected_median: float | None = None
    reasons: tuple[str, ...] = ()
    content: Content | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    last_clean_snapshot_id: str | None = None
    reset_reason: str | None = None
    scan_job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "kind": self.kind.value,
                "severity": self.severity.value,
                "at": iso(self.at),
                "signalId": self.signal_id,
                "snapshotId": self.snapshot_id,
                "previousSnapshotId": self.previous_snapshot_id,
                "changedBlocks": self.changed_blocks,
                "writtenBlocks": self.written_blocks,
                "percentOfVolume": self.percent_of_volume,
                "volumeSizeGiB": self.volume_size_gib,
                "share": self.share,
                "multiple": self.multiple,
                "expectedLow": self.expected_low,
                "expectedHigh": self.expected_high,
                "expectedMedian": self.expected_median,
                "reasons": list(self.reasons) or None,
                "content": self.content.to_json() if self.content else None,
                "instanceId": self.instance_id,
                "instanceName": self.instance_name,
                "lastCleanSnapshotId": self.last_clean_snapshot_id,
                "resetReason": self.reset_reason,
                "scanJobId": self.scan_job_id,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            kind=SignalKind(data["kind"]),
            severity=Severity(data["severity"]),
            at=parse_iso(data["at"]),
            signal_id=data["signalId"],
            snapshot_id=data.get("snapshotId"),
            previous_snapshot_id=data.get("previousSnapshotId"),
            changed_blocks=_opt_int(data.get("changedBlocks")),
            written_blocks=_opt_int(data.get("writtenBlocks")),
            percent_of_volume=_opt_float(data.get("percentOfVolume")),
            volume_size_gib=_opt_int(data.get("volumeSizeGiB")),
            share=_opt_float(data.get("share")),
            multiple=_opt_float(data.get("multiple")),
            expected_low=_opt_float(data.get("expectedLow")),
            expected_high=_opt_float(data.get("expectedHigh")),
            expected_median=_opt_float(data.get("expectedMedian")),
            reasons=tuple(data.get("reasons") or ()),
            content=Content.from_json(data["content"]) if data.get("content") else None,
            instance_id=data.get("instanceId"),
            instance_name=data.get("instanceName"),
            last_clean_snapshot_id=data.get("lastCleanSnapshotId"),
            reset_reason=data.get("resetReason"),
            scan_job_id=data.get("scanJobId"),
        )


@dataclass(frozen=True)
class Signal:
    """One reason for one volume to be in an incident, normalized from its event.

    Attributes:
        id: the event's stable id (measurementId, resetId, ``scan/<scanJobId>``).
        volume_arn: the member key: the volume (or, for a scan of an instance nobody
            measured, the instance).
        time: when it happened: the backup's completion (a scan's creation).
    """

    id: str
    kind: SignalKind
    account: str
    region: str
    volume_arn: str
    volume_id: str
    time: datetime
    severity: Severity
    evidence: Evidence

    @classmethod
    def of_measurement(cls, m: Measurement) -> Signal:
        verdict = m.verdict or Verdict(Severity.NONE)
        evidence = Evidence(
            kind=SignalKind.REWRITE,
            severity=verdict.severity,
            at=m.completion_time,
            signal_id=m.id,
            snapshot_id=m.snapshot_id,
            previous_snapshot_id=m.previous_snapshot_id,
            changed_blocks=m.changed_blocks,
            written_blocks=m.written_blocks,
            percent_of_volume=m.percent_of_volume,
            volume_size_gib=m.volume_size_gib,
            share=verdict.share,
            multiple=verdict.multiple,
            expected_low=verdict.expected_low,
            expected_high=verdict.expected_high,
            expected_median=verdict.expected_median,
            reasons=verdict.reasons,
            content=m.content,
            instance_id=m.instance_id,
            instance_name=m.instance_name,
            last_clean_snapshot_id=m.last_clean_snapshot_id,
        )
        return cls(
            m.id,
            SignalKind.REWRITE,
            m.account,
            m.region,
            m.volume_arn,
            m.volume_id,
            m.completion_time,
            verdict.severity,
            evidence,
        )

    @classmethod
    def of_reset(cls, r: Reset, severity: Severity) -> Signal:
        evidence = Evidence(
            kind=SignalKind.SNAPSHOT_DELETED,
            severity=severity,
            at=r.completion_time,
            signal_id=r.id,
            snapshot_id=r.snapshot_id,
            previous_snapshot_id=r.previous_snapshot_id,
            reset_reason=r.reason,
        )
        return cls(
            r.id,
            SignalKind.SNAPSHOT_DELETED,
            r.account,
            r.region,
            r.volume_arn,
            r.volume_id,
            r.completion_time,
            severity,
            evidence,
        )

    @classmethod
    def of_scan(cls, s: Scan, time: datetime) -> Signal:
        resource_id = s.resource_arn.rsplit("/", 1)[-1]
        evidence = Evidence(
            kind=SignalKind.THREATS,
            severity=Severity.CRITICAL,
            at=time,
            signal_id=f"scan/{s.job_id}",
            snapshot_id=s.snapshot_id,
            scan_job_id=s.job_id,
            instance_id=resource_id if resource_id.startswith("i-") else None,
        )
        return cls(
            f"scan/{s.job_id}",
            SignalKind.THREATS,
            s.account,
            s.region,
            s.resource_arn,
            resource_id,
            time,
            Severity.CRITICAL,
            evidence,
        )


_SCAN_RANK = {SCAN_THREATS: 3, SCAN_CLEAN: 2, SCAN_UNKNOWN: 1}


@dataclass(frozen=True)
class ScanFinding:
    """The malware scan result that applies to a member (the most telling one)."""

    job_id: str
    state: str
    result: str | None
    at: datetime | None

    @property
    def rank(self) -> tuple[int, str]:
        return (_SCAN_RANK.get(self.result or "", 0), iso(self.at) if self.at else "")

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {"scanJobId": self.job_id, "state": self.state, "result": self.result,
             "at": _opt_iso(self.at)}
        )  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanFinding:
        return cls(data["scanJobId"], data["state"], data.get("result"), _opt_time(data.get("at")))

    @classmethod
    def of(cls, scan: Scan) -> ScanFinding:
        return cls(scan.job_id, scan.state, scan.result, scan.at)


def best_finding(findings: Iterable[ScanFinding | None]) -> ScanFinding | None:
    """Threats found beats no threats found beats unknown beats failed; then the latest."""
    present = [f for f in findings if f is not None]
    return max(present, key=lambda f: f.rank) if present else None


@dataclass(frozen=True)
class Member:
    """One volume of one incident (a row ``INC#<incident>`` / ``VOL#<volume>``).

    After a merge a volume may have rows under several incidents of one family; their
    :func:`combine` is the volume's state (every field merges commutatively).

    Attributes:
        incident_id: the incident whose partition holds the row.
        severity: the worst of its signals.
        first_at: earliest signal time; last_at: latest.
        signal_ids: every signal counted (a repeated event finds its id here).
        evidence: the facts of its worst (then latest) signal.
        recovered_at: the completion time of its newest normal measurement after
            ``last_at`` is what recovers it; this is the newest normal one known.
        recovered_by: that measurement's id.
        scan: the most telling malware scan result for it.
    """

    incident_id: str
    volume_arn: str
    volume_id: str
    account: str
    region: str
    severity: Severity
    first_at: datetime
    last_at: datetime
    signal_ids: frozenset[str]
    kinds: frozenset[SignalKind]
    evidence: Evidence
    recovered_at: datetime | None = None
    recovered_by: str | None = None
    scan: ScanFinding | None = None
    instance_id: str | None = None

    @property
    def recovered(self) -> bool:
        """Measured normal after its last anomaly."""
        return self.recovered_at is not None and self.recovered_at > self.last_at

    @property
    def serious(self) -> bool:
        """Counts towards escalation (medium or worse)."""
        return self.severity.at_least(Severity.MEDIUM)

    @property
    def threats(self) -> bool:
        return self.scan is not None and self.scan.result == SCAN_THREATS

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "incidentId": self.incident_id,
                "volumeArn": self.volume_arn,
                "volumeId": self.volume_id,
                "account": self.account,
                "region": self.region,
                "severity": self.severity.value,
                "firstAt": iso(self.first_at),
                "lastAt": iso(self.last_at),
                "signalIds": sorted(self.signal_ids),
                "kinds": sorted(k.value for k in self.kinds),
                "evidence": self.evidence.to_json(),
                "recoveredAt": _opt_iso(self.recovered_at),
                "recoveredBy": self.recovered_by,
                "scan": self.scan.to_json() if self.scan else None,
                "instanceId": self.instance_id,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            incident_id=data["incidentId"],
            volume_arn=data["volumeArn"],
            volume_id=data["volumeId"],
            account=data["account"],
            region=data["region"],
            severity=Severity(data["severity"]),
            first_at=parse_iso(data["firstAt"]),
            last_at=parse_iso(data["lastAt"]),
            signal_ids=frozenset(data.get("signalIds") or ()),
            kinds=frozenset(SignalKind(k) for k in data.get("kinds") or ()),
            evidence=Evidence.from_json(data["evidence"]),
            recovered_at=_opt_time(data.get("recoveredAt")),
            recovered_by=data.get("recoveredBy"),
            scan=ScanFinding.from_json(data["scan"]) if data.get("scan") else None,
            instance_id=data.get("instanceId"),
        )


def _evidence_rank(e: Evidence) -> tuple[int, str, str]:
    return (e.severity.rank, iso(e.at), e.signal_id)


def combine(rows: Iterable[Member], incident_id: str) -> Member | None:
    """The state of one volume from its rows in one incident family (None: no rows)."""
    rows = list(rows)
    if not rows:
        return None
    recovery = max(
        ((r.recovered_at, r.recovered_by or "") for r in rows if r.recovered_at is not None),
        default=None,
    )
    return Member(
        incident_id=incident_id,
        volume_arn=rows[0].volume_arn,
        volume_id=rows[0].volume_id,
        account=rows[0].account,
        region=rows[0].region,
        severity=worst(r.severity for r in rows),
        first_at=min(r.first_at for r in rows),
        last_at=max(r.last_at for r in rows),
        signal_ids=frozenset().union(*(r.signal_ids for r in rows)),
        kinds=frozenset().union(*(r.kinds for r in rows)),
        evidence=max((r.evidence for r in rows), key=_evidence_rank),
        recovered_at=recovery[0] if recovery else None,
        recovered_by=recovery[1] or None if recovery else None,
        scan=best_finding(r.scan for r in rows),
        instance_id=next((r.instance_id for r in rows if r.instance_id), None),
    )


def add_signal(member: Member | None, signal: Signal, incident_id: str) -> Member:
    """``member`` (None: a new one) with one more signal counted."""
    new = Member(
        incident_id=incident_id,
        volume_arn=signal.volume_arn,
        volume_id=signal.volume_id,
        account=signal.account,
        region=signal.region,
        severity=signal.severity,
        first_at=signal.time,
        last_at=signal.time,
        signal_ids=frozenset({signal.id}),
        kinds=frozenset({signal.kind}),
        evidence=signal.evidence,
        instance_id=signal.evidence.instance_id,
    )
    rows = [new] if member is None else [replace(member, incident_id=incident_id), new]
    combined = combine(rows, incident_id)
    assert combined is not None
    return combined


@dataclass(frozen=True)
class Tally:
    """Volumes of an incident in one account (or region), and the worst of them."""

    volumes: int = 0
    serious: int = 0
    worst: Severity = Severity.NONE

    def to_json(self) -> list[Any]:
        return [self.volumes, self.serious, self.worst.value]

    @classmethod
    def from_json(cls, data: list[Any]) -> Tally:
        return cls(int(data[0]), int(data[1]), Severity(data[2]))


@dataclass(frozen=True)
class Snapshot:
    """What a notification told: compared with the incident's present, the changes since."""

    severity: Severity
    volumes: int
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    scanned: int
    status: Status
    at: datetime
    threats: bool = False

    def same_as(self, other: Snapshot) -> bool:
        """Nothing worth telling changed between the two (the time aside)."""
        return replace(self, at=other.at) == other

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "volumes": self.volumes,
            "accounts": list(self.accounts),
            "regions": list(self.regions),
            "scanned": self.scanned,
            "status": self.status.value,
            "at": iso(self.at),
            "threats": self.threats,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            Severity(data["severity"]),
            int(data["volumes"]),
            tuple(data["accounts"]),
            tuple(data["regions"]),
            int(data["scanned"]),
            Status(data["status"]),
            parse_iso(data["at"]),
            bool(data.get("threats")),
        )


@dataclass(frozen=True)
class Incident:
    """An incident's head: its aggregates, status and what was last told about it.

    Attributes:
        id: ``inc-YYYYMMDD-<hash>`` of the signal that opened it.
        first_at: earliest signal time of its volumes; last_at: latest.
        opened_at: wall-clock time it was opened; updated_at: of its last signal.
        base_severity: the worst of its volumes' severities.
        threats: a malware scan of one of its volumes found threats.
        volumes: distinct volumes; unrecovered: of them, not yet measured normal again.
        scanned: volumes with a scan result.
        accounts: per account, its volumes and their worst severity; regions likewise.
        absorbed: incidents merged into this one (their rows still hold their volumes).
        seq: notifications recorded so far (the next one is ``seq + 1``).
        reported: what the last notification (audit or email) told.
        notified: what the last email told (None: never emailed).
    """

    id: str
    status: Status
    first_at: datetime
    last_at: datetime
    opened_at: datetime
    updated_at: datetime
    base_severity: Severity = Severity.NONE
    threats: bool = False
    volumes: int = 0
    unrecovered: int = 0
    scanned: int = 0
    accounts: Mapping[str, Tally] = field(default_factory=dict)
    regions: Mapping[str, Tally] = field(default_factory=dict)
    absorbed: tuple[str, ...] = ()
    merged_into: str | None = None
    closed_at: datetime | None = None
    seq: int = 0
    reported: Snapshot | None = None
    notified: Snapshot | None = None

    @property
    def family(self) -> tuple[str, ...]:
        """Every incident id whose rows hold this incident's volumes."""
        return (self.id, *self.absorbed)

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "id": self.id,
                "status": self.status.value,
                "firstAt": iso(self.first_at),
                "lastAt": iso(self.last_at),
                "openedAt": iso(self.opened_at),
                "updatedAt": iso(self.updated_at),
                "baseSeverity": self.base_severity.value,
                "threats": self.threats,
                "volumes": self.volumes,
                "unrecovered": self.unrecovered,
                "scanned": self.scanned,
                "accounts": {k: v.to_json() for k, v in sorted(self.accounts.items())},
                "regions": {k: v.to_json() for k, v in sorted(self.regions.items())},
                "absorbed": list(self.absorbed),
                "mergedInto": self.merged_into,
                "closedAt": _opt_iso(self.closed_at),
                "seq": self.seq,
                "reported": self.reported.to_json() if self.reported else None,
                "notified": self.notified.to_json() if self.notified else None,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident:
        return cls(
            id=data["id"],
            status=Status(data["status"]),
            first_at=parse_iso(data["firstAt"]),
            last_at=parse_iso(data["lastAt"]),
            opened_at=parse_iso(data["openedAt"]),
            updated_at=parse_iso(data["updatedAt"]),
            base_severity=Severity(data["baseSeverity"]),
            threats=bool(data.get("threats")),
            volumes=int(data["volumes"]),
            unrecovered=int(data["unrecovered"]),
            scanned=int(data.get("scanned") or 0),
            accounts={k: Tally.from_json(v) for k, v in data.get("accounts", {}).items()},
            regions={k: Tally.from_json(v) for k, v in data.get("regions", {}).items()},
            absorbed=tuple(data.get("absorbed") or ()),
            merged_into=data.get("mergedInto"),
            closed_at=_opt_time(data.get("closedAt")),
            seq=int(data.get("seq") or 0),
            reported=Snapshot.from_json(data["reported"]) if data.get("reported") else None,
            notified=Snapshot.from_json(data["notified"]) if data.get("notified") else None,
        )


def incidents_to_json(incidents: Iterable[Incident]) -> str:
    """The index item's ``Incidents`` attribute."""
    return json.dumps([i.to_json() for i in incidents], sort_keys=True, separators=(",", ":"))


def incidents_from_json(text: str) -> tuple[Incident, ...]:
    return tuple(Incident.from_json(d) for d in json.loads(text))


# -- what goes out ----------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A notification, rendered, stored as pending until it is published.

    Attributes:
        id: ``<subject id>#<seq>``: stable, so a republished one can be recognized.
        subject_id: the incident (or operational item) it is about.
        seq: its number among that subject's notifications.
        kind: what it says happened.
        email: it goes to the SNS topic (else to the audit queue only).
        subject: SNS Subject (ASCII, < 100 characters).
        body: plain text.
        audit: the full JSON (text) for the audit queue.
        created_at: when it was recorded.
        digest: operational notices of one scheduled run share one email (its key).
        emailed: the email went out already (kept on the pending item, not in its JSON).
    """

    id: str
    subject_id: str
    seq: int
    kind: str
    email: bool
    subject: str
    body: str
    audit: str
    created_at: datetime
    digest: str | None = None
    emailed: bool = False

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "id": self.id,
                "subjectId": self.subject_id,
                "seq": self.seq,
                "kind": self.kind,
                "email": self.email,
                "subject": self.subject,
                "body": self.body,
                "audit": self.audit,
                "createdAt": iso(self.created_at),
                "digest": self.digest,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        return cls(
            id=data["id"],
            subject_id=data["subjectId"],
            seq=int(data["seq"]),
            kind=data["kind"],
            email=bool(data["email"]),
            subject=data["subject"],
            body=data["body"],
            audit=data["audit"],
            created_at=parse_iso(data["createdAt"]),
            digest=data.get("digest"),
        )


# -- who is expected, who was heard -----------------------------------------------------


@dataclass(frozen=True)
class RosterEntry:
    """An account-region the deployment targets (written by ``build.py deploy``).

    Attributes:
        account: 12-digit account id.
        name: the account's name (from the config or Organizations).
        region: the region.
        interval_seconds: its backup interval (the alarm period of its detector).
    """

    account: str
    name: str
    region: str
    interval_seconds: int


@dataclass(frozen=True)
class Heard:
    """What the correlator has heard from one account-region.

    Attributes:
        last_measurement_at: newest measured backup's completion time (kept to within a
            few minutes: writes are throttled per execution environment).
        last_heartbeat_at: newest heartbeat's time.
        interval_seconds: the interval the newest heartbeat named.
        member_last_measurement_at: the newest measurement the detector says it made
            (later than ``last_measurement_at``: its events do not arrive).
    """

    account: str
    region: str
    first_heard_at: datetime | None = None
    last_measurement_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    interval_seconds: int | None = None
    volumes_known: int | None = None
    detector_version: str | None = None
    volumes_checked_at: datetime | None = None
    member_last_measurement_at: datetime | None = None

    @property
    def last_heard_at(self) -> datetime | None:
        times = [t for t in (self.last_measurement_at, self.last_heartbeat_at) if t]
        return max(times) if times else None


class OpsKind(StrEnum):
    """Operational incidents (kept apart from the security incidents)."""

    SILENT = "silent"  # an account-region sends nothing
    STOPPED = "stopped"  # a regularly measured volume's backups stopped
    FORGED = "forged"  # a sender's details name another account


@dataclass(frozen=True)
class OpsIncident:
    """One operational incident (an item ``OPS`` / ``<kind>#<key>``).

    Attributes:
        key: ``<account>#<region>`` (silent), the volume ARN (stopped), the sender (forged).
        since: when it began (last heard, last measured, first forged event).
        last_seen: the newest time that bears on it (heard again, measured, forged again).
        count: forged events seen (forged); measurements seen before it stopped (stopped).
        details: a few more facts, for the message.
        version: compare-and-swap counter.
        seq: notifications recorded.
        pending: the notice not yet published, if any.
    """

    kind: OpsKind
    key: str
    account: str
    region: str | None
    status: Status
    since: datetime
    last_seen: datetime | None = None
    count: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    seq: int = 0
    pending: Notice | None = None
    closed_at: datetime | None = None
    pending_claimed_at: datetime | None = None

    @property
    def sort_key(self) -> str:
        return f"{self.kind.value}#{self.key}"

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "kind": self.kind.value,
                "key": self.key,
                "account": self.account,
                "region": self.region,
                "status": self.status.value,
                "since": iso(self.since),
                "lastSeen": _opt_iso(self.last_seen),
                "count": self.count,
                "details": dict(self.details) or None,
                "seq": self.seq,
                "closedAt": _opt_iso(self.closed_at),
            }
        )

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], version: int, pending: Notice | None
    ) -> OpsIncident:
        return cls(
            kind=OpsKind(data["kind"]),
            key=data["key"],
            account=data["account"],
            region=data.get("region"),
            status=Status(data["status"]),
            since=parse_iso(data["since"]),
            last_seen=_opt_time(data.get("lastSeen")),
            count=int(data.get("count") or 0),
            details=data.get("details") or {},
            version=version,
            seq=int(data.get("seq") or 0),
            pending=pending,
            closed_at=_opt_time(data.get("closedAt")),
        )
