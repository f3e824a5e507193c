"""Lambda entry point ``backup_anomaly.handler.lambda_handler``.

Accepts an SQS event-source batch of EventBridge events (answering with
``batchItemFailures`` so only failed records are retried) or one EventBridge event invoked
directly (a failure raises, so Lambda's own retry and destination apply). Settings and
clients are built once per execution environment.
"""

from __future__ import annotations

import json
import os
from functools import cached_property

import boto3
from botocore.config import Config

from backup_anomaly.detector import (
    POST_COUNT_RESERVE_SECONDS,
    WATCHED_CLIENTS,
    Clients,
    Detector,
)
from backup_anomaly.logs import Outcome, emit
from backup_anomaly.records import Decision
from backup_anomaly.settings import Settings, load

_detector: Detector | None = None


class LazyClients(Clients):
    """boto3 clients built on first use: an invocation that skips its event builds none.

    Args:
        settings: the environment contract (sizes the EBS connection pool).
    """

    def __init__(self, settings: Settings):
        self._settings = settings
        self._hooks: list = []

    def __getattr__(self, name: str):
        if name not in Clients.__dataclass_fields__:
            raise AttributeError(name)
        client = self._lazy(name)
        setattr(self, name, client)
        return client

    # A field with a default (None, for callers that use no Security Hub) is found on the
    # class, so __getattr__ never runs for it: built here on first use instead.
    @cached_property
    def securityhub(self):
        return self._lazy("securityhub")

    def _lazy(self, name: str):
        client = self._build(name)
        if name in WATCHED_CLIENTS:
            for hook in self._hooks:
                client.meta.events.register("before-call", hook)
        return client

    def _build(self, name: str):
        if name == "ebs":
            # The counting function retries throttling and 5xx itself, pacing retries with
            # the shared rate budget; botocore retrying underneath would double the attempts.
            config = Config(
                retries={"mode": "standard", "max_attempts": 1},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=self._settings.ebs_count_workers + 2,
            )
        else:
            config = Config(
                retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
            )
        bus = self._settings.central_bus_arn
        if name == "events" and bus and len(bus.split(":")) > 3 and bus.split(":")[3]:
            # PutEvents only reaches a bus of the client's own region ("Cross-region API
            # call is not allowed"); the events client serves forwarding alone.
            return boto3.client(name, config=config, region_name=bus.split(":")[3])
        return boto3.client(name, config=config)

    def watch(self, hook) -> None:
        """Registers ``hook`` on the clients built so far and on those built later."""
        self._hooks.append(hook)
        for name in WATCHED_CLIENTS:
            if name in self.__dict__:
                self.__dict__[name].meta.events.register("before-call", hook)


def build_clients(settings: Settings) -> Clients:
    """The boto3 clients, configured for the detector's workload, built on first use."""
    return LazyClients(settings)


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
            emit(
                Outcome(
                    Decision.DEFERRED,
                    reason="invocation_deadline",
                    extra={"message_id": message_id},
                )
            )
            failures.append({"itemIdentifier": message_id})
            continue
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
