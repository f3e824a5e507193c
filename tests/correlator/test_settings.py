"""The correlator's settings contract and its environment."""

from __future__ import annotations

import dataclasses

import pytest

from correlator import contract, handler
from correlator.settings import Settings, SettingsError, load

TABLE_ENV = {"CENTRAL_TABLE": "central"}


def test_every_environment_entry_is_a_settings_field_with_the_contract_default():
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for entry in contract.environment():
        assert entry.name in fields, entry.name
        if not entry.required:
            assert fields[entry.name].default == entry.default, entry.name
    assert set(fields) == {e.name for e in contract.environment()}


def test_defaults():
    settings = load(TABLE_ENV)
    assert settings == Settings(central_table="central")
    assert (settings.window_hours, settings.open_severity, settings.notify_severity) == (
        24,
        "medium",
        "high",
    )
    assert settings.history.days == 180 and settings.late_horizon.total_seconds() == 96 * 3600


def test_every_variable_is_read():
    env = {
        **TABLE_ENV,
        "HISTORY_DAYS": "400",
        "CORRELATION_WINDOW_HOURS": "36",
        "INCIDENT_OPEN_SEVERITY": "high",
        "INCIDENT_NOTIFY_SEVERITY": "critical",
        "ESCALATION_VOLUMES": "10",
        "UPDATE_INTERVAL_MINUTES": "0",
        "INCIDENT_EXPIRY_DAYS": "3",
        "LATE_EVENT_HOURS": "336",
        "SILENCE_INTERVALS": "2.5",
        "REGULAR_BACKUPS": "4",
        "DEFAULT_INTERVAL_SECONDS": "3600",
        "MESSAGE_VOLUMES": "50",
        "ORGANIZATIONS_ACCOUNT_NAMES": "true",
        "ALERT_TOPIC_ARN": "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts",
        "AUDIT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/audit",
        "MEMBER_EVENT_SOURCE": "my-detectors",
    }
    assert {e.env for e in contract.environment()} == set(env)
    settings = load(env)
    assert settings.history_days == 400 and settings.window_hours == 36
    assert settings.opening.value == "high" and settings.notifying.value == "critical"
    assert settings.silence_intervals == 2.5 and settings.organizations_names is True
    assert settings.member_event_source == "my-detectors"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "CENTRAL_TABLE"),
        ({**TABLE_ENV, "HISTORY_DAYS": "7"}, "HISTORY_DAYS"),
        ({**TABLE_ENV, "INCIDENT_OPEN_SEVERITY": "HIGH"}, "INCIDENT_OPEN_SEVERITY"),
        ({**TABLE_ENV, "INCIDENT_NOTIFY_SEVERITY": "none"}, "INCIDENT_NOTIFY_SEVERITY"),
        ({**TABLE_ENV, "SILENCE_INTERVALS": "1"}, "SILENCE_INTERVALS"),
        ({**TABLE_ENV, "ALERT_TOPIC_ARN": "alerts"}, "ALERT_TOPIC_ARN"),
        ({**TABLE_ENV, "MEMBER_EVENT_SOURCE": "aws.backup"}, "MEMBER_EVENT_SOURCE"),
        ({**TABLE_ENV, "ORGANIZATIONS_ACCOUNT_NAMES": "yes"}, "ORGANIZATIONS_ACCOUNT_NAMES"),
    ],
)
def test_invalid_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        load(env)


def test_empty_optional_values_mean_unset():
    assert load({**TABLE_ENV, "ALERT_TOPIC_ARN": "", "HISTORY_DAYS": " "}).alert_topic_arn is None


def test_names_do_not_collide_with_the_detector_s_contract():
    from backup_anomaly import contract as detector

    for attribute in ("name", "config", "parameter", "env"):
        ours = {getattr(s, attribute) for s in contract.SETTINGS if getattr(s, attribute)}
        theirs = {getattr(s, attribute) for s in detector.SETTINGS if getattr(s, attribute)}
        assert not ours & theirs, (attribute, ours & theirs)


def test_in_lambda_a_bad_environment_fails_the_cold_start(monkeypatch):
    import importlib

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "correlator")
    monkeypatch.delenv("CENTRAL_TABLE", raising=False)
    handler.reset()
    with pytest.raises(SettingsError, match="CENTRAL_TABLE"):
        importlib.reload(handler)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    importlib.reload(handler)
