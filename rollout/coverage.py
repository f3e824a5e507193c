"""Does the organization hold what the config targets? A target it does not have protects
nothing, while every StackSet operation still succeeds.

An OU id one character off deploys "all CURRENT" to nobody; an account listed under the
wrong OU is never reached through it; a suspended account gets no stack. Each such target
is reported with its line in the config, and plan and deploy treat it as an error unless
the config marks it ``may_be_absent: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from generator import naming
from generator.config.loader import where
from generator.config.model import OrgConfig, PermissionModel
from rollout.organization import OrgTree


@dataclass(frozen=True)
class TargetProblem:
    """A target the organization does not hold as the config says.

    Attributes:
        location: ``FILE:LINE`` of the target in the config.
        message: what is wrong, naming the target.
        expected: the config marks it ``may_be_absent: true`` (a note, not an error).
    """

    location: str
    message: str
    expected: bool = False

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def check_targets(config: OrgConfig, org: OrgTree | None) -> list[TargetProblem]:
    """Every target of ``config`` that ``org`` does not hold as the config says.

    Args:
        config: the loaded config (its lines come from the loader).
        org: the whole organization, or None when it could not be read (nothing to check).
    """
    if org is None:
        return []
    targets = config.deployment.targets
    service = config.deployment.permission_model is PermissionModel.SERVICE_MANAGED
    problems: list[TargetProblem] = []

    def report(loc: tuple, message: str, expected: bool) -> None:
        problems.append(TargetProblem(where(config, loc), message, expected))

    for index, ou in enumerate(targets.organizational_units):
        if ou.id not in org.units:
            report(
                ("deployment", "targets", "organizational_units", index, "id"),
                f"OU {ou.id}{_named(ou.name)} is not in the organization: no account gets a "
                "stack through it (is the id right?)",
                ou.may_be_absent,
            )
    for index, account in enumerate(targets.accounts):
        if account.exclude:
            continue  # a carve-out: absent or closed is what offboarding ends with
        loc = ("deployment", "targets", "accounts", index, "id")
        found = org.accounts.get(account.id)
        if found is None:
            report(
                loc,
                f"account {account.id}{_named(account.name)} is not in the organization",
                account.may_be_absent,
            )
            continue
        if found.status != "ACTIVE":
            report(
                loc,
                f"account {account.id}{_named(account.name or found.name)} is {found.status}: "
                "StackSets deploys nothing there",
                account.may_be_absent,
            )
            continue
        if service and account.ou and account.ou not in org.ancestors(found.parent_id):
            report(
                ("deployment", "targets", "accounts", index, "ou"),
                f"account {account.id}{_named(account.name or found.name)} is not in OU "
                f"{account.ou} (it is in {found.parent_id}): StackSets reaches an account only "
                f"through an OU it is in; set its ou to {found.parent_id}",
                account.may_be_absent,
            )
    return problems


def _named(name: str | None) -> str:
    return f" ({name})" if name else ""


def role_collisions(
    config: OrgConfig, sessions: Any, accounts_to_bootstrap: list[str]
) -> list[TargetProblem]:
    """SELF_MANAGED: StackSet roles of the configured names that exist and are not ours.

    The roles stack would fail on them with "already exists" in the middle of a deploy
    (organizations that already use StackSets often have AWS's default names). Checked in
    the accounts whose roles stack is still to be created; a role is ours when it carries
    this deployment's product tag.
    """
    roles = config.deployment.stackset_roles
    admin = config.admin_account_id
    found: list[TargetProblem] = []
    for account in accounts_to_bootstrap:
        names = [roles.execution_role_name]
        if account == admin:
            names.insert(0, roles.administration_role_name)
        client = sessions.client("iam", account, config.security.home_region)
        for name in names:
            tags = _role_tags(client, name)
            if tags is None or tags.get(naming.PRODUCT_TAG_KEY) == config.name:
                continue
            found.append(
                TargetProblem(
                    where(config, ("deployment", "stackset_roles")),
                    f"account {account} already has a role {name} that this deployment did not "
                    "create; set deployment.stackset_roles to names of your own (or delete "
                    "that role) before deploying",
                )
            )
    return found


def _role_tags(client: Any, name: str) -> dict[str, str] | None:
    """The role's tags, or None when there is no such role."""
    try:
        role = client.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return None
        raise
    return {t["Key"]: t["Value"] for t in role.get("Tags", [])}
