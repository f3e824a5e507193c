"""Fixtures for the correlator: moto (DynamoDB, SNS -> SQS inbox, SQS audit queue), events.

Events are built as the central bus delivers them: the envelope's ``account`` is the
sender, ``region`` the central bus's, the volume's region in ``detail.region``.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from correlator import handler
from correlator.correlator import Clients, Correlator
from correlator.roster import put_roster
from correlator.settings import Settings
from correlator.store import create_table
from testing.recorder import Recorder  # noqa: F401 - the tests import it here
from testing.recorder import client_error as _client_error

REGION = "us-east-1"
SECURITY = "999999999999"
TABLE = "backup-anomaly-central"
SOURCE = "backup-anomaly-detection"
# A Monday in the past: backups complete at 05:xx UTC each day.
T0 = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)
NAMES = {"111111111111": "prod-payments", "222222222222": "analytics", "333333333333": "web"}


def at(hours: float = 0.0, days: float = 0.0) -> datetime:
    return T0 + timedelta(hours=hours, days=days)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Clock:
    """The correlator's clock, moved by the test."""

    now: datetime = field(default_factory=lambda: at(hours=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


_ids = itertools.count(1)


def volume_arn(account: str, volume: str, region: str = "eu-west-1", partition="aws") -> str:
    return f"arn:{partition}:ec2:{region}:{account}:volume/{volume}"


def envelope(
    detail_type: str, account: str, detail: dict, time: datetime | None = None, source=SOURCE
) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso(time or T0),
        "region": REGION,
        "resources": [detail["volumeArn"]] if "volumeArn" in detail else [],
        "detail": detail,
    }


def measured(
    account: str,
    volume: str,
    day: int,
    severity: str | None = "none",
    *,
    region: str = "eu-west-1",
    share: float = 0.03,
    multiple: float = 1.0,
    anomaly_event: bool = False,
    minutes: int = 0,
    instance: str | None = None,
    name: str | None = None,
    last_clean: str | None = None,
    content: dict | None = None,
    claimed_account: str | None = None,
    partition: str = "aws",
) -> dict:
    """A detector event for the backup of ``volume`` on ``day`` (snapshots by day)."""
    arn = volume_arn(claimed_account or account, volume, region, partition)
    snap, prev = f"snap-{volume[4:]}d{day:03d}", f"snap-{volume[4:]}d{day - 1:03d}"
    completion = at(days=day, hours=minutes / 60)
    detail = {
        "measurementId": f"{arn}/{prev}/{snap}",
        "account": claimed_account or account,
        "region": region,
        "volumeId": volume,
        "volumeArn": arn,
        "previousSnapshotId": prev,
        "snapshotId": snap,
        "changedBlocks": 1000 if severity in (None, "none", "low") else 180000,
        "changedBytes": 1000 * 524288,
        "percentOfVolume": 0.5 if severity in (None, "none", "low") else 87.9,
        "volumeSizeGiB": 100,
        "backupJobId": f"job-{next(_ids)}",
        "resourceType": "EBS",
        "completionTime": completion.isoformat(),
        "measuredAt": (completion + timedelta(minutes=3)).isoformat(),
    }
    if severity is not None:
        detail["writtenBlocks"] = 200000
        detail["verdict"] = {
            "severity": severity,
            "score": 0.1 if severity == "none" else 9.5,
            "reasons": [] if severity == "none" else ["rewrote 88% of the written data"],
            "expected": {"low": 0.01, "high": 0.05, "median": 0.03, "unit": "share"},
            "share": share,
            "multipleOfUsual": multiple,
        }
        detail["content"] = content
        detail["lateForAlarms"] = False
    if instance:
        detail["instanceId"] = instance
    if name:
        detail["instanceName"] = name
    if last_clean:
        detail["lastCleanSnapshotId"] = last_clean
    detail_type = "Backup Anomaly Detected" if anomaly_event else "Backup Change Measured"
    return envelope(detail_type, account, detail, completion + timedelta(minutes=4))


def anomaly(account: str, volume: str, day: int, severity: str = "high", **kw) -> dict:
    """A measurement with a verdict of ``severity``, rewritten 88 %."""
    kw.setdefault("share", 0.88)
    kw.setdefault("multiple", 29.3)
    kw.setdefault(
        "content",
        {"sampledBlocks": 64, "pages": 512, "incompressibleBefore": 31, "incompressibleAfter": 498},
    )
    kw.setdefault("last_clean", f"snap-{volume[4:]}d{day - 1:03d}")
    return measured(account, volume, day, severity, **kw)


def reset(account: str, volume: str, day: int, reason="previous_snapshot_missing", **kw) -> dict:
    region = kw.get("region", "eu-west-1")
    arn = volume_arn(account, volume, region)
    snap, prev = f"snap-{volume[4:]}d{day:03d}", f"snap-{volume[4:]}d{day - 1:03d}"
    completion = at(days=day)
    detail = {
        "resetId": f"{arn}/{prev}/{snap}",
        "account": account,
        "region": region,
        "volumeId": volume,
        "volumeArn": arn,
        "previousSnapshotId": prev,
        "snapshotId": snap,
        "reason": reason,
        "backupJobId": f"job-{next(_ids)}",
        "resourceType": "EBS",
        "completionTime": completion.isoformat(),
        "resetAt": (completion + timedelta(minutes=2)).isoformat(),
    }
    return envelope("Backup Baseline Reset", account, detail, completion)


def heartbeat(account: str, region: str, time: datetime, interval: int = 86400, **kw) -> dict:
    detail = {
        "account": kw.get("claimed_account", account),
        "region": region,
        "intervalSeconds": interval,
        "volumesKnown": kw.get("volumes", 3),
        "lastMeasurementTime": kw.get("last_measurement"),
        "detectorVersion": "0.2.0",
    }
    return envelope("Backup Detector Heartbeat", account, detail, time)


def scheduled(time: datetime) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": SECURITY,
        "time": iso(time),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{SECURITY}:rule/backup-anomaly-sweep"],
        "detail": {},
    }


def sqs_batch(events: list[dict]) -> dict:
    """The SQS event-source payload delivering ``events`` (one message each)."""
    return {
        "Records": [
            {
                "messageId": f"m-{next(_ids)}",
                "receiptHandle": "r",
                "body": json.dumps(e),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{SECURITY}:correlator",
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for e in events
        ]
    }


class Central:
    """The security account on moto: the table, the alert topic with an SQS inbox, the
    audit queue, and helpers to read what arrived."""

    def __init__(self):
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        create_table(self.dynamodb, TABLE)
        self.topic = self.sns.create_topic(Name="backup-anomaly-alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=inbox_arn)
        self.audit = self.sqs.create_queue(QueueName="audit")["QueueUrl"]
        self.clock = Clock()

    def settings(self, **overrides) -> Settings:
        values = dict(central_table=TABLE, alert_topic_arn=self.topic, audit_queue_url=self.audit)
        values.update(overrides)
        return Settings(**values)

    def clients(self, **overrides) -> Clients:
        values = dict(dynamodb=self.dynamodb, sns=self.sns, sqs=self.sqs)
        values.update(overrides)
        return Clients(**values)

    def correlator(self, clients: Clients | None = None, **overrides) -> Correlator:
        return Correlator(
            self.settings(**overrides), clients or self.clients(), self.clock, lambda _: None
        )

    def roster(self, *entries) -> None:
        from correlator.records import RosterEntry

        put_roster(
            self.dynamodb,
            TABLE,
            [RosterEntry(a, NAMES.get(a, ""), r, i) for a, r, i in entries],
            now=self.clock.now,
        )

    def _drain(self, url: str) -> list[dict]:
        out = []
        for _ in range(100):  # bounded: moto answers at once
            messages = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(message)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError("queue never drained")

    def emails(self) -> list[dict]:
        """The SNS notifications delivered since the last call: Subject, Message, ids."""
        out = []
        for message in self._drain(self.inbox):
            body = json.loads(message["Body"])
            attributes = body.get("MessageAttributes", {})
            out.append(
                {
                    "subject": body.get("Subject"),
                    "body": body["Message"],
                    "id": attributes.get("notificationId", {}).get("Value"),
                }
            )
        return out

    def audits(self) -> list[dict]:
        return [json.loads(m["Body"]) for m in self._drain(self.audit)]

    def item(self, pk: str, sk: str) -> dict | None:
        return self.dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def central(aws) -> Central:
    return Central()


@pytest.fixture
def lines(capsys):
    """Reads the JSON log lines written so far (and consumes them)."""

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return read


@pytest.fixture
def handler_env(monkeypatch, central):
    """Environment for the real ``lambda_handler`` (clients built by the handler itself)."""
    monkeypatch.setenv("CENTRAL_TABLE", TABLE)
    monkeypatch.setenv("ALERT_TOPIC_ARN", central.topic)
    monkeypatch.setenv("AUDIT_QUEUE_URL", central.audit)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    handler.reset()
    correlator = handler.get_correlator()
    correlator.clock = central.clock
    correlator.sleep = lambda _: None
    yield correlator
    handler.reset()


def copy_event(event: dict) -> dict:
    """A redelivery: the same event (EventBridge keeps its id, SQS gives a new message)."""
    return copy.deepcopy(event)


CORRELATOR_QUEUE = "backup-anomaly-correlator"
# The central bus rules that feed the correlator's queue (what the central stack needs).
MEMBER_PATTERN = {
    "source": [SOURCE],
    "detail-type": [
        "Backup Change Measured",
        "Backup Anomaly Detected",
        "Backup Baseline Reset",
        "Backup Detector Heartbeat",
    ],
}
SCAN_PATTERN = {
    "source": ["aws.backup"],
    "detail-type": ["Scan Job State Change"],
    "detail": {"state": ["COMPLETED", "COMPLETED_WITH_ISSUES", "FAILED", "CANCELED"]},
}


class Org:
    """Member accounts sending to the central bus, whose rules feed the correlator queue.

    Detector events are put by each member on the central bus (cross-account PutEvents);
    AWS Backup scan events are put on the member's default bus and forwarded by a rule,
    as the member stack does. ``faithful_moto`` keeps the sender's account on the way.
    """

    def __init__(self, central: Central):
        self.central = central
        self.events = boto3.client("events", region_name=REGION)
        self.bus = self.events.create_event_bus(Name="backup-anomaly-central")["EventBusArn"]
        self.queue = central.sqs.create_queue(QueueName=CORRELATOR_QUEUE)["QueueUrl"]
        queue_arn = central.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        for name, pattern in (("member-events", MEMBER_PATTERN), ("scan-results", SCAN_PATTERN)):
            self.events.put_rule(
                Name=name, EventBusName="backup-anomaly-central", EventPattern=json.dumps(pattern)
            )
            self.events.put_targets(
                Rule=name,
                EventBusName="backup-anomaly-central",
                Targets=[{"Id": "correlator", "Arn": queue_arn}],
            )
        self._members: dict[str, object] = {}

    def member(self, account: str):
        """A boto3 session in a member account (moto assumes the role)."""
        if account not in self._members:
            sts = boto3.client("sts", region_name=REGION)
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/backup-anomaly-member",
                RoleSessionName="member",
            )["Credentials"]
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=REGION,
            )
            events = session.client("events")
            events.put_rule(Name="scan-results", EventPattern=json.dumps(SCAN_PATTERN))
            events.put_targets(
                Rule="scan-results",
                Targets=[
                    {
                        "Id": "central",
                        "Arn": self.bus,
                        "RoleArn": f"arn:aws:iam::{account}:role/forward",
                    }
                ],
            )
            self._members[account] = session
        return self._members[account]

    def send(self, event: dict) -> None:
        """The member named by the envelope puts the detector event on the central bus."""
        events = self.member(event["account"]).client("events")
        response = events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "EventBusName": self.bus,
                }
            ]
        )
        assert response["FailedEntryCount"] == 0

    def aws_backup_emits(self, account: str):
        """An ``on_event`` for the scan fake: AWS Backup's event on the member's bus."""
        events = self.member(account).client("events")

        def emit(event: dict) -> None:
            events.put_events(
                Entries=[
                    {
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                        "Resources": event["resources"],
                    }
                ]
            )

        return emit

    def received(self) -> list[dict]:
        """The events waiting in the correlator's queue, as the SQS event source sees them."""
        return [json.loads(m["Body"]) for m in self.central._drain(self.queue)]


@pytest.fixture
def org(central):
    from testing.moto_fidelity import faithful_moto

    with faithful_moto():
        yield Org(central)


def client_error(code: str, operation: str = "Call", status: int = 500):
    """An AWS error (a server error unless ``status`` says otherwise)."""
    return _client_error(code, operation, status)
