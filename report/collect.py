"""What the report shows, read once from the central table into one typed record.

Reads go through ``correlator.queries`` (queries only, never a table scan), with the
security account's credentials in its home region. The incident rules are the config's
``correlation`` settings, decoded exactly as the correlator decodes its environment, so
an incident's severity here is the one the correlator computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from correlator import contract as correlator_contract
from correlator import queries
from correlator import settings as correlator_settings
from correlator.incidents import Rules
from generator.config.model import OrgConfig


@dataclass(frozen=True)
class FleetReport:
    """The fleet at ``generated_at``; ``days`` is the period of the per-day tables."""

    generated_at: datetime
    days: int
    table: str
    account_regions: list[queries.AccountRegionStatus]
    volumes: list[queries.VolumeSummary]
    open_incidents: list[queries.IncidentSummary]
    recent_incidents: list[queries.IncidentSummary]
    verdicts: list[queries.DailyVerdicts]
    top_rewritten: list[queries.RewrittenVolume]

    @property
    def silent(self) -> list[queries.AccountRegionStatus]:
        return [a for a in self.account_regions if a.silent]

    @property
    def never_heard(self) -> list[queries.AccountRegionStatus]:
        return [a for a in self.account_regions if a.expected and a.last_heard_at is None]


def rules(config: OrgConfig) -> Rules:
    """The correlator's incident rules for ``config``, through its own settings parser."""
    environ = {
        entry.env: entry.encode(config.setting(entry.name))
        for entry in correlator_contract.environment()
        if entry.env is not None and entry.config is not None
    }
    environ[correlator_contract.setting("central_table").env or ""] = "report"
    return Rules.of(correlator_settings.load(environ))


def collect(
    client, table: str, days: int, rules: Rules, top: int = 10, now: datetime | None = None
) -> FleetReport:
    """Reads everything the report shows.

    Args:
        client: boto3 DynamoDB client (security account, the table's region).
        table: the central table's name.
        days: the period of the volumes, verdict and incident tables.
        rules: the correlator's incident rules.
        top: how many of the most rewritten volumes to list.
        now: the report's time (default: now).
    """
    now = now or datetime.now(UTC)
    return FleetReport(
        generated_at=now,
        days=days,
        table=table,
        account_regions=queries.account_regions(client, table),
        volumes=queries.volumes_measured(client, table, days=days, now=now),
        open_incidents=queries.open_incidents(client, table, rules),
        recent_incidents=queries.incidents_since(client, table, days=days, now=now, rules=rules),
        verdicts=queries.verdicts_by_day(client, table, days=days, now=now),
        top_rewritten=queries.top_rewritten(client, table, days=days, limit=top, now=now),
    )
