"""Member template: the StackSet body deployed to every target account and region.

Data flow (DESIGN.md): AWS Backup job COMPLETED -> EventBridge rule on the default bus ->
SQS work queue (KMS, DLQ) -> detector Lambda (SQS event source, partial batch failures)
-> DynamoDB state, CloudWatch metric and alarms, ``Backup Change Measured`` on the central
bus. Alarm state changes of every alarm named with the alarm prefix (the per-volume alarms
the detector creates and the two operational alarms here) are forwarded to the central bus.

Size: about 28 KB in backup mode create, 22 KB in mode existing (asserted in
``tests/generator/test_templates_member.py``): under the 51,200-byte inline limit. The
deploy code still passes it by S3 URL (``TemplateURL``, limit 1 MB), so growth never
breaks a rollout. No transforms (StackSets reject them); 23 resources and 8 parameters,
well under 500 and 200.
"""

from __future__ import annotations

from functools import cached_property

from awacs import backup as abackup
from awacs import cloudwatch as acw
from awacs import dynamodb as addb
from awacs import ebs as aebs
from awacs import ec2 as aec2
from awacs import events as aevents
from awacs import iam as aiam
from awacs import kms as akms
from awacs import logs as alogs
from awacs import securityhub as asecurityhub
from awacs import sqs as asqs
from awacs.aws import ArnEquals, Bool, StringEquals
from troposphere import Equals, If, Not, NoValue, Output, Parameter, Ref, Sub, Template
from troposphere import awslambda as tlambda
from troposphere import backup as tbackup
from troposphere import cloudwatch as tcw
from troposphere import dynamodb as tddb
from troposphere import events as tevents
from troposphere import iam as tiam
from troposphere import logs as tlogs
from troposphere import sqs as tsqs

from generator import iam, naming
from generator.config.model import BackupMode, OrgConfig, ResourceType
from generator.naming import PARTITION_PLACEHOLDER, REGION_PLACEHOLDER, Names
from generator.templates import common, shapes
from generator.templates import settings as template_settings

RUNTIME = "python3.13"
HANDLER = "backup_anomaly.handler.lambda_handler"
# SQS: at least six times the function timeout, so a message is not redelivered while
# its invocation (and Lambda's own retries of the batch) may still be running.
VISIBILITY_TIMEOUT_FACTOR = 6
# A year of detector logs: they are the audit trail of every measurement decision.
LOG_RETENTION_DAYS = 365


# AWS Backup selection resources per configured resource type.
# Fn::Sub strings: in aws-us-gov and aws-cn a literal "arn:aws:" names nothing, and
# IAM rejects a managed policy ARN of another partition (the role, then the stack, fail).
SELECTION_RESOURCES = {
    ResourceType.EBS: f"arn:{PARTITION_PLACEHOLDER}:ec2:*:*:volume/*",
    ResourceType.EC2: f"arn:{PARTITION_PLACEHOLDER}:ec2:*:*:instance/*",
}


HAS_BOUNDARY = "HasPermissionsBoundary"
CREATE_VAULT = "CreateBackupVault"
SCANS_ON = "ConfirmationScansOn"
FINDINGS_ON = "SecurityHubFindingsOn"


class MemberTemplate:
    """Builds the member template for one organization config.

    Each resource is a cached property that builds it once; :meth:`create_template` adds
    them in a fixed order. Everything is pure: no I/O, no AWS calls.
    """

    def __init__(self, config: OrgConfig):
        self.config = config
        self.names = Names(config.name)
        self.create_backups = config.backup.mode is BackupMode.CREATE
        self.alarm_prefix = config.detection.alarm_prefix
        self.central_bus_arn = Sub(
            self.names.central_bus_arn(
                config.security.home_region, config.security.account_id, PARTITION_PLACEHOLDER
            )
        )

    # -- parameters -------------------------------------------------------------------
    @cached_property
    def code_bucket_prefix(self) -> Parameter:
        return Parameter(
            naming.PARAM_CODE_BUCKET_PREFIX,
            Type="String",
            Description="Artifact bucket name without its '-<region>' suffix",
            AllowedPattern=r"^[a-z0-9][a-z0-9.-]{1,47}$",
        )

    @cached_property
    def code_key(self) -> Parameter:
        return Parameter(
            naming.PARAM_CODE_KEY,
            Type="String",
            Description="S3 key of the detector zip (content-addressed by its sha256)",
            AllowedPattern=r"^[A-Za-z0-9/._-]+\.zip$",
        )

    @cached_property
    def settings(self) -> dict[str, Parameter]:
        """The contract's parameters (bounds and defaults from the settings contract)."""
        return template_settings.member_parameters(self.config)

    def setting(self, name: str):
        """A contract setting for a property: its parameter's Ref, else the config value."""
        return template_settings.value(name, self.config, self.settings)

    @cached_property
    def permissions_boundary(self) -> Parameter:
        return Parameter(
            naming.PARAM_PERMISSIONS_BOUNDARY,
            Type="String",
            Default="",
            Description="Managed policy every role of this stack carries as its permissions "
            "boundary (SELF_MANAGED); empty: none",
            AllowedPattern=r"^[\w+=,.@-]{0,128}$",
        )

    @cached_property
    def adopt_vault(self) -> Parameter:
        return Parameter(
            naming.PARAM_ADOPT_VAULT,
            Type="String",
            Default="false",
            AllowedValues=["false", "true"],
            Description="true: the backup vault exists already (retained when this account "
            "was offboarded before); use it rather than create it",
        )

    def parameters(self) -> list[Parameter]:
        """The template's parameters: the code location, the boundary, the contract's."""
        params = [self.code_bucket_prefix, self.code_key, self.permissions_boundary]
        if self.create_backups:
            params.append(self.adopt_vault)
        return [*params, *self.settings.values()]

    def conditions(self) -> dict:
        conditions = {
            HAS_BOUNDARY: Not(Equals(self.permissions_boundary.ref(), "")),
            SCANS_ON: Equals(self.setting("confirmation_scan"), "true"),
            FINDINGS_ON: Equals(self.setting("security_hub_findings"), "true"),
        }
        if self.create_backups:
            conditions[CREATE_VAULT] = Equals(self.adopt_vault.ref(), "false")
        return conditions

    def boundary(self):
        """The roles' PermissionsBoundary: the StackSet's boundary policy, when it has one.

        Under SELF_MANAGED the execution role may create roles only with it, so no role
        this stack creates can hold more than the boundary allows (no IAM, no admin).
        """
        return If(
            HAS_BOUNDARY,
            iam.arn("iam", f"policy/${{{naming.PARAM_PERMISSIONS_BOUNDARY}}}", region=""),
            NoValue,
        )

    # -- encryption -------------------------------------------------------------------
    @cached_property
    def key(self):
        """One key for the queues, table, logs and (mode ``create``) the backup vault."""
        events_use = iam.allow(
            "EventBridgeWritesToEncryptedQueues",
            common.SERVICE_PUBLISH_ACTIONS,
            [common.KEY_POLICY_RESOURCE],
            # Only this account's rules. Not narrowed to the rule's ARN: SQS makes the KMS
            # call for EventBridge, and a condition that call might not carry would drop
            # every backup event (the DLQ uses this key too). The queue policies carry
            # the rule's ARN.
            StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            principal=iam.service("events.amazonaws.com"),
        )
        logs_use = common.logs_key_use(
            "CloudWatchLogsEncryptsDetectorLogs", self.names.detector_log_group
        )
        return common.kms_key(
            "MemberKey",
            self.config,
            "Backup anomaly detection: detector queues, state table, logs and backup vault",
            [events_use, logs_use],
            # In mode create the key protects the recovery points in the vault.
            retain=self.create_backups,
        )

    @cached_property
    def key_alias(self):
        return common.kms_alias("MemberKeyAlias", self.names.member_key_alias, self.key)

    # -- queues -----------------------------------------------------------------------
    @cached_property
    def dlq(self) -> tsqs.Queue:
        return shapes.encrypted_queue(
            "WorkDeadLetterQueue", self.names.work_dlq, self.key, self.config
        )

    @cached_property
    def queue(self) -> tsqs.Queue:
        return shapes.encrypted_queue(
            "WorkQueue",
            self.names.work_queue,
            self.key,
            self.config,
            VisibilityTimeout=VISIBILITY_TIMEOUT_FACTOR * self.config.setting("timeout_seconds"),
            RedrivePolicy=tsqs.RedrivePolicy(
                deadLetterTargetArn=self.dlq.get_att("Arn"),
                # >= 5 (validated in the config): Lambda's own scaling can return a message
                # a few times before an invocation even starts.
                maxReceiveCount=self.config.setting("dlq_max_receive_count"),
            ),
        )

    @cached_property
    def queue_policy(self) -> tsqs.QueuePolicy:
        return shapes.rule_queue_policy(
            "WorkQueuePolicy",
            self.queue,
            "OwnRulesSendWork",
            [self.backup_rule, self.heartbeat_rule, self.scan_result_rule],
        )

    @cached_property
    def dlq_policy(self) -> tsqs.QueuePolicy:
        # The rule's target DLQ: events EventBridge could not deliver to the work queue.
        return shapes.rule_queue_policy(
            "WorkDeadLetterQueuePolicy", self.dlq, "BackupRuleDeadLetters", [self.backup_rule]
        )

    # -- backup event rule ------------------------------------------------------------
    def event_pattern(self) -> dict:
        """The EventBridge pattern for completed EBS/EC2 backup jobs this stack measures."""
        detail: dict = {
            "state": ["COMPLETED"],
            "resourceType": sorted(t.value for t in self.config.setting("resource_types")),
        }
        if self.create_backups:
            detail["backupVaultName"] = [self.config.backup.vault_name]
        else:
            existing = self.config.backup.existing
            if existing.vault_names:
                detail["backupVaultName"] = sorted(existing.vault_names)
            if existing.plan_ids:
                detail["createdBy"] = {"backupPlanId": sorted(existing.plan_ids)}
        return {
            "source": [naming.BACKUP_EVENT_SOURCE],
            "detail-type": [naming.BACKUP_DETAIL_TYPE],
            "detail": detail,
        }

    @cached_property
    def backup_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "BackupCompletedRule",
            Name=self.names.backup_rule,
            Description="Completed AWS Backup jobs of EBS volumes and EC2 instances",
            EventPattern=self.event_pattern(),
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[
                tevents.Target(
                    Id="WorkQueue",
                    Arn=self.queue.get_att("Arn"),
                    DeadLetterConfig=tevents.DeadLetterConfig(Arn=self.dlq.get_att("Arn")),
                    RetryPolicy=tevents.RetryPolicy(
                        MaximumEventAgeInSeconds=86400, MaximumRetryAttempts=185
                    ),
                )
            ],
        )

    # -- state, logs --------------------------------------------------------------------
    @cached_property
    def table(self) -> tddb.Table:
        return tddb.Table(
            "StateTable",
            TableName=self.names.state_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                tddb.AttributeDefinition(AttributeName="VolumeArn", AttributeType="S")
            ],
            KeySchema=[tddb.KeySchema(AttributeName="VolumeArn", KeyType="HASH")],
            SSESpecification=tddb.SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=self.key.get_att("Arn")
            ),
            PointInTimeRecoverySpecification=tddb.PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            Tags=common.tags(self.config),
        )

    @cached_property
    def log_group(self) -> tlogs.LogGroup:
        return tlogs.LogGroup(
            "DetectorLogGroup",
            LogGroupName=self.names.detector_log_group,
            RetentionInDays=LOG_RETENTION_DAYS,
            KmsKeyId=self.key.get_att("Arn"),
            Tags=common.tags(self.config),
        )

    # -- detector ---------------------------------------------------------------------
    def detector_policy(self):
        """Exactly the calls the detector makes, each on the narrowest resource AWS allows."""
        region_condition = StringEquals("aws:RequestedRegion", Ref("AWS::Region"))
        return iam.document(
            iam.allow(
                # GetSnapshotBlock: the content sample, read in memory and never stored.
                "ReadChangedBlocks",
                [aebs.ListChangedBlocks, aebs.GetSnapshotBlock],
                [iam.arn("ec2", "snapshot/*", account="")],
            ),
            iam.allow(
                "State",
                [addb.GetItem, addb.UpdateItem],
                [self.table.get_att("Arn")],
            ),
            # PutMetricData has no resource-level permission; the namespace condition is
            # the scope AWS offers.
            iam.allow(
                "PublishChangedBlocks",
                [acw.PutMetricData],
                ["*"],
                StringEquals("cloudwatch:namespace", self.config.setting("metric_namespace")),
            ),
            iam.allow(
                "ManageVolumeAlarms",
                [acw.PutMetricAlarm, acw.DeleteAlarms, acw.DescribeAlarms, acw.TagResource],
                [iam.arn("cloudwatch", f"alarm:{self.alarm_prefix}*")],
            ),
            # DescribeImages and DescribeSnapshots have no resource-level permission; the
            # region condition keeps the role to its own region.
            # DescribeVolumes and DescribeInstances: where an anomalous volume is attached.
            iam.allow(
                "ResolveSnapshots",
                [
                    aec2.DescribeImages,
                    aec2.DescribeSnapshots,
                    aec2.DescribeVolumes,
                    aec2.DescribeInstances,
                ],
                ["*"],
                region_condition,
            ),
            # AWS Backup has no backup-job resource type: DescribeBackupJob takes "*".
            iam.allow(
                "ResolveBackupJob",
                [abackup.DescribeBackupJob],
                ["*"],
                region_condition,
            ),
            iam.allow(
                "ConsumeAndRequeueWork",
                [
                    asqs.ReceiveMessage,
                    asqs.DeleteMessage,
                    asqs.GetQueueAttributes,
                    asqs.SendMessage,
                ],
                [self.queue.get_att("Arn")],
            ),
            iam.allow(
                "UseQueueKey",
                [akms.Decrypt, akms.GenerateDataKey],
                [self.key.get_att("Arn")],
            ),
            # Encrypted snapshots: their keys are the owners' choice, so any key, but only
            # when EBS reads on the detector's behalf. Reading an encrypted snapshot through
            # the EBS direct APIs needs kms:Decrypt on its key; EBS encryption asks for
            # DescribeKey and a grant (only for an AWS resource) besides; the write actions
            # (Encrypt, GenerateDataKey*, ReEncrypt*) are for PutSnapshotBlock, which the
            # detector never calls.
            # https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-faq.html
            # https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-permissions.html
            # https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html
            # The calling service is EC2's on the AWS managed key aws/ebs (its key policy
            # admits ec2.<region>.amazonaws.com only) and is named ebs.<region> in the EBS
            # direct API's own endpoint: both are allowed, nothing else.
            iam.allow(
                "ReadEncryptedSnapshotsThroughEbs",
                [akms.Decrypt, akms.DescribeKey],
                [iam.arn("kms", "key/*", account="*")],
                StringEquals("kms:ViaService", self._ebs_services()),
            ),
            iam.allow(
                "GrantsOnEncryptedSnapshotKeysForEbs",
                [akms.CreateGrant],
                [iam.arn("kms", "key/*", account="*")],
                StringEquals("kms:ViaService", self._ebs_services()),
                Bool("kms:GrantIsForAWSResource", "true"),
            ),
            iam.allow("ForwardMeasurements", [aevents.PutEvents], [self.central_bus_arn]),
            iam.allow(
                "WriteOwnLogs",
                [alogs.CreateLogStream, alogs.PutLogEvents],
                [self.log_group.get_att("Arn")],
            ),
        )

    def scan_policy(self):
        """Starting a confirmation scan: the job, and the two roles it names."""
        backup_roles = (
            [self.backup_role.get_att("Arn")]
            if self.create_backups
            # The organization's own plans: the role that created the recovery point,
            # whichever it is, passed to AWS Backup only.
            else [iam.arn("iam", "role/*", region="")]
        )
        return iam.document(
            # StartScanJob's resource type could not be confirmed offline (the Service
            # Authorization Reference row): "*" in this region, the roles below scoped.
            iam.allow(
                "StartConfirmationScans",
                [abackup.StartScanJob],
                ["*"],
                StringEquals("aws:RequestedRegion", Ref("AWS::Region")),
            ),
            iam.allow(
                "PassTheBackupRoleToBackup",
                [aiam.PassRole],
                backup_roles,
                StringEquals("iam:PassedToService", "backup.amazonaws.com"),
            ),
            # Which service the pass of the scanner role names is not documented; the role
            # trusts GuardDuty Malware Protection alone, so passing it grants nothing else.
            iam.allow("PassTheScannerRole", [aiam.PassRole], [self.scanner_role.get_att("Arn")]),
        )

    def findings_policy(self):
        """Importing and resolving this account's own findings (the default product)."""
        return iam.document(
            iam.allow(
                "ImportOwnFindings",
                [asecurityhub.BatchImportFindings],
                [iam.arn("securityhub", "product/${AWS::AccountId}/default")],
            ),
            # BatchUpdateFindings names findings, not a resource type: "*" in this region.
            iam.allow(
                "ResolveOwnFindings",
                [asecurityhub.BatchUpdateFindings],
                ["*"],
                StringEquals("aws:RequestedRegion", Ref("AWS::Region")),
            ),
        )

    @cached_property
    def scan_role_policy(self) -> tiam.RolePolicy:
        policy = tiam.RolePolicy(
            "DetectorScanPolicy",
            PolicyName="confirmation-scans",
            RoleName=self.detector_role.ref(),
            PolicyDocument=iam.as_dict(self.scan_policy()),
        )
        policy.Condition = SCANS_ON
        return policy

    @cached_property
    def findings_role_policy(self) -> tiam.RolePolicy:
        policy = tiam.RolePolicy(
            "DetectorFindingsPolicy",
            PolicyName="security-hub-findings",
            RoleName=self.detector_role.ref(),
            PolicyDocument=iam.as_dict(self.findings_policy()),
        )
        policy.Condition = FINDINGS_ON
        return policy

    @cached_property
    def scanner_role(self) -> tiam.Role:
        role = tiam.Role(
            "ScannerRole",
            RoleName=Sub(self.names.scanner_role(REGION_PLACEHOLDER)),
            Description="GuardDuty Malware Protection reads a recovery point it scans",
            AssumeRolePolicyDocument=iam.trust(
                iam.service(naming.SCANNER_SERVICE),
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            ),
            ManagedPolicyArns=[Sub(naming.SCANNER_POLICY)],
            PermissionsBoundary=self.boundary(),
            Tags=common.tags(self.config),
        )
        role.Condition = SCANS_ON
        return role

    @cached_property
    def heartbeat_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "HeartbeatRule",
            Name=self.names.heartbeat_rule,
            Description="The detector tells the security account it runs (silence alarms)",
            ScheduleExpression=naming.HEARTBEAT_SCHEDULE,
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[tevents.Target(Id="WorkQueue", Arn=self.queue.get_att("Arn"))],
        )

    @cached_property
    def scan_result_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "ScanResultRule",
            Name=self.names.scan_result_rule,
            Description="Finished malware scans: to the security account and the detector",
            EventPattern={
                "source": [naming.BACKUP_EVENT_SOURCE],
                "detail-type": [naming.SCAN_DETAIL_TYPE],
                "detail": {"state": list(naming.SCAN_FINAL_STATES)},
            },
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[
                tevents.Target(
                    Id="CentralBus",
                    Arn=self.central_bus_arn,
                    RoleArn=self.forwarder_role.get_att("Arn"),
                    DeadLetterConfig=tevents.DeadLetterConfig(Arn=self.forward_dlq.get_att("Arn")),
                    RetryPolicy=tevents.RetryPolicy(
                        MaximumEventAgeInSeconds=86400, MaximumRetryAttempts=185
                    ),
                ),
                tevents.Target(Id="WorkQueue", Arn=self.queue.get_att("Arn")),
            ],
        )

    @staticmethod
    def _ebs_services() -> list:
        return [
            Sub("ec2.${AWS::Region}.amazonaws.com"),
            Sub("ebs.${AWS::Region}.amazonaws.com"),
        ]

    @cached_property
    def detector_role(self) -> tiam.Role:
        return tiam.Role(
            "DetectorRole",
            RoleName=Sub(self.names.detector_role(REGION_PLACEHOLDER)),
            Description="Backup anomaly detector: measures changed blocks, manages its alarms",
            AssumeRolePolicyDocument=iam.trust(
                iam.service("lambda.amazonaws.com"),
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            ),
            Policies=[
                tiam.Policy(
                    PolicyName=naming.DETECTOR_POLICY, PolicyDocument=self.detector_policy()
                ),
            ],
            PermissionsBoundary=self.boundary(),
            Tags=common.tags(self.config),
        )

    def environment(self) -> dict:
        """The detector's environment (the contract in lambda/backup_anomaly/contract.py)."""
        return template_settings.environment(
            self.config,
            self.settings,
            wiring={
                "state_table": self.table.ref(),
                "central_bus_arn": self.central_bus_arn,
                "event_source": naming.EVENT_SOURCE,
                "work_queue_url": self.queue.ref(),
                # The volume alarms carry no actions: EventBridge forwards their changes.
                "alarm_actions_enabled": True,
                "scanner_role_arn": If(SCANS_ON, self.scanner_role.get_att("Arn"), ""),
            },
        )

    @cached_property
    def function(self) -> tlambda.Function:
        # Memory and timeout are sized for the worst case, which is the attack: a 16 TiB
        # volume rewritten is ~3,356 ListChangedBlocks pages of ~2 MB JSON each. Memory is
        # for CPU, not capacity (the count holds one page at a time): parsing is CPU-bound
        # and Lambda's CPU grows with memory (1,769 MB is one vCPU), so the default 1,024 MB
        # buys ~0.6 vCPU where 128 MB would parse a page ~14 times slower. The timeout
        # defaults to the 900 s maximum: at the 40 req/s budget those pages are ~84 s of
        # requests, which leaves room for throttling back-off and parse time; a count that
        # still cannot finish is re-queued by the detector as a continuation.
        function = tlambda.Function(
            "DetectorFunction",
            FunctionName=self.names.detector_function,
            Description="Measures changed EBS blocks between consecutive backups",
            Runtime=RUNTIME,
            Architectures=["arm64"],
            Handler=HANDLER,
            Code=tlambda.Code(
                S3Bucket=Sub(f"${{{self.code_bucket_prefix.title}}}-${{AWS::Region}}"),
                S3Key=self.code_key.ref(),
            ),
            MemorySize=self.setting("memory_mb"),
            Timeout=self.config.setting("timeout_seconds"),
            Role=self.detector_role.get_att("Arn"),
            Environment=tlambda.Environment(Variables=self.environment()),
            KmsKeyArn=self.key.get_att("Arn"),
            LoggingConfig=tlambda.LoggingConfig(LogGroup=self.log_group.ref()),
            # Continuations (the detector re-queueing its own unfinished count) are a
            # deliberate Lambda -> SQS -> Lambda loop, bounded far below the 16 hops after
            # which Lambda stops a recursive loop; keep that safety net on.
            RecursiveLoop="Terminate",
            Tags=common.tags(self.config),
        )
        return common.skip_checkov(
            function,
            (
                "CKV_AWS_116",
                "Invoked only by the SQS event source mapping: failed messages go to the "
                "work queue's redrive DLQ; a function DLQ applies to asynchronous "
                "invocations only.",
            ),
            (
                "CKV_AWS_115",
                "Concurrency is capped by the event source mapping's MaximumConcurrency. "
                "Reserved concurrency would fail the stack in new accounts whose Lambda "
                "quota is 10 and throttles SQS pollers.",
            ),
            (
                "CKV_AWS_117",
                "The detector calls only AWS APIs (EBS direct, DynamoDB, CloudWatch, "
                "EventBridge); a VPC would add endpoints and NAT in every account and "
                "region without reducing exposure.",
            ),
        )

    @cached_property
    def event_source_mapping(self) -> tlambda.EventSourceMapping:
        # One backup job per invocation: a large count can use most of the timeout. All the
        # concurrent invocations share the account's ~50 ListChangedBlocks requests a second.
        return shapes.sqs_event_source(
            "DetectorEventSource",
            self.queue,
            self.function,
            1,
            self.setting("max_concurrency"),
            self.config,
        )

    # -- operational alarms -----------------------------------------------------------
    @cached_property
    def dlq_alarm(self) -> tcw.Alarm:
        return shapes.queue_depth_alarm(
            "DeadLetterAlarm",
            Names.dlq_alarm(self.alarm_prefix),
            "Backup jobs the detector could not measure are in the dead-letter queue "
            f"{self.names.work_dlq}; inspect them and redrive.",
            self.dlq,
            self.config,
        )

    @cached_property
    def errors_alarm(self) -> tcw.Alarm:
        return shapes.above_zero_alarm(
            "DetectorErrorsAlarm",
            Names.errors_alarm(self.alarm_prefix),
            f"The detector {self.names.detector_function} failed; SQS retries the job "
            "and the dead-letter queue keeps it after repeated failures.",
            self.config,
            namespace="AWS/Lambda",
            metric="Errors",
            dimension=("FunctionName", self.function.ref()),
            statistic="Sum",
        )

    # -- forwarding to the central bus ------------------------------------------------
    @cached_property
    def forward_dlq(self) -> tsqs.Queue:
        # EventBridge does not retry a PutEvents the central bus refuses (its policy not
        # yet admitting this account, the central stack missing): without a DLQ the
        # alert would be dropped. Its own queue, not the work DLQ: redriving that one
        # feeds the detector, which measures backup jobs, not alarm state changes.
        return shapes.encrypted_queue(
            "ForwardDeadLetterQueue", self.names.forward_dlq, self.key, self.config
        )

    @cached_property
    def forward_dlq_policy(self) -> tsqs.QueuePolicy:
        return shapes.rule_queue_policy(
            "ForwardDeadLetterQueuePolicy",
            self.forward_dlq,
            "ForwardRulesDeadLetters",
            [self.forward_rule, self.scan_result_rule],
        )

    @cached_property
    def forward_dlq_alarm(self) -> tcw.Alarm:
        # Named with the prefix like the others: once forwarding works again, the
        # security account hears that alerts were held back.
        return shapes.queue_depth_alarm(
            "ForwardDeadLetterAlarm",
            Names.forward_dlq_alarm(self.alarm_prefix),
            "Alarm state changes could not be forwarded to the security account; they "
            f"wait in {self.names.forward_dlq}. Check the central bus policy, then "
            "redrive them to the central bus.",
            self.forward_dlq,
            self.config,
        )

    @cached_property
    def forwarder_role(self) -> tiam.Role:
        return tiam.Role(
            "ForwarderRole",
            RoleName=Sub(self.names.forwarder_role(REGION_PLACEHOLDER)),
            Description="EventBridge forwards alarm state changes and scan results centrally",
            AssumeRolePolicyDocument=iam.trust(
                iam.service("events.amazonaws.com"),
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                # String ARNs: the rules refer to this role, so the role cannot refer back.
                ArnEquals(
                    "aws:SourceArn",
                    [
                        self._rule_arn(self.names.alarm_forward_rule),
                        self._rule_arn(self.names.scan_result_rule),
                    ],
                ),
            ),
            Policies=[
                tiam.Policy(
                    PolicyName=naming.FORWARDER_POLICY,
                    PolicyDocument=iam.document(
                        iam.allow("PutOnCentralBus", [aevents.PutEvents], [self.central_bus_arn])
                    ),
                )
            ],
            PermissionsBoundary=self.boundary(),
            Tags=common.tags(self.config),
        )

    @cached_property
    def forward_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "AlarmForwardRule",
            Name=self.names.alarm_forward_rule,
            Description="Forward state changes of backup anomaly alarms to the security account",
            EventPattern={
                "source": [naming.ALARM_EVENT_SOURCE],
                "detail-type": [naming.ALARM_DETAIL_TYPE],
                "detail": {"alarmName": [{"prefix": self.alarm_prefix}]},
            },
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[
                tevents.Target(
                    Id="CentralBus",
                    Arn=self.central_bus_arn,
                    RoleArn=self.forwarder_role.get_att("Arn"),
                    DeadLetterConfig=tevents.DeadLetterConfig(Arn=self.forward_dlq.get_att("Arn")),
                    RetryPolicy=tevents.RetryPolicy(
                        MaximumEventAgeInSeconds=86400, MaximumRetryAttempts=185
                    ),
                )
            ],
        )

    # -- backups (mode create) ----------------------------------------------------------
    @cached_property
    def backup_role(self) -> tiam.Role:
        return tiam.Role(
            "BackupRole",
            RoleName=Sub(self.names.backup_role(REGION_PLACEHOLDER)),
            Description="AWS Backup creates the tagged volumes' recovery points",
            # Confused deputy: AWS Backup assumes it only on behalf of this account.
            AssumeRolePolicyDocument=iam.trust(
                iam.service("backup.amazonaws.com"),
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            ),
            ManagedPolicyArns=[
                *(Sub(arn) for arn in naming.BACKUP_MANAGED_POLICIES),
                # A confirmation scan names the role that created the recovery point.
                If(SCANS_ON, Sub(naming.BACKUP_SCAN_POLICY), NoValue),
            ],
            PermissionsBoundary=self.boundary(),
            Tags=common.tags(self.config),
        )

    @cached_property
    def vault(self) -> tbackup.BackupVault:
        vault = tbackup.BackupVault(
            "BackupVault",
            BackupVaultName=self.config.backup.vault_name,
            EncryptionKeyArn=self.key.get_att("Arn"),
            BackupVaultTags=common.tag_map(self.config),
        )
        # Recovery points outlive the stack; AWS Backup refuses to delete a full vault. So
        # an account onboarded again finds it: the rollout then adopts it (AdoptBackupVault)
        # instead of failing on "already exists".
        vault.Condition = CREATE_VAULT
        return common.retain_after_create(vault)

    @cached_property
    def plan(self) -> tbackup.BackupPlan:
        return tbackup.BackupPlan(
            "BackupPlan",
            BackupPlan=tbackup.BackupPlanResourceType(
                BackupPlanName=self.names.backup_plan,
                BackupPlanRule=[
                    tbackup.BackupRuleResourceType(
                        RuleName=self.names.backup_plan_rule,
                        TargetBackupVault=If(
                            CREATE_VAULT, self.vault.ref(), self.config.backup.vault_name
                        ),
                        ScheduleExpression=self.setting("schedule"),
                        Lifecycle=tbackup.LifecycleResourceType(
                            DeleteAfterDays=self.setting("retention_days")
                        ),
                        RecoveryPointTags=common.tag_map(self.config),
                    )
                ],
            ),
            BackupPlanTags=common.tag_map(self.config),
        )

    @cached_property
    def selection(self) -> tbackup.BackupSelection:
        tag = self.config.backup.selection_tag
        return tbackup.BackupSelection(
            "BackupSelection",
            BackupPlanId=self.plan.ref(),
            BackupSelection=tbackup.BackupSelectionResourceType(
                SelectionName=self.names.backup_selection,
                IamRoleArn=self.backup_role.get_att("Arn"),
                # Conditions are ANDed with Resources ("these types AND this tag");
                # ListOfTags would be ORed with them and back up every volume.
                Conditions=tbackup.Conditions(
                    StringEquals=[
                        tbackup.ConditionParameter(
                            ConditionKey=f"aws:ResourceTag/{tag.key}", ConditionValue=tag.value
                        )
                    ]
                ),
                Resources=[
                    Sub(SELECTION_RESOURCES[t])
                    for t in sorted(self.config.setting("resource_types"), key=lambda t: t.value)
                ],
            ),
        )

    # -- assembly ---------------------------------------------------------------------
    def _rule_arn(self, rule_name: str) -> Sub:
        return iam.arn("events", f"rule/{rule_name}")

    def resources(self) -> list:
        """Every resource, in the order they appear in the template."""
        items = [
            self.key,
            self.key_alias,
            self.dlq,
            self.queue,
            self.queue_policy,
            self.dlq_policy,
            self.backup_rule,
            self.table,
            self.log_group,
            self.detector_role,
            self.function,
            self.event_source_mapping,
            self.dlq_alarm,
            self.errors_alarm,
            self.forwarder_role,
            self.forward_dlq,
            self.forward_rule,
            self.forward_dlq_policy,
            self.forward_dlq_alarm,
            self.heartbeat_rule,
            self.scan_result_rule,
            self.scanner_role,
            self.scan_role_policy,
            self.findings_role_policy,
        ]
        if self.create_backups:
            items += [self.backup_role, self.vault, self.plan, self.selection]
        return items

    def create_template(self) -> Template:
        return common.new_template(
            f"Backup anomaly detection ({self.config.name}): member account detector, "
            "deployed by a StackSet to every target account and region",
            parameters=self.parameters(),
            conditions=self.conditions(),
            resources=self.resources(),
            outputs=[
                Output("DetectorFunctionArn", Value=self.function.get_att("Arn")),
                Output("WorkQueueUrl", Value=self.queue.ref()),
                Output("StateTableName", Value=self.table.ref()),
            ],
        )


def build(config: OrgConfig) -> Template:
    """The member template (StackSet body) for ``config``."""
    return MemberTemplate(config).create_template()
