"""The incident rules as pure functions: routing, merging, severity, notifications."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from correlator import incidents as inc
from correlator.records import (
    Evidence,
    NoticeKind,
    Scan,
    Severity,
    Signal,
    SignalKind,
    Status,
    combine,
)
from tests.correlator.conftest import at

RULES = inc.Rules()
NOW = at(days=1, hours=2)


def signal(volume: str, hours: float, severity="high", account="111111111111", region="eu-west-1"):
    arn = f"arn:aws:ec2:{region}:{account}:volume/{volume}"
    time = at(days=1, hours=hours)
    sid = f"{arn}/snap-p{hours}/snap-{volume}-{hours}"
    evidence = Evidence(SignalKind.REWRITE, Severity(severity), time, sid, share=0.9)
    return Signal(
        sid, SignalKind.REWRITE, account, region, arn, volume, time, Severity(severity), evidence
    )


class Book:
    """Applies signals one by one like the correlator does, keeping rows in memory."""

    def __init__(self, rules=RULES):
        self.rules = rules
        self.index = inc.Index()
        self.rows: dict[tuple[str, str], object] = {}
        self.intents: list[inc.Intent] = []

    def family_rows(self, ids, volume=None):
        return [
            r for (i, v), r in self.rows.items() if i in ids and (volume is None or v == volume)
        ]

    def add(self, s: Signal, now=NOW, normal=None, scans=()):
        routed = inc.route(self.index, s.time, self.rules)
        rows = self.family_rows(routed.families, s.volume_arn)
        groups = []
        if routed.merged:
            merged_ids = [i for m in routed.merged for i in m.family]
            theirs = {}
            for row in self.family_rows(merged_ids):
                theirs.setdefault(row.volume_arn, []).append(row)
            for arn, their_rows in theirs.items():
                ours = self.family_rows(routed.target.family, arn)
                groups.append(
                    inc.MergeGroup(
                        combine(their_rows, routed.target.id), combine(ours, routed.target.id)
                    )
                )
        t = inc.join(
            self.index,
            routed,
            s,
            rows=rows,
            merge_groups=groups,
            normal=normal,
            scans=list(scans),
            rules=self.rules,
            now=now,
        )
        if t is not None:
            self._apply(t)
        return t

    def _apply(self, t: inc.Transition):
        self.index = inc.Index(self.index.version + 1, t.incidents)
        for row in t.rows:
            self.rows[(row.incident_id, row.volume_arn)] = row
        self.intents += t.intents

    def only(self):
        (incident,) = self.index.incidents
        return incident


def test_a_signal_opens_an_incident_named_after_it_and_a_repeat_changes_nothing():
    book = Book()
    first = signal("vol-1", 0)

    t = book.add(first)

    assert t is not None and t.outcome == "opened"
    incident = book.only()
    assert incident.id == inc.new_incident_id(first)
    assert incident.id.startswith("inc-20250603-")
    assert (incident.volumes, incident.unrecovered, incident.status) == (1, 1, Status.OPEN)
    assert book.add(first) is None
    assert book.add(replace(first, evidence=replace(first.evidence, share=0.1))) is None


def test_signals_within_the_window_of_the_span_join_one_incident():
    book = Book()
    for hours in (0, 20, 40, 60):  # each within 24 h of the previous
        book.add(signal(f"vol-{hours}", hours))
    assert book.only().volumes == 4
    assert book.add(signal("vol-late", 60 + 25)).outcome == "opened"
    assert len(book.index.incidents) == 2


def test_a_signal_bridging_two_incidents_merges_them_into_the_oldest_counting_volumes_once():
    book = Book()
    book.add(signal("vol-a", 0))
    book.add(signal("vol-shared", 1))
    book.add(signal("vol-b", 40))
    book.add(signal("vol-shared", 41))
    older, newer = sorted(book.index.incidents, key=lambda i: i.first_at)
    assert (older.volumes, newer.volumes) == (2, 2)

    t = book.add(signal("vol-bridge", 20))

    assert t.outcome == "merged 1 into"
    survivor = book.only()
    assert survivor.id == older.id
    assert survivor.absorbed == (newer.id,)
    assert survivor.volumes == 4  # a, shared (in both), b, bridge
    assert survivor.unrecovered == 4
    assert survivor.accounts["111111111111"].volumes == 4
    merged = next(h for h in t.heads if h.id == newer.id)
    assert (merged.status, merged.merged_into) == (Status.MERGED, older.id)


def test_merging_gives_the_same_incidents_in_any_order():
    signals = [signal("vol-a", 0), signal("vol-b", 40), signal("vol-c", 20), signal("vol-a", 41)]
    results = set()
    for order in ([0, 1, 2, 3], [1, 3, 0, 2], [2, 0, 3, 1], [3, 1, 2, 0]):
        book = Book()
        for i in order:
            book.add(signals[i])
        incident = book.only()
        results.add((incident.volumes, incident.first_at, incident.last_at, incident.unrecovered))
    assert len(results) == 1


def test_severity_rises_one_level_when_broad():
    book = Book()
    book.add(signal("vol-1", 0, "medium"))
    assert inc.severity(book.only(), RULES) is Severity.MEDIUM
    book.add(signal("vol-2", 1, "medium", region="us-east-2"))
    assert inc.severity(book.only(), RULES) is Severity.HIGH  # two regions
    book = Book()
    book.add(signal("vol-1", 0, "high"))
    book.add(signal("vol-2", 1, "medium", account="222222222222"))
    assert inc.severity(book.only(), RULES) is Severity.CRITICAL  # two accounts
    book = Book()
    for n in range(4):
        book.add(signal(f"vol-{n}", n, "medium"))
    assert inc.severity(book.only(), RULES) is Severity.MEDIUM
    book.add(signal("vol-4", 5, "medium"))
    assert inc.severity(book.only(), RULES) is Severity.HIGH  # five volumes
    assert inc.severity(replace(book.only(), threats=True), RULES) is Severity.CRITICAL


def test_an_incident_below_the_email_minimum_goes_to_the_audit_queue_until_it_reaches_it():
    book = Book()
    book.add(signal("vol-1", 0, "medium"))
    assert [(i.kind, i.email, i.seq) for i in book.intents] == [(NoticeKind.OPENED, False, 1)]

    book.add(signal("vol-2", 0.1, "high"), now=NOW + timedelta(minutes=1))

    assert [(i.kind, i.email, i.seq) for i in book.intents[1:]] == [(NoticeKind.OPENED, True, 2)]


def test_growth_is_told_at_most_every_update_interval_and_a_rise_at_once():
    book = Book()
    book.add(signal("vol-1", 0, "high"))
    book.add(signal("vol-2", 0.1, "high"), now=NOW + timedelta(minutes=5))
    assert len(book.intents) == 1  # deferred
    due = inc.tidy(book.index, RULES, NOW + timedelta(minutes=10))
    assert due is None
    due = inc.tidy(book.index, RULES, NOW + timedelta(minutes=16))
    assert [i.kind for i in due.intents] == [NoticeKind.UPDATED]
    assert due.intents[0].before.volumes == 1 and due.intents[0].after.volumes == 2
    book._apply(due)
    book.add(signal("vol-3", 0.2, "high", account="222222222222"), now=NOW + timedelta(minutes=17))
    last = book.intents[-1]
    assert (last.kind, last.email, last.after.severity) == (
        NoticeKind.UPDATED,
        True,
        Severity.CRITICAL,
    )


def test_recovery_resolves_once_every_volume_was_measured_normal_again():
    book = Book()
    book.add(signal("vol-1", 0))
    book.add(signal("vol-2", 1))
    incident = book.only()
    members = [combine([r], incident.id) for r in book.rows.values()]
    vol1 = members[0].volume_arn

    partial = inc.recover(
        book.index, incident, members, {vol1: inc.Normal(at(days=2), "m1")}, RULES, NOW
    )
    assert partial.outcome == "recovered" and partial.intents == ()
    book._apply(partial)
    incident = book.only()
    members = [combine([r], incident.id) for r in book.rows.values()]
    normals = {m.volume_arn: inc.Normal(at(days=2), f"m-{m.volume_id}") for m in members}

    done = inc.recover(book.index, incident, members, normals, RULES, NOW)

    assert done.outcome == "resolved"
    assert [i.kind for i in done.intents] == [NoticeKind.RESOLVED]
    assert done.heads[0].status is Status.RESOLVED and done.heads[0].unrecovered == 0


def test_a_normal_measurement_older_than_the_anomaly_recovers_nothing():
    book = Book()
    book.add(signal("vol-1", 0))
    incident = book.only()
    members = [combine([r], incident.id) for r in book.rows.values()]
    older = {members[0].volume_arn: inc.Normal(at(hours=5), "m0")}
    assert inc.recover(book.index, incident, members, older, RULES, NOW) is None


def test_a_signal_already_followed_by_a_normal_measurement_opens_and_resolves_at_once():
    book = Book()
    book.add(signal("vol-1", 0), normal=inc.Normal(at(days=2), "m2"))
    assert [i.kind for i in book.intents] == [NoticeKind.OPENED, NoticeKind.RESOLVED]
    assert book.only().status is Status.RESOLVED


def test_a_late_anomalous_volume_reopens_a_resolved_incident():
    book = Book()
    book.add(signal("vol-1", 0), normal=inc.Normal(at(days=2), "m2"))
    book.add(signal("vol-2", 3), now=NOW + timedelta(minutes=1))
    assert book.intents[-1].kind is NoticeKind.REOPENED
    assert book.only().status is Status.OPEN


def test_a_late_but_recovered_volume_grows_a_resolved_incident_and_is_told():
    book = Book()
    book.add(signal("vol-1", 0), normal=inc.Normal(at(days=2), "m2"))
    book.add(signal("vol-2", 3), normal=inc.Normal(at(days=2), "m3"), now=NOW + timedelta(hours=1))
    assert book.only().status is Status.RESOLVED
    last = book.intents[-1]
    assert (last.kind, last.after.volumes, last.after.status) == (
        NoticeKind.UPDATED,
        2,
        Status.RESOLVED,
    )


def test_an_incident_quiet_for_the_expiry_closes_and_leaves_the_index_after_the_horizon():
    book = Book()
    book.add(signal("vol-1", 0))
    expired = inc.tidy(book.index, RULES, NOW + timedelta(days=7))
    assert [i.kind for i in expired.intents] == [NoticeKind.EXPIRED]
    book._apply(expired)
    assert book.only().status is Status.EXPIRED
    gone = inc.tidy(book.index, RULES, NOW + timedelta(days=7, hours=97))
    assert gone.incidents == ()


def scan(resource: str, snapshot: str, hours: float, result="THREATS_FOUND") -> Scan:
    return Scan(
        job_id=f"job-{snapshot}",
        account="111111111111",
        region="eu-west-1",
        state="COMPLETED",
        result=result,
        recovery_point_arn=f"arn:aws:ec2:eu-west-1::snapshot/{snapshot}",
        resource_arn=resource,
        created_at=at(days=1, hours=hours),
        completed_at=at(days=1, hours=hours + 0.2),
    )


def test_a_scan_applies_to_its_volume_by_snapshot_or_when_started_after_the_anomaly():
    book = Book()
    s = signal("vol-1", 2)
    book.add(replace(s, evidence=replace(s.evidence, instance_id="i-0abc")))
    (member,) = [combine([r], "x") for r in book.rows.values()]
    volume = member.volume_arn
    snap = s.id.rsplit("/", 1)[-1]
    assert inc.scan_applies(scan(volume, snap, 0), member)  # its snapshot, whenever
    assert inc.scan_applies(scan(volume, "snap-later", 3), member)  # started afterwards
    assert not inc.scan_applies(scan(volume, "snap-older", 1), member)
    assert not inc.scan_applies(scan(volume.replace("vol-1", "vol-9"), snap, 3), member)
    instance = "arn:aws:ec2:eu-west-1:111111111111:instance/i-0abc"
    assert inc.scan_applies(scan(instance, "ami-1", 3), member)


def test_threats_found_makes_it_critical_and_is_told_at_once():
    book = Book()
    book.add(signal("vol-1", 0, "high"))
    incident = book.only()
    members = [combine([r], incident.id) for r in book.rows.values()]
    finding = scan(members[0].volume_arn, "snap-x", 1)

    t = inc.apply_scan(book.index, finding, {incident.id: members}, RULES, NOW)

    assert t.heads[0].threats and t.heads[0].scanned == 1
    assert inc.severity(t.heads[0], RULES) is Severity.CRITICAL
    assert [(i.kind, i.email) for i in t.intents] == [(NoticeKind.UPDATED, True)]
    book._apply(t)
    members = [combine([r], incident.id) for r in book.rows.values()]
    again = inc.apply_scan(book.index, finding, {incident.id: members}, RULES, NOW)
    assert again is None  # the same result twice changes nothing
