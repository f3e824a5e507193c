"""Read functions for ``build.py report`` (security account credentials, the table's region).

Every function takes a boto3 DynamoDB client and the table name and returns typed
results. They read with queries only, never a scan of the table: the account-regions come
from the ``ROSTER`` and ``HEARD`` partitions, measurements from the account-region index
(``gsi1``, one query per account-region and time range, all pages), incidents from the
index item and the incident-head index. Expired items not yet deleted are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from correlator.incidents import Rules, severity
from correlator.records import Incident, OpsIncident, OpsKind, Severity, Status
from correlator.roster import account_names, heard_from, read_roster
from correlator.store import Store, WindowMeasurement

UNJUDGED = "unjudged"  # measurements of a detector that sends no verdict


def _store(client, table: str) -> Store:
    return Store(table, client, history=timedelta(days=0))


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


@dataclass(frozen=True)
class AccountRegionStatus:
    """One account-region: expected or not, and what was last heard from it.

    Attributes:
        expected: in the roster.
        interval_seconds: its backup interval (roster, else heartbeat; None: unknown).
        last_heard_at: the newer of its last measurement and heartbeat.
        silent: an open silence incident names it.
        member_last_measurement_at: the newest measurement its detector says it made.
    """

    account: str
    name: str | None
    region: str
    expected: bool
    interval_seconds: int | None
    last_measurement_at: datetime | None
    last_heartbeat_at: datetime | None
    last_heard_at: datetime | None
    silent: bool
    detector_version: str | None
    volumes_known: int | None
    member_last_measurement_at: datetime | None


def account_regions(client, table: str) -> list[AccountRegionStatus]:
    """Every account-region of the roster or heard from, sorted by account and region."""
    roster = {(e.entry.account, e.entry.region): e.entry for e in read_roster(client, table)}
    heard = {(h.account, h.region): h for h in heard_from(client, table)}
    names = account_names(client, table)
    silent = {
        (i.account, i.region)
        for i in _store(client, table).ops_items()
        if i.kind is OpsKind.SILENT and i.status is Status.OPEN
    }
    out = []
    for key in sorted(set(roster) | set(heard)):
        entry = roster.get(key)
        h = heard.get(key)
        interval = entry.interval_seconds if entry else (h.interval_seconds if h else None)
        out.append(
            AccountRegionStatus(
                account=key[0],
                name=names.get(key[0]),
                region=key[1],
                expected=entry is not None,
                interval_seconds=interval,
                last_measurement_at=h.last_measurement_at if h else None,
                last_heartbeat_at=h.last_heartbeat_at if h else None,
                last_heard_at=h.last_heard_at if h else None,
                silent=key in silent,
                detector_version=h.detector_version if h else None,
                volumes_known=h.volumes_known if h else None,
                member_last_measurement_at=h.member_last_measurement_at if h else None,
            )
        )
    return out


def _pairs(client, table: str) -> list[tuple[str, str]]:
    roster = {(e.entry.account, e.entry.region) for e in read_roster(client, table)}
    heard = {(h.account, h.region) for h in heard_from(client, table)}
    return sorted(roster | heard)


def _measurements(
    client, table: str, start: datetime, end: datetime
) -> Iterator[tuple[str, str, WindowMeasurement]]:
    store = _store(client, table)
    for account, region in _pairs(client, table):
        for m in store.window(account, region, start, end, end):
            yield account, region, m


@dataclass(frozen=True)
class VolumeSummary:
    """One volume measured in the period."""

    account: str
    region: str
    volume_arn: str
    volume_id: str
    measurements: int
    resets: int
    last_measured_at: datetime | None
    worst_severity: str
    instance_name: str | None


_ORDER = [s.value for s in Severity]


def _worse(a: str, b: str) -> str:
    rank = {v: i for i, v in enumerate([UNJUDGED, *_ORDER])}
    return a if rank.get(a, 0) >= rank.get(b, 0) else b


def volumes_measured(
    client, table: str, days: int = 7, now: datetime | None = None
) -> list[VolumeSummary]:
    """Every volume with a measurement or reset in the last ``days``, by account and id."""
    end = _now(now)
    found: dict[str, dict] = {}
    for account, region, m in _measurements(client, table, end - timedelta(days=days), end):
        entry = found.setdefault(
            m.volume_arn,
            {
                "account": account,
                "region": region,
                "volume_id": m.volume_id,
                "measurements": 0,
                "resets": 0,
                "last": None,
                "worst": UNJUDGED,
                "instance": None,
            },
        )
        if m.kind == "reset":
            entry["resets"] += 1
            continue
        entry["measurements"] += 1
        if entry["last"] is None or m.completion_time > entry["last"]:
            entry["last"] = m.completion_time
        entry["worst"] = _worse(m.severity or UNJUDGED, entry["worst"])
        entry["instance"] = m.instance_name or entry["instance"]
    return sorted(
        (
            VolumeSummary(
                account=e["account"],
                region=e["region"],
                volume_arn=arn,
                volume_id=e["volume_id"],
                measurements=e["measurements"],
                resets=e["resets"],
                last_measured_at=e["last"],
                worst_severity=e["worst"],
                instance_name=e["instance"],
            )
            for arn, e in found.items()
        ),
        key=lambda v: (v.account, v.region, v.volume_id),
    )


@dataclass(frozen=True)
class IncidentSummary:
    """An incident, security or operational.

    Attributes:
        kind: ``security``, or the operational kind (``silent``, ``stopped``, ``forged``).
        severity: for security incidents, as the rules compute it; operational: None.
        accounts: ``(account, name)`` pairs.
        notifications: how many were recorded.
    """

    id: str
    kind: str
    status: str
    severity: str | None
    volumes: int
    accounts: tuple[tuple[str, str | None], ...]
    regions: tuple[str, ...]
    first_at: datetime
    last_at: datetime | None
    threats: bool = False
    notifications: int = 0
    details: dict = field(default_factory=dict)


def _security(incident: Incident, names: dict[str, str], rules: Rules) -> IncidentSummary:
    return IncidentSummary(
        id=incident.id,
        kind="security",
        status=incident.status.value,
        severity=severity(incident, rules).value,
        volumes=incident.volumes,
        accounts=tuple((a, names.get(a)) for a in sorted(incident.accounts)),
        regions=tuple(sorted(incident.regions)),
        first_at=incident.first_at,
        last_at=incident.last_at,
        threats=incident.threats,
        notifications=incident.seq,
    )


def _operational(item: OpsIncident, names: dict[str, str]) -> IncidentSummary:
    return IncidentSummary(
        id=item.sort_key,
        kind=item.kind.value,
        status=item.status.value,
        severity=None,
        volumes=1 if item.kind is OpsKind.STOPPED else 0,
        accounts=((item.account, names.get(item.account)),),
        regions=(item.region,) if item.region else (),
        first_at=item.since,
        last_at=item.last_seen,
        notifications=item.seq,
        details=dict(item.details),
    )


def open_incidents(client, table: str, rules: Rules | None = None) -> list[IncidentSummary]:
    """Every open incident: security ones (the index item) and operational ones."""
    rules = rules or Rules()
    store = _store(client, table)
    names = account_names(client, table)
    security = [
        _security(i, names, rules) for i in store.read_index().incidents if i.status is Status.OPEN
    ]
    operational = [_operational(i, names) for i in store.ops_items() if i.status is Status.OPEN]
    return sorted(security, key=lambda s: s.first_at) + sorted(
        operational, key=lambda s: (s.kind, s.id)
    )


def incidents_since(
    client, table: str, days: int = 30, now: datetime | None = None, rules: Rules | None = None
) -> list[IncidentSummary]:
    """Security incidents whose first volume is within the last ``days`` (any status)."""
    rules = rules or Rules()
    names = account_names(client, table)
    heads = _store(client, table).heads_since(_now(now) - timedelta(days=days))
    return [_security(h, names, rules) for h in sorted(heads, key=lambda h: (h.first_at, h.id))]


@dataclass(frozen=True)
class DailyVerdicts:
    """Measurements of one UTC day by verdict severity (``unjudged``: no verdict)."""

    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def verdicts_by_day(
    client, table: str, days: int = 30, now: datetime | None = None
) -> list[DailyVerdicts]:
    """Per day of the last ``days`` (oldest first, every day present), the verdict counts."""
    end = _now(now)
    start_day = (end - timedelta(days=days - 1)).date()
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    counts: dict[date, Counter[str]] = {}
    for _, _, m in _measurements(client, table, start, end):
        if m.kind != "measurement":
            continue
        counts.setdefault(m.completion_time.date(), Counter())[m.severity or UNJUDGED] += 1
    out = []
    for offset in range(days):
        day = start_day + timedelta(days=offset)
        tally = counts.get(day, Counter())
        out.append(DailyVerdicts(day, {k: tally.get(k, 0) for k in [*_ORDER, UNJUDGED]}))
    return out


@dataclass(frozen=True)
class RewrittenVolume:
    """One measurement among the most rewritten."""

    account: str
    name: str | None
    region: str
    volume_arn: str
    volume_id: str
    completion_time: datetime
    share: float | None
    multiple: float | None
    percent_of_volume: float | None
    changed_blocks: int | None
    severity: str | None
    instance_name: str | None


def top_rewritten(
    client, table: str, days: int = 7, limit: int = 10, now: datetime | None = None
) -> list[RewrittenVolume]:
    """The ``limit`` most rewritten measurements of the last ``days``, one per volume.

    Ranked by the share of written data rewritten (the verdict's ``share``), then by the
    percentage of the volume changed for measurements without a verdict.
    """
    end = _now(now)
    names = account_names(client, table)
    best: dict[str, RewrittenVolume] = {}
    for account, region, m in _measurements(client, table, end - timedelta(days=days), end):
        if m.kind != "measurement":
            continue
        candidate = RewrittenVolume(
            account=account,
            name=names.get(account),
            region=region,
            volume_arn=m.volume_arn,
            volume_id=m.volume_id,
            completion_time=m.completion_time,
            share=m.share,
            multiple=m.multiple,
            percent_of_volume=m.percent_of_volume,
            changed_blocks=m.changed_blocks,
            severity=m.severity,
            instance_name=m.instance_name,
        )
        old = best.get(m.volume_arn)
        if old is None or _rank(candidate) > _rank(old):
            best[m.volume_arn] = candidate
    return sorted(best.values(), key=_rank, reverse=True)[:limit]


def _rank(v: RewrittenVolume) -> tuple[float, float, str]:
    return (v.share if v.share is not None else -1.0, v.percent_of_volume or 0.0, v.volume_id)
