"""What the config asks to be deployed: the StackSet's settings and its stack instances.

Instances are computed per (account, region) from the instance groups, so the plan can
compare them one by one with ``ListStackInstances``; under SERVICE_MANAGED the OU targets
are resolved to accounts through Organizations, the way StackSets itself resolves them
(child OUs included, the management account never).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from generator import naming
from generator.config.model import OrgConfig, PermissionModel
from generator.config.regions import partition_of
from generator.config.resolve import targets as resolved_targets
from generator.errors import UserError
from generator.instance_groups import InstanceGroup, instance_groups
from generator.naming import Names
from generator.synth import artifact_regions
from generator.templates.common import tag_map
from generator.templates.stackset import stackset_parameters
from rollout.organization import OrgTree
from rollout.stacks import StackTarget

Overrides = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DesiredInstance:
    """One stack instance the config asks for."""

    account: str
    region: str
    overrides: Overrides
    group: InstanceGroup
    ou: str | None = None


@dataclass(frozen=True)
class StackSetSpec:
    """The StackSet as the config describes it."""

    name: str
    template_body: str
    template_url: str
    parameters: dict[str, str]
    permission_model: PermissionModel
    call_as: str
    auto_deployment: dict[str, bool] | None
    managed_execution: bool
    administration_role_arn: str | None
    execution_role_name: str | None
    tags: dict[str, str]

    def template_dict(self) -> dict[str, Any]:
        return json.loads(self.template_body)


def stackset_spec(
    config: OrgConfig, template_body: str, template_url: str, code_key: str
) -> StackSetSpec:
    """The desired StackSet for ``config`` and the built member template."""
    names = Names(config.name)
    deployment = config.deployment
    service = deployment.permission_model is PermissionModel.SERVICE_MANAGED
    admin = config.admin_account_id
    return StackSetSpec(
        name=names.stackset,
        template_body=template_body,
        template_url=template_url,
        parameters=stackset_parameters(config, code_key),
        permission_model=deployment.permission_model,
        call_as=deployment.call_as.value,
        auto_deployment=(
            {
                "Enabled": deployment.auto_deployment.enabled,
                "RetainStacksOnAccountRemoval": (
                    deployment.auto_deployment.retain_stacks_on_account_removal
                ),
            }
            if service
            else None
        ),
        managed_execution=deployment.managed_execution,
        # The partition of the deployment (the config keeps all its regions in one):
        # CreateStackSet rejects an "arn:aws:" role in aws-us-gov or aws-cn.
        administration_role_arn=(
            None
            if service
            else f"arn:{partition_of(config.security.home_region) or 'aws'}:iam::{admin}:"
            f"role/{naming.STACKSET_ADMIN_ROLE}"
        ),
        execution_role_name=None if service else naming.STACKSET_EXECUTION_ROLE,
        tags=tag_map(config),
    )


def target_regions(config: OrgConfig) -> list[str]:
    """Every region any target deploys to, in config order (artifact buckets go there)."""
    regions: dict[str, None] = {}
    for region in config.deployment.regions:
        regions[region] = None
    for target in resolved_targets(config):
        for region in target.regions:
            regions[region] = None
    return list(regions)


def desired_instances(
    config: OrgConfig, org: OrgTree | None = None
) -> dict[tuple[str, str], DesiredInstance]:
    """Every (account, region) instance the config asks for.

    Args:
        config: the organization config.
        org: the organization below the targeted OUs (SERVICE_MANAGED only).

    Excluded accounts are never desired: their instances, if any, are removed.

    Raises:
        UserError: an account falls under two targets with different settings, or an
            excluded account is reached through an OU it is not carved out of.
    """
    management = config.organization.management_account_id
    found: dict[tuple[str, str], DesiredInstance] = {}
    for group in instance_groups(config):
        for account, ou in _group_accounts(config, group, org):
            if config.deployment.permission_model is PermissionModel.SERVICE_MANAGED and (
                account == management
            ):
                continue  # StackSets never deploys to the management account
            for region in group.regions:
                instance = DesiredInstance(account, region, group.parameter_overrides, group, ou)
                previous = found.get((account, region))
                if previous is not None and previous.overrides != instance.overrides:
                    raise UserError(
                        f"account {account} in {region} is targeted twice with different "
                        f"settings (through {previous.ou or previous.account} and "
                        f"{ou or account}); target it once"
                    )
                found[(account, region)] = instance
    _check_excluded(config, found)
    return dict(sorted(found.items()))


def _check_excluded(config: OrgConfig, found: dict[tuple[str, str], DesiredInstance]) -> None:
    """An excluded account must not be desired.

    It can be only under SERVICE_MANAGED, when its ``ou`` is not the targeted OU that
    reaches it (a child OU of a target, or an OU it has left): the carve-out then names the
    wrong OU, and the config cannot know that without Organizations.
    """
    excluded = {a.id: a for a in config.deployment.targets.excluded()}
    if not excluded:
        return
    for (account, _region), instance in sorted(found.items()):
        if account in excluded:
            raise UserError(
                f"account {account} has exclude: true but OU {instance.ou} still reaches it "
                f"(its ou is {excluded[account].ou}); set its ou to {instance.ou} so it is "
                "carved out of that OU"
            )


def _group_accounts(
    config: OrgConfig, group: InstanceGroup, org: OrgTree | None
) -> list[tuple[str, str | None]]:
    if config.deployment.permission_model is PermissionModel.SELF_MANAGED:
        return [(a, None) for a in group.accounts]
    if org is None:
        raise ValueError("SERVICE_MANAGED targets need the organization tree")
    members: dict[str, str] = {}
    for ou in group.organizational_unit_ids:
        for account in org.accounts_under(ou):
            members.setdefault(account.id, ou)
    listed = set(group.accounts)
    if group.account_filter_type == "INTERSECTION":
        members = {a: ou for a, ou in members.items() if a in listed}
    elif group.account_filter_type == "DIFFERENCE":
        members = {a: ou for a, ou in members.items() if a not in listed}
    return sorted(members.items())


def stack_targets(
    config: OrgConfig, bodies: dict[str, str], template_url: Any
) -> list[StackTarget]:
    """The stacks outside the StackSet, in deploy order: artifacts, roles, central.

    Args:
        config: the organization config.
        bodies: template name (``artifacts``, ``stackset-roles``, ``central``) -> JSON body.
        template_url: ``(name) -> URL`` of a template uploaded to the home region's bucket,
            used when a body is too large to pass inline.
    """
    names = Names(config.name)
    admin = config.admin_account_id
    home = config.security.home_region
    tags = tag_map(config)
    targets = [
        StackTarget(
            "artifacts stack", names.artifacts_stack, admin, region, bodies["artifacts"], tags=tags
        )
        for region in artifact_regions(config)
    ]
    if config.deployment.permission_model is PermissionModel.SELF_MANAGED:
        # The execution role must exist in every target before StackSets can deploy there,
        # so this bootstrap stack is the one thing deployed account by account.
        accounts = [admin] + sorted(
            {a for g in instance_groups(config) for a in g.accounts} - {admin}
        )
        targets += [
            StackTarget(
                "StackSet roles stack",
                names.stack(naming.STACKSET_ROLES_STACK_SUFFIX),
                account,
                home,
                bodies["stackset-roles"],
                tags=tags,
            )
            for account in accounts
        ]
    targets.append(
        StackTarget(
            "central stack",
            names.central_stack,
            config.security.account_id,
            home,
            bodies["central"],
            template_url=template_url("central"),
            tags=tags,
        )
    )
    return targets
