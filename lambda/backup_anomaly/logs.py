"""Structured outcome logs: one JSON line per outcome, keys in a fixed order.

Lines go to stdout without a prefix, so CloudWatch Logs Insights reads them as JSON
(``fields decision, volume, changed_blocks``). The fixed keys always appear (null when not
known) so queries and metric filters never miss a field; extra keys follow them.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from backup_anomaly.records import Decision

FIXED_KEYS = (
    "account",
    "region",
    "volume",
    "snapshots",
    "changed_blocks",
    "api_calls",
    "duration_ms",
    "decision",
    "reason",
)


@dataclass
class Outcome:
    """What happened to one volume (or one event that was skipped).

    Attributes:
        decision: what happened (logged as its value).
        reason: a short machine-readable reason or a human message.
        extra: further keys, logged after the fixed ones.
    """

    decision: Decision
    account: str | None = None
    region: str | None = None
    volume: str | None = None
    snapshots: dict | None = None
    changed_blocks: int | None = None
    api_calls: int = 0
    duration_ms: int | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The log record, fixed keys first."""
        return fixed_first(self, FIXED_KEYS, self.extra)


def fixed_first(outcome: Any, keys: tuple[str, ...], extra: dict[str, Any]) -> dict:
    """``outcome``'s ``keys`` (its ``decision`` as a string), then the ``extra`` keys."""
    record = {key: getattr(outcome, key) for key in keys}
    record["decision"] = str(outcome.decision)
    for key, value in extra.items():
        if key not in record:
            record[key] = value
    return record


class _StdoutHandler(logging.Handler):
    """Writes the bare message to the current ``sys.stdout`` (looked up on every line)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never break the function
            self.handleError(record)


def json_logger(name: str) -> logging.Logger:
    """The package's logger: bare JSON lines on stdout (once, however often imported)."""
    found = logging.getLogger(name)
    if not any(isinstance(h, _StdoutHandler) for h in found.handlers):
        found.addHandler(_StdoutHandler())
    found.setLevel(logging.INFO)
    # Lambda's root handler would prefix each line and break the JSON.
    found.propagate = False
    return found


def log_json(to: logging.Logger, record: dict, error: bool) -> None:
    to.log(logging.ERROR if error else logging.INFO, json.dumps(record, default=str))


logger = json_logger("backup_anomaly")


def emit(outcome: Outcome) -> dict:
    """Logs one outcome and returns the record (for the caller's own accounting)."""
    record = outcome.to_dict()
    log_json(logger, record, outcome.decision is Decision.ERROR)
    return record
