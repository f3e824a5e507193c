"""Property: whatever the delivery order, duplication and failures of one set of events, the
correlator ends with the same incidents, each notification recorded and published once.

Deliveries follow SQS semantics: batches of one to three messages; a message whose
processing fails is delivered again later; time moves on between deliveries (as the
visibility timeout does). Failures are injected before a call reaches the service or after
it took effect: in the batch write, the index read, the transaction (including after it
committed: a crash between the transition and its publication), the email, the audit copy,
the pending item's clearing.

Exactly once means: every notification is recorded once, numbered without gaps, and
emailed once; its audit copy is sent at least once, and twice only where the fault struck
between the copy's SendMessage and the deletion of its pending item (the copy carries the
same ``notificationId``: the audit queue is standard SQS, at-least-once itself, and its
consumer deduplicates on that id). The one email window (SNS Publish succeeded, its
"emailed" mark not written) is tested apart, in ``test_notifications.py``.

The incidents expected are computed here independently: single-linkage clusters of the
signals' backup times (gap at most the window), severity as documented, resolved when every
volume has a normal measurement after its last signal.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from correlator.correlator import SNAPSHOT_DELETED_SEVERITY
from correlator.incidents import snapshot
from correlator.records import Severity, Status
from tests.correlator.conftest import (
    TABLE,
    Central,
    Recorder,
    anomaly,
    at,
    client_error,
    measured,
    reset,
    scheduled,
)

# moto inside each example, and some 20 s in all: not part of the fast unit loop.
pytestmark = pytest.mark.slow

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("eu-west-1", "us-east-2")
WINDOW = timedelta(hours=24)

FAULTS = [
    None,
    None,
    ("dynamodb", "fail_next", "batch_write_item"),
    ("dynamodb", "fail_next", "get_item"),
    ("dynamodb", "fail_next", "transact_write_items"),
    ("dynamodb", "fail_after", "transact_write_items"),
    ("sns", "fail_next", "publish"),
    ("sqs", "fail_next", "send_message"),
    ("dynamodb", "fail_next", "delete_item"),
    ("dynamodb", "fail_after", "update_item"),
]


@st.composite
def scenarios(draw):
    """Events of 2-5 volumes (with their expected signals and recoveries), and a plan of
    deliveries: any order, duplicates, batch sizes and faults."""
    events, signals, normals = [], [], {}
    for number in range(draw(st.integers(2, 5))):
        volume = f"vol-0{number:03d}"
        account = draw(st.sampled_from(ACCOUNTS))
        region = draw(st.sampled_from(REGIONS))
        days = sorted(draw(st.sets(st.integers(1, 4), min_size=1, max_size=2)))
        for day in days:
            minutes = draw(st.integers(0, 720))
            severity = draw(st.sampled_from(["medium", "high", "critical"]))
            events.append(anomaly(account, volume, day, severity, region=region, minutes=minutes))
            signals.append((volume, account, region, at(days=day, hours=minutes / 60), severity))
            if draw(st.booleans()):  # the same measurement as a Backup Anomaly Detected too
                events.append(
                    anomaly(
                        account, volume, day, severity, region=region, minutes=minutes,
                        anomaly_event=True,
                    )
                )  # fmt: skip
        signal_days = list(days)
        free = [d for d in range(1, 5) if d not in days]
        if free and draw(st.booleans()):
            day = draw(st.sampled_from(free))
            events.append(reset(account, volume, day, region=region))
            signals.append((volume, account, region, at(days=day), SNAPSHOT_DELETED_SEVERITY.value))
            signal_days.append(day)
        if draw(st.booleans()):  # measured normal again, the day after its last signal
            day = max(signal_days) + 1
            events.append(measured(account, volume, day, "none", region=region))
            normals[volume] = at(days=day)
    copies = draw(st.lists(st.integers(0, len(events) - 1), max_size=4))
    order = draw(st.permutations(list(range(len(events))) + copies))
    faults = draw(st.lists(st.sampled_from(FAULTS), min_size=len(order), max_size=len(order)))
    sizes = draw(st.lists(st.integers(1, 3), min_size=len(order), max_size=len(order)))
    return events, signals, normals, list(zip(order, faults, strict=True)), sizes


def expected_incidents(signals, normals):
    """Single-linkage clusters on the time line, with their severity and status."""
    ordered = sorted(signals, key=lambda s: s[3])
    groups: list[list] = []
    for signal in ordered:
        if groups and signal[3] - groups[-1][-1][3] <= WINDOW:
            groups[-1].append(signal)
        else:
            groups.append([signal])
    rank = {s.value: s for s in Severity}
    out = set()
    for group in groups:
        volumes = {s[0] for s in group}
        base = max((rank[s[4]] for s in group), key=lambda s: s.rank)
        broad = (
            len({s[1] for s in group}) >= 2 or len({s[2] for s in group}) >= 2 or len(volumes) >= 5
        )
        severity = base.raised() if broad else base
        last = {v: max(s[3] for s in group if s[0] == v) for v in volumes}
        resolved = all(v in normals and normals[v] > last[v] for v in volumes)
        out.add((frozenset(volumes), "resolved" if resolved else "open", severity.value))
    return out


def _inject(clients, fault) -> None:
    if fault is not None:
        name, mode, method = fault
        getattr(getattr(clients, name), mode)[method] = client_error("InternalError", method)


def _clear(clients) -> None:
    for client in (clients.dynamodb, clients.sns, clients.sqs):
        client.fail_next.clear()
        client.fail_after.clear()


def run(central: Central, events, plan, sizes):
    clients = central.clients(
        dynamodb=Recorder(central.dynamodb),
        sns=Recorder(central.sns),
        sqs=Recorder(central.sqs),
    )
    correlator = central.correlator(clients)
    queue = deque((f"m{n}", events[index], fault) for n, (index, fault) in enumerate(plan))
    audits: list[dict] = []
    emails: list[dict] = []
    windows = 0  # faults that struck between an audit copy and its pending item's deletion
    rounds = 0
    while queue:
        rounds += 1
        assert rounds < 300, "deliveries must converge"
        size = sizes[rounds % len(sizes)]
        batch = [queue.popleft() for _ in range(min(size, len(queue)))]
        fault = batch[0][2]
        _inject(clients, fault)
        try:
            failed = set(correlator.handle_batch([(mid, event) for mid, event, _ in batch]))
            if fault == ("dynamodb", "fail_next", "delete_item") and (
                "delete_item" not in clients.dynamodb.fail_next
            ):
                windows += 1
        finally:
            _clear(clients)
        # Redelivered later, without the fault (it struck once).
        queue.extend((mid, event, None) for mid, event, _ in batch if mid in failed)
        central.clock.advance(minutes=2)
        audits += central.audits()
        emails += central.emails()
    # Time passes; the scheduled sweep runs (twice: the second must find nothing to do).
    central.clock.advance(minutes=20)
    correlator.handle(scheduled(central.clock.now))
    audits += central.audits()
    emails += central.emails()
    central.clock.advance(minutes=20)
    correlator.handle(scheduled(central.clock.now))
    # Security incidents only: the silence check may report the account-regions going
    # quiet after the scenario's last backup, and that is right.
    audits = _security(audits)
    emails = [e for e in emails if (e["id"] or "").startswith("inc-")]
    assert _security(central.audits()) == [], "the sweep must settle"
    assert [e for e in central.emails() if (e["id"] or "").startswith("inc-")] == []
    return correlator, audits, emails, windows


def _security(audits: list[dict]) -> list[dict]:
    return [a for a in audits if a["type"] == "backup-anomaly-incident"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_order_duplication_and_failure_gives_the_same_incidents_told_once(scenario):
    events, signals, normals, plan, sizes = scenario
    with mock_aws():
        central = Central()
        central.clock.now = at(days=5)
        correlator, audits, emails, windows = run(central, events, plan, sizes)
        store = correlator.store
        index = store.read_index()
        assert store.pending_notices() == [], "nothing left unpublished"
        incidents = [i for i in index.incidents if i.status is not Status.MERGED]
        volumes = {i.id: _volumes(central, i) for i in incidents}

    found = {
        (
            frozenset(v.rsplit("/", 1)[-1] for v in volumes[incident.id]),
            incident.status.value,
            snapshot(incident, correlator.rules, central.clock.now).severity.value,
        )
        for incident in incidents
    }
    assert found == expected_incidents(signals, normals)

    # Each notification recorded once, numbered without gaps, published once.
    ids = [a["notificationId"] for a in audits]
    assert len(ids) - len(set(ids)) <= windows, "an audit copy was published twice"
    audits = list({a["notificationId"]: a for a in audits}.values())
    email_ids = [e["id"] for e in emails]
    assert len(email_ids) == len(set(email_ids)), "an email was sent twice"
    assert set(email_ids) <= set(ids)
    by_incident: dict[str, list[dict]] = {}
    for audit in audits:
        by_incident.setdefault(audit["incident"]["id"], []).append(audit)
    for incident in incidents:
        told = sorted(by_incident.get(incident.id, []), key=lambda a: a["told"]["at"])
        seqs = sorted(int(a["notificationId"].rsplit("#", 1)[1]) for a in told)
        assert seqs == list(range(1, incident.seq + 1))
        if not told:
            continue
        first = min(told, key=lambda a: int(a["notificationId"].rsplit("#", 1)[1]))
        assert first["kind"] == "opened"
        # The last message tells the incident as it ended: nothing was lost.
        last = max(told, key=lambda a: int(a["notificationId"].rsplit("#", 1)[1]))
        final = snapshot(incident, correlator.rules, central.clock.now)
        assert (last["told"]["volumes"], last["told"]["status"], last["told"]["severity"]) == (
            final.volumes,
            final.status.value,
            final.severity.value,
        )
        assert tuple(last["told"]["accounts"]) == final.accounts
        if incident.status is Status.RESOLVED:
            assert "resolved" in [a["kind"] for a in told]


def _volumes(central: Central, incident) -> set[str]:
    """The volumes under an incident's family of rows (its own and those it absorbed)."""
    volumes = set()
    for incident_id in incident.family:
        rows = central.dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": f"INC#{incident_id}"}, ":v": {"S": "VOL#"}},
        )["Items"]
        volumes |= {json.loads(r["data"]["S"])["volumeArn"] for r in rows}
    return volumes
