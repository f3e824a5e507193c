"""A stand-in for the Lambda service: runs a deployed function's REAL handler in-process.

moto runs no Lambda code, so the demo and the tests do what Lambda would: give the handler
the deployed function reads back with GetFunctionConfiguration (its ``Handler``, e.g.
``backup_anomaly.handler.lambda_handler`` or ``correlator.handler.lambda_handler``, and its
environment), the account's credentials the way Lambda passes them (environment variables),
a fresh boto3 default session (a cold start), and SQS batches taken from the queue of the
function's deployed event source mapping, of its batch size, in the shape it delivers (a
mapping on the wrong queue, disabled, or without ReportBatchItemFailures shows here).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3

LAMBDA_DIR = Path(__file__).resolve().parents[1] / "lambda"


class _Context:
    """The parts of the Lambda context object the handler reads."""

    def __init__(self, function_name: str):
        self.function_name = function_name
        self.aws_request_id = "demo"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(json.loads(record.getMessage()))
        except ValueError:
            self.records.append({"message": record.getMessage()})


class LocalLambda:
    """The detector function of one account and region, run in this process."""

    def __init__(self, session: boto3.Session, region: str, function_name: str):
        self.region = region
        self.function_name = function_name
        self._lambda = session.client("lambda", region_name=region)
        config = self._lambda.get_function_configuration(FunctionName=function_name)
        self.handler_path = str(config.get("Handler") or "backup_anomaly.handler.lambda_handler")
        # moto hands back CloudFormation's resolved Number parameters as numbers.
        variables = config.get("Environment", {}).get("Variables", {})
        self.environment = {k: str(v) for k, v in variables.items()}
        self.credentials = session.get_credentials().get_frozen_credentials()
        self.sqs = session.client("sqs", region_name=region)
        self.logs = _Collect()

    @contextmanager
    def running(self) -> Iterator[LocalLambda]:
        """The function's environment is in place for the duration (restored after)."""
        if str(LAMBDA_DIR) not in sys.path:
            sys.path.insert(0, str(LAMBDA_DIR))
        module_name, function_name = self.handler_path.rsplit(".", 1)
        handler = importlib.import_module(module_name)
        saved = dict(os.environ)
        logger = logging.getLogger(module_name.split(".")[0])
        saved_handlers = list(logger.handlers)
        os.environ.update(self.environment)
        os.environ.update(
            AWS_ACCESS_KEY_ID=self.credentials.access_key,
            AWS_SECRET_ACCESS_KEY=self.credentials.secret_key,
            AWS_SESSION_TOKEN=self.credentials.token or "",
            AWS_REGION=self.region,
            AWS_DEFAULT_REGION=self.region,
        )
        boto3.setup_default_session()
        reset = getattr(handler, "reset", None)
        if reset is not None:
            reset()
        logger.handlers = [self.logs]
        try:
            self._handler = getattr(handler, function_name)
            yield self
        finally:
            logger.handlers = saved_handlers
            os.environ.clear()
            os.environ.update(saved)
            boto3.DEFAULT_SESSION = None
            if reset is not None:
                reset()

    def invoke(self, event: dict[str, Any]) -> Any:
        """One direct invocation (a schedule's event); returns what the handler returns."""
        return self._handler(event, _Context(self.function_name))

    @cached_property
    def _mapping(self) -> dict[str, Any]:
        """The function's one SQS event source mapping, as deployed (read once)."""
        mappings = self._lambda.list_event_source_mappings(FunctionName=self.function_name)[
            "EventSourceMappings"
        ]
        sqs = [
            m
            for m in mappings
            if m["EventSourceArn"].startswith("arn:aws") and ":sqs:" in m["EventSourceArn"]
        ]
        if len(sqs) != 1:
            raise AssertionError(f"{self.function_name}: {len(sqs)} SQS event source mappings")
        return sqs[0]

    def drain_work_queue(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Delivers what the queue of the function's deployed event source mapping holds to
        the handler, as SQS batches of the mapping's size, the way Lambda would; returns the
        function's log records for them.

        Args:
            queue_url: the queue to drain; it must be the one the mapping reads.
        """
        mapping = self._mapping
        queue_arn = mapping["EventSourceArn"]
        name, owner = queue_arn.split(":")[5], queue_arn.split(":")[4]
        mapped = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=owner)["QueueUrl"]
        if queue_url is not None and queue_url != mapped:
            raise AssertionError(f"{self.function_name} reads {mapped}, not {queue_url}")
        if mapping.get("State", "Enabled") not in ("Enabled", "Creating"):
            return []  # a disabled mapping delivers nothing
        batch_size = min(10, int(mapping.get("BatchSize") or 10))
        # Without ReportBatchItemFailures Lambda ignores the handler's list: a batch that
        # returns is deleted whole.
        partial = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        start = len(self.logs.records)
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=mapped, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            batch = {"Records": [_record(m, queue_arn, self.region) for m in messages]}
            result = self._handler(batch, _Context(self.function_name))
            failures = result.get("batchItemFailures", []) if partial else []
            failed = {f["itemIdentifier"] for f in failures}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=mapped, ReceiptHandle=message["ReceiptHandle"])
            if failed:
                break  # SQS would redeliver after the visibility timeout; report instead
        return self.logs.records[start:]


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own field
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
