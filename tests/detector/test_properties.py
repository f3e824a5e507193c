"""Property: whatever the delivery order, duplication and failures, the detector ends on the
newest snapshot with one measurement per consecutive pair of baselines, none lost.

Deliveries follow SQS semantics: a delivery whose processing raises is delivered again later.
Failures are injected before a call reaches the service (nothing happened) or after it took
effect (the caller crashed right after a write), in the counting, the state table, the
metric, and the alarms.
"""

from __future__ import annotations

import json
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from backup_anomaly import changed_blocks
from backup_anomaly.detector import POST_COUNT_RESERVE_SECONDS
from tests.detector.conftest import (
    ACCOUNT,
    NAMESPACE,
    REGION,
    Recorder,
    World,
    client_error,
    recent,
)

MARGIN = getattr(changed_blocks, "DEFAULT_SAFETY_MARGIN_SECONDS", 20.0)

FAULTS = [
    None,
    ("ebs", "fail_next", "list_changed_blocks"),
    ("dynamodb", "fail_next", "get_item"),
    ("dynamodb", "fail_next", "update_item"),
    ("dynamodb", "fail_after", "update_item"),
    ("cloudwatch", "fail_next", "put_metric_data"),
    ("cloudwatch", "fail_after", "put_metric_data"),
    ("cloudwatch", "fail_next", "put_metric_alarm"),
]


CONTINUATION_FAULTS = [
    None,
    ("sqs", "fail_next", "send_message"),
    ("dynamodb", "fail_next", "update_item"),
    ("dynamodb", "fail_after", "update_item"),
    ("ebs", "fail_next", "list_changed_blocks"),
    ("cloudwatch", "fail_after", "put_metric_data"),
]


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=2, max_value=5))
    writes = [set()] + [
        draw(st.sets(st.integers(min_value=0, max_value=2047), max_size=20)) for _ in range(n - 1)
    ]
    deliveries = list(range(n)) + draw(
        st.lists(st.integers(min_value=0, max_value=n - 1), max_size=4)
    )
    order = draw(st.permutations(deliveries))
    faults = draw(st.lists(st.sampled_from(FAULTS), min_size=len(order), max_size=len(order)))
    return writes, list(zip(order, faults, strict=True))


def _inject(clients, fault) -> None:
    if fault is not None:
        name, mode, method = fault
        getattr(getattr(clients, name), mode)[method] = client_error(
            "InternalFailure" if mode == "fail_after" else "AccessDeniedException",
            method,
            status=500 if mode == "fail_after" else 403,
        )


def _clear(clients) -> None:
    for client in (clients.ebs, clients.dynamodb, clients.cloudwatch, clients.sqs):
        client.fail_next.clear()
        client.fail_after.clear()


def _deliver_all(
    world, detector, clients, events, plan, *, budgets=(None,), duplicates=(False,), faults=(None,)
):
    """Delivers like SQS: a failed delivery comes back later; continuations join the queue.

    ``budgets`` (EBS requests before the deadline), ``duplicates`` (deliver a continuation
    twice) and ``faults`` apply cyclically to continuation deliveries.
    """
    queue = deque(("event", index, fault) for index, fault in plan)
    seen_messages = 0
    rounds = 0
    while queue:
        rounds += 1
        assert rounds < 400, "deliveries must converge"
        kind, item, fault = queue.popleft()
        budget = budgets[rounds % len(budgets)]
        remaining = None
        if budget is not None:
            limit = world.fake.requests_served + budget

            def remaining(limit=limit) -> float:
                return (
                    MARGIN
                    + POST_COUNT_RESERVE_SECONDS
                    + (600 if world.fake.requests_served < limit else -0.5)
                )

        _inject(clients, fault)
        try:
            detector.handle(events[item] if kind == "event" else json.loads(item), remaining)
        except Exception:  # noqa: BLE001 - SQS redelivers it later
            queue.append((kind, item, None))
        finally:
            _clear(clients)
        sent = [kwargs["MessageBody"] for method, kwargs in world.sqs.calls]
        for body in sent[seen_messages:]:
            position = len(queue) and (seen_messages * 7919) % (len(queue) + 1)
            fault = faults[seen_messages % len(faults)]
            queue.insert(position, ("message", body, fault))
            if duplicates[seen_messages % len(duplicates)]:
                queue.append(("message", body, None))
            seen_messages += 1


def _assert_exactly_once(world, vol, snaps, times, writes):
    state = world.store.get(world.volume_arn(vol))
    # The final state is the newest snapshot, with nothing left to publish or to count.
    assert state.snapshot_id == snaps[-1]
    assert state.pending is None and state.progress is None

    # One measurement per current snapshot (a repeated forward carries the same id).
    forwarded = {}
    for _, call in world.events.calls:
        for entry in call["Entries"]:
            detail = json.loads(entry["Detail"])
            forwarded.setdefault(detail["snapshotId"], set()).add(
                (detail["previousSnapshotId"], detail["changedBlocks"])
            )
    assert all(len(pairs) == 1 for pairs in forwarded.values())
    measured = sorted(snaps.index(s) for s in forwarded)

    # The measured pairs form one unbroken chain that ends at the newest snapshot (no
    # pair at all when the newest snapshot was the first one ever seen).
    chain = []
    if measured:
        assert measured[-1] == len(snaps) - 1
        chain = [snaps.index(next(iter(forwarded[snaps[measured[0]]]))[0])] + measured
    for before, after in zip(chain, chain[1:], strict=False):
        ((previous, value),) = forwarded[snaps[after]]
        assert previous == snaps[before], "no pair lost, none skipped"
        assert value == len(set().union(*writes[before + 1 : after + 1]))

    # The metric holds exactly those values, at the backups' completion times.
    points = {}
    for datum in world.metric_puts():
        points.setdefault(datum["Timestamp"], set()).add(datum["Value"])
    assert points == {times[i]: {next(iter(forwarded[snaps[i]]))[1]} for i in measured}
    assert world.metric_puts("BaselineResets") == []

    # The alarms exist and match the configuration.
    alarms = world.alarms(prefix=f"backup-anomaly-{vol}")
    assert set(alarms) == {f"backup-anomaly-{vol}", f"backup-anomaly-{vol}-ceiling"}
    assert alarms[f"backup-anomaly-{vol}"]["Metrics"][1]["Expression"] == (
        "ANOMALY_DETECTION_BAND(m1, 2)"
    )
    assert (
        alarms[f"backup-anomaly-{vol}"]["Metrics"][0]["MetricStat"]["Metric"]["Namespace"]
        == NAMESPACE
    )
    assert alarms[f"backup-anomaly-{vol}-ceiling"]["Threshold"] == 1024


@pytest.fixture(scope="module")
def account(fake_ebs, raw_clients):
    """One moto account for every scenario: each scenario has its own volume."""
    fake_ebs.set_quota(None)
    fake_ebs.latency = 0.0
    fake_ebs.scan_window = None
    with mock_aws():
        world = World(fake_ebs, raw_clients)
        world.events._client.create_event_bus(Name="central")
        world.queue_url = world.queue("work")
        yield world


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_duplicated_reordered_failing_deliveries_measure_every_pair_once(account, scenario):
    writes, plan = scenario
    world = account.fresh()
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/central"
    clients = world.clients(dynamodb=Recorder(world.dynamodb))
    detector = world.detector(clients, central_bus_arn=bus)
    vol = world.volume()
    snaps = world.lineage(vol, writes)
    times = [recent(60 - 5 * i) for i in range(len(snaps))]
    events = [world.ebs_event(s, vol, t) for s, t in zip(snaps, times, strict=True)]

    _deliver_all(world, detector, clients, events, plan)

    _assert_exactly_once(world, vol, snaps, times, writes)


@st.composite
def long_count_scenarios(draw):
    writes, plan = draw(scenarios())
    budgets = draw(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=6))
    duplicates = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    faults = draw(st.lists(st.sampled_from(CONTINUATION_FAULTS), min_size=1, max_size=4))
    return writes, plan, budgets, duplicates, faults


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=long_count_scenarios())
def test_counts_spanning_invocations_complete_exactly_once(account, scenario):
    writes, plan, budgets, duplicates, faults = scenario
    world = account.fresh()
    world.fake.scan_window = 256  # 8 requests per count of a 1 GiB volume
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/central"
    clients = world.clients(dynamodb=Recorder(world.dynamodb))
    detector = world.detector(
        clients,
        central_bus_arn=bus,
        work_queue_url=account.queue_url,
        ebs_max_requests_per_second=1000.0,
    )
    vol = world.volume()
    snaps = world.lineage(vol, writes)
    times = [recent(60 - 5 * i) for i in range(len(snaps))]
    events = [world.ebs_event(s, vol, t) for s, t in zip(snaps, times, strict=True)]

    try:
        _deliver_all(
            world,
            detector,
            clients,
            events,
            plan,
            budgets=budgets,
            duplicates=duplicates,
            faults=faults,
        )
    finally:
        world.fake.scan_window = None

    _assert_exactly_once(world, vol, snaps, times, writes)
