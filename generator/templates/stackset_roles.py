"""StackSet roles template (SELF_MANAGED only): the administration and execution roles.

Deploy it once per account (IAM is global; any one region): in the admin account it
creates ``AWSCloudFormationStackSetAdministrationRole``; in every target account it
creates ``AWSCloudFormationStackSetExecutionRole``. A condition on the account id picks
which, so one template serves both.

The execution role is not AdministratorAccess (AWS's sample): it may only create, change
and delete what the member template creates, named with this deployment's prefix (IAM
roles, queues, table, function, log group, rules, alarms, the KMS key by its tag, the
backup vault and plan). The few actions without resource-level permissions
(``NO_RESOURCE_LEVEL_ACTIONS``) are conditioned where AWS offers a key. The cost is that
a member template that grows a new resource type needs a line here too; the test that
walks every policy keeps the two in step for the actions it can see.
"""

from __future__ import annotations

from functools import cached_property

from awacs import awslambda as alambda
from awacs import backup as abackup
from awacs import backup_storage as abackup_storage
from awacs import cloudformation as acfn
from awacs import cloudwatch as acw
from awacs import dynamodb as addb
from awacs import events as aevents
from awacs import iam as aiam
from awacs import kms as akms
from awacs import logs as alogs
from awacs import s3 as as3
from awacs import sqs as asqs
from awacs import sts as asts
from awacs.aws import ArnEquals, ArnLike, StringEquals
from troposphere import Equals, Not, Ref, Sub, Template
from troposphere import iam as tiam

from generator import iam, naming
from generator.config.model import BackupMode, OrgConfig
from generator.naming import Names
from generator.templates import boundary, common

IS_ADMIN = "IsAdminAccount"
IS_TARGET = "IsTargetAccount"
# Above this many targets the admin role names execution roles by wildcard account (with
# the organization condition when there is one): an inline policy holds about 10 KB.
MAX_LISTED_EXECUTION_ROLES = 100

# Actions the execution role needs that have no resource-level permission in IAM.
NO_RESOURCE_LEVEL_ACTIONS = (
    "cloudformation:ValidateTemplate",
    "kms:CreateKey",
    "kms:ListAliases",
    "lambda:CreateEventSourceMapping",
    "backup-storage:MountCapsule",
    "logs:DescribeResourcePolicies",
)


def _arn(service: str, resource: str) -> Sub:
    """An ARN of this account in any region (the role serves every region's stacks)."""
    return iam.arn(service, resource, region="*")


class StackSetRolesTemplate:
    """Builds the administration and execution roles of a SELF_MANAGED StackSet."""

    def __init__(self, config: OrgConfig):
        self.config = config
        self.names = Names(config.name)
        self.prefix = config.name
        self.admin = config.admin_account_id
        self.targets = sorted({a.id for a in config.deployment.targets.deployed_accounts()})
        self.admin_is_target = self.admin in self.targets
        self.roles = config.deployment.stackset_roles

    # -- administration role --------------------------------------------------------------
    def execution_role_arns(self) -> list[Sub]:
        role = self.roles.execution_role_name
        if len(self.targets) <= MAX_LISTED_EXECUTION_ROLES:
            return [iam.account_arn(account, f"role/{role}") for account in self.targets]
        return [iam.account_arn("*", f"role/{role}")]

    @cached_property
    def admin_role(self) -> tiam.Role:
        conditions = []
        if self.config.organization.org_id and len(self.targets) > MAX_LISTED_EXECUTION_ROLES:
            conditions.append(StringEquals("aws:ResourceOrgID", self.config.organization.org_id))
        return tiam.Role(
            "AdministrationRole",
            Condition=IS_ADMIN,
            RoleName=self.roles.administration_role_name,
            Description="CloudFormation StackSets assumes the execution role in target accounts",
            AssumeRolePolicyDocument=iam.trust(
                iam.service("cloudformation.amazonaws.com"),
                StringEquals("aws:SourceAccount", self.admin),
            ),
            Policies=[
                tiam.Policy(
                    PolicyName=naming.STACKSET_ADMIN_POLICY,
                    PolicyDocument=iam.document(
                        iam.allow(
                            "AssumeExecutionRoles",
                            [asts.AssumeRole],
                            self.execution_role_arns(),
                            *conditions,
                        )
                    ),
                )
            ],
            Tags=common.tags(self.config),
        )

    # -- execution role -------------------------------------------------------------------
    def execution_policy(self):
        """What CloudFormation needs to manage the member template's resources, by name."""
        statements = [
            *self._stack_statements(),
            *self._role_statements(),
            *self._key_statements(),
            *self._queue_and_table_statements(),
            *self._function_statements(),
            *self._log_statements(),
            *self._rule_and_alarm_statements(),
        ]
        if self.config.backup.mode is BackupMode.CREATE:
            statements += self._backup_statements()
        return iam.document(*statements)

    @property
    def _own_roles(self) -> Sub:
        return Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{self.prefix}-*")

    def _stack_statements(self) -> list:
        """The member stacks StackSets creates, and template validation."""
        return [
            iam.allow(
                "ManageOwnStacks",
                [
                    acfn.CreateStack,
                    acfn.UpdateStack,
                    acfn.DeleteStack,
                    acfn.DescribeStacks,
                    acfn.DescribeStackEvents,
                    acfn.DescribeStackResource,
                    acfn.DescribeStackResources,
                    acfn.ListStackResources,
                    acfn.GetTemplate,
                    acfn.GetTemplateSummary,
                    # StackSets puts the StackSet's tags on every stack it creates.
                    acfn.TagResource,
                    acfn.UntagResource,
                ],
                [_arn("cloudformation", f"stack/StackSet-{self.names.stackset}-*")],
            ),
            iam.allow("ValidateTemplates", [acfn.ValidateTemplate], ["*"]),
        ]

    def _role_statements(self) -> list:
        """The member's IAM roles: created and changed only with the member boundary (so
        none can hold more than it allows), and passed only to their services.

        ``iam:PermissionsBoundary`` is the condition AWS documents for delegating role
        creation: https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
        """
        with_boundary = StringEquals("iam:PermissionsBoundary", self._boundary_arn)
        return [
            iam.allow(
                "CreateOwnRolesOnlyWithTheBoundary",
                [
                    aiam.CreateRole,
                    aiam.PutRolePolicy,
                    aiam.DeleteRolePolicy,
                    aiam.PutRolePermissionsBoundary,
                ],
                [self._own_roles],
                with_boundary,
            ),
            iam.allow(
                "ManageOwnRoles",
                [
                    aiam.DeleteRole,
                    aiam.GetRole,
                    aiam.UpdateRole,
                    aiam.UpdateRoleDescription,
                    aiam.UpdateAssumeRolePolicy,
                    aiam.GetRolePolicy,
                    aiam.ListRolePolicies,
                    aiam.ListAttachedRolePolicies,
                    aiam.TagRole,
                    aiam.UntagRole,
                    aiam.ListRoleTags,
                ],
                [self._own_roles],
            ),
            iam.allow(
                "AttachOnlyBackupPolicies",
                [aiam.AttachRolePolicy, aiam.DetachRolePolicy],
                [self._own_roles],
                ArnEquals("iam:PolicyARN", [Sub(arn) for arn in naming.BACKUP_MANAGED_POLICIES]),
                with_boundary,
            ),
            iam.allow(
                "PassOwnRolesToTheirServices",
                [aiam.PassRole],
                [self._own_roles],
                StringEquals(
                    "iam:PassedToService",
                    ["backup.amazonaws.com", "events.amazonaws.com", "lambda.amazonaws.com"],
                ),
            ),
        ]

    @property
    def _boundary_arn(self) -> Sub:
        return iam.account_arn("${AWS::AccountId}", f"policy/{self.names.member_boundary}")

    @cached_property
    def boundary_policy(self) -> tiam.ManagedPolicy:
        policy = tiam.ManagedPolicy(
            "MemberBoundary",
            ManagedPolicyName=self.names.member_boundary,
            Description=(
                f"Permissions boundary of every role the {self.names.stackset} member stack "
                "creates: at most what the detector, the forwarder and AWS Backup use"
            ),
            PolicyDocument=boundary.document(),
        )
        if not self.admin_is_target:
            policy.Condition = IS_TARGET
        return common.skip_checkov(
            policy,
            (
                "CKV_AWS_111",
                "A permissions boundary grants nothing: it caps what the member's roles may "
                "do, and each role's own policy names the resources it may touch. Resources "
                "here would only repeat those policies and drift from them.",
            ),
            (
                "CKV_AWS_109",
                "The boundary's only permissions-management action is iam:PassRole, and only "
                "to AWS Backup and GuardDuty Malware Protection (iam:PassedToService): a "
                "confirmation scan names the backup and scanner roles. The detector's own "
                "policy names those two roles; the boundary caps, it grants nothing.",
            ),
        )

    def _key_statements(self) -> list:
        """The member's KMS key, found by its tag, and its alias."""
        p = self.prefix
        return [
            # CreateKey has no resource-level permission; the request must carry our tag.
            iam.allow(
                "CreateTaggedKeys",
                [akms.CreateKey],
                ["*"],
                StringEquals(f"aws:RequestTag/{naming.PRODUCT_TAG_KEY}", self.config.name),
            ),
            # CloudFormation passes the tags in CreateKey, which KMS authorizes as
            # kms:TagResource on a key that has no tags yet: ManageOwnKeys's
            # aws:ResourceTag condition cannot match then, the request's tags can.
            iam.allow(
                "TagNewKeys",
                [akms.TagResource],
                [_arn("kms", "key/*")],
                StringEquals(f"aws:RequestTag/{naming.PRODUCT_TAG_KEY}", self.config.name),
            ),
            iam.allow(
                "ManageOwnKeys",
                [
                    akms.DescribeKey,
                    akms.EnableKey,
                    akms.DisableKey,
                    akms.GetKeyPolicy,
                    akms.PutKeyPolicy,
                    akms.GetKeyRotationStatus,
                    akms.EnableKeyRotation,
                    akms.DisableKeyRotation,
                    akms.UpdateKeyDescription,
                    akms.ListResourceTags,
                    akms.TagResource,
                    akms.UntagResource,
                    akms.ScheduleKeyDeletion,
                    akms.CreateGrant,
                    akms.RetireGrant,
                    akms.RevokeGrant,
                    akms.Encrypt,
                    akms.Decrypt,
                    akms.GenerateDataKey,
                ],
                [_arn("kms", "key/*")],
                StringEquals(f"aws:ResourceTag/{naming.PRODUCT_TAG_KEY}", self.config.name),
            ),
            iam.allow(
                "ManageOwnAliases",
                [akms.CreateAlias, akms.UpdateAlias, akms.DeleteAlias],
                [_arn("kms", f"alias/{p}-*"), _arn("kms", "key/*")],
            ),
            iam.allow("ListAliases", [akms.ListAliases], ["*"]),
        ]

    def _queue_and_table_statements(self) -> list:
        """The work queues and the state table, by name."""
        p = self.prefix
        return [
            iam.allow(
                "ManageOwnQueues",
                [
                    asqs.CreateQueue,
                    asqs.DeleteQueue,
                    asqs.GetQueueAttributes,
                    asqs.SetQueueAttributes,
                    asqs.GetQueueUrl,
                    asqs.TagQueue,
                    asqs.UntagQueue,
                    asqs.ListQueueTags,
                ],
                [_arn("sqs", f"{p}-*")],
            ),
            iam.allow(
                "ManageOwnTable",
                [
                    addb.CreateTable,
                    addb.DeleteTable,
                    addb.DescribeTable,
                    addb.UpdateTable,
                    addb.DescribeContinuousBackups,
                    addb.UpdateContinuousBackups,
                    addb.DescribeTimeToLive,
                    # The table handler's read (run after every create and update) asks
                    # for these even when the feature is off; a denial fails the stack.
                    addb.DescribeContributorInsights,
                    addb.DescribeKinesisStreamingDestination,
                    addb.GetResourcePolicy,
                    addb.TagResource,
                    addb.UntagResource,
                    addb.ListTagsOfResource,
                ],
                [_arn("dynamodb", f"table/{p}-*")],
            ),
        ]

    def _function_statements(self) -> list:
        """The detector function, its event source mapping and its code."""
        p = self.prefix
        return [
            iam.allow(
                "ManageOwnFunction",
                [
                    alambda.CreateFunction,
                    alambda.DeleteFunction,
                    alambda.GetFunction,
                    alambda.GetFunctionConfiguration,
                    alambda.UpdateFunctionCode,
                    alambda.UpdateFunctionConfiguration,
                    alambda.PutFunctionRecursionConfig,
                    alambda.GetFunctionRecursionConfig,
                    # Read by the function handler after every create and update.
                    alambda.GetFunctionCodeSigningConfig,
                    alambda.GetRuntimeManagementConfig,
                    alambda.GetFunctionScalingConfig,
                    alambda.TagResource,
                    alambda.UntagResource,
                    alambda.ListTags,
                ],
                [_arn("lambda", f"function:{p}-*")],
            ),
            # CreateEventSourceMapping has no resource-level permission; the function's
            # ARN is its condition key.
            iam.allow(
                "CreateOwnEventSourceMapping",
                [alambda.CreateEventSourceMapping],
                ["*"],
                ArnLike("lambda:FunctionArn", _arn("lambda", f"function:{p}-*")),
            ),
            iam.allow(
                "ManageOwnEventSourceMapping",
                [
                    alambda.UpdateEventSourceMapping,
                    alambda.DeleteEventSourceMapping,
                ],
                [_arn("lambda", "event-source-mapping:*")],
                ArnLike("lambda:FunctionArn", _arn("lambda", f"function:{p}-*")),
            ),
            # The mapping carries the product tags: tag-on-create and the handler's read
            # are authorized on the mapping's own ARN (a random UUID). Reading and tagging
            # carry no lambda:FunctionArn key (only Create/Update/Delete do), so any
            # mapping of this account.
            iam.allow(
                "ReadAndTagOwnEventSourceMapping",
                [
                    alambda.GetEventSourceMapping,
                    alambda.TagResource,
                    alambda.UntagResource,
                    alambda.ListTags,
                ],
                [_arn("lambda", "event-source-mapping:*")],
            ),
            iam.allow(
                "ReadDetectorCode",
                [as3.GetObject, as3.GetObjectVersion],
                [
                    Sub(
                        "arn:${AWS::Partition}:s3:::"
                        + self.names.artifact_bucket_prefix(self.admin)
                        + "-*/*"
                    )
                ],
                # Names are predictable: only the admin account's buckets, never a
                # same-named bucket someone else made first in a region not yet deployed.
                StringEquals("s3:ResourceAccount", self.admin),
            ),
        ]

    def _log_statements(self) -> list:
        """The detector's log group."""
        return [
            iam.allow(
                "ManageOwnLogGroup",
                [
                    alogs.CreateLogGroup,
                    alogs.DeleteLogGroup,
                    alogs.PutRetentionPolicy,
                    alogs.DeleteRetentionPolicy,
                    alogs.AssociateKmsKey,
                    alogs.DisassociateKmsKey,
                    alogs.TagResource,
                    alogs.UntagResource,
                    alogs.ListTagsForResource,
                    alogs.TagLogGroup,
                    # Read by the log group handler after every create and update.
                    alogs.GetDataProtectionPolicy,
                    alogs.DeleteDataProtectionPolicy,
                    alogs.DescribeIndexPolicies,
                ],
                [_arn("logs", f"log-group:{self.names.detector_log_group}*")],
            ),
            # DescribeLogGroups is evaluated against every log group of the region.
            iam.allow(
                "DescribeLogGroups", [alogs.DescribeLogGroups], [_arn("logs", "log-group:*")]
            ),
            # The log group handler's read lists the account's resource policies; the
            # action has no resource-level permission.
            iam.allow("DescribeLogResourcePolicies", [alogs.DescribeResourcePolicies], ["*"]),
        ]

    def _rule_and_alarm_statements(self) -> list:
        """The EventBridge rules and the alarms, by name prefix."""
        p = self.prefix
        return [
            iam.allow(
                "ManageOwnRules",
                [
                    aevents.PutRule,
                    aevents.DeleteRule,
                    aevents.DescribeRule,
                    aevents.EnableRule,
                    aevents.DisableRule,
                    aevents.PutTargets,
                    aevents.RemoveTargets,
                    aevents.ListTargetsByRule,
                    aevents.TagResource,
                    aevents.UntagResource,
                    aevents.ListTagsForResource,
                ],
                [_arn("events", f"rule/{p}-*")],
            ),
            iam.allow(
                "ManageOwnAlarms",
                [
                    acw.PutMetricAlarm,
                    acw.DeleteAlarms,
                    acw.DescribeAlarms,
                    acw.TagResource,
                    acw.UntagResource,
                    acw.ListTagsForResource,
                ],
                [_arn("cloudwatch", f"alarm:{self.config.detection.alarm_prefix}*")],
            ),
        ]

    def _backup_statements(self) -> list:
        """Mode create: the backup vault and plan the member creates."""
        return [
            iam.allow(
                "ManageOwnVault",
                [
                    abackup.CreateBackupVault,
                    abackup.DeleteBackupVault,
                    abackup.DescribeBackupVault,
                    # Read by the vault handler after create, even when unset.
                    abackup.GetBackupVaultNotifications,
                    abackup.GetBackupVaultAccessPolicy,
                    abackup.TagResource,
                    abackup.UntagResource,
                    abackup.ListTags,
                ],
                [_arn("backup", f"backup-vault:{self.config.backup.vault_name}")],
            ),
            iam.allow(
                "ManageOwnPlan",
                [
                    abackup.CreateBackupPlan,
                    abackup.UpdateBackupPlan,
                    abackup.DeleteBackupPlan,
                    abackup.GetBackupPlan,
                    abackup.CreateBackupSelection,
                    abackup.DeleteBackupSelection,
                    abackup.GetBackupSelection,
                    abackup.TagResource,
                    abackup.UntagResource,
                    abackup.ListTags,
                ],
                [_arn("backup", "backup-plan:*")],
            ),
            # Creating a vault mounts its storage; the action has no resource type.
            iam.allow("CreateVaultStorage", [abackup_storage.MountCapsule], ["*"]),
            # A first backup selection in a fresh account creates AWS Backup's
            # service-linked role; only that one.
            iam.allow(
                "CreateBackupServiceLinkedRole",
                [aiam.CreateServiceLinkedRole],
                [
                    Sub(
                        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/"
                        "backup.amazonaws.com/AWSServiceRoleForBackup"
                    )
                ],
                StringEquals("iam:AWSServiceName", "backup.amazonaws.com"),
            ),
        ]

    @cached_property
    def execution_role(self) -> tiam.Role:
        admin_role = iam.account_arn(self.admin, f"role/{self.roles.administration_role_name}")
        role = tiam.Role(
            "ExecutionRole",
            RoleName=self.roles.execution_role_name,
            Description=(
                f"CloudFormation StackSets ({self.names.stackset}) creates the backup anomaly "
                "detector's resources here"
            ),
            # The admin account as principal, narrowed to its administration role: trusting
            # the role's ARN directly would break if that role were ever recreated.
            AssumeRolePolicyDocument=iam.trust(
                iam.accounts([self.admin]), ArnEquals("aws:PrincipalArn", admin_role)
            ),
            Policies=[
                tiam.Policy(
                    PolicyName=naming.STACKSET_EXECUTION_POLICY,
                    PolicyDocument=self.execution_policy(),
                )
            ],
            Tags=common.tags(self.config),
        )
        # The admin account needs an execution role only when it is a target itself.
        if not self.admin_is_target:
            role.Condition = IS_TARGET
        return role

    def create_template(self) -> Template:
        template = common.new_template(
            f"Backup anomaly detection ({self.config.name}): StackSet administration role "
            f"(account {self.admin}) and execution role (target accounts); one stack per "
            "account"
        )
        template.add_condition(IS_ADMIN, Equals(Ref("AWS::AccountId"), self.admin))
        if not self.admin_is_target:
            template.add_condition(IS_TARGET, Not(Equals(Ref("AWS::AccountId"), self.admin)))
        template.add_resource(self.admin_role)
        template.add_resource(self.boundary_policy)
        template.add_resource(self.execution_role)
        return template


def build(config: OrgConfig) -> Template:
    """The StackSet roles template for ``config`` (SELF_MANAGED deployments)."""
    return StackSetRolesTemplate(config).create_template()
