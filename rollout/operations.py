"""Turn instance changes into as few StackSet operations as the API allows.

Create, update and delete take a set of accounts (or OU targets) crossed with a set of
regions, and one set of parameter overrides. So changes are grouped: by instance group
(one set of overrides), then by the exact set of regions an account needs. A thousand new
accounts with default settings are one CreateStackInstances call, never a thousand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from generator.config.model import OrgConfig, PermissionModel
from rollout.compare import InstanceChange


@dataclass(frozen=True)
class InstanceOperation:
    """One CreateStackInstances / UpdateStackInstances / DeleteStackInstances call."""

    kind: str  # create | update | delete
    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    organizational_unit_ids: tuple[str, ...] = ()
    account_filter_type: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()

    def targets(self, service_managed: bool) -> dict[str, Any]:
        """The Accounts or DeploymentTargets argument."""
        if not service_managed:
            return {"Accounts": list(self.accounts)}
        targets: dict[str, Any] = {"OrganizationalUnitIds": list(self.organizational_unit_ids)}
        if self.account_filter_type:
            targets["Accounts"] = list(self.accounts)
            targets["AccountFilterType"] = self.account_filter_type
        return {"DeploymentTargets": targets}

    def describe(self) -> str:
        who = (
            f"OU {', '.join(self.organizational_unit_ids)}" if self.organizational_unit_ids else ""
        )
        if self.accounts:
            accounts = ", ".join(self.accounts[:5]) + (" ..." if len(self.accounts) > 5 else "")
            filt = {"DIFFERENCE": " except ", "INTERSECTION": " only "}.get(
                self.account_filter_type or "", " "
            )
            who = f"{who}{filt}{accounts}".strip() if who else f"accounts {accounts}"
        return f"{self.kind} {who} in {', '.join(self.regions)}"


def _by_region_set(pairs: list[tuple[str, str]]) -> dict[tuple[str, ...], list[str]]:
    """(account, region) pairs -> {sorted regions: accounts needing exactly those}."""
    regions_of: dict[str, set[str]] = defaultdict(set)
    for account, region in pairs:
        regions_of[account].add(region)
    grouped: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for account, regions in sorted(regions_of.items()):
        grouped[tuple(sorted(regions))].append(account)
    return grouped


def instance_operations(
    config: OrgConfig, changes: list[InstanceChange], desired_count: dict[Any, int]
) -> list[InstanceOperation]:
    """The calls that apply ``changes``: deletes first (offboarding frees nothing else up,
    but a removed account must not be updated first), then creates, then updates.

    Args:
        config: the organization config.
        changes: the plan's instance changes.
        desired_count: instance group -> number of instances it should have; a group whose
            instances are all new is created through its own targets (so auto-deployment
            learns the OU), not account by account.
    """
    service = config.deployment.permission_model is PermissionModel.SERVICE_MANAGED
    ops: list[InstanceOperation] = []

    removed = [c for c in changes if c.action == "remove"]
    ou_of = {c.account: c.deployed.ou for c in removed if c.deployed is not None}
    for regions, accounts in _by_region_set([(c.account, c.region) for c in removed]).items():
        if service:
            parents = tuple(sorted({ou for a in accounts if (ou := ou_of.get(a))}))
            ops.append(
                InstanceOperation("delete", regions, tuple(accounts), parents, "INTERSECTION")
            )
        else:
            ops.append(InstanceOperation("delete", regions, tuple(accounts)))

    # The OU each account was found through: an INTERSECTION names only the OUs needed.
    ou_of_account = {c.account: c.desired.ou for c in changes if c.desired and c.desired.ou}

    def ous(group: Any, accounts: list[str]) -> tuple[str, ...]:
        found = {ou_of_account[a] for a in accounts if a in ou_of_account}
        return tuple(sorted(found)) or group.organizational_unit_ids

    added: dict[Any, list[tuple[str, str]]] = defaultdict(list)
    for c in changes:
        if c.action == "add" and c.desired is not None:
            added[(c.desired.group, c.overrides)].append((c.account, c.region))
    for (group, overrides), pairs in sorted(added.items()):
        # The whole group at once through its own targets (so auto-deployment learns the
        # OU) when every instance is new and none sets more than the group does.
        if (
            service
            and overrides == group.parameter_overrides
            and len(pairs) == desired_count.get(group, -1)
        ):
            ops.append(
                InstanceOperation(
                    "create",
                    group.regions,
                    group.accounts,
                    group.organizational_unit_ids,
                    group.account_filter_type,
                    group.parameter_overrides,
                )
            )
            continue
        for regions, accounts in _by_region_set(pairs).items():
            if service:
                ops.append(
                    InstanceOperation(
                        "create",
                        regions,
                        tuple(accounts),
                        ous(group, accounts),
                        "INTERSECTION",
                        overrides,
                    )
                )
            else:
                ops.append(
                    InstanceOperation("create", regions, tuple(accounts), overrides=overrides)
                )

    updated: dict[Any, list[tuple[str, str]]] = defaultdict(list)
    for c in changes:
        if c.action == "update" and c.desired is not None:
            updated[(c.desired.group, c.overrides)].append((c.account, c.region))
    for (group, overrides), pairs in sorted(updated.items()):
        for regions, accounts in _by_region_set(pairs).items():
            if service:
                ops.append(
                    InstanceOperation(
                        "update",
                        regions,
                        tuple(accounts),
                        ous(group, accounts),
                        "INTERSECTION",
                        overrides,
                    )
                )
            else:
                ops.append(
                    InstanceOperation("update", regions, tuple(accounts), overrides=overrides)
                )
    return ops
