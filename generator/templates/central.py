"""Central template: the security account's home region receives every alert and measurement.

Member accounts forward the state changes of their backup anomaly alarms and put one
``Backup Change Measured`` event per measurement, and one ``Backup Baseline Reset`` event
per baseline reset, one ``Backup Anomaly Detected`` per verdict of low or worse, and a
heartbeat, on the central event bus. Every measurement, anomaly and reset goes to the audit
queue, where a SIEM reads them; all of them also go to the correlator (``correlation.py``),
which turns anomalies (and deleted recovery points) into incidents across accounts and
regions and mails those, never one email per volume. Where members keep the per-volume
CloudWatch alarms, their transitions into ALARM and back are mailed too, and the members'
operational alarms always are.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any

from awacs import events as aevents
from awacs import sns as asns
from awacs.aws import ArnEquals, ForAllValuesStringEquals, Principal, StringEquals
from troposphere import Output, Ref, Sub, Template
from troposphere import cloudwatch as tcw
from troposphere import events as tevents
from troposphere import sns as tsns
from troposphere import sqs as tsqs

from generator import iam, naming
from generator.config.model import OrgConfig
from generator.config.regions import partition_of
from generator.layout import layout
from generator.naming import Names
from generator.templates import common, shapes
from generator.templates.correlation import Correlation

# What a human reads in the notification emails. Placeholders come from InputPathsMap. The
# account is always the envelope's ``$.account``, which EventBridge sets to the account
# that sent the event and no sender can change; nothing a member writes into its own
# events (detail fields, alarm descriptions) can claim another account. ``<console>`` is the
# console of the deployment's partition, filled in at synthesis.
# Paths only some alarms have (the detector's operational alarms have no volume).
OPTIONAL_ALERT_PATHS = frozenset({"volume"})
ALARM_TEMPLATE = (
    '"Backup anomaly alarm <alarm> is ALARM (was <previous>) in account <account>, region '
    "<region>, at <time>. Volume: <volume>. CloudWatch: <reason>. A sudden rewrite of a "
    "volume is what ransomware encryption looks like: look for what rewrote it before its "
    "next backup. The alarm, in account <account>: <console>/cloudwatch/home?region=<region>"
    '#alarmsV2:alarm/<alarm>"'
)
RESOLVED_TEMPLATE = (
    '"Resolved: backup anomaly alarm <alarm> is back to OK in account <account>, region '
    "<region>, at <time> (volume <volume>): the latest backup changed no more than usual. "
    "CloudWatch: <reason>. The alarm: <console>/cloudwatch/home?region=<region>"
    '#alarmsV2:alarm/<alarm>"'
)
OPERATIONAL_TEMPLATE = (
    '"Operational alert (not an anomaly): <alarm> is <state> (was <previous>) in account '
    "<account>, region <region>, at <time>. The detector in that account and region needs "
    "attention: until it is fixed, some backups there are not being measured or their "
    "results are not reaching the security account. CloudWatch: <reason>. The alarm: "
    '<console>/cloudwatch/home?region=<region>#alarmsV2:alarm/<alarm>"'
)
ALARM_PATHS = {
    "account": "$.account",
    "region": "$.region",
    "time": "$.time",
    "alarm": "$.detail.alarmName",
    "state": "$.detail.state.value",
    "previous": "$.detail.previousState.value",
    "reason": "$.detail.state.reason",
    "volume": "$.detail.configuration.metrics[0].metricStat.metric.dimensions.VolumeId",
}


class CentralTemplate:
    """Builds the central template (security account, home region)."""

    def __init__(self, config: OrgConfig, lambda_key: str):
        self.config = config
        self.names = Names(config.name)
        self.layout = layout(config)
        self.correlation = Correlation(self, lambda_key)
        self.alarm_prefix = config.detection.alarm_prefix
        self.accounts = common.scope_accounts(config)
        self.console = naming.console_url(partition_of(config.security.home_region) or "aws")

    # -- encryption -------------------------------------------------------------------
    @cached_property
    def key(self):
        """Key for the topic, queues and the correlator's logs; EventBridge, CloudWatch and
        CloudWatch Logs of this account use it."""
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
                common.logs_key_use(
                    "CloudWatchLogsEncryptsCorrelatorLogs", self.names.correlator_log_group
                ),
            ],
            # It encrypts the audit queue and its dead letters, which outlive the stack.
            retain=True,
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
                    "AlertRulesPublish",
                    [asns.Publish],
                    [self.topic.ref()],
                    ArnEquals(
                        "aws:SourceArn", [rule.get_att("Arn") for rule in self._alert_rules()]
                    ),
                    principal=iam.service("events.amazonaws.com"),
                ),
                iam.allow(
                    "CentralAlarmsPublish",
                    [asns.Publish],
                    [self.topic.ref()],
                    ArnEquals(
                        "aws:SourceArn",
                        [a.get_att("Arn") for a in [self.dlq_alarm, *self.correlation.alarms()]],
                    ),
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
        # Audit data: kept when the stack is deleted (or replaced), like the key that reads it.
        return common.retain_after_create(
            shapes.encrypted_queue("AuditQueue", self.names.audit_queue, self.key, self.config)
        )

    @cached_property
    def dlq(self) -> tsqs.Queue:
        """Events the central rules could not deliver to the topic or the audit queue."""
        return common.retain_after_create(
            shapes.encrypted_queue(
                "CentralDeadLetterQueue", self.names.audit_dlq, self.key, self.config
            )
        )

    def _audit_rules(self) -> list[tevents.Rule]:
        """The rules whose targets include the audit queue."""
        return [
            self.alarm_rule,
            self.measurement_rule,
            self.reset_rule,
            self.correlation.scan_rule,
        ]

    def _alert_rules(self) -> list[tevents.Rule]:
        """The rules whose target is the alert topic (anomalies reach it as incidents, from
        the correlator, never one email per volume)."""
        return [self.volume_alarm_rule, self.volume_resolved_rule, self.operational_rule]

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
            [*self._audit_rules(), *self._alert_rules(), self.correlation.member_rule],
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
        """Admits PutEvents from the organization (or the listed target accounts), and only of
        the events members send: the detector's own detail types under its source, and the
        alarm state changes their rules forward. Anything else a member puts is refused.

        ``events:source`` is multi-valued (one value per entry of a PutEvents call), hence
        ``ForAllValues``; ``events:detail-type`` as AWS's example writes it:
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-example-policy-cross-account-custom-bus-source.html
        """
        # The bus's own ARN as a string: a resource cannot refer to its own attributes.
        bus_arn = Sub(
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/"
            + self.names.central_bus
        )
        principal = iam.accounts(self.accounts) if self.accounts else Principal("AWS", "*")
        org: dict[str, Any] = {}
        if self.accounts is None:
            org["aws:PrincipalOrgID"] = self.config.organization.org_id
        kinds = [
            ("DetectorEvents", naming.EVENT_SOURCE, list(naming.DETECTOR_DETAIL_TYPES)),
            ("ForwardedAlarmStateChanges", naming.ALARM_EVENT_SOURCE, [naming.ALARM_DETAIL_TYPE]),
            ("ForwardedScanResults", naming.BACKUP_EVENT_SOURCE, [naming.SCAN_DETAIL_TYPE]),
        ]
        statements = [
            iam.allow(
                f"MembersPut{sid}",
                [aevents.PutEvents],
                [bus_arn],
                ForAllValuesStringEquals("events:source", [source]),
                # One StringEquals block: two would be one JSON key, and the last would win.
                StringEquals({**org, "events:detail-type": detail_types}),
                principal=principal,
            )
            for sid, source, detail_types in kinds
        ]
        return iam.document(*statements)

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
        """The SNS topic, with a message written for a human by ``template`` (only the paths
        it uses are read)."""
        used = {name: path for name, path in paths.items() if f"<{name}>" in template}
        return tevents.Target(
            Id="AlertTopic",
            Arn=self.topic.ref(),
            InputTransformer=tevents.InputTransformer(InputPathsMap=used, InputTemplate=template),
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

    def _alarm_pattern(self, names: list | None = None, **state: Any) -> dict:
        """Forwarded state changes of the member alarms, narrowed by name and state."""
        detail: dict[str, Any] = {"alarmName": names or [{"prefix": self.alarm_prefix}]}
        detail.update(state)
        return {
            "source": [naming.ALARM_EVENT_SOURCE],
            "detail-type": [naming.ALARM_DETAIL_TYPE],
            "detail": detail,
        }

    def _message(self, template: str) -> str:
        return template.replace("<console>", self.console)

    @cached_property
    def alarm_rule(self) -> tevents.Rule:
        """Every forwarded alarm state change, INSUFFICIENT_DATA included: the audit trail."""
        return self._rule(
            "AlarmStateRule",
            self.names.central_alarm_rule,
            "Every state change of the member alarms, for the audit trail",
            self._alarm_pattern(),
            [self._audit_target()],
        )

    @cached_property
    def volume_alarm_rule(self) -> tevents.Rule:
        """A volume's alarm going into ALARM: the one state change a human must read.

        Only the per-volume alarms (named ``{prefix}vol-...``); returning to OK is a
        resolution of its own, and INSUFFICIENT_DATA (every new alarm's first state)
        never reaches the topic, so onboarding a thousand volumes sends no email.
        """
        return self._rule(
            "VolumeAlarmRule",
            self.names.central_alarm_alert_rule,
            "A volume's backup anomaly alarm went into ALARM: alert",
            self._alarm_pattern(
                [{"prefix": f"{self.alarm_prefix}vol-"}], state={"value": ["ALARM"]}
            ),
            [self._alert_target(ALARM_PATHS, self._message(ALARM_TEMPLATE))],
        )

    @cached_property
    def volume_resolved_rule(self) -> tevents.Rule:
        return self._rule(
            "VolumeResolvedRule",
            self.names.central_alarm_resolved_rule,
            "A volume's backup anomaly alarm returned from ALARM to OK: resolution",
            self._alarm_pattern(
                [{"prefix": f"{self.alarm_prefix}vol-"}],
                state={"value": ["OK"]},
                previousState={"value": ["ALARM"]},
            ),
            [self._alert_target(ALARM_PATHS, self._message(RESOLVED_TEMPLATE))],
        )

    @cached_property
    def operational_rule(self) -> tevents.Rule:
        """The detector's own alarms (dead letters, errors, forwarding): worded as what they
        are, an operational problem, never as ransomware; into ALARM and back from it."""
        names = [
            Names.dlq_alarm(self.alarm_prefix),
            Names.errors_alarm(self.alarm_prefix),
            Names.forward_dlq_alarm(self.alarm_prefix),
        ]
        pattern = self._alarm_pattern(names)
        pattern["detail"]["$or"] = [
            {"state": {"value": ["ALARM"]}},
            {"state": {"value": ["OK"]}, "previousState": {"value": ["ALARM"]}},
        ]
        return self._rule(
            "OperationalAlarmRule",
            self.names.central_operational_rule,
            "The member detectors' operational alarms: operational alert",
            pattern,
            [self._alert_target(ALARM_PATHS, self._message(OPERATIONAL_TEMPLATE))],
        )

    @cached_property
    def measurement_rule(self) -> tevents.Rule:
        return self._rule(
            "MeasurementRule",
            self.names.central_measurement_rule,
            "Every measurement and every anomaly (all severities), for the audit trail",
            {
                "source": [naming.EVENT_SOURCE],
                "detail-type": [naming.MEASUREMENT_DETAIL_TYPE, naming.ANOMALY_DETAIL_TYPE],
            },
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
            self.volume_alarm_rule,
            self.volume_resolved_rule,
            self.operational_rule,
            self.measurement_rule,
            self.reset_rule,
            *self.correlation.resources(),
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


def build(config: OrgConfig, lambda_key: str) -> Template:
    """The central template for ``config`` (``lambda_key``: the zip the correlator runs)."""
    return CentralTemplate(config, lambda_key).create_template()
