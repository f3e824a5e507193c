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
class Measurement:
    """Blocks changed between a volume's baseline and its newer snapshot.

    Attributes:
        target: the newer snapshot (the new baseline).
        previous_snapshot_id: the baseline it was compared with.
        changed_blocks: blocks that differ.
        volume_size_gib: the volume's size, when known.
        block_size: bytes per block.
        measured_at: when the count finished.
    """

    target: VolumeSnapshot
    previous_snapshot_id: str
    changed_blocks: int
    volume_size_gib: int | None
    block_size: int
    measured_at: datetime

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
        }


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
    }
    if isinstance(record, Measurement):
        data.update(
            kind="measurement",
            changedBlocks=record.changed_blocks,
            volumeSizeGiB=record.volume_size_gib,
            blockSize=record.block_size,
            measuredAt=record.measured_at.isoformat(),
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
        )
        at = datetime.fromisoformat(data["measuredAt"])
        if data.get("kind") == "reset":
            return BaselineReset(
                target, data["previousSnapshotId"], ResetReason(data["reason"]), at
            )
        return Measurement(
            target=target,
            previous_snapshot_id=data["previousSnapshotId"],
            changed_blocks=int(data["changedBlocks"]),
            volume_size_gib=data.get("volumeSizeGiB"),
            block_size=int(data.get("blockSize") or BLOCK_SIZE),
            measured_at=at,
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
