"""Resolution of a completed backup job into one snapshot per volume.

EBS jobs: the snapshot ARN in ``resources[]`` (``backup:DescribeBackupJob`` when the list is
empty). EC2 jobs: the AMI's block device mappings (``ec2:DescribeImages``), one snapshot per
volume. Every snapshot is then described (``ec2:DescribeSnapshots``) for its volume, size and
``FullSnapshotSizeInBytes``, which sizes the ceiling alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from backup_anomaly.events import Arn, BackupJob, MalformedEvent

BLOCK_SIZE = 524288
BLOCKS_PER_GIB = 2048

_GONE_CODES = {
    "InvalidSnapshot.NotFound",
    "InvalidSnapshotID.Malformed",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable",
    "InvalidAMIID.Malformed",
    "ResourceNotFoundException",
}


class RecoveryPointGone(Exception):
    """The backup's recovery point (snapshot or AMI) no longer exists or cannot be found.

    Retrying cannot help, so the event is logged and dropped.
    """


@dataclass(frozen=True)
class VolumeSnapshot:
    """One volume's snapshot produced by a backup job."""

    volume_arn: str
    volume_id: str
    snapshot_id: str
    completion_time: datetime
    backup_job_id: str
    resource_type: str
    account: str
    region: str
    volume_size_gib: int | None = None
    full_snapshot_size_bytes: int | None = None
    # Where the recovery point is and who made it: what a confirmation scan names.
    recovery_point_arn: str | None = None
    vault_name: str | None = None
    backup_role_arn: str | None = None

    @property
    def written_blocks(self) -> int | None:
        """Blocks holding data in this snapshot (``FullSnapshotSizeInBytes``), when EC2
        reports it: the verdict's share is of this, never of the volume's size (a volume
        is rarely full, and a share of its size would understate every change)."""
        if self.full_snapshot_size_bytes:
            return max(1, -(-self.full_snapshot_size_bytes // BLOCK_SIZE))
        return None

    @property
    def base_blocks(self) -> int | None:
        """Blocks ever written on the volume (the ceiling alarm's 100 %), when known."""
        if self.written_blocks is not None:
            return self.written_blocks
        if self.volume_size_gib:
            return self.volume_size_gib * BLOCKS_PER_GIB
        return None

    def to_dict(self) -> dict:
        """Serializable form, for the state table and continuation messages."""
        return {
            "volumeArn": self.volume_arn,
            "volumeId": self.volume_id,
            "snapshotId": self.snapshot_id,
            "completionTime": self.completion_time.isoformat(),
            "backupJobId": self.backup_job_id,
            "resourceType": self.resource_type,
            "account": self.account,
            "region": self.region,
            "volumeSizeGiB": self.volume_size_gib,
            "fullSnapshotSizeInBytes": self.full_snapshot_size_bytes,
            "recoveryPointArn": self.recovery_point_arn,
            "vaultName": self.vault_name,
            "backupRoleArn": self.backup_role_arn,
        }

    @classmethod
    def from_dict(cls, data: dict) -> VolumeSnapshot:
        """Inverse of :meth:`to_dict`."""
        return cls(
            volume_arn=data["volumeArn"],
            volume_id=data["volumeId"],
            snapshot_id=data["snapshotId"],
            completion_time=datetime.fromisoformat(data["completionTime"]),
            backup_job_id=data["backupJobId"],
            resource_type=data["resourceType"],
            account=data["account"],
            region=data["region"],
            volume_size_gib=data.get("volumeSizeGiB"),
            full_snapshot_size_bytes=data.get("fullSnapshotSizeInBytes"),
            recovery_point_arn=data.get("recoveryPointArn"),
            vault_name=data.get("vaultName"),
            backup_role_arn=data.get("backupRoleArn"),
        )


def _gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _GONE_CODES


def recovery_point(job: BackupJob, backup_client) -> Arn:
    """The job's recovery point ARN: ``resources[0]``, else ``backup:DescribeBackupJob``.

    Raises:
        RecoveryPointGone: the job is unknown or reports no recovery point.
        MalformedEvent: the reported recovery point is not an ARN.
    """
    if job.recovery_point_arn is not None:
        return job.recovery_point_arn
    try:
        response = backup_client.describe_backup_job(BackupJobId=job.backup_job_id)
    except ClientError as exc:
        if _gone(exc):
            raise RecoveryPointGone(f"backup job {job.backup_job_id} not found") from exc
        raise
    arn = response.get("RecoveryPointArn")
    if not arn:
        raise RecoveryPointGone(f"backup job {job.backup_job_id} has no recovery point")
    return Arn.parse(arn, where="DescribeBackupJob.RecoveryPointArn")


def _describe_snapshots(ec2_client, snapshot_ids: list[str]) -> dict[str, dict]:
    try:
        response = ec2_client.describe_snapshots(SnapshotIds=snapshot_ids)
    except ClientError as exc:
        if _gone(exc):
            raise RecoveryPointGone(f"snapshot(s) {', '.join(snapshot_ids)} not found") from exc
        raise
    found = {item["SnapshotId"]: item for item in response.get("Snapshots", [])}
    missing = [snap for snap in snapshot_ids if snap not in found]
    if missing:
        raise RecoveryPointGone(f"snapshot(s) {', '.join(missing)} not found")
    return found


def _image_snapshot_ids(ec2_client, image_id: str) -> list[str]:
    try:
        response = ec2_client.describe_images(ImageIds=[image_id])
    except ClientError as exc:
        if _gone(exc):
            raise RecoveryPointGone(f"image {image_id} not found") from exc
        raise
    images = response.get("Images", [])
    if not images:
        raise RecoveryPointGone(f"image {image_id} not found")
    snapshot_ids = []
    for mapping in images[0].get("BlockDeviceMappings", []):
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        if snapshot_id and snapshot_id not in snapshot_ids:
            snapshot_ids.append(snapshot_id)
    if not snapshot_ids:
        raise RecoveryPointGone(f"image {image_id} has no EBS snapshots")
    return snapshot_ids


def resolve(job: BackupJob, *, ec2_client, backup_client) -> list[VolumeSnapshot]:
    """Resolves a completed job into one snapshot per volume.

    Args:
        job: the validated job.
        ec2_client: boto3 EC2 client.
        backup_client: boto3 Backup client (used only when ``resources[]`` is empty).

    Returns:
        One entry per volume, in the image's device order for EC2 jobs.

    Raises:
        RecoveryPointGone: the recovery point cannot be found (drop the event).
        MalformedEvent: the recovery point is not of the job's resource type.
        botocore.exceptions.ClientError: any other API error (retry the event).
    """
    point = recovery_point(job, backup_client)
    partition, region, account = job.resource_arn.partition, job.region, job.account
    if job.resource_type == "EBS":
        if point.resource_type != "snapshot":
            raise MalformedEvent(f"EBS recovery point is not a snapshot: {point}")
        if job.resource_arn.resource_type != "volume":
            raise MalformedEvent(f"EBS job resourceArn is not a volume: {job.resource_arn}")
        described = _describe_snapshots(ec2_client, [point.resource_id])
        volume_id = job.resource_arn.resource_id
        source = described[point.resource_id].get("VolumeId")
        if source and source not in (volume_id, "vol-ffffffff"):
            # Pairing a volume with another volume's snapshot would move its baseline to a
            # foreign lineage: refuse the event rather than trust it.
            raise MalformedEvent(
                f"snapshot {point.resource_id} is of volume {source}, not {volume_id}"
            )
        pairs = [(str(job.resource_arn), volume_id, point.resource_id)]
    else:
        if point.resource_type != "image":
            raise MalformedEvent(f"EC2 recovery point is not an image: {point}")
        snapshot_ids = _image_snapshot_ids(ec2_client, point.resource_id)
        described = _describe_snapshots(ec2_client, snapshot_ids)
        pairs = []
        for snapshot_id in snapshot_ids:
            source_volume = described[snapshot_id].get("VolumeId")
            # vol-ffffffff marks a snapshot not made from a volume (a copy): no lineage.
            if not source_volume or source_volume == "vol-ffffffff":
                continue
            arn = f"arn:{partition}:ec2:{region}:{account}:volume/{source_volume}"
            pairs.append((arn, source_volume, snapshot_id))
    result = []
    for volume_arn, volume_id, snapshot_id in pairs:
        item = described[snapshot_id]
        result.append(
            VolumeSnapshot(
                volume_arn=volume_arn,
                volume_id=volume_id,
                snapshot_id=snapshot_id,
                completion_time=job.completion_time,
                backup_job_id=job.backup_job_id,
                resource_type=job.resource_type,
                account=account,
                region=region,
                volume_size_gib=item.get("VolumeSize"),
                full_snapshot_size_bytes=item.get("FullSnapshotSizeInBytes"),
                recovery_point_arn=str(point),
                vault_name=job.vault_name,
                backup_role_arn=job.iam_role_arn,
            )
        )
    return result
