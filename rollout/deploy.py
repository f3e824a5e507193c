"""Deploy: artifacts, the central stack, the StackSet, then its instances; then verify.

Order matters: the artifacts stacks make the buckets the code is uploaded to; the
StackSet's template and code must be in place before any instance is created; the
central bus should exist before members forward to it. Every StackSet operation is
waited on, and at the end every instance that is not CURRENT is listed: an operation can
SUCCEED within its failure tolerance while some accounts failed.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from generator.config.model import OrgConfig
from generator.errors import UserError
from generator.layout import StackSetLayout
from rollout.artifacts import Built, put_template, upload
from rollout.deployed import DeployedInstance, list_instances
from rollout.desired import StackSetSpec
from rollout.display import Display
from rollout.operations import InstanceOperation, instance_operations
from rollout.plan import Plan, make_plan
from rollout.render import render
from rollout.roster import write_roster
from rollout.sessions import AwsSessions
from rollout.stacks import DeployFailed, apply
from rollout.stackset_ops import OperationRunner

DESCRIPTION = "Backup anomaly detection in every member account and region (managed by build.py)"


@dataclass
class DeployResult:
    """What a deploy did and what it left behind."""

    plan: Plan
    operations: list[str] = field(default_factory=list)
    not_current: list[DeployedInstance] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.not_current


def stackset_request(spec: StackSetSpec, config: OrgConfig) -> dict[str, Any]:
    """Arguments shared by CreateStackSet and UpdateStackSet."""
    request: dict[str, Any] = {
        "StackSetName": spec.name,
        "Description": DESCRIPTION,
        "TemplateURL": spec.template_url,
        "Parameters": [
            {"ParameterKey": k, "ParameterValue": v} for k, v in spec.parameters.items()
        ],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()],
        "ManagedExecution": {"Active": spec.layout.managed_execution},
        **spec.layout.call_as_args(),
    }
    if spec.layout.auto_deployment is not None:
        request["AutoDeployment"] = spec.layout.auto_deployment
    if spec.layout.administration_role_arn:
        request["AdministrationRoleARN"] = spec.layout.administration_role_arn
        request["ExecutionRoleName"] = spec.layout.execution_role_name
    return request


def instance_request(
    op: InstanceOperation, spec: StackSetSpec, config: OrgConfig
) -> tuple[str, dict]:
    """The API method and arguments of one instance operation."""
    request: dict[str, Any] = {
        "StackSetName": spec.name,
        "Regions": list(op.regions),
        "OperationPreferences": spec.layout.operation_preferences(op.regions),
        **op.targets(spec.layout.service_managed),
        **spec.layout.call_as_args(),
    }
    if op.kind == "delete":
        request["RetainStacks"] = config.deployment.retain_stacks_on_removal
        return "delete_stack_instances", request
    request["ParameterOverrides"] = [
        {"ParameterKey": k, "ParameterValue": v} for k, v in op.overrides
    ]
    return f"{op.kind}_stack_instances", request


def deploy(
    config: OrgConfig,
    sessions: AwsSessions,
    built: Built,
    display: Display,
    poll_seconds: float = 10.0,
) -> DeployResult:
    """Makes the deployment match the config; see the module docstring for the order."""
    plan = make_plan(config, sessions, built)
    render(plan, display)
    if plan.target_errors:
        # Deploying now would report success while those targets stay unprotected.
        raise UserError(
            f"{len(plan.target_errors)} target(s) the organization does not hold (above): "
            "fix the config, or mark one may_be_absent: true if it is expected; nothing was "
            "deployed"
        )
    result = DeployResult(plan)
    admin, home = config.admin_account_id, config.security.home_region
    cfn = sessions.client("cloudformation", admin, home)
    runner = OperationRunner(
        cfn, plan.spec.name, plan.spec.layout.call_as_args(), display, poll_seconds
    )
    display.line("\n[bold]Deploying[/]")
    roster_error: str | None = None
    try:
        for state in plan.stacks:
            if state.target.label.startswith("artifacts"):
                apply(
                    sessions.client("cloudformation", state.target.account, state.target.region),
                    state,
                    display,
                    poll_seconds,
                )
        upload(sessions, config, built, display)
        for state in plan.stacks:
            if not state.target.label.startswith("artifacts"):
                if state.action != "none" and state.target.template_url:
                    put_template(
                        sessions, config, state.target.template_url, state.target.template_body
                    )
                apply(
                    sessions.client("cloudformation", state.target.account, state.target.region),
                    state,
                    display,
                    poll_seconds,
                )
        # The roster before the StackSet: an instance that fails below is still expected,
        # so its silence becomes an incident instead of going unnoticed. A roster DynamoDB
        # refuses fails the deploy at the end, never the rollout of the members.
        try:
            write_roster(config, sessions, plan.desired.values(), plan.org, display)
        except DeployFailed as exc:
            roster_error = str(exc)
            display.line(f"[red]roster not written[/]: {escape(roster_error)}")
        _apply_stackset(plan, cfn, runner, config, display)
        desired_count = Counter(d.group for d in plan.desired.values())
        operations = instance_operations(config, plan.instances, desired_count)
        for number, op in enumerate(operations, 1):
            method, request = instance_request(op, plan.spec, config)
            label = f"[{number}/{len(operations)}] {op.describe()}"
            runner.run(escape(label), functools.partial(getattr(cfn, method), **request))
    except DeployFailed as exc:
        result.error = str(exc)
        display.line(f"[red]failed[/]: {escape(str(exc))}")
    if result.error is None and roster_error:
        result.error = roster_error
    result.operations = runner.operations
    result.not_current = check_instances(cfn, plan.spec.layout, display, desired=list(plan.desired))
    return result


def _apply_stackset(
    plan: Plan, cfn: Any, runner: OperationRunner, config: OrgConfig, display: Display
) -> None:
    request = stackset_request(plan.spec, config)
    if plan.stackset.action == "create":
        request["PermissionModel"] = plan.spec.permission_model.value
        cfn.create_stack_set(**request)
        display.line(f"  StackSet {plan.spec.name}: created")
    elif plan.stackset.action == "update":
        # No Accounts/Regions/DeploymentTargets: the update reaches every instance.
        request["OperationPreferences"] = plan.spec.layout.operation_preferences()
        runner.run(f"update StackSet {plan.spec.name}", lambda: cfn.update_stack_set(**request))


def check_instances(
    cfn: Any,
    stackset: StackSetLayout,
    display: Display,
    desired: Sequence[tuple[str, str]] = (),
) -> list[DeployedInstance]:
    """Lists every instance that is not CURRENT, with its reason, and every ``desired``
    (account, region) that has no instance at all.

    A missing instance is the quiet failure: an OU operation SUCCEEDS without creating
    one for an account StackSets did not find in that OU, and that account is then
    unprotected while every instance that does exist is CURRENT.
    """
    from botocore.exceptions import ClientError

    try:
        instances = list_instances(cfn, stackset)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "StackSetNotFoundException":
            raise
        instances = []
    listed = {(i.account, i.region) for i in instances}
    missing = [
        DeployedInstance(account, region, "MISSING", "no stack instance exists")
        for account, region in sorted(set(desired) - listed)
    ]
    bad = [i for i in instances if i.status != "CURRENT"] + missing
    if bad:
        total = len(instances) + len(missing)
        display.line(f"\n[red]{len(bad)} of {total} stack instance(s) are not CURRENT[/]:")
        for i in sorted(bad, key=lambda i: (i.account, i.region)):
            detail = f" ({i.detailed_status})" if i.detailed_status else ""
            display.line(
                escape(f"  {i.account} {i.region}: {i.status}{detail} {i.status_reason}".rstrip())
            )
    else:
        display.line(f"\nall {len(instances)} stack instance(s) are CURRENT")
    return bad
