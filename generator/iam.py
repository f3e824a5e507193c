"""Small awacs helpers so every policy in the templates reads the same way.

Policies are built from awacs objects (actions are typed, so a misspelt action fails at
import time), then rendered by troposphere. Helpers here never emit ``Action: "*"``; a
``Resource: "*"`` is only ever passed explicitly by a caller, next to a comment saying
which action has no resource-level permission.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from awacs.aws import (
    Action,
    Allow,
    Condition,
    ConditionElement,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
)
from troposphere import AWSHelperFn, Sub, encode_to_dict

POLICY_VERSION = "2012-10-17"

Resource: TypeAlias = "str | AWSHelperFn"


def document(*statements: Statement) -> PolicyDocument:
    """A policy document holding ``statements`` in the given order."""
    return PolicyDocument(Version=POLICY_VERSION, Statement=list(statements))


def as_dict(doc: PolicyDocument) -> dict:
    """``doc`` as a plain dict, for properties troposphere types as ``dict``."""
    return encode_to_dict(doc)


def allow(
    sid: str,
    actions: Sequence[Action],
    resources: Sequence[Resource],
    *conditions: ConditionElement,
    principal: Principal | None = None,
) -> Statement:
    """An Allow statement; ``conditions`` are combined with AND."""
    return _statement(Allow, sid, actions, resources, conditions, principal)


def deny(
    sid: str,
    actions: Sequence[Action],
    resources: Sequence[Resource],
    *conditions: ConditionElement,
    principal: Principal | None = None,
) -> Statement:
    """A Deny statement; ``conditions`` are combined with AND."""
    return _statement(Deny, sid, actions, resources, conditions, principal)


def _statement(effect, sid, actions, resources, conditions, principal) -> Statement:
    if not actions:
        raise ValueError(f"statement {sid} has no actions")
    if not resources:
        raise ValueError(f"statement {sid} has no resources")
    kwargs: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Action": list(actions),
        "Resource": list(resources),
    }
    if conditions:
        kwargs["Condition"] = _condition(sid, conditions)
    if principal is not None:
        kwargs["Principal"] = principal
    return Statement(**kwargs)


def _condition(sid: str, conditions: Sequence[ConditionElement]) -> Condition:
    """The Condition block; two elements with one operator would be one JSON key, and the
    last would silently win, so that is refused (merge their keys into one element)."""
    operators = [type(c).__name__ for c in conditions]
    repeated = sorted({o for o in operators if operators.count(o) > 1})
    if repeated:
        raise ValueError(f"statement {sid}: {', '.join(repeated)} given twice; merge the keys")
    return Condition(list(conditions))


def service(*names: str) -> Principal:
    """A service principal, e.g. ``service("events.amazonaws.com")``."""
    return Principal("Service", list(names) if len(names) > 1 else names[0])


def arn(
    service: str,
    resource: str,
    *,
    region: str = "${AWS::Region}",
    account: str = "${AWS::AccountId}",
) -> Sub:
    """An ARN in the stack's partition (by default its region and account too): a literal
    ``arn:aws:`` names nothing in aws-us-gov or aws-cn."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:{region}:{account}:{resource}")


def account_arn(account_id: str, resource: str = "root") -> Sub:
    """An IAM ARN of ``account_id`` in the stack's partition (``resource``: root, role/x)."""
    return Sub(f"arn:${{AWS::Partition}}:iam::{account_id}:{resource}")


def accounts(account_ids: Iterable[str]) -> Principal:
    """The root principals of ``account_ids`` (sorted, so output is deterministic), in the
    stack's partition: a literal ``arn:aws:`` is no principal in aws-us-gov or aws-cn."""
    arns = [account_arn(a) for a in sorted(set(account_ids))]
    return Principal("AWS", arns if len(arns) > 1 else arns[0])


def this_account() -> Principal:
    """The root principal of the account the stack runs in."""
    return Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"))


def trust(principal: Principal, *conditions: ConditionElement) -> PolicyDocument:
    """An assume-role (trust) policy for ``principal``."""
    from awacs.sts import AssumeRole

    kwargs: dict[str, Any] = {
        "Effect": Allow,
        "Action": [AssumeRole],
        "Principal": principal,
    }
    if conditions:
        kwargs["Condition"] = _condition("trust", conditions)
    return PolicyDocument(Version=POLICY_VERSION, Statement=[Statement(**kwargs)])
