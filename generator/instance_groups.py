"""Group deployment targets into as few StackSet instance groups as the API allows.

One group per distinct (regions, parameter overrides): the StackSet resource's
``StackInstancesGroup`` and the deploy code's ``CreateStackInstances`` calls both take
these, so a thousand accounts with default settings are one group, not a thousand calls.
Under SERVICE_MANAGED an account with settings of its own is carved out of its OU's group
(``DIFFERENCE``) and deployed through its own group (``INTERSECTION`` with its OU).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from generator import naming
from generator.config.model import (
    BackupOverrides,
    DetectionOverrides,
    OrgConfig,
    PermissionModel,
    ResolvedTarget,
)

MAX_OUS_PER_CALL = 50


@dataclass(frozen=True, order=True)
class InstanceGroup:
    """Targets that share regions and parameter overrides."""

    regions: tuple[str, ...]
    parameter_overrides: tuple[tuple[str, str], ...]
    organizational_unit_ids: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    account_filter_type: str | None = None  # INTERSECTION / DIFFERENCE / None


def parameter_overrides(
    detection: DetectionOverrides, backup: BackupOverrides
) -> tuple[tuple[str, str], ...]:
    """Member template parameter values a target sets, as sorted (key, value) pairs."""
    values = {
        naming.PARAM_BAND_WIDTH: detection.band_width,
        naming.PARAM_CEILING_PERCENT: detection.ceiling_percent,
        naming.PARAM_ALARM_PERIOD: detection.alarm_period_seconds,
        naming.PARAM_EVALUATION_PERIODS: detection.evaluation_periods,
        naming.PARAM_BACKUP_SCHEDULE: backup.schedule,
        naming.PARAM_RETENTION_DAYS: backup.retention_days,
    }
    return tuple(sorted((k, _param(v)) for k, v in values.items() if v is not None))


def _param(value: object) -> str:
    # CloudFormation parameters are strings; 2.0 and 2 must compare equal in plans.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _has_own_settings(account: ResolvedTarget, parent: ResolvedTarget | None) -> bool:
    if parent is None:
        return True
    return account.regions != parent.regions or parameter_overrides(
        account.detection, account.backup
    ) != parameter_overrides(parent.detection, parent.backup)


def instance_groups(config: OrgConfig) -> list[InstanceGroup]:
    """The instance groups for ``config``, sorted so output is deterministic."""
    targets = config.targets()
    if config.deployment.permission_model is PermissionModel.SELF_MANAGED:
        return _self_managed(targets)
    return _service_managed(targets)


def _self_managed(targets: list[ResolvedTarget]) -> list[InstanceGroup]:
    by_key: dict[tuple, list[str]] = defaultdict(list)
    for target in targets:
        if target.kind == "account":
            key = (target.regions, parameter_overrides(target.detection, target.backup))
            by_key[key].append(target.id)
    return sorted(
        InstanceGroup(regions=r, parameter_overrides=p, accounts=tuple(sorted(a)))
        for (r, p), a in by_key.items()
    )


def _service_managed(targets: list[ResolvedTarget]) -> list[InstanceGroup]:
    ous = {t.id: t for t in targets if t.kind == "ou"}
    carved: dict[str, list[str]] = defaultdict(list)  # OU id -> accounts excluded from it
    own: dict[tuple, tuple[set[str], list[str]]] = {}
    for account in (t for t in targets if t.kind == "account"):
        parent = ous.get(account.ou or "")
        if not _has_own_settings(account, parent):
            continue  # covered by its OU's group
        if parent is not None:
            carved[parent.id].append(account.id)
        key = (account.regions, parameter_overrides(account.detection, account.backup))
        ou_ids, accounts = own.setdefault(key, (set(), []))
        ou_ids.add(account.ou)
        accounts.append(account.id)

    groups: list[InstanceGroup] = []
    plain: dict[tuple, list[str]] = defaultdict(list)
    for ou in ous.values():
        key = (ou.regions, parameter_overrides(ou.detection, ou.backup))
        if carved.get(ou.id):
            # Each OU with carve-outs is its own group: DIFFERENCE applies to the group's
            # whole account list, which is fine across OUs, but keeping them apart makes
            # plans read naturally ("OU x except a, b").
            groups.append(
                InstanceGroup(
                    regions=key[0],
                    parameter_overrides=key[1],
                    organizational_unit_ids=(ou.id,),
                    accounts=tuple(sorted(carved[ou.id])),
                    account_filter_type="DIFFERENCE",
                )
            )
        else:
            plain[key].append(ou.id)
    for (regions, params), ou_ids in plain.items():
        for chunk in _chunks(sorted(ou_ids), MAX_OUS_PER_CALL):
            groups.append(
                InstanceGroup(
                    regions=regions, parameter_overrides=params, organizational_unit_ids=chunk
                )
            )
    for (regions, params), (ou_ids, accounts) in own.items():
        for chunk in _chunks(sorted(ou_ids), MAX_OUS_PER_CALL):
            members = tuple(sorted(a for a in accounts))
            groups.append(
                InstanceGroup(
                    regions=regions,
                    parameter_overrides=params,
                    organizational_unit_ids=chunk,
                    accounts=members,
                    account_filter_type="INTERSECTION",
                )
            )
    return sorted(groups)


def _chunks(items: list[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)] or [()]
