"""Simulated AWS Backup of one tagged EBS volume: daily incremental snapshots.

Snapshots are written through the EBS direct API (StartSnapshot with the previous snapshot
as parent, PutSnapshotBlock for each changed block, CompleteSnapshot), so the detector's
ListChangedBlocks sees exactly the blocks that changed. To keep the simulation in memory
and fast, each block carries a 16-byte payload instead of 512 KiB (moto does not check
the length); the block count, which is what the detector measures, is real.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import boto3

PAYLOAD_BYTES = 16


@dataclass
class SimulatedVolume:
    """One EBS volume and the snapshots AWS Backup took of it."""

    account: str
    region: str
    volume_id: str
    size_gib: int
    written_blocks: int
    ebs: Any
    versions: dict[int, int] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)

    def back_up(self, changed: list[int]) -> str:
        """Takes the next snapshot, in which ``changed`` blocks hold new data."""
        parent = {"ParentSnapshotId": self.snapshots[-1]} if self.snapshots else {}
        snapshot_id = self.ebs.start_snapshot(
            VolumeSize=self.size_gib,
            Description=f"AWS Backup of {self.volume_id}",
            Tags=[{"Key": "aws:backup:source-resource", "Value": self.volume_id}],
            Timeout=60,
            **parent,
        )["SnapshotId"]
        _attribute_to_volume(self.account, self.region, snapshot_id, self.volume_id)
        for index in changed:
            self.versions[index] = self.versions.get(index, 0) + 1
            data = f"{index}:{self.versions[index]}".encode().ljust(PAYLOAD_BYTES, b".")
            self.ebs.put_snapshot_block(
                SnapshotId=snapshot_id,
                BlockIndex=index,
                BlockData=data,
                DataLength=len(data),
                Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                ChecksumAlgorithm="SHA256",
            )
        self.ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(changed))
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
    written_blocks: int,
    size_gib: int = 1,
) -> SimulatedVolume:
    """Creates a volume tagged for backup (the config's selection tag) in ``account``."""
    ec2 = session.client("ec2", region_name=region)
    volume = ec2.create_volume(
        Size=size_gib,
        AvailabilityZone=f"{region}a",
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [
                    {"Key": tag[0], "Value": tag[1]},
                    {"Key": "Name", "Value": "orders-db-data"},
                ],
            }
        ],
    )
    return SimulatedVolume(
        account=account,
        region=region,
        volume_id=volume["VolumeId"],
        size_gib=size_gib,
        written_blocks=written_blocks,
        ebs=session.client("ebs", region_name=region),
    )
