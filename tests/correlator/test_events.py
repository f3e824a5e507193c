"""Event classification: every detail type, the trust rule, forged and malformed events."""

from __future__ import annotations

import copy

import pytest

from correlator import events as ev
from correlator.records import Heartbeat, Measurement, Reset, Scan, Severity
from tests.correlator.conftest import (
    SOURCE,
    anomaly,
    at,
    envelope,
    heartbeat,
    measured,
    reset,
    scheduled,
)

PROD = "111111111111"
SCAN_EVENT = {
    "version": "0",
    "id": "60ce181d-67c7-496b-90fb-69636b42daee",
    "detail-type": "Scan Job State Change",
    "source": "aws.backup",
    "account": PROD,
    "time": "2025-12-12T12:12:12Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:ec2:eu-west-1::snapshot/snap-0a3d001"],
    "detail": {
        "accountId": PROD,
        "backupVaultArn": f"arn:aws:backup:eu-west-1:{PROD}:backup-vault:vault",
        "backupVaultName": "vault",
        "completionDate": "2025-12-12T12:12:12Z",
        "creationDate": "2025-12-12T12:12:00Z",
        "iamRoleArn": f"arn:aws:iam::{PROD}:role/backup",
        "scannerRoleArn": f"arn:aws:iam::{PROD}:role/scanner",
        "recoveryPointArn": "arn:aws:ec2:eu-west-1::snapshot/snap-0a3d001",
        "resourceArn": f"arn:aws:ec2:eu-west-1:{PROD}:volume/vol-0a3",
        "resourceType": "EBS",
        "scanId": "43bc14a6-03e0-436a-abf5-8825d3aa6835",
        "scanJobId": "4d5fc12e-7e33-4336-a981-bbe43c300298",
        "malwareScanner": "GUARDDUTY",
        "scanResult": {"scanResultStatus": "THREATS_FOUND"},
        "state": "COMPLETED",
        "statusMessage": "An AWS Backup scan job was successful completed.",
    },
}


def classify(event):
    return ev.classify(event, SOURCE)


def test_a_measurement_with_a_verdict():
    m = classify(
        anomaly(PROD, "vol-0a3", 1, "high", instance="i-0abc", name="web-1", region="eu-west-1")
    )

    assert isinstance(m, Measurement)
    assert (m.account, m.region, m.volume_id) == (PROD, "eu-west-1", "vol-0a3")
    assert m.severity is Severity.HIGH and not m.normal
    assert m.verdict is not None and m.verdict.share == 0.88 and m.verdict.expected_high == 0.05
    assert m.content is not None and m.content.incompressible_after == 498
    assert (m.instance_id, m.instance_name, m.last_clean_snapshot_id) == (
        "i-0abc",
        "web-1",
        "snap-0a3d000",
    )
    assert m.completion_time == at(days=1)
    assert m.forged is None and not m.anomaly_event


def test_a_measurement_of_an_older_detector_has_no_verdict():
    m = classify(measured(PROD, "vol-0a1", 1, severity=None))

    assert isinstance(m, Measurement)
    assert m.verdict is None and m.severity is None and not m.normal


def test_the_anomaly_event_needs_its_verdict_and_may_carry_expected_beside_it():
    event = anomaly(PROD, "vol-0a3", 1, anomaly_event=True)
    event["detail"]["expected"] = event["detail"]["verdict"].pop("expected")
    m = classify(event)
    assert isinstance(m, Measurement) and m.anomaly_event
    assert m.verdict is not None and m.verdict.expected_median == 0.03

    del event["detail"]["verdict"]
    skip = classify(event)
    assert isinstance(skip, ev.Skip) and skip.code == "malformed"
    assert "detail.verdict is required" in skip.message


def test_the_account_is_the_envelope_s_and_a_detail_naming_another_is_forged():
    event = anomaly(PROD, "vol-0a3", 1)
    event["detail"]["account"] = "444444444444"

    m = classify(event)

    assert isinstance(m, Measurement)
    assert m.account == PROD  # never the claimed account
    assert m.forged is not None
    assert (m.forged.claimed_account, m.forged.field) == ("444444444444", "detail.account")


def test_a_volume_arn_of_another_account_is_forged_too():
    m = classify(anomaly(PROD, "vol-0a3", 1, claimed_account="444444444444"))
    assert isinstance(m, Measurement) and m.forged is not None
    assert m.forged.claimed_account == "444444444444"

    event = anomaly(PROD, "vol-0a3", 1)
    event["detail"]["volumeArn"] = event["detail"]["volumeArn"].replace(PROD, "555555555555")
    m = classify(event)
    assert isinstance(m, Measurement) and m.forged is not None
    assert m.forged.field == "detail.volumeArn"


def test_a_reset():
    r = classify(reset(PROD, "vol-0a2", 3))

    assert isinstance(r, Reset) and r.security_relevant
    assert r.id.endswith("/snap-0a2d002/snap-0a2d003")
    assert not classify(reset(PROD, "vol-0a2", 3, reason="unrelated_snapshots")).security_relevant


def test_a_heartbeat_is_dated_by_its_envelope():
    h = classify(heartbeat(PROD, "eu-west-1", at(days=2), interval=3600, volumes=12))

    assert isinstance(h, Heartbeat)
    assert (h.account, h.region, h.interval_seconds, h.volumes_known) == (
        PROD,
        "eu-west-1",
        3600,
        12,
    )
    assert h.sent_at == at(days=2)
    forged = classify(heartbeat(PROD, "eu-west-1", at(), claimed_account="444444444444"))
    assert isinstance(forged, Heartbeat) and forged.forged is not None


@pytest.mark.parametrize("interval", [0, 59, 31 * 86400, "86400", None])
def test_a_heartbeat_without_a_sane_interval_is_malformed(interval):
    event = heartbeat(PROD, "eu-west-1", at())
    event["detail"]["intervalSeconds"] = interval
    skip = classify(event)
    assert isinstance(skip, ev.Skip) and skip.code == "malformed"


def test_a_finished_scan_as_documented():
    scan = classify(SCAN_EVENT)

    assert isinstance(scan, Scan)
    assert (scan.account, scan.region, scan.state, scan.result) == (
        PROD,
        "eu-west-1",
        "COMPLETED",
        "THREATS_FOUND",
    )
    assert scan.threats and scan.snapshot_id == "snap-0a3d001"
    assert scan.forged is None


@pytest.mark.parametrize("state", ["CREATED", "RUNNING"])
def test_an_unfinished_scan_is_skipped(state):
    event = copy.deepcopy(SCAN_EVENT)
    event["detail"]["state"] = state
    skip = classify(event)
    assert isinstance(skip, ev.Skip) and skip.code == "scan_not_finished"


def test_a_scan_naming_another_account_is_forged():
    event = copy.deepcopy(SCAN_EVENT)
    event["detail"]["resourceArn"] = "arn:aws:ec2:eu-west-1:444444444444:volume/vol-1"
    scan = classify(event)
    assert isinstance(scan, Scan) and scan.forged is not None
    assert scan.forged.field == "detail.resourceArn"


def test_the_scheduled_event_runs_the_sweep():
    assert isinstance(classify(scheduled(at())), ev.Scheduled)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda e: e.update(source="aws.ec2"), "other_source"),
        (lambda e: e.update({"detail-type": "Backup Count Continuation"}), "other_detail_type"),
        (lambda e: e["detail"].pop("measurementId"), "malformed"),
        (lambda e: e["detail"].update(changedBlocks=-1), "malformed"),
        (lambda e: e["detail"].update(changedBlocks=True), "malformed"),
        (lambda e: e["detail"].update(region="Mars"), "malformed"),
        (lambda e: e["detail"].update(completionTime="yesterday"), "malformed"),
        (lambda e: e["detail"]["verdict"].update(severity="severe"), "malformed"),
        (lambda e: e["detail"].update(content={"pages": 3}), "malformed"),
        (lambda e: e["detail"].update(volumeArn="vol-0a3"), "malformed"),
        (lambda e: e.update(account="prod"), "malformed"),
        (lambda e: e.update(detail="{}"), "malformed"),
    ],
)
def test_skips_and_malformed_events_say_why(change, code):
    event = anomaly(PROD, "vol-0a3", 1)
    change(event)

    skip = classify(event)

    assert isinstance(skip, ev.Skip)
    assert skip.code == code
    assert skip.message


def test_not_an_object_is_malformed():
    skip = classify(["not", "an", "event"])
    assert isinstance(skip, ev.Skip) and skip.code == "malformed"


def test_an_alarm_state_change_on_the_bus_is_not_for_the_correlator():
    event = envelope("CloudWatch Alarm State Change", PROD, {"state": {}}, source="aws.cloudwatch")
    skip = classify(event)
    assert isinstance(skip, ev.Skip) and skip.code == "other_source"
