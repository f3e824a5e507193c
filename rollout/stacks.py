"""Create or update one CloudFormation stack and wait for it (artifacts, roles, central).

"No updates are to be performed" is the answer to an unchanged template, not an error.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rollout.display import Display

INLINE_TEMPLATE_LIMIT = 51_200
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)


class DeployFailed(Exception):
    """A stack or StackSet operation did not end as asked; the message says where."""


@dataclass(frozen=True)
class StackTarget:
    """One stack the rollout owns outside the StackSet."""

    label: str
    name: str
    account: str
    region: str
    template_body: str
    template_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackState:
    """What a deploy would do to one stack."""

    target: StackTarget
    action: str  # create | update | none
    reason: str = ""


def template_json(body: Any) -> Any:
    """A deployed template body as plain JSON data, for comparing with a local one.

    GetTemplate and DescribeStackSet return JSON bodies already decoded by botocore (with
    its own types), YAML ones as text.
    """
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return json.loads(json.dumps(body))


def observe(cfn: Any, target: StackTarget) -> StackState:
    """Compares the deployed stack (if any) with ``target``."""
    stack = _describe(cfn, target.name)
    if stack is None:
        return StackState(target, "create", "not deployed")
    if stack["StackStatus"] == "ROLLBACK_COMPLETE":
        return StackState(target, "create", "replaces a stack that failed to create")
    reasons = []
    deployed = cfn.get_template(StackName=target.name, TemplateStage="Original")["TemplateBody"]
    if template_json(deployed) != json.loads(target.template_body):
        reasons.append("template differs")
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    if any(params.get(k) != v for k, v in target.parameters.items()):
        reasons.append("parameters differ")
    return StackState(target, "update" if reasons else "none", "; ".join(reasons))


def _describe(cfn: Any, name: str) -> dict | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            return None
        raise


def apply(cfn: Any, state: StackState, display: Display, poll_seconds: float = 5.0) -> None:
    """Creates or updates the stack of ``state`` and waits until it settles.

    Raises:
        DeployFailed: the stack ended in a failed or rolled-back state.
    """
    target = state.target
    if state.action == "none":
        return
    if state.reason.startswith("replaces"):
        cfn.delete_stack(StackName=target.name)
        _wait(cfn, target, display, poll_seconds, "deleting failed", ok=("DELETE_COMPLETE",))
    source = (
        {"TemplateURL": target.template_url}
        if target.template_url and len(target.template_body) > INLINE_TEMPLATE_LIMIT
        else {"TemplateBody": target.template_body}
    )
    request = dict(
        StackName=target.name,
        Capabilities=list(CAPABILITIES),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in target.parameters.items()],
        Tags=[{"Key": k, "Value": v} for k, v in target.tags.items()],
        **source,
    )
    if state.action == "create":
        cfn.create_stack(**request, EnableTerminationProtection=False)
        ok = ("CREATE_COMPLETE",)
    else:
        try:
            cfn.update_stack(**request)
        except ClientError as exc:
            if "No updates are to be performed" in exc.response["Error"].get("Message", ""):
                return
            raise
        ok = ("UPDATE_COMPLETE",)
    _wait(cfn, target, display, poll_seconds, state.action, ok=ok)


def _wait(
    cfn: Any,
    target: StackTarget,
    display: Display,
    poll_seconds: float,
    verb: str,
    ok: tuple[str, ...],
    timeout_seconds: float = 3600,
) -> None:
    where = f"{target.label} {target.name} ({target.account} {target.region})"
    deadline = time.monotonic() + timeout_seconds
    with display.waiting(f"{verb} {where}") as status:
        while True:
            stack = _describe(cfn, target.name)
            current = stack["StackStatus"] if stack else "DELETE_COMPLETE"
            status.update(current)
            if not current.endswith("_IN_PROGRESS"):
                break
            if time.monotonic() > deadline:
                raise DeployFailed(f"{where}: still {current} after {timeout_seconds:.0f}s")
            time.sleep(poll_seconds)
    if current not in ok:
        raise DeployFailed(f"{where} ended {current}: {_failure_reasons(cfn, target.name)}")
    display.line(f"  {where}: {current}")


def _failure_reasons(cfn: Any, name: str) -> str:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return "no stack events"
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("_FAILED")
    ]
    return "; ".join(reasons[:5]) or "see the stack's events"
