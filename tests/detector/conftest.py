"""Fixtures for the detector tests: moto for AWS, the fake EBS direct server, sample events.

Sample events live in ``tests/detector/events`` (copies of the shared reference samples) so
the repository is self-contained.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from backup_anomaly import handler
from backup_anomaly.detector import Clients, Detector
from backup_anomaly.settings import Settings
from backup_anomaly.state import StateStore
from testing.fakes.ebs_direct import FakeEbsDirect
from testing.recorder import Recorder, client_error  # noqa: F401 - the tests import them here

EVENTS = Path(__file__).parent / "events"
TABLE = "backup-anomaly-state"
REGION = "us-east-1"
ACCOUNT = "123456789012"
NAMESPACE = "BackupAnomalyDetection"


def load_event(name: str) -> dict:
    """A fresh copy of a sample event (``backup-job-completed-ebs`` ...)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def recent(minutes_ago: float = 0) -> datetime:
    """A completion time CloudWatch still accepts, rounded to the second."""
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeContext:
    """A Lambda context whose remaining time runs down with the wall clock."""

    def __init__(self, seconds: float = 900.0):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class World:
    """One moto account plus the fake EBS server, with helpers to build events."""

    def __init__(self, fake: FakeEbsDirect, raw: dict):
        self.fake = fake
        self.ec2 = raw["ec2"]
        self.dynamodb = raw["dynamodb"]
        self.cloudwatch = Recorder(
            raw["cloudwatch"], record=("put_metric_data", "put_metric_alarm", "describe_alarms")
        )
        self.events = Recorder(raw["events"], record=("put_events",))
        self.sqs = Recorder(raw["sqs"], record=("send_message",))
        self.backup = raw["backup"]
        self.ebs = Recorder(raw["ebs"])
        self.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "VolumeArn", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "VolumeArn", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.store = StateStore(TABLE, self.dynamodb)
        self._job = 0

    def fresh(self) -> World:
        """The same account with new recorders (for many scenarios in one moto account)."""
        other = copy.copy(self)
        other.cloudwatch = Recorder(self.cloudwatch._client, record=self.cloudwatch._record)
        other.events = Recorder(self.events._client, record=self.events._record)
        other.sqs = Recorder(self.sqs._client, record=self.sqs._record)
        other.ebs = Recorder(self.ebs._client)
        return other

    # -- AWS objects ------------------------------------------------------------------------

    def volume(self, size_gib: int = 1) -> str:
        return self.ec2.create_volume(Size=size_gib, AvailabilityZone=f"{REGION}a")["VolumeId"]

    def snapshot(self, volume_id: str) -> str:
        return self.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]

    def lineage(self, volume_id: str, writes: list[set[int]], size_gib: int = 1) -> list[str]:
        """Snapshots of one volume; ``writes[k]`` are the blocks written before snapshot k.

        Every pair (i < j) is registered in the fake with the union of writes[i+1..j].
        """
        snaps = [self.snapshot(volume_id) for _ in writes]
        for i in range(len(snaps)):
            for j in range(i + 1, len(snaps)):
                blocks = set().union(*writes[i + 1 : j + 1])
                self.fake.add_pair(snaps[i], snaps[j], size_gib, ranges(blocks))
        return snaps

    @staticmethod
    def volume_arn(volume_id: str) -> str:
        return f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume_id}"

    def queue(self, name: str = "work") -> str:
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    # -- events -----------------------------------------------------------------------------

    def ebs_event(
        self, snapshot_id: str, volume_id: str, completion: datetime, job_id: str | None = None
    ) -> dict:
        event = load_event("backup-job-completed-ebs")
        self._job += 1
        event["account"] = ACCOUNT
        event["region"] = REGION
        event["resources"] = [f"arn:aws:ec2:{REGION}::snapshot/{snapshot_id}"]
        event["detail"]["resourceArn"] = self.volume_arn(volume_id)
        event["detail"]["completionDate"] = iso(completion)
        event["detail"]["backupJobId"] = job_id or f"job-{self._job}"
        return event

    def ec2_event(self, image_id: str, completion: datetime) -> dict:
        event = load_event("backup-job-completed-ec2")
        self._job += 1
        event["account"] = ACCOUNT
        event["region"] = REGION
        event["resources"] = [f"arn:aws:ec2:{REGION}::image/{image_id}"]
        event["detail"]["resourceArn"] = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc"
        event["detail"]["completionDate"] = iso(completion)
        event["detail"]["backupJobId"] = f"job-{self._job}"
        return event

    # -- the detector -------------------------------------------------------------------------

    def settings(self, **overrides) -> Settings:
        # The per-volume CloudWatch alarms are off by default in the product; these tests
        # exercise them unless a test says otherwise (test_alarms_off covers the default).
        overrides.setdefault("cloudwatch_alarms", True)
        return Settings(state_table=TABLE, **overrides)

    def clients(self, **overrides) -> Clients:
        values = dict(
            ebs=self.ebs,
            ec2=self.ec2,
            backup=self.backup,
            cloudwatch=self.cloudwatch,
            dynamodb=self.dynamodb,
            events=self.events,
            sqs=self.sqs,
        )
        values.update(overrides)
        return Clients(**values)

    def detector(self, clients: Clients | None = None, **overrides) -> Detector:
        return Detector(self.settings(**overrides), clients or self.clients())

    # -- observations ---------------------------------------------------------------------------

    def metric_puts(self, name: str = "ChangedBlocks") -> list[dict]:
        """Every data point put for a metric name (a retry shows up twice)."""
        return [
            datum
            for method, kwargs in self.cloudwatch.calls
            if method == "put_metric_data"
            for datum in kwargs["MetricData"]
            if datum["MetricName"] == name
        ]

    def alarms(self, prefix: str = "backup-anomaly-") -> dict[str, dict]:
        response = self.cloudwatch._client.describe_alarms(AlarmNamePrefix=prefix)
        return {alarm["AlarmName"]: alarm for alarm in response["MetricAlarms"]}


def ranges(blocks: set[int]) -> list[tuple[int, int]]:
    """Sorted block indexes as half-open ranges."""
    out: list[tuple[int, int]] = []
    for index in sorted(blocks):
        if out and out[-1][1] == index:
            out[-1] = (out[-1][0], index + 1)
        else:
            out.append((index, index + 1))
    return out


@pytest.fixture(scope="session")
def fake_ebs():
    with FakeEbsDirect() as fake:
        yield fake


def make_raw_clients(fake: FakeEbsDirect) -> dict:
    """boto3 clients for moto (created once: moto intercepts them inside any mock)."""
    raw = {
        name: boto3.client(name, region_name=REGION)
        for name in ("ec2", "dynamodb", "cloudwatch", "events", "sqs", "backup")
    }
    raw["ebs"] = boto3.client(
        "ebs",
        region_name=REGION,
        endpoint_url=fake.url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=16),
    )
    return raw


@pytest.fixture(scope="session")
def raw_clients(fake_ebs):
    return make_raw_clients(fake_ebs)


@pytest.fixture
def world(fake_ebs, raw_clients):
    fake_ebs.set_quota(None)
    fake_ebs.latency = 0.0
    fake_ebs.scan_window = None
    with mock_aws():
        yield World(fake_ebs, raw_clients)


@pytest.fixture
def lines(capsys):
    """Reads the JSON log lines written so far (and consumes them)."""

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return read


@pytest.fixture
def handler_env(monkeypatch, fake_ebs):
    """Environment for the real ``lambda_handler`` (clients built by the handler itself)."""
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("CLOUDWATCH_ALARMS", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EBS", fake_ebs.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    handler.reset()
    yield monkeypatch
    handler.reset()
