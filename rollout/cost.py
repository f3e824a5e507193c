"""Estimated monthly cost of a deployment (us-east-1 list prices; an estimate, not a bill).

Prices (us-east-1, read 2026-11; https://aws.amazon.com/cloudwatch/pricing/,
https://aws.amazon.com/ebs/pricing/ (EBS direct APIs), https://aws.amazon.com/lambda/pricing/,
https://aws.amazon.com/sqs/pricing/, https://aws.amazon.com/eventbridge/pricing/,
https://aws.amazon.com/dynamodb/pricing/on-demand/, https://aws.amazon.com/kms/pricing/,
https://aws.amazon.com/guardduty/pricing/ (AWS Backup malware protection),
https://aws.amazon.com/security-hub/pricing/):

* per protected volume, always: the ``ChangedBlocks`` custom metric ($0.30) and, per
  backup, the member's requests (EventBridge, SQS, Lambda, ListChangedBlocks, PutMetricData)
  and the content sample (two GetSnapshotBlock requests per sampled block, at $0.003 per
  1,000, and the CPU to judge them);
* per protected volume where ``cloudwatch_alarms`` is on: the anomaly-detection alarm
  (billed as three metrics, $0.30) and the static ceiling alarm ($0.10 unless the ceiling is
  0). The verdicts replace both; the difference is printed;
* per backup, centrally: the events to the security account ($1 per million), the audit
  queue, the correlator's invocation and its table writes (on demand);
* per account and region: every KMS key ($1) and standard alarm ($0.10) of the member
  template; central: its keys and alarms;
* confirmation scans, where on: $0.05 per GB scanned, for high and critical anomalies only
  (incremental against the last clean recovery point): how many is the attacks' business,
  so the price is printed, not multiplied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backup_anomaly import contract
from generator.config.schedule import schedule_interval
from rollout.desired import DesiredInstance
from rollout.display import Display
from rollout.plan import Plan

CUSTOM_METRIC = 0.30
STANDARD_ALARM = 0.10  # per metric the alarm evaluates
ANOMALY_ALARM_METRICS = 3
KMS_KEY = 1.00
SCAN_PER_GB = 0.05
DAY_SECONDS = 86400
MONTH_DAYS = 30

_EVENT = 1.0e-6  # EventBridge custom event (a cross-account put counts as one)
_SQS_REQUEST = 0.40e-6
_LAMBDA_REQUEST = 0.20e-6
_LAMBDA_GB_SECOND = 0.0000133334  # arm64
_LIST_CHANGED_BLOCKS = 0.0006e-3
_GET_SNAPSHOT_BLOCK = 0.003e-3
_PUT_METRIC_DATA = 0.01e-3
_WRITE_UNIT = 0.625e-6  # DynamoDB on demand, per write request unit
# One backup in the member account: the job event in, about three SQS requests, one
# invocation of ~1 GB-s, one ListChangedBlocks page, one PutMetricData, a state write.
MEMBER_PER_BACKUP = (
    _EVENT
    + 3 * _SQS_REQUEST
    + _LAMBDA_REQUEST
    + _LAMBDA_GB_SECOND
    + _LIST_CHANGED_BLOCKS
    + _PUT_METRIC_DATA
    + 2 * _WRITE_UNIT
)
# Judging one sampled block: two 512 KiB reads and ~16 ms of CPU each, at 1 GB.
SAMPLE_PER_BLOCK = 2 * _GET_SNAPSHOT_BLOCK + 2 * 0.016 * _LAMBDA_GB_SECOND
# One measurement in the security account: the event from the member, the audit queue's
# message (sent, received, deleted), the correlator's share of a batch (three SQS
# requests, a tenth of an invocation of ~0.3 GB-s) and about three table writes of 1 KB.
CENTRAL_PER_MEASUREMENT = (
    _EVENT
    + 3 * _SQS_REQUEST
    + 3 * _SQS_REQUEST
    + 0.1 * (_LAMBDA_REQUEST + 0.3 * _LAMBDA_GB_SECOND)
    + 3 * _WRITE_UNIT
)


@dataclass(frozen=True)
class CostLine:
    """One line of the estimate."""

    item: str
    quantity: float
    unit: float

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit


@dataclass(frozen=True)
class CostEstimate:
    """The estimate.

    Attributes:
        fixed: lines that do not depend on the volume count.
        per_volume_lines: lines per protected volume (quantities are volumes, or volumes
            times backups), filled in only when the volume count is known.
        per_volume: the average monthly cost of one protected volume.
        alarms_per_volume: what the CloudWatch alarms add per volume-month where they are on.
        verdicts_per_volume: what the verdicts (content sample included) cost per volume-month.
        alarm_instances: instances with the CloudWatch alarms on.
        scan_instances: instances with confirmation scans on.
        instances: account-region instances.
        volumes_per_instance: the ``--volumes`` given, or None.
    """

    fixed: list[CostLine]
    per_volume_lines: list[CostLine]
    per_volume: float
    alarms_per_volume: float
    verdicts_per_volume: float
    alarm_instances: int
    scan_instances: int
    instances: int
    volumes_per_instance: int | None

    @property
    def lines(self) -> list[CostLine]:
        return [*self.fixed, *self.per_volume_lines]

    @property
    def total(self) -> float | None:
        if self.volumes_per_instance is None:
            return None
        return sum(line.monthly for line in self.lines)


def _count(template: dict[str, Any], resource_type: str) -> int:
    return sum(1 for r in template.get("Resources", {}).values() if r.get("Type") == resource_type)


def _effective(plan: Plan) -> Callable[[DesiredInstance, str], Any]:
    """The value an instance gives a contract setting: its override, else the config's."""

    def value(instance: DesiredInstance, name: str) -> Any:
        setting = contract.setting(name)
        raw = dict(instance.overrides).get(str(setting.parameter))
        return setting.decode(raw) if raw is not None else plan.config.setting(name)

    return value


def _backups_per_month(schedule: str) -> float:
    interval = schedule_interval(schedule)
    return MONTH_DAYS * DAY_SECONDS / interval if interval else float(MONTH_DAYS)


def estimate(
    plan: Plan, member: dict[str, Any], central: dict[str, Any], volumes: int | None
) -> CostEstimate:
    """Monthly cost of the deployment the plan leads to.

    Args:
        plan: the plan (its desired instances are counted, each with its own settings).
        member: the member template (KMS keys and alarms per instance are counted).
        central: the central template.
        volumes: protected volumes per account and region, when known.
    """
    value = _effective(plan)
    desired = list(plan.desired.values())
    instances = len(desired)
    alarm_cost = verdict_cost = central_cost = 0.0
    alarm_instances = scan_instances = 0
    backups_total = 0.0
    for instance in desired:
        schedule = str(value(instance, "schedule"))
        backups = _backups_per_month(schedule)
        backups_total += backups
        sampled = value(instance, "content_samples") if value(instance, "content_sampling") else 0
        verdict_cost += backups * (MEMBER_PER_BACKUP + sampled * SAMPLE_PER_BLOCK)
        central_cost += backups * CENTRAL_PER_MEASUREMENT
        if value(instance, "cloudwatch_alarms"):
            alarm_instances += 1
            ceiling = float(value(instance, "ceiling_percent")) > 0
            alarm_cost += ANOMALY_ALARM_METRICS * STANDARD_ALARM + (
                STANDARD_ALARM if ceiling else 0
            )
        if value(instance, "confirmation_scan"):
            scan_instances += 1
    share = 1 / instances if instances else 0.0
    verdicts_per_volume = verdict_cost * share
    central_per_volume = central_cost * share
    alarms_where_on = (
        alarm_cost / alarm_instances
        if alarm_instances
        else (ANOMALY_ALARM_METRICS * STANDARD_ALARM + STANDARD_ALARM)
    )
    per_volume = CUSTOM_METRIC + verdicts_per_volume + central_per_volume + alarm_cost * share
    fixed = [
        CostLine(
            "KMS keys, member (per account and region)",
            instances * _count(member, "AWS::KMS::Key"),
            KMS_KEY,
        ),
        CostLine(
            "standard alarms, member (DLQ depth, errors)",
            instances * _count(member, "AWS::CloudWatch::Alarm"),
            STANDARD_ALARM,
        ),
        CostLine("KMS keys, central", _count(central, "AWS::KMS::Key"), KMS_KEY),
        CostLine(
            "standard alarms, central", _count(central, "AWS::CloudWatch::Alarm"), STANDARD_ALARM
        ),
    ]
    per_volume_lines: list[CostLine] = []
    if volumes is not None:
        n = volumes * instances
        per_volume_lines = [
            CostLine("ChangedBlocks custom metrics", n, CUSTOM_METRIC),
            CostLine(
                "measuring and judging (member requests, content sample)",
                n,
                verdicts_per_volume,
            ),
            CostLine("correlation, audit and storage (security account)", n, central_per_volume),
            CostLine(
                "CloudWatch anomaly and ceiling alarms (where on)",
                volumes * alarm_instances,
                alarms_where_on,
            ),
        ]
    return CostEstimate(
        fixed=fixed,
        per_volume_lines=per_volume_lines,
        per_volume=per_volume,
        alarms_per_volume=alarms_where_on,
        verdicts_per_volume=verdicts_per_volume,
        alarm_instances=alarm_instances,
        scan_instances=scan_instances,
        instances=instances,
        volumes_per_instance=volumes,
    )


def render_cost(cost: CostEstimate, display: Display) -> None:
    """Prints the estimate."""
    display.line(
        f"\n[bold]Estimated monthly cost[/] ({cost.instances} account-region instance(s), "
        "us-east-1 prices)"
    )
    for line in cost.lines:
        if line.quantity:
            display.line(
                f"  {line.item:<58} {line.quantity:>8g} x ${line.unit:<8.4g} = ${line.monthly:,.2f}"
            )
    fixed = sum(line.monthly for line in cost.fixed)
    if cost.total is None:
        display.line(
            f"  fixed ${fixed:,.2f}/month, plus about ${cost.per_volume:.2f}/month per protected "
            "volume (pass --volumes N per account and region for a total)"
        )
    else:
        display.line(f"  total about ${cost.total:,.2f}/month")
    display.line(
        f"  verdicts cost about ${cost.verdicts_per_volume:.3f} per volume-month; the CloudWatch "
        f"alarms they replace ${cost.alarms_per_volume:.2f} "
        + (
            f"(on in {cost.alarm_instances} of {cost.instances} instance(s))"
            if cost.alarm_instances
            else "(detection.cloudwatch_alarms is off)"
        )
    )
    if cost.scan_instances:
        display.line(
            f"  confirmation scans on in {cost.scan_instances} instance(s): ${SCAN_PER_GB:.2f} "
            "per GB scanned, for high and critical anomalies only (incremental against the "
            "last clean recovery point)"
        )
