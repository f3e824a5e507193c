"""Incident rules, as pure functions over typed records (no AWS here).

Which incident a signal joins
    A signal (an anomaly of at least the opening severity, a deleted previous snapshot, a
    malware scan that found threats) belongs to the incident whose time span
    ``[first, last]`` of backup completion times is within the correlation window of the
    signal's time, whichever account or region it comes from: an organization-wide wave is
    one incident. No such incident: the signal opens one. Several: the signal bridges them,
    and they merge into the oldest (the earliest ``first``, then the smallest id). This is
    single-linkage clustering on the time line, so the incidents that result do not depend
    on the order in which the signals arrive (late, duplicated, reordered), only on the set
    of signals. An incident closed longer ago than the late-event horizon has left the
    index and no longer takes signals (one arriving later opens a new incident).

Severity
    The worst of its volumes' severities, raised one level when the incident is broad:
    volumes (medium or worse) in 2+ accounts, or in 2+ regions, or at least
    ``escalation_volumes`` of them; critical when a malware scan of one of its volumes
    found threats.

Resolution and expiry
    A volume is recovered when a measurement judged none or low follows its last signal;
    the incident resolves when every volume is recovered, and reopens if a later signal
    makes one of them anomalous again. An open incident without a new signal for
    ``expiry`` closes as expired (told as such: not every volume was measured normal).

Notifications (``decide``)
    One when an incident opens (an email if it is at least ``notifying``, else to the
    audit queue only) or first reaches ``notifying``; one at once when its severity rises;
    one for growth (volumes, accounts, regions, scan results) at most every
    ``update_interval``, the sweep sending a deferred one (also for a closed incident that
    a late signal grew: the last message never under-reports); one when it resolves,
    expires, is merged into another or reopens. A repeated or already-counted signal changes
    nothing, so it notifies nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from correlator.records import (
    Incident,
    Member,
    NoticeKind,
    Scan,
    ScanFinding,
    Severity,
    Signal,
    Snapshot,
    Status,
    Tally,
    add_signal,
    best_finding,
    combine,
    worst,
)
from correlator.settings import Settings


@dataclass(frozen=True)
class Rules:
    """The settings the rules read (see ``correlator.contract`` for each)."""

    window: timedelta = timedelta(hours=24)
    opening: Severity = Severity.MEDIUM
    notifying: Severity = Severity.HIGH
    escalation_volumes: int = 5
    update_interval: timedelta = timedelta(minutes=15)
    expiry: timedelta = timedelta(days=7)
    late_horizon: timedelta = timedelta(hours=96)

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            window=settings.window,
            opening=settings.opening,
            notifying=settings.notifying,
            escalation_volumes=settings.escalation_volumes,
            update_interval=settings.update_interval,
            expiry=settings.expiry,
            late_horizon=settings.late_horizon,
        )


@dataclass(frozen=True)
class Index:
    """Every incident that can still take a signal, and the version guarding them."""

    version: int = 0
    incidents: tuple[Incident, ...] = ()

    def get(self, incident_id: str) -> Incident | None:
        return next((i for i in self.incidents if i.id == incident_id), None)


@dataclass(frozen=True)
class Route:
    """Where a signal goes: the incident it joins (None: a new one) and those it merges."""

    target: Incident | None
    merged: tuple[Incident, ...] = ()

    @property
    def families(self) -> tuple[str, ...]:
        """Every incident id whose rows may hold a volume of the resulting incident."""
        ids: list[str] = []
        for incident in (self.target, *self.merged):
            if incident is not None:
                ids.extend(incident.family)
        return tuple(ids)


@dataclass(frozen=True)
class Normal:
    """A volume's newest measurement judged none or low (what recovers it)."""

    time: datetime
    measurement_id: str


@dataclass(frozen=True)
class Intent:
    """A notification decided (rendered by ``messages``, published by ``notify``).

    Attributes:
        before: what the previous notification told (None: this is the first).
        after: what this one tells.
        merged_into: for MERGED, the incident that holds it now.
    """

    incident_id: str
    seq: int
    kind: NoticeKind
    email: bool
    before: Snapshot | None
    after: Snapshot
    merged_into: str | None = None

    @property
    def notice_id(self) -> str:
        return f"{self.incident_id}#{self.seq}"


@dataclass(frozen=True)
class Transition:
    """What one decision changes; the store writes it at once or not at all.

    Attributes:
        incidents: the index's incidents afterwards.
        heads: incidents that changed (each also kept in its own item).
        rows: member rows to write (combined states, in their root incident).
        aliases: ``(incident, instance, volume)``: an instance's volumes in an incident,
            so that a scan of the instance finds them.
        intents: notifications to record with it.
        outcome: what happened, for the log line.
    """

    incidents: tuple[Incident, ...]
    heads: tuple[Incident, ...]
    rows: tuple[Member, ...] = ()
    aliases: tuple[tuple[str, str, str], ...] = ()
    intents: tuple[Intent, ...] = ()
    outcome: str = ""


def new_incident_id(signal: Signal) -> str:
    """``inc-YYYYMMDD-<hash of the opening signal>``: the same for a retried opening."""
    digest = hashlib.sha256(signal.id.encode()).hexdigest()[:10]
    return f"inc-{signal.time.strftime('%Y%m%d')}-{digest}"


def distance(time: datetime, incident: Incident) -> timedelta:
    """How far ``time`` lies outside the incident's span (zero inside it)."""
    if time < incident.first_at:
        return incident.first_at - time
    if time > incident.last_at:
        return time - incident.last_at
    return timedelta(0)


def route(index: Index, time: datetime, rules: Rules) -> Route:
    """The incident a signal at ``time`` joins, and the incidents it bridges into it."""
    near = sorted(
        (i for i in index.incidents if distance(time, i) <= rules.window),
        key=lambda i: (i.first_at, i.id),
    )
    if not near:
        return Route(None)
    return Route(near[0], tuple(near[1:]))


def severity(incident: Incident, rules: Rules) -> Severity:
    """The incident's severity (see the module docstring)."""
    if incident.threats:
        return Severity.CRITICAL
    accounts = sum(1 for t in incident.accounts.values() if t.serious)
    regions = sum(1 for t in incident.regions.values() if t.serious)
    serious = sum(t.serious for t in incident.accounts.values())
    broad = accounts >= 2 or regions >= 2 or serious >= rules.escalation_volumes
    return incident.base_severity.raised() if broad else incident.base_severity


def snapshot(incident: Incident, rules: Rules, at: datetime) -> Snapshot:
    """What a notification sent now would tell."""
    return Snapshot(
        severity=severity(incident, rules),
        volumes=incident.volumes,
        accounts=tuple(sorted(incident.accounts)),
        regions=tuple(sorted(incident.regions)),
        scanned=incident.scanned,
        status=incident.status,
        at=at,
        threats=incident.threats,
    )


def _tally(tallies: Mapping[str, Tally], key: str, before: Member | None, after: Member):
    old = tallies.get(key, Tally())
    serious = old.serious - (1 if before is not None and before.serious else 0)
    new = Tally(
        volumes=old.volumes + (0 if before is not None else 1),
        serious=serious + (1 if after.serious else 0),
        worst=worst([old.worst, after.severity]),
    )
    return {**tallies, key: new}


def _count(incident: Incident, before: Member | None, after: Member) -> Incident:
    """``incident`` with one volume's contribution moved from ``before`` to ``after``."""

    def unrecovered(m: Member | None) -> int:
        return 0 if m is None or m.recovered else 1

    def scanned(m: Member | None) -> int:
        return 1 if m is not None and m.scan is not None else 0

    return replace(
        incident,
        volumes=incident.volumes + (0 if before is not None else 1),
        unrecovered=incident.unrecovered - unrecovered(before) + unrecovered(after),
        scanned=incident.scanned - scanned(before) + scanned(after),
        base_severity=worst([incident.base_severity, after.severity]),
        threats=incident.threats or after.threats,
        first_at=min(incident.first_at, after.first_at),
        last_at=max(incident.last_at, after.last_at),
        accounts=_tally(incident.accounts, after.account, before, after),
        regions=_tally(incident.regions, after.region, before, after),
    )


def _settle(incident: Incident, now: datetime) -> Incident:
    """The status its volumes imply: open while one is unrecovered, else resolved."""
    if incident.unrecovered > 0:
        if incident.status is Status.OPEN:
            return incident
        return replace(incident, status=Status.OPEN, closed_at=None)
    if incident.status is Status.RESOLVED:
        return incident
    return replace(incident, status=Status.RESOLVED, closed_at=now)


def decide(
    before: Incident | None, after: Incident, rules: Rules, now: datetime
) -> tuple[Incident, tuple[Intent, ...]]:
    """The notifications a change of an incident calls for (see the module docstring).

    Args:
        before: the incident before the change (None: it is new).
        after: the incident after it (``before`` itself when nothing changed: then only a
            deferred growth update can be due).
        rules: the settings.
        now: wall-clock time (update cadence).

    Returns:
        The incident with its notification counters and snapshots moved on, and the
        notifications in the order they are to be published.
    """
    intents: list[Intent] = []
    incident = after

    def record(kind: NoticeKind, email: bool) -> None:
        nonlocal incident
        told = snapshot(incident, rules, now)
        seq = incident.seq + 1
        merged_into = incident.merged_into if kind is NoticeKind.MERGED else None
        intents.append(Intent(incident.id, seq, kind, email, incident.reported, told, merged_into))
        incident = replace(
            incident, seq=seq, reported=told, notified=told if email else incident.notified
        )

    notifiable = severity(after, rules).at_least(rules.notifying)
    was = before.status if before is not None else None
    closing_kind = {
        Status.RESOLVED: NoticeKind.RESOLVED,
        Status.EXPIRED: NoticeKind.EXPIRED,
        Status.MERGED: NoticeKind.MERGED,
    }
    if after.status is Status.MERGED:
        if after.reported is not None and was is not Status.MERGED:
            record(NoticeKind.MERGED, after.notified is not None)
    elif after.reported is None:
        record(NoticeKind.OPENED, notifiable)
        if after.status.closed:
            # Opened already recovered (its normal measurement came first): say both.
            record(closing_kind[after.status], notifiable)
    elif was is not None and was.closed and after.status is Status.OPEN:
        record(NoticeKind.REOPENED, after.notified is not None or notifiable)
    elif after.status.closed and was is not after.status:
        record(closing_kind[after.status], after.notified is not None)
    elif after.status is Status.OPEN and after.notified is None and notifiable:
        record(NoticeKind.OPENED, True)  # it first reaches the notification minimum
    elif (
        after.status is Status.OPEN
        and after.notified is not None
        and (
            severity(after, rules).rank > after.notified.severity.rank
            or (after.threats and not after.notified.threats)
        )
    ):
        record(NoticeKind.UPDATED, True)  # worse, or a scan confirmed it: at once
    else:
        # Growth, at most every update interval. Also of a closed incident: a late signal
        # of a volume already measured normal again leaves it resolved, but the last
        # message must not under-report what the incident was.
        assert after.reported is not None
        told = snapshot(after, rules, now)
        if not told.same_as(after.reported) and now - after.reported.at >= rules.update_interval:
            record(NoticeKind.UPDATED, after.notified is not None or notifiable)
    return incident, tuple(intents)


def scan_applies(scan: Scan, member: Member) -> bool:
    """Whether a scan result bears on a member.

    The scan is of the member's resource (its volume, or the instance it is attached to)
    and of one of the member's anomalous snapshots, or started after its first anomalous
    backup (a scan of an older recovery point says nothing about the rewrite).
    """
    resource = scan.resource_arn
    same = resource == member.volume_arn or (
        member.instance_id is not None and resource.endswith(f"instance/{member.instance_id}")
    )
    if not same:
        return False
    snapshots = {signal_id.rsplit("/", 1)[-1] for signal_id in member.signal_ids}
    if scan.snapshot_id is not None and scan.snapshot_id in snapshots:
        return True
    return scan.at is not None and scan.at >= member.first_at


def _with_scans(member: Member, scans: Sequence[Scan]) -> Member:
    findings = [ScanFinding.of(s) for s in scans if scan_applies(s, member)]
    best = best_finding([member.scan, *findings])
    return member if best == member.scan else replace(member, scan=best)


def _with_normal(member: Member, normal: Normal | None) -> Member:
    if normal is None:
        return member
    if member.recovered_at is not None and member.recovered_at >= normal.time:
        return member
    return replace(member, recovered_at=normal.time, recovered_by=normal.measurement_id)


@dataclass(frozen=True)
class MergeGroup:
    """One volume of the incidents being merged: its state in them and in the target."""

    theirs: Member
    ours: Member | None


def join(
    index: Index,
    routed: Route,
    signal: Signal,
    *,
    rows: Sequence[Member],
    merge_groups: Sequence[MergeGroup],
    normal: Normal | None,
    scans: Sequence[Scan],
    rules: Rules,
    now: datetime,
) -> Transition | None:
    """Adds one signal to the incident it belongs to (opening or merging as needed).

    Args:
        index: the incidents, as read (the write is conditional on its version).
        routed: ``route(index, signal.time, rules)``.
        signal: the signal.
        rows: every row of the signal's volume in ``routed.families``.
        merge_groups: every volume of the merged incidents, with its state in the target
            (read from ``routed.merged`` and the target's family).
        normal: the volume's newest normal measurement after ``signal.time``, if any.
        scans: finished scans of the volume (and of its instance).
        rules: the settings.
        now: wall-clock time.

    Returns:
        The transition, or None when the signal was already counted (a duplicate).
    """
    before_member = combine(rows, "")
    if before_member is not None and signal.id in before_member.signal_ids:
        return None
    target = routed.target
    if target is None:
        incident = Incident(
            id=new_incident_id(signal),
            status=Status.OPEN,
            first_at=signal.time,
            last_at=signal.time,
            opened_at=now,
            updated_at=now,
        )
    else:
        incident = target
    heads: list[Incident] = []
    intents: list[Intent] = []
    outcome = "joined" if target is not None else "opened"
    if routed.merged:
        outcome = f"merged {len(routed.merged)} into"
        for other in routed.merged:
            closed = replace(other, status=Status.MERGED, merged_into=incident.id, closed_at=now)
            closed, told = decide(other, closed, rules, now)
            heads.append(closed)
            intents.extend(told)
            incident = replace(
                incident,
                absorbed=tuple(dict.fromkeys((*incident.absorbed, *other.family))),
                first_at=min(incident.first_at, other.first_at),
                last_at=max(incident.last_at, other.last_at),
            )
        for group in merge_groups:
            if group.ours is None:
                incident = _count(incident, None, group.theirs)
            else:
                both = combine([group.ours, group.theirs], incident.id)
                assert both is not None
                incident = _count(incident, group.ours, both)
    before = replace(before_member, incident_id=incident.id) if before_member else None
    member = add_signal(before, signal, incident.id)
    member = _with_normal(_with_scans(member, scans), normal)
    incident = _count(incident, before, member)
    incident = _settle(replace(incident, updated_at=now), now)
    incident, told = decide(target, incident, rules, now)
    intents[:0] = told
    merged_ids = {h.id for h in heads}
    others = tuple(i for i in index.incidents if i.id != incident.id and i.id not in merged_ids)
    aliases: tuple[tuple[str, str, str], ...] = ()
    if member.instance_id:
        aliases = ((incident.id, member.instance_id, member.volume_arn),)
    return Transition(
        incidents=prune((incident, *others), rules, now),
        heads=(incident, *heads),
        rows=(member,),
        aliases=aliases,
        intents=tuple(intents),
        outcome=outcome,
    )


def apply_scan(
    index: Index,
    scan: Scan,
    matches: Mapping[str, Sequence[Member]],
    rules: Rules,
    now: datetime,
) -> Transition | None:
    """Adds a finished scan's result to the incidents whose volumes it scanned.

    Args:
        index: the incidents, as read.
        scan: the scan.
        matches: per incident id (in the index), the combined members the scan's resource
            names (its volume, or the volumes of its instance).
        rules: the settings.
        now: wall-clock time.

    Returns:
        The transition, or None when it changes nothing (no match, or already known).
    """
    heads: list[Incident] = []
    rows: list[Member] = []
    intents: list[Intent] = []
    for incident_id, members in sorted(matches.items()):
        before = index.get(incident_id)
        if before is None:
            continue
        incident = before
        for member in members:
            updated = _with_scans(member, [scan])
            if updated != member:
                incident = _count(incident, member, updated)
                rows.append(updated)
        if incident is before:
            continue
        incident, told = decide(before, incident, rules, now)
        heads.append(incident)
        intents.extend(told)
    if not heads:
        return None
    changed = {h.id: h for h in heads}
    incidents = tuple(changed.get(i.id, i) for i in index.incidents)
    return Transition(
        incidents=prune(incidents, rules, now),
        heads=tuple(heads),
        rows=tuple(rows),
        intents=tuple(intents),
        outcome="scan added",
    )


def recover(
    index: Index,
    incident: Incident,
    members: Sequence[Member],
    normals: Mapping[str, Normal],
    rules: Rules,
    now: datetime,
) -> Transition | None:
    """Marks the members measured normal after their last signal as recovered.

    Args:
        index: the incidents, as read.
        incident: one of them, open.
        members: some of its combined members (those checked in this step).
        normals: per volume ARN, its newest normal measurement after its last signal.
        rules: the settings.
        now: wall-clock time.

    Returns:
        The transition (resolving the incident when no volume is left unrecovered), or
        None when none of the members recovered.
    """
    updated = incident
    rows: list[Member] = []
    for member in members:
        if member.recovered:
            continue
        after = _with_normal(member, normals.get(member.volume_arn))
        if after.recovered:
            updated = _count(updated, member, after)
            rows.append(after)
    if not rows:
        return None
    updated = _settle(updated, now)
    updated, told = decide(incident, updated, rules, now)
    incidents = tuple(updated if i.id == incident.id else i for i in index.incidents)
    return Transition(
        incidents=prune(incidents, rules, now),
        heads=(updated,),
        rows=tuple(rows),
        intents=told,
        outcome="resolved" if updated.status is Status.RESOLVED else "recovered",
    )


def tidy(index: Index, rules: Rules, now: datetime) -> Transition | None:
    """The sweep's changes that need no reads: expiry, deferred updates, pruning.

    Returns:
        The transition, or None when nothing is due.
    """
    heads: list[Incident] = []
    intents: list[Intent] = []
    incidents: list[Incident] = []
    for incident in index.incidents:
        after = incident
        if incident.status is Status.OPEN and now - incident.updated_at >= rules.expiry:
            after = replace(incident, status=Status.EXPIRED, closed_at=now)
        after, told = decide(incident, after, rules, now)
        if after != incident:
            heads.append(after)
            intents.extend(told)
        incidents.append(after)
    kept = prune(tuple(incidents), rules, now)
    if not heads and len(kept) == len(index.incidents):
        return None
    return Transition(incidents=kept, heads=tuple(heads), intents=tuple(intents), outcome="tidied")


def prune(incidents: Sequence[Incident], rules: Rules, now: datetime) -> tuple[Incident, ...]:
    """The incidents that can still take a signal: open, or closed within the horizon."""
    return tuple(
        i
        for i in incidents
        if i.status is Status.OPEN
        or (
            i.status is not Status.MERGED
            and i.closed_at is not None
            and now - i.closed_at < rules.late_horizon
        )
    )
