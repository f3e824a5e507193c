"""The resource shapes the templates repeat: encrypted queues, the policies that let only
named EventBridge rules send to them, and the "something is waiting or failing" alarms.

Each takes the pieces that differ and fixes the rest, so every queue is KMS-encrypted with
the same retention, every queue policy denies non-TLS access, and every operational alarm
fires on the first five-minute period with anything in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awacs import sqs as asqs
from awacs.aws import ArnEquals
from troposphere import AWSHelperFn
from troposphere import awslambda as tlambda
from troposphere import cloudwatch as tcw
from troposphere import events as tevents
from troposphere import sqs as tsqs

from generator import iam
from generator.config.model import OrgConfig
from generator.templates import common

# Fourteen days (the SQS maximum): a backlog survives a long outage of its consumer.
QUEUE_RETENTION_SECONDS = 14 * 86400
# Operational alarms are evaluated every five minutes.
OPERATIONAL_ALARM_PERIOD = 300


def encrypted_queue(
    title: str, name: str, key: Any, config: OrgConfig, **properties: Any
) -> tsqs.Queue:
    """A queue encrypted with ``key`` (a customer managed key: EventBridge cannot use the
    AWS managed ``alias/aws/sqs``), keeping messages 14 days; ``properties`` add the rest."""
    return tsqs.Queue(
        title,
        QueueName=name,
        KmsMasterKeyId=key.get_att("Arn"),
        MessageRetentionPeriod=QUEUE_RETENTION_SECONDS,
        Tags=common.tags(config),
        **properties,
    )


def rule_queue_policy(
    title: str, queue: tsqs.Queue, sid: str, rules: Sequence[tevents.Rule]
) -> tsqs.QueuePolicy:
    """Only ``rules`` may send to ``queue`` (EventBridge, ``aws:SourceArn``), over TLS."""
    arns = [rule.get_att("Arn") for rule in rules]
    return tsqs.QueuePolicy(
        title,
        Queues=[queue.ref()],
        PolicyDocument=iam.document(
            iam.allow(
                sid,
                [asqs.SendMessage],
                [queue.get_att("Arn")],
                ArnEquals("aws:SourceArn", arns[0] if len(arns) == 1 else arns),
                principal=iam.service("events.amazonaws.com"),
            ),
            common.deny_insecure_transport(queue.get_att("Arn"), [asqs.Action("*")]),
        ),
    )


def above_zero_alarm(
    title: str,
    name: str,
    description: str,
    config: OrgConfig,
    *,
    namespace: str,
    metric: str,
    dimension: tuple[str, AWSHelperFn],
    statistic: str,
    actions: Sequence[Any] = (),
) -> tcw.Alarm:
    """An alarm that fires as soon as ``metric`` is above zero in a five-minute period."""
    properties: dict[str, Any] = {}
    if actions:
        properties["AlarmActions"] = list(actions)
    return tcw.Alarm(
        title,
        AlarmName=name,
        AlarmDescription=description,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[tcw.MetricDimension(Name=dimension[0], Value=dimension[1])],
        Statistic=statistic,
        Period=OPERATIONAL_ALARM_PERIOD,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        Tags=common.tags(config),
        **properties,
    )


def queue_depth_alarm(
    title: str,
    name: str,
    description: str,
    queue: tsqs.Queue,
    config: OrgConfig,
    actions: Sequence[Any] = (),
) -> tcw.Alarm:
    """An alarm on anything waiting in ``queue`` (a dead-letter queue)."""
    return above_zero_alarm(
        title,
        name,
        description,
        config,
        namespace="AWS/SQS",
        metric="ApproximateNumberOfMessagesVisible",
        dimension=("QueueName", queue.get_att("QueueName")),
        statistic="Maximum",
        actions=actions,
    )


class EsmScalingConfig(tlambda.ScalingConfig):
    """An event source mapping's ScalingConfig (its MaximumConcurrency)."""

    # troposphere 4.11 maps both Lambda "ScalingConfig" types to one class that lacks the
    # event source mapping's MaximumConcurrency; a subclass keeps its type check happy.
    props = {"MaximumConcurrency": (int, False)}


def sqs_event_source(
    title: str,
    queue: tsqs.Queue,
    function: tlambda.Function,
    batch_size: int,
    max_concurrency: int,
    config: OrgConfig,
) -> tlambda.EventSourceMapping:
    """A function fed from its queue: partial batch failures reported (only the failed
    messages are retried), concurrency capped without throttling the SQS pollers."""
    return tlambda.EventSourceMapping(
        title,
        EventSourceArn=queue.get_att("Arn"),
        FunctionName=function.ref(),
        BatchSize=batch_size,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig=EsmScalingConfig(MaximumConcurrency=max_concurrency),
        Tags=common.tags(config),
    )
