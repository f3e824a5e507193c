"""CloudWatch metrics: the per-volume ``ChangedBlocks`` measurement and operational counters.

``ChangedBlocks`` carries the backup's completion time as its timestamp, so a retried
publication lands on the same point with the same value; the alarms read the Maximum
statistic, which two equal values do not change. Counters
(``BaselineResets``, ``ForwardFailures``, ``ContentSamplingFailures``, ``AlarmsHealed``) have
no volume dimension: they
are per-account health signals, not per-volume series.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

CHANGED_BLOCKS = "ChangedBlocks"
BASELINE_RESETS = "BaselineResets"
FORWARD_FAILURES = "ForwardFailures"
CONTENT_SAMPLING_FAILURES = "ContentSamplingFailures"
SCAN_FAILURES = "ConfirmationScanFailures"
FINDING_FAILURES = "FindingFailures"
ALARMS_HEALED = "AlarmsHealed"

# CloudWatch rejects data points older than two weeks; keep a margin for clock skew and the
# time between this check and the call.
MAX_METRIC_AGE = timedelta(days=14) - timedelta(hours=1)


def publishable(timestamp: datetime, now: datetime | None = None) -> bool:
    """Whether CloudWatch still accepts a data point with this timestamp."""
    now = now or datetime.now(UTC)
    return now - timestamp < MAX_METRIC_AGE


def put_changed_blocks(
    client, namespace: str, volume_id: str, changed_blocks: int, timestamp: datetime
) -> None:
    """Publishes one volume's measurement at the backup's completion time."""
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": CHANGED_BLOCKS,
                "Dimensions": [{"Name": "VolumeId", "Value": volume_id}],
                "Timestamp": timestamp,
                "Value": float(changed_blocks),
                "Unit": "Count",
            }
        ],
    )


def put_counter(client, namespace: str, name: str, value: int = 1) -> None:
    """Publishes an account-level counter (no dimensions) at the current time."""
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": name, "Value": float(value), "Unit": "Count"}],
    )
