"""Counts that outlast one invocation: checkpoint in state, continuation through SQS.

These run the real ``lambda_handler`` (clients built by the handler, EBS pointed at the fake
server through ``AWS_ENDPOINT_URL_EBS``) with a context whose deadline arrives after a given
number of ListChangedBlocks requests, so every invocation stops mid-count whatever the
machine's speed.
"""

from __future__ import annotations

import dataclasses
import json

from backup_anomaly import changed_blocks, handler
from backup_anomaly.detector import POST_COUNT_RESERVE_SECONDS
from tests.detector.conftest import FakeContext, recent

MARGIN = getattr(changed_blocks, "DEFAULT_SAFETY_MARGIN_SECONDS", 20.0)
CHANGED = set(range(0, 2048, 3))


class RequestBudgetContext:
    """A Lambda context whose deadline comes after ``requests`` EBS requests.

    Until then plenty of time remains; after, less than the counting function's safety
    margin, so it checkpoints. The handler still has its reserve for what follows.
    """

    def __init__(self, fake, requests: int):
        self.fake = fake
        self.limit = fake.requests_served + requests

    def get_remaining_time_in_millis(self) -> int:
        seconds = MARGIN + POST_COUNT_RESERVE_SECONDS
        seconds += 600 if self.fake.requests_served < self.limit else -0.5
        return int(seconds * 1000)


def _budget(world, requests: int = 20) -> RequestBudgetContext:
    return RequestBudgetContext(world.fake, requests)


def _sqs(*bodies):
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "eventSource": "aws:sqs",
                "body": body if isinstance(body, str) else json.dumps(body),
            }
            for i, body in enumerate(bodies)
        ]
    }


def _queued(world, queue_url) -> int:
    attributes = world.sqs._client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _receive(world, queue_url):
    if not _queued(world, queue_url):
        return []
    messages = world.sqs._client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
    )
    found = messages.get("Messages", [])
    for message in found:
        world.sqs._client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [m["Body"] for m in found]


def _slow_volume(world, handler_env, writes=None):
    world.fake.scan_window = 32  # 64 requests for a 1 GiB volume
    queue_url = world.queue()
    handler_env.setenv("WORK_QUEUE_URL", queue_url)
    handler_env.setenv("EBS_MAX_REQUESTS_PER_SECOND", "50")  # the bound; the fake has no quota
    vol = world.volume()
    snaps = world.lineage(vol, writes or [set(), CHANGED])
    handler.lambda_handler(_sqs(world.ebs_event(snaps[0], vol, recent(30))), FakeContext())
    return vol, snaps, queue_url


def _changed_blocks_puts(world, vol):
    data = world.cloudwatch._client.get_metric_statistics(
        Namespace="BackupAnomalyDetection",
        MetricName="ChangedBlocks",
        Dimensions=[{"Name": "VolumeId", "Value": vol}],
        StartTime=recent(120),
        EndTime=recent(-5),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    return [(d["Maximum"], d["SampleCount"]) for d in data]


def test_long_count_completes_exactly_once_across_invocations(world, handler_env, lines):
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    event = world.ebs_event(s2, vol, recent(10))
    lines()

    response = handler.lambda_handler(_sqs(event), _budget(world))
    hops, generations, sent = 0, [], []
    pending = _receive(world, queue_url)
    while pending:
        body = pending.pop(0)
        sent.append(body)
        generations.append(json.loads(body)["detail"]["generation"])
        response = handler.lambda_handler(_sqs(body), _budget(world))
        assert response == {"batchItemFailures": []}
        hops += 1
        pending += _receive(world, queue_url)
        assert hops < 60, "the count must progress every invocation"

    assert response == {"batchItemFailures": []}
    decisions = [line["decision"] for line in lines()]
    assert decisions[-1] == "measured" and set(decisions[:-1]) == {"continued"}
    assert hops >= 2
    assert generations == list(range(1, hops + 1))
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2
    assert world.store.get(world.volume_arn(vol)).progress is None
    assert _changed_blocks_puts(world, vol) == [(len(CHANGED), 1)]

    # Redelivered continuations and the redelivered original are no-ops.
    for body in [sent[0], sent[-1], json.dumps(event)]:
        response = handler.lambda_handler(_sqs(body), _budget(world))
        assert response == {"batchItemFailures": []}
    assert [line["decision"] for line in lines()] == ["duplicate"] * 3
    assert _changed_blocks_puts(world, vol) == [(len(CHANGED), 1)]
    assert _queued(world, queue_url) == 0


def test_duplicate_continuation_and_duplicate_original_while_in_progress(world, handler_env, lines):
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    event = world.ebs_event(s2, vol, recent(10))
    handler.lambda_handler(_sqs(event), _budget(world))
    (gen1,) = _receive(world, queue_url)
    handler.lambda_handler(_sqs(gen1), _budget(world, 4))  # resumes: saves generation 2
    lines()

    again = handler.lambda_handler(_sqs(gen1, event), _budget(world))

    assert again == {"batchItemFailures": []}
    assert [(line["decision"]) for line in lines()] == ["duplicate", "in_progress"]
    state = world.store.get(world.volume_arn(vol))
    assert state.progress.generation == 2 and state.snapshot_id == s1


def test_newer_backup_waits_for_the_count_in_progress(world, handler_env, lines):
    vol, (s1, s2, s3), queue_url = _slow_volume(world, handler_env, writes=[set(), CHANGED, {2047}])
    handler.lambda_handler(_sqs(world.ebs_event(s2, vol, recent(20))), _budget(world))
    newer = world.ebs_event(s3, vol, recent(10))
    lines()

    busy = handler.lambda_handler(_sqs(newer), _budget(world))

    assert busy == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert lines()[0]["reason"] == "VolumeBusy"
    for body in iter(lambda: _receive(world, queue_url), []):
        for item in body:
            handler.lambda_handler(_sqs(item), FakeContext())
    assert handler.lambda_handler(_sqs(newer), FakeContext()) == {"batchItemFailures": []}
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s3
    values = sorted(v for v, _ in _changed_blocks_puts(world, vol))
    assert values == sorted([len(CHANGED), len(CHANGED | {2047}) - len(CHANGED)])


def test_continuation_ahead_of_its_checkpoint_is_retried(world, handler_env, lines):
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    handler.lambda_handler(_sqs(world.ebs_event(s2, vol, recent(10))), _budget(world))
    (gen1,) = _receive(world, queue_url)
    early = json.loads(gen1)
    early["detail"]["generation"] = 2  # as if sent just before its checkpoint was saved
    lines()

    response = handler.lambda_handler(_sqs(early), _budget(world))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert lines()[0]["reason"] == "ProgressNotVisible"


def test_without_a_work_queue_the_count_runs_to_the_end(world, handler_env, lines):
    vol, (s1, s2), _ = _slow_volume(world, handler_env)
    handler_env.delenv("WORK_QUEUE_URL")
    handler.reset()
    lines()

    handler.lambda_handler(
        _sqs(world.ebs_event(s2, vol, recent(10))),
        FakeContext(MARGIN + POST_COUNT_RESERVE_SECONDS + 0.05),
    )

    (line,) = lines()
    assert (line["decision"], line["changed_blocks"]) == ("measured", len(CHANGED))


def test_too_little_time_to_count_is_retried_not_looped(world, handler_env, lines):
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    lines()

    response = handler.lambda_handler(
        _sqs(world.ebs_event(s2, vol, recent(10))),
        FakeContext(POST_COUNT_RESERVE_SECONDS + MARGIN / 2),
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert lines()[0]["reason"] == "CountStalled"
    assert _queued(world, queue_url) == 0
    assert world.store.get(world.volume_arn(vol)).progress is None


def _age_progress(world, vol, minutes: float) -> None:
    """Moves the saved checkpoint's ``savedAt`` into the past (as if its chain went quiet)."""
    state = world.store.get(world.volume_arn(vol))
    progress = dataclasses.replace(state.progress, saved_at=recent(minutes))
    world.dynamodb.update_item(
        TableName="backup-anomaly-state",
        Key={"VolumeArn": {"S": world.volume_arn(vol)}},
        UpdateExpression="SET Progress = :p",
        ExpressionAttributeValues={":p": {"S": progress.to_json()}},
    )


def test_a_lost_continuation_does_not_wedge_the_volume(world, handler_env, lines):
    # The continuation of a saved count is gone (DLQ after repeated stalls): without a
    # way to resume it, every newer backup of the volume is VolumeBusy until it too reaches
    # the DLQ, for good. Once the checkpoint is stale, the next event resumes the count.
    vol, (s1, s2, s3), queue_url = _slow_volume(world, handler_env, writes=[set(), CHANGED, {2047}])
    handler.lambda_handler(_sqs(world.ebs_event(s2, vol, recent(20))), _budget(world))
    (lost,) = _receive(world, queue_url)
    newer = world.ebs_event(s3, vol, recent(10))
    assert handler.lambda_handler(_sqs(newer), FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }  # a live count: wait for it
    _age_progress(world, vol, 31)
    lines()

    assert handler.lambda_handler(_sqs(newer), FakeContext()) == {"batchItemFailures": []}

    state = world.store.get(world.volume_arn(vol))
    assert (state.snapshot_id, state.progress) == (s3, None)
    values = sorted(v for v, _ in _changed_blocks_puts(world, vol))
    assert values == sorted([len(CHANGED), len(CHANGED | {2047}) - len(CHANGED)])
    assert [line["decision"] for line in lines()] == ["measured", "measured"]
    # The lost continuation, should it come back after all, is a no-op.
    assert handler.lambda_handler(_sqs(lost), FakeContext()) == {"batchItemFailures": []}
    assert lines()[0]["decision"] == "duplicate"
    assert len(_changed_blocks_puts(world, vol)) == 2


def test_a_stalled_count_resumed_by_a_duplicate_of_its_own_event(world, handler_env, lines):
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    event = world.ebs_event(s2, vol, recent(10))
    handler.lambda_handler(_sqs(event), _budget(world))
    _receive(world, queue_url)  # lost
    _age_progress(world, vol, 31)
    lines()

    assert handler.lambda_handler(_sqs(event), FakeContext()) == {"batchItemFailures": []}

    (line,) = lines()
    assert (line["decision"], line["changed_blocks"]) == ("measured", len(CHANGED))
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2


def test_sub_millisecond_completion_times_keep_duplicates_duplicates(world, handler_env, lines):
    # The baseline's completion time must round-trip exactly: truncated to milliseconds, a
    # redelivered continuation looked newer than the baseline it had become, and was retried
    # (ProgressNotVisible) into the DLQ.
    vol, (s1, s2), queue_url = _slow_volume(world, handler_env)
    event = world.ebs_event(s2, vol, recent(10))
    event["detail"]["completionDate"] = event["detail"]["completionDate"][:-4] + "921456Z"
    handler.lambda_handler(_sqs(event), _budget(world))
    (gen1,) = _receive(world, queue_url)
    assert handler.lambda_handler(_sqs(gen1), FakeContext()) == {"batchItemFailures": []}
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2
    lines()

    assert handler.lambda_handler(_sqs(gen1), FakeContext()) == {"batchItemFailures": []}
    assert lines()[0]["decision"] == "duplicate"
