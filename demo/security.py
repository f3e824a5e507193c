"""The security account of the demo: the correlator, the alert inbox, the audit queue.

The correlator is the REAL handler run on its deployed queue (moto runs no Lambda code);
its hourly sweep is invoked as the schedule would invoke it. Email delivery is an SQS
queue subscribed to the alert topic (no mail server here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

from demo.events import scheduled
from generator.config.model import OrgConfig
from generator.naming import Names
from testing.lambda_runtime import LocalLambda


@dataclass(frozen=True)
class Email:
    """One message of the alert topic, as a subscriber receives it."""

    day: int
    subject: str
    body: str


class Security:
    """The central stack's moving parts in the security account."""

    def __init__(self, config: OrgConfig, session: boto3.Session):
        self.config = config
        self.account = config.security.account_id
        self.region = config.security.home_region
        self.names = Names(config.name)
        self.session = session
        self.sqs = session.client("sqs", region_name=self.region)
        self.dynamodb = session.client("dynamodb", region_name=self.region)
        self.correlator = LocalLambda(session, self.region, self.names.correlator_function)
        self.queue = self.sqs.get_queue_url(QueueName=self.names.correlator_queue)["QueueUrl"]
        self.audit = self.sqs.get_queue_url(QueueName=self.names.audit_queue)["QueueUrl"]
        self.inbox = self._subscribe_inbox()
        self.audited: list[dict[str, Any]] = []

    def _subscribe_inbox(self) -> str:
        """by hand: email delivery (no mail server here): an SQS queue stands in."""
        url = self.sqs.create_queue(QueueName="demo-secops-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.session.client("sns", region_name=self.region).subscribe(
            TopicArn=f"arn:aws:sns:{self.region}:{self.account}:{self.names.alert_topic}",
            Protocol="sqs",
            Endpoint=arn,
        )
        return url

    def correlate(self, fn: LocalLambda, when: datetime) -> list[dict[str, Any]]:
        """The correlator takes its queue, then the sweep runs (silence, pending notices)."""
        records = fn.drain_work_queue(self.queue)
        # by hand: the sweep schedule (EventBridge) invokes the function; moto runs none.
        fn.invoke(scheduled(self.account, self.region, self.names.sweep_rule, when))
        return records

    def emails(self, day: int) -> list[Email]:
        out = []
        for body in _drain(self.sqs, self.inbox):
            message = json.loads(body)
            text = message.get("Message") or ""
            if not message.get("Subject"):  # an alarm rule's message: its first sentence
                text = text.strip('"')
            subject = message.get("Subject") or text.split(". ")[0]
            out.append(Email(day, subject, text))
        return out

    def audit_events(self) -> list[dict[str, Any]]:
        """Everything the audit queue (a SIEM's feed) received so far."""
        self.audited += [json.loads(b) for b in _drain(self.sqs, self.audit)]
        return self.audited


def _drain(sqs, url: str) -> list[str]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
