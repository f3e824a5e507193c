"""Where an anomalous volume is attached: the instance and the Name tags a responder knows.

Looked up only for verdicts of ``low`` or worse (two EC2 calls), so ordinary measurements
cost nothing more. A lookup that fails leaves the fields empty: the verdict goes out
without them rather than not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


@dataclass(frozen=True)
class Attachment:
    """The volume's Name tag and, when it is attached, its instance and that one's Name.

    Attributes:
        volume_name: the volume's ``Name`` tag.
        instance_id: the instance it is attached to (the first attachment).
        instance_name: that instance's ``Name`` tag.
    """

    volume_name: str | None = None
    instance_id: str | None = None
    instance_name: str | None = None


def _name(tags: list[dict[str, Any]] | None) -> str | None:
    for tag in tags or []:
        if tag.get("Key") == "Name" and tag.get("Value"):
            return str(tag["Value"])[:256]
    return None


def lookup(ec2: Any, volume_id: str) -> Attachment:
    """The volume's attachment (empty when the volume or the instance cannot be read)."""
    try:
        volumes = ec2.describe_volumes(VolumeIds=[volume_id]).get("Volumes", [])
    except (ClientError, BotoCoreError):
        return Attachment()
    if not volumes:
        return Attachment()
    volume = volumes[0]
    found = Attachment(volume_name=_name(volume.get("Tags")))
    attached = [a for a in volume.get("Attachments", []) if a.get("InstanceId")]
    if not attached:
        return found
    instance_id = str(attached[0]["InstanceId"])
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
    except (ClientError, BotoCoreError):
        return Attachment(found.volume_name, instance_id)
    tags = [t for r in reservations for i in r.get("Instances", []) for t in i.get("Tags", [])]
    return Attachment(found.volume_name, instance_id, _name(tags))
