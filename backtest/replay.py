"""Replaying measurements per volume, in completion-time order, through a model.

Each volume's measurements are de-duplicated by ``measurementId`` (the first event read
wins; a duplicate that reports different numbers is recorded as a conflict), ordered by
completion time, and judged one after the other with the history the Lambda would have
had: every earlier measurement of the volume with the severity it was given. Verdicts in
the input are ignored; they are recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from backtest.events import Measurement
from backtest.seed import band_verdict
from backup_anomaly.scoring import (
    DEFAULT_CONFIG,
    HistoryEntry,
    Observation,
    ScoringConfig,
    Verdict,
    judge,
)

Judge = Callable[[Observation, Sequence[HistoryEntry]], Verdict]
MODELS = ("ours", "size-only", "cloudwatch-band")


@dataclass(frozen=True)
class Judged:
    """One measurement and the verdict the model gave it.

    Attributes:
        measurement: the event.
        verdict: the recomputed verdict.
        observation: what the model saw.
        position: the measurement's place in its volume (0 = the volume's first).
    """

    measurement: Measurement
    verdict: Verdict
    observation: Observation
    position: int


@dataclass
class Replay:
    """A replay's outcome.

    Attributes:
        judged: one entry per distinct measurement, volume after volume, in time order.
        duplicates: events dropped as repeats of a measurement already read.
        conflicts: (first line, repeated line) of duplicates that disagree in their numbers.
    """

    judged: list[Judged] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[tuple[int, int]] = field(default_factory=list)


def model(name: str, config: ScoringConfig = DEFAULT_CONFIG) -> Judge:
    """The judging function of a model name (see :data:`MODELS`).

    ``ours`` is :func:`backup_anomaly.scoring.judge`; ``size-only`` the same with content
    ignored; ``cloudwatch-band`` the seed design's emulation (:mod:`backtest.seed`).

    Raises:
        ValueError: an unknown name.
    """
    if name == "ours":
        return lambda current, history: judge(current, history, config)
    if name == "size-only":
        size_config = replace(config, use_content=False)
        return lambda current, history: judge(current, history, size_config)
    if name == "cloudwatch-band":
        return band_verdict
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


def by_volume(measurements: Iterable[Measurement], result: Replay) -> dict[str, list[Measurement]]:
    """Distinct measurements grouped per volume, each volume in completion-time order."""
    seen: dict[str, Measurement] = {}
    volumes: dict[str, list[Measurement]] = {}
    for item in measurements:
        first = seen.get(item.measurement_id)
        if first is not None:
            result.duplicates += 1
            if not first.same_measure(item):
                result.conflicts.append((first.line, item.line))
            continue
        seen[item.measurement_id] = item
        volumes.setdefault(item.volume_key, []).append(item)
    for items in volumes.values():
        items.sort(key=lambda m: (m.completion_time, m.measurement_id))
    return volumes


def observation(item: Measurement, previous: Measurement | None) -> Observation:
    """What the scoring module sees of one measurement.

    The interval starts at the previous snapshot's completion time as the detector knew it
    (``previousCompletionTime``); without it, at the previous measurement's (the same
    unless a snapshot between them was a first sighting or a reset, which are not
    measurements).
    """
    previous_time = item.previous_completion_time
    if previous_time is None and previous is not None:
        previous_time = previous.completion_time
    return Observation(
        time=item.completion_time,
        changed_blocks=item.changed_blocks,
        written_blocks=item.written_blocks,
        content=item.content,
        previous_time=previous_time,
        snapshot_id=item.snapshot_id,
    )


def replay(
    measurements: Iterable[Measurement],
    judge_with: Judge,
    by_account: Mapping[str, Judge] | None = None,
) -> Replay:
    """Judges every distinct measurement with its volume's history before it.

    Args:
        measurements: events in any order, duplicates possible.
        judge_with: the model (see :func:`model`).
        by_account: the model of the accounts whose settings differ (their own overrides).

    Returns:
        The verdicts and the de-duplication counts.
    """
    result = Replay()
    for items in by_volume(measurements, result).values():
        history: list[HistoryEntry] = []
        previous = None
        for position, item in enumerate(items):
            current = observation(item, previous)
            verdict = (by_account or {}).get(item.account, judge_with)(current, history)
            result.judged.append(Judged(item, verdict, current, position))
            history.append(HistoryEntry(current, verdict.severity))
            previous = item
    return result
