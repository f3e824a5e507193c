"""The settings contract: every value that travels from the config to the detector, once.

A setting is written here and nowhere else. From an entry the generator derives the config
field (type, bounds, default, description; the OU/account override when ``overridable``),
the member template parameter (``MinValue``/``MaxValue``/``AllowedValues``/
``AllowedPattern`` from the same bounds), the StackSet parameter and its per-target
overrides, the instance grouping, and the Lambda environment variable; the detector's
``settings.load`` parses that variable with the same bounds. So a value refused anywhere is
refused first by the config, with its line, and a rename cannot leave one side reading a
default.

Where do I add a setting? Here: one ``Setting`` in ``SETTINGS`` (and, if the detector reads
it, the typed field of the same ``name`` on ``settings.Settings``). The config model, the
templates and the tests pick it up. ``tests/generator/test_settings_contract.py`` walks
every entry from YAML to ``settings.load``.

This module is stdlib only: it ships in the detector's zip, and the generator imports it
(never the reverse).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a value is typed in the config and encoded in parameters and the environment."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    CRON = "cron"  # an AWS Backup cron expression; the generator checks its fields
    CHOICES = "choices"  # a non-empty set of ``choices``, comma-separated when encoded


class Scope(StrEnum):
    """Which member templates carry a setting's parameter."""

    ALWAYS = "always"
    BACKUP_PLAN = "backup_plan"  # only where the member creates the backup plan (mode create)


class SettingError(ValueError):
    """A value breaks its setting's type or bounds; the message says which and why."""


@dataclass(frozen=True)
class Setting:
    """One value of the contract.

    Attributes:
        name: identifier; the config key (last part of ``config``) and the field of
            ``settings.Settings`` that holds it.
        kind: how the value is typed and encoded.
        default: the default (config default; the detector's when the variable is unset).
        description: one line a user reads in the config schema and the template.
        config: dotted path in ``accounts.yaml`` (``detection.band_width``); None for values
            the template wires from its own resources (table name, queue URL).
        parameter: member template parameter; None when the template bakes the value in.
        env: Lambda environment variable; None when the detector does not read it.
        overridable: OUs and accounts may override it (needs ``parameter``).
        scope: which member templates declare the parameter.
        minimum: inclusive lower bound (numbers) or minimum length (text).
        maximum: inclusive upper bound (numbers) or maximum length (text).
        multiple_of: integers only: the value must be a multiple of this.
        pattern: text only: a full-match regular expression.
        choices: the allowed values (``CHOICES``).
        what: what the value is, for "is not a valid ..." messages (text).
        required: the detector refuses to start without it.
    """

    name: str
    kind: Kind
    default: object
    description: str
    config: str | None = None
    parameter: str | None = None
    env: str | None = None
    overridable: bool = False
    scope: Scope = Scope.ALWAYS
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    what: str = ""
    required: bool = False

    def __post_init__(self) -> None:
        if self.overridable and self.parameter is None:
            raise ValueError(f"{self.name}: an overridable setting needs a parameter")
        if self.config is not None and self.config.rsplit(".", 1)[-1] != self.name:
            raise ValueError(f"{self.name}: the config key must be the name ({self.config})")

    @property
    def section(self) -> str | None:
        """The config section holding the setting (``detection.detector``), if any."""
        return self.config.rsplit(".", 1)[0] if self.config else None

    # -- checking and encoding -------------------------------------------------------------

    def check(self, value: object) -> object:
        """``value`` if it is within this setting's type and bounds.

        Raises:
            SettingError: it is not; the message says why (without the setting's name).
        """
        if self.kind in (Kind.INT, Kind.FLOAT):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingError(f"expected a number, got {value!r}")
            if self.kind is Kind.INT and not float(value).is_integer():
                raise SettingError(f"expected a whole number, got {value!r}")
            if not math.isfinite(value):
                raise SettingError(f"expected a finite number, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise SettingError(f"must be at least {_number(self.minimum)}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise SettingError(f"must be at most {_number(self.maximum)}, got {value}")
            if self.multiple_of and int(value) % self.multiple_of:
                raise SettingError(f"must be a multiple of {self.multiple_of}, got {value}")
            return int(value) if self.kind is Kind.INT else float(value)
        if self.kind is Kind.BOOL:
            if not isinstance(value, bool):
                raise SettingError(f"expected true or false, got {value!r}")
            return value
        if self.kind is Kind.CHOICES:
            items = tuple(value) if isinstance(value, list | tuple | frozenset | set) else None
            if not items:
                raise SettingError(f"expected a non-empty list of {', '.join(self.choices)}")
            unknown = sorted(str(v) for v in items if v not in self.choices)
            if unknown:
                raise SettingError(f"{', '.join(unknown)} not among {', '.join(self.choices)}")
            return frozenset(str(v) for v in items)
        if not isinstance(value, str):
            raise SettingError(f"expected text, got {value!r}")
        if self.minimum is not None and len(value) < self.minimum:
            raise SettingError(f"must be at least {int(self.minimum)} characters")
        if self.maximum is not None and len(value) > self.maximum:
            raise SettingError(f"must be at most {int(self.maximum)} characters")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise SettingError(f"{value!r} is not a valid {self.what or self.name}")
        return value

    def encode(self, value: object) -> str:
        """The text a template parameter or an environment variable carries."""
        if self.kind is Kind.BOOL:
            return "true" if value else "false"
        if self.kind is Kind.CHOICES:
            assert isinstance(value, list | tuple | set | frozenset)
            return ",".join(sorted(str(v) for v in value))
        if isinstance(value, float) and value.is_integer():
            # Parameters are strings: 2.0 and 2 must compare equal in plans and overrides.
            return str(int(value))
        return str(value)

    def decode(self, raw: str) -> object:
        """Parses an encoded value (the environment's text) and checks it.

        Raises:
            SettingError: the text is not a valid value.
        """
        text = raw.strip()
        value: object
        if self.kind is Kind.INT:
            try:
                value = int(text)
            except ValueError:
                raise SettingError(f"expected a whole number, got {raw!r}") from None
        elif self.kind is Kind.FLOAT:
            try:
                value = float(text)
            except ValueError:
                raise SettingError(f"expected a number, got {raw!r}") from None
        elif self.kind is Kind.BOOL:
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise SettingError(f"expected true or false, got {raw!r}")
            value = lowered == "true"
        elif self.kind is Kind.CHOICES:
            value = [part.strip().upper() for part in text.split(",") if part.strip()]
        else:
            value = text
        return self.check(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# Identifiers AWS gives the things the contract names.
EVENT_BUS_ARN_PATTERN = (
    r"arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus/[.\-_A-Za-z0-9]+"
)
RESOURCE_TYPES = ("EBS", "EC2")

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    # -- CloudWatch alarms (per volume) --------------------------------------------------
    Setting(
        "cloudwatch_alarms", Kind.BOOL, False,
        "Also keep a CloudWatch anomaly-band and ceiling alarm per volume (the detector's "
        "own verdicts replace them; about $0.40 per volume-month)",
        config="detection.cloudwatch_alarms", parameter="CloudWatchAlarms",
        env="CLOUDWATCH_ALARMS", overridable=True,
    ),
    Setting(
        "band_width", Kind.FLOAT, 2.0,
        "Standard deviations of the anomaly detection band",
        config="detection.band_width", parameter="AnomalyBandWidth", env="ANOMALY_BAND_WIDTH",
        overridable=True, minimum=0.1, maximum=10,
    ),
    Setting(
        "ceiling_percent", Kind.FLOAT, 50.0,
        "A change of at least this percent of the data written is at least high when it is "
        "also unusual by size (and the ceiling alarm's threshold); 0 disables it",
        config="detection.ceiling_percent", parameter="CeilingPercent", env="CEILING_PERCENT",
        overridable=True, minimum=0, maximum=100,
    ),
    Setting(
        "alarm_period_seconds", Kind.INT, 86400,
        "Alarm period in seconds; match the backup frequency",
        config="detection.alarm_period_seconds", parameter="AlarmPeriodSeconds",
        env="ALARM_PERIOD_SECONDS", overridable=True, minimum=3600, maximum=86400,
        multiple_of=3600, what="whole hours: backups run at most hourly",
    ),
    Setting(
        "evaluation_periods", Kind.INT, 1,
        "Alarm evaluation periods",
        config="detection.evaluation_periods", parameter="EvaluationPeriods",
        env="EVALUATION_PERIODS", overridable=True, minimum=1, maximum=7,
    ),
    # -- verdicts (backup_anomaly.scoring.ScoringConfig: same names, same bounds) ---------
    Setting(
        "content_sampling", Kind.BOOL, True,
        "Read a sample of each backup's changed blocks from both snapshots and judge their "
        "compressibility in memory (never stored); off: verdicts on size alone",
        config="detection.content_sampling", parameter="ContentSampling",
        env="CONTENT_SAMPLING", overridable=True,
    ),
    Setting(
        "floor_percent", Kind.FLOAT, 1.0,
        "Change below this percent of the data written, per day of backup interval, is never "
        "anomalous",
        config="detection.verdicts.floor_percent", parameter="FloorPercent",
        env="FLOOR_PERCENT", overridable=True, minimum=0, maximum=100,
    ),
    Setting(
        "floor_blocks", Kind.INT, 64,
        "Nor is a change of fewer 512 KiB blocks than this",
        config="detection.verdicts.floor_blocks", parameter="FloorBlocks", env="FLOOR_BLOCKS",
        overridable=True, minimum=0, maximum=1_000_000,
    ),
    Setting(
        "prior_daily_percent", Kind.FLOAT, 2.0,
        "Before a volume has history: the percent of its data it is expected to change a day",
        config="detection.verdicts.prior_daily_percent", parameter="PriorDailyPercent",
        env="PRIOR_DAILY_PERCENT", overridable=True, minimum=0.01, maximum=100,
    ),
    Setting(
        "prior_spread", Kind.FLOAT, 3.0,
        "How far (a factor, one standard deviation) a volume's usual change may be from "
        "prior_daily_percent",
        config="detection.verdicts.prior_spread", parameter="PriorSpread", env="PRIOR_SPREAD",
        overridable=True, minimum=1.1, maximum=100,
    ),
    Setting(
        "low_score", Kind.FLOAT, 2.0,
        "Score (-log10 of the chance that ordinary change looks like this) where low starts",
        config="detection.verdicts.low_score", parameter="LowScore", env="LOW_SCORE",
        overridable=True, minimum=0.5, maximum=50,
    ),
    Setting(
        "medium_score", Kind.FLOAT, 3.0,
        "Score where medium starts",
        config="detection.verdicts.medium_score", parameter="MediumScore", env="MEDIUM_SCORE",
        overridable=True, minimum=0.5, maximum=50,
    ),
    Setting(
        "high_score", Kind.FLOAT, 4.0,
        "Score where high starts (high and critical reach the alert topic)",
        config="detection.verdicts.high_score", parameter="HighScore", env="HIGH_SCORE",
        overridable=True, minimum=0.5, maximum=50,
    ),
    Setting(
        "critical_score", Kind.FLOAT, 6.0,
        "Score where critical starts",
        config="detection.verdicts.critical_score", parameter="CriticalScore",
        env="CRITICAL_SCORE", overridable=True, minimum=0.5, maximum=50,
    ),
    Setting(
        # The history lives in the volume's DynamoDB item (400 KB at most) beside a saved
        # count (up to ~175 KB): 400 entries of ~90 bytes keep the item well under it.
        "history_limit", Kind.INT, 120,
        "Measurements of each volume kept and judged against (weekly and monthly seasons)",
        config="detection.verdicts.history_limit", env="HISTORY_LIMIT", minimum=1, maximum=400,
    ),
    Setting(
        "relearn_days", Kind.FLOAT, 14.0,
        "A change flagged medium or worse becomes the volume's normal after this many days",
        config="detection.verdicts.relearn_days", parameter="RelearnDays", env="RELEARN_DAYS",
        overridable=True, minimum=1, maximum=365,
    ),
    # -- confirmation and findings (high and critical anomalies) --------------------------
    Setting(
        "confirmation_scan", Kind.BOOL, False,
        "Start an AWS Backup malware scan (GuardDuty) of the recovery point of each high or "
        "critical anomaly, incremental against the last clean one (about $0.05 per GB "
        "scanned)",
        config="detection.confirmation_scan", parameter="ConfirmationScan",
        env="CONFIRMATION_SCAN", overridable=True,
    ),
    Setting(
        "security_hub_findings", Kind.BOOL, False,
        "Import each high or critical anomaly as a Security Hub finding in its own account "
        "and region (Security Hub enabled there; the organization's administrator "
        "aggregates them)",
        config="detection.security_hub_findings", parameter="SecurityHubFindings",
        env="SECURITY_HUB_FINDINGS", overridable=True,
    ),
    # -- what is measured, and where it goes ---------------------------------------------
    Setting(
        "resource_types", Kind.CHOICES, RESOURCE_TYPES,
        "AWS Backup resource types to measure: EBS volumes, EC2 instances (their volumes)",
        config="detection.resource_types", env="RESOURCE_TYPES", choices=RESOURCE_TYPES,
        what="resource type",
    ),
    Setting(
        "metric_namespace", Kind.STR, "BackupAnomalyDetection",
        "CloudWatch namespace of the detector's metrics (not AWS/...)",
        config="detection.metric_namespace", env="METRIC_NAMESPACE",
        pattern=r"(?!AWS/)[A-Za-z0-9][A-Za-z0-9_./#:-]{0,254}",
        what="CloudWatch metric namespace (not in AWS/)",
    ),
    Setting(
        "alarm_prefix", Kind.STR, "backup-anomaly-",
        "Prefix of every alarm the detector and the member stack create",
        config="detection.alarm_prefix", env="ALARM_PREFIX",
        pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
        what="alarm prefix (letters, digits, _ . -, at most 64)",
    ),
    # -- the detector function ------------------------------------------------------------
    Setting(
        "memory_mb", Kind.INT, 1024,
        "Detector memory in MB; CPU grows with it, and parsing ListChangedBlocks is CPU-bound",
        config="detection.detector.memory_mb", parameter="DetectorMemoryMB",
        overridable=True, minimum=128, maximum=10240,
    ),
    Setting(
        "timeout_seconds", Kind.INT, 900,
        "Detector timeout in seconds; a count that needs longer continues in a new invocation",
        config="detection.detector.timeout_seconds", minimum=60, maximum=900,
    ),
    Setting(
        "max_concurrency", Kind.INT, 5,
        "Concurrent detector invocations per account and region (SQS MaximumConcurrency)",
        config="detection.detector.max_concurrency", parameter="DetectorMaxConcurrency",
        overridable=True, minimum=2, maximum=1000,
    ),
    Setting(
        # Shared by every count of the account and region through leases in the state table
        # (backup_anomaly.budget); the quota is 50/s and not adjustable (L-DB2FBAA1).
        "ebs_max_requests_per_second", Kind.FLOAT, 40.0,
        "ListChangedBlocks requests per second for all counts of an account and region "
        "together, of the quota of 50",
        config="detection.detector.ebs_max_requests_per_second",
        parameter="EbsMaxRequestsPerSecond", env="EBS_MAX_REQUESTS_PER_SECOND",
        overridable=True, minimum=1, maximum=50,
    ),
    Setting(
        "ebs_count_workers", Kind.INT, 8,
        # A saved count holds one range (with a page token of up to 256 characters) per
        # worker in the volume's DynamoDB item (400 KB at most); beyond the account's ~50
        # requests a second more workers only wait.
        "Concurrent ListChangedBlocks ranges inside one count",
        config="detection.detector.ebs_count_workers", env="EBS_COUNT_WORKERS",
        minimum=1, maximum=64,
    ),
    Setting(
        # Quota 1,000/s per account and region, adjustable (L-C125AE42).
        "ebs_get_block_requests_per_second", Kind.FLOAT, 800.0,
        "GetSnapshotBlock requests per second for all content samplers of an account and "
        "region together, of the quota (1,000 unless raised)",
        config="detection.detector.ebs_get_block_requests_per_second",
        parameter="EbsGetBlockRequestsPerSecond", env="EBS_GET_BLOCK_REQUESTS_PER_SECOND",
        overridable=True, minimum=1, maximum=10000,
    ),
    Setting(
        "content_samples", Kind.INT, 32,
        "Changed blocks sampled per measurement (read from both snapshots: 2 requests each)",
        config="detection.detector.content_samples", env="CONTENT_SAMPLES",
        minimum=1, maximum=1024,
    ),
    Setting(
        # The sample is drawn during the count and carried in its checkpoint (about 170
        # bytes a block), so the maximum bounds a saved count's share of the 400 KB item.
        "content_samples_max", Kind.INT, 256,
        "Changed blocks sampled when the size alone is already unusual",
        config="detection.detector.content_samples_max", env="CONTENT_SAMPLES_MAX",
        minimum=1, maximum=1024,
    ),
    Setting(
        "dlq_max_receive_count", Kind.INT, 5,
        "Deliveries of a backup event before it goes to the dead-letter queue (at least 5: "
        "Lambda's own scaling can return a message a few times before an invocation starts)",
        config="detection.detector.dlq_max_receive_count", minimum=5, maximum=1000,
    ),
    # -- the backup plan (backup mode create) ---------------------------------------------
    Setting(
        "schedule", Kind.CRON, "cron(0 5 ? * * *)",
        "AWS Backup schedule expression of the plan this stack creates",
        config="backup.schedule", parameter="BackupSchedule", overridable=True,
        scope=Scope.BACKUP_PLAN, pattern=r"cron\(.+\)", what="AWS cron expression",
    ),
    Setting(
        "retention_days", Kind.INT, 35,
        "Days AWS Backup keeps each recovery point",
        config="backup.retention_days", parameter="BackupRetentionDays", overridable=True,
        scope=Scope.BACKUP_PLAN, minimum=1, maximum=36500,
    ),
    # -- wiring: the member template sets these from its own resources --------------------
    Setting(
        "state_table", Kind.STR, "",
        "DynamoDB table of per-volume state (partition key VolumeArn)",
        env="STATE_TABLE", required=True,
    ),
    Setting(
        "central_bus_arn", Kind.STR, None,
        "Event bus that receives every measurement and reset (unset: no forwarding)",
        env="CENTRAL_BUS_ARN", pattern=EVENT_BUS_ARN_PATTERN,
        what="event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)",
    ),
    Setting(
        "event_source", Kind.STR, "backup-anomaly-detection",
        "source of the events the detector puts (PutEvents refuses the aws. namespace)",
        env="EVENT_SOURCE", pattern=r"(?!aws\.)[\w.\-/]{1,256}",
        what="event source (not in the aws. namespace)",
    ),
    Setting(
        "work_queue_url", Kind.STR, None,
        "The detector's own queue, to re-queue a count that outlasts one invocation",
        env="WORK_QUEUE_URL",
    ),
    Setting(
        "scanner_role_arn", Kind.STR, None,
        "Role GuardDuty Malware Protection assumes to read a recovery point it scans (unset: "
        "confirmation scans are off)",
        env="SCANNER_ROLE_ARN", pattern=r"arn:aws[\w-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}",
        what="IAM role ARN",
    ),
    Setting(
        "alarm_actions_enabled", Kind.BOOL, True,
        "ActionsEnabled of the volume alarms (they carry no actions: EventBridge forwards "
        "their state changes)",
        env="ALARM_ACTIONS_ENABLED",
    ),
)
# fmt: on

BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    """The entry called ``name``.

    Raises:
        KeyError: there is none.
    """
    return BY_NAME[name]


def configured() -> tuple[Setting, ...]:
    """Entries the config sets, in contract order."""
    return tuple(s for s in SETTINGS if s.config is not None)


def parameters() -> tuple[Setting, ...]:
    """Entries that are member template parameters, in contract order."""
    return tuple(s for s in SETTINGS if s.parameter is not None)


def environment() -> tuple[Setting, ...]:
    """Entries the detector reads from its environment, in contract order."""
    return tuple(s for s in SETTINGS if s.env is not None)


def _check_unique() -> None:
    for attribute in ("name", "config", "parameter", "env"):
        values = [getattr(s, attribute) for s in SETTINGS if getattr(s, attribute)]
        if len(values) != len(set(values)):
            raise ValueError(f"two settings share a {attribute}")


_check_unique()
