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

from generator.config.model import OrgConfig, PermissionModel
from generator.errors import UserError
from generator.instance_groups import InstanceGroup
from generator.layout import StackSetLayout, layout
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
    """The StackSet as the config and the local build describe it.

    Attributes:
        layout: the StackSet's settings (name, permission model, roles, preferences...).
        template_body: the member template.
        template_url: where CloudFormation reads it.
        parameters: the StackSet's parameter values.
        tags: the StackSet's tags.
    """

    layout: StackSetLayout
    template_body: str
    template_url: str
    parameters: dict[str, str]
    tags: dict[str, str]

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def permission_model(self) -> PermissionModel:
        return self.layout.permission_model

    def template_dict(self) -> dict[str, Any]:
        return json.loads(self.template_body)


def stackset_spec(
    config: OrgConfig, template_body: str, template_url: str, code_key: str
) -> StackSetSpec:
    """The desired StackSet for ``config`` and the built member template."""
    return StackSetSpec(
        layout=layout(config).stackset,
        template_body=template_body,
        template_url=template_url,
        parameters=stackset_parameters(config, code_key),
        tags=tag_map(config),
    )


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
    for group in layout(config).stackset.groups:
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
    where = layout(config)
    return [
        StackTarget(
            placed.label,
            placed.name,
            placed.account,
            placed.region,
            bodies[placed.template],
            template_url=template_url(placed.template) if placed.template == "central" else None,
            tags=where.tags,
        )
        for placed in where.stacks
    ]
