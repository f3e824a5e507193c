"""Build a moto organization shaped like a config: its OUs and accounts, with their ids.

Used by the demo and by the tests; the rollout code then reaches every account by
assuming ``OrganizationAccountAccessRole``, as it would in AWS (moto accepts any 12-digit
account id in the role ARN and maps the returned credentials to that account).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3

from generator.config.model import OrgConfig
from testing.moto_fidelity import chosen_ids

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"


@dataclass
class SimulatedOrg:
    """The organization as created, and a session acting in its management account."""

    management: boto3.Session
    root_id: str
    ou_ids: list[str]
    accounts: dict[str, str] = field(default_factory=dict)  # id -> parent (OU or root)


def assume(
    account_id: str, region: str, role: str = "OrganizationAccountAccessRole"
) -> boto3.Session:
    """A session in ``account_id`` through moto's STS (any caller may assume any role)."""
    sts = boto3.client("sts", region_name=region)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName="simulation"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def build_organization(
    config: OrgConfig, extra_accounts: dict[str, list[str]] | None = None
) -> SimulatedOrg:
    """Creates the organization of ``config`` in moto (call inside ``mock_aws``).

    Args:
        config: the organization config; its OU targets and accounts are created with the
            config's ids, the delegated admin and security accounts under the root.
        extra_accounts: OU id -> more account ids in that OU (members the config does not
            list, which OU targets still reach).
    """
    region = config.security.home_region
    management = assume(config.organization.management_account_id, region)
    org = management.client("organizations", region_name=region)
    org.create_organization(FeatureSet="ALL")
    root_id = org.list_roots()["Roots"][0]["Id"]
    ou_names = {
        ou.id: ou.name or ou.id
        for ou in config.deployment.targets.organizational_units
        if ou.id.startswith("ou-")
    }
    for account in config.deployment.targets.accounts:
        if account.ou and account.ou.startswith("ou-"):
            ou_names.setdefault(account.ou, account.ou)
    for ou in extra_accounts or {}:
        ou_names.setdefault(ou, ou)
    placed: dict[str, str] = {}
    for account in (config.organization.delegated_admin_account_id, config.security.account_id):
        if account and account != config.organization.management_account_id:
            placed[account] = root_id
    for account in config.deployment.targets.accounts:
        placed.setdefault(
            account.id, account.ou if account.ou and account.ou.startswith("ou-") else root_id
        )
    for ou, accounts in (extra_accounts or {}).items():
        for account in accounts:
            placed.setdefault(account, ou)
    placed.pop(config.organization.management_account_id, None)
    with chosen_ids(list(placed), list(ou_names)):
        for name in ou_names.values():
            org.create_organizational_unit(ParentId=root_id, Name=name)
        for account in placed:
            org.create_account(
                Email=f"aws+{account}@example.com", AccountName=_name(config, account)
            )
    for account, parent in placed.items():
        if parent != root_id:
            org.move_account(AccountId=account, SourceParentId=root_id, DestinationParentId=parent)
    # Trusted access for StackSets. Registering the delegated admin is not possible here:
    # moto's RegisterDelegatedAdministrator does not know the StackSets principal.
    org.enable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    return SimulatedOrg(management, root_id, list(ou_names), placed)


def _name(config: OrgConfig, account: str) -> str:
    for target in config.deployment.targets.accounts:
        if target.id == account and target.name:
            return target.name
    if account == config.security.account_id:
        return "security"
    if account == config.organization.delegated_admin_account_id:
        return "stacksets-admin"
    return f"member-{account[-4:]}"
