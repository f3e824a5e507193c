"""The plan: what ``deploy`` would change, made by reading what is deployed and comparing.

The plan covers the stacks outside the StackSet (artifacts, roles, central), the StackSet
itself (template, parameters, settings) and every stack instance per account and region:
``+`` add, ``~`` update (parameter overrides), ``-`` remove. ``deploy`` executes exactly
this plan, so a plan with no changes means a deploy makes no StackSet operation. Reading is
:mod:`rollout.deployed`, comparing :mod:`rollout.compare`, rendering :mod:`rollout.render`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from generator import naming
from generator.config.model import BackupMode, OrgConfig
from generator.errors import UserError
from generator.layout import layout
from rollout.artifacts import Built, large_template_url, object_url
from rollout.compare import InstanceChange, StackSetState, instance_changes, stackset_state
from rollout.coverage import TargetProblem, check_targets, role_collisions
from rollout.deployed import (
    DeployedInstance,
    describe_stackset,
    list_instances,
    read_org,
    with_ou,
    with_overrides,
)
from rollout.desired import (
    DesiredInstance,
    StackSetSpec,
    desired_instances,
    stack_targets,
    stackset_spec,
)
from rollout.organization import OrgTree
from rollout.sessions import AwsSessions
from rollout.stacks import StackState, observe


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
    targets: list[TargetProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def target_errors(self) -> list[TargetProblem]:
        """Targets the organization does not hold that the config does not expect."""
        return [t for t in self.targets if not t.expected]

    @property
    def has_changes(self) -> bool:
        return (
            any(s.action != "none" for s in self.stacks)
            or self.stackset.action != "none"
            or bool(self.instances)
        )

    def count(self, action: str) -> int:
        return sum(1 for c in self.instances if c.action == action)


# What a stack instance keeps once the rollout set it: the retained vault it adopted.
ADOPTED = (naming.PARAM_ADOPT_VAULT, "true")


def _with(instance: DesiredInstance, override: tuple[str, str]) -> DesiredInstance:
    merged = dict(instance.overrides)
    merged[override[0]] = override[1]
    return replace(instance, overrides=tuple(sorted(merged.items())))


def plan_stackset(
    cfn: Any,
    config: OrgConfig,
    spec: StackSetSpec,
    org: OrgTree | None,
    vault_exists: Callable[[str, str], bool | None] | None = None,
) -> tuple[StackSetState, list[InstanceChange], int, dict[tuple[str, str], DesiredInstance]]:
    """The StackSet's own change and its instance changes.

    Args:
        vault_exists: ``(account, region) -> bool`` (None when it cannot tell): whether the
            configured backup vault exists already where an instance is to be added.
    """
    desired = desired_instances(config, org)
    deployed_set = describe_stackset(cfn, spec.layout)
    state = stackset_state(spec, deployed_set)
    deployed: list[DeployedInstance] = []
    if deployed_set is not None:
        listed = list_instances(cfn, spec.layout)
        deployed = with_overrides(
            cfn, spec.layout, [d for d in listed if (d.account, d.region) in desired]
        )
        deployed += [with_ou(d, org) for d in listed if (d.account, d.region) not in desired]
    # An instance that adopted a retained vault keeps doing so: dropping the override
    # would make its stack create the vault and fail on "already exists".
    for d in deployed:
        key = (d.account, d.region)
        if key in desired and ADOPTED in d.overrides:
            desired[key] = _with(desired[key], ADOPTED)
    if vault_exists is not None and config.backup.mode is BackupMode.CREATE:
        have = {(d.account, d.region) for d in deployed}
        for key in [k for k in desired if k not in have]:
            if vault_exists(*key):
                desired[key] = _with(desired[key], ADOPTED)
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


class RetainedVaults:
    """Whether the configured backup vault exists where a stack instance is to be added.

    It does when the account was offboarded before: the vault holds the recovery points,
    so its stack retained it, and creating it again would fail the new stack. Read in the
    member account with the rollout's role; where that cannot be assumed, the plan notes
    it and cannot tell.
    """

    def __init__(self, sessions: AwsSessions, vault_name: str, notes: list[str]):
        self.sessions, self.vault_name, self.notes = sessions, vault_name, notes

    def exists(self, account: str, region: str) -> bool | None:
        try:
            client = self.sessions.client("backup", account, region)
            client.describe_backup_vault(BackupVaultName=self.vault_name)
        except UserError as exc:  # the role cannot be assumed in that account
            self.notes.append(f"{account}: a retained backup vault was not looked for ({exc})")
            return None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return False
            if code in ("AccessDeniedException", "AccessDenied"):
                self.notes.append(
                    f"{account} {region}: a retained backup vault was not looked for ({code})"
                )
                return None
            raise
        self.notes.append(
            f"{account} {region}: backup vault {self.vault_name} exists (retained when the "
            "account was offboarded): the new stack adopts it and its recovery points"
        )
        return True


def make_plan(config: OrgConfig, sessions: AwsSessions, built: Built) -> Plan:
    """Reads what is deployed and compares it with the config and the local build."""
    where = layout(config)
    bodies: dict[str, str] = {
        k: built.body(k) for k in ("artifacts", "central", "stackset-roles") if k in built.templates
    }
    targets = stack_targets(
        config,
        bodies,
        template_url=lambda name: large_template_url(sessions, config, name, bodies[name]),
    )
    stacks = [observe(sessions.client("cloudformation", t.account, t.region), t) for t in targets]
    home = where.home_region
    spec = stackset_spec(
        config,
        built.body("member"),
        object_url(sessions, where.artifact_bucket(home), home, built.member_key),
        built.lambda_key,
    )
    org, unread = read_org(sessions, config)
    cfn = sessions.client("cloudformation", where.admin_account, home)
    # Under SELF_MANAGED the organization is read for the check only: the plan itself
    # deploys to the listed accounts.
    service_org = org if where.stackset.service_managed else None
    notes = [unread] if unread else []
    vaults = RetainedVaults(sessions, config.backup.vault_name, notes)
    state, changes, unchanged, desired = plan_stackset(
        cfn, config, spec, service_org, vault_exists=vaults.exists
    )
    return Plan(
        config,
        stacks,
        spec,
        state,
        changes,
        unchanged,
        desired,
        service_org,
        targets=[
            *check_targets(config, org),
            *role_collisions(
                config,
                sessions,
                [
                    s.target.account
                    for s in stacks
                    if s.target.name == where.stacks_of("stackset-roles")[0].name
                    and s.action == "create"
                ]
                if where.stacks_of("stackset-roles")
                else [],
            ),
        ],
        notes=notes,
    )
