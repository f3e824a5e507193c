"""Estimated monthly cost of a deployment (us-east-1 list prices; an estimate, not a bill).

Per protected volume: the ``ChangedBlocks`` custom metric ($0.30), its anomaly-detection
alarm (billed as three metrics, $0.30) and its static ceiling alarm ($0.10, unless the
ceiling is 0), plus about 30 backups a month of requests (EventBridge, SQS, Lambda, EBS
direct API, PutMetricData: fractions of a cent). Per account and region: every KMS key
($1) and standard alarm ($0.10) the member template creates. Central: its KMS keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backup_anomaly import contract
from rollout.display import Display
from rollout.plan import Plan

CEILING = contract.setting("ceiling_percent")
CUSTOM_METRIC = 0.30
STANDARD_ALARM = 0.10  # per metric the alarm evaluates
ANOMALY_ALARM_METRICS = 3
KMS_KEY = 1.00
BACKUPS_PER_MONTH = 30
# One backup: an EventBridge event in, one out to the central bus ($1.00/M custom events),
# about three SQS requests ($0.40/M), one Lambda request ($0.20/M) and ~1 GB-s on arm64
# ($0.0000133334/GB-s), one ListChangedBlocks page ($0.0006/1000), one PutMetricData
# ($0.01/1000).
REQUESTS_PER_BACKUP = 1e-6 + 3 * 0.4e-6 + 0.2e-6 + 1.33334e-5 + 0.6e-6 + 1e-5


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
    """The estimate: fixed lines, and per-volume lines if the volume count is unknown."""

    lines: list[CostLine]
    per_volume: float
    instances: int
    volumes_per_instance: int | None

    @property
    def total(self) -> float | None:
        if self.volumes_per_instance is None:
            return None
        return sum(line.monthly for line in self.lines)


def _count(template: dict[str, Any], resource_type: str) -> int:
    return sum(1 for r in template.get("Resources", {}).values() if r.get("Type") == resource_type)


def estimate(
    plan: Plan, member: dict[str, Any], central: dict[str, Any], volumes: int | None
) -> CostEstimate:
    """Monthly cost of the deployment the plan leads to.

    Args:
        plan: the plan (its desired instances are counted).
        member: the member template (KMS keys and alarms per instance are counted).
        central: the central template.
        volumes: protected volumes per account and region, when known.
    """
    instances = len(plan.desired)
    default_ceiling = plan.config.setting("ceiling_percent")
    ceilings = sum(
        1
        for d in plan.desired.values()
        if float(dict(d.overrides).get(str(CEILING.parameter), default_ceiling)) > 0
    )
    ceiling_share = ceilings / instances if instances else 1.0
    per_volume = (
        CUSTOM_METRIC
        + ANOMALY_ALARM_METRICS * STANDARD_ALARM
        + ceiling_share * STANDARD_ALARM
        + BACKUPS_PER_MONTH * REQUESTS_PER_BACKUP
    )
    lines = [
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
    ]
    if volumes is not None:
        n = volumes * instances
        lines += [
            CostLine("ChangedBlocks custom metrics", n, CUSTOM_METRIC),
            CostLine("anomaly alarms (3 metrics each)", n, ANOMALY_ALARM_METRICS * STANDARD_ALARM),
            CostLine("ceiling alarms", volumes * ceilings, STANDARD_ALARM),
            CostLine(
                "requests (EventBridge, SQS, Lambda, EBS direct API)",
                n,
                BACKUPS_PER_MONTH * REQUESTS_PER_BACKUP,
            ),
        ]
    return CostEstimate(lines, per_volume, instances, volumes)


def render_cost(cost: CostEstimate, display: Display) -> None:
    """Prints the estimate."""
    display.line(
        f"\n[bold]Estimated monthly cost[/] ({cost.instances} account-region instance(s), "
        "us-east-1 prices)"
    )
    for line in cost.lines:
        if line.quantity:
            display.line(
                f"  {line.item:<55} {line.quantity:>8g} x ${line.unit:<8.4g} = ${line.monthly:,.2f}"
            )
    fixed = sum(line.monthly for line in cost.lines[:3])
    if cost.total is None:
        display.line(
            f"  fixed ${fixed:,.2f}/month, plus about ${cost.per_volume:.2f}/month per protected "
            "volume (pass --volumes N per account and region for a total)"
        )
    else:
        display.line(f"  total about ${cost.total:,.2f}/month")
