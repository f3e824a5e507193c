"""What goes where: one typed description of a deployment, derived from the config once.

The templates, the manifest and the rollout commands all read this instead of each
re-deriving the stacks, the regions, the instance groups, the StackSet's settings, its
operation preferences and role ARNs from the config: each of those has one source here.
Pure: no I/O, no AWS calls.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from generator.config.model import OperationPreferences, OrgConfig, PermissionModel
from generator.config.regions import partition_of
from generator.config.resolve import targets as resolved_targets
from generator.instance_groups import InstanceGroup, instance_groups
from generator.naming import Names
from generator.templates.common import tag_map


@dataclass(frozen=True)
class StackPlacement:
    """One stack outside the StackSet.

    Attributes:
        template: the template it deploys (its name in ``dist/``).
        label: what to call it in plans and progress lines.
        name: the stack name.
        account: where it goes.
        region: where it goes.
    """

    template: str
    label: str
    name: str
    account: str
    region: str


@dataclass(frozen=True)
class StackSetLayout:
    """The member StackSet as the config describes it.

    Attributes:
        name: the StackSet name.
        permission_model: SERVICE_MANAGED or SELF_MANAGED.
        call_as: ``CallAs`` of every StackSet call (SERVICE_MANAGED only; None otherwise).
        administration_role_name: SELF_MANAGED: the role StackSets assumes in the admin
            account; None under SERVICE_MANAGED.
        execution_role_name: SELF_MANAGED: the role it assumes in each target.
        permissions_boundary: SELF_MANAGED: the managed policy (name) every role the member
            stack creates carries as its permissions boundary; None under SERVICE_MANAGED.
        auto_deployment: SERVICE_MANAGED: ``{"Enabled", "RetainStacksOnAccountRemoval"}``.
        managed_execution: queue conflicting operations instead of failing them.
        groups: the instance groups (one per distinct regions and overrides).
        regions: every region a target deploys to, in config order.
        preferences: the config's operation preferences.
        admin_account: where the StackSet lives.
        partition: the deployment's partition (every region is in one).
    """

    name: str
    permission_model: PermissionModel
    call_as: str | None
    administration_role_name: str | None
    execution_role_name: str | None
    permissions_boundary: str | None
    auto_deployment: dict[str, bool] | None
    managed_execution: bool
    groups: tuple[InstanceGroup, ...]
    regions: tuple[str, ...]
    preferences: OperationPreferences
    admin_account: str
    partition: str

    @property
    def service_managed(self) -> bool:
        return self.permission_model is PermissionModel.SERVICE_MANAGED

    @property
    def administration_role_arn(self) -> str | None:
        """The administration role's ARN in the deployment's partition (CreateStackSet
        rejects an ``arn:aws:`` role in aws-us-gov or aws-cn)."""
        if self.administration_role_name is None:
            return None
        return (
            f"arn:{self.partition}:iam::{self.admin_account}:role/{self.administration_role_name}"
        )

    def call_as_args(self) -> dict[str, str]:
        """``{"CallAs": ...}`` for StackSet calls (only SERVICE_MANAGED accepts it)."""
        return {"CallAs": self.call_as} if self.call_as else {}

    def operation_preferences(self, regions: tuple[str, ...] | None = None) -> dict[str, Any]:
        """``OperationPreferences`` of one operation over ``regions`` (default: all).

        ``RegionOrder`` keeps the config's order for the regions it names, then the rest.
        """
        prefs = self.preferences
        regions = self.regions if regions is None else regions
        out: dict[str, Any] = {
            "RegionConcurrencyType": prefs.region_concurrency.value,
            "ConcurrencyMode": prefs.concurrency_mode.value,
        }
        if prefs.failure_tolerance_count is not None:
            out["FailureToleranceCount"] = prefs.failure_tolerance_count
        if prefs.failure_tolerance_percentage is not None:
            out["FailureTolerancePercentage"] = prefs.failure_tolerance_percentage
        if prefs.max_concurrent_count is not None:
            out["MaxConcurrentCount"] = prefs.max_concurrent_count
        elif prefs.max_concurrent_percentage is not None:
            out["MaxConcurrentPercentage"] = prefs.max_concurrent_percentage
        order = [r for r in prefs.region_order if r in regions]
        if order:
            out["RegionOrder"] = order + [r for r in regions if r not in order]
        return out


@dataclass(frozen=True)
class Layout:
    """Every place the deployment puts something.

    Attributes:
        name: the config's product prefix.
        admin_account: the StackSet admin account (delegated admin when set).
        security_account: where the central stack goes.
        home_region: the central stack's region (and the StackSet's).
        partition: the deployment's partition.
        artifact_regions: regions that need an artifact bucket, sorted.
        stacks: the stacks outside the StackSet, in deploy order.
        stackset: the StackSet.
        tags: the tags of every stack and resource.
    """

    name: str
    admin_account: str
    security_account: str
    home_region: str
    partition: str
    artifact_regions: tuple[str, ...]
    stacks: tuple[StackPlacement, ...]
    stackset: StackSetLayout
    tags: dict[str, str]

    def artifact_bucket(self, region: str) -> str:
        return Names(self.name).artifact_bucket(self.admin_account, region)

    def stacks_of(self, template: str) -> tuple[StackPlacement, ...]:
        return tuple(s for s in self.stacks if s.template == template)


def _stackset(config: OrgConfig, regions: tuple[str, ...], partition: str) -> StackSetLayout:
    deployment = config.deployment
    service = deployment.permission_model is PermissionModel.SERVICE_MANAGED
    auto = deployment.auto_deployment
    roles = deployment.stackset_roles
    return StackSetLayout(
        name=Names(config.name).stackset,
        permission_model=deployment.permission_model,
        call_as=deployment.call_as.value if service else None,
        administration_role_name=None if service else roles.administration_role_name,
        execution_role_name=None if service else roles.execution_role_name,
        permissions_boundary=None if service else Names(config.name).member_boundary,
        auto_deployment=(
            {
                "Enabled": auto.enabled,
                "RetainStacksOnAccountRemoval": auto.retain_stacks_on_account_removal,
            }
            if service
            else None
        ),
        managed_execution=deployment.managed_execution,
        groups=tuple(instance_groups(config)),
        regions=regions,
        preferences=deployment.operation_preferences,
        admin_account=config.admin_account_id,
        partition=partition,
    )


def _target_regions(config: OrgConfig) -> tuple[str, ...]:
    found: dict[str, None] = dict.fromkeys(config.deployment.regions)
    for target in resolved_targets(config):
        found.update(dict.fromkeys(target.regions))
    return tuple(found)


def _build(config: OrgConfig) -> Layout:
    names = Names(config.name)
    admin, home = config.admin_account_id, config.security.home_region
    partition = partition_of(home) or "aws"
    regions = _target_regions(config)
    artifact_regions = tuple(sorted({*regions, home}))
    stacks = [
        StackPlacement("artifacts", "artifacts stack", names.artifacts_stack, admin, region)
        for region in artifact_regions
    ]
    stackset = _stackset(config, regions, partition)
    if not stackset.service_managed:
        # The execution role must exist in every target before StackSets can deploy there,
        # so this bootstrap stack is the one thing deployed account by account.
        targets = sorted({a for g in stackset.groups for a in g.accounts} - {admin})
        stacks += [
            StackPlacement(
                "stackset-roles", "StackSet roles stack", names.stackset_roles_stack, account, home
            )
            for account in [admin, *targets]
        ]
    stacks.append(
        StackPlacement(
            "central", "central stack", names.central_stack, config.security.account_id, home
        )
    )
    return Layout(
        name=config.name,
        admin_account=admin,
        security_account=config.security.account_id,
        home_region=home,
        partition=partition,
        artifact_regions=artifact_regions,
        stacks=tuple(stacks),
        stackset=stackset,
        tags=tag_map(config),
    )


_LAYOUTS: dict[int, Layout] = {}


def layout(config: OrgConfig) -> Layout:
    """The deployment's layout (computed once per config object).

    Cached by identity, outside the model (a config holds lists: it is not hashable); the
    entry goes with the config.
    """
    key = id(config)
    found = _LAYOUTS.get(key)
    if found is None:
        found = _LAYOUTS[key] = _build(config)
        weakref.finalize(config, _LAYOUTS.pop, key, None)
    return found
