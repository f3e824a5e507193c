"""Compare the config with what is deployed, and render the difference.

The plan covers the stacks outside the StackSet (artifacts, roles, central), the StackSet
itself (template, parameters, settings) and every stack instance per account and region:
``+`` add, ``~`` update (parameter overrides), ``-`` remove. ``deploy`` executes exactly
this plan, so a plan with no changes means a deploy makes no StackSet operation.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from rich.markup import escape

from generator.config.model import OrgConfig, PermissionModel
from generator.errors import UserError
from rollout.desired import DesiredInstance, StackSetSpec, desired_instances
from rollout.display import Display
from rollout.organization import OrgTree, read_organization
from rollout.stacks import StackState

DESCRIBE_WORKERS = 8


@dataclass(frozen=True)
class DeployedInstance:
    """One stack instance as ListStackInstances / DescribeStackInstance report it."""

    account: str
    region: str
    status: str
    status_reason: str = ""
    detailed_status: str = ""
    ou: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()
    drift_status: str = ""


@dataclass(frozen=True)
class InstanceChange:
    """One instance to add, update or remove."""

    action: str  # add | update | remove
    account: str
    region: str
    desired: DesiredInstance | None = None
    deployed: DeployedInstance | None = None
    overrides: tuple[tuple[str, str], ...] = ()  # what an update or add sends
    reason: str = ""

    @property
    def symbol(self) -> str:
        return {"add": "+", "update": "~", "remove": "-"}[self.action]


@dataclass(frozen=True)
class StackSetState:
    """What a deploy would do to the StackSet resource itself."""

    action: str  # create | update | none
    reasons: tuple[str, ...] = ()
    deployed: dict | None = None


@dataclass
class Plan:
    """Everything ``deploy`` would change."""

    config: OrgConfig
    stacks: list[StackState]
    spec: StackSetSpec
    stackset: StackSetState
    instances: list[InstanceChange]
    unchanged_instances: int
    desired: dict[tuple[str, str], DesiredInstance] = field(default_factory=dict)
    org: OrgTree | None = None

    @property
    def has_changes(self) -> bool:
        return (
            any(s.action != "none" for s in self.stacks)
            or self.stackset.action != "none"
            or bool(self.instances)
        )

    def count(self, action: str) -> int:
        return sum(1 for c in self.instances if c.action == action)


# --- reading what is deployed ---------------------------------------------------------------


def call_as(config: OrgConfig) -> dict[str, str]:
    """The CallAs argument for StackSet calls (only SERVICE_MANAGED accepts it)."""
    if config.deployment.permission_model is PermissionModel.SERVICE_MANAGED:
        return {"CallAs": config.deployment.call_as.value}
    return {}


def describe_stackset(cfn: Any, spec: StackSetSpec, config: OrgConfig) -> dict | None:
    try:
        return cfn.describe_stack_set(StackSetName=spec.name, **call_as(config))["StackSet"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "StackSetNotFoundException":
            return None
        raise


def list_instances(
    cfn: Any, name: str, config: OrgConfig, **filters: Any
) -> list[DeployedInstance]:
    """Every stack instance of the StackSet (all pages)."""
    found = []
    paginator = cfn.get_paginator("list_stack_instances")
    for page in paginator.paginate(StackSetName=name, **call_as(config), **filters):
        for s in page.get("Summaries", []):
            found.append(
                DeployedInstance(
                    account=s["Account"],
                    region=s["Region"],
                    status=s.get("Status", ""),
                    status_reason=s.get("StatusReason", ""),
                    detailed_status=s.get("StackInstanceStatus", {}).get("DetailedStatus", ""),
                    ou=s.get("OrganizationalUnitId"),
                    drift_status=s.get("DriftStatus", ""),
                )
            )
    return found


def with_overrides(
    cfn: Any, name: str, config: OrgConfig, instances: list[DeployedInstance]
) -> list[DeployedInstance]:
    """Adds each instance's parameter overrides (DescribeStackInstance, a few at a time).

    ListStackInstances does not report overrides; botocore's standard retry mode absorbs
    the throttling a large organization causes here.
    """

    def one(instance: DeployedInstance) -> DeployedInstance:
        described = cfn.describe_stack_instance(
            StackSetName=name,
            StackInstanceAccount=instance.account,
            StackInstanceRegion=instance.region,
            **call_as(config),
        )["StackInstance"]
        overrides = tuple(
            sorted(
                (p["ParameterKey"], p.get("ParameterValue", ""))
                for p in described.get("ParameterOverrides", [])
            )
        )
        return DeployedInstance(**{**instance.__dict__, "overrides": overrides})

    if not instances:
        return []
    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        return list(pool.map(one, instances))


# --- comparing --------------------------------------------------------------------------------


def stackset_state(spec: StackSetSpec, deployed: dict | None) -> StackSetState:
    """Compares the deployed StackSet with ``spec``.

    Raises:
        UserError: the permission model differs (StackSets cannot change it in place).
    """
    if deployed is None:
        return StackSetState("create", ("not deployed",))
    model = deployed.get("PermissionModel") or "SELF_MANAGED"
    if model != spec.permission_model.value:
        raise UserError(
            f"StackSet {spec.name} is {model} but the config says {spec.permission_model.value}; "
            "a StackSet's permission model cannot change: delete its instances and the StackSet "
            "first, or keep the permission model"
        )
    reasons = []
    if _json(deployed.get("TemplateBody")) != spec.template_dict():
        reasons.append("template differs")
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in deployed.get("Parameters", [])}
    changed = sorted(
        k for k in set(params) | set(spec.parameters) if params.get(k) != spec.parameters.get(k)
    )
    if changed:
        reasons.append(
            "parameters: "
            + ", ".join(f"{k} {params.get(k)!s} -> {spec.parameters.get(k)!s}" for k in changed)
        )
    if spec.auto_deployment is not None and deployed.get("AutoDeployment") != spec.auto_deployment:
        reasons.append(f"auto-deployment -> {spec.auto_deployment}")
    active = deployed.get("ManagedExecution", {}).get("Active", False)
    if active != spec.managed_execution:
        reasons.append(f"managed execution -> {spec.managed_execution}")
    tags = {t["Key"]: t["Value"] for t in deployed.get("Tags", [])}
    if tags != spec.tags:
        reasons.append("tags differ")
    if (
        spec.administration_role_arn
        and deployed.get("AdministrationRoleARN") != spec.administration_role_arn
    ):
        reasons.append("administration role differs")
    if spec.execution_role_name and deployed.get("ExecutionRoleName") != spec.execution_role_name:
        reasons.append("execution role differs")
    return StackSetState("update" if reasons else "none", tuple(reasons), deployed)


def _json(body: Any) -> Any:
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def instance_changes(
    desired: dict[tuple[str, str], DesiredInstance],
    deployed: list[DeployedInstance],
    stackset_parameters: dict[str, str],
    stackset_redeploys: bool,
    keep_accounts: frozenset[str] = frozenset(),
    excluded: frozenset[str] = frozenset(),
) -> tuple[list[InstanceChange], int]:
    """Instances to add, update and remove, and the number left unchanged.

    Overrides are compared by effective value: an override equal to the StackSet's own
    value changes nothing. An override the config no longer sets is neutralized by
    overriding it with the StackSet's value (StackSets keeps overrides across updates).
    Instances of ``keep_accounts`` (suspended or closing: StackSets skips them) are left
    alone rather than removed; removals of ``excluded`` accounts say so.
    """
    changes: list[InstanceChange] = []
    unchanged = 0
    seen = {(d.account, d.region): d for d in deployed}
    for key, want in desired.items():
        have = seen.get(key)
        if have is None:
            changes.append(InstanceChange("add", *key, desired=want, overrides=want.overrides))
            continue
        send = _overrides_to_send(dict(want.overrides), dict(have.overrides), stackset_parameters)
        if send is not None:
            changes.append(
                InstanceChange(
                    "update",
                    *key,
                    desired=want,
                    deployed=have,
                    overrides=send,
                    reason=_describe_override_change(dict(have.overrides), dict(send)),
                )
            )
        elif have.status != "CURRENT" and not stackset_redeploys:
            changes.append(
                InstanceChange(
                    "update",
                    *key,
                    desired=want,
                    deployed=have,
                    overrides=want.overrides,
                    reason=f"retry: {have.status} {have.status_reason}".strip(),
                )
            )
        else:
            unchanged += 1
    for key, have in sorted(seen.items()):
        if key not in desired and key[0] not in keep_accounts:
            reason = "excluded" if key[0] in excluded else ""
            changes.append(InstanceChange("remove", *key, deployed=have, reason=reason))
    return changes, unchanged


def _overrides_to_send(
    want: dict[str, str], have: dict[str, str], params: dict[str, str]
) -> tuple[tuple[str, str], ...] | None:
    keys = (set(want) | set(have)) & (set(params) | set(want))
    if all(want.get(k, params.get(k)) == have.get(k, params.get(k)) for k in keys):
        return None
    send = dict(want)
    for k in set(have) - set(want):
        if k in params and have[k] != params[k]:
            send[k] = params[k]
    return tuple(sorted(send.items()))


def _describe_override_change(have: dict[str, str], send: dict[str, str]) -> str:
    return ", ".join(
        f"{k}: {have.get(k, '(default)')} -> {v}"
        for k, v in sorted(send.items())
        if have.get(k) != v
    )


def read_org(sessions: Any, config: OrgConfig) -> OrgTree | None:
    """The organization below the targeted OUs (SERVICE_MANAGED), read from the admin account."""
    if config.deployment.permission_model is not PermissionModel.SERVICE_MANAGED:
        return None
    client = sessions.client("organizations", config.admin_account_id, config.security.home_region)
    # The whole organization, not only the targeted OUs: an instance being removed may sit
    # in an OU the config no longer targets, and its delete needs that OU.
    return read_organization(client)


def _with_ou(instance: DeployedInstance, org: OrgTree | None) -> DeployedInstance:
    """Fills in the OU of an instance when ListStackInstances did not report it."""
    if instance.ou or org is None or instance.account not in org.accounts:
        return instance
    return DeployedInstance(**{**instance.__dict__, "ou": org.accounts[instance.account].parent_id})


def plan_stackset(
    cfn: Any, config: OrgConfig, spec: StackSetSpec, org: OrgTree | None
) -> tuple[StackSetState, list[InstanceChange], int, dict]:
    """The StackSet's own change and its instance changes."""
    desired = desired_instances(config, org)
    deployed_set = describe_stackset(cfn, spec, config)
    state = stackset_state(spec, deployed_set)
    deployed: list[DeployedInstance] = []
    if deployed_set is not None:
        listed = list_instances(cfn, spec.name, config)
        deployed = with_overrides(
            cfn, spec.name, config, [d for d in listed if (d.account, d.region) in desired]
        )
        deployed += [_with_ou(d, org) for d in listed if (d.account, d.region) not in desired]
    inactive = frozenset(
        a.id for a in (org.accounts.values() if org else []) if a.status != "ACTIVE"
    )
    changes, unchanged = instance_changes(
        desired,
        deployed,
        spec.parameters,
        stackset_redeploys=state.action == "update",
        keep_accounts=inactive,
        excluded=frozenset(a.id for a in config.deployment.targets.excluded()),
    )
    return state, changes, unchanged, desired


# --- rendering --------------------------------------------------------------------------------

_COLOR = {"+": "green", "~": "yellow", "-": "red"}


def _mark(symbol: str) -> str:
    return f"[{_COLOR[symbol]}]{symbol}[/]"


def render(plan: Plan, display: Display) -> None:
    """Prints the plan: stacks, the StackSet, every instance change, and the counts."""
    config = plan.config
    d = config.deployment
    display.line(
        f"[bold]Plan for {config.name}[/]: {d.permission_model.value}, StackSet admin "
        f"{config.admin_account_id}"
        + (
            f", call as {d.call_as.value}"
            if d.permission_model is PermissionModel.SERVICE_MANAGED
            else ""
        )
    )
    display.line("\n[bold]Stacks[/]")
    for s in plan.stacks:
        if s.action != "none":
            t = s.target
            symbol = "+" if s.action == "create" else "~"
            display.line(
                f"  {_mark(symbol)} {t.label} {t.name} in {t.account} {t.region} "
                f"({escape(s.reason)})"
            )
    unchanged = sum(s.action == "none" for s in plan.stacks)
    if unchanged:
        display.line(f"    {unchanged} stack(s) unchanged")
    display.line(f"\n[bold]StackSet {plan.spec.name}[/]")
    if plan.stackset.action == "none":
        display.line("    no change")
    else:
        symbol = "+" if plan.stackset.action == "create" else "~"
        for reason in plan.stackset.reasons:
            display.line(f"  {_mark(symbol)} {escape(reason)}")
    display.line(f"\n[bold]Stack instances[/] ({plan.unchanged_instances} unchanged)")
    excluded = config.deployment.targets.excluded()
    if excluded:
        # Shown even when nothing is deployed there, so a reviewer sees every carve-out.
        shown = ", ".join(a.id for a in excluded[:10]) + (" ..." if len(excluded) > 10 else "")
        display.line(f"    excluded by the config ({len(excluded)}): {shown}")
    for c in sorted(plan.instances, key=lambda c: ("+~-".index(c.symbol), c.account, c.region)):
        detail = c.reason
        if c.action == "add" and c.overrides:
            detail = ", ".join(f"{k}={v}" for k, v in c.overrides)
        if c.action == "remove":
            retain = config.deployment.retain_stacks_on_removal
            detail = ", ".join(
                filter(None, (c.reason, "stack retained" if retain else "stack deleted"))
            )
        display.line(
            f"  {_mark(c.symbol)} {c.account} {c.region}"
            + (f"  {escape(detail)}" if detail else "")
        )
    stacks_created = sum(s.action == "create" for s in plan.stacks)
    stacks_updated = sum(s.action == "update" for s in plan.stacks)
    display.line(
        f"\n[bold]Summary[/]: instances {plan.count('add')} to add, {plan.count('update')} to "
        f"update, {plan.count('remove')} to remove; stacks {stacks_created} to create, "
        f"{stacks_updated} to update; StackSet: {plan.stackset.action}"
    )
