"""Functional tests of the measurement flow: moto for AWS, the fake EBS server for counting."""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import timedelta

import boto3
import pytest

from tests.detector.conftest import NAMESPACE, REGION, client_error, recent


def _decisions(records):
    return [record["decision"] for record in records]


def test_first_sighting_sets_baseline_and_creates_alarms(world):
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])
    detector = world.detector()

    records = detector.handle(world.ebs_event(s1, vol, recent(10)))

    assert _decisions(records) == ["baseline_created"]
    state = world.store.get(world.volume_arn(vol))
    assert (state.snapshot_id, state.volume_size_gib, state.base_blocks) == (s1, 1, 2048)
    assert world.metric_puts() == []
    assert set(world.alarms()) == {f"backup-anomaly-{vol}", f"backup-anomaly-{vol}-ceiling"}


def test_second_snapshot_is_measured_at_completion_time(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {1, 2, 3, 900}])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    completion = recent(10)

    records = detector.handle(world.ebs_event(s2, vol, completion))

    assert _decisions(records) == ["measured"]
    assert records[0]["changed_blocks"] == 4
    assert records[0]["snapshots"] == {"previous": s1, "current": s2}
    (datum,) = world.metric_puts()
    assert datum["Value"] == 4
    assert datum["Timestamp"] == completion
    assert datum["Dimensions"] == [{"Name": "VolumeId", "Value": vol}]
    assert datum["Unit"] == "Count"
    state = world.store.get(world.volume_arn(vol))
    assert (state.snapshot_id, state.pending) == (s2, None)


def test_duplicate_is_a_noop(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {5}])
    detector = world.detector()
    event = world.ebs_event(s2, vol, recent(10))
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    detector.handle(event)

    records = detector.handle(event)

    assert _decisions(records) == ["duplicate"]
    assert len(world.metric_puts()) == 1
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2


def test_older_event_never_moves_the_baseline_back(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1}, {2, 3}])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(30)))
    detector.handle(world.ebs_event(s3, vol, recent(10)))

    records = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert _decisions(records) == ["stale"]
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s3
    # The late snapshot's change is inside the s1 -> s3 measurement.
    assert [d["Value"] for d in world.metric_puts()] == [3]


def test_unrelated_snapshots_reset_the_baseline(world, lines):
    vol = world.volume()
    s1 = world.snapshot(vol)
    s2 = world.snapshot(vol)
    world.fake.add_snapshot(s1, 1)
    world.fake.add_snapshot(s2, 1)
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    lines()

    records = detector.handle(world.ebs_event(s2, vol, recent(10)))

    assert _decisions(records) == ["baseline_reset"]
    assert records[0]["reason"] == "unrelated_snapshots"
    assert [line["decision"] for line in lines()] == ["baseline_reset"]
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2
    (reset,) = world.metric_puts("BaselineResets")
    assert "Dimensions" not in reset and reset["Value"] == 1
    assert world.metric_puts() == []


def test_deleted_previous_snapshot_resets_the_baseline(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1}, {2}])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(30)))
    world.fake.delete_snapshot(s1)

    records = detector.handle(world.ebs_event(s2, vol, recent(20)))
    after = detector.handle(world.ebs_event(s3, vol, recent(10)))

    assert [r["reason"] for r in records] == ["previous_snapshot_missing"]
    assert _decisions(after) == ["measured"]  # the volume is not broken
    assert [d["Value"] for d in world.metric_puts()] == [1]


def test_every_page_is_counted_including_empty_pages_with_a_token(world):
    world.fake.scan_window = 3000  # short and empty pages that still carry a NextToken
    vol = world.volume(16)
    changed = set(range(100, 12100)) | set(range(30000, 30010))
    s1, s2 = world.lineage(vol, [set(), changed], size_gib=16)
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(20)))

    records = detector.handle(world.ebs_event(s2, vol, recent(10)))

    assert records[0]["changed_blocks"] == len(changed)
    assert records[0]["api_calls"] >= 11  # 16 GiB / 3000-block window
    assert world.fake.stats()["pages"] >= 11


def test_throttling_and_server_errors_are_retried(world):
    world.fake.set_quota(50, burst=1)
    world.fake.scan_window = 400
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), set(range(0, 2048, 7))])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    world.fake.inject_faults(2, status=503)

    records = detector.handle(world.ebs_event(s2, vol, recent(10)))

    assert records[0]["changed_blocks"] == len(range(0, 2048, 7))
    stats = world.fake.stats()
    assert stats.get("faults", 0) >= 2


def test_other_errors_raise_and_leave_the_state(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {1}])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    world.ebs.fail_next["list_changed_blocks"] = client_error("AccessDeniedException")

    with pytest.raises(Exception, match="AccessDenied"):
        detector.handle(world.ebs_event(s2, vol, recent(10)))

    assert world.store.get(world.volume_arn(vol)).snapshot_id == s1
    assert world.metric_puts() == []


def test_crash_after_moving_the_baseline_does_not_lose_the_measurement(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1, 2}, {3}])
    detector = world.detector()
    completion = recent(20)
    event = world.ebs_event(s2, vol, completion)
    detector.handle(world.ebs_event(s1, vol, recent(30)))
    world.cloudwatch.fail_next["put_metric_data"] = client_error("InternalFailure", status=500)

    with pytest.raises(Exception, match="InternalFailure"):
        detector.handle(event)
    assert world.store.get(world.volume_arn(vol)).pending is not None

    retry = detector.handle(event)  # SQS redelivers the same event

    assert _decisions(retry) == ["duplicate"]
    assert world.store.get(world.volume_arn(vol)).pending is None
    assert [(d["Value"], d["Timestamp"]) for d in world.metric_puts()] == [(2, completion)]
    detector.handle(world.ebs_event(s3, vol, recent(10)))
    assert [d["Value"] for d in world.metric_puts()] == [2, 1]


def test_pending_measurement_is_published_by_the_next_event(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1, 2}, {3}])
    detector = world.detector()
    detector.handle(world.ebs_event(s1, vol, recent(30)))
    world.cloudwatch.fail_next["put_metric_data"] = client_error("InternalFailure", status=500)
    with pytest.raises(Exception, match="InternalFailure"):
        detector.handle(world.ebs_event(s2, vol, recent(20)))

    detector.handle(world.ebs_event(s3, vol, recent(10)))  # the s2 retry never comes

    assert [d["Value"] for d in world.metric_puts()] == [2, 1]


def test_concurrent_invocations_cannot_both_advance(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1}, {2, 3}])
    slow = world.detector()
    fast = world.detector()
    slow.handle(world.ebs_event(s1, vol, recent(30)))
    event_s3 = world.ebs_event(s3, vol, recent(10))
    from backup_anomaly.changed_blocks import count_changed_blocks

    def count_while_another_finishes(*args, **kwargs):
        result = count_changed_blocks(*args, **kwargs)
        fast.handle(event_s3)  # a concurrent invocation wins the race meanwhile
        return result

    slow.count = count_while_another_finishes
    records = slow.handle(world.ebs_event(s2, vol, recent(20)))

    assert _decisions(records) == ["stale"]
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s3
    assert [d["Value"] for d in world.metric_puts()] == [3]


def test_concurrent_older_winner_makes_the_loser_recount(world):
    vol = world.volume()
    s1, s2, s3 = world.lineage(vol, [set(), {1}, {2, 3}])
    slow = world.detector()
    fast = world.detector()
    slow.handle(world.ebs_event(s1, vol, recent(30)))
    event_s2 = world.ebs_event(s2, vol, recent(20))
    from backup_anomaly.changed_blocks import count_changed_blocks

    raced = []

    def count_while_another_finishes(*args, **kwargs):
        result = count_changed_blocks(*args, **kwargs)
        if not raced:
            raced.append(fast.handle(event_s2))
        return result

    slow.count = count_while_another_finishes
    records = slow.handle(world.ebs_event(s3, vol, recent(10)))

    assert _decisions(records) == ["measured"]
    assert records[0]["snapshots"] == {"previous": s2, "current": s3}
    assert [d["Value"] for d in world.metric_puts()] == [1, 2]


def test_measurement_older_than_two_weeks_still_moves_the_baseline(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {1}])
    detector = world.detector()
    old = recent() - timedelta(days=15)
    detector.handle(world.ebs_event(s1, vol, old - timedelta(days=1)))

    records = detector.handle(world.ebs_event(s2, vol, old))

    assert records[0]["decision"] == "measured" and records[0]["metric"] == "too_old"
    assert world.metric_puts() == []
    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2


def test_ceiling_alarm_threshold_is_a_percent_of_the_volume(world):
    vol = world.volume(size_gib=3)
    (s1,) = world.lineage(vol, [set()], size_gib=3)
    world.detector(ceiling_percent=25.0).handle(world.ebs_event(s1, vol, recent(10)))

    ceiling = world.alarms()[f"backup-anomaly-{vol}-ceiling"]

    assert ceiling["Threshold"] == math.ceil(3 * 2048 * 0.25)
    assert ceiling["Namespace"] == NAMESPACE


def _moto_snapshot(ebs, blocks: dict[int, bytes]) -> str:
    """An EBS direct API snapshot in moto holding real 512 KiB blocks."""
    snapshot_id = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    for index, fill in blocks.items():
        data = fill * 524288
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=data,
            DataLength=len(data),
            Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
            ChecksumAlgorithm="SHA256",
        )
    ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(blocks))
    return snapshot_id


def test_moto_ebs_direct_snapshots_with_real_blocks(world):
    ebs = boto3.client("ebs", region_name=REGION)  # moto's EBS direct API, not the fake
    before = {index: b"a" for index in range(12)}
    after = {**before, 2: b"b", 5: b"c", 11: b"d"}
    s1, s2 = _moto_snapshot(ebs, before), _moto_snapshot(ebs, after)
    vol = world.ec2.describe_snapshots(SnapshotIds=[s1])["Snapshots"][0]["VolumeId"]

    class SameVolumeEc2:
        """moto's StartSnapshot makes a new volume per snapshot; AWS keeps one lineage."""

        meta = world.ec2.meta

        def describe_snapshots(self, SnapshotIds):  # noqa: N803 - boto3's parameter name
            response = world.ec2.describe_snapshots(SnapshotIds=SnapshotIds)
            for snapshot in response["Snapshots"]:
                snapshot["VolumeId"] = vol
            return response

    detector = world.detector(world.clients(ebs=ebs, ec2=SameVolumeEc2()))
    detector.handle(world.ebs_event(s1, vol, recent(20)))

    (record,) = detector.handle(world.ebs_event(s2, vol, recent(10)))

    assert (record["decision"], record["changed_blocks"]) == ("measured", 3)
    assert [d["Value"] for d in world.metric_puts()] == [3]
