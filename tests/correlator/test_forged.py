"""Forged details: stored apart under the sender, logged, told once per sender, never
attributed to the account they name, never an incident of that account."""

from __future__ import annotations

import copy

from correlator import handler
from correlator.roster import heard_from
from tests.correlator.conftest import (
    TABLE,
    anomaly,
    heartbeat,
    measured,
    scheduled,
    sqs_batch,
)
from tests.correlator.test_events import SCAN_EVENT

PROD, VICTIM = "111111111111", "444444444444"


def send(*events):
    return handler.lambda_handler(sqs_batch(list(events)), None)


def test_a_forged_anomaly_is_kept_apart_and_told_as_a_security_notification(
    central, handler_env, lines
):
    central.roster((PROD, "eu-west-1", 86400))
    forged = anomaly(PROD, "vol-0f1", 1, "critical", claimed_account=VICTIM)

    assert send(forged) == {"batchItemFailures": []}

    (line,) = [entry for entry in lines() if entry["decision"] == "forged"]
    assert line["account"] == PROD
    assert line["reason"] == f"detail.account names {VICTIM}"
    (email,) = central.emails()
    assert email["subject"] == "[SECURITY] Forged backup events from prod-payments (111111111111)"
    assert f"claim to be about account(s) {VICTIM} (detail.account)" in email["body"]
    assert "never attributed to the account they name" in email["body"]
    assert (
        "1. Find who put the event: CloudTrail PutEvents in the sending account." in (email["body"])
    )
    (audit,) = central.audits()
    assert (audit["type"], audit["kind"]) == ("backup-anomaly-operational", "forged")
    # Stored under its sender only; no incident; not heard from as the victim.
    stored = central.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"FORGED#{PROD}"}},
    )["Items"]
    assert [i["sk"]["S"].split("#", 1)[0] for i in stored] == ["Backup Change Measured"]
    assert central.item(f"VOL#{forged['detail']['volumeArn']}", "x") is None
    assert handler_env.store.read_index().incidents == ()
    assert [h.account for h in heard_from(central.dynamodb, TABLE)] == []


def test_more_forged_events_from_the_same_sender_are_counted_not_told_again(central, handler_env):
    heartbeat_event = heartbeat(PROD, "eu-west-1", central.clock.now, claimed_account=VICTIM)
    scan = copy.deepcopy(SCAN_EVENT)
    scan["detail"]["accountId"] = VICTIM
    send(anomaly(PROD, "vol-0f1", 1, "high", claimed_account=VICTIM))
    central.emails()
    central.clock.advance(minutes=1)

    assert send(heartbeat_event, scan, measured(PROD, "vol-0f2", 1, claimed_account=VICTIM)) == {
        "batchItemFailures": []
    }

    assert central.emails() == []
    item = handler_env.store.get_ops(f"forged#{PROD}")
    assert item is not None and item.count == 4
    assert item.details["fields"] == ["detail.account", "detail.accountId"]
    assert sorted(item.details["detailTypes"]) == [
        "Backup Change Measured",
        "Backup Detector Heartbeat",
        "Scan Job State Change",
    ]


def test_a_quiet_forged_events_incident_closes_after_the_expiry(central, handler_env):
    send(anomaly(PROD, "vol-0f1", 1, "high", claimed_account=VICTIM))
    central.emails()
    central.clock.advance(days=8)
    handler.lambda_handler(scheduled(central.clock.now), None)
    item = handler_env.store.get_ops(f"forged#{PROD}")
    assert item is not None and item.status.value == "resolved"

    # A new forged event afterwards opens (and tells) a new one.
    central.clock.advance(minutes=1)
    send(anomaly(PROD, "vol-0f1", 2, "high", claimed_account=VICTIM))
    assert len([e for e in central.emails() if e["subject"].startswith("[SECURITY]")]) == 1
