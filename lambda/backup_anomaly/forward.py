"""Forwarding of every measurement to the central security account's event bus.

The central account routes ``Backup Change Measured`` events to its audit queue, so it holds
every measurement and can correlate across accounts. Forwarding is best effort by design:
the measurement itself is the CloudWatch data point, already published; a failure here is
logged and counted (``ForwardFailures``) and never fails the measurement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from backup_anomaly.events import MEASURED_DETAIL_TYPE


@dataclass(frozen=True)
class ForwardResult:
    """Outcome of one forward: ``sent``, ``disabled`` or ``failed`` (with the error)."""

    status: str
    error: str | None = None


def measurement_detail(measurement: dict) -> dict:
    """The event detail of a pending measurement record (see ``detector``).

    ``measurementId`` (volume ARN / previous snapshot / snapshot) is stable across retries,
    so the audit side can drop the duplicate a retried publication may put.
    """
    keys = (
        "measurementId", "account", "region", "volumeId", "volumeArn", "previousSnapshotId",
        "snapshotId",
        "changedBlocks", "changedBytes", "percentOfVolume", "volumeSizeGiB", "backupJobId",
        "resourceType", "completionTime", "measuredAt",
    )
    return {key: measurement.get(key) for key in keys}


def forward_measurement(
    client, bus_arn: str | None, source: str, measurement: dict
) -> ForwardResult:
    """Puts one ``Backup Change Measured`` event on the central bus.

    Args:
        client: boto3 EventBridge client.
        bus_arn: ``CENTRAL_BUS_ARN``; None disables forwarding.
        source: ``EVENT_SOURCE``.
        measurement: the measurement record.

    Returns:
        The outcome; errors are returned, not raised.
    """
    if not bus_arn:
        return ForwardResult("disabled")
    try:
        response = client.put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": MEASURED_DETAIL_TYPE,
                    "Resources": [measurement["volumeArn"]],
                    "Detail": json.dumps(measurement_detail(measurement)),
                    "EventBusName": bus_arn,
                }
            ]
        )
    except (ClientError, BotoCoreError) as exc:
        return ForwardResult("failed", f"{type(exc).__name__}: {exc}")
    # PutEvents reports per-entry failures in the response, not as an exception.
    if response.get("FailedEntryCount"):
        entry = (response.get("Entries") or [{}])[0]
        return ForwardResult(
            "failed", f"{entry.get('ErrorCode', 'Unknown')}: {entry.get('ErrorMessage', '')}"
        )
    return ForwardResult("sent")
