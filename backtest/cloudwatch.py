"""``--from-cloudwatch``: an existing deployment's ``ChangedBlocks`` history, size only.

Lists the ``ChangedBlocks`` metrics (dimension ``VolumeId``) of the deployment's namespace
in each region and reads their points with GetMetricData (up to 500 queries a call, every
page). The period is one hour, which CloudWatch keeps for 455 days, so backups up to
hourly stay apart and 90 days back still resolve. Each point is one measurement with
neither written blocks nor content: the scoring module then judges absolute change
against the volume's own history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from backtest.events import Labels, Measurement

METRIC = "ChangedBlocks"
PERIOD_SECONDS = 3600
_QUERIES_PER_CALL = 500


def read_changed_blocks(
    session,
    namespace: str,
    regions: Sequence[str],
    *,
    days: float = 90.0,
    now: datetime | None = None,
) -> list[Measurement]:
    """Reads every volume's ChangedBlocks points of the last ``days`` in ``regions``.

    Args:
        session: a boto3 session.
        namespace: the deployment's metric namespace.
        regions: regions to read.
        days: how far back to read.
        now: the end of the range (default: the current time).

    Returns:
        One measurement per point.
    """
    end = now or datetime.now(UTC)
    start = end - timedelta(days=days)
    account = _account(session)
    measurements: list[Measurement] = []
    for region in regions:
        client = session.client("cloudwatch", region_name=region)
        volumes = _volumes(client, namespace)
        for first in range(0, len(volumes), _QUERIES_PER_CALL):
            batch = volumes[first : first + _QUERIES_PER_CALL]
            measurements.extend(_points(client, namespace, region, account, batch, start, end))
    return measurements


def _account(session) -> str:
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except Exception:  # noqa: BLE001 - the account only labels the volume key
        return ""


def _volumes(client, namespace: str) -> list[str]:
    found = set()
    for page in client.get_paginator("list_metrics").paginate(
        Namespace=namespace, MetricName=METRIC
    ):
        for metric in page.get("Metrics", []):
            for dimension in metric.get("Dimensions", []):
                if dimension.get("Name") == "VolumeId" and dimension.get("Value"):
                    found.add(dimension["Value"])
    return sorted(found)


def _points(
    client,
    namespace: str,
    region: str,
    account: str,
    volumes: list[str],
    start: datetime,
    end: datetime,
) -> list[Measurement]:
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": METRIC,
                    "Dimensions": [{"Name": "VolumeId", "Value": volume}],
                },
                "Period": PERIOD_SECONDS,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for index, volume in enumerate(volumes)
    ]
    out = []
    pages = client.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )
    for page in pages:
        for series in page.get("MetricDataResults", []):
            volume = volumes[int(series["Id"][1:])]
            key = f"{account}:{region}:{volume}"
            for when, value in zip(
                series.get("Timestamps", []), series.get("Values", []), strict=False
            ):
                when = when.astimezone(UTC)
                out.append(
                    Measurement(
                        line=0,
                        measurement_id=f"cloudwatch:{key}:{when.isoformat()}",
                        volume_key=key,
                        volume_id=volume,
                        completion_time=when,
                        changed_blocks=max(0, round(value)),
                        written_blocks=None,
                        content=None,
                        previous_snapshot_id=None,
                        snapshot_id=None,
                        labels=Labels(),
                    )
                )
    return out
