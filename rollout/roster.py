"""The correlator's roster from the plan: which account-regions must report, and how often.

``deploy`` writes it to the central table once the central stack is in place, before the
StackSet operations, so an instance that then fails to deploy is not forgotten: it never
reports, and the correlator raises its silence incident.

The interval is the backup schedule's (when the stack creates the plan and the schedule
runs at one fixed interval), else the detector's alarm period, which the config documents
as the backup interval of plans it does not create.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from botocore.exceptions import ClientError

from backup_anomaly import contract
from correlator.records import RosterEntry
from correlator.roster import RosterError, put_roster
from generator.config.model import BackupMode, OrgConfig
from generator.config.schedule import schedule_interval
from generator.naming import Names
from rollout.desired import DesiredInstance
from rollout.display import Display
from rollout.organization import OrgTree
from rollout.sessions import AwsSessions
from rollout.stacks import DeployFailed


def _parameter(config: OrgConfig, instance: DesiredInstance, setting: str) -> str:
    """The value the instance's stack runs with: its override, else the config's."""
    entry = contract.setting(setting)
    own = dict(instance.overrides)
    if entry.parameter in own:
        return own[entry.parameter]
    return str(config.setting(setting))


def interval_seconds(config: OrgConfig, instance: DesiredInstance) -> int:
    """Seconds between the instance's backups, as the silence check should expect them."""
    if config.backup.mode is BackupMode.CREATE:
        interval = schedule_interval(_parameter(config, instance, "schedule"))
        if interval is not None:
            return interval
    return int(_parameter(config, instance, "alarm_period_seconds"))


def account_names(config: OrgConfig, org: OrgTree | None) -> dict[str, str]:
    """Account id -> name: the config's name first, else the organization's."""
    found = {a.id: a.name for a in (org.accounts.values() if org else ()) if a.name}
    for account in config.deployment.targets.accounts:
        if account.name:
            found[account.id] = account.name
    return found


def roster_entries(
    config: OrgConfig, desired: Iterable[DesiredInstance], names_by_account: Mapping[str, str]
) -> list[RosterEntry]:
    """One entry per desired stack instance, sorted by account and region."""
    return sorted(
        (
            RosterEntry(
                account=d.account,
                name=names_by_account.get(d.account, ""),
                region=d.region,
                interval_seconds=interval_seconds(config, d),
            )
            for d in desired
        ),
        key=lambda e: (e.account, e.region),
    )


def write_roster(
    config: OrgConfig,
    sessions: AwsSessions,
    desired: Iterable[DesiredInstance],
    org: OrgTree | None,
    display: Display,
) -> int:
    """Replaces the central roster with the plan's instances; returns the items changed.

    Raises:
        DeployFailed: DynamoDB refused the write (the message says which table and why).
    """
    entries = roster_entries(config, desired, account_names(config, org))
    account, region = config.security.account_id, config.security.home_region
    table = Names(config.name).correlator_table
    client = sessions.client("dynamodb", account, region)
    try:
        changed = put_roster(client, table, entries)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeployFailed(
            f"roster of expected account-regions not written to {table} in {account}/{region}: "
            f"{error.get('Code')}: {error.get('Message', exc)}"
        ) from exc
    except (RosterError, RuntimeError) as exc:
        raise DeployFailed(f"roster not written to {table}: {exc}") from exc
    display.line(
        f"  roster: {len(entries)} account-region(s) expected to report"
        + (f" ({changed} item(s) changed)" if changed else " (unchanged)")
    )
    return changed
