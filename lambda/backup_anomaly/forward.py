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
from backup_anomaly.records import BaselineReset, Measurement


@dataclass(frozen=True)
class ForwardResult:
    """Outcome of one forward: ``sent``, ``disabled`` or ``failed`` (with the error)."""

    status: str
    error: str | None = None


def forward_measurement(
    client, bus_arn: str | None, source: str, measurement: Measurement
) -> ForwardResult:
    """Puts one ``Backup Change Measured`` event on the central bus (see :func:`put_event`).

    Its ``measurementId`` (volume ARN / previous snapshot / snapshot) is stable across
    retries, so the audit side can drop the duplicate a retried publication may put.
    """
    return put_event(
        client,
        bus_arn,
        source,
        MEASURED_DETAIL_TYPE,
        measurement.target.volume_arn,
        measurement.detail(),
    )


def forward_reset(client, bus_arn: str | None, source: str, reset: BaselineReset) -> ForwardResult:
    """Puts one ``Backup Baseline Reset`` event on the central bus (see :func:`put_event`).

    Its ``resetId`` is stable across retries: a reset republished after a crash carries the
    same id, so the audit side can drop it.
    """
    return put_event(
        client, bus_arn, source, BASELINE_RESET_DETAIL_TYPE, reset.target.volume_arn, reset.detail()
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
