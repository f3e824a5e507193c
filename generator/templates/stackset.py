"""StackSet template: the member StackSet as a CloudFormation resource, in the admin account.

The deploy tool drives the StackSet APIs itself (it waits, reports progress and checks
every instance); this template describes the same StackSet declaratively, for teams that
manage everything as stacks. Deploy it in the admin account (the delegated administrator
when set) in the security account's home region, after the artifacts stack of that region
holds the member template: ``TemplateURL`` names the template by its sha256, so a changed
member template is a changed URL and CloudFormation updates the StackSet.

StackInstancesGroup comes from :func:`generator.instance_groups.instance_groups`: one group
per distinct regions and parameter overrides.
"""

from __future__ import annotations

from functools import cached_property

from troposphere import Output, Template
from troposphere import cloudformation as tcf

from backup_anomaly import contract
from generator import iam, naming
from generator.config.model import BackupMode, OrgConfig, PermissionModel
from generator.instance_groups import InstanceGroup
from generator.layout import layout
from generator.naming import Names
from generator.templates import common
from generator.templates import settings as template_settings


def unexpressible(config: OrgConfig) -> list[str]:
    """Why this config's StackSet cannot be written as an ``AWS::CloudFormation::StackSet``.

    Under SERVICE_MANAGED an account with settings of its own is reached through its OU, so
    the OU stands in two instance groups with different parameter overrides (the OU minus
    the account, and the account); the StackSet resource handler rejects that ("An
    OrganizationalUnitIds cannot be associated with more than one Parameters set"), while
    the StackSet APIs that ``build.py deploy`` calls, one operation per group, accept it.

    Returns:
        One sentence per such OU, naming its accounts; empty when the template is valid.
    """
    seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    accounts: dict[str, set[str]] = {}
    for group in layout(config).stackset.groups:
        for ou in group.organizational_unit_ids:
            seen.setdefault(ou, set()).add(group.parameter_overrides)
            if group.account_filter_type == "INTERSECTION":
                accounts.setdefault(ou, set()).update(group.accounts)
    return [
        f"OU {ou} would have {len(sets)} parameter sets, because account(s) "
        f"{', '.join(sorted(accounts.get(ou, set())))} in it have settings of their own; "
        "CloudFormation's StackSet resource accepts one set per OU: deploy with "
        "`build.py deploy`, which applies per-account settings as StackSet operations"
        for ou, sets in sorted(seen.items())
        if len(sets) > 1
    ]


def template_url(config: OrgConfig, key: str) -> str:
    """HTTPS URL of an object in the home region's artifact bucket of the admin account."""
    region = config.security.home_region
    bucket = Names(config.name).artifact_bucket(config.admin_account_id, region)
    return Names.s3_object_url(bucket, region, key)


def stackset_parameters(config: OrgConfig, lambda_key: str) -> dict[str, str]:
    """Member template parameter values for the whole StackSet (overrides apply on top).

    Every contract parameter the member template declares is passed explicitly: StackSets
    override only parameters the StackSet itself carries.
    """
    names = Names(config.name)
    values = {
        naming.PARAM_CODE_BUCKET_PREFIX: names.artifact_bucket_prefix(config.admin_account_id),
        naming.PARAM_CODE_KEY: lambda_key,
    }
    boundary = layout(config).stackset.permissions_boundary
    values[naming.PARAM_PERMISSIONS_BOUNDARY] = boundary or ""
    if config.backup.mode is BackupMode.CREATE:
        values[naming.PARAM_ADOPT_VAULT] = "false"
    for name, parameter in template_settings.member_parameters(config).items():
        values[parameter.title] = contract.setting(name).encode(config.setting(name))
    return dict(sorted(values.items()))


class StackSetTemplate:
    """Builds the StackSet template.

    Args:
        config: the organization config.
        member_template_key: S3 key of the member template (``Names.member_template_key``).
        lambda_key: S3 key of the detector zip (``Names.lambda_key``).
    """

    def __init__(self, config: OrgConfig, member_template_key: str, lambda_key: str):
        self.config = config
        self.names = Names(config.name)
        self.deployment = config.deployment
        self.service_managed = self.deployment.permission_model is PermissionModel.SERVICE_MANAGED
        self.member_template_key = member_template_key
        self.layout = layout(config).stackset
        self.lambda_key = lambda_key

    def operation_preferences(self) -> tcf.OperationPreferences:
        return tcf.OperationPreferences(**self.layout.operation_preferences())

    def instances(self, group: InstanceGroup) -> tcf.StackInstances:
        targets: dict = {}
        if group.organizational_unit_ids:
            targets["OrganizationalUnitIds"] = list(group.organizational_unit_ids)
        if group.accounts:
            targets["Accounts"] = list(group.accounts)
        if group.account_filter_type:
            targets["AccountFilterType"] = group.account_filter_type
        kwargs: dict = {
            "DeploymentTargets": tcf.DeploymentTargets(**targets),
            "Regions": list(group.regions),
        }
        if group.parameter_overrides:
            kwargs["ParameterOverrides"] = [
                tcf.Parameter(ParameterKey=k, ParameterValue=v)
                for k, v in group.parameter_overrides
            ]
        return tcf.StackInstances(**kwargs)

    @cached_property
    def stackset(self) -> tcf.StackSet:
        kwargs: dict = {
            "StackSetName": self.names.stackset,
            "Description": f"Backup anomaly detection ({self.config.name}): member detectors",
            "PermissionModel": self.deployment.permission_model.value,
            "TemplateURL": template_url(self.config, self.member_template_key),
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "ManagedExecution": tcf.ManagedExecution(Active=self.deployment.managed_execution),
            "OperationPreferences": self.operation_preferences(),
            "Parameters": [
                tcf.Parameter(ParameterKey=k, ParameterValue=v)
                for k, v in stackset_parameters(self.config, self.lambda_key).items()
            ],
            "StackInstancesGroup": [self.instances(g) for g in self.layout.groups],
            "Tags": common.tags(self.config),
        }
        if self.service_managed:
            kwargs["AutoDeployment"] = tcf.AutoDeployment(**(self.layout.auto_deployment or {}))
            kwargs["CallAs"] = self.layout.call_as
        else:
            kwargs["AdministrationRoleARN"] = iam.account_arn(
                self.layout.admin_account, f"role/{self.layout.administration_role_name}"
            )
            kwargs["ExecutionRoleName"] = self.layout.execution_role_name
        return tcf.StackSet("MemberStackSet", **kwargs)

    def create_template(self) -> Template:
        return common.new_template(
            f"Backup anomaly detection ({self.config.name}): the member StackSet, in the "
            f"admin account {self.config.admin_account_id}",
            resources=[self.stackset],
            outputs=[Output("StackSetId", Value=self.stackset.ref())],
        )


def build(config: OrgConfig, *, member_template_key: str, lambda_key: str) -> Template:
    """The StackSet template for ``config`` pointing at the given artifacts."""
    return StackSetTemplate(config, member_template_key, lambda_key).create_template()
