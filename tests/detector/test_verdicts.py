"""Verdicts in the detector: history, content sampling, severity and what reaches the bus.

moto for AWS, the fake EBS direct server for ListChangedBlocks and GetSnapshotBlock, whose
blocks are real file contents and their encrypted versions (``testing/blocks.py``).
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
from datetime import timedelta

import pytest

from backup_anomaly import history as history_codec
from backup_anomaly.changed_blocks import BlockSample, CountCheckpoint, SampleState
from backup_anomaly.detector import AnomalyNotDelivered
from backup_anomaly.records import CountProgress, Judgement, Measurement
from backup_anomaly.scoring import Content, HistoryEntry, Observation, Severity
from backup_anomaly.snapshots import VolumeSnapshot
from correlator import events as correlator_events
from testing.moto_fidelity import faithful_moto
from tests.detector.conftest import ACCOUNT, REGION, recent
from tests.detector.daily import DAILY, SAMPLES_MAX, WRITTEN, Volume, received

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_an_encrypted_rewrite_is_critical_and_names_the_snapshot_to_restore(world):
    volume = Volume(world, days=8)
    attacked = set(range(1000, 2200))  # 30 % of the written data
    snapshots = volume.prepare(attacked)
    world.fake.set_contents(snapshots[-1], [(1000, 2200, "encrypted")])
    with faithful_moto():  # targets get the whole event, ``account`` included, as in AWS
        records = volume.back_up()

    measured = [r for r in records if r["decision"] == "measured"]
    assert [r["severity"] for r in measured[:-1]] == ["none"] * 8
    assert measured[-1]["severity"] == "critical"
    events = received(world, volume.queue)
    anomalies = [e for e in events if e["detail-type"] == "Backup Anomaly Detected"]
    (anomaly,) = anomalies
    detail = anomaly["detail"]
    assert detail["severity"] == "critical"
    assert detail["snapshotId"] == volume.snapshots[-1]
    assert detail["lastCleanSnapshotId"] == volume.snapshots[-2]
    assert detail["writtenBlocks"] == WRITTEN
    assert detail["content"]["incompressibleAfter"] > 0.9 * detail["content"]["pages"]
    assert detail["content"]["incompressibleBefore"] == 0
    # The larger sample: the size alone was already unusual.
    assert detail["content"]["sampledBlocks"] == SAMPLES_MAX
    assert detail["expected"]["unit"] == "share"
    assert detail["expected"]["high"] < 0.3
    assert any("noise" in reason for reason in detail["verdict"]["reasons"])
    # The correlator reads the event as the detector wrote it: no field lost on the way.
    seen = correlator_events.classify(anomaly, anomaly["source"])
    assert seen.verdict.severity.value == "critical"
    assert seen.verdict.multiple == detail["verdict"]["multipleOfUsual"] > 5
    assert seen.verdict.expected_high == detail["expected"]["high"]
    assert seen.verdict.share == detail["verdict"]["share"]
    assert seen.content.incompressible_after == detail["content"]["incompressibleAfter"]
    assert seen.written_blocks == WRITTEN
    assert seen.last_clean_snapshot_id == volume.snapshots[-2]
    measured_events = [e for e in events if e["detail-type"] == "Backup Change Measured"]
    assert len(measured_events) == 9
    assert measured_events[-1]["detail"]["measurementId"] == detail["measurementId"]
    # Ordinary days sample the usual 32 blocks.
    assert {e["detail"]["content"]["sampledBlocks"] for e in measured_events[:-1]} == {32}
    # The history holds every measurement with the severity published.
    state = world.store.get(world.volume_arn(volume.volume_id))
    assert [e.severity for e in state.history] == [Severity.NONE] * 8 + [Severity.CRITICAL]
    assert state.history[-1].observation.content is not None


def test_a_large_ordinary_rewrite_is_no_attack(world):
    volume = Volume(world, days=8)
    records = volume.run(last=set(range(1000, 2200)))  # 30 %, still text after

    last = [r for r in records if r["decision"] == "measured"][-1]
    assert not Severity(last["severity"]).at_least(Severity.HIGH)
    (measured,) = volume.events("Backup Change Measured")[-1:]
    assert any("ordinary" in reason for reason in measured["detail"]["verdict"]["reasons"])


def test_low_and_slow_encryption_is_flagged_by_content_within_three_backups(world):
    volume = Volume(world, days=10)
    # Then 3 days each encrypting another 2 % of the data: by size, ordinary days.
    slow = [set(range(2400 + DAILY * d, 2400 + DAILY * (d + 1))) for d in range(3)]
    snapshots = volume.prepare(*slow)
    for d in range(3):
        world.fake.set_contents(snapshots[-3 + d], [(2400, 2400 + DAILY * (d + 1), "encrypted")])
    records = volume.back_up()

    severities = [Severity(r["severity"]) for r in records if r["decision"] == "measured"]
    assert all(s is Severity.NONE for s in severities[:10])
    assert any(s.at_least(Severity.HIGH) for s in severities[10:])


def test_sampling_off_reads_no_block_and_judges_on_size(world):
    volume = Volume(world, days=3, content_sampling=False)
    world.fake.reset_stats()

    volume.run(last=set(range(1000, 2200)))

    assert world.fake.stats().get("get_block_requests", 0) == 0
    last = volume.events("Backup Change Measured")[-1]["detail"]
    assert last["content"] is None
    assert last["contentNote"] == "content sampling is off"
    assert any("size alone" in r for r in last["verdict"]["reasons"])


def test_a_key_the_detector_may_not_use_leaves_the_verdict_on_size(world, lines):
    volume = Volume(world, days=2)
    snapshots = volume.prepare(set(range(3000, 3080)))
    volume.back_up(snapshots[:-1])
    world.fake.inject_error(
        400,
        "AccessDeniedException",
        message="User is not authorized to perform kms:Decrypt",
        operation="GetSnapshotBlock",
    )
    lines()
    (record,) = volume.back_up(snapshots[-1:])

    assert record["decision"] == "measured"
    assert "AccessDeniedException" in record["content_note"]
    detail = volume.events("Backup Change Measured")[-1]["detail"]
    assert detail["content"] is None and "AccessDeniedException" in detail["contentNote"]
    assert detail["verdict"]["severity"] == "none"
    assert [d["Value"] for d in world.metric_puts("ContentSamplingFailures")] == [1]


def test_an_anomaly_the_bus_refuses_stays_pending_until_delivered(world):
    volume = Volume(world, days=4)
    snapshots = volume.prepare(set(range(1000, 2200)))
    world.fake.set_contents(snapshots[-1], [(1000, 2200, "encrypted")])
    volume.back_up(snapshots[:-1])
    received(world, volume.queue)
    event = world.ebs_event(snapshots[-1], volume.volume_id, recent(30))
    good_events = volume.detector.clients.events

    class Refusing:
        meta = good_events.meta

        def put_events(self, Entries):  # noqa: N803 - boto3's parameter name
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [{"ErrorCode": "AccessDeniedException"}] * len(Entries),
            }

    volume.detector.clients.events = Refusing()
    with pytest.raises(AnomalyNotDelivered):
        volume.detector.handle(event)
    state = world.store.get(world.volume_arn(volume.volume_id))
    assert state.snapshot_id == volume.snapshots[-1]
    assert state.pending is not None and state.pending.judgement.severity is Severity.CRITICAL

    volume.detector.clients.events = good_events
    (record,) = volume.detector.handle(event)  # SQS delivers the event again

    assert record["decision"] == "duplicate"
    kinds = [e["detail-type"] for e in received(world, volume.queue)]
    assert kinds == ["Backup Change Measured", "Backup Anomaly Detected"]
    assert world.store.get(world.volume_arn(volume.volume_id)).pending is None


def test_history_is_bounded_by_the_limit(world):
    volume = Volume(world, days=6, history_limit=3)
    volume.run()

    state = world.store.get(world.volume_arn(volume.volume_id))
    assert len(state.history) == 3
    assert state.history[-1].observation.snapshot_id == volume.snapshots[-1]


def _token(rng: random.Random) -> str:
    # Block tokens AWS hands out are about 60 base64 characters; take more.
    return "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(96))


def test_the_item_stays_under_dynamodb_limit_at_every_maximum(world):
    """History at its maximum length beside the largest saved count and a pending verdict."""
    from backup_anomaly import contract

    rng = random.Random(7)
    arn = world.volume_arn("vol-0123456789abcdef0")
    limit = int(contract.setting("history_limit").maximum or 0)
    samples = int(contract.setting("content_samples_max").maximum or 0)
    workers = int(contract.setting("ebs_count_workers").maximum or 0)
    start = recent(60 * 24 * 400)
    entries = tuple(
        HistoryEntry(
            Observation(
                time=start + timedelta(days=i, microseconds=123456),
                changed_blocks=2_000_000 + i,
                written_blocks=32_000_000,
                content=Content(1024, 131072, 131071, 131072),
                previous_time=start + timedelta(days=i - 1, microseconds=654321),
                snapshot_id=f"snap-{i:017x}",
            ),
            Severity.CRITICAL,
        )
        for i in range(limit)
    )
    target = VolumeSnapshot(
        arn,
        "vol-0123456789abcdef0",
        "snap-0fffffffffffffff0",
        recent(1),
        "x" * 64,
        "EC2",
        ACCOUNT,
        REGION,
        65536,
        65536 * 2**30,
    )
    sample = SampleState(
        samples,
        10**9,
        0.999,
        10**9 + 5,
        tuple(BlockSample(10**8 + i, _token(rng), _token(rng)) for i in range(samples)),
    )
    checkpoint = CountCheckpoint(
        "snap-0aaaaaaaaaaaaaaa0",
        target.snapshot_id,
        10**9,
        10**6,
        tuple((10**8 * i, 10**8 * (i + 1), _token(rng) * 3) for i in range(workers)),
        65536,
        524288,
        sample,
    )
    verdict = {
        "severity": "critical",
        "score": 50.0,
        "reasons": ["x" * 300] * 8,
        "expected": {"low": 0.1, "median": 0.2, "high": 0.3, "unit": "share"},
    }
    pending = Measurement(
        target,
        "snap-0aaaaaaaaaaaaaaa0",
        10**9,
        65536,
        524288,
        recent(0),
        written_blocks=32_000_000,
        previous_completion_time=recent(60 * 24),
        content=Content(1024, 131072, 1, 131072),
        content_note="n" * 200,
        judgement=Judgement(Severity.CRITICAL, verdict, "snap-0bbbbbbbbbbbbbbb0", recent(2880)),
    )
    store = world.store
    store.move_baseline(
        arn,
        volume_id=target.volume_id,
        snapshot_id="snap-0aaaaaaaaaaaaaaa0",
        completion_time=recent(60 * 24),
        base_blocks=32_000_000,
        expected_version=None,
        pending=pending,
        volume_size_gib=65536,
        history=entries,
    )
    state = store.get(arn)
    store.save_progress(
        arn,
        expected_version=state.version,
        progress=CountProgress(target, state.snapshot_id, 99, checkpoint.to_json(), recent(0)),
    )
    store.record_alarms(arn, fingerprint="f" * 64, base_blocks=32_000_000, verified_at=recent(0))

    item = world.dynamodb.get_item(TableName=store.table_name, Key={"VolumeArn": {"S": arn}})
    size = sum(
        len(name.encode()) + len(next(iter(value.values())).encode())
        for name, value in item["Item"].items()
    )
    # DynamoDB's limit is 400 KB including attribute names; keep a quarter in reserve.
    assert size < 300_000, size
    again = store.get(arn)
    assert again.history == entries
    assert CountCheckpoint.from_json(again.progress.checkpoint) == checkpoint
    assert history_codec.from_json(history_codec.to_json(entries)) == entries


def test_the_backtest_replays_the_forwarded_events_to_the_same_verdicts(world, tmp_path):
    """What the Lambda published, replayed offline, is judged the same."""
    volume = Volume(world, days=12)
    slow = [set(range(2400 + DAILY * d, 2400 + DAILY * (d + 1))) for d in range(3)]
    burst = set(range(1000, 2000))
    snapshots = volume.prepare(*slow, burst)
    for d in range(3):
        world.fake.set_contents(snapshots[-4 + d], [(2400, 2400 + DAILY * (d + 1), "intermittent")])
    world.fake.set_contents(snapshots[-1], [(1000, 2000, "encrypted")])
    volume.back_up()
    total = len(snapshots)
    published = volume.events("Backup Change Measured")
    # As a SIEM holds them: shuffled, one repeated.
    lines = [json.dumps(e) for e in published] + [json.dumps(published[3])]
    random.Random(3).shuffle(lines)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    verdicts = tmp_path / "verdicts.jsonl"

    done = subprocess.run(
        [
            sys.executable,
            "build.py",
            "backtest",
            "--events",
            str(events),
            "--verdicts",
            str(verdicts),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    replayed = {v["measurementId"]: v for v in map(json.loads, verdicts.read_text().splitlines())}
    assert len(replayed) == len(published) == total - 1
    for event in published:
        detail = event["detail"]
        again = replayed[detail["measurementId"]]
        assert again["severity"] == detail["verdict"]["severity"]
        assert again["score"] == detail["verdict"]["score"]
        assert again["reasons"] == detail["verdict"]["reasons"]
    assert {v["severity"] for v in replayed.values()} - {"none"}, "no anomaly was replayed"
