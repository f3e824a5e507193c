"""Simulated AWS Backup of one tagged EBS volume: daily incremental snapshots with contents.

Snapshots are written through the EBS direct API (StartSnapshot with the previous snapshot
as parent, PutSnapshotBlock for each changed block, CompleteSnapshot), so the detector's
ListChangedBlocks sees exactly the blocks that changed and its GetSnapshotBlock reads what
they hold: real file contents (``testing.blocks``: source text, binaries, database pages)
or, where the story encrypts them, ciphertext. To keep the organization in memory, each
block holds a 64 KiB slice (sixteen 4 KiB pages) instead of 512 KiB; the block count, which the
size evidence reads, and the page verdicts, which the content evidence reads, are real.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import boto3

from testing import blocks

BLOCK_BYTES = 65536
_SLICES = blocks.BLOCK_SIZE // BLOCK_BYTES


def content(kind: str, key: str) -> bytes:
    """64 KiB of ``kind`` (a ``testing.blocks`` source kind, or ``encrypted``), by ``key``."""
    digest = hashlib.sha256(key.encode()).digest()
    if kind == "encrypted":
        return blocks.keystream(b"demo-ransomware|" + digest, BLOCK_BYTES)
    offset = int.from_bytes(digest[:4], "big") % _SLICES * BLOCK_BYTES
    return bytes(blocks.block(kind, digest)[offset : offset + BLOCK_BYTES])


@dataclass
class SimulatedVolume:
    """One EBS volume, its data kind, and the snapshots AWS Backup took of it."""

    account: str
    region: str
    volume_id: str
    name: str
    kind: str
    size_gib: int
    written_blocks: int
    ebs: Any
    instance_id: str | None = None
    versions: dict[int, int] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account}:volume/{self.volume_id}"

    def back_up(self, writes: dict[int, str]) -> str:
        """Takes the next snapshot, in which each block of ``writes`` holds new data of its
        kind (the volume's own kind, or ``encrypted``)."""
        parent = {"ParentSnapshotId": self.snapshots[-1]} if self.snapshots else {}
        snapshot_id = self.ebs.start_snapshot(
            VolumeSize=self.size_gib,
            Description=f"AWS Backup of {self.volume_id}",
            Tags=[{"Key": "aws:backup:source-resource", "Value": self.volume_id}],
            Timeout=60,
            **parent,
        )["SnapshotId"]
        _attribute_to_volume(self.account, self.region, snapshot_id, self.volume_id)
        for index, kind in sorted(writes.items()):
            self.versions[index] = self.versions.get(index, 0) + 1
            data = content(kind, f"{self.volume_id}:{index}:{self.versions[index]}")
            self.ebs.put_snapshot_block(
                SnapshotId=snapshot_id,
                BlockIndex=index,
                BlockData=data,
                DataLength=len(data),
                Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                ChecksumAlgorithm="SHA256",
            )
        self.ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(writes))
        self.snapshots.append(snapshot_id)
        return snapshot_id


def _attribute_to_volume(account: str, region: str, snapshot_id: str, volume_id: str) -> None:
    """Records the snapshot as one of ``volume_id``, as an AWS Backup snapshot is.

    By hand: the EBS direct API has no way to name the source volume (AWS reports such
    snapshots as of vol-ffffffff, moto invents a new volume per snapshot), while AWS Backup
    snapshots the volume itself, which the detector checks. So the demo sets the snapshot's
    volume in moto's EC2 state and drops the volume moto invented.
    """
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[account][region]
    snapshot = ec2.snapshots[snapshot_id]
    invented = snapshot.volume
    snapshot.volume = ec2.volumes[volume_id]
    if invented.id != volume_id:
        ec2.volumes.pop(invented.id, None)


def create_volume(
    session: boto3.Session,
    account: str,
    region: str,
    tag: tuple[str, str],
    name: str,
    kind: str,
    written_blocks: int,
    size_gib: int = 1,
) -> SimulatedVolume:
    """Creates a volume tagged for backup (the config's selection tag) in ``account``,
    attached to an instance of the same Name, as a database volume would be."""
    ec2 = session.client("ec2", region_name=region)
    zone = f"{region}a"
    volume = ec2.create_volume(
        Size=size_gib,
        AvailabilityZone=zone,
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [{"Key": tag[0], "Value": tag[1]}, {"Key": "Name", "Value": name}],
            }
        ],
    )["VolumeId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": zone},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
    return SimulatedVolume(
        account=account,
        region=region,
        volume_id=volume,
        name=name,
        kind=kind,
        size_gib=size_gib,
        written_blocks=written_blocks,
        ebs=session.client("ebs", region_name=region),
        instance_id=instance,
    )
