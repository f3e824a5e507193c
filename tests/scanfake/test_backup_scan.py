"""The AWS Backup scan fake, through a real boto3 ``backup`` client (signing, parsing,
errors, retries, the paginator), and its events on moto's EventBridge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from testing.fakes.backup_scan import FakeBackupScan

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
SCANNER = f"arn:aws:iam::{ACCOUNT}:role/scanner"
VOLUME = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0abc"


class Clock:
    def __init__(self):
        self.now = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def fake():
    clock = Clock()
    events: list[dict] = []
    with FakeBackupScan(account=ACCOUNT, region=REGION, on_event=events.append, clock=clock) as f:
        f.clock_ = clock
        f.received = events
        f.add_vault("Default")
        yield f


@pytest.fixture
def client(fake):
    return boto3.client(
        "backup",
        region_name=REGION,
        endpoint_url=fake.url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def point(fake, snap: str, hours: float = 0, result="NO_THREATS_FOUND", **kw) -> str:
    arn = f"arn:aws:ec2:{REGION}::snapshot/{snap}"
    fake.add_recovery_point(
        arn,
        vault="Default",
        resource_arn=kw.pop("resource", VOLUME),
        created_at=fake.clock_.now + timedelta(hours=hours),
        result=result,
        **kw,
    )
    return arn


def start(client, arn, **kw):
    args = dict(
        BackupVaultName="Default",
        IamRoleArn=ROLE,
        MalwareScanner="GUARDDUTY",
        RecoveryPointArn=arn,
        ScanMode="FULL_SCAN",
        ScannerRoleArn=SCANNER,
    )
    args.update(kw)
    return client.start_scan_job(**args)


def test_a_full_scan_moves_through_its_states_and_reports_its_result(fake, client):
    arn = point(fake, "snap-1", result="THREATS_FOUND")

    started = start(client, arn)

    assert started["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert started["CreationDate"] == fake.clock_.now  # epoch seconds parsed to a datetime
    job = client.describe_scan_job(ScanJobId=started["ScanJobId"])
    assert (job["State"], job["ScanMode"], job["MalwareScanner"]) == (
        "CREATED",
        "FULL_SCAN",
        "GUARDDUTY",
    )
    assert "ScanResult" not in job and "CompletionDate" not in job
    fake.advance()
    assert client.describe_scan_job(ScanJobId=started["ScanJobId"])["State"] == "RUNNING"
    fake.clock_.now += timedelta(minutes=12)
    fake.advance()
    done = client.describe_scan_job(ScanJobId=started["ScanJobId"])
    assert done["State"] == "COMPLETED"
    assert done["ScanResult"] == {"ScanResultStatus": "THREATS_FOUND"}
    assert done["CompletionDate"] == fake.clock_.now
    assert (done["ResourceArn"], done["RecoveryPointArn"], done["AccountId"]) == (
        VOLUME,
        arn,
        ACCOUNT,
    )
    assert fake.advance() == []  # finished jobs do not move


def test_each_state_change_is_the_documented_event(fake, client):
    arn = point(fake, "snap-1", result="NO_THREATS_FOUND")
    job_id = start(client, arn)["ScanJobId"]
    fake.run_to_completion()

    states = [e["detail"]["state"] for e in fake.received]
    assert states == ["CREATED", "RUNNING", "COMPLETED"]
    final = fake.received[-1]
    assert (final["source"], final["detail-type"]) == ("aws.backup", "Scan Job State Change")
    assert (final["account"], final["region"], final["resources"]) == (ACCOUNT, REGION, [arn])
    detail = final["detail"]
    assert detail["scanJobId"] == job_id
    assert detail["scanResult"] == {"scanResultStatus": "NO_THREATS_FOUND"}
    assert {"accountId", "backupVaultArn", "backupVaultName", "creationDate", "completionDate",
            "iamRoleArn", "scannerRoleArn", "recoveryPointArn", "resourceArn", "resourceType",
            "scanId", "malwareScanner", "statusMessage"} <= set(detail)  # fmt: skip
    assert "scanResult" not in fake.received[0]["detail"]


def test_an_incremental_scan_needs_an_earlier_scanned_base_of_the_same_resource(fake, client):
    base = point(fake, "snap-1", hours=-24)
    target = point(fake, "snap-2")
    other = point(fake, "snap-9", hours=-48, resource=VOLUME.replace("vol-0abc", "vol-0def"))
    later = point(fake, "snap-3", hours=24)

    with pytest.raises(client.exceptions.InvalidParameterValueException, match="required"):
        start(client, target, ScanMode="INCREMENTAL_SCAN")
    with pytest.raises(client.exceptions.InvalidRequestException, match="not been scanned"):
        start(client, target, ScanMode="INCREMENTAL_SCAN", ScanBaseRecoveryPointArn=base)
    start(client, base)
    fake.run_to_completion()
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="same resource"):
        start(client, target, ScanMode="INCREMENTAL_SCAN", ScanBaseRecoveryPointArn=other)
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="before"):
        start(client, base, ScanMode="INCREMENTAL_SCAN", ScanBaseRecoveryPointArn=later)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        start(client, target, ScanMode="INCREMENTAL_SCAN", ScanBaseRecoveryPointArn=base + "x")

    job_id = start(client, target, ScanMode="INCREMENTAL_SCAN", ScanBaseRecoveryPointArn=base)[
        "ScanJobId"
    ]
    job = client.describe_scan_job(ScanJobId=job_id)
    assert (job["ScanMode"], job["ScanBaseRecoveryPointArn"]) == ("INCREMENTAL_SCAN", base)
    assert fake.received[-1]["detail"]["scanBaseRecoveryPointArn"] == base


def test_the_idempotency_token_returns_the_same_job(fake, client):
    arn = point(fake, "snap-1")

    first = start(client, arn, IdempotencyToken="incident-1/vol-0abc")
    again = start(client, arn, IdempotencyToken="incident-1/vol-0abc")
    other = start(client, arn, IdempotencyToken="incident-2/vol-0abc")

    assert again["ScanJobId"] == first["ScanJobId"]
    assert again["CreationDate"] == first["CreationDate"]
    assert other["ScanJobId"] != first["ScanJobId"]
    assert len(fake.jobs()) == 2
    assert [e["detail"]["state"] for e in fake.received] == ["CREATED", "CREATED"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="different parameters"):
        start(client, arn, IdempotencyToken="incident-1/vol-0abc", ScannerRoleArn=ROLE)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"MalwareScanner": "CLAMAV"}, "InvalidParameterValueException", "MalwareScanner"),
        ({"ScanMode": "QUICK_SCAN"}, "InvalidParameterValueException", "ScanMode"),
        ({"BackupVaultName": "a"}, "InvalidParameterValueException", "BackupVaultName"),
        ({"IamRoleArn": "not-an-arn"}, "InvalidParameterValueException", "IamRoleArn"),
        ({"BackupVaultName": "Missing"}, "ResourceNotFoundException", "vault"),
        ({"RecoveryPointArn": "arn:aws:ec2:us-east-1::snapshot/snap-x"},
         "ResourceNotFoundException", "Recovery point"),
    ],
)  # fmt: skip
def test_invalid_requests_are_refused_with_the_modelled_errors(
    fake, client, overrides, error, message
):
    arn = point(fake, "snap-1")

    with pytest.raises(getattr(client.exceptions, error), match=message) as raised:
        start(client, arn, **overrides)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == error
    assert fake.jobs() == []


def test_a_missing_parameter_is_refused_by_the_service_too(fake):
    """botocore checks required members itself; the service answers raw requests the same."""
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="PUT", url=f"{fake.url}/scan/job", data=b'{"ScanMode": "FULL_SCAN"}'
    )
    SigV4Auth(Credentials("a", "b"), "backup", REGION).add_auth(request)
    prepared = urllib.request.Request(
        request.url, data=request.data, headers=dict(request.headers), method="PUT"
    )
    with pytest.raises(urllib.request.HTTPError) as raised:
        urllib.request.urlopen(prepared)
    assert raised.value.code == 400
    assert raised.value.headers["x-amzn-ErrorType"] == "MissingParameterValueException"
    assert json.loads(raised.value.read())["Code"] == "MissingParameterValueException"


def test_unsigned_or_wrongly_scoped_requests_are_refused(fake):
    other = boto3.client("ebs", region_name=REGION, endpoint_url=fake.url)
    with pytest.raises(Exception) as raised:
        other.list_snapshot_blocks(SnapshotId="snap-1")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in (403, 404)


def test_unknown_jobs_are_not_found(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_scan_job(ScanJobId="4d5fc12e-7e33-4336-a981-bbe43c300298")


def test_a_service_fault_is_retried_by_the_standard_mode(fake, client):
    arn = point(fake, "snap-1")
    fake.inject_error("ServiceUnavailableException")

    started = start(client, arn)

    assert client.describe_scan_job(ScanJobId=started["ScanJobId"])["State"] == "CREATED"
    assert fake.requests == 3  # the refused attempt, its retry, the describe


def test_a_limit_is_a_modelled_error_botocore_retries_as_throttling(fake, client):
    arn = point(fake, "snap-1")
    fake.inject_error("LimitExceededException", "Too many scan jobs.")
    start(client, arn)
    assert fake.requests == 2

    for _ in range(4):  # max_attempts counts the retries: four attempts in all
        fake.inject_error("LimitExceededException", "Too many scan jobs.")
    with pytest.raises(client.exceptions.LimitExceededException, match="Too many"):
        start(client, arn)


def test_list_scan_jobs_filters_and_pages_with_the_real_paginator(fake, client):
    clean = [point(fake, f"snap-{i}") for i in range(7)]
    infected = point(fake, "snap-bad", result="THREATS_FOUND")
    other = point(fake, "snap-o", resource=VOLUME.replace("vol-0abc", "vol-0def"))
    ids = []
    for arn in [*clean, infected, other]:
        ids.append(start(client, arn)["ScanJobId"])
        fake.clock_.now += timedelta(minutes=1)
    fake.run_to_completion()
    start(client, clean[0])  # still CREATED

    pages = list(
        client.get_paginator("list_scan_jobs").paginate(
            ByResourceArn=VOLUME, ByState="COMPLETED", PaginationConfig={"PageSize": 3}
        )
    )
    listed = [job["ScanJobId"] for page in pages for job in page["ScanJobs"]]

    assert [len(p["ScanJobs"]) for p in pages] == [3, 3, 2]
    assert listed == list(reversed(ids[:8]))  # newest first (assumed order)
    threats = client.list_scan_jobs(ByScanResultStatus="THREATS_FOUND")["ScanJobs"]
    assert [j["RecoveryPointArn"] for j in threats] == [infected]
    after = client.list_scan_jobs(ByCompleteAfter=fake.clock_.now - timedelta(minutes=1))
    assert len(after["ScanJobs"]) == 9
    assert client.list_scan_jobs(ByAccountId="*")["ScanJobs"]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.list_scan_jobs(ByState="DONE")
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.list_scan_jobs(NextToken="forged")


def test_list_scan_jobs_keeps_thirty_days(fake, client):
    start(client, point(fake, "snap-1"))
    fake.clock_.now += timedelta(days=31)
    assert client.list_scan_jobs()["ScanJobs"] == []


def test_failed_and_canceled_scans_carry_no_result(fake, client):
    failed = point(fake, "snap-f", result="UNKNOWN", final_state="FAILED")
    partial = point(fake, "snap-p", result="NO_THREATS_FOUND", final_state="COMPLETED_WITH_ISSUES")
    f_id = start(client, failed)["ScanJobId"]
    p_id = start(client, partial)["ScanJobId"]
    fake.run_to_completion()

    assert "ScanResult" not in client.describe_scan_job(ScanJobId=f_id)
    job = client.describe_scan_job(ScanJobId=p_id)
    assert (job["State"], job["ScanResult"]["ScanResultStatus"]) == (
        "COMPLETED_WITH_ISSUES",
        "NO_THREATS_FOUND",
    )


def test_its_events_route_through_moto_eventbridge(fake, client):
    """The callback puts each event on a bus, as a member's forwarding rule would."""
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="scans")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="finished-scans",
            EventPattern=json.dumps(
                {
                    "source": ["aws.backup"],
                    "detail-type": ["Scan Job State Change"],
                    "detail": {"state": ["COMPLETED", "COMPLETED_WITH_ISSUES", "FAILED"]},
                }
            ),
        )
        events.put_targets(Rule="finished-scans", Targets=[{"Id": "q", "Arn": queue_arn}])
        fake.on_event = lambda e: events.put_events(
            Entries=[
                {
                    "Source": e["source"],
                    "DetailType": e["detail-type"],
                    "Detail": json.dumps(e["detail"]),
                    "Resources": e["resources"],
                }
            ]
        )
        start(client, point(fake, "snap-1", result="THREATS_FOUND"))
        fake.run_to_completion()

        bodies = [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        ]
    assert [b["detail"]["state"] for b in bodies] == ["COMPLETED"]
    assert bodies[0]["detail"]["scanResult"]["scanResultStatus"] == "THREATS_FOUND"
