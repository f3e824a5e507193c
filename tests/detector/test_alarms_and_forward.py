"""Alarms (contents, healing, when they are re-put) and forwarding to the central bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backup_anomaly import handler
from backup_anomaly.alarms import VERIFY_INTERVAL, AlarmManager
from backup_anomaly.settings import load as settings_load
from tests.detector.conftest import ACCOUNT, NAMESPACE, REGION, client_error, recent


def _measured_volume(world, detector=None, writes=None):
    vol = world.volume()
    snaps = world.lineage(vol, writes or [set(), {1, 2}, {3}])
    detector = detector or world.detector()
    detector.handle(world.ebs_event(snaps[0], vol, recent(30)))
    return vol, snaps, detector


def test_anomaly_alarm_configuration(world):
    vol, _, _ = _measured_volume(
        world,
        world.detector(band_width=3.0, alarm_period_seconds=3600, evaluation_periods=2),
    )

    alarm = world.alarms()[f"backup-anomaly-{vol}"]

    m1, ad1 = alarm["Metrics"]
    assert m1["Id"] == "m1" and m1["ReturnData"] is True
    assert m1["MetricStat"] == {
        "Metric": {
            "Namespace": NAMESPACE,
            "MetricName": "ChangedBlocks",
            "Dimensions": [{"Name": "VolumeId", "Value": vol}],
        },
        "Period": 3600,
        "Stat": "Maximum",
    }
    assert ad1["Expression"] == "ANOMALY_DETECTION_BAND(m1, 3)"
    assert alarm["ThresholdMetricId"] == "ad1"
    assert alarm["ComparisonOperator"] == "GreaterThanUpperThreshold"
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["TreatMissingData"] == "ignore"
    assert alarm["ActionsEnabled"] is True
    assert vol in alarm["AlarmDescription"]


def test_ceiling_alarm_configuration(world):
    vol, _, _ = _measured_volume(world, world.detector(alarm_actions_enabled=False))

    alarm = world.alarms()[f"backup-anomaly-{vol}-ceiling"]

    assert alarm["MetricName"] == "ChangedBlocks" and alarm["Statistic"] == "Maximum"
    assert alarm["Dimensions"] == [{"Name": "VolumeId", "Value": vol}]
    assert alarm["Threshold"] == 1024  # 50 % of a 1 GiB volume's 2048 blocks
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Period"] == 86400
    assert alarm["ActionsEnabled"] is False
    assert "50 %" in alarm["AlarmDescription"]


def test_alarms_are_not_put_or_described_on_every_event(world):
    vol, (s1, s2, s3), detector = _measured_volume(world)
    before = [m for m, _ in world.cloudwatch.calls if m in ("put_metric_alarm", "describe_alarms")]

    detector.handle(world.ebs_event(s2, vol, recent(20)))
    detector.handle(world.ebs_event(s3, vol, recent(10)))
    detector.handle(world.ebs_event(s3, vol, recent(10)))

    after = [m for m, _ in world.cloudwatch.calls if m in ("put_metric_alarm", "describe_alarms")]
    assert before == ["put_metric_alarm", "put_metric_alarm"]
    assert after == before


def test_configuration_change_re_puts_the_alarms(world):
    vol, (s1, s2, _), _ = _measured_volume(world)

    world.detector(band_width=4.0).handle(world.ebs_event(s2, vol, recent(20)))

    assert world.alarms()[f"backup-anomaly-{vol}"]["Metrics"][1]["Expression"] == (
        "ANOMALY_DETECTION_BAND(m1, 4)"
    )


def test_disabling_the_ceiling_deletes_it(world):
    vol, (s1, s2, _), _ = _measured_volume(world)

    world.detector(ceiling_percent=0.0).handle(world.ebs_event(s2, vol, recent(20)))

    assert set(world.alarms()) == {f"backup-anomaly-{vol}"}


def _manager(world, **overrides):
    return AlarmManager(world.settings(**overrides), world.cloudwatch, world.store)


def test_deleted_alarm_is_healed_at_the_next_verification(world):
    vol, _, _ = _measured_volume(world)
    arn = world.volume_arn(vol)
    world.cloudwatch._client.delete_alarms(AlarmNames=[f"backup-anomaly-{vol}"])
    manager = _manager(world)

    soon = manager.ensure(world.store.get(arn), arn, vol, 2048, now=recent() + timedelta(hours=1))
    later = manager.ensure(
        world.store.get(arn), arn, vol, 2048, now=recent() + VERIFY_INTERVAL + timedelta(minutes=1)
    )

    assert soon.action == "unchanged"
    assert later.action == "healed"
    assert f"backup-anomaly-{vol}" in world.alarms()
    assert [d["Value"] for d in world.metric_puts("AlarmsHealed")] == [1]


def test_edited_alarm_is_healed_and_intact_one_only_verified(world):
    vol, _, _ = _measured_volume(world)
    arn = world.volume_arn(vol)
    manager = _manager(world)
    when = recent() + VERIFY_INTERVAL + timedelta(minutes=1)

    intact = manager.ensure(world.store.get(arn), arn, vol, 2048, now=when)
    ceiling = world.alarms()[f"backup-anomaly-{vol}-ceiling"]
    world.cloudwatch._client.put_metric_alarm(
        AlarmName=ceiling["AlarmName"],
        Namespace=NAMESPACE,
        MetricName="ChangedBlocks",
        Dimensions=ceiling["Dimensions"],
        Statistic="Maximum",
        Period=86400,
        EvaluationPeriods=1,
        Threshold=10**9,
        ComparisonOperator="GreaterThanThreshold",
    )
    edited = manager.ensure(
        world.store.get(arn), arn, vol, 2048, now=when + VERIFY_INTERVAL + timedelta(minutes=1)
    )

    assert intact.action == "verified"
    assert edited.action == "healed"
    assert world.alarms()[f"backup-anomaly-{vol}-ceiling"]["Threshold"] == 1024


def test_base_moving_more_than_ten_percent_re_puts_the_ceiling(world):
    vol, _, _ = _measured_volume(world)
    arn = world.volume_arn(vol)
    manager = _manager(world)

    small = manager.ensure(world.store.get(arn), arn, vol, 2048 + 150)
    large = manager.ensure(world.store.get(arn), arn, vol, 4096)

    assert small.action == "unchanged"
    assert large.action == "rebased"
    assert world.alarms()[f"backup-anomaly-{vol}-ceiling"]["Threshold"] == 2048


def test_full_snapshot_size_is_the_ceiling_base(world):
    vol = world.volume(size_gib=100)
    (s1,) = world.lineage(vol, [set()], size_gib=100)

    class Ec2WithFullSize:
        meta = world.ec2.meta

        def describe_snapshots(self, SnapshotIds):  # noqa: N803 - boto3's parameter name
            response = world.ec2.describe_snapshots(SnapshotIds=SnapshotIds)
            for snap in response["Snapshots"]:
                snap["FullSnapshotSizeInBytes"] = 10 * 2**30  # 10 GiB ever written
            return response

    world.detector(world.clients(ec2=Ec2WithFullSize())).handle(
        world.ebs_event(s1, vol, recent(10))
    )

    assert world.alarms()[f"backup-anomaly-{vol}-ceiling"]["Threshold"] == 10 * 2048 / 2


# -- forwarding ------------------------------------------------------------------------------


def _central_bus(world):
    """A central bus whose rule sends measured events to an audit queue (as the central stack)."""
    bus_arn = world.events._client.create_event_bus(Name="central")["EventBusArn"]
    queue_url = world.sqs._client.create_queue(QueueName="audit")["QueueUrl"]
    queue_arn = world.sqs._client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    world.events._client.put_rule(
        Name="measured",
        EventBusName="central",
        EventPattern=json.dumps(
            {"source": ["backup-anomaly-detection"], "detail-type": ["Backup Change Measured"]}
        ),
    )
    world.events._client.put_targets(
        Rule="measured", EventBusName="central", Targets=[{"Id": "audit", "Arn": queue_arn}]
    )
    return bus_arn, queue_url


def test_every_measurement_reaches_the_central_bus(world):
    bus_arn, queue_url = _central_bus(world)
    detector = world.detector(central_bus_arn=bus_arn)
    vol, (s1, s2, s3), _ = _measured_volume(world, detector)
    completion = recent(20)

    records = detector.handle(world.ebs_event(s2, vol, completion, job_id="job-42"))

    assert records[0]["forward"] == "sent"
    messages = world.sqs._client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    (event,) = [json.loads(m["Body"]) for m in messages]
    assert event["detail-type"] == "Backup Change Measured"
    assert event["source"] == "backup-anomaly-detection"
    detail = event["detail"]
    verdict = detail.pop("verdict")
    assert verdict["severity"] in ("none", "low", "medium", "high", "critical")
    assert isinstance(verdict["score"], float) and verdict["reasons"]
    assert detail | {"measuredAt": None} == {
        "measurementId": f"{world.volume_arn(vol)}/{s1}/{s2}",
        "account": ACCOUNT,
        "region": REGION,
        "volumeId": vol,
        "volumeArn": world.volume_arn(vol),
        "previousSnapshotId": s1,
        "snapshotId": s2,
        "changedBlocks": 2,
        "changedBytes": 2 * 524288,
        "percentOfVolume": round(200 / 2048, 4),
        "volumeSizeGiB": 1,
        "backupJobId": "job-42",
        "resourceType": "EBS",
        "completionTime": completion.isoformat(),
        "measuredAt": None,
        "writtenBlocks": None,  # moto's DescribeSnapshots has no FullSnapshotSizeInBytes
        "previousCompletionTime": recent_iso(detail["previousCompletionTime"]),
        # Both changed blocks were sampled, read from both snapshots: 128 pages each.
        "content": {
            "sampledBlocks": 2,
            "pages": 256,
            "incompressibleBefore": 0,
            "incompressibleAfter": 0,
        },
        "contentNote": None,
        "lateForAlarms": False,
        # Looked up for anomalies only.
        "volumeName": None,
        "instanceId": None,
        "instanceName": None,
    }


def recent_iso(value: str) -> str:
    """``value`` if it is a timezone-aware ISO time within the last hour."""
    parsed = datetime.fromisoformat(value)
    assert datetime.now(UTC) - parsed < timedelta(hours=1)
    return value


def test_unset_bus_skips_forwarding(world):
    vol, (s1, s2, _), detector = _measured_volume(world)

    records = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert records[0]["forward"] == "disabled"
    assert world.events.calls == []


def test_forward_failure_keeps_the_measurement(world, lines):
    missing = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/missing"
    vol, (s1, s2, _), detector = _measured_volume(world, world.detector(central_bus_arn=missing))
    lines()

    records = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert records[0]["decision"] == "measured"
    assert records[0]["forward"] == "failed"
    assert "ResourceNotFound" in lines()[0]["forward_error"]
    assert [d["Value"] for d in world.metric_puts()] == [2]
    assert [d["Value"] for d in world.metric_puts("ForwardFailures")] == [1]
    assert world.store.get(world.volume_arn(vol)).pending is None


def test_forward_entry_failure_in_the_response_is_a_failure(world):
    bus_arn, _ = _central_bus(world)
    vol, (s1, s2, _), detector = _measured_volume(world, world.detector(central_bus_arn=bus_arn))

    class FailingEntries:
        meta = world.events.meta

        def put_events(self, Entries):  # noqa: N803 - boto3's parameter name
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
            }

    detector.clients.events = FailingEntries()
    records = detector.handle(world.ebs_event(s2, vol, recent(20)))

    assert records[0]["forward"] == "failed"
    assert [d["Value"] for d in world.metric_puts()] == [2]


def test_alarm_put_failure_is_retried(world):
    vol = world.volume()
    (s1,) = world.lineage(vol, [set()])
    detector = world.detector()
    event = world.ebs_event(s1, vol, recent(10))
    world.cloudwatch.fail_next["put_metric_alarm"] = client_error("Throttling", status=400)

    try:
        detector.handle(event)
    except Exception:  # noqa: BLE001 - the event is retried by SQS
        pass
    assert world.alarms() == {}

    (record,) = detector.handle(event)

    assert record["decision"] == "duplicate" and record["alarms"] == "created"
    assert len(world.alarms()) == 2


@pytest.mark.parametrize("bus_region", ["eu-west-1", "us-east-1"])
def test_events_client_is_in_the_central_bus_region(handler_env, bus_region):
    # PutEvents goes to the regional endpoint of the client; a bus ARN of another region is
    # refused there ("Cross-region API call is not allowed"), so every member region but the
    # central one would fail to forward any measurement.
    handler_env.setenv(
        "CENTRAL_BUS_ARN", f"arn:aws:events:{bus_region}:210987654321:event-bus/central"
    )
    clients = handler.build_clients(settings_load())

    assert clients.events.meta.region_name == bus_region
    assert clients.cloudwatch.meta.region_name == "us-east-1"


def test_the_handler_builds_every_client_the_detector_can_call(handler_env):
    # Security Hub's field has a default (None): a lazy client found on the class would be
    # None in Lambda, and every high verdict with findings on would fail to import.
    from backup_anomaly.detector import Clients

    clients = handler.build_clients(settings_load())

    for name in Clients.__dataclass_fields__:
        client = getattr(clients, name)
        assert client is not None and client.meta.service_model.service_name == name, name
    assert clients.securityhub is clients.securityhub  # built once


# -- the per-volume alarms switched off (the product default) --------------------------


def test_with_alarms_off_no_alarm_is_put_or_described(world):
    vol, snaps, detector = _measured_volume(world, world.detector(cloudwatch_alarms=False))
    detector.handle(world.ebs_event(snaps[1], vol, recent(20)))
    calls = [m for m, _ in world.cloudwatch.calls]
    assert "put_metric_alarm" not in calls and "describe_alarms" not in calls
    assert world.alarms() == {}
    assert world.metric_puts()  # the ChangedBlocks metric stays, for dashboards


def test_switching_alarms_off_deletes_a_volumes_alarms_once(world):
    vol, snaps, _ = _measured_volume(world)
    assert set(world.alarms()) == {f"backup-anomaly-{vol}", f"backup-anomaly-{vol}-ceiling"}
    off = world.detector(cloudwatch_alarms=False)
    (record,) = off.handle(world.ebs_event(snaps[1], vol, recent(20)))
    assert record["alarms"] == "deleted"
    assert world.alarms() == {}
    world.cloudwatch.calls.clear()
    (again,) = off.handle(world.ebs_event(snaps[1], vol, recent(20)))
    assert again["alarms"] == "disabled"
    assert [m for m, _ in world.cloudwatch.calls if m != "put_metric_data"] == []
