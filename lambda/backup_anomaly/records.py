"""The detector's records: what it decided, measured, reset and saved, as typed values.

``detector``, ``state`` and ``forward`` pass these between them, never dicts. Each record
that is stored (in the volume's DynamoDB item) or sent (on the central bus) has exactly one
place that turns it into JSON and back, here, with the keys the stored items and the event
details have always had (so an item written by an older detector still reads, and the
central side sees unchanged details).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from backup_anomaly.attachment import Attachment
from backup_anomaly.scoring import Content, Severity
from backup_anomaly.snapshots import BLOCK_SIZE, VolumeSnapshot


class Decision(StrEnum):
    """What happened to one volume (or one event); the ``decision`` of its log line."""

    MEASURED = "measured"
    BASELINE_CREATED = "baseline_created"
    BASELINE_RESET = "baseline_reset"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IN_PROGRESS = "in_progress"
    CONTINUED = "continued"
    SKIPPED = "skipped"
    MALFORMED = "malformed"
    DEFERRED = "deferred"
    RETRY = "retry"
    ERROR = "error"
    HEARTBEAT = "heartbeat"
    SCAN_RECORDED = "scan_recorded"


class ResetReason(StrEnum):
    """Why a baseline was reset (``reason`` of a ``Backup Baseline Reset`` event)."""

    # The central stack alerts on this one: deleting recovery points precedes encryption.
    PREVIOUS_SNAPSHOT_MISSING = "previous_snapshot_missing"
    UNRELATED_SNAPSHOTS = "unrelated_snapshots"


def measurement_id(volume_arn: str, previous_snapshot_id: str, snapshot_id: str) -> str:
    """The id of one consecutive pair: stable across retries, so duplicates can be dropped."""
    return f"{volume_arn}/{previous_snapshot_id}/{snapshot_id}"


def _pair(target: VolumeSnapshot, previous_snapshot_id: str) -> dict[str, Any]:
    """Where and what was compared: the keys every detail and stored record starts with."""
    return {
        "account": target.account,
        "region": target.region,
        "volumeId": target.volume_id,
        "volumeArn": target.volume_arn,
        "previousSnapshotId": previous_snapshot_id,
        "snapshotId": target.snapshot_id,
    }


@dataclass(frozen=True)
class Judgement:
    """The verdict a measurement was given, as it is published (and kept until it is).

    Attributes:
        severity: the verdict's severity.
        verdict: ``Verdict.to_detail()`` (severity, score, reasons, expected range ...).
        last_clean_snapshot_id: the most recent snapshot judged ``none`` before this one
            (the one to restore from), or the first snapshot seen when nothing was judged
            yet; None when unknown.
        last_clean_time: its backup's completion time, when known.
    """

    severity: Severity
    verdict: dict[str, Any]
    last_clean_snapshot_id: str | None = None
    last_clean_time: datetime | None = None

    @property
    def is_anomaly(self) -> bool:
        """Whether it is published as a ``Backup Anomaly Detected`` event too (low or worse)."""
        return self.severity.at_least(Severity.LOW)


@dataclass(frozen=True)
class Measurement:
    """Blocks changed between a volume's baseline and its newer snapshot, and its verdict.

    Attributes:
        target: the newer snapshot (the new baseline).
        previous_snapshot_id: the baseline it was compared with.
        changed_blocks: blocks that differ.
        volume_size_gib: the volume's size, when known.
        block_size: bytes per block.
        measured_at: when the count finished.
        written_blocks: blocks holding data in the new snapshot, when known.
        previous_completion_time: the baseline backup's completion time.
        content: the sampled changed blocks' page counts; None when not sampled.
        content_note: why there is no content (or why it is partial), for the log and
            the detail; None when the sample was taken in full.
        judgement: the verdict; None for a record written by an older detector.
        late_for_alarms: the data point is older than the CloudWatch alarms evaluate (only
            the verdict judges it).
        attachment: where the volume is attached (looked up for anomalies only).
    """

    target: VolumeSnapshot
    previous_snapshot_id: str
    changed_blocks: int
    volume_size_gib: int | None
    block_size: int
    measured_at: datetime
    written_blocks: int | None = None
    previous_completion_time: datetime | None = None
    content: Content | None = None
    content_note: str | None = None
    judgement: Judgement | None = None
    late_for_alarms: bool = False
    attachment: Attachment | None = None

    @property
    def id(self) -> str:
        return measurement_id(
            self.target.volume_arn, self.previous_snapshot_id, self.target.snapshot_id
        )

    @property
    def percent_of_volume(self) -> float | None:
        size = self.volume_size_gib
        if not size:
            return None
        return round(100.0 * self.changed_blocks * self.block_size / (size * 1024**3), 4)

    def detail(self) -> dict[str, Any]:
        """The ``Backup Change Measured`` event detail (keys unchanged since they shipped)."""
        t = self.target
        return {
            "measurementId": self.id,
            **_pair(t, self.previous_snapshot_id),
            "changedBlocks": self.changed_blocks,
            "changedBytes": self.changed_blocks * self.block_size,
            "percentOfVolume": self.percent_of_volume,
            "volumeSizeGiB": self.volume_size_gib,
            "backupJobId": t.backup_job_id,
            "resourceType": t.resource_type,
            "completionTime": t.completion_time.isoformat(),
            "measuredAt": self.measured_at.isoformat(),
            "writtenBlocks": self.written_blocks,
            "previousCompletionTime": _iso(self.previous_completion_time),
            "content": content_detail(self.content),
            "contentNote": self.content_note,
            "verdict": self.judgement.verdict if self.judgement else None,
            "lateForAlarms": self.late_for_alarms,
            # What the account reports about the volume (tags are its own text).
            "volumeName": self.attachment.volume_name if self.attachment else None,
            "instanceId": self.attachment.instance_id if self.attachment else None,
            "instanceName": self.attachment.instance_name if self.attachment else None,
        }

    def anomaly_detail(self) -> dict[str, Any]:
        """The ``Backup Anomaly Detected`` detail: the measurement, the expected range and
        the snapshot to restore from (same ``measurementId``, so both dedupe alike)."""
        judgement = self.judgement
        if judgement is None:
            raise ValueError("a measurement without a verdict is no anomaly")
        return {
            **self.detail(),
            "severity": judgement.severity.value,
            "expected": judgement.verdict.get("expected"),
            "lastCleanSnapshotId": judgement.last_clean_snapshot_id,
            "lastCleanCompletionTime": _iso(judgement.last_clean_time),
        }


def content_detail(content: Content | None) -> dict[str, int] | None:
    """The ``content`` object of the event contract (page counts), or None."""
    if content is None:
        return None
    return {
        "sampledBlocks": content.sampled_blocks,
        "pages": content.pages,
        "incompressibleBefore": content.incompressible_before,
        "incompressibleAfter": content.incompressible_after,
    }


def _content(data: object) -> Content | None:
    if not isinstance(data, dict):
        return None
    return Content(
        int(data["sampledBlocks"]),
        int(data["pages"]),
        int(data["incompressibleBefore"]),
        int(data["incompressibleAfter"]),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class BaselineReset:
    """A baseline that moved without a measurement (the pair could not be compared).

    Attributes:
        target: the snapshot that becomes the baseline.
        previous_snapshot_id: the baseline that could not be compared with it.
        reason: why.
        reset_at: when the detector found out.
    """

    target: VolumeSnapshot
    previous_snapshot_id: str
    reason: ResetReason
    reset_at: datetime

    @property
    def id(self) -> str:
        return measurement_id(
            self.target.volume_arn, self.previous_snapshot_id, self.target.snapshot_id
        )

    def detail(self) -> dict[str, Any]:
        """The ``Backup Baseline Reset`` event detail (``resetId`` stable across retries)."""
        t = self.target
        return {
            "resetId": self.id,
            **_pair(t, self.previous_snapshot_id),
            "reason": self.reason.value,
            "backupJobId": t.backup_job_id,
            "resourceType": t.resource_type,
            "completionTime": t.completion_time.isoformat(),
            "resetAt": self.reset_at.isoformat(),
        }


Pending = Measurement | BaselineReset


def pending_to_json(record: Pending) -> str:
    """The ``Pending`` attribute of the volume's item: what must still be published."""
    t = record.target
    data: dict[str, Any] = {
        "measurementId": record.id,
        **_pair(t, record.previous_snapshot_id),
        "backupJobId": t.backup_job_id,
        "resourceType": t.resource_type,
        "completionTime": t.completion_time.isoformat(),
        "fullSnapshotSizeInBytes": t.full_snapshot_size_bytes,
        "recoveryPointArn": t.recovery_point_arn,
        "vaultName": t.vault_name,
        "backupRoleArn": t.backup_role_arn,
    }
    if isinstance(record, Measurement):
        judgement = record.judgement
        data.update(
            kind="measurement",
            changedBlocks=record.changed_blocks,
            volumeSizeGiB=record.volume_size_gib,
            blockSize=record.block_size,
            measuredAt=record.measured_at.isoformat(),
            writtenBlocks=record.written_blocks,
            previousCompletionTime=_iso(record.previous_completion_time),
            content=content_detail(record.content),
            contentNote=record.content_note,
            lateForAlarms=record.late_for_alarms,
            verdict=judgement.verdict if judgement else None,
            lastCleanSnapshotId=judgement.last_clean_snapshot_id if judgement else None,
            lastCleanCompletionTime=_iso(judgement.last_clean_time) if judgement else None,
            attachment=[
                record.attachment.volume_name,
                record.attachment.instance_id,
                record.attachment.instance_name,
            ]
            if record.attachment
            else None,
        )
    else:
        data.update(
            kind="reset",
            reason=record.reason.value,
            volumeSizeGiB=t.volume_size_gib,
            measuredAt=record.reset_at.isoformat(),
        )
    return json.dumps(data, sort_keys=True)


def pending_from_json(text: str) -> Pending:
    """Inverse of :func:`pending_to_json`, also for items written by older detectors.

    Raises:
        ValueError: the text is not a pending record.
    """
    try:
        data = json.loads(text)
        target = VolumeSnapshot(
            volume_arn=data["volumeArn"],
            volume_id=data["volumeId"],
            snapshot_id=data["snapshotId"],
            completion_time=datetime.fromisoformat(data["completionTime"]),
            backup_job_id=data.get("backupJobId") or "",
            resource_type=data.get("resourceType") or "EBS",
            account=data["account"],
            region=data["region"],
            volume_size_gib=data.get("volumeSizeGiB"),
            full_snapshot_size_bytes=data.get("fullSnapshotSizeInBytes"),
            recovery_point_arn=data.get("recoveryPointArn"),
            vault_name=data.get("vaultName"),
            backup_role_arn=data.get("backupRoleArn"),
        )
        at = datetime.fromisoformat(data["measuredAt"])
        if data.get("kind") == "reset":
            return BaselineReset(
                target, data["previousSnapshotId"], ResetReason(data["reason"]), at
            )
        verdict = data.get("verdict")
        judgement = None
        if isinstance(verdict, dict):
            judgement = Judgement(
                Severity(verdict["severity"]),
                verdict,
                data.get("lastCleanSnapshotId"),
                _when(data.get("lastCleanCompletionTime")),
            )
        return Measurement(
            target=target,
            previous_snapshot_id=data["previousSnapshotId"],
            changed_blocks=int(data["changedBlocks"]),
            volume_size_gib=data.get("volumeSizeGiB"),
            block_size=int(data.get("blockSize") or BLOCK_SIZE),
            measured_at=at,
            written_blocks=data.get("writtenBlocks"),
            previous_completion_time=_when(data.get("previousCompletionTime")),
            content=_content(data.get("content")),
            content_note=data.get("contentNote"),
            judgement=judgement,
            late_for_alarms=bool(data.get("lateForAlarms")),
            attachment=Attachment(*data["attachment"]) if data.get("attachment") else None,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid pending record: {exc}") from exc


@dataclass(frozen=True)
class CountProgress:
    """A count saved between invocations (the ``Progress`` attribute of the volume's item).

    Attributes:
        target: the snapshot being measured.
        previous_snapshot_id: the baseline it is compared with.
        generation: orders the continuation messages; only the state's generation resumes.
        checkpoint: the counting engine's checkpoint (its own JSON).
        saved_at: when it was saved (a checkpoint that stops moving was lost).
    """

    target: VolumeSnapshot
    previous_snapshot_id: str
    generation: int
    checkpoint: str
    saved_at: datetime | None

    def counts_newer_than(self, completion_time: datetime, snapshot_id: str) -> bool:
        """Whether the snapshot being counted is newer than the one given."""
        return (self.target.completion_time, self.target.snapshot_id) > (
            completion_time,
            snapshot_id,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target.to_dict(),
                "previousSnapshotId": self.previous_snapshot_id,
                "generation": self.generation,
                "checkpoint": self.checkpoint,
                "savedAt": self.saved_at.isoformat() if self.saved_at else None,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CountProgress:
        """Raises ``ValueError`` when the text is not a saved count."""
        try:
            data = json.loads(text)
            saved = data.get("savedAt")
            return cls(
                target=VolumeSnapshot.from_dict(data["target"]),
                previous_snapshot_id=data.get("previousSnapshotId") or "",
                generation=int(data["generation"]),
                checkpoint=str(data.get("checkpoint") or ""),
                saved_at=datetime.fromisoformat(saved) if isinstance(saved, str) else None,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid saved count: {exc}") from exc
