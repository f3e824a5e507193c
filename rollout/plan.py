"""The plan: what ``deploy`` would change, made by reading what is deployed and comparing.

The plan covers the stacks outside the StackSet (artifacts, roles, central), the StackSet
itself (template, parameters, settings) and every stack instance per account and region:
``+`` add, ``~`` update (parameter overrides), ``-`` remove. ``deploy`` executes exactly
this plan, so a plan with no changes means a deploy makes no StackSet operation. Reading is
:mod:`rollout.deployed`, comparing :mod:`rollout.compare`, rendering :mod:`rollout.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.config.model import OrgConfig
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


def plan_stackset(
    cfn: Any, config: OrgConfig, spec: StackSetSpec, org: OrgTree | None
) -> tuple[StackSetState, list[InstanceChange], int, dict[tuple[str, str], DesiredInstance]]:
    """The StackSet's own change and its instance changes."""
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
    state, changes, unchanged, desired = plan_stackset(cfn, config, spec, service_org)
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
        notes=[unread] if unread else [],
    )
