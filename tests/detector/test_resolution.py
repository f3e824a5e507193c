"""Snapshot resolution (EBS, EC2 AMIs, the DescribeBackupJob fallback) and the SQS handler."""

from __future__ import annotations

import json

import pytest

from backup_anomaly import handler
from tests.detector.conftest import REGION, FakeContext, client_error, load_event, recent


class StubBackup:
    """``backup:DescribeBackupJob`` (moto does not implement it)."""

    def __init__(self, recovery_point_arn=None, error=None):
        self.recovery_point_arn = recovery_point_arn
        self.error = error
        self.calls = []

    def describe_backup_job(self, BackupJobId):  # noqa: N803 - boto3's parameter name
        self.calls.append(BackupJobId)
        if self.error:
            raise self.error
        return {"BackupJobId": BackupJobId, "RecoveryPointArn": self.recovery_point_arn}


class Ec2WithImages:
    """moto's EC2 with ``DescribeImages`` answered from registered block device mappings.

    moto's RegisterImage ignores the mappings it is given (it invents one snapshot), so AMIs
    whose mappings hold our snapshots are served here; everything else is moto.
    """

    def __init__(self, ec2):
        self._ec2 = ec2
        self.meta = ec2.meta
        self.images: dict[str, list[str]] = {}

    def __getattr__(self, name):
        return getattr(self._ec2, name)

    def register(self, snapshots: list[str]) -> str:
        image_id = f"ami-{len(self.images) + 1:017x}"
        self.images[image_id] = snapshots
        return image_id

    def describe_images(self, ImageIds):  # noqa: N803 - boto3's parameter name
        (image_id,) = ImageIds
        if image_id not in self.images:
            raise client_error("InvalidAMIID.NotFound", "DescribeImages")
        mappings = [{"DeviceName": "/dev/xvdz"}]  # an instance-store entry has no Ebs
        mappings += [
            {"DeviceName": f"/dev/sd{chr(ord('a') + i)}", "Ebs": {"SnapshotId": snap}}
            for i, snap in enumerate(self.images[image_id])
        ]
        return {"Images": [{"ImageId": image_id, "BlockDeviceMappings": mappings}]}


def test_ec2_backup_measures_each_volume_separately(world):
    root, data = world.volume(1), world.volume(2)
    r1, r2 = world.lineage(root, [set(), {1, 2}])
    d1, d2 = world.lineage(data, [set(), {7}], size_gib=2)
    ec2 = Ec2WithImages(world.ec2)
    detector = world.detector(world.clients(ec2=ec2))

    first = detector.handle(world.ec2_event(ec2.register([r1, d1]), recent(20)))
    second = detector.handle(world.ec2_event(ec2.register([r2, d2]), recent(10)))

    assert [r["decision"] for r in first] == ["baseline_created", "baseline_created"]
    assert [(r["volume"], r["decision"], r["changed_blocks"]) for r in second] == [
        (root, "measured", 2),
        (data, "measured", 1),
    ]
    puts = {d["Dimensions"][0]["Value"]: d["Value"] for d in world.metric_puts()}
    assert puts == {root: 2, data: 1}
    assert world.store.get(world.volume_arn(data)).snapshot_id == d2
    assert world.alarms()[f"backup-anomaly-{data}-ceiling"]["Threshold"] == 2048


def test_sample_ec2_event_shape_end_to_end(world):
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])
    ec2 = Ec2WithImages(world.ec2)
    event = load_event("backup-job-completed-ec2")
    event["region"] = REGION
    event["resources"] = [f"arn:aws:ec2:{REGION}::image/{ec2.register([s1])}"]
    event["detail"]["completionDate"] = recent(5).isoformat()

    (record,) = world.detector(world.clients(ec2=ec2)).handle(event)

    assert (record["volume"], record["decision"]) == (vol, "baseline_created")
    assert record["account"] == "111122223333"


def test_sample_ebs_event_shape_end_to_end(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {3}])
    event = load_event("backup-job-completed-ebs")
    event["resources"] = [f"arn:aws:ec2:{REGION}::snapshot/{s2}"]
    event["detail"]["resourceArn"] = f"arn:aws:ec2:{REGION}:111122223333:volume/{vol}"
    event["detail"]["completionDate"] = recent(5).isoformat()
    detector = world.detector()
    baseline = dict(
        event,
        resources=[f"arn:aws:ec2:{REGION}::snapshot/{s1}"],
        detail=dict(event["detail"], completionDate=recent(15).isoformat()),
    )
    detector.handle(baseline)

    (record,) = detector.handle(event)

    assert (record["decision"], record["changed_blocks"]) == ("measured", 1)


def test_empty_resources_fall_back_to_describe_backup_job(world):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {3, 4}])
    backup = StubBackup(recovery_point_arn=f"arn:aws:ec2:{REGION}::snapshot/{s2}")
    detector = world.detector(world.clients(backup=backup))
    detector.handle(world.ebs_event(s1, vol, recent(20)))
    event = world.ebs_event(s2, vol, recent(10), job_id="job-fallback")
    event["resources"] = []

    (record,) = detector.handle(event)

    assert backup.calls == ["job-fallback"]
    assert (record["decision"], record["changed_blocks"]) == ("measured", 2)


def test_unknown_backup_job_is_dropped_not_retried(world):
    backup = StubBackup(error=client_error("ResourceNotFoundException"))
    detector = world.detector(world.clients(backup=backup))
    event = world.ebs_event("snap-0123", world.volume(), recent(10))
    del event["resources"]

    (record,) = detector.handle(event)

    assert (record["decision"], record["reason"]) == ("skipped", "recovery_point_gone")


def test_deleted_snapshot_is_dropped_not_retried(world):
    vol = world.volume()
    snap = world.snapshot(vol)
    world.ec2.delete_snapshot(SnapshotId=snap)

    (record,) = world.detector().handle(world.ebs_event(snap, vol, recent(10)))

    assert (record["decision"], record["reason"]) == ("skipped", "recovery_point_gone")
    assert world.store.get(world.volume_arn(vol)) is None


def test_deleted_image_is_dropped_not_retried(world):
    ec2 = Ec2WithImages(world.ec2)

    (record,) = world.detector(world.clients(ec2=ec2)).handle(
        world.ec2_event("ami-0000000000000dead", recent(10))
    )

    assert (record["decision"], record["reason"]) == ("skipped", "recovery_point_gone")


def test_snapshot_of_another_volume_is_refused(world):
    mine, other = world.volume(), world.volume()
    (foreign,) = world.lineage(other, [set()])

    (record,) = world.detector().handle(world.ebs_event(foreign, mine, recent(10)))

    assert record["decision"] == "malformed"
    assert other in record["message"]
    assert world.store.get(world.volume_arn(mine)) is None


def test_ebs_event_with_an_image_recovery_point_is_malformed(world):
    event = world.ebs_event("snap-0123", world.volume(), recent(10))
    event["resources"] = [f"arn:aws:ec2:{REGION}::image/ami-0123"]

    (record,) = world.detector().handle(event)

    assert record["decision"] == "malformed"


# -- the Lambda handler ------------------------------------------------------------------------


def _sqs(*bodies):
    return {
        "Records": [
            {"messageId": f"m{i}", "eventSource": "aws:sqs", "body": json.dumps(body)}
            for i, body in enumerate(bodies)
        ]
    }


def test_sqs_batch_processes_every_record(world, handler_env, lines):
    good, gone = world.volume(), world.volume()
    g1, g2 = world.lineage(good, [set(), {1}])
    lost = world.snapshot(gone)
    world.ec2.delete_snapshot(SnapshotId=lost)
    lines()

    response = handler.lambda_handler(
        _sqs(
            world.ebs_event(g1, good, recent(20)),
            world.ebs_event(g2, good, recent(10)),
            world.ebs_event(lost, gone, recent(10)),
        ),
        FakeContext(),
    )

    assert response == {"batchItemFailures": []}
    assert [line["decision"] for line in lines()] == ["baseline_created", "measured", "skipped"]


def test_sqs_batch_retries_a_record_whose_processing_fails(world, handler_env, lines):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {1}])
    handler_env.setenv("STATE_TABLE", "no-such-table")
    lines()

    response = handler.lambda_handler(
        _sqs(load_event("alarm-state-change"), world.ebs_event(s1, vol, recent(20))),
        FakeContext(),
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    decisions = [line["decision"] for line in lines()]
    assert decisions == ["skipped", "error"]


def test_direct_eventbridge_event_failure_raises(world, handler_env):
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])
    handler_env.setenv("STATE_TABLE", "no-such-table")

    try:
        handler.lambda_handler(world.ebs_event(s1, vol, recent(20)), FakeContext())
    except Exception as exc:  # noqa: BLE001
        assert "ResourceNotFound" in type(exc).__name__ or "ResourceNotFound" in str(exc)
    else:
        raise AssertionError("a failed direct invocation must raise so Lambda retries it")


def test_direct_eventbridge_event_is_measured(world, handler_env):
    vol = world.volume()
    s1, s2 = world.lineage(vol, [set(), {1, 2, 3}])

    handler.lambda_handler(world.ebs_event(s1, vol, recent(20)), FakeContext())
    handler.lambda_handler(world.ebs_event(s2, vol, recent(10)), FakeContext())

    assert world.store.get(world.volume_arn(vol)).snapshot_id == s2
    data = world.cloudwatch._client.get_metric_statistics(
        Namespace="BackupAnomalyDetection",
        MetricName="ChangedBlocks",
        Dimensions=[{"Name": "VolumeId", "Value": vol}],
        StartTime=recent(60),
        EndTime=recent(-5),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in data] == [3]


def test_resolution_error_is_logged_and_retried(world, lines):
    class DeniedEc2:
        meta = world.ec2.meta

        def describe_snapshots(self, SnapshotIds):  # noqa: N803 - boto3's parameter name
            raise client_error("UnauthorizedOperation", "DescribeSnapshots", status=403)

    vol = world.volume()
    snap = world.snapshot(vol)
    detector = world.detector(world.clients(ec2=DeniedEc2()))
    lines()

    with pytest.raises(Exception, match="UnauthorizedOperation"):
        detector.handle(world.ebs_event(snap, vol, recent(10)))

    (line,) = lines()
    assert (line["decision"], line["volume"]) == ("error", vol)


def test_records_left_without_time_are_handed_back(world, handler_env, lines):
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])
    lines()

    response = handler.lambda_handler(_sqs(world.ebs_event(s1, vol, recent(10))), FakeContext(1.0))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    (line,) = lines()
    assert (line["decision"], line["reason"]) == ("deferred", "invocation_deadline")
    assert world.store.get(world.volume_arn(vol)) is None


def test_image_without_any_volume_lineage_is_logged_not_silent(world, lines):
    # Every snapshot of the AMI was made from no volume (vol-ffffffff, a copy): nothing to
    # measure, and that decision still gets its one log line.
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])

    class CopiedSnapshots(Ec2WithImages):
        def describe_snapshots(self, SnapshotIds):  # noqa: N803 - boto3's parameter name
            response = self._ec2.describe_snapshots(SnapshotIds=SnapshotIds)
            for item in response["Snapshots"]:
                item["VolumeId"] = "vol-ffffffff"
            return response

    ec2 = CopiedSnapshots(world.ec2)
    lines()

    records = world.detector(world.clients(ec2=ec2)).handle(
        world.ec2_event(ec2.register([s1]), recent(5))
    )

    logged = lines()
    assert records == logged and len(logged) == 1
    assert (logged[0]["decision"], logged[0]["reason"]) == ("skipped", "no_volume_lineage")
    assert world.store.get(world.volume_arn(vol)) is None
