"""Lambda entry point ``backup_anomaly.handler.lambda_handler``.

Accepts an SQS event-source batch of EventBridge events (answering with
``batchItemFailures`` so only failed records are retried) or one EventBridge event invoked
directly (a failure raises, so Lambda's own retry and destination apply). Settings and
clients are built once per execution environment.
"""

from __future__ import annotations

import json
import os

import boto3
from botocore.config import Config

from backup_anomaly.detector import POST_COUNT_RESERVE_SECONDS, Clients, Detector
from backup_anomaly.logs import Outcome, emit
from backup_anomaly.settings import Settings, load

_detector: Detector | None = None


def build_clients(settings: Settings) -> Clients:
    """The boto3 clients, configured for the detector's workload."""
    standard = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                      read_timeout=30)
    # The counting function retries throttling and 5xx itself, with the shared rate
    # budget in mind; botocore retrying underneath would double the attempts.
    ebs = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5,
                 read_timeout=60, max_pool_connections=settings.ebs_count_workers + 2)
    return Clients(
        ebs=boto3.client("ebs", config=ebs),
        ec2=boto3.client("ec2", config=standard),
        backup=boto3.client("backup", config=standard),
        cloudwatch=boto3.client("cloudwatch", config=standard),
        dynamodb=boto3.client("dynamodb", config=standard),
        events=boto3.client("events", config=standard),
        sqs=boto3.client("sqs", config=standard),
    )


def get_detector() -> Detector:
    """The detector of this execution environment, built on first use.

    Raises:
        SettingsError: the environment contract is violated (names the variable).
    """
    global _detector
    if _detector is None:
        settings = load()
        _detector = Detector(settings, build_clients(settings))
    return _detector


def reset() -> None:
    """Forgets the cached detector, so the next invocation re-reads the environment."""
    global _detector
    _detector = None


def _is_sqs_batch(event: object) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records
    )


def _handle_batch(detector: Detector, records: list[dict], remaining) -> dict:
    failures = []
    for record in records:
        message_id = record.get("messageId")
        if remaining is not None and remaining() < POST_COUNT_RESERVE_SECONDS:
            # Not enough time to start: hand it back to SQS rather than risk a timeout.
            emit(Outcome("deferred", reason="invocation_deadline",
                         extra={"message_id": message_id}))
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            body = json.loads(record.get("body") or "")
        except (TypeError, ValueError) as exc:
            emit(Outcome("malformed", reason="malformed",
                         extra={"message": f"SQS body is not JSON: {exc}",
                                "message_id": message_id}))
            continue
        try:
            detector.handle(body, remaining)
        except Exception:  # noqa: BLE001 - logged by the detector; SQS retries this record
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def lambda_handler(event: dict, context) -> dict:
    """Processes an SQS batch or a direct EventBridge event.

    Args:
        event: the invocation payload.
        context: the Lambda context (``get_remaining_time_in_millis`` is watched).

    Returns:
        ``{"batchItemFailures": [...]}`` for SQS batches, ``{"status": "ok"}`` otherwise.
    """
    detector = get_detector()
    remaining = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        def remaining() -> float:
            return context.get_remaining_time_in_millis() / 1000.0
    if _is_sqs_batch(event):
        return _handle_batch(detector, event["Records"], remaining)
    detector.handle(event, remaining)
    return {"status": "ok"}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # In Lambda, a bad environment fails the cold start itself, with the variable named.
    get_detector()
