"""What follows a high or critical verdict in the member: the confirmation scan (against the
fake of AWS Backup's scan API, which moto lacks), the Security Hub finding (moto, with the
fidelity patches), and the heartbeat that keeps the detector from looking silent."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
from botocore.config import Config

from backup_anomaly.events import SCAN_FINAL_STATES
from testing.fakes.backup_scan import FakeBackupScan
from testing.moto_fidelity import faithful_moto
from tests.detector.conftest import ACCOUNT, REGION, recent
from tests.detector.daily import Volume, received

SCANNER = f"arn:aws:iam::{ACCOUNT}:role/backup-anomaly-scanner"
VAULT = "Default"  # the sample backup event's vault


@pytest.fixture
def scans():
    with FakeBackupScan(account=ACCOUNT, region=REGION) as fake:
        fake.add_vault(VAULT)
        yield fake


def _scan_client(fake):
    return boto3.client(
        "backup",
        region_name=REGION,
        endpoint_url=fake.url,
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def _attach(world, volume_id: str, name: str) -> str:
    image = world.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = world.ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": f"{REGION}a"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Instances"][0]["InstanceId"]
    world.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance, Device="/dev/sdf")
    return instance


def _snapshot_arn(snapshot_id: str) -> str:
    return f"arn:aws:ec2:{REGION}::snapshot/{snapshot_id}"


def _attacked(world, scans, **settings):
    """Eight ordinary days, then 30 % of the data encrypted; every snapshot is a recovery
    point the fake knows (the attacked one carries malware)."""
    securityhub = boto3.client("securityhub", region_name=REGION)
    volume = Volume(
        world,
        days=8,
        clients={"backup": _scan_client(scans), "securityhub": securityhub},
        confirmation_scan=True,
        security_hub_findings=True,
        scanner_role_arn=SCANNER,
        **settings,
    )
    instance = _attach(world, volume.volume_id, "orders-db-1")
    snapshots = volume.prepare(set(range(1000, 2200)), set(range(100, 180)))
    world.fake.set_contents(snapshots[-2], [(1000, 2200, "encrypted")])
    for k, snapshot in enumerate(snapshots):
        scans.add_recovery_point(
            _snapshot_arn(snapshot),
            vault=VAULT,
            resource_arn=world.volume_arn(volume.volume_id),
            created_at=recent(60 * 24 * (len(snapshots) - k)),
            result="THREATS_FOUND" if snapshot == snapshots[-2] else "NO_THREATS_FOUND",
        )
    return volume, snapshots, instance, securityhub


def _events(volume, snapshot):
    total = len(volume.snapshots)
    k = volume.snapshots.index(snapshot)
    return volume.world.ebs_event(
        snapshot, volume.volume_id, recent(60 * 24 * (total - 1 - k) + 30)
    )


def test_a_critical_verdict_is_scanned_once_and_becomes_a_finding_until_resolved(world, scans):
    with faithful_moto():
        volume, snapshots, instance, securityhub = _attacked(world, scans)
        volume.back_up(snapshots[:-1])
        attack_event = _events(volume, snapshots[-2])

        # The attack's event delivered again (SQS at least once): no second scan job.
        (again,) = volume.detector.handle(attack_event)

        assert again["decision"] == "duplicate"
        (job,) = scans.jobs()
        assert job.recovery_point.arn == _snapshot_arn(snapshots[-2])
        # The last clean point was never scanned, so AWS Backup refuses it as a base.
        assert job.mode == "FULL_SCAN"
        assert job.scanner_role_arn == SCANNER
        assert job.iam_role_arn.endswith(":role/service-role/AWSBackupDefaultServiceRole")
        (finding,) = securityhub.get_findings()["Findings"]
        assert finding["AwsAccountId"] == ACCOUNT
        assert finding["Severity"]["Label"] == "CRITICAL"
        assert finding["Workflow"]["Status"] == "NEW"
        assert finding["ProductFields"]["backup-anomaly/lastCleanSnapshotId"] == snapshots[-3]
        resources = {r["Type"]: r["Id"] for r in finding["Resources"]}
        assert resources["AwsEc2Volume"] == world.volume_arn(volume.volume_id)
        assert resources["AwsEc2Instance"].endswith(f":instance/{instance}")
        assert "orders-db-1" in finding["Title"]
        anomaly = [
            e
            for e in received(world, volume.queue)
            if e["detail-type"] == "Backup Anomaly Detected"
        ]
        assert [a["detail"]["instanceName"] for a in anomaly] == ["orders-db-1"]

        # The scan finishes; its final event reaches the detector through the scan rule.
        finished = [
            e for e in scans.run_to_completion() if e["detail"]["state"] in SCAN_FINAL_STATES
        ]
        (done,) = finished
        (recorded,) = volume.detector.handle(done)

        assert (
            recorded["decision"] == "scan_recorded" and recorded["scan_result"] == "THREATS_FOUND"
        )
        (finding,) = securityhub.get_findings()["Findings"]
        assert finding["Title"].startswith("Malware found: ")
        assert finding["FindingProviderFields"]["Severity"]["Label"] == "CRITICAL"
        assert finding["ProductFields"]["backup-anomaly/scanResult"] == "THREATS_FOUND"

        # The next backup is ordinary: the episode ends, the finding is archived and resolved.
        (normal,) = volume.back_up(snapshots[-1:])

        assert normal["severity"] == "none" and normal["finding"] == "resolved"
        (finding,) = securityhub.get_findings()["Findings"]
        assert finding["RecordState"] == "ARCHIVED"
        assert finding["Workflow"]["Status"] == "RESOLVED"
        assert world.store.get(world.volume_arn(volume.volume_id)).open_finding is None


def test_switches_off_start_no_scan_and_import_no_finding(world, scans):
    with faithful_moto():
        volume, snapshots, _, securityhub = _attacked(world, scans)
        volume.detector.settings = dataclasses.replace(
            volume.detector.settings, confirmation_scan=False, security_hub_findings=False
        )
        records = volume.back_up(snapshots[:-1])

    assert records[-1]["severity"] == "critical"
    assert "scan" not in records[-1] and "finding" not in records[-1]
    assert scans.jobs() == [] and scans.requests == 0
    assert securityhub.get_findings()["Findings"] == []


def test_a_refused_scan_or_finding_never_loses_the_anomaly(world, scans, lines):
    with faithful_moto():
        volume, snapshots, _, _ = _attacked(world, scans)

        class SecurityHubOff:
            meta = boto3.client("securityhub", region_name=REGION).meta

            def batch_import_findings(self, Findings):  # noqa: N803 - boto3's parameter name
                return {
                    "FailedCount": 1,
                    "SuccessCount": 0,
                    "FailedFindings": [
                        {
                            "Id": Findings[0]["Id"],
                            "ErrorCode": "InvalidAccess",
                            "ErrorMessage": "Security Hub is not enabled",
                        }
                    ],
                }

        volume.detector.clients.securityhub = SecurityHubOff()
        volume.back_up(snapshots[:-2])
        scans.inject_error("AccessDeniedException", "not authorized to pass the scanner role")
        scans.inject_error("AccessDeniedException", "not authorized to pass the scanner role")
        lines()
        (record,) = volume.back_up(snapshots[-2:-1])

    assert record["severity"] == "critical"
    assert record["scan"] == "failed" and "AccessDeniedException" in record["scan_note"]
    assert record["finding"] == "failed" and "not enabled" in record["finding_error"]
    assert [d["Value"] for d in world.metric_puts("ConfirmationScanFailures")] == [1]
    assert [d["Value"] for d in world.metric_puts("FindingFailures")] == [1]
    kinds = [e["detail-type"] for e in received(world, volume.queue)]
    assert kinds.count("Backup Anomaly Detected") == 1


def test_the_schedule_is_a_heartbeat_on_the_central_bus(world):
    volume = Volume(world, days=0)
    tick = {
        "version": "0",
        "id": "tick-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-12-01T06:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/backup-anomaly-heartbeat"],
        "detail": {},
    }

    (record,) = volume.detector.handle(tick)

    assert record["decision"] == "heartbeat" and record["forward"] == "sent"
    (event,) = received(world, volume.queue)
    assert event["detail-type"] == "Backup Detector Heartbeat"
    assert event["detail"]["intervalSeconds"] == 86400
    assert event["detail"]["account"] == ACCOUNT and event["detail"]["region"] == REGION
    assert json.dumps(event["detail"]).count("vol-") == 0  # nothing about any volume


def test_a_scan_of_another_accounts_volume_is_not_ours_to_judge(world):
    volume = Volume(world, days=0, security_hub_findings=True)
    foreign = {
        "version": "0",
        "id": "scan-1",
        "detail-type": "Scan Job State Change",
        "source": "aws.backup",
        "account": ACCOUNT,
        "time": "2026-12-01T06:00:00Z",
        "region": REGION,
        "resources": [_snapshot_arn("snap-0123")],
        "detail": {
            "scanJobId": "job-1",
            "state": "COMPLETED",
            "resourceArn": f"arn:aws:ec2:{REGION}:999999999999:volume/vol-0abc",
            "recoveryPointArn": _snapshot_arn("snap-0123"),
            "scanResult": {"scanResultStatus": "THREATS_FOUND"},
        },
    }

    (record,) = volume.detector.handle(foreign)

    assert record["decision"] == "skipped" and record["reason"] == "other_resource"


def test_a_follow_up_that_breaks_unexpectedly_never_fails_the_measurement(world, scans, lines):
    # Not an AWS error: a client that cannot be built, a bug. A redelivered event would be a
    # duplicate and retry nothing, so the failure is counted, and the anomaly still goes out.
    class Broken:
        meta = boto3.client("securityhub", region_name=REGION).meta

        def __getattr__(self, name):
            raise RuntimeError(f"{name}: no client")

    with faithful_moto():
        volume, snapshots, _, _ = _attacked(world, scans)
        volume.detector.clients.securityhub = Broken()
        volume.detector.clients.backup = Broken()
        volume.back_up(snapshots[:-2])
        lines()
        (record,) = volume.back_up(snapshots[-2:-1])

    assert record["decision"] == "measured" and record["severity"] == "critical"
    assert record["scan"] == "failed" and "no client" in record["scan_note"]
    assert record["finding"] == "failed" and "RuntimeError" in record["finding_error"]
    assert [d["Value"] for d in world.metric_puts("ConfirmationScanFailures")] == [1]
    assert [d["Value"] for d in world.metric_puts("FindingFailures")] == [1]
    kinds = [e["detail-type"] for e in received(world, volume.queue)]
    assert kinds.count("Backup Anomaly Detected") == 1
