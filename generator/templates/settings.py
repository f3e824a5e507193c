"""Template parameters and the Lambda environment, both from the settings contract.

Each contract entry with a ``parameter`` becomes a member template parameter whose type,
bounds, allowed values and pattern are the contract's (so a hand-edited StackSet override
is checked by CloudFormation as the config checked it) and whose default is the config's
value. The detector's environment sets one variable per contract entry with an ``env``:
a reference to the parameter when there is one, the config's value otherwise, and the
template's own resources for the wiring entries (table, queue, bus).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from troposphere import AWSHelperFn, Parameter

from backup_anomaly import contract
from backup_anomaly.contract import Kind, Scope, Setting
from generator.config.model import BackupMode, OrgConfig


def _bound(setting: Setting, value: float) -> str | float:
    # Whole bounds as text, as CloudFormation's own examples write them; a fractional one
    # as a JSON number (troposphere checks text bounds as integers).
    if setting.kind is Kind.INT or float(value).is_integer():
        return str(int(value))
    return float(value)


def parameter(setting: Setting, config: OrgConfig) -> Parameter:
    """The template parameter of ``setting`` with the config's value as its default."""
    if setting.parameter is None:
        raise ValueError(f"{setting.name} has no template parameter")
    kwargs: dict[str, Any] = {
        "Description": setting.description,
        "Default": setting.encode(config.setting(setting.name)),
    }
    if setting.kind in (Kind.INT, Kind.FLOAT):
        kwargs["Type"] = "Number"
        if setting.minimum is not None:
            kwargs["MinValue"] = _bound(setting, setting.minimum)
        if setting.maximum is not None:
            kwargs["MaxValue"] = _bound(setting, setting.maximum)
    else:
        kwargs["Type"] = "String"
        if setting.kind is Kind.BOOL:
            kwargs["AllowedValues"] = ["false", "true"]
        elif setting.pattern:
            kwargs["AllowedPattern"] = f"^{setting.pattern}$"
    return Parameter(setting.parameter, **kwargs)


def member_parameters(config: OrgConfig) -> dict[str, Parameter]:
    """The contract's parameters the member template declares, by setting name.

    Backup plan parameters only where the member creates the plan (mode ``create``):
    StackSets refuse overrides of parameters a template does not declare.
    """
    with_plan = config.backup.mode is BackupMode.CREATE
    return {
        s.name: parameter(s, config)
        for s in contract.parameters()
        if s.scope is Scope.ALWAYS or with_plan
    }


def value(name: str, config: OrgConfig, parameters: Mapping[str, Parameter]) -> Any:
    """What a template property of setting ``name`` holds: its parameter, else the value."""
    if name in parameters:
        return parameters[name].ref()
    return config.setting(name)


def environment(
    config: OrgConfig, parameters: Mapping[str, Parameter], wiring: Mapping[str, object]
) -> dict[str, object]:
    """The detector's environment: one variable per contract entry with an ``env``.

    Args:
        config: the organization config.
        parameters: the template's contract parameters (``member_parameters``).
        wiring: values for the entries the config does not set (the table's name, the
            queue's URL...), by setting name.

    Raises:
        ValueError: a wiring entry has no value, or a value is given for an unknown one.
    """
    unknown = set(wiring) - {s.name for s in contract.environment() if s.config is None}
    if unknown:
        raise ValueError(f"not wiring entries of the contract: {sorted(unknown)}")
    variables: dict[str, object] = {}
    for setting in contract.environment():
        assert setting.env is not None
        if setting.name in parameters:
            variables[setting.env] = parameters[setting.name].ref()
        elif setting.config is not None:
            variables[setting.env] = setting.encode(config.setting(setting.name))
        elif setting.name in wiring:
            raw = wiring[setting.name]
            variables[setting.env] = raw if isinstance(raw, AWSHelperFn) else setting.encode(raw)
        else:
            raise ValueError(f"the template does not wire {setting.name} ({setting.env})")
    return variables
