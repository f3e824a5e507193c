"""Group deployment targets into as few StackSet instance groups as the API allows.

One group per distinct (regions, parameter overrides): the StackSet resource's
``StackInstancesGroup`` and the deploy code's ``CreateStackInstances`` calls both take
these, so a thousand accounts with default settings are one group, not a thousand calls.
Under SERVICE_MANAGED an account with settings of its own is carved out of its OU's group
(``DIFFERENCE``) and deployed through its own group (``INTERSECTION`` with its OU); an
excluded account (``exclude: true``) is carved out the same way and gets no group at all.
Under SELF_MANAGED an excluded account is simply in no group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backup_anomaly import contract
from backup_anomaly.contract import Scope
from generator.config.model import BackupMode, OrgConfig, PermissionModel
from generator.config.resolve import ResolvedTarget
from generator.config.resolve import targets as resolved_targets

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
    settings: Mapping[str, object], *, with_backup: bool = True
) -> tuple[tuple[str, str], ...]:
    """Member template parameter values a target sets, as sorted (key, value) pairs.

    Args:
        settings: the target's overridden settings, by contract name.
        with_backup: False in backup mode ``existing``: the member template then has no
            backup plan parameters, and StackSets reject overrides of parameters a
            template does not declare.
    """
    pairs = []
    for name, value in settings.items():
        entry = contract.setting(name)
        if entry.parameter is None or (entry.scope is Scope.BACKUP_PLAN and not with_backup):
            continue
        pairs.append((entry.parameter, entry.encode(value)))
    return tuple(sorted(pairs))


_Overrides = Callable[[ResolvedTarget], tuple[tuple[str, str], ...]]


def _has_own_settings(
    account: ResolvedTarget, parent: ResolvedTarget | None, overrides: _Overrides
) -> bool:
    if parent is None:
        return True
    return account.regions != parent.regions or overrides(account) != overrides(parent)


def instance_groups(config: OrgConfig) -> list[InstanceGroup]:
    """The instance groups for ``config``, sorted so output is deterministic."""
    targets = resolved_targets(config)
    with_backup = config.backup.mode is BackupMode.CREATE

    def overrides(target: ResolvedTarget) -> tuple[tuple[str, str], ...]:
        return parameter_overrides(target.settings, with_backup=with_backup)

    if config.deployment.permission_model is PermissionModel.SELF_MANAGED:
        return _self_managed(targets, overrides)
    excluded = [(a.id, a.ou) for a in config.deployment.targets.excluded()]
    return _service_managed(targets, excluded, overrides)


def _self_managed(targets: list[ResolvedTarget], overrides: _Overrides) -> list[InstanceGroup]:
    by_key: dict[tuple, list[str]] = defaultdict(list)
    for target in targets:
        if target.kind == "account":
            key = (target.regions, overrides(target))
            by_key[key].append(target.id)
    return sorted(
        InstanceGroup(regions=r, parameter_overrides=p, accounts=tuple(sorted(a)))
        for (r, p), a in by_key.items()
    )


def _service_managed(
    targets: list[ResolvedTarget],
    excluded: list[tuple[str, str | None]],
    overrides: _Overrides,
) -> list[InstanceGroup]:
    """Groups for OU targets, carve-outs and accounts with settings of their own.

    Args:
        targets: the resolved targets (excluded accounts are not among them).
        excluded: (account, its OU) of every excluded account.
        overrides: the parameter overrides of a target.
    """
    ous = {t.id: t for t in targets if t.kind == "ou"}
    carved: dict[str, list[str]] = defaultdict(list)  # OU id -> accounts excluded from it
    for excluded_id, excluded_ou in excluded:
        # Under an OU that is no target nothing reaches the account: no carve-out needed.
        if excluded_ou in ous:
            carved[excluded_ou].append(excluded_id)
    own: dict[tuple, tuple[set[str], list[str]]] = {}
    account: ResolvedTarget
    for account in (t for t in targets if t.kind == "account"):
        parent = ous.get(account.ou or "")
        if not _has_own_settings(account, parent, overrides):
            continue  # covered by its OU's group
        if parent is not None:
            carved[parent.id].append(account.id)
        key = (account.regions, overrides(account))
        own_ous, own_accounts = own.setdefault(key, (set(), []))
        own_ous.add(account.ou or "")
        own_accounts.append(account.id)

    groups: list[InstanceGroup] = []
    plain: dict[tuple, list[str]] = defaultdict(list)
    for ou in ous.values():
        key = (ou.regions, overrides(ou))
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
    for (regions, params), (parents, accounts) in own.items():
        for chunk in _chunks(sorted(parents), MAX_OUS_PER_CALL):
            members = tuple(sorted(accounts))
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
