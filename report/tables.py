"""The report's tables as plain rows of text, so the terminal and the HTML page agree.

Each function turns part of a :class:`~report.collect.FleetReport` into a :class:`Table`;
``report.text`` prints them with rich, ``report.html`` writes them as HTML tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from correlator import queries
from report.collect import FleetReport

SEVERITIES = ("critical", "high", "medium", "low", "none")


@dataclass(frozen=True)
class Table:
    """A titled table; ``status`` per row (``ok``, ``warn``, ``bad`` or ``""``) colours it."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    status: tuple[str, ...]
    empty: str

    def __post_init__(self) -> None:
        assert len(self.status) == len(self.rows)


def _table(
    key: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Sequence[str], str]],
    empty: str,
) -> Table:
    return Table(
        key,
        title,
        tuple(columns),
        tuple(tuple(r) for r, _ in rows),
        tuple(s for _, s in rows),
        empty,
    )


def age(when: datetime | None, now: datetime) -> str:
    """``when`` as a time and how long before ``now`` (``never`` for None)."""
    if when is None:
        return "never"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 2 * 86400:
        ago = f"{seconds / 3600:.0f} h ago"
    else:
        ago = f"{seconds / 86400:.0f} days ago"
    return f"{when:%Y-%m-%d %H:%M} ({ago})"


def _interval(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds // 86400} d" if seconds % 86400 == 0 else f"{seconds / 3600:g} h"


def account_label(account: str, name: str | None) -> str:
    return f"{name} ({account})" if name else account


def account_regions(report: FleetReport) -> Table:
    # The detector's heartbeat may say how many volumes it knows; else the volumes the
    # central table saw measured in the period.
    measured: dict[tuple[str, str], int] = defaultdict(int)
    for v in report.volumes:
        measured[(v.account, v.region)] += 1
    rows = []
    for a in report.account_regions:
        if a.silent:
            state, status = "SILENT", "bad"
        elif a.expected and a.last_heard_at is None:
            state, status = "never heard from", "warn"
        elif not a.expected:
            state, status = "not in the roster", "warn"
        else:
            state, status = "reporting", "ok"
        rows.append(
            (
                (
                    account_label(a.account, a.name),
                    a.region,
                    state,
                    _interval(a.interval_seconds),
                    age(a.last_heard_at, report.generated_at),
                    age(a.last_measurement_at, report.generated_at),
                    str(
                        a.volumes_known
                        if a.volumes_known is not None
                        else measured.get((a.account, a.region), 0)
                    ),
                    a.detector_version or "?",
                ),
                status,
            )
        )
    return _table(
        "accounts",
        "Accounts and regions protected",
        (
            "Account",
            "Region",
            "State",
            "Backups every",
            "Last heard",
            "Last measurement",
            "Volumes",
            "Detector",
        ),
        rows,
        "No account-region in the roster or heard from: run `build.py deploy` first.",
    )


def _incident_row(i: queries.IncidentSummary, now: datetime) -> tuple[tuple[str, ...], str]:
    accounts = ", ".join(account_label(a, n) for a, n in i.accounts)
    if i.kind == "security":
        what = f"{(i.severity or '?').upper()} incident"
        status = "bad" if i.severity in ("high", "critical") else "warn"
    else:
        what = {
            "silent": "SILENT account-region",
            "stopped": "BACKUPS STOPPED",
            "forged": "FORGED events",
        }.get(i.kind, i.kind.upper())
        status = "warn"
    scan = "threats found" if i.threats else ""
    return (
        (
            i.id,
            what,
            i.status,
            accounts,
            ", ".join(i.regions),
            str(i.volumes),
            age(i.first_at, now),
            age(i.last_at, now),
            scan,
        ),
        "bad" if i.threats else status,
    )


_INCIDENT_COLUMNS = (
    "Incident",
    "What",
    "Status",
    "Accounts",
    "Regions",
    "Volumes",
    "Since",
    "Last signal",
    "Scan",
)


def open_incidents(report: FleetReport) -> Table:
    return _table(
        "open",
        "Open incidents",
        _INCIDENT_COLUMNS,
        [_incident_row(i, report.generated_at) for i in report.open_incidents],
        "No open incident.",
    )


def recent_incidents(report: FleetReport) -> Table:
    return _table(
        "recent",
        f"Security incidents of the last {report.days} days",
        _INCIDENT_COLUMNS,
        [_incident_row(i, report.generated_at) for i in report.recent_incidents],
        f"No security incident in the last {report.days} days.",
    )


def verdicts(report: FleetReport) -> Table:
    rows = []
    for day in report.verdicts:
        counts = day.counts
        cells = (str(counts.get(s, 0)) for s in (*SEVERITIES, queries.UNJUDGED))
        worst = next((s for s in SEVERITIES[:4] if counts.get(s)), "")  # "none" is no news
        status = "bad" if worst in ("high", "critical") else "warn" if worst else ""
        rows.append(((f"{day.day:%Y-%m-%d}", *cells, str(day.total)), status))
    total = {s: sum(d.counts.get(s, 0) for d in report.verdicts) for s in SEVERITIES}
    unjudged = sum(d.counts.get(queries.UNJUDGED, 0) for d in report.verdicts)
    everything = sum(d.total for d in report.verdicts)
    rows.append(
        (("total", *(str(total[s]) for s in SEVERITIES), str(unjudged), str(everything)), "")
    )
    return _table(
        "verdicts",
        f"Verdicts by severity, last {report.days} days (UTC days of the backups)",
        ("Day", *SEVERITIES, "unjudged", "Measurements"),
        rows,
        "No measurement.",
    )


def volumes(report: FleetReport) -> Table:
    """Per account-region: volumes measured, measurements, resets, the worst verdict."""
    groups: dict[tuple[str, str], list[queries.VolumeSummary]] = defaultdict(list)
    for v in report.volumes:
        groups[(v.account, v.region)].append(v)
    names = {a.account: a.name for a in report.account_regions}
    rank = {s: i for i, s in enumerate(reversed((*SEVERITIES, queries.UNJUDGED)))}
    rows = []
    for (account, region), found in sorted(groups.items()):
        worst = max((v.worst_severity for v in found), key=lambda s: rank.get(s, 0))
        flagged = sum(1 for v in found if v.worst_severity in SEVERITIES[:4])
        status = "bad" if worst in ("high", "critical") else "warn" if flagged else "ok"
        rows.append(
            (
                (
                    account_label(account, names.get(account)),
                    region,
                    str(len(found)),
                    str(sum(v.measurements for v in found)),
                    str(sum(v.resets for v in found)),
                    str(flagged),
                    worst,
                ),
                status,
            )
        )
    return _table(
        "volumes",
        f"Volumes measured, last {report.days} days",
        ("Account", "Region", "Volumes", "Measurements", "Resets", "Flagged", "Worst verdict"),
        rows,
        f"No volume measured in the last {report.days} days.",
    )


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{value * 100:.1f}%"


def top_rewritten(report: FleetReport) -> Table:
    rows = []
    for v in report.top_rewritten:
        rows.append(
            (
                (
                    v.volume_id + (f' "{v.instance_name}"' if v.instance_name else ""),
                    account_label(v.account, v.name),
                    v.region,
                    _percent(v.share),
                    "?" if v.multiple is None else f"{v.multiple:.1f}x",
                    "?" if v.percent_of_volume is None else f"{v.percent_of_volume:.1f}%",
                    v.severity or queries.UNJUDGED,
                    f"{v.completion_time:%Y-%m-%d %H:%M}",
                ),
                "bad" if v.severity in ("high", "critical") else "",
            )
        )
    return _table(
        "top",
        f"Most rewritten volumes, last {report.days} days (one backup each)",
        (
            "Volume",
            "Account",
            "Region",
            "Of written data",
            "Of its usual",
            "Of the volume",
            "Verdict",
            "Backup",
        ),
        rows,
        "No measurement.",
    )


def all_tables(report: FleetReport) -> list[Table]:
    """Every table, in the order the report shows them."""
    return [
        account_regions(report),
        open_incidents(report),
        recent_incidents(report),
        verdicts(report),
        volumes(report),
        top_rewritten(report),
    ]


def headline(report: FleetReport) -> str:
    """One line: the fleet and what needs attention."""
    expected = sum(1 for a in report.account_regions if a.expected)
    accounts = len({a.account for a in report.account_regions if a.expected})
    security = [i for i in report.open_incidents if i.kind == "security"]
    operational = len(report.open_incidents) - len(security)
    return (
        f"{accounts} account(s), {expected} account-region(s) expected; "
        f"{len(report.volumes)} volume(s) measured in {report.days} days; "
        f"{len(security)} open security incident(s), {operational} operational; "
        f"{len(report.silent)} silent"
    )
