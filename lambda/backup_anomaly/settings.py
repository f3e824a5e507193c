"""The detector's environment, parsed once at cold start with the settings contract.

The member CloudFormation template sets one variable per ``contract`` entry that has an
``env``; this module reads each with the same type and bounds the config enforced, so a
value the config accepted is one the detector accepts, and the other way round. The
variables, their defaults and bounds are listed in ``backup_anomaly.contract``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

from backup_anomaly import contract
from backup_anomaly.scoring import ScoringConfig

SUPPORTED_RESOURCE_TYPES = contract.RESOURCE_TYPES
MAX_COUNT_WORKERS = int(contract.setting("ebs_count_workers").maximum or 64)


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; one field per contract entry with an ``env``.

    Field names are the contract's names; defaults are the contract's defaults (a test
    keeps the two in step).
    """

    state_table: str
    metric_namespace: str = "BackupAnomalyDetection"
    alarm_prefix: str = "backup-anomaly-"
    cloudwatch_alarms: bool = False
    band_width: float = 2.0
    ceiling_percent: float = 50.0
    alarm_period_seconds: int = 86400
    evaluation_periods: int = 1
    resource_types: frozenset[str] = frozenset(SUPPORTED_RESOURCE_TYPES)
    central_bus_arn: str | None = None
    event_source: str = "backup-anomaly-detection"
    work_queue_url: str | None = None
    ebs_max_requests_per_second: float = 40.0
    ebs_get_block_requests_per_second: float = 800.0
    ebs_count_workers: int = 8
    alarm_actions_enabled: bool = True
    content_sampling: bool = True
    confirmation_scan: bool = False
    security_hub_findings: bool = False
    scanner_role_arn: str | None = None
    content_samples: int = 32
    content_samples_max: int = 256
    floor_percent: float = 1.0
    floor_blocks: int = 64
    prior_daily_percent: float = 2.0
    prior_spread: float = 3.0
    low_score: float = 2.0
    medium_score: float = 3.0
    high_score: float = 4.0
    critical_score: float = 6.0
    history_limit: int = 120
    relearn_days: float = 14.0

    def scoring(self) -> ScoringConfig:
        """The model's knobs as the environment sets them."""
        return scoring_config(lambda name: getattr(self, name))


def scoring_config(value: Callable[[str], Any]) -> ScoringConfig:
    """The model's knobs from a source of contract values by name (the detector's settings,
    or the config for ``backtest``): ``ScoringConfig``'s fields carry the contract's names,
    but ``use_content``, which is ``content_sampling``.

    Raises:
        ValueError: the values break the model's rules (thresholds out of order).
    """
    names = [f.name for f in fields(ScoringConfig) if f.name != "use_content"]
    return ScoringConfig(
        **{name: value(name) for name in names}, use_content=bool(value("content_sampling"))
    )


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
    # Every entry with an env has a field of its name (a contract test checks it), so an
    # entry renamed on one side only fails here, loudly, instead of reading a default.
    settings = Settings(**cast(dict[str, Any], values))
    try:
        settings.scoring()
    except ValueError as exc:  # thresholds out of order: the config refuses them first
        raise SettingsError(f"verdict settings: {exc}") from exc
    if settings.content_samples > settings.content_samples_max:
        raise SettingsError("CONTENT_SAMPLES must not exceed CONTENT_SAMPLES_MAX")
    return settings
