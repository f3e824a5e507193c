"""Done when: the correlator, driven through its handler, opens an incident, grows it,
escalates it across accounts, adds a malware scan's result, and resolves it, with
duplicates and reordering, and the notifications are checked one by one.

Every event travels as in AWS: members put detector events on the central bus, AWS Backup's
scan events go through a member rule to it, the central rules feed the correlator's queue,
and the test stands in for the SQS event source (moto runs no Lambda code).
"""

from __future__ import annotations

import random
from datetime import timedelta

from correlator import handler
from correlator.store import Store
from testing.fakes.backup_scan import FakeBackupScan
from tests.correlator.conftest import (
    TABLE,
    anomaly,
    at,
    measured,
    scheduled,
    sqs_batch,
)

PROD, ANALYTICS, WEB = "111111111111", "222222222222", "333333333333"


def deliver(org, *, shuffle_seed: int | None = None, repeat: int = 1) -> dict:
    """Delivers what waits in the correlator queue as one SQS batch (bounded)."""
    events = org.received() * repeat
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(events)
    result = {"batchItemFailures": []}
    for start in range(0, len(events), 10):
        result = handler.lambda_handler(sqs_batch(events[start : start + 10]), None)
        assert result == {"batchItemFailures": []}
    return result


def sweep(central) -> None:
    assert handler.lambda_handler(scheduled(central.clock.now), None) == {"status": "ok"}


def lines_of(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines()]


def test_an_incident_opens_grows_escalates_is_confirmed_and_resolves(central, org, handler_env):
    clock = central.clock
    central.roster(
        (PROD, "eu-west-1", 86400), (ANALYTICS, "eu-west-1", 86400), (WEB, "us-east-2", 86400)
    )
    clock.now = at(days=1, hours=0.3)

    # 1. A medium anomaly in prod-payments, with its measurement event, a duplicate, and a
    #    normal volume: an incident opens, below the email minimum: audit queue only.
    a1 = anomaly(PROD, "vol-0a2", 1, "medium", minutes=2)
    a1_event = anomaly(PROD, "vol-0a2", 1, "medium", minutes=2, anomaly_event=True)
    for event in (measured(PROD, "vol-0a1", 1), a1, a1_event, a1):
        org.send(event)
    deliver(org)
    assert central.emails() == []
    (audit,) = central.audits()
    assert (audit["kind"], audit["email"], audit["severity"]) == ("opened", False, "medium")
    incident_id = audit["incident"]["id"]

    # 2. A high anomaly in the same account: the incident reaches the email minimum.
    clock.advance(minutes=3)
    org.send(anomaly(PROD, "vol-0a3", 1, "high", minutes=5, instance="i-0web1", name="web-1"))
    deliver(org)
    (email,) = central.emails()
    assert email["subject"] == "[HIGH] Backup anomaly: 2 volumes in prod-payments"
    assert email["id"] == f"{incident_id}#2"
    body = lines_of(email["body"])
    assert f"Backup anomaly incident {incident_id}: OPENED, severity HIGH" in body
    assert "Accounts: prod-payments (111111111111): 2 volume(s), worst high" in body
    assert "- vol-0a3 in prod-payments (111111111111), eu-west-1: HIGH" in body
    assert "Rewritten: 88% of the data written on it (usually 1.0%-5.0%; 29.3x its usual)" in body
    assert 'Attached to: i-0web1 "web-1"' in body
    assert "Restore from: snap-0a3d000 (the last clean snapshot)" in body
    assert any(line.startswith("1. Contain:") for line in body)
    assert any(
        "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1"
        "#VolumeDetails:volumeId=vol-0a3" in line
        for line in body
    )
    assert [a["kind"] for a in central.audits()] == ["opened"]

    # 3. One more volume a few minutes later: growth, told at most every 15 minutes.
    clock.advance(minutes=3)
    org.send(anomaly(PROD, "vol-0a4", 1, "medium", minutes=7))
    deliver(org)
    assert central.emails() == [] and central.audits() == []

    # 4. Another account (with a late duplicate of the first anomaly): the incident spans
    #    two accounts and rises to critical, told at once.
    clock.advance(minutes=2)
    org.send(anomaly(ANALYTICS, "vol-0b1", 1, "high", minutes=9))
    org.send(a1)
    deliver(org, shuffle_seed=4)
    (email,) = central.emails()
    assert email["subject"] == (
        "[CRITICAL] Update 3: backup anomaly, 4 volumes in 2 accounts (prod-payments, analytics)"
    )
    body = lines_of(email["body"])
    assert "- Severity HIGH -> CRITICAL" in body
    assert "- +2 volumes (now 4)" in body
    assert "- Accounts now affected: analytics (222222222222)" in body
    assert [a["kind"] for a in central.audits()] == ["updated"]

    # 5. The member's malware scan of the high volume's recovery point finds threats; AWS
    #    Backup's event is forwarded centrally and confirms the incident, told at once.
    scanned = "arn:aws:ec2:eu-west-1::snapshot/snap-0a3d001"
    with FakeBackupScan(
        account=PROD, region="eu-west-1", on_event=org.aws_backup_emits(PROD), clock=clock
    ) as fake:
        fake.add_vault("backup-anomaly-vault")
        fake.add_recovery_point(
            scanned,
            vault="backup-anomaly-vault",
            resource_arn="arn:aws:ec2:eu-west-1:111111111111:volume/vol-0a3",
            result="THREATS_FOUND",
        )
        backup = org.member(PROD).client("backup", region_name="eu-west-1", endpoint_url=fake.url)
        backup.start_scan_job(
            BackupVaultName="backup-anomaly-vault",
            IamRoleArn="arn:aws:iam::111111111111:role/backup",
            MalwareScanner="GUARDDUTY",
            RecoveryPointArn=scanned,
            ScanMode="FULL_SCAN",
            ScannerRoleArn="arn:aws:iam::111111111111:role/scanner",
            IdempotencyToken=f"{incident_id}/vol-0a3",
        )
        clock.advance(minutes=1)
        fake.run_to_completion()
    received = org.received()
    assert [e["detail"]["state"] for e in received] == ["COMPLETED"]  # the rule's states only
    assert received[0]["account"] == PROD  # the sender, kept across buses
    # Delivered with a duplicate (at least once).
    assert handler.lambda_handler(sqs_batch([received[0], received[0]]), None) == {
        "batchItemFailures": []
    }
    (email,) = central.emails()
    assert email["subject"] == (
        "[CRITICAL] Update 4: backup anomaly, 4 volumes in 2 accounts (prod-payments, analytics)"
    )
    body = lines_of(email["body"])
    assert "- A malware scan FOUND THREATS in a recovery point of this incident" in body
    assert "A malware scan of one of its recovery points FOUND THREATS." in body
    assert any(line.startswith("Malware scan (GuardDuty): THREATS FOUND") for line in body)
    # The volume with threats comes first.
    assert next(line for line in body if line.startswith("- vol-")).startswith("- vol-0a3")
    (audit,) = central.audits()
    assert audit["incident"]["threats"] is True
    assert [v["volumeId"] for v in audit["volumes"]][0] == "vol-0a3"

    # 6. A third account in another region: growth again, within 15 minutes: deferred...
    clock.advance(minutes=5)
    org.send(anomaly(WEB, "vol-0c1", 1, "high", region="us-east-2", minutes=20))
    deliver(org)
    assert central.emails() == []

    # 7. ...until the scheduled sweep sends it.
    clock.advance(minutes=20)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == (
        "[CRITICAL] Update 5: backup anomaly, 5 volumes in 3 accounts (prod-payments, analytics +1)"
    )
    body = lines_of(email["body"])
    assert "- +1 volumes (now 5)" in body
    assert "- Accounts now affected: web (333333333333)" in body
    assert "- Regions now affected: us-east-2" in body
    assert "Regions: eu-west-1, us-east-2" in body
    assert [a["kind"] for a in central.audits()] == ["updated"]
    sweep(central)
    assert central.emails() == [] and central.audits() == []

    # 8. The next day every volume is measured normal again: delivered out of order and
    #    twice; the sweep resolves the incident, once.
    clock.now = at(days=2, hours=1)
    normal = [
        measured(PROD, "vol-0a2", 2),
        measured(PROD, "vol-0a3", 2),
        measured(PROD, "vol-0a4", 2),
        measured(ANALYTICS, "vol-0b1", 2),
        measured(WEB, "vol-0c1", 2, region="us-east-2"),
    ]
    for event in normal:
        org.send(event)
    deliver(org, shuffle_seed=8, repeat=2)
    assert central.emails() == []
    sweep(central)
    (email,) = central.emails()
    assert (
        email["subject"]
        == (
            "[RESOLVED] Backup anomaly, 5 volumes in 3 accounts (prod-payments, analytics +1): "
            "measured normal again"
        )[:96]
        + "..."
    )
    body = lines_of(email["body"])
    assert any(
        line.startswith("1. Resolved means every volume was measured normal") for line in body
    )
    assert sum(1 for line in body if line.startswith("Measured normal again:")) == 5
    assert [a["kind"] for a in central.audits()] == ["resolved"]
    sweep(central)
    assert central.emails() == []

    # Redelivering every event once more changes nothing and tells nothing.
    for event in [a1, a1_event, *normal, received[0]]:
        org.send(event)
    deliver(org, shuffle_seed=1)
    sweep(central)
    assert central.emails() == [] and central.audits() == []

    head = Store(TABLE, central.dynamodb, timedelta(days=180)).read_index().get(incident_id)
    assert head is not None
    assert (head.status.value, head.volumes, head.unrecovered, head.threats) == (
        "resolved",
        5,
        0,
        True,
    )
    assert sorted(head.accounts) == [PROD, ANALYTICS, WEB]
    assert head.seq == 6  # opened (audit), opened, 3 updates, resolved: each once
