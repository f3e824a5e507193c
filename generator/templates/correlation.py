"""The central stack's correlator: incidents, not one email per volume.

Part of the central template (``central.py`` assembles it): the central bus sends the
members' measurements, anomalies, resets, heartbeats and finished scans to an encrypted SQS
queue (with a DLQ); the correlator Lambda (``lambda/correlator``, in the same zip as the
detector, from the artifact bucket of the home region) reads them in batches, keeps them in
the central DynamoDB table (TTL, point-in-time recovery, retained: it is audit data) and
groups anomalies into incidents, which it mails to the alert topic and copies in full to
the audit queue. A schedule runs its sweep (silence, resolutions, deferred updates).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from awacs import dynamodb as addb
from awacs import kms as akms
from awacs import logs as alogs
from awacs import organizations as aorganizations
from awacs import sns as asns
from awacs import sqs as asqs
from awacs.aws import StringEquals
from troposphere import Ref, Sub
from troposphere import awslambda as tlambda
from troposphere import cloudwatch as tcw
from troposphere import dynamodb as tddb
from troposphere import events as tevents
from troposphere import iam as tiam
from troposphere import logs as tlogs
from troposphere import sqs as tsqs

from correlator import contract as correlator_contract
from correlator.store import GSI1, table_definition
from generator import iam, naming
from generator.naming import REGION_PLACEHOLDER
from generator.templates import common, shapes

if TYPE_CHECKING:
    from generator.templates.central import CentralTemplate

RUNTIME = "python3.13"
HANDLER = "correlator.handler.lambda_handler"
VISIBILITY_TIMEOUT_FACTOR = 6
LOG_RETENTION_DAYS = 365
BATCH_SIZE = 10


class Correlation:
    """The correlator's resources, built from the central template they belong to."""

    def __init__(self, central: CentralTemplate, lambda_key: str):
        self.central = central
        self.config = central.config
        self.names = central.names
        self.lambda_key = lambda_key

    def setting(self, name: str) -> Any:
        return self.config.setting(name)

    # -- the table ----------------------------------------------------------------------
    @cached_property
    def table(self) -> tddb.Table:
        definition = table_definition(self.names.correlator_table)
        table = tddb.Table(
            "CentralTable",
            TableName=definition["TableName"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                tddb.AttributeDefinition(**a) for a in definition["AttributeDefinitions"]
            ],
            KeySchema=[tddb.KeySchema(**k) for k in definition["KeySchema"]],
            GlobalSecondaryIndexes=[
                tddb.GlobalSecondaryIndex(
                    IndexName=g["IndexName"],
                    KeySchema=[tddb.KeySchema(**k) for k in g["KeySchema"]],
                    Projection=tddb.Projection(**g["Projection"]),
                )
                for g in definition["GlobalSecondaryIndexes"]
            ],
            TimeToLiveSpecification=tddb.TimeToLiveSpecification(AttributeName="ttl", Enabled=True),
            SSESpecification=tddb.SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=self.central.key.get_att("Arn")
            ),
            PointInTimeRecoverySpecification=tddb.PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            Tags=common.tags(self.config),
        )
        # Every measurement, incident and notification of the organization: kept.
        return common.retain_after_create(table)

    # -- the queue ----------------------------------------------------------------------
    @cached_property
    def dlq(self) -> tsqs.Queue:
        return common.retain_after_create(
            shapes.encrypted_queue(
                "CorrelatorDeadLetterQueue",
                self.names.correlator_dlq,
                self.central.key,
                self.config,
            )
        )

    @cached_property
    def queue(self) -> tsqs.Queue:
        timeout = self.setting("correlator_timeout_seconds")
        return shapes.encrypted_queue(
            "CorrelatorQueue",
            self.names.correlator_queue,
            self.central.key,
            self.config,
            VisibilityTimeout=VISIBILITY_TIMEOUT_FACTOR * timeout,
            RedrivePolicy=tsqs.RedrivePolicy(
                deadLetterTargetArn=self.dlq.get_att("Arn"),
                maxReceiveCount=self.setting("correlator_max_receive_count"),
            ),
        )

    @cached_property
    def queue_policy(self) -> tsqs.QueuePolicy:
        return shapes.rule_queue_policy(
            "CorrelatorQueuePolicy", self.queue, "CentralRulesSend", self.rules()
        )

    # -- rules --------------------------------------------------------------------------
    def _target(self) -> tevents.Target:
        return tevents.Target(
            Id="Correlator",
            Arn=self.queue.get_att("Arn"),
            DeadLetterConfig=tevents.DeadLetterConfig(Arn=self.central.dlq.get_att("Arn")),
            RetryPolicy=tevents.RetryPolicy(
                MaximumEventAgeInSeconds=86400, MaximumRetryAttempts=185
            ),
        )

    @cached_property
    def member_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "CorrelatorRule",
            Name=self.names.correlator_rule,
            EventBusName=self.central.bus.ref(),
            Description="Measurements, anomalies, resets and heartbeats, to the correlator",
            EventPattern={
                "source": [naming.EVENT_SOURCE],
                "detail-type": list(naming.DETECTOR_DETAIL_TYPES),
            },
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[self._target()],
        )

    @cached_property
    def scan_rule(self) -> tevents.Rule:
        return tevents.Rule(
            "ScanResultsRule",
            Name=self.names.correlator_scan_rule,
            EventBusName=self.central.bus.ref(),
            Description="Finished confirmation scans: to the correlator and the audit queue",
            EventPattern={
                "source": [naming.BACKUP_EVENT_SOURCE],
                "detail-type": [naming.SCAN_DETAIL_TYPE],
                "detail": {"state": list(naming.SCAN_FINAL_STATES)},
            },
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[self._target(), self.central._audit_target()],
        )

    def rules(self) -> list[tevents.Rule]:
        return [self.member_rule, self.scan_rule]

    @cached_property
    def sweep_rule(self) -> tevents.Rule:
        minutes = self.setting("sweep_minutes")
        return tevents.Rule(
            "CorrelatorSweepRule",
            Name=self.names.sweep_rule,
            Description="The correlator's sweep: silence, resolutions, deferred updates",
            ScheduleExpression=f"rate({minutes} minutes)",
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=[tevents.Target(Id="Correlator", Arn=self.function.get_att("Arn"))],
        )

    @cached_property
    def sweep_permission(self) -> tlambda.Permission:
        return tlambda.Permission(
            "CorrelatorSweepPermission",
            FunctionName=self.function.ref(),
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=self.sweep_rule.get_att("Arn"),
            SourceAccount=Ref("AWS::AccountId"),
        )

    # -- the function -------------------------------------------------------------------
    @cached_property
    def log_group(self) -> tlogs.LogGroup:
        return tlogs.LogGroup(
            "CorrelatorLogGroup",
            LogGroupName=self.names.correlator_log_group,
            RetentionInDays=LOG_RETENTION_DAYS,
            KmsKeyId=self.central.key.get_att("Arn"),
            Tags=common.tags(self.config),
        )

    def policy(self):
        """Exactly what the correlator calls, on its own table, queue, topic and key."""
        table = self.table.get_att("Arn")
        statements = [
            iam.allow(
                "CentralTable",
                [
                    addb.BatchWriteItem,
                    addb.PutItem,
                    addb.GetItem,
                    addb.BatchGetItem,
                    addb.Query,
                    addb.UpdateItem,
                    addb.DeleteItem,
                ],
                # TransactWriteItems is authorized by the actions of its parts
                # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
                [table, Sub(f"${{{self.table.title}.Arn}}/index/{GSI1}")],
            ),
            iam.allow(
                "ConsumeOwnQueue",
                [
                    asqs.ReceiveMessage,
                    asqs.DeleteMessage,
                    asqs.GetQueueAttributes,
                    asqs.ChangeMessageVisibility,
                ],
                [self.queue.get_att("Arn")],
            ),
            iam.allow("MailIncidents", [asns.Publish], [self.central.topic.ref()]),
            iam.allow(
                "CopyIncidentsToAudit",
                [asqs.SendMessage],
                [self.central.audit_queue.get_att("Arn")],
            ),
            iam.allow(
                "UseCentralKey",
                [akms.Decrypt, akms.GenerateDataKey],
                [self.central.key.get_att("Arn")],
            ),
            iam.allow(
                "WriteOwnLogs",
                [alogs.CreateLogStream, alogs.PutLogEvents],
                [self.log_group.get_att("Arn")],
            ),
        ]
        if self.setting("organizations_names"):
            # Account names from Organizations: DescribeAccount on the organization's
            # accounts, answered only to the management account or a delegated
            # administrator (https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeAccount.html);
            # its resource is arn:...:organizations::<management>:account/o-<id>/<account>
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html).
            org = self.config.organization
            scope = f"{org.org_id}/*" if org.org_id else "*"
            statements.append(
                iam.allow(
                    "AccountNamesFromOrganizations",
                    [aorganizations.DescribeAccount],
                    [
                        Sub(
                            "arn:${AWS::Partition}:organizations::"
                            f"{org.management_account_id}:account/{scope}"
                        )
                    ],
                )
            )
        return iam.document(*statements)

    @cached_property
    def role(self) -> tiam.Role:
        return tiam.Role(
            "CorrelatorRole",
            RoleName=Sub(self.names.correlator_role(REGION_PLACEHOLDER)),
            Description="Backup anomaly correlator: incidents from the members' verdicts",
            AssumeRolePolicyDocument=iam.trust(
                iam.service("lambda.amazonaws.com"),
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            ),
            Policies=[tiam.Policy(PolicyName="correlator", PolicyDocument=self.policy())],
            Tags=common.tags(self.config),
        )

    def environment(self) -> dict[str, Any]:
        """One variable per correlator contract entry with an ``env``."""
        wiring: dict[str, Any] = {
            "central_table": self.table.ref(),
            "alert_topic_arn": self.central.topic.ref(),
            "audit_queue_url": self.central.audit_queue.ref(),
            "member_event_source": naming.EVENT_SOURCE,
        }
        variables: dict[str, Any] = {}
        for entry in correlator_contract.environment():
            assert entry.env is not None
            if entry.config is not None:
                variables[entry.env] = entry.encode(self.setting(entry.name))
            else:
                variables[entry.env] = wiring[entry.name]
        return variables

    @cached_property
    def function(self) -> tlambda.Function:
        layout = self.central.layout
        function = tlambda.Function(
            "CorrelatorFunction",
            FunctionName=self.names.correlator_function,
            Description="Groups the members' anomalies into incidents; silence alarms",
            Runtime=RUNTIME,
            Architectures=["arm64"],
            Handler=HANDLER,
            # The detector's zip (lambda/ holds both packages), from the home region's bucket.
            Code=tlambda.Code(
                S3Bucket=layout.artifact_bucket(layout.home_region), S3Key=self.lambda_key
            ),
            MemorySize=self.setting("correlator_memory_mb"),
            Timeout=self.setting("correlator_timeout_seconds"),
            Role=self.role.get_att("Arn"),
            Environment=tlambda.Environment(Variables=self.environment()),
            KmsKeyArn=self.central.key.get_att("Arn"),
            LoggingConfig=tlambda.LoggingConfig(LogGroup=self.log_group.ref()),
            Tags=common.tags(self.config),
        )
        return common.skip_checkov(
            function,
            (
                "CKV_AWS_116",
                "Fed by its SQS queue, whose redrive DLQ keeps failed events; the only "
                "asynchronous invocation is the scheduled sweep, which the next sweep repeats.",
            ),
            (
                "CKV_AWS_115",
                "Concurrency is capped by the event source mapping's MaximumConcurrency; "
                "reserved concurrency would take from the account's pool and throttle pollers.",
            ),
            (
                "CKV_AWS_117",
                "It calls only AWS APIs (DynamoDB, SNS, SQS); a VPC would add endpoints "
                "without reducing exposure.",
            ),
        )

    @cached_property
    def event_source_mapping(self) -> tlambda.EventSourceMapping:
        return shapes.sqs_event_source(
            "CorrelatorEventSource",
            self.queue,
            self.function,
            BATCH_SIZE,
            self.setting("correlator_max_concurrency"),
            self.config,
        )

    # -- alarms (to the topic: the correlator down is an operational alert) -------------
    @cached_property
    def dlq_alarm(self) -> tcw.Alarm:
        return shapes.queue_depth_alarm(
            "CorrelatorDeadLetterAlarm",
            self.names.correlator_dlq_alarm,
            f"Events the correlator failed on repeatedly wait in {self.names.correlator_dlq}; "
            "incidents may be missing. Check its logs, then redrive the queue.",
            self.dlq,
            self.config,
            actions=[self.central.topic.ref()],
        )

    @cached_property
    def errors_alarm(self) -> tcw.Alarm:
        return shapes.above_zero_alarm(
            "CorrelatorErrorsAlarm",
            self.names.correlator_errors_alarm,
            f"The correlator {self.names.correlator_function} failed; SQS retries the batch.",
            self.config,
            namespace="AWS/Lambda",
            metric="Errors",
            dimension=("FunctionName", self.function.ref()),
            statistic="Sum",
            actions=[self.central.topic.ref()],
        )

    def resources(self) -> list:
        return [
            self.table,
            self.dlq,
            self.queue,
            self.queue_policy,
            self.member_rule,
            self.scan_rule,
            self.log_group,
            self.role,
            self.function,
            self.event_source_mapping,
            self.sweep_rule,
            self.sweep_permission,
            self.dlq_alarm,
            self.errors_alarm,
        ]

    def alarms(self) -> list[tcw.Alarm]:
        return [self.dlq_alarm, self.errors_alarm]
