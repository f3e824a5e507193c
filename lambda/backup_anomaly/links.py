"""Console links to what a responder opens first, in the volume's partition.

Commercial regions have regional consoles
(https://docs.aws.amazon.com/general/latest/gr/mgmt-console.html); AWS GovCloud (US) and
the China regions have one console host of their own each
(https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/govcloud-iam.html). The generator
reads the same table for the alert templates (``<region>`` is their placeholder).
"""

from __future__ import annotations

CONSOLE_URLS = {
    "aws": "https://<region>.console.aws.amazon.com",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
    "aws-cn": "https://console.amazonaws.cn",
}


def console(partition: str, region: str) -> str:
    """The console base URL for ``region`` of ``partition``."""
    return CONSOLE_URLS.get(partition, CONSOLE_URLS["aws"]).replace("<region>", region)


def snapshot(partition: str, region: str, snapshot_id: str) -> str:
    """The EC2 console page of a snapshot (where a volume is restored from)."""
    base = f"{console(partition, region)}/ec2/home?region={region}"
    return f"{base}#SnapshotDetails:snapshotId={snapshot_id}"


def volume(partition: str, region: str, volume_id: str) -> str:
    """The EC2 console page of a volume."""
    return (
        f"{console(partition, region)}/ec2/home?region={region}#VolumeDetails:volumeId={volume_id}"
    )
