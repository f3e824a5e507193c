"""Forwarding of every measurement, anomaly and baseline reset to the central event bus.

The central account routes ``Backup Change Measured``, ``Backup Anomaly Detected`` and
``Backup Baseline Reset`` events to its audit queue and its correlator, so it holds every
measurement and reset and can correlate across accounts. A measurement judged ``low`` or
worse is put as both events in one PutEvents call (same ``measurementId``).

What a failure means is the caller's decision (``detector._publish_pending``): a plain
measurement or reset is forwarded best effort (logged and counted as ``ForwardFailures``;
the central silence check notices an account that stops arriving), an anomaly is retried
until it is delivered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from backup_anomaly.events import (
    ANOMALY_DETECTED_DETAIL_TYPE,
    BASELINE_RESET_DETAIL_TYPE,
    MEASURED_DETAIL_TYPE,
)
from backup_anomaly.records import BaselineReset, Measurement


@dataclass(frozen=True)
class ForwardResult:
    """Outcome of one forward: ``sent``, ``disabled`` or ``failed`` (with the error)."""

    status: str
    error: str | None = None


def forward_measurement(
    client, bus_arn: str | None, source: str, measurement: Measurement
) -> ForwardResult:
    """Puts the ``Backup Change Measured`` event, and with a verdict of ``low`` or worse the
    ``Backup Anomaly Detected`` event, on the central bus in one call.

    Their ``measurementId`` (volume ARN / previous snapshot / snapshot) is stable across
    retries, so the central side drops the duplicates a retried publication puts.
    """
    resource = measurement.target.volume_arn
    entries = [(MEASURED_DETAIL_TYPE, measurement.detail())]
    if measurement.judgement is not None and measurement.judgement.is_anomaly:
        entries.append((ANOMALY_DETECTED_DETAIL_TYPE, measurement.anomaly_detail()))
    return put_events(client, bus_arn, source, resource, entries)


def forward_reset(client, bus_arn: str | None, source: str, reset: BaselineReset) -> ForwardResult:
    """Puts one ``Backup Baseline Reset`` event on the central bus (see :func:`put_event`).

    Its ``resetId`` is stable across retries: a reset republished after a crash carries the
    same id, so the audit side can drop it.
    """
    return put_event(
        client, bus_arn, source, BASELINE_RESET_DETAIL_TYPE, reset.target.volume_arn, reset.detail()
    )


def put_event(
    client, bus_arn: str | None, source: str, detail_type: str, resource: str | None, detail: dict
) -> ForwardResult:
    """Puts one event on the central bus (see :func:`put_events`)."""
    return put_events(client, bus_arn, source, resource, [(detail_type, detail)])


def put_events(
    client,
    bus_arn: str | None,
    source: str,
    resource: str | None,
    entries: list[tuple[str, dict]],
) -> ForwardResult:
    """Puts events about one volume on the central bus, in one call.

    Args:
        client: boto3 EventBridge client.
        bus_arn: ``CENTRAL_BUS_ARN``; None disables forwarding.
        source: ``EVENT_SOURCE``.
        resource: the volume ARN (each event's only resource); None for none.
        entries: (detail-type, detail) of each event (PutEvents takes up to 10).

    Returns:
        The outcome (``failed`` when any entry failed); errors are returned, not raised.
    """
    if not bus_arn:
        return ForwardResult("disabled")
    try:
        response = client.put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Resources": [resource] if resource else [],
                    "Detail": json.dumps(detail),
                    "EventBusName": bus_arn,
                }
                for detail_type, detail in entries
            ]
        )
    except (ClientError, BotoCoreError) as exc:
        return ForwardResult("failed", f"{type(exc).__name__}: {exc}")
    # PutEvents reports per-entry failures in the response, not as an exception.
    if response.get("FailedEntryCount"):
        failed = [e for e in response.get("Entries") or [] if e.get("ErrorCode")] or [{}]
        entry = failed[0]
        return ForwardResult(
            "failed", f"{entry.get('ErrorCode', 'Unknown')}: {entry.get('ErrorMessage', '')}"
        )
    return ForwardResult("sent")
