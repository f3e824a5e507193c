"""Event classification: every sample shape, every skip reason, malformed events."""

from __future__ import annotations

import json

import pytest

from backup_anomaly import handler
from backup_anomaly.events import Act, Arn, BackupJob, MalformedEvent, Skip, classify
from backup_anomaly.settings import Settings
from tests.detector.conftest import load_event

SETTINGS = Settings(state_table="t")


def test_sample_ebs_event_is_work():
    decision = classify(load_event("backup-job-completed-ebs"), SETTINGS)

    assert isinstance(decision, Act) and isinstance(decision.work, BackupJob)
    job = decision.work
    assert job.resource_type == "EBS"
    assert job.recovery_point_arn.resource_id == "snap-0a1b2c3d4e5f67890"
    assert job.resource_arn.resource_id == "vol-0b5ae24f2ee72d926"
    assert job.completion_time.isoformat() == "2026-05-02T05:41:05.921000+00:00"
    assert (job.account, job.region) == ("111122223333", "us-east-1")


def test_sample_ec2_event_is_work():
    decision = classify(load_event("backup-job-completed-ec2"), SETTINGS)

    assert isinstance(decision, Act)
    assert decision.work.resource_type == "EC2"
    assert decision.work.recovery_point_arn.resource_type == "image"
    assert decision.work.recovery_point_arn.resource_id == "ami-0c55b159cbfafe1f0"


def test_missing_completion_date_falls_back_to_the_event_time():
    event = load_event("backup-job-completed-ebs")
    del event["detail"]["completionDate"]

    decision = classify(event, SETTINGS)

    assert decision.work.completion_time.isoformat() == "2026-05-02T05:41:17+00:00"


def test_completed_with_issues_is_work():
    event = load_event("backup-job-completed-ebs")
    event["detail"]["statusMessage"] = "Completed with issues: some files skipped"

    assert isinstance(classify(event, SETTINGS), Act)


def _ebs(top=None, **detail):
    event = load_event("backup-job-completed-ebs")
    event.update(top or {})
    event["detail"].update(detail)
    return event


SKIPS = [
    ("alarm sample", load_event("alarm-state-change"), SETTINGS, "other_source"),
    ("other source", _ebs({"source": "aws.ec2"}), SETTINGS, "other_source"),
    (
        "recovery point change",
        _ebs({"detail-type": "Recovery Point State Change"}),
        SETTINGS,
        "other_detail_type",
    ),
    ("copy job", _ebs({"detail-type": "Copy Job State Change"}), SETTINGS, "copy_job"),
    ("running", _ebs(state="RUNNING"), SETTINGS, "not_completed"),
    ("failed", _ebs(state="FAILED"), SETTINGS, "not_completed"),
    ("aborted", _ebs(state="ABORTED"), SETTINGS, "not_completed"),
    ("rds", _ebs(resourceType="RDS"), SETTINGS, "unsupported_resource_type"),
    ("efs", _ebs(resourceType="EFS"), SETTINGS, "unsupported_resource_type"),
    (
        "ebs disabled",
        _ebs(),
        Settings(state_table="t", resource_types=frozenset({"EC2"})),
        "resource_type_disabled",
    ),
    (
        "own measured event",
        _ebs({"source": "backup-anomaly-detection", "detail-type": "Backup Change Measured"}),
        SETTINGS,
        "other_detail_type",
    ),
]


@pytest.mark.parametrize(
    ("event", "settings", "code"), [s[1:] for s in SKIPS], ids=[s[0] for s in SKIPS]
)
def test_skip_reasons(event, settings, code):
    decision = classify(event, settings)

    assert isinstance(decision, Skip)
    assert decision.code == code


def _drop(path):
    event = load_event("backup-job-completed-ebs")
    *parents, last = path
    target = event
    for key in parents:
        target = target[key]
    del target[last]
    return event


def _set(path, value):
    event = load_event("backup-job-completed-ebs")
    *parents, last = path
    target = event
    for key in parents:
        target = target[key]
    target[last] = value
    return event


MALFORMED = [
    ("not an object", ["a", "list"], "event must be a JSON object"),
    ("no source", _drop(["source"]), "event.source"),
    ("no detail-type", _drop(["detail-type"]), "event.detail-type"),
    ("no detail", _drop(["detail"]), "event.detail"),
    ("detail a string", _set(["detail"], "COMPLETED"), "event.detail"),
    ("no state", _drop(["detail", "state"]), "detail.state"),
    ("state a number", _set(["detail", "state"], 3), "detail.state"),
    ("no resource type", _drop(["detail", "resourceType"]), "detail.resourceType"),
    (
        "no completion date nor time",
        _drop(["time"]) | {"detail": _drop(["detail", "completionDate"])["detail"]},
        "detail.completionDate",
    ),
    (
        "bad completion date",
        _set(["detail", "completionDate"], "yesterday"),
        "detail.completionDate",
    ),
    ("no job id", _drop(["detail", "backupJobId"]), "detail.backupJobId"),
    ("resource ARN garbage", _set(["detail", "resourceArn"], "vol-123"), "detail.resourceArn"),
    (
        "resources not a list",
        _set(["resources"], "arn:aws:ec2:us-east-1::snapshot/snap-1"),
        "event.resources",
    ),
    ("resource not an ARN", _set(["resources"], ["snap-0a1b2c3d4e5f67890"]), "event.resources[0]"),
    ("no account", _drop(["account"]), "event.account"),
]


@pytest.mark.parametrize(
    ("event", "where"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_events_name_the_field(event, where):
    decision = classify(event, SETTINGS)

    assert isinstance(decision, Skip)
    assert decision.code == "malformed"
    assert where in decision.message


def test_arn_parse():
    arn = Arn.parse("arn:aws:ec2:us-east-1:111122223333:volume/vol-1")

    assert (arn.partition, arn.region, arn.account, arn.resource_type, arn.resource_id) == (
        "aws",
        "us-east-1",
        "111122223333",
        "volume",
        "vol-1",
    )
    assert str(arn) == "arn:aws:ec2:us-east-1:111122223333:volume/vol-1"
    with pytest.raises(MalformedEvent, match="not an ARN"):
        Arn.parse("arn:aws:ec2")


# -- through the handler: one log line per skipped event, never a retry -----------------------


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


@pytest.mark.parametrize(
    ("event", "code"),
    [(s[1], s[3]) for s in SKIPS if s[2] is SETTINGS],
    ids=[s[0] for s in SKIPS if s[2] is SETTINGS],
)
def test_handler_logs_one_line_per_skip(handler_env, lines, event, code):
    lines()
    response = handler.lambda_handler(_sqs(event), None)

    assert response == {"batchItemFailures": []}
    (line,) = lines()
    assert (line["decision"], line["reason"]) == ("skipped", code)


@pytest.mark.parametrize(
    ("event", "where"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_handler_drops_malformed_events_with_one_line(handler_env, lines, event, where):
    lines()
    response = handler.lambda_handler(_sqs(event), None)

    assert response == {"batchItemFailures": []}
    (line,) = lines()
    assert line["decision"] == "malformed"
    assert where in line["message"]


def test_handler_drops_a_body_that_is_not_json(handler_env, lines):
    lines()
    response = handler.lambda_handler(_sqs("{not json"), None)

    assert response == {"batchItemFailures": []}
    (line,) = lines()
    assert line["decision"] == "malformed"


def test_direct_eventbridge_skip(handler_env, lines):
    lines()
    assert handler.lambda_handler(load_event("alarm-state-change"), None) == {"status": "ok"}
    (line,) = lines()
    assert line["reason"] == "other_source"


def test_log_lines_have_the_fixed_key_order(handler_env, lines):
    lines()
    handler.lambda_handler(_sqs(_ebs(state="RUNNING")), None)

    (line,) = lines()
    assert list(line)[:9] == [
        "account",
        "region",
        "volume",
        "snapshots",
        "changed_blocks",
        "api_calls",
        "duration_ms",
        "decision",
        "reason",
    ]
