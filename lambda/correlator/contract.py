"""The correlator's settings contract: every value that travels from the config to it, once.

Same shape as the detector's contract (``backup_anomaly.contract``): one :class:`Setting`
per value, from which the generator can derive the config field (type, bounds, default,
description), the central template parameter, and the Lambda environment variable that
``correlator.settings.load`` parses with the same bounds. The two contracts are kept apart
only because each ships in its own Lambda zip; the types here are the detector's, copied
(stdlib only), so the generator can read both the same way and they can be unified.

Names do not collide with the detector's (``SETTINGS`` of both contracts may be walked
together): the config key is the name, under ``correlation`` in ``accounts.yaml``.

Where do I add a setting? Here: one ``Setting`` in ``SETTINGS`` and, if the correlator
reads it, the typed field of the same ``name`` on ``correlator.settings.Settings``
(``tests/correlator/test_settings.py`` keeps the two in step).
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


class SettingError(ValueError):
    """A value breaks its setting's type or bounds; the message says which and why."""


@dataclass(frozen=True)
class Setting:
    """One value of the contract.

    Attributes:
        name: identifier; the config key (last part of ``config``) and the field of
            ``settings.Settings`` that holds it.
        kind: how the value is typed and encoded.
        default: the default (config default; the correlator's when the variable is unset).
        description: one line a user reads in the config schema and the template.
        config: dotted path in ``accounts.yaml``; None for values the template wires from
            its own resources (table name, topic, queue).
        parameter: central template parameter; None when the template bakes the value in.
        env: Lambda environment variable; None when the correlator does not read it.
        minimum: inclusive lower bound (numbers) or minimum length (text).
        maximum: inclusive upper bound (numbers) or maximum length (text).
        multiple_of: integers only: the value must be a multiple of this.
        pattern: text only: a full-match regular expression.
        what: what the value is, for "is not a valid ..." messages (text).
        required: the correlator refuses to start without it.
    """

    name: str
    kind: Kind
    default: object
    description: str
    config: str | None = None
    parameter: str | None = None
    env: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    pattern: str | None = None
    what: str = ""
    required: bool = False

    def __post_init__(self) -> None:
        if self.config is not None and self.config.rsplit(".", 1)[-1] != self.name:
            raise ValueError(f"{self.name}: the config key must be the name ({self.config})")

    @property
    def section(self) -> str | None:
        """The config section holding the setting (``correlation``), if any."""
        return self.config.rsplit(".", 1)[0] if self.config else None

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
        else:
            value = text
        return self.check(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


SEVERITY_PATTERN = r"low|medium|high|critical"
TOPIC_ARN_PATTERN = r"arn:aws[\w-]*:sns:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:[\w-]{1,256}"
QUEUE_URL_PATTERN = r"https?://\S+"

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    # -- how long the central table remembers -------------------------------------------
    Setting(
        # SQS keeps a message at most 14 days: a redelivery always finds the record it
        # repeats (DynamoDB deletes expired items within about two days of their TTL, and
        # until then they still read, so a longer history is never shorter than this).
        "history_days", Kind.INT, 180,
        "Days the central table keeps each measurement, reset and closed incident (TTL)",
        config="correlation.history_days", parameter="CorrelatorHistoryDays",
        env="HISTORY_DAYS", minimum=15, maximum=3650,
    ),
    # -- incidents ------------------------------------------------------------------------
    Setting(
        "window_hours", Kind.INT, 24,
        "Anomalies this close in time (backup completion) belong to one incident",
        config="correlation.window_hours", parameter="CorrelationWindowHours",
        env="CORRELATION_WINDOW_HOURS", minimum=1, maximum=168,
    ),
    Setting(
        "open_severity", Kind.STR, "medium",
        "Lowest verdict severity that opens or joins an incident (low, medium, high, critical)",
        config="correlation.open_severity", parameter="IncidentOpenSeverity",
        env="INCIDENT_OPEN_SEVERITY", pattern=SEVERITY_PATTERN,
        what="severity (low, medium, high or critical)",
    ),
    Setting(
        "notify_severity", Kind.STR, "high",
        "Lowest incident severity that is emailed; lower incidents go to the audit queue only",
        config="correlation.notify_severity", parameter="IncidentNotifySeverity",
        env="INCIDENT_NOTIFY_SEVERITY", pattern=SEVERITY_PATTERN,
        what="severity (low, medium, high or critical)",
    ),
    Setting(
        "escalation_volumes", Kind.INT, 5,
        "An incident with this many volumes (medium or worse) is raised one severity level",
        config="correlation.escalation_volumes", parameter="EscalationVolumes",
        env="ESCALATION_VOLUMES", minimum=2, maximum=100000,
    ),
    Setting(
        "update_interval_minutes", Kind.INT, 15,
        "Growth of an incident is reported at most this often (a severity rise at once)",
        config="correlation.update_interval_minutes", parameter="IncidentUpdateMinutes",
        env="UPDATE_INTERVAL_MINUTES", minimum=0, maximum=1440,
    ),
    Setting(
        "expiry_days", Kind.INT, 7,
        "An incident without a new anomaly for this many days is closed as expired",
        config="correlation.expiry_days", parameter="IncidentExpiryDays",
        env="INCIDENT_EXPIRY_DAYS", minimum=1, maximum=90,
    ),
    Setting(
        "late_event_hours", Kind.INT, 96,
        "A closed incident still takes events this many hours late (the queue's retention)",
        config="correlation.late_event_hours", parameter="LateEventHours",
        env="LATE_EVENT_HOURS", minimum=1, maximum=336,
    ),
    # -- silence ----------------------------------------------------------------------------
    Setting(
        "silence_intervals", Kind.FLOAT, 2.0,
        "An account-region (or a regularly backed-up volume) silent for this many backup "
        "intervals is an operational incident",
        config="correlation.silence_intervals", parameter="SilenceIntervals",
        env="SILENCE_INTERVALS", minimum=1.5, maximum=30,
    ),
    Setting(
        "regular_backups", Kind.INT, 3,
        "Measurements of a volume in a row that make its backups regular (stopping is reported)",
        config="correlation.regular_backups", parameter="RegularBackups",
        env="REGULAR_BACKUPS", minimum=2, maximum=30,
    ),
    Setting(
        "default_interval_seconds", Kind.INT, 86400,
        "Backup interval assumed for an account-region neither the roster nor a heartbeat names",
        config="correlation.default_interval_seconds", parameter="DefaultBackupInterval",
        env="DEFAULT_INTERVAL_SECONDS", minimum=3600, maximum=604800,
    ),
    # -- messages ---------------------------------------------------------------------------
    Setting(
        "message_volumes", Kind.INT, 25,
        "Volumes described in an email (all of them are in the audit queue's JSON)",
        config="correlation.message_volumes", parameter="MessageVolumes",
        env="MESSAGE_VOLUMES", minimum=1, maximum=200,
    ),
    Setting(
        "organizations_names", Kind.BOOL, False,
        "Look up account names the roster lacks with Organizations DescribeAccount "
        "(needs the security account to be a delegated administrator)",
        config="correlation.organizations_names", parameter="OrganizationsAccountNames",
        env="ORGANIZATIONS_ACCOUNT_NAMES",
    ),
    # -- the function and its schedule (template only) ------------------------------------
    Setting(
        "sweep_minutes", Kind.INT, 15,
        "Minutes between scheduled runs: silence check, resolutions, deferred updates",
        config="correlation.sweep_minutes", minimum=5, maximum=60,
    ),
    Setting(
        "correlator_memory_mb", Kind.INT, 512,
        "Correlator memory in MB",
        config="correlation.correlator_memory_mb", minimum=128, maximum=10240,
    ),
    Setting(
        "correlator_timeout_seconds", Kind.INT, 300,
        "Correlator timeout in seconds (the queue's visibility timeout is six times this)",
        config="correlation.correlator_timeout_seconds", minimum=30, maximum=900,
    ),
    Setting(
        "correlator_max_concurrency", Kind.INT, 5,
        "Concurrent correlator invocations (SQS MaximumConcurrency)",
        config="correlation.correlator_max_concurrency", minimum=2, maximum=1000,
    ),
    Setting(
        "correlator_max_receive_count", Kind.INT, 5,
        "Deliveries of an event before it goes to the correlator's dead-letter queue",
        config="correlation.correlator_max_receive_count", minimum=5, maximum=1000,
    ),
    # -- wiring: the central template sets these from its own resources -------------------
    Setting(
        "central_table", Kind.STR, "",
        "The central DynamoDB table (see correlator.store for its keys and index)",
        env="CENTRAL_TABLE", required=True,
    ),
    Setting(
        "alert_topic_arn", Kind.STR, None,
        "SNS topic of the incident emails (unset: none are sent)",
        env="ALERT_TOPIC_ARN", pattern=TOPIC_ARN_PATTERN,
        what="SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
    ),
    Setting(
        "audit_queue_url", Kind.STR, None,
        "SQS queue receiving the full JSON of every incident change (unset: none)",
        env="AUDIT_QUEUE_URL", pattern=QUEUE_URL_PATTERN, what="queue URL",
    ),
    Setting(
        "member_event_source", Kind.STR, "backup-anomaly-detection",
        "source of the events the member detectors put on the central bus",
        env="MEMBER_EVENT_SOURCE", pattern=r"(?!aws\.)[\w.\-/]{1,256}",
        what="event source (not in the aws. namespace)",
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
    """Entries that are central template parameters, in contract order."""
    return tuple(s for s in SETTINGS if s.parameter is not None)


def environment() -> tuple[Setting, ...]:
    """Entries the correlator reads from its environment, in contract order."""
    return tuple(s for s in SETTINGS if s.env is not None)


def _check_unique() -> None:
    for attribute in ("name", "config", "parameter", "env"):
        values = [getattr(s, attribute) for s in SETTINGS if getattr(s, attribute)]
        if len(values) != len(set(values)):
            raise ValueError(f"two settings share a {attribute}")


_check_unique()
