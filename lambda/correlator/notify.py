"""Publishing notifications: SNS for the email, SQS for the audit copy, as an outbox.

A notification is recorded as a pending item in the same conditional write as the change
that calls for it (``store.commit``, ``store.put_ops``), claimed by its writer; the writer
publishes it right after the write, then deletes it. So a crash after the write loses
nothing: the pending item is still there, and once its claim is older than
:data:`CLAIM_LEASE` whoever looks next (the redelivered event, any later change, the
scheduled sweep) claims it with a conditional write and publishes it. The email is marked
sent before the audit copy goes out, so a failure of the audit queue does not email twice.
The one window left is a crash between an SNS Publish that succeeded and that mark: then
the email is sent again, carrying the same notification id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from correlator.logs import Outcome, emit
from correlator.messages import digest
from correlator.records import Decision, Notice, OpsIncident
from correlator.store import Pending, Store

# Longer than a publication takes (SNS and SQS, with botocore's retries), shorter than the
# correlator queue's visibility timeout, so a redelivered event finds a crashed writer's
# notifications claimable.
CLAIM_LEASE = timedelta(seconds=90)


class Publisher:
    """Sends notifications to the alert topic and the audit queue.

    Args:
        sns: boto3 SNS client.
        sqs: boto3 SQS client.
        topic_arn: ``ALERT_TOPIC_ARN`` (None: no emails).
        queue_url: ``AUDIT_QUEUE_URL`` (None: no audit copies).
    """

    def __init__(self, sns, sqs, topic_arn: str | None, queue_url: str | None):
        self.sns = sns
        self.sqs = sqs
        self.topic_arn = topic_arn
        self.queue_url = queue_url

    def email(self, subject: str, body: str, notice_ids: Sequence[str], kind: str) -> None:
        if not self.topic_arn:
            return
        self.sns.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=body,
            MessageAttributes={
                "notificationId": {"DataType": "String", "StringValue": ",".join(notice_ids)},
                "kind": {"DataType": "String", "StringValue": kind},
            },
        )

    def audit(self, notice: Notice) -> None:
        if not self.queue_url:
            return
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=notice.audit,
            MessageAttributes={
                "notificationId": {"DataType": "String", "StringValue": notice.id},
                "kind": {"DataType": "String", "StringValue": notice.kind},
            },
        )


class Outbox:
    """Publishes pending notifications exactly as described in the module docstring.

    Args:
        store: the central table.
        publisher: the topic and the queue.
        clock: the current time.
    """

    def __init__(self, store: Store, publisher: Publisher, clock: Callable[[], datetime]):
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def deliver(self, notices: Sequence[Notice]) -> None:
        """Publishes notifications this invocation recorded (and so holds the claim of)."""
        for notice in notices:
            self._publish(notice)

    def _publish(self, notice: Notice) -> None:
        if notice.email and not notice.emailed:
            self.publisher.email(notice.subject, notice.body, [notice.id], notice.kind)
            self.store.mark_emailed(notice)
        self.publisher.audit(notice)
        self.store.clear_notice(notice)
        emit(
            Outcome(
                Decision.PUBLISHED,
                incident=notice.subject_id,
                reason=notice.kind,
                extra={"notification": notice.id, "email": notice.email},
            )
        )

    def deliver_stale(self) -> int:
        """Publishes pending notifications whose writer's claim expired; how many."""
        now = self.clock()
        delivered = 0
        for pending in self.store.pending_notices():
            if not self._claimable(pending, now):
                continue
            if self.store.claim_notice(pending, now):
                self._publish(pending.notice)
                delivered += 1
        return delivered

    @staticmethod
    def _claimable(pending: Pending, now: datetime) -> bool:
        return now - pending.claimed_at >= CLAIM_LEASE

    def deliver_ops(self, items: Sequence[OpsIncident], *, own: bool) -> int:
        """Publishes the pending notices of operational incidents, one email per digest.

        Args:
            items: operational incidents, some with a pending notice.
            own: this invocation wrote them (no claim needed); else only expired claims
                are taken over.

        Returns:
            How many notices were published.
        """
        now = self.clock()
        ready: list[OpsIncident] = []
        for item in items:
            if item.pending is None:
                continue
            if not own:
                claimed = item.pending_claimed_at or item.pending.created_at
                if now - claimed < CLAIM_LEASE or not self.store.claim_ops_pending(item, now):
                    continue
            ready.append(item)
        groups: dict[str, list[OpsIncident]] = {}
        for item in ready:
            assert item.pending is not None
            groups.setdefault(item.pending.digest or item.pending.id, []).append(item)
        for group in groups.values():
            notices = [i.pending for i in group if i.pending is not None]
            unsent = [n for n in notices if not n.emailed]
            if unsent:
                subject, body = digest(unsent)
                self.publisher.email(subject, body, [n.id for n in unsent], "operational")
                for item in group:
                    assert item.pending is not None
                    self.store.mark_ops_emailed(item.sort_key, item.pending.id)
            for item in group:
                assert item.pending is not None
                self.publisher.audit(item.pending)
                self.store.clear_ops_pending(item.sort_key, item.pending.id)
                emit(
                    Outcome(
                        Decision.PUBLISHED,
                        account=item.account,
                        region=item.region,
                        incident=item.sort_key,
                        reason=item.pending.kind,
                        extra={"notification": item.pending.id, "email": True},
                    )
                )
        return len(ready)
