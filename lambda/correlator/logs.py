"""Structured outcome logs: one JSON line per outcome, keys in a fixed order.

Lines go to stdout without a prefix, so CloudWatch Logs Insights reads them as JSON
(``fields decision, incident, severity``). The fixed keys always appear (null when not
known) so queries and metric filters never miss a field; extra keys follow them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_anomaly.logs import fixed_first, json_logger, log_json
from correlator.records import Decision

FIXED_KEYS = (
    "account",
    "region",
    "detail_type",
    "record",
    "volume",
    "incident",
    "severity",
    "decision",
    "reason",
)


@dataclass
class Outcome:
    """What happened to one event (or one scheduled run).

    Attributes:
        decision: what happened (logged as its value).
        account: the envelope's account (the sender).
        region: the record's region.
        detail_type: the event's detail-type.
        record: the record's stable id (measurementId, resetId, scanJobId).
        volume: the volume ARN.
        incident: the incident it touched.
        severity: the verdict's or the incident's severity.
        reason: a short machine-readable reason or a human message.
        extra: further keys, logged after the fixed ones.
    """

    decision: Decision
    account: str | None = None
    region: str | None = None
    detail_type: str | None = None
    record: str | None = None
    volume: str | None = None
    incident: str | None = None
    severity: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The log record, fixed keys first."""
        return fixed_first(self, FIXED_KEYS, self.extra)


# The same line format and handler as the detector's (one zip ships both packages).
logger = json_logger("correlator")


def emit(outcome: Outcome) -> dict:
    """Logs one outcome and returns the record (for the caller's own accounting)."""
    record = outcome.to_dict()
    log_json(logger, record, outcome.decision is Decision.ERROR)
    return record
