"""A volume's measurement history, as its state item keeps it: what verdicts are judged on.

The history is the ``History`` attribute of the volume's DynamoDB item, one compact JSON
array per measurement, oldest first, at most ``history_limit`` of them. It is written in the
same conditional update that moves the baseline and records the pending measurement, so the
history, the baseline and the published verdict can never disagree: a crash either left all
three unchanged or wrote all three.

An entry is ``[time, changedBlocks, writtenBlocks, content, previousTime, snapshotId,
severity]``: times as integer microseconds since the epoch (exact, so that a replay of the
forwarded events through ``backtest`` judges on the very same instants), ``content`` as
``[sampledBlocks, pages, incompressibleBefore, incompressibleAfter]`` or null, severity as
its rank (0 none .. 4 critical). About 110 bytes an entry: 120 entries are 13 KB, the
contract's maximum of 400 is 45 KB of the item's 400 KB (a test writes one at the maximum,
beside the largest saved count).

What a verdict needs and nothing else: no block content is ever part of it (the content
counts are page counts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from backup_anomaly.scoring import Content, HistoryEntry, Observation, Severity

FORMAT = 1
_BY_RANK = tuple(Severity)


def _micros(value: datetime) -> int:
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(micros: int) -> datetime:
    seconds, rest = divmod(int(micros), 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)


def _entry(entry: HistoryEntry) -> list:
    o = entry.observation
    c = o.content
    return [
        _micros(o.time),
        o.changed_blocks,
        o.written_blocks,
        [c.sampled_blocks, c.pages, c.incompressible_before, c.incompressible_after]
        if c is not None
        else None,
        _micros(o.previous_time) if o.previous_time is not None else None,
        o.snapshot_id,
        entry.severity.rank,
    ]


def to_json(entries: Sequence[HistoryEntry]) -> str:
    """The ``History`` attribute's text."""
    return json.dumps({"v": FORMAT, "entries": [_entry(e) for e in entries]}, separators=(",", ":"))


def from_json(text: str) -> tuple[HistoryEntry, ...]:
    """Inverse of :func:`to_json`.

    Raises:
        ValueError: the text is not a history this module wrote.
    """
    try:
        data = json.loads(text)
        if data.get("v") != FORMAT:
            raise ValueError(f"unknown history format {data.get('v')!r}")
        entries = []
        for row in data["entries"]:
            time, changed, written, content, previous, snapshot, rank = row
            entries.append(
                HistoryEntry(
                    Observation(
                        time=_time(time),
                        changed_blocks=changed,
                        written_blocks=written,
                        content=Content(*content) if content is not None else None,
                        previous_time=_time(previous) if previous is not None else None,
                        snapshot_id=snapshot,
                    ),
                    _BY_RANK[rank],
                )
            )
        return tuple(entries)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid history: {exc}") from exc


def appended(
    history: Sequence[HistoryEntry], entry: HistoryEntry, limit: int
) -> tuple[HistoryEntry, ...]:
    """``history`` with ``entry`` at its end, the oldest dropped beyond ``limit``."""
    return (*history, entry)[-limit:]
