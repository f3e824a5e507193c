"""Typed records: stored items written by the previous detector still read, details unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backup_anomaly.records import (
    BaselineReset,
    CountProgress,
    Judgement,
    Measurement,
    ResetReason,
    pending_from_json,
    pending_to_json,
)
from backup_anomaly.scoring import Content, Severity
from backup_anomaly.snapshots import VolumeSnapshot

ARN = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc"
# A Pending attribute exactly as the detector before typed records wrote it.
OLD_MEASUREMENT = {
    "kind": "measurement",
    "reason": "",
    "measurementId": f"{ARN}/snap-1/snap-2",
    "account": "123456789012",
    "region": "us-east-1",
    "volumeId": "vol-0abc",
    "volumeArn": ARN,
    "previousSnapshotId": "snap-1",
    "snapshotId": "snap-2",
    "changedBlocks": 300,
    "changedBytes": 300 * 524288,
    "percentOfVolume": 14.6484,
    "volumeSizeGiB": 1,
    "backupJobId": "job-7",
    "resourceType": "EBS",
    "completionTime": "2026-05-02T05:41:05.921000+00:00",
    "measuredAt": "2026-05-02T05:42:00+00:00",
}


def test_a_pending_measurement_of_the_previous_detector_reads_and_keeps_its_detail():
    record = pending_from_json(json.dumps(OLD_MEASUREMENT))
    assert isinstance(record, Measurement)
    expected = {k: v for k, v in OLD_MEASUREMENT.items() if k not in ("kind", "reason")}
    # What it did not know is said as unknown, never made up.
    expected |= {
        "writtenBlocks": None,
        "previousCompletionTime": None,
        "content": None,
        "contentNote": None,
        "verdict": None,
        "lateForAlarms": False,
        "volumeName": None,
        "instanceId": None,
        "instanceName": None,
    }
    assert record.detail() == expected
    with pytest.raises(ValueError):
        record.anomaly_detail()


def _judged() -> Measurement:
    verdict = {
        "severity": "critical",
        "score": 9.1,
        "reasons": ["changed 30 % of written data"],
        "expected": {"low": 0.001, "median": 0.02, "high": 0.08, "unit": "share"},
    }
    return Measurement(
        _target(),
        "snap-1",
        2400,
        8,
        524288,
        datetime(2026, 5, 2, 6, tzinfo=UTC),
        written_blocks=8192,
        previous_completion_time=datetime(2026, 5, 1, 5, 40, tzinfo=UTC),
        content=Content(32, 4096, 10, 4000),
        content_note=None,
        judgement=Judgement(
            Severity.CRITICAL, verdict, "snap-0", datetime(2026, 4, 30, 5, 40, tzinfo=UTC)
        ),
    )


def test_a_judged_measurement_round_trips_with_its_verdict_and_restore_point():
    record = _judged()
    again = pending_from_json(pending_to_json(record))
    assert again == record
    detail = again.detail()
    assert detail["content"] == {
        "sampledBlocks": 32,
        "pages": 4096,
        "incompressibleBefore": 10,
        "incompressibleAfter": 4000,
    }
    assert detail["verdict"]["severity"] == "critical"
    assert detail["writtenBlocks"] == 8192
    anomaly = again.anomaly_detail()
    assert anomaly["measurementId"] == detail["measurementId"]
    assert anomaly["severity"] == "critical"
    assert anomaly["expected"] == record.judgement.verdict["expected"]
    assert anomaly["lastCleanSnapshotId"] == "snap-0"
    assert anomaly["lastCleanCompletionTime"] == "2026-04-30T05:40:00+00:00"


def test_a_pending_reset_of_the_previous_detector_reads_and_keeps_its_detail():
    old = {**OLD_MEASUREMENT, "kind": "reset", "reason": "previous_snapshot_missing"}
    old.update(changedBlocks=0, changedBytes=0, percentOfVolume=None)
    record = pending_from_json(json.dumps(old))
    assert isinstance(record, BaselineReset)
    assert record.reason is ResetReason.PREVIOUS_SNAPSHOT_MISSING
    assert record.detail() == {
        "resetId": old["measurementId"],
        "account": "123456789012",
        "region": "us-east-1",
        "volumeId": "vol-0abc",
        "volumeArn": ARN,
        "previousSnapshotId": "snap-1",
        "snapshotId": "snap-2",
        "reason": "previous_snapshot_missing",
        "backupJobId": "job-7",
        "resourceType": "EBS",
        "completionTime": old["completionTime"],
        "resetAt": old["measuredAt"],
    }


def _target() -> VolumeSnapshot:
    return VolumeSnapshot(
        volume_arn=ARN,
        volume_id="vol-0abc",
        snapshot_id="snap-2",
        completion_time=datetime(2026, 5, 2, 5, 41, 5, 921000, tzinfo=UTC),
        backup_job_id="job-7",
        resource_type="EC2",
        account="123456789012",
        region="us-east-1",
        volume_size_gib=8,
        full_snapshot_size_bytes=4 * 1024**3,
    )


@pytest.mark.parametrize(
    "record",
    [
        Measurement(_target(), "snap-1", 12, 8, 524288, datetime(2026, 5, 2, 6, tzinfo=UTC)),
        BaselineReset(
            _target(), "snap-1", ResetReason.UNRELATED_SNAPSHOTS, datetime(2026, 5, 2, tzinfo=UTC)
        ),
    ],
)
def test_pending_records_round_trip(record):
    again = pending_from_json(pending_to_json(record))
    assert again.detail() == record.detail()
    assert type(again) is type(record)


def test_a_saved_count_round_trips_and_reads_the_previous_format():
    progress = CountProgress(_target(), "snap-1", 3, '{"v":1}', datetime(2026, 5, 2, tzinfo=UTC))
    assert CountProgress.from_json(progress.to_json()) == progress
    old = {
        "target": _target().to_dict(),
        "previousSnapshotId": "snap-1",
        "generation": 2,
        "checkpoint": '{"v":1}',
        "savedAt": "2026-05-02T00:00:00+00:00",
    }
    assert CountProgress.from_json(json.dumps(old)).generation == 2


@pytest.mark.parametrize("text", ["", "{}", '{"kind": "measurement"}', "[1]"])
def test_unreadable_records_are_refused_with_a_value_error(text):
    with pytest.raises(ValueError):
        pending_from_json(text)
    with pytest.raises(ValueError):
        CountProgress.from_json(text)
