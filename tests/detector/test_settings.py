"""The environment contract: defaults, parsing, and a clear error naming each bad variable."""

from __future__ import annotations

import importlib

import pytest

from backup_anomaly import handler
from backup_anomaly.settings import Settings, SettingsError, load
from tests.detector.conftest import load_event


def test_defaults():
    settings = load({"STATE_TABLE": "state"})

    assert settings == Settings(state_table="state")
    assert settings.metric_namespace == "BackupAnomalyDetection"
    assert settings.alarm_prefix == "backup-anomaly-"
    assert settings.band_width == 2
    assert settings.ceiling_percent == 50
    assert settings.alarm_period_seconds == 86400
    assert settings.evaluation_periods == 1
    assert settings.resource_types == {"EBS", "EC2"}
    assert settings.central_bus_arn is None and settings.work_queue_url is None
    assert settings.event_source == "backup-anomaly-detection"
    assert (settings.ebs_max_requests_per_second, settings.ebs_count_workers) == (40, 8)
    assert settings.alarm_actions_enabled is True


def test_every_variable_is_read():
    env = {
        "STATE_TABLE": "t",
        "METRIC_NAMESPACE": "Ns",
        "ALARM_PREFIX": "p-",
        "ANOMALY_BAND_WIDTH": "3.5",
        "CEILING_PERCENT": "0",
        "ALARM_PERIOD_SECONDS": "3600",
        "EVALUATION_PERIODS": "3",
        "RESOURCE_TYPES": " ebs ",
        "CENTRAL_BUS_ARN": "arn:aws:events:us-east-1:111122223333:event-bus/central",
        "EVENT_SOURCE": "me",
        "WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
        "EBS_MAX_REQUESTS_PER_SECOND": "12.5",
        "EBS_COUNT_WORKERS": "2",
        "ALARM_ACTIONS_ENABLED": "false",
    }

    assert load(env) == Settings(
        state_table="t",
        metric_namespace="Ns",
        alarm_prefix="p-",
        band_width=3.5,
        ceiling_percent=0,
        alarm_period_seconds=3600,
        evaluation_periods=3,
        resource_types=frozenset({"EBS"}),
        central_bus_arn="arn:aws:events:us-east-1:111122223333:event-bus/central",
        event_source="me",
        work_queue_url="https://sqs.us-east-1.amazonaws.com/1/q",
        ebs_max_requests_per_second=12.5,
        ebs_count_workers=2,
        alarm_actions_enabled=False,
    )


def test_empty_optional_values_mean_unset():
    settings = load({"STATE_TABLE": "t", "CENTRAL_BUS_ARN": "", "WORK_QUEUE_URL": " "})

    assert settings.central_bus_arn is None and settings.work_queue_url is None


@pytest.mark.parametrize("period", ["3600", "7200", "43200", "86400"])
def test_valid_periods(period):
    assert load({"STATE_TABLE": "t", "ALARM_PERIOD_SECONDS": period}).alarm_period_seconds == int(
        period
    )


BAD = [
    ({}, "STATE_TABLE"),
    ({"ANOMALY_BAND_WIDTH": "0"}, "ANOMALY_BAND_WIDTH"),
    ({"ANOMALY_BAND_WIDTH": "-1"}, "ANOMALY_BAND_WIDTH"),
    ({"ANOMALY_BAND_WIDTH": "wide"}, "ANOMALY_BAND_WIDTH"),
    ({"ANOMALY_BAND_WIDTH": "nan"}, "ANOMALY_BAND_WIDTH"),
    ({"CEILING_PERCENT": "101"}, "CEILING_PERCENT"),
    ({"CEILING_PERCENT": "-5"}, "CEILING_PERCENT"),
    ({"CEILING_PERCENT": "half"}, "CEILING_PERCENT"),
    ({"ALARM_PERIOD_SECONDS": "45"}, "ALARM_PERIOD_SECONDS"),
    # The config's bounds (whole hours up to a day): a sub-hour period never reaches here.
    ({"ALARM_PERIOD_SECONDS": "60"}, "ALARM_PERIOD_SECONDS"),
    ({"ALARM_PERIOD_SECONDS": "5400"}, "ALARM_PERIOD_SECONDS"),
    ({"ALARM_PERIOD_SECONDS": "0"}, "ALARM_PERIOD_SECONDS"),
    ({"ALARM_PERIOD_SECONDS": "1.5"}, "ALARM_PERIOD_SECONDS"),
    ({"EVALUATION_PERIODS": "0"}, "EVALUATION_PERIODS"),
    ({"EVALUATION_PERIODS": "8"}, "EVALUATION_PERIODS"),  # 8 days > CloudWatch's 7
    ({"RESOURCE_TYPES": "EBS,RDS"}, "RESOURCE_TYPES"),
    ({"RESOURCE_TYPES": ","}, "RESOURCE_TYPES"),
    ({"CENTRAL_BUS_ARN": "central"}, "CENTRAL_BUS_ARN"),
    ({"CENTRAL_BUS_ARN": "arn:aws:sns:us-east-1:123456789012:alerts"}, "CENTRAL_BUS_ARN"),
    ({"CENTRAL_BUS_ARN": "arn:aws:events:us-east-1:123456789012:rule/x"}, "CENTRAL_BUS_ARN"),
    ({"METRIC_NAMESPACE": "AWS/EBS"}, "METRIC_NAMESPACE"),
    ({"METRIC_NAMESPACE": ":Backup"}, "METRIC_NAMESPACE"),
    ({"METRIC_NAMESPACE": "N" * 256}, "METRIC_NAMESPACE"),
    ({"ALARM_PREFIX": "p" * 65}, "ALARM_PREFIX"),
    ({"EBS_MAX_REQUESTS_PER_SECOND": "0"}, "EBS_MAX_REQUESTS_PER_SECOND"),
    ({"EBS_COUNT_WORKERS": "0"}, "EBS_COUNT_WORKERS"),
    ({"EBS_COUNT_WORKERS": "many"}, "EBS_COUNT_WORKERS"),
    ({"EBS_COUNT_WORKERS": "5000"}, "EBS_COUNT_WORKERS"),  # its checkpoint would pass 400 KB
    ({"ALARM_ACTIONS_ENABLED": "maybe"}, "ALARM_ACTIONS_ENABLED"),
    ({"EVENT_SOURCE": "aws.backup"}, "EVENT_SOURCE"),
]


@pytest.mark.parametrize(("env", "name"), BAD, ids=[f"{n}={e.get(n)}" for e, n in BAD])
def test_invalid_values_name_the_variable(env, name):
    full = {"STATE_TABLE": "t", **env} if name != "STATE_TABLE" else env

    with pytest.raises(SettingsError, match=name):
        load(full)


def test_handler_fails_with_the_variable_named(handler_env):
    handler_env.setenv("CEILING_PERCENT", "150")

    with pytest.raises(SettingsError, match="CEILING_PERCENT"):
        handler.lambda_handler(load_event("alarm-state-change"), None)


def test_handler_honours_resource_types(handler_env, lines):
    handler_env.setenv("RESOURCE_TYPES", "EC2")
    lines()

    handler.lambda_handler(load_event("backup-job-completed-ebs"), None)

    (line,) = lines()
    assert (line["decision"], line["reason"]) == ("skipped", "resource_type_disabled")


def test_in_lambda_a_bad_environment_fails_the_cold_start(handler_env):
    handler_env.setenv("AWS_LAMBDA_FUNCTION_NAME", "backup-anomaly-detector")
    handler_env.setenv("ALARM_PERIOD_SECONDS", "45")

    try:
        with pytest.raises(SettingsError, match="ALARM_PERIOD_SECONDS"):
            importlib.reload(handler)
    finally:
        handler_env.delenv("AWS_LAMBDA_FUNCTION_NAME")
        importlib.reload(handler)


def test_a_checkpoint_of_the_most_workers_fits_the_state_item():
    from backup_anomaly.changed_blocks import CountCheckpoint
    from backup_anomaly.settings import MAX_COUNT_WORKERS

    token = "A" * 256  # the API's longest page token
    ranges = tuple((i * 10**9, (i + 1) * 10**9, token) for i in range(MAX_COUNT_WORKERS))
    checkpoint = CountCheckpoint("snap-" + "0" * 17, "snap-" + "1" * 17, 10**10, 10**6, ranges)
    assert len(checkpoint.to_json()) < 400_000 // 10
