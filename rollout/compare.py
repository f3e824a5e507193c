"""Comparing the config with what is deployed: the StackSet's own change and every
stack instance to add, update or remove.

Pure: the inputs are what :mod:`rollout.deployed` read and what :mod:`rollout.desired`
computed; nothing here calls AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.errors import UserError
from rollout.deployed import DeployedInstance
from rollout.desired import DesiredInstance, StackSetSpec
from rollout.stacks import template_json


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
    if template_json(deployed.get("TemplateBody")) != spec.template_dict():
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
    auto = spec.layout.auto_deployment
    if auto is not None and deployed.get("AutoDeployment") != auto:
        reasons.append(f"auto-deployment -> {auto}")
    active = deployed.get("ManagedExecution", {}).get("Active", False)
    if active != spec.layout.managed_execution:
        reasons.append(f"managed execution -> {spec.layout.managed_execution}")
    tags = {t["Key"]: t["Value"] for t in deployed.get("Tags", [])}
    if tags != spec.tags:
        reasons.append("tags differ")
    role_arn = spec.layout.administration_role_arn
    if role_arn and deployed.get("AdministrationRoleARN") != role_arn:
        reasons.append("administration role differs")
    execution = spec.layout.execution_role_name
    if execution and deployed.get("ExecutionRoleName") != execution:
        reasons.append("execution role differs")
    return StackSetState("update" if reasons else "none", tuple(reasons), deployed)


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
