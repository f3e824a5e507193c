"""A volume backed up daily for the verdict tests: moto, the fake EBS server, a central bus.

Blocks are real file contents and their encrypted versions (``testing/blocks.py``), served
by the fake EBS direct server.
"""

from __future__ import annotations

import json

from tests.detector.conftest import recent

WRITTEN = 4000  # blocks holding data on each test volume (2 GiB)
DAILY = 80  # blocks an ordinary day rewrites (2 % of the written data)
# The larger sample, when the size is unusual (the product reads 256; fewer keep tests fast).
SAMPLES_MAX = 64


class Ec2WithFullSize:
    """moto's EC2 with the FullSnapshotSizeInBytes AWS reports (moto leaves it out)."""

    def __init__(self, ec2, written_blocks: int = WRITTEN):
        self.meta = ec2.meta
        self._ec2 = ec2
        self._bytes = written_blocks * 524288

    def describe_snapshots(self, **kwargs):
        response = self._ec2.describe_snapshots(**kwargs)
        for snapshot in response["Snapshots"]:
            snapshot["FullSnapshotSizeInBytes"] = self._bytes
        return response

    def __getattr__(self, name):
        return getattr(self._ec2, name)


def _central_bus(world):
    """A central bus whose rule sends everything the detector puts to an audit queue."""
    bus_arn = world.events._client.create_event_bus(Name="central")["EventBusArn"]
    queue_url = world.sqs._client.create_queue(QueueName="audit")["QueueUrl"]
    queue_arn = world.sqs._client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    world.events._client.put_rule(
        Name="all",
        EventBusName="central",
        EventPattern=json.dumps({"source": ["backup-anomaly-detection"]}),
    )
    world.events._client.put_targets(
        Rule="all", EventBusName="central", Targets=[{"Id": "audit", "Arn": queue_arn}]
    )
    return bus_arn, queue_url


def received(world, queue_url) -> list[dict]:
    events = []
    while True:
        messages = world.sqs._client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            world.sqs._client.delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


class Volume:
    """One volume backed up daily: ``days`` ordinary backups, then whatever the test does."""

    def __init__(self, world, days: int, clients: dict | None = None, **settings):
        self.world = world
        self.bus_arn, self.queue = _central_bus(world)
        settings.setdefault("central_bus_arn", self.bus_arn)
        settings.setdefault("content_samples_max", SAMPLES_MAX)
        self.detector = world.detector(
            world.clients(ec2=Ec2WithFullSize(world.ec2), **(clients or {})), **settings
        )
        self.volume_id = world.volume(size_gib=4)
        self.days = days
        # The ordinary days rewrite a rotating stretch of blocks; the last entry is the
        # test's own day (filled in by ``last_day``).
        self.writes = [set()] + [
            {(day * DAILY + i) % WRITTEN for i in range(DAILY)} for day in range(days)
        ]

    def prepare(self, *extra: set[int]) -> list[str]:
        """The snapshots: the ordinary days, then one per ``extra`` set of blocks written."""
        self.snapshots = self.world.lineage(self.volume_id, [*self.writes, *extra], size_gib=4)
        return self.snapshots

    def back_up(self, snapshots: list[str] | None = None) -> list[dict]:
        """Delivers the backup events of ``snapshots`` (default all), a day apart, ending
        half an hour ago; returns the log records."""
        total = len(self.snapshots)
        records = []
        for snapshot in snapshots if snapshots is not None else self.snapshots:
            k = self.snapshots.index(snapshot)
            completion = recent(60 * 24 * (total - 1 - k) + 30)
            records += self.detector.handle(
                self.world.ebs_event(snapshot, self.volume_id, completion)
            )
        return records

    def run(self, last: set[int] | None = None) -> list[dict]:
        """Backs up every day (and a last one writing ``last``); returns the log records."""
        self.prepare(*([last] if last is not None else []))
        return self.back_up()

    def events(self, detail_type: str) -> list[dict]:
        return [e for e in received(self.world, self.queue) if e["detail-type"] == detail_type]
