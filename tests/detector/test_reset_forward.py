"""Baseline resets reach the security account: one ``Backup Baseline Reset`` event each.

The central bus here is built from the central template's own rule patterns (the audit rule
and the correlator's rule), so a detector event the central stack would not route fails
these tests. A deleted baseline is no longer mailed per volume: the correlator judges it.
"""

from __future__ import annotations

import json

import pytest

from backup_anomaly import events
from generator import naming
from generator.templates import central
from tests.detector.conftest import ACCOUNT, REGION, recent
from tests.generator import template_helpers as h


def _pattern(rule) -> str:
    return json.dumps(rule.to_dict()["Properties"]["EventPattern"])


def _central_bus(world):
    """A central bus with the central template's reset rules: audit and correlator queues."""
    template = central.CentralTemplate(h.config("example"), "detector.zip")
    client = world.events._client
    sqs = world.sqs._client
    bus_arn = client.create_event_bus(Name="central")["EventBusArn"]
    queues = {}
    for name, rule in (
        ("audit", template.reset_rule),
        ("correlator", template.correlation.member_rule),
    ):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        client.put_rule(Name=name, EventBusName="central", EventPattern=_pattern(rule))
        client.put_targets(Rule=name, EventBusName="central", Targets=[{"Id": name, "Arn": arn}])
        queues[name] = url
    return bus_arn, queues


def _received(world, url: str) -> list[dict]:
    out = []
    while True:
        messages = world.sqs._client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            world.sqs._client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _reset_puts(world) -> list[dict]:
    return [
        entry
        for method, kwargs in world.events.calls
        if method == "put_events"
        for entry in kwargs["Entries"]
        if entry["DetailType"] == events.BASELINE_RESET_DETAIL_TYPE
    ]


def _deleted_previous(world, detector):
    """A volume whose baseline snapshot is deleted before its next backup."""
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1}, {2}])
    detector.handle(world.ebs_event(s1, vol, recent(30)))
    world.fake.delete_snapshot(s1)
    return vol, (s1, s2, s3)


def _unrelated(world, detector):
    """A volume whose next snapshot is of another lineage (a restored volume)."""
    vol = world.volume()
    s1, s2 = world.snapshot(vol), world.snapshot(vol)
    world.fake.add_snapshot(s1, 1)
    world.fake.add_snapshot(s2, 1)
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    return vol, (s1, s2)


def _expected_detail(world, vol, previous, snapshot, reason, job, completion) -> dict:
    arn = world.volume_arn(vol)
    return {
        "resetId": f"{arn}/{previous}/{snapshot}",
        "account": ACCOUNT,
        "region": REGION,
        "volumeId": vol,
        "volumeArn": arn,
        "previousSnapshotId": previous,
        "snapshotId": snapshot,
        "reason": reason,
        "backupJobId": job,
        "resourceType": "EBS",
        "completionTime": completion.isoformat(),
        "resetAt": None,
    }


def test_deleted_previous_snapshot_forwards_one_reset_to_audit_and_correlator(world):
    from testing.moto_fidelity import faithful_moto

    with faithful_moto():  # targets get the whole event, ``account`` included, as in AWS
        _deleted_previous_alerts(world)


def _deleted_previous_alerts(world):
    bus_arn, queues = _central_bus(world)
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2, _) = _deleted_previous(world, detector)
    completion = recent(20)

    (record,) = detector.handle(world.ebs_event(s2, vol, completion, job_id="job-7"))

    assert record["decision"] == "baseline_reset"
    assert record["reason"] == "previous_snapshot_missing"
    assert record["forward"] == "sent"
    (event,) = _received(world, queues["audit"])
    assert event["source"] == naming.EVENT_SOURCE
    assert event["detail-type"] == "Backup Baseline Reset"
    assert event["resources"] == [world.volume_arn(vol)]
    assert event["detail"]["resetAt"]
    assert event["detail"] | {"resetAt": None} == _expected_detail(
        world, vol, s1, s2, "previous_snapshot_missing", "job-7", completion
    )
    # The correlator's rule takes it too, with the envelope it trusts for account and region.
    (correlated,) = _received(world, queues["correlator"])
    assert correlated["detail"] == event["detail"]
    assert (correlated["account"], correlated["region"]) == (ACCOUNT, REGION)
    assert len(_reset_puts(world)) == 1


def test_unrelated_snapshots_forward_one_reset(world):
    bus_arn, queues = _central_bus(world)
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2) = _unrelated(world, detector)
    completion = recent(10)

    (record,) = detector.handle(world.ebs_event(s2, vol, completion, job_id="job-9"))

    assert record["decision"] == "baseline_reset"
    assert record["forward"] == "sent"
    (event,) = _received(world, queues["audit"])
    assert event["detail-type"] == "Backup Baseline Reset"
    assert event["detail"] | {"resetAt": None} == _expected_detail(
        world, vol, s1, s2, "unrelated_snapshots", "job-9", completion
    )
    (correlated,) = _received(world, queues["correlator"])
    assert correlated["detail"]["reason"] == "unrelated_snapshots"
    assert len(_reset_puts(world)) == 1


def test_unset_bus_resets_without_forwarding(world):
    detector = world.detector()
    vol, (s1, s2, _) = _deleted_previous(world, detector)

    (record,) = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert record["decision"] == "baseline_reset" and record["forward"] == "disabled"
    assert world.events.calls == []


@pytest.mark.parametrize("how", ["missing_bus", "raises", "entry_failed"])
def test_forward_failure_never_blocks_the_reset(world, lines, how):
    bus_arn, queues = _central_bus(world)
    if how == "missing_bus":
        bus_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/missing"
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2, s3) = _deleted_previous(world, detector)
    if how == "raises":
        world.events.fail_next["put_events"] = _client_error()
    elif how == "entry_failed":

        class FailingEntries:
            meta = world.events.meta

            def put_events(self, Entries):  # noqa: N803 - boto3's parameter name
                return {
                    "FailedEntryCount": 1,
                    "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "later"}],
                }

        detector.clients.events = FailingEntries()
    lines()

    (record,) = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert record["decision"] == "baseline_reset"
    assert record["forward"] == "failed"
    assert lines()[0]["forward_error"]
    state = world.store.get(world.volume_arn(vol))
    assert state.snapshot_id == s2 and state.pending is None
    assert [d["Value"] for d in world.metric_puts("BaselineResets")] == [1]
    assert [d["Value"] for d in world.metric_puts("ForwardFailures")] == [1]
    # The volume is not broken: the next backup is measured against the new baseline.
    detector.clients.events = world.events
    (after,) = detector.handle(world.ebs_event(s3, vol, recent(10)))
    assert after["decision"] == "measured"


def _client_error():
    from tests.detector.conftest import client_error

    return client_error("InternalFailure", "PutEvents", status=500)


def test_duplicate_delivery_forwards_no_second_reset(world):
    bus_arn, queues = _central_bus(world)
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2, _) = _deleted_previous(world, detector)
    event = world.ebs_event(s2, vol, recent(20))

    detector.handle(event)
    (again,) = detector.handle(event)
    (other,) = world.detector(central_bus_arn=bus_arn).handle(json.loads(json.dumps(event)))

    assert again["decision"] == "duplicate" and other["decision"] == "duplicate"
    assert len(_reset_puts(world)) == 1
    assert len(_received(world, queues["audit"])) == 1
    assert [d["Value"] for d in world.metric_puts("BaselineResets")] == [1]


def test_crash_after_forwarding_repeats_the_reset_with_the_same_id(world, monkeypatch):
    # At least once: a crash between PutEvents and clearing the pending reset makes the
    # retry forward it again; the stable resetId (and identical detail) lets the audit side
    # drop the copy.
    bus_arn, queues = _central_bus(world)
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2, _) = _deleted_previous(world, detector)
    event = world.ebs_event(s2, vol, recent(20))
    clear = detector.store.clear_pending
    crashed = []

    def crash_once(*args, **kwargs):
        if not crashed:
            crashed.append(True)
            raise RuntimeError("Lambda timed out")
        return clear(*args, **kwargs)

    monkeypatch.setattr(detector.store, "clear_pending", crash_once)
    with pytest.raises(RuntimeError):
        detector.handle(event)
    assert world.store.get(world.volume_arn(vol)).pending is not None

    (retry,) = detector.handle(event)

    assert retry["decision"] == "duplicate"
    assert world.store.get(world.volume_arn(vol)).pending is None
    first, second = _received(world, queues["audit"])
    assert first["detail"] == second["detail"]
    assert first["detail"]["resetId"] == f"{world.volume_arn(vol)}/{s1}/{s2}"
    # The correlator gets both copies too and keeps one: it dedupes by resetId.
    assert len(_received(world, queues["correlator"])) == 2
