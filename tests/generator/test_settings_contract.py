"""Every setting of the contract walks from YAML to ``settings.load`` unchanged.

For each entry of ``backup_anomaly.contract.SETTINGS``: a value set in the config reaches
the member template parameter's default, the StackSet parameter, an OU/account's
parameter override (when overridable), the Lambda environment and the detector's parsed
settings, with the same value; the bounds agree everywhere, and a value out of bounds is
refused by the config with its line, never first by CloudFormation or at cold start.
A new setting with no sample value below fails here with what to add.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from backup_anomaly import contract, settings
from backup_anomaly.contract import Kind, Scope
from generator.config.loader import ConfigError, load_config
from generator.config.model import OrgConfig
from generator.config.schema import json_schema
from generator.instance_groups import instance_groups
from generator.templates import member, stackset
from tests.generator.config_helpers import BASE

# A valid, non-default value for settings a number range cannot give (and the edits that
# keep the config consistent with it).
SAMPLES: dict[str, Any] = {
    "resource_types": ["EBS"],
    "metric_namespace": "Corp/BackupAnomaly",
    "alarm_prefix": "corp-ba-",
    "schedule": "cron(0 3 ? * * *)",
    "alarm_period_seconds": 43200,
    # Thresholds must keep increasing; the usual sample stays under the larger one.
    "low_score": 2.5,
    "medium_score": 3.5,
    "high_score": 4.5,
    "critical_score": 7.0,
    "content_samples": 64,
}
COMPANIONS: dict[str, dict[str, Any]] = {
    # The alarm period must equal the backup interval.
    "alarm_period_seconds": {"backup.schedule": "cron(0 0/12 ? * * *)"},
}
# What the member template wires from its own resources instead of the config.
WIRING = {"STATE_TABLE", "CENTRAL_BUS_ARN", "EVENT_SOURCE", "WORK_QUEUE_URL", "SCANNER_ROLE_ARN"}
WIRING_CONSTANTS = {"ALARM_ACTIONS_ENABLED": "true"}


def _sample(setting: contract.Setting) -> Any:
    if setting.name in SAMPLES:
        return SAMPLES[setting.name]
    if setting.kind is Kind.BOOL:
        return not setting.default
    if setting.kind in (Kind.INT, Kind.FLOAT):
        assert setting.maximum is not None, f"{setting.name}: give it a maximum or a sample"
        for candidate in (setting.maximum, setting.minimum):
            if candidate is not None and candidate != setting.default:
                return int(candidate) if setting.kind is Kind.INT else float(candidate)
    raise AssertionError(f"add a sample value for {setting.name} to SAMPLES")


def _put(data: dict, path: str, value: Any) -> None:
    *parents, key = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[key] = value


def _config(tmp_path: Path, edits: dict[str, Any], name: str = "c.yaml") -> OrgConfig:
    data = yaml.safe_load(BASE)
    for path, value in edits.items():
        _put(data, path, value)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def _environment(template: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The Lambda environment a stack of ``template`` would get (wiring filled in)."""
    (function,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    params = template["Parameters"]
    env = {}
    for key, raw in function["Properties"]["Environment"]["Variables"].items():
        if isinstance(raw, dict) and set(raw) == {"Ref"} and raw["Ref"] in params:
            env[key] = (overrides or {}).get(raw["Ref"], params[raw["Ref"]]["Default"])
        elif key == "CENTRAL_BUS_ARN":
            env[key] = "arn:aws:events:us-east-1:333333333333:event-bus/central"
        elif key == "WORK_QUEUE_URL":
            env[key] = "https://sqs.us-east-1.amazonaws.com/444444444444/work"
        elif key == "STATE_TABLE":
            env[key] = "state"
        elif key == "SCANNER_ROLE_ARN":
            # The scanner role exists where confirmation scans are on.
            scans = (overrides or {}).get("ConfirmationScan", params["ConfirmationScan"]["Default"])
            assert raw["Fn::If"][0] == "ConfirmationScansOn", raw
            env[key] = "arn:aws:iam::444444444444:role/scanner" if scans == "true" else ""
        else:
            assert isinstance(raw, str), f"{key}: {raw!r}"
            env[key] = raw
    return env


def _normalized(setting: contract.Setting, value: Any) -> Any:
    if setting.kind is Kind.CHOICES:
        return frozenset(str(v) for v in value)
    if setting.kind is Kind.FLOAT:
        return float(value)
    return value


CONFIGURED = [s for s in contract.configured()]


@pytest.mark.parametrize("setting", CONFIGURED, ids=[s.name for s in CONFIGURED])
def test_a_configured_value_reaches_every_place_unchanged(tmp_path, setting):
    value = _sample(setting)
    assert _normalized(setting, value) != _normalized(setting, setting.default)
    config = _config(tmp_path, {setting.config: value, **COMPANIONS.get(setting.name, {})})
    assert _normalized(setting, config.setting(setting.name)) == _normalized(setting, value)
    template = member.build(config).to_dict()
    if setting.parameter is not None and (
        setting.scope is Scope.ALWAYS or config.backup.mode.value == "create"
    ):
        parameter = template["Parameters"][setting.parameter]
        assert parameter["Default"] == setting.encode(value)
        params = stackset.stackset_parameters(config, "lambda/x.zip")
        assert params[setting.parameter] == setting.encode(value)
    if setting.env is not None:
        loaded = settings.load(_environment(template))
        assert _normalized(setting, getattr(loaded, setting.name)) == _normalized(setting, value)


OVERRIDABLE = [s for s in contract.configured() if s.overridable]


@pytest.mark.parametrize("setting", OVERRIDABLE, ids=[s.name for s in OVERRIDABLE])
def test_an_account_override_reaches_its_instances_and_the_detector(tmp_path, setting):
    value = _sample(setting)
    data = yaml.safe_load(BASE)
    account = data["deployment"]["targets"]["accounts"][0]
    _put(account, f"overrides.{setting.config}", value)
    for path, companion in COMPANIONS.get(setting.name, {}).items():
        _put(account, f"overrides.{path}", companion)
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(path)
    (group,) = [
        g
        for g in instance_groups(config)
        if "444444444444" in g.accounts and g.account_filter_type == "INTERSECTION"
    ]
    overrides = dict(group.parameter_overrides)
    assert overrides[setting.parameter] == setting.encode(value)
    template = member.build(config).to_dict()
    if setting.env is not None:
        loaded = settings.load(_environment(template, overrides))
        assert _normalized(setting, getattr(loaded, setting.name)) == _normalized(setting, value)


BOUNDED = [s for s in contract.configured() if s.kind in (Kind.INT, Kind.FLOAT)]


def _outside(setting: contract.Setting) -> list[Any]:
    step = 1 if setting.kind is Kind.INT else 0.05
    values = []
    if setting.minimum is not None:
        values.append(setting.minimum - step)
    if setting.maximum is not None:
        values.append(setting.maximum + step)
    return [int(v) if setting.kind is Kind.INT else v for v in values]


@pytest.mark.parametrize("setting", BOUNDED, ids=[s.name for s in BOUNDED])
def test_out_of_bounds_is_refused_by_the_config_with_its_line(tmp_path, setting):
    for bad in _outside(setting):
        with pytest.raises(ConfigError) as caught:
            _config(tmp_path, {setting.config: bad})
        (issue,) = caught.value.issues
        assert issue.path == setting.config and issue.line > 0
        assert "must be at" in issue.message, issue.message
        with pytest.raises(contract.SettingError):
            setting.check(bad)


@pytest.mark.parametrize("setting", BOUNDED, ids=[s.name for s in BOUNDED])
def test_bounds_agree_in_the_config_schema_the_template_and_the_detector(setting):
    schema = json_schema()
    node: Any = schema["$defs"]
    section = setting.section or ""
    title = {
        "detection": "Detection",
        "detection.detector": "DetectionDetector",
        "detection.verdicts": "DetectionVerdicts",
    }.get(section, "Backup")
    field = node[title]["properties"][setting.name]
    assert field.get("minimum") == setting.minimum
    assert field.get("maximum") == setting.maximum
    if setting.parameter is not None:
        config = load_config_from_text(BASE)
        parameter = member.build(config).to_dict()["Parameters"][setting.parameter]
        assert float(parameter["MinValue"]) == setting.minimum
        assert float(parameter["MaxValue"]) == setting.maximum
    if setting.env is not None:
        for bad in _outside(setting):
            with pytest.raises(settings.SettingsError, match=setting.env):
                settings.load({"STATE_TABLE": "t", setting.env: str(bad)})


def load_config_from_text(text: str) -> OrgConfig:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text)
        return load_config(path)


def test_the_template_sets_exactly_the_variables_the_detector_reads():
    template = member.build(load_config_from_text(BASE)).to_dict()
    (function,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    variables = set(function["Properties"]["Environment"]["Variables"])
    assert variables == {s.env for s in contract.environment()}
    assert WIRING | set(WIRING_CONSTANTS) == {
        s.env for s in contract.environment() if s.config is None
    }


def test_settings_fields_are_the_contract_entries_with_their_defaults():
    fields = {f.name: f for f in dataclasses.fields(settings.Settings)}
    assert set(fields) == {s.name for s in contract.environment()}
    for setting in contract.environment():
        field = fields[setting.name]
        if setting.required:
            assert field.default is dataclasses.MISSING
            continue
        default = setting.default
        if setting.kind is Kind.CHOICES:
            default = frozenset(default)  # type: ignore[arg-type]
        assert field.default == default, setting.name


def test_every_overridable_setting_has_a_parameter_and_a_config_path():
    for setting in contract.SETTINGS:
        if setting.overridable:
            assert setting.parameter and setting.config, setting.name
