"""Per-volume state in DynamoDB (partition key ``VolumeArn``) with conditional writes.

One item per volume holds the baseline (the last snapshot measured against), a ``Version``
that every transition of the baseline increments, and two optional records:

* ``Pending``: a measurement (or baseline reset) whose baseline move is already written but
  whose metric may not be published yet. It is written in the same conditional update that
  moves the baseline, so a crash after the move cannot lose the measurement: whoever reads
  the item next publishes it again (a repeated PutMetricData with the same timestamp and
  value is harmless) and then clears it.
* ``Progress``: a count that did not finish in one invocation (the counting checkpoint and a
  generation number that orders the continuation messages).

and ``History``, the measurements the verdicts are judged on (``backup_anomaly.history``),
written with the baseline move that adds to it.

The table also holds the EBS request budgets' lease items (``#budget/ebs/...``, see
``backup_anomaly.budget``): a volume ARN always starts with ``arn:``, so they never collide.

Every transition is a compare-and-swap on ``Version``: of two concurrent invocations for
one volume only one can advance it; the other re-reads and finds a duplicate or a newer
baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

from backup_anomaly import history as history_codec
from backup_anomaly.findings import OpenFinding
from backup_anomaly.records import CountProgress, Pending, pending_from_json, pending_to_json
from backup_anomaly.scoring import HistoryEntry


class StateConflict(Exception):
    """A conditional write lost against a concurrent change; re-read and decide again."""


@dataclass(frozen=True)
class VolumeState:
    """One volume's item.

    Attributes:
        volume_arn: partition key.
        volume_id: ``vol-...``.
        snapshot_id: the baseline snapshot.
        completion_time: the baseline backup's completion time.
        version: compare-and-swap counter of baseline transitions.
        base_blocks: blocks written on the volume at the baseline (ceiling alarm base).
        volume_size_gib: the volume's size at the baseline.
        pending: a measurement to publish (see module docstring), or None.
        progress: a saved partial count, or None.
        alarm_fingerprint: fingerprint of the alarm configuration last put.
        alarm_base_blocks: ceiling base the alarms were last put with.
        alarms_verified_at: when the alarms were last confirmed to exist.
        history: the measurements so far, oldest first (empty for an item written before
            verdicts, or whose history could not be read: judged as a new volume).
        open_finding: the Security Hub finding of the volume's open anomaly episode.
    """

    volume_arn: str
    volume_id: str
    snapshot_id: str
    completion_time: datetime
    version: int
    base_blocks: int | None = None
    volume_size_gib: int | None = None
    pending: Pending | None = None
    progress: CountProgress | None = None
    alarm_fingerprint: str | None = None
    alarm_base_blocks: int | None = None
    alarms_verified_at: datetime | None = None
    history: tuple[HistoryEntry, ...] = ()
    open_finding: OpenFinding | None = None

    def is_newer(self, completion_time: datetime, snapshot_id: str) -> bool:
        """Whether a snapshot is strictly newer than the baseline (ties broken by id)."""
        return (completion_time, snapshot_id) > (self.completion_time, self.snapshot_id)


def _time(value: datetime) -> str:
    # Full precision: the baseline's time is compared with events' times, which must not
    # find the baseline snapshot newer than itself.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _s(item: dict, key: str) -> str | None:
    value = item.get(key)
    return value["S"] if value and "S" in value else None


def _n(item: dict, key: str) -> int | None:
    value = item.get(key)
    return int(value["N"]) if value and "N" in value else None


def _history(text: str | None) -> tuple[HistoryEntry, ...]:
    if not text:
        return ()
    try:
        return history_codec.from_json(text)
    except ValueError:
        # A history this detector cannot read (written by a newer one, or damaged) must not
        # stop the volume's measurements: it is judged as new, and the next write replaces it.
        return ()


def _open_finding(text: str | None) -> OpenFinding | None:
    if not text:
        return None
    try:
        return OpenFinding.from_json(text)
    except ValueError:
        return None


class StateStore:
    """Reads and conditionally writes volume state.

    Args:
        table_name: the table (``STATE_TABLE``).
        client: boto3 DynamoDB client; built on first use when omitted.
    """

    def __init__(self, table_name: str, client=None):
        self.table_name = table_name
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def get(self, volume_arn: str) -> VolumeState | None:
        """Strongly consistent read of a volume's state (None when never seen)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"VolumeArn": {"S": volume_arn}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        verified = _s(item, "AlarmsVerifiedAt")
        pending = _s(item, "Pending")
        progress = _s(item, "Progress")
        history = _s(item, "History")
        return VolumeState(
            volume_arn=volume_arn,
            volume_id=_s(item, "VolumeId") or volume_arn.rsplit("/", 1)[-1],
            snapshot_id=_s(item, "SnapshotId") or "",
            # Every baseline move writes it: an item without it is not one of ours.
            completion_time=datetime.fromisoformat(_s(item, "CompletionTime") or ""),
            version=_n(item, "Version") or 0,
            base_blocks=_n(item, "BaseBlocks"),
            volume_size_gib=_n(item, "VolumeSizeGiB"),
            pending=pending_from_json(pending) if pending else None,
            progress=CountProgress.from_json(progress) if progress else None,
            alarm_fingerprint=_s(item, "AlarmFingerprint"),
            alarm_base_blocks=_n(item, "AlarmBaseBlocks"),
            alarms_verified_at=datetime.fromisoformat(verified) if verified else None,
            history=_history(history),
            open_finding=_open_finding(_s(item, "OpenFinding")),
        )

    def _update(self, volume_arn: str, expression: str, condition: str, values: dict) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"VolumeArn": {"S": volume_arn}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StateConflict(volume_arn) from exc
            raise

    def move_baseline(
        self,
        volume_arn: str,
        *,
        volume_id: str,
        snapshot_id: str,
        completion_time: datetime,
        base_blocks: int | None,
        expected_version: int | None,
        pending: Pending | None,
        volume_size_gib: int | None = None,
        history: tuple[HistoryEntry, ...] | None = None,
    ) -> None:
        """Moves the baseline to a snapshot, recording what must be published.

        Args:
            volume_arn: the volume.
            volume_id: ``vol-...``.
            snapshot_id: the new baseline.
            completion_time: its backup's completion time.
            base_blocks: blocks written on the volume at that snapshot, when known.
            expected_version: the version read; None when the item must not exist yet.
            pending: the measurement or reset to publish, or None (first sighting).
            volume_size_gib: the volume's size at that snapshot, when known.
            history: the volume's history with this measurement in it; None leaves it.

        Raises:
            StateConflict: the item changed since it was read.
        """
        values = {
            ":vid": {"S": volume_id},
            ":snap": {"S": snapshot_id},
            ":t": {"S": _time(completion_time)},
            ":now": {"S": _time(datetime.now(UTC))},
        }
        sets = [
            "VolumeId = :vid",
            "SnapshotId = :snap",
            "CompletionTime = :t",
            "UpdatedAt = :now",
        ]
        removes = ["Progress"]
        if base_blocks is not None:
            sets.append("BaseBlocks = :base")
            values[":base"] = {"N": str(base_blocks)}
        if volume_size_gib is not None:
            sets.append("VolumeSizeGiB = :size")
            values[":size"] = {"N": str(volume_size_gib)}
        if history is not None:
            sets.append("History = :history")
            values[":history"] = {"S": history_codec.to_json(history)}
        if pending is not None:
            sets += ["Pending = :pending", "PendingSnapshotId = :snap"]
            values[":pending"] = {"S": pending_to_json(pending)}
        else:
            removes += ["Pending", "PendingSnapshotId"]
        if expected_version is None:
            condition = "attribute_not_exists(VolumeArn)"
            sets.append("Version = :one")
            values[":one"] = {"N": "1"}
        else:
            condition = "Version = :v"
            sets.append("Version = :next")
            values[":v"] = {"N": str(expected_version)}
            values[":next"] = {"N": str(expected_version + 1)}
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        self._update(volume_arn, expression, condition, values)

    def clear_pending(self, volume_arn: str, snapshot_id: str) -> bool:
        """Removes a published pending record; False when someone else already did."""
        try:
            self._update(
                volume_arn,
                "REMOVE Pending, PendingSnapshotId",
                "PendingSnapshotId = :snap",
                {":snap": {"S": snapshot_id}},
            )
        except StateConflict:
            return False
        return True

    def save_progress(
        self, volume_arn: str, *, expected_version: int, progress: CountProgress
    ) -> None:
        """Saves a partial count against the current baseline.

        Raises:
            StateConflict: the item changed since it was read.
        """
        self._update(
            volume_arn,
            "SET Progress = :p, Version = :next, UpdatedAt = :now",
            "Version = :v",
            {
                ":p": {"S": progress.to_json()},
                ":v": {"N": str(expected_version)},
                ":next": {"N": str(expected_version + 1)},
                ":now": {"S": _time(datetime.now(UTC))},
            },
        )

    def record_alarms(
        self, volume_arn: str, *, fingerprint: str, base_blocks: int | None, verified_at: datetime
    ) -> None:
        """Records the alarm configuration last put (not a baseline transition)."""
        values = {
            ":fp": {"S": fingerprint},
            ":at": {"S": _time(verified_at)},
        }
        expression = "SET AlarmFingerprint = :fp, AlarmsVerifiedAt = :at"
        if base_blocks is not None:
            expression += ", AlarmBaseBlocks = :base"
            values[":base"] = {"N": str(base_blocks)}
        else:
            expression += " REMOVE AlarmBaseBlocks"
        self._update(volume_arn, expression, "attribute_exists(VolumeArn)", values)

    def record_finding(self, volume_arn: str, finding: OpenFinding | None) -> None:
        """Records the volume's open finding, or that it has none (not a baseline transition)."""
        if finding is None:
            expression, values = "REMOVE OpenFinding", None
        else:
            expression, values = "SET OpenFinding = :f", {":f": {"S": finding.to_json()}}
        kwargs: dict = {
            "TableName": self.table_name,
            "Key": {"VolumeArn": {"S": volume_arn}},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(VolumeArn)",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.client.update_item(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StateConflict(volume_arn) from exc
            raise
