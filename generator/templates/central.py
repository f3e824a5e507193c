"""Central template: the security account's home region receives every alert and measurement.

Member accounts forward the state changes of their backup anomaly alarms and put one
``Backup Change Measured`` event per measurement, and one ``Backup Baseline Reset`` event
per baseline reset, on the central event bus. One rule turns alarm state changes into a
readable notification (SNS, email subscribers from the config) and copies them to the audit
queue; another sends every measurement to the audit queue, a third every baseline reset,
where a SIEM can read them and correlate across accounts. A reset because the previous
backup snapshot disappeared also notifies the topic: deleting recovery points before
encrypting is a classic ransomware step.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any

from awacs import events as aevents
from awacs import sns as asns
from awacs.aws import ArnEquals, Principal, StringEquals
from troposphere import Output, Ref, Sub, Template
from troposphere import cloudwatch as tcw
from troposphere import events as tevents
from troposphere import sns as tsns
from troposphere import sqs as tsqs

from generator import iam, naming
from generator.config.model import OrgConfig
from generator.naming import Names
from generator.templates import common, shapes

# What a human reads in the notification email. Placeholders come from InputPathsMap; a
# path missing from an event (the volume of the detector's own alarms) reads as empty.
ALERT_TEMPLATE = (
    '"Backup anomaly alarm <alarm> is <state> (was <previous>) in account <account>, '
    "region <region>, at <time>. <description> Volume: <volume>. Reason: <reason>. "
    "Look for what rewrote that volume before its next backup. The alarm, in account "
    "<account>: https://<region>.console.aws.amazon.com/cloudwatch/home?region=<region>"
    '#alarmsV2:alarm/<alarm>"'
)
ALERT_PATHS = {
    "account": "$.account",
    "region": "$.region",
    "time": "$.time",
    "alarm": "$.detail.alarmName",
    "state": "$.detail.state.value",
    "previous": "$.detail.previousState.value",
    "reason": "$.detail.state.reason",
    "description": "$.detail.configuration.description",
    "volume": "$.detail.configuration.metrics[0].metricStat.metric.dimensions.VolumeId",
}
# The notification of a baseline reset whose previous snapshot was deleted. Every path is in
# every ``Backup Baseline Reset`` the detector puts (see the detector's forward module).
SNAPSHOT_DELETED_TEMPLATE = (
    '"Backup snapshot deleted: the previous backup snapshot <previous> of volume <volume> '
    "in account <account>, region <region>, no longer existed when backup job <job> "
    "completed at <completion> (new snapshot <snapshot>), so change detection restarted "
    "from the new snapshot. Deleting backups before encrypting data is a ransomware "
    "precursor: find out who deleted <previous> (CloudTrail DeleteSnapshot, "
    "DeleteRecoveryPoint) and check the account's other recovery points. Snapshots, in "
    "account <account>: https://<region>.console.aws.amazon.com/ec2/home?region=<region>"
    '#Snapshots:"'
)
SNAPSHOT_DELETED_PATHS = {
    "account": "$.detail.account",
    "region": "$.detail.region",
    "volume": "$.detail.volumeId",
    "previous": "$.detail.previousSnapshotId",
    "snapshot": "$.detail.snapshotId",
    "job": "$.detail.backupJobId",
    "completion": "$.detail.completionTime",
}
# Paths only some alarms have (every alarm the toolkit creates has a description, but
# one created by hand with the prefix might not).
OPTIONAL_ALERT_PATHS = frozenset({"description", "volume"})


class CentralTemplate:
    """Builds the central template (security account, home region)."""

    def __init__(self, config: OrgConfig):
        self.config = config
        self.names = Names(config.name)
        self.alarm_prefix = config.detection.alarm_prefix
        self.accounts = common.scope_accounts(config)

    # -- encryption -------------------------------------------------------------------
    @cached_property
    def key(self):
        """Key for the topic and queues; EventBridge and CloudWatch of this account use it."""
        this_account = StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))
        return common.kms_key(
            "CentralKey",
            self.config,
            "Backup anomaly detection: central alert topic and audit queues",
            [
                iam.allow(
                    "EventBridgePublishesToTopicAndQueues",
                    common.SERVICE_PUBLISH_ACTIONS,
                    [common.KEY_POLICY_RESOURCE],
                    this_account,
                    principal=iam.service("events.amazonaws.com"),
                ),
                iam.allow(
                    "CloudWatchAlarmsPublishToTopic",
                    common.SERVICE_PUBLISH_ACTIONS,
                    [common.KEY_POLICY_RESOURCE],
                    this_account,
                    principal=iam.service("cloudwatch.amazonaws.com"),
                ),
            ],
        )

    @cached_property
    def key_alias(self):
        return common.kms_alias("CentralKeyAlias", self.names.central_key_alias, self.key)

    # -- alert topic --------------------------------------------------------------------
    @cached_property
    def topic(self) -> tsns.Topic:
        return tsns.Topic(
            "AlertTopic",
            TopicName=self.names.alert_topic,
            DisplayName="Backup anomaly",
            KmsMasterKeyId=self.key.get_att("Arn"),
            Tags=common.tags(self.config),
        )

    @cached_property
    def topic_policy(self) -> tsns.TopicPolicy:
        return tsns.TopicPolicy(
            "AlertTopicPolicy",
            Topics=[self.topic.ref()],
            PolicyDocument=iam.document(
                iam.allow(
                    "AlarmRulePublishes",
                    [asns.Publish],
                    [self.topic.ref()],
                    ArnEquals("aws:SourceArn", self.alarm_rule.get_att("Arn")),
                    principal=iam.service("events.amazonaws.com"),
                ),
                iam.allow(
                    "SnapshotDeletedRulePublishes",
                    [asns.Publish],
                    [self.topic.ref()],
                    ArnEquals("aws:SourceArn", self.snapshot_deleted_rule.get_att("Arn")),
                    principal=iam.service("events.amazonaws.com"),
                ),
                iam.allow(
                    "DeadLetterAlarmPublishes",
                    [asns.Publish],
                    [self.topic.ref()],
                    ArnEquals("aws:SourceArn", self.dlq_alarm.get_att("Arn")),
                    principal=iam.service("cloudwatch.amazonaws.com"),
                ),
                common.deny_insecure_transport(self.topic.ref(), [asns.Publish]),
            ),
        )

    def subscriptions(self) -> list[tsns.SubscriptionResource]:
        """One email subscription per address (logical ids from the address, not order)."""
        subscriptions = []
        for email in sorted(self.config.security.notification_emails):
            digest = hashlib.sha256(email.encode()).hexdigest()[:10]
            subscriptions.append(
                tsns.SubscriptionResource(
                    f"EmailSubscription{digest}",
                    TopicArn=self.topic.ref(),
                    Protocol="email",
                    Endpoint=email,
                )
            )
        return subscriptions

    # -- audit queue and DLQ ----------------------------------------------------------------
    @cached_property
    def audit_queue(self) -> tsqs.Queue:
        return shapes.encrypted_queue("AuditQueue", self.names.audit_queue, self.key, self.config)

    @cached_property
    def dlq(self) -> tsqs.Queue:
        """Events the central rules could not deliver to the topic or the audit queue."""
        return shapes.encrypted_queue(
            "CentralDeadLetterQueue", self.names.audit_dlq, self.key, self.config
        )

    def _audit_rules(self) -> list[tevents.Rule]:
        """The rules whose targets include the audit queue."""
        return [self.alarm_rule, self.measurement_rule, self.reset_rule]

    @cached_property
    def audit_queue_policy(self) -> tsqs.QueuePolicy:
        return shapes.rule_queue_policy(
            "AuditQueuePolicy", self.audit_queue, "CentralRulesSend", self._audit_rules()
        )

    @cached_property
    def dlq_policy(self) -> tsqs.QueuePolicy:
        # Every rule's targets dead-letter here, the alert-only rule's too.
        return shapes.rule_queue_policy(
            "CentralDeadLetterQueuePolicy",
            self.dlq,
            "CentralRulesSend",
            [*self._audit_rules(), self.snapshot_deleted_rule],
        )

    @cached_property
    def dlq_alarm(self) -> tcw.Alarm:
        # In this account and region, so the alarm can notify the topic directly.
        return shapes.queue_depth_alarm(
            "CentralDeadLetterAlarm",
            self.names.central_dlq_alarm,
            f"Alerts or measurements could not be delivered; they wait in {self.names.audit_dlq}.",
            self.dlq,
            self.config,
            actions=[self.topic.ref()],
        )

    # -- event bus ----------------------------------------------------------------------
    def bus_policy(self):
        """Admits PutEvents from the organization, or from the listed target accounts."""
        # The bus's own ARN as a string: a resource cannot refer to its own attributes.
        bus_arn = Sub(
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/"
            + self.names.central_bus
        )
        if self.accounts is None:
            statement = iam.allow(
                "OrganizationPutsEvents",
                [aevents.PutEvents],
                [bus_arn],
                StringEquals("aws:PrincipalOrgID", self.config.organization.org_id),
                principal=Principal("AWS", "*"),
            )
        else:
            statement = iam.allow(
                "TargetAccountsPutEvents",
                [aevents.PutEvents],
                [bus_arn],
                principal=iam.accounts(self.accounts),
            )
        return iam.document(statement)

    @cached_property
    def bus(self) -> tevents.EventBus:
        return tevents.EventBus(
            "CentralBus",
            Name=self.names.central_bus,
            Description="Alarm state changes and measurements from every member account",
            Policy=iam.as_dict(self.bus_policy()),
            Tags=common.tags(self.config),
        )

    # -- rules --------------------------------------------------------------------------
    def _retry(self) -> tevents.RetryPolicy:
        return tevents.RetryPolicy(MaximumEventAgeInSeconds=86400, MaximumRetryAttempts=185)

    def _dead_letters(self) -> tevents.DeadLetterConfig:
        return tevents.DeadLetterConfig(Arn=self.dlq.get_att("Arn"))

    def _audit_target(self) -> tevents.Target:
        return tevents.Target(
            Id="AuditQueue",
            Arn=self.audit_queue.get_att("Arn"),
            DeadLetterConfig=self._dead_letters(),
            RetryPolicy=self._retry(),
        )

    def _alert_target(self, paths: dict, template: str) -> tevents.Target:
        """The SNS topic, with a message written for a human by ``template``."""
        return tevents.Target(
            Id="AlertTopic",
            Arn=self.topic.ref(),
            InputTransformer=tevents.InputTransformer(InputPathsMap=paths, InputTemplate=template),
            DeadLetterConfig=self._dead_letters(),
            RetryPolicy=self._retry(),
        )

    def _rule(
        self, title: str, name: str, description: str, pattern: dict, targets: list
    ) -> tevents.Rule:
        return tevents.Rule(
            title,
            Name=name,
            Description=description,
            # The ARN, not Ref (the name): both work in CloudFormation; moto resolves only this.
            EventBusName=self.bus.get_att("Arn"),
            EventPattern=pattern,
            State="ENABLED",
            Tags=common.tags(self.config),
            Targets=targets,
        )

    @cached_property
    def alarm_rule(self) -> tevents.Rule:
        return self._rule(
            "AlarmStateRule",
            self.names.central_alarm_rule,
            "Backup anomaly alarm state changes forwarded by member accounts",
            {
                "source": [naming.ALARM_EVENT_SOURCE],
                "detail-type": [naming.ALARM_DETAIL_TYPE],
                "detail": {"alarmName": [{"prefix": self.alarm_prefix}]},
            },
            [self._alert_target(ALERT_PATHS, ALERT_TEMPLATE), self._audit_target()],
        )

    @cached_property
    def measurement_rule(self) -> tevents.Rule:
        return self._rule(
            "MeasurementRule",
            self.names.central_measurement_rule,
            "Every changed-block measurement, for the audit trail",
            {"source": [naming.EVENT_SOURCE], "detail-type": [naming.MEASUREMENT_DETAIL_TYPE]},
            [self._audit_target()],
        )

    def _reset_pattern(self, **detail) -> dict:
        pattern: dict[str, Any] = {
            "source": [naming.EVENT_SOURCE],
            "detail-type": [naming.BASELINE_RESET_DETAIL_TYPE],
        }
        if detail:
            pattern["detail"] = detail
        return pattern

    @cached_property
    def reset_rule(self) -> tevents.Rule:
        return self._rule(
            "BaselineResetRule",
            self.names.central_reset_rule,
            "Every baseline reset (new lineage or deleted snapshot), for the audit",
            self._reset_pattern(),
            [self._audit_target()],
        )

    @cached_property
    def snapshot_deleted_rule(self) -> tevents.Rule:
        return self._rule(
            "SnapshotDeletedRule",
            self.names.central_missing_snapshot_rule,
            "Baseline resets whose previous backup snapshot was deleted: alert",
            self._reset_pattern(reason=[naming.RESET_PREVIOUS_SNAPSHOT_MISSING]),
            [self._alert_target(SNAPSHOT_DELETED_PATHS, SNAPSHOT_DELETED_TEMPLATE)],
        )

    # -- assembly -----------------------------------------------------------------------
    def resources(self) -> list:
        return [
            self.key,
            self.key_alias,
            self.topic,
            self.topic_policy,
            *self.subscriptions(),
            self.audit_queue,
            self.dlq,
            self.audit_queue_policy,
            self.dlq_policy,
            self.dlq_alarm,
            self.bus,
            self.alarm_rule,
            self.measurement_rule,
            self.reset_rule,
            self.snapshot_deleted_rule,
        ]

    def create_template(self) -> Template:
        return common.new_template(
            f"Backup anomaly detection ({self.config.name}): central alerts and audit trail "
            "in the security account",
            resources=self.resources(),
            outputs=[
                Output("CentralBusArn", Value=self.bus.get_att("Arn")),
                Output("AlertTopicArn", Value=self.topic.ref()),
                Output("AuditQueueUrl", Value=self.audit_queue.ref()),
            ],
        )


def build(config: OrgConfig) -> Template:
    """The central template for ``config``."""
    return CentralTemplate(config).create_template()
