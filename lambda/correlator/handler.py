"""Lambda entry point ``correlator.handler.lambda_handler``.

Accepts an SQS event-source batch of EventBridge events from the central bus (answering
with ``batchItemFailures`` so only failed records are retried), the scheduled EventBridge
event (``{"source": "aws.events", "detail-type": "Scheduled Event"}``) that runs the
sweep, or one EventBridge event invoked directly (a failure raises, so Lambda's own retry
applies). Settings and clients are built once per execution environment.
"""

from __future__ import annotations

import json
import os

import boto3
from botocore.config import Config

from correlator.correlator import Clients, Correlator
from correlator.logs import Outcome, emit
from correlator.records import Decision
from correlator.settings import Settings, load

_correlator: Correlator | None = None

# botocore's standard retry mode: throttling and 5xx retried with backoff and jitter.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                 read_timeout=20)  # fmt: skip


def build_clients(settings: Settings) -> Clients:
    """The boto3 clients of the correlator."""
    organizations = None
    if settings.organizations_names:
        organizations = boto3.client("organizations", config=_CONFIG)
    return Clients(
        dynamodb=boto3.client("dynamodb", config=_CONFIG),
        sns=boto3.client("sns", config=_CONFIG),
        sqs=boto3.client("sqs", config=_CONFIG),
        organizations=organizations,
    )


def get_correlator() -> Correlator:
    """The correlator of this execution environment, built on first use.

    Raises:
        SettingsError: the environment contract is violated (names the variable).
    """
    global _correlator
    if _correlator is None:
        settings = load()
        _correlator = Correlator(settings, build_clients(settings))
    return _correlator


def reset() -> None:
    """Forgets the cached correlator, so the next invocation re-reads the environment."""
    global _correlator
    _correlator = None


def _is_sqs_batch(event: object) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records
    )


def _handle_batch(correlator: Correlator, records: list[dict]) -> dict:
    messages: list[tuple[str, object]] = []
    for record in records:
        message_id = str(record.get("messageId"))
        try:
            body = json.loads(record.get("body") or "")
        except (TypeError, ValueError) as exc:
            emit(
                Outcome(
                    Decision.MALFORMED,
                    reason="malformed",
                    extra={"message": f"SQS body is not JSON: {exc}", "message_id": message_id},
                )
            )
            continue
        messages.append((message_id, body))
    failed = correlator.handle_batch(messages) if messages else []
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


def lambda_handler(event: dict, context) -> dict:
    """Processes an SQS batch, the scheduled sweep or a direct EventBridge event.

    Args:
        event: the invocation payload.
        context: the Lambda context (unused).

    Returns:
        ``{"batchItemFailures": [...]}`` for SQS batches, ``{"status": "ok"}`` otherwise.
    """
    correlator = get_correlator()
    if _is_sqs_batch(event):
        return _handle_batch(correlator, event["Records"])
    correlator.handle(event)
    return {"status": "ok"}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # In Lambda, a bad environment fails the cold start itself, with the variable named.
    get_correlator()
