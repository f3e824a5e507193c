"""Structured outcome logs: one JSON line per outcome, keys in a fixed order.

Lines go to stdout without a prefix, so CloudWatch Logs Insights reads them as JSON
(``fields decision, incident, severity``). The fixed keys always appear (null when not
known) so queries and metric filters never miss a field; extra keys follow them.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

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
        record = {key: getattr(self, key) for key in FIXED_KEYS}
        record["decision"] = str(self.decision)
        for key, value in self.extra.items():
            if key not in record:
                record[key] = value
        return record


class _StdoutHandler(logging.Handler):
    """Writes the bare message to the current ``sys.stdout`` (looked up on every line)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never break the correlator
            self.handleError(record)


logger = logging.getLogger("correlator")
if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
    logger.addHandler(_StdoutHandler())
logger.setLevel(logging.INFO)
# Lambda's root handler would prefix each line and break the JSON.
logger.propagate = False


def emit(outcome: Outcome) -> dict:
    """Logs one outcome and returns the record (for the caller's own accounting)."""
    record = outcome.to_dict()
    level = logging.ERROR if outcome.decision is Decision.ERROR else logging.INFO
    logger.log(level, json.dumps(record, default=str))
    return record
