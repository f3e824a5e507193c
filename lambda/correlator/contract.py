"""The correlator's settings contract: every value that travels from the config to it, once.

The detector's contract types (``backup_anomaly.contract``; both packages ship in the one
zip): one :class:`Setting` per value, from which the generator derives the config field
(type, bounds, default, description, the ``correlation`` section of ``accounts.yaml``) and
the central template's environment, and which ``correlator.settings.load`` parses with the
same bounds. The central stack is deployed from the config directly, so its values are
baked in: no template parameters.

Names do not collide with the detector's (``SETTINGS`` of both contracts may be walked
together): the config key is the name, under ``correlation`` in ``accounts.yaml``.

Where do I add a setting? Here: one ``Setting`` in ``SETTINGS`` and, if the correlator
reads it, the typed field of the same ``name`` on ``correlator.settings.Settings``
(``tests/correlator/test_settings.py`` keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping

from backup_anomaly.contract import Kind, Setting, SettingError

# The types are the detector's: one settings contract, two lists of entries (each Lambda
# reads its own; the generator walks both). Both packages ship in the one zip.
__all__ = ["Kind", "Setting", "SettingError", "SETTINGS"]


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
        config="correlation.history_days",
        env="HISTORY_DAYS", minimum=15, maximum=3650,
    ),
    # -- incidents ------------------------------------------------------------------------
    Setting(
        "window_hours", Kind.INT, 24,
        "Anomalies this close in time (backup completion) belong to one incident",
        config="correlation.window_hours",
        env="CORRELATION_WINDOW_HOURS", minimum=1, maximum=168,
    ),
    Setting(
        "open_severity", Kind.STR, "medium",
        "Lowest verdict severity that opens or joins an incident (low, medium, high, critical)",
        config="correlation.open_severity",
        env="INCIDENT_OPEN_SEVERITY", pattern=SEVERITY_PATTERN,
        what="severity (low, medium, high or critical)",
    ),
    Setting(
        "notify_severity", Kind.STR, "high",
        "Lowest incident severity that is emailed; lower incidents go to the audit queue only",
        config="correlation.notify_severity",
        env="INCIDENT_NOTIFY_SEVERITY", pattern=SEVERITY_PATTERN,
        what="severity (low, medium, high or critical)",
    ),
    Setting(
        "escalation_volumes", Kind.INT, 5,
        "An incident with this many volumes (medium or worse) is raised one severity level",
        config="correlation.escalation_volumes",
        env="ESCALATION_VOLUMES", minimum=2, maximum=100000,
    ),
    Setting(
        "update_interval_minutes", Kind.INT, 15,
        "Growth of an incident is reported at most this often (a severity rise at once)",
        config="correlation.update_interval_minutes",
        env="UPDATE_INTERVAL_MINUTES", minimum=0, maximum=1440,
    ),
    Setting(
        "expiry_days", Kind.INT, 7,
        "An incident without a new anomaly for this many days is closed as expired",
        config="correlation.expiry_days",
        env="INCIDENT_EXPIRY_DAYS", minimum=1, maximum=90,
    ),
    Setting(
        "late_event_hours", Kind.INT, 96,
        "A closed incident still takes events this many hours late (the queue's retention)",
        config="correlation.late_event_hours",
        env="LATE_EVENT_HOURS", minimum=1, maximum=336,
    ),
    # -- silence ----------------------------------------------------------------------------
    Setting(
        "silence_intervals", Kind.FLOAT, 2.0,
        "An account-region (or a regularly backed-up volume) silent for this many backup "
        "intervals is an operational incident",
        config="correlation.silence_intervals",
        env="SILENCE_INTERVALS", minimum=1.5, maximum=30,
    ),
    Setting(
        "regular_backups", Kind.INT, 3,
        "Measurements of a volume in a row that make its backups regular (stopping is reported)",
        config="correlation.regular_backups",
        env="REGULAR_BACKUPS", minimum=2, maximum=30,
    ),
    Setting(
        "default_interval_seconds", Kind.INT, 86400,
        "Backup interval assumed for an account-region neither the roster nor a heartbeat names",
        config="correlation.default_interval_seconds",
        env="DEFAULT_INTERVAL_SECONDS", minimum=3600, maximum=604800,
    ),
    # -- messages ---------------------------------------------------------------------------
    Setting(
        "message_volumes", Kind.INT, 25,
        "Volumes described in an email (all of them are in the audit queue's JSON)",
        config="correlation.message_volumes",
        env="MESSAGE_VOLUMES", minimum=1, maximum=200,
    ),
    Setting(
        "organizations_names", Kind.BOOL, False,
        "Look up account names the roster lacks with Organizations DescribeAccount "
        "(needs the security account to be a delegated administrator)",
        config="correlation.organizations_names",
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


def environment() -> tuple[Setting, ...]:
    """Entries the correlator reads from its environment, in contract order."""
    return tuple(s for s in SETTINGS if s.env is not None)


def _check_unique() -> None:
    for attribute in ("name", "config", "env"):
        values = [getattr(s, attribute) for s in SETTINGS if getattr(s, attribute)]
        if len(values) != len(set(values)):
            raise ValueError(f"two settings share a {attribute}")


_check_unique()
