"""Silence is an alert: account-regions that stop reporting, volumes whose backups stop.

Run by the scheduled sweep.

Account-regions
    The roster (``correlator.roster``) names the account-regions expected to report and
    their backup interval; when it is empty (never deployed with one), every account-region
    ever heard from is watched instead. One is silent when neither a measurement (by its
    backup's completion time) nor a heartbeat arrived for ``silence_intervals`` intervals
    (since it entered the roster, if never heard from): the detector broke, its
    permissions were revoked, backups stopped, or forwarding fails. That opens one
    operational incident per silent account-region; hearing from it again resolves it.

Volumes
    In an account-region that is not silent, a volume with at least ``regular_backups``
    measurements in the recent window whose newest is older than ``silence_intervals``
    intervals had its backups stopped (stopping backups precedes encryption): one
    operational incident per volume, resolved when it is measured again. Each
    account-region's volumes are checked at most four times an interval.

Every change is written with its notice pending (compare-and-swap on the item's version)
and the notices of one run go out as one email (``notify.Outbox.deliver_ops``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from correlator.messages import render_ops
from correlator.notify import Outbox
from correlator.records import Heard, OpsIncident, OpsKind, Status, iso
from correlator.roster import Expected
from correlator.store import Conflict, Store, WindowMeasurement


@dataclass(frozen=True)
class SilenceRules:
    """The settings the silence check reads (see ``correlator.contract``)."""

    intervals: float = 2.0
    regular: int = 3
    default_interval_seconds: int = 86400


@dataclass(frozen=True)
class Watch:
    """One account-region watched for silence.

    Attributes:
        interval_seconds: its backup interval (roster, else its heartbeat, else the default).
        since: when it became expected (roster) or was first heard from.
        last_heard: its newest measurement or heartbeat (None: never heard from).
        member_last_measurement: the newest measurement its detector says it made.
    """

    account: str
    region: str
    interval_seconds: int
    since: datetime
    last_heard: datetime | None
    expected: bool
    member_last_measurement: datetime | None = None
    volumes_checked_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.account}#{self.region}"

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_seconds)


def watched(
    roster: Sequence[Expected], heard: Sequence[Heard], rules: SilenceRules, now: datetime
) -> list[Watch]:
    """The account-regions to watch: the roster's, or every one heard from without one."""
    by_key = {(h.account, h.region): h for h in heard}
    out = []
    if roster:
        for expected in roster:
            e = expected.entry
            h = by_key.get((e.account, e.region))
            out.append(
                Watch(
                    account=e.account,
                    region=e.region,
                    interval_seconds=e.interval_seconds,
                    since=expected.since,
                    last_heard=h.last_heard_at if h else None,
                    expected=True,
                    member_last_measurement=h.member_last_measurement_at if h else None,
                    volumes_checked_at=h.volumes_checked_at if h else None,
                )
            )
        return out
    for h in heard:
        out.append(
            Watch(
                account=h.account,
                region=h.region,
                interval_seconds=h.interval_seconds or rules.default_interval_seconds,
                since=h.first_heard_at or h.last_heard_at or now,
                last_heard=h.last_heard_at,
                expected=False,
                member_last_measurement=h.member_last_measurement_at,
                volumes_checked_at=h.volumes_checked_at,
            )
        )
    return out


# The members' heartbeat schedule (generator.naming.HEARTBEAT_SCHEDULE, rate(6 hours); a
# test keeps the two equal). An account-region with hourly backups and no job in a quiet
# hour is still heard from at least this often, so silence is judged on no less.
HEARTBEAT_SECONDS = 6 * 3600


def is_silent(watch: Watch, rules: SilenceRules, now: datetime) -> bool:
    reference = watch.last_heard or watch.since
    interval = max(watch.interval, timedelta(seconds=HEARTBEAT_SECONDS))
    return now - reference > interval * rules.intervals


def silence_changes(
    watches: Sequence[Watch],
    items: Mapping[str, OpsIncident],
    rules: SilenceRules,
    now: datetime,
) -> list[OpsIncident]:
    """The silent incidents to open and to resolve (without their notices yet)."""
    changes = []
    keys = set()
    for watch in watches:
        key = f"{OpsKind.SILENT.value}#{watch.key}"
        keys.add(key)
        item = items.get(key)
        open_now = item is not None and item.status is Status.OPEN
        if is_silent(watch, rules, now) and not open_now:
            details = {
                "intervalSeconds": watch.interval_seconds,
                "lastHeardAt": iso(watch.last_heard) if watch.last_heard else None,
                "expected": watch.expected,
                "memberLastMeasurementAt": (
                    iso(watch.member_last_measurement) if watch.member_last_measurement else None
                ),
            }
            changes.append(
                OpsIncident(
                    kind=OpsKind.SILENT,
                    key=watch.key,
                    account=watch.account,
                    region=watch.region,
                    status=Status.OPEN,
                    since=watch.last_heard or watch.since,
                    details={k: v for k, v in details.items() if v is not None},
                    version=item.version if item else 0,
                    seq=item.seq if item else 0,
                )
            )
        elif open_now and not is_silent(watch, rules, now):
            assert item is not None
            changes.append(
                replace(item, status=Status.RESOLVED, last_seen=watch.last_heard, closed_at=now)
            )
    for key, item in items.items():
        if item.kind is OpsKind.SILENT and item.status is Status.OPEN and key not in keys:
            # Left the roster: no longer expected to report.
            changes.append(replace(item, status=Status.RESOLVED, closed_at=now))
    return changes


def volume_check_due(watch: Watch, now: datetime) -> bool:
    if watch.volumes_checked_at is None:
        return True
    return now - watch.volumes_checked_at >= watch.interval / 4


def volume_window(watch: Watch, rules: SilenceRules) -> timedelta:
    """How far back the volume check reads measurements."""
    return watch.interval * (rules.intervals + rules.regular + 1)


def stopped_volumes(
    measurements: Iterable[WindowMeasurement],
    watch: Watch,
    rules: SilenceRules,
    now: datetime,
) -> dict[str, tuple[str, datetime, int]]:
    """Volumes measured regularly whose newest backup is too old.

    Returns:
        Per volume ARN: its volume id, its newest measured backup, how many were seen.
    """
    seen: dict[str, tuple[str, set[datetime]]] = {}
    for m in measurements:
        if m.kind != "measurement":
            continue
        volume_id, times = seen.setdefault(m.volume_arn, (m.volume_id, set()))
        times.add(m.completion_time)
    out = {}
    for arn, (volume_id, times) in seen.items():
        last = max(times)
        if len(times) >= rules.regular and now - last > watch.interval * rules.intervals:
            out[arn] = (volume_id, last, len(times))
    return out


def stopped_changes(
    watch: Watch,
    stopped: Mapping[str, tuple[str, datetime, int]],
    items: Mapping[str, OpsIncident],
) -> list[OpsIncident]:
    """The stopped-volume incidents to open for one account-region."""
    changes = []
    for arn, (volume_id, last, count) in sorted(stopped.items()):
        key = f"{OpsKind.STOPPED.value}#{arn}"
        item = items.get(key)
        if item is not None and item.status is Status.OPEN:
            continue
        if item is not None and item.last_seen is not None and item.last_seen >= last:
            continue  # resolved by a measurement at least as new: this is old news
        changes.append(
            OpsIncident(
                kind=OpsKind.STOPPED,
                key=arn,
                account=watch.account,
                region=watch.region,
                status=Status.OPEN,
                since=last,
                count=count,
                details={"volumeId": volume_id, "intervalSeconds": watch.interval_seconds},
                version=item.version if item else 0,
                seq=item.seq if item else 0,
            )
        )
    return changes


def with_notice(
    item: OpsIncident, run: str, now: datetime, names: Mapping[str, str]
) -> OpsIncident:
    """``item`` with the notice of its change pending (and its counter moved on)."""
    seq = item.seq + 1
    notice = render_ops(replace(item, seq=seq), seq, run, now, names)
    return replace(item, seq=seq, pending=notice, pending_claimed_at=now)


class SilenceCheck:
    """The scheduled silence check against the central table.

    Args:
        store: the central table.
        outbox: publishes the notices.
        rules: the settings.
        names: account id -> name, for the messages.
    """

    def __init__(self, store: Store, outbox: Outbox, rules: SilenceRules, names: Mapping[str, str]):
        self.store = store
        self.outbox = outbox
        self.rules = rules
        self.names = names

    def run(self, roster: Sequence[Expected], now: datetime) -> list[OpsIncident]:
        """Opens and resolves the silence incidents; returns the changes written."""
        items = {i.sort_key: i for i in self.store.ops_items()}
        watches = watched(roster, self.store.heard(), self.rules, now)
        changes = silence_changes(watches, items, self.rules, now)
        silent_now = {c.key for c in changes if c.status is Status.OPEN}
        silent_now |= {
            i.key for i in items.values() if i.kind is OpsKind.SILENT and i.status is Status.OPEN
        }
        for watch in watches:
            if watch.key in silent_now or not volume_check_due(watch, now):
                continue
            window = self.store.window(
                watch.account, watch.region, now - volume_window(watch, self.rules), now, now
            )
            stopped = stopped_volumes(window, watch, self.rules, now)
            changes += stopped_changes(watch, stopped, items)
            self.store.set_volumes_checked(watch.account, watch.region, now)
        for item in items.values():
            if item.kind is OpsKind.STOPPED and item.status is Status.OPEN:
                again = self.store.measured_after(item.key, item.since)
                if again is not None:
                    changes.append(
                        replace(item, status=Status.RESOLVED, last_seen=again, closed_at=now)
                    )
        run = f"sweep-{iso(now)}"
        written = []
        for change in changes:
            pending = with_notice(change, run, now, self.names)
            try:
                self.store.put_ops(pending, change.version)
            except Conflict:
                continue  # a concurrent run wrote this change, and publishes its notice
            written.append(replace(pending, version=change.version + 1))
        self.outbox.deliver_ops(written, own=True)
        return written
