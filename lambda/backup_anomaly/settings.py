"""Environment contract of the detector, parsed once at cold start.

The member CloudFormation template sets these variables; the names are a contract shared
with the generator and the tests.

Variables:
    STATE_TABLE: DynamoDB table, partition key ``VolumeArn`` (string). Required.
    METRIC_NAMESPACE: CloudWatch namespace of the metrics (not ``AWS/...``). Default
        ``BackupAnomalyDetection``.
    ALARM_PREFIX: prefix of every alarm name, at most 226 characters. Default
        ``backup-anomaly-``.
    ANOMALY_BAND_WIDTH: standard deviations of the anomaly band, a number > 0. Default 2.
    CEILING_PERCENT: static ceiling in percent of the blocks written on the volume, 0..100;
        0 disables the ceiling alarm. Default 50.
    ALARM_PERIOD_SECONDS: alarm period; 10, 30 or a multiple of 60. Default 86400 (daily
        backups).
    EVALUATION_PERIODS: alarm evaluation periods, an integer >= 1. Default 1.
    RESOURCE_TYPES: comma-separated AWS Backup resource types to measure, a subset of
        ``EBS,EC2``. Default ``EBS,EC2``.
    CENTRAL_BUS_ARN: event bus ARN that receives every ``Backup Change Measured`` and
        ``Backup Baseline Reset`` event.
        Optional; unset or empty disables forwarding.
    EVENT_SOURCE: ``source`` of the events the detector puts and of its own continuation
        messages. Default ``backup-anomaly-detection``.
    WORK_QUEUE_URL: the detector's own SQS queue, used to re-queue a count that cannot finish
        within one invocation. Optional; unset means a count runs until it ends (or the
        function times out and SQS retries it).
    EBS_MAX_REQUESTS_PER_SECOND: request budget of one count, a number > 0. Default 40.
    EBS_COUNT_WORKERS: concurrent ranges of one count, an integer 1..64. Default 8.
    ALARM_ACTIONS_ENABLED: ``true`` or ``false``; sets the alarms' ActionsEnabled.
        Default ``true``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

SUPPORTED_RESOURCE_TYPES = ("EBS", "EC2")
# PutEvents' EventBusName pattern (botocore model), as a whole ARN.
_BUS_ARN = re.compile(
    r"arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus/[.\-_A-Za-z0-9]+"
)
MAX_COUNT_WORKERS = 64
# Alarm names are at most 255 characters: prefix + vol-<17 hex> + "-ceiling".
MAX_ALARM_PREFIX = 255 - len("vol-0123456789abcdef0") - len("-ceiling")

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Typed, validated view of the environment contract."""

    state_table: str
    metric_namespace: str = "BackupAnomalyDetection"
    alarm_prefix: str = "backup-anomaly-"
    anomaly_band_width: float = 2.0
    ceiling_percent: float = 50.0
    alarm_period_seconds: int = 86400
    evaluation_periods: int = 1
    resource_types: frozenset[str] = frozenset(SUPPORTED_RESOURCE_TYPES)
    central_bus_arn: str | None = None
    event_source: str = "backup-anomaly-detection"
    work_queue_url: str | None = None
    ebs_max_requests_per_second: float = 40.0
    ebs_count_workers: int = 8
    alarm_actions_enabled: bool = True


def _number(name: str, raw: str, convert: Callable[[str], T]) -> T:
    try:
        return convert(raw)
    except ValueError as exc:
        kind = "an integer" if convert is int else "a number"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from exc


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _resource_types(raw: str) -> frozenset[str]:
    types = frozenset(part.strip().upper() for part in raw.split(",") if part.strip())
    unknown = sorted(types - set(SUPPORTED_RESOURCE_TYPES))
    if not types or unknown:
        raise SettingsError(
            "RESOURCE_TYPES must be a comma-separated subset of "
            f"{','.join(SUPPORTED_RESOURCE_TYPES)}, got {raw!r}"
        )
    return types


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

    def get(name: str) -> str | None:
        value = env.get(name)
        # An empty value is what CloudFormation writes for an unset optional parameter.
        return value.strip() if value is not None and value.strip() else None

    table = get("STATE_TABLE")
    if table is None:
        raise SettingsError("STATE_TABLE is required (the DynamoDB state table name)")
    defaults = Settings(state_table=table)

    width = _number("ANOMALY_BAND_WIDTH", get("ANOMALY_BAND_WIDTH") or "2", float)
    if not width > 0:
        raise SettingsError(f"ANOMALY_BAND_WIDTH must be > 0, got {width!r}")

    ceiling = _number("CEILING_PERCENT", get("CEILING_PERCENT") or "50", float)
    if not 0 <= ceiling <= 100:
        raise SettingsError(f"CEILING_PERCENT must be between 0 and 100, got {ceiling!r}")

    period = _number("ALARM_PERIOD_SECONDS", get("ALARM_PERIOD_SECONDS") or "86400", int)
    if period not in (10, 30) and (period <= 0 or period % 60):
        raise SettingsError(
            f"ALARM_PERIOD_SECONDS must be 10, 30 or a positive multiple of 60, got {period}"
        )

    evaluation = _number("EVALUATION_PERIODS", get("EVALUATION_PERIODS") or "1", int)
    if evaluation < 1:
        raise SettingsError(f"EVALUATION_PERIODS must be >= 1, got {evaluation}")
    # CloudWatch's limit: period x evaluation periods at most 7 days (1 day below an hour).
    window = 7 * 86400 if period >= 3600 else 86400
    if period * evaluation > window:
        raise SettingsError(
            f"EVALUATION_PERIODS x ALARM_PERIOD_SECONDS must be at most {window} s, "
            f"got {evaluation} x {period}"
        )

    rate = _number("EBS_MAX_REQUESTS_PER_SECOND", get("EBS_MAX_REQUESTS_PER_SECOND") or "40", float)
    if not rate > 0:
        raise SettingsError(f"EBS_MAX_REQUESTS_PER_SECOND must be > 0, got {rate!r}")

    workers = _number("EBS_COUNT_WORKERS", get("EBS_COUNT_WORKERS") or "8", int)
    if not 1 <= workers <= MAX_COUNT_WORKERS:
        # A saved count holds one range (with a page token of up to 256 characters) per
        # worker in the volume's DynamoDB item (400 KB at most); beyond the account's ~50
        # requests a second more workers only wait.
        raise SettingsError(
            f"EBS_COUNT_WORKERS must be between 1 and {MAX_COUNT_WORKERS}, got {workers}"
        )

    bus = get("CENTRAL_BUS_ARN")
    if bus is not None and not _BUS_ARN.fullmatch(bus):
        # Anything else fails every PutEvents, and forwarding failures are only counted.
        raise SettingsError(
            "CENTRAL_BUS_ARN must be an event bus ARN "
            f"(arn:aws:events:REGION:ACCOUNT:event-bus/NAME), got {bus!r}"
        )

    namespace = get("METRIC_NAMESPACE") or defaults.metric_namespace
    if len(namespace) > 255 or namespace.startswith((":", "AWS/")):
        # CloudWatch refuses such a namespace on every PutMetricData: no measurement at all.
        raise SettingsError(
            "METRIC_NAMESPACE must be at most 255 characters, not start with ':' and not be "
            f"in the reserved AWS/ namespaces, got {namespace!r}"
        )

    prefix = get("ALARM_PREFIX") or defaults.alarm_prefix
    if len(prefix) > MAX_ALARM_PREFIX:
        raise SettingsError(
            f"ALARM_PREFIX must be at most {MAX_ALARM_PREFIX} characters (alarm names are at "
            f"most 255 with the volume id and '-ceiling'), got {len(prefix)}"
        )

    source = get("EVENT_SOURCE") or defaults.event_source
    if source.startswith("aws."):
        # PutEvents rejects sources in the aws. namespace (reserved for AWS services).
        raise SettingsError(f"EVENT_SOURCE must not start with 'aws.', got {source!r}")

    return Settings(
        state_table=table,
        metric_namespace=namespace,
        alarm_prefix=prefix,
        anomaly_band_width=width,
        ceiling_percent=ceiling,
        alarm_period_seconds=period,
        evaluation_periods=evaluation,
        resource_types=_resource_types(get("RESOURCE_TYPES") or "EBS,EC2"),
        central_bus_arn=bus,
        event_source=source,
        work_queue_url=get("WORK_QUEUE_URL"),
        ebs_max_requests_per_second=rate,
        ebs_count_workers=workers,
        alarm_actions_enabled=_bool(
            "ALARM_ACTIONS_ENABLED", get("ALARM_ACTIONS_ENABLED") or "true"
        ),
    )
