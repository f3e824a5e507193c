"""The outbox: a notification is recorded with its change and published after; crashes in
between are recovered, concurrent writers serialize, and the one window left is known."""

from __future__ import annotations

from datetime import timedelta

from correlator import handler
from correlator.notify import CLAIM_LEASE
from tests.correlator.conftest import (
    Recorder,
    anomaly,
    client_error,
    scheduled,
    sqs_batch,
)

PROD, ANALYTICS = "111111111111", "222222222222"


def test_a_crash_after_the_change_is_published_by_the_redelivery(central):
    db = Recorder(central.dynamodb)
    correlator = central.correlator(central.clients(dynamodb=db))
    event = anomaly(PROD, "vol-0a1", 1, "high")
    db.fail_after["transact_write_items"] = client_error("InternalError")

    assert correlator.handle_batch([("m1", event)]) == ["m1"]
    assert central.emails() == []
    assert len(correlator.store.pending_notices()) == 1

    central.clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    assert correlator.handle_batch([("m1", event)]) == []

    (email,) = central.emails()
    assert email["subject"] == "[HIGH] Backup anomaly: 1 volume in 111111111111"
    assert [a["kind"] for a in central.audits()] == ["opened"]
    assert correlator.store.pending_notices() == []


def test_a_redelivery_within_the_writer_s_claim_leaves_it_to_the_sweep(central):
    db = Recorder(central.dynamodb)
    correlator = central.correlator(central.clients(dynamodb=db))
    event = anomaly(PROD, "vol-0a1", 1, "high")
    db.fail_after["transact_write_items"] = client_error("InternalError")
    correlator.handle_batch([("m1", event)])

    assert correlator.handle_batch([("m1", event)]) == []  # a duplicate; the claim holds
    assert central.emails() == []

    central.clock.advance(minutes=15)
    correlator.handle(scheduled(central.clock.now))
    assert len(central.emails()) == 1
    correlator.handle(scheduled(central.clock.now))
    assert central.emails() == []


def test_a_failed_email_is_sent_by_the_next_change(central):
    sns = Recorder(central.sns)
    correlator = central.correlator(central.clients(sns=sns))
    sns.fail_next["publish"] = client_error("InternalError")
    assert correlator.handle_batch([("m1", anomaly(PROD, "vol-0a1", 1, "high"))]) == ["m1"]

    central.clock.advance(minutes=2)
    other = anomaly(ANALYTICS, "vol-0b1", 1, "high", minutes=5)
    assert correlator.handle_batch([("m2", other)]) == []

    subjects = [e["subject"] for e in central.emails()]
    assert sorted(subjects) == [
        "[CRITICAL] Update 2: backup anomaly, 2 volumes in 2 accounts (111111111111, 222222222222)",
        "[HIGH] Backup anomaly: 1 volume in 111111111111",
    ]


def test_a_failed_audit_copy_does_not_send_the_email_twice(central):
    sqs = Recorder(central.sqs)
    correlator = central.correlator(central.clients(sqs=sqs))
    event = anomaly(PROD, "vol-0a1", 1, "high")
    sqs.fail_next["send_message"] = client_error("InternalError")

    assert correlator.handle_batch([("m1", event)]) == ["m1"]
    assert len(central.emails()) == 1 and central.audits() == []

    central.clock.advance(minutes=2)
    assert correlator.handle_batch([("m1", event)]) == []
    assert central.emails() == []
    assert [a["notificationId"] for a in central.audits()] == [
        correlator.store.read_index().incidents[0].id + "#1"
    ]


def test_the_one_window_left_sends_the_email_twice_with_the_same_id(central, monkeypatch):
    """SNS Publish succeeded, then the invocation died before marking it sent."""
    correlator = central.correlator()
    calls = []
    original = correlator.store.mark_emailed

    def dies_once(notice):
        calls.append(notice.id)
        if len(calls) == 1:
            raise client_error("InternalError")
        original(notice)

    monkeypatch.setattr(correlator.store, "mark_emailed", dies_once)
    event = anomaly(PROD, "vol-0a1", 1, "high")
    correlator.handle_batch([("m1", event)])
    central.clock.advance(minutes=2)
    correlator.handle_batch([("m1", event)])

    first, second = central.emails()
    assert first["id"] == second["id"]  # recognizable as one notification
    assert len(central.audits()) == 1


def test_concurrent_writers_serialize_on_the_index(central):
    """Another execution environment commits between this one's read and its write."""
    db = Recorder(central.dynamodb)
    mine = central.correlator(central.clients(dynamodb=db))
    theirs = central.correlator()
    original = db._client.transact_write_items
    interleaved = []

    def transact(**kwargs):
        if not interleaved:
            interleaved.append(True)
            assert theirs.handle_batch([("t1", anomaly(ANALYTICS, "vol-0b1", 1, "high"))]) == []
        return original(**kwargs)

    db._client = type("Client", (), {})()  # a stand-in exposing the real methods
    for name in ("get_item", "batch_get_item", "query", "batch_write_item", "delete_item",
                 "update_item", "put_item"):  # fmt: skip
        setattr(db._client, name, getattr(central.dynamodb, name))
    db._client.transact_write_items = transact

    assert mine.handle_batch([("m1", anomaly(PROD, "vol-0a1", 1, "high", minutes=3))]) == []

    (incident,) = mine.store.read_index().incidents
    assert incident.volumes == 2
    kinds = sorted(a["kind"] for a in central.audits())
    assert kinds == ["opened", "updated"]  # theirs opened it; mine, retried, grew it
    assert len(central.emails()) == 2


def test_the_handler_drops_unreadable_bodies_and_retries_only_failed_records(
    central, handler_env, lines
):
    batch = sqs_batch([anomaly(PROD, "vol-0a1", 1, "high"), anomaly(PROD, "vol-0a2", 1, "high")])
    batch["Records"].append({**batch["Records"][0], "messageId": "junk", "body": "{not json"})
    failing = batch["Records"][1]["messageId"]
    original = handler_env._correlate
    calls = []

    def flaky(signal, outcome):
        calls.append(signal.volume_id)
        if signal.volume_id == "vol-0a2":
            raise client_error("ProvisionedThroughputExceededException")
        return original(signal, outcome)

    handler_env._correlate = flaky

    result = handler.lambda_handler(batch, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": failing}]}
    decisions = [(line["decision"], line.get("message_id")) for line in lines()]
    assert ("malformed", "junk") in decisions
    assert ("error", failing) in decisions
    central.clock.advance(minutes=1)
    assert len(central.emails()) == 1


def test_the_scheduled_event_is_a_direct_invocation(central, handler_env):
    assert handler.lambda_handler(scheduled(central.clock.now + timedelta(minutes=1)), None) == {
        "status": "ok"
    }
