"""Reading what is deployed: the StackSet, its stack instances, and the organization.

Every list is read to its last page; the parameter overrides of instances (which
ListStackInstances does not report) are read a few at a time with DescribeStackInstance,
where botocore's standard retry mode absorbs the throttling a large organization causes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from generator.config.model import OrgConfig, PermissionModel
from generator.layout import StackSetLayout
from rollout.organization import OrgTree, read_organization

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


def describe_stackset(cfn: Any, stackset: StackSetLayout) -> dict | None:
    """The deployed StackSet, or None when there is none."""
    try:
        return cfn.describe_stack_set(StackSetName=stackset.name, **stackset.call_as_args())[
            "StackSet"
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "StackSetNotFoundException":
            return None
        raise


def list_instances(cfn: Any, stackset: StackSetLayout, **filters: Any) -> list[DeployedInstance]:
    """Every stack instance of the StackSet (all pages)."""
    found = []
    paginator = cfn.get_paginator("list_stack_instances")
    for page in paginator.paginate(
        StackSetName=stackset.name, **stackset.call_as_args(), **filters
    ):
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
    cfn: Any, stackset: StackSetLayout, instances: list[DeployedInstance]
) -> list[DeployedInstance]:
    """Adds each instance's parameter overrides (DescribeStackInstance, a few at a time)."""

    def one(instance: DeployedInstance) -> DeployedInstance:
        described = cfn.describe_stack_instance(
            StackSetName=stackset.name,
            StackInstanceAccount=instance.account,
            StackInstanceRegion=instance.region,
            **stackset.call_as_args(),
        )["StackInstance"]
        overrides = tuple(
            sorted(
                (p["ParameterKey"], p.get("ParameterValue", ""))
                for p in described.get("ParameterOverrides", [])
            )
        )
        return replace(instance, overrides=overrides)

    if not instances:
        return []
    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        return list(pool.map(one, instances))


# Organizations' answers when the caller may not read the organization (a SELF_MANAGED
# deployment need not be run from its management or delegated admin account).
UNREADABLE_ORG = frozenset(
    {"AccessDeniedException", "AWSOrganizationsNotInUseException", "AccessDenied"}
)


def read_org(sessions: Any, config: OrgConfig) -> tuple[OrgTree | None, str | None]:
    """The whole organization, read from the admin account, and why not when it cannot be.

    SERVICE_MANAGED needs it (OU targets resolve to accounts through it): an error there
    is raised. SELF_MANAGED uses it only to check the listed accounts, so an organization
    the caller may not read is a note, not a failure.
    """
    client = sessions.client("organizations", config.admin_account_id, config.security.home_region)
    if config.deployment.permission_model is PermissionModel.SERVICE_MANAGED:
        # The whole organization, not only the targeted OUs: an instance being removed may
        # sit in an OU the config no longer targets, and its delete needs that OU.
        return read_organization(client), None
    try:
        return read_organization(client), None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in UNREADABLE_ORG:
            raise
        return None, f"the listed accounts were not checked against the organization ({code})"


def with_ou(instance: DeployedInstance, org: OrgTree | None) -> DeployedInstance:
    """Fills in the OU of an instance when ListStackInstances did not report it."""
    if instance.ou or org is None or instance.account not in org.accounts:
        return instance
    return replace(instance, ou=org.accounts[instance.account].parent_id)
