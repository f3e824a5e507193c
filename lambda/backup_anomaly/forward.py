"""Forwarding of every measurement and every baseline reset to the central event bus.

The central account routes ``Backup Change Measured`` and ``Backup Baseline Reset`` events
to its audit queue (and a reset whose previous snapshot disappeared to its alert topic:
deleting recovery points is what ransomware does first), so it holds every measurement and
reset and can correlate across accounts. Forwarding is best effort by design: the
measurement itself is the CloudWatch data point, the reset is the baseline move, both
already done; a failure here is logged and counted (``ForwardFailures``) and never fails
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from backup_anomaly.events import BASELINE_RESET_DETAIL_TYPE, MEASURED_DETAIL_TYPE


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
        "measurementId",
        "account",
        "region",
        "volumeId",
        "volumeArn",
        "previousSnapshotId",
        "snapshotId",
        "changedBlocks",
        "changedBytes",
        "percentOfVolume",
        "volumeSizeGiB",
        "backupJobId",
        "resourceType",
        "completionTime",
        "measuredAt",
    )
    return {key: measurement.get(key) for key in keys}


def reset_detail(record: dict) -> dict:
    """The event detail of a pending baseline-reset record (see ``detector``).

    ``resetId`` (volume ARN / previous snapshot / new snapshot) is stable across retries: a
    reset republished after a crash carries the same id, so the audit side can drop it.
    """
    return {
        "resetId": record.get("measurementId"),
        "account": record.get("account"),
        "region": record.get("region"),
        "volumeId": record.get("volumeId"),
        "volumeArn": record.get("volumeArn"),
        "previousSnapshotId": record.get("previousSnapshotId"),
        "snapshotId": record.get("snapshotId"),
        "reason": record.get("reason"),
        "backupJobId": record.get("backupJobId"),
        "resourceType": record.get("resourceType"),
        "completionTime": record.get("completionTime"),
        "resetAt": record.get("measuredAt"),
    }


def forward_measurement(
    client, bus_arn: str | None, source: str, measurement: dict
) -> ForwardResult:
    """Puts one ``Backup Change Measured`` event on the central bus (see :func:`put_event`)."""
    return put_event(
        client,
        bus_arn,
        source,
        MEASURED_DETAIL_TYPE,
        measurement["volumeArn"],
        measurement_detail(measurement),
    )


def forward_reset(client, bus_arn: str | None, source: str, record: dict) -> ForwardResult:
    """Puts one ``Backup Baseline Reset`` event on the central bus (see :func:`put_event`)."""
    return put_event(
        client,
        bus_arn,
        source,
        BASELINE_RESET_DETAIL_TYPE,
        record["volumeArn"],
        reset_detail(record),
    )


def put_event(
    client, bus_arn: str | None, source: str, detail_type: str, resource: str, detail: dict
) -> ForwardResult:
    """Puts one event on the central bus.

    Args:
        client: boto3 EventBridge client.
        bus_arn: ``CENTRAL_BUS_ARN``; None disables forwarding.
        source: ``EVENT_SOURCE``.
        detail_type: the event's detail-type.
        resource: the volume ARN (the event's only resource).
        detail: the event detail.

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
                    "DetailType": detail_type,
                    "Resources": [resource],
                    "Detail": json.dumps(detail),
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
