"""The correlator's environment, parsed once at cold start with the settings contract.

The central CloudFormation template sets one variable per ``contract`` entry that has an
``env``; this module reads each with the same type and bounds the config enforced. The
variables, their defaults and bounds are listed in ``correlator.contract``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from correlator import contract
from correlator.records import Severity


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; one field per contract entry with an ``env``.

    Field names are the contract's names; defaults are the contract's defaults (a test
    keeps the two in step).
    """

    central_table: str
    history_days: int = 180
    window_hours: int = 24
    open_severity: str = "medium"
    notify_severity: str = "high"
    escalation_volumes: int = 5
    update_interval_minutes: int = 15
    expiry_days: int = 7
    late_event_hours: int = 96
    silence_intervals: float = 2.0
    regular_backups: int = 3
    default_interval_seconds: int = 86400
    message_volumes: int = 25
    organizations_names: bool = False
    alert_topic_arn: str | None = None
    audit_queue_url: str | None = None
    member_event_source: str = "backup-anomaly-detection"

    @property
    def history(self) -> timedelta:
        return timedelta(days=self.history_days)

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    @property
    def opening(self) -> Severity:
        return Severity(self.open_severity)

    @property
    def notifying(self) -> Severity:
        return Severity(self.notify_severity)

    @property
    def update_interval(self) -> timedelta:
        return timedelta(minutes=self.update_interval_minutes)

    @property
    def expiry(self) -> timedelta:
        return timedelta(days=self.expiry_days)

    @property
    def late_horizon(self) -> timedelta:
        return timedelta(hours=self.late_event_hours)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parses and validates the environment.

    Args:
        environ: the variables; ``os.environ`` when omitted.

    Returns:
        The settings.

    Raises:
        SettingsError: a variable is missing or invalid (the message names it).
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for entry in contract.environment():
        raw = env.get(entry.env or "")
        # An empty value is what CloudFormation writes for an unset optional parameter.
        if raw is None or not raw.strip():
            if entry.required:
                raise SettingsError(f"{entry.env} is required ({entry.description})")
            continue
        try:
            values[entry.name] = entry.decode(raw)
        except contract.SettingError as exc:
            raise SettingsError(f"{entry.env}: {exc}") from exc
    return Settings(**cast(dict[str, Any], values))
