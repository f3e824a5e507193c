"""Builders of observations and histories for the scoring tests."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from backup_anomaly.scoring import (
    PAGES_PER_BLOCK,
    Content,
    HistoryEntry,
    Observation,
    ScoringConfig,
    judge,
)

WRITTEN = 200_000  # about 98 GiB of written data
START = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)  # a Monday
SAMPLED = 32


def content(before: int, after: int, blocks: int = SAMPLED) -> Content:
    """Content of ``blocks`` sampled blocks with the given incompressible page counts."""
    return Content(blocks, blocks * PAGES_PER_BLOCK, before, after)


def plain(rng: random.Random, rate: float = 0.005, blocks: int = SAMPLED) -> Content:
    """Ordinary data: every page incompressible with probability ``rate``, both sides."""
    pages = blocks * PAGES_PER_BLOCK
    before = sum(rng.random() < rate for _ in range(pages))
    after = sum(rng.random() < rate for _ in range(pages))
    return Content(blocks, pages, before, after)


def gzip(blocks: int = SAMPLED) -> Content:
    """Already-compressed data: incompressible before and after."""
    pages = blocks * PAGES_PER_BLOCK
    return Content(blocks, pages, pages - 3, pages - 2)


def history(
    days: int,
    share: Callable[[datetime, random.Random], float] | float = 0.018,
    *,
    sample: Callable[[random.Random], Content | None] | None = None,
    written: int | None = WRITTEN,
    start: datetime = START,
    step: timedelta = timedelta(days=1),
    seed: int = 7,
    noise: float = 0.25,
    config: ScoringConfig | None = None,
) -> list[HistoryEntry]:
    """A volume's history, judged entry by entry as the Lambda would.

    Args:
        days: entries.
        share: the share of written data changed, a constant or a function of the time.
        sample: content per entry (default: ordinary data).
        written: written blocks (None: unknown).
        start: the first entry's time (its previous snapshot is one step earlier).
        step: the backup interval.
        seed: the random seed of the noise.
        noise: log-normal day-to-day spread of the change.
        config: the scoring config used to judge each entry.
    """
    rng = random.Random(seed)
    entries: list[HistoryEntry] = []
    previous = start - step
    for index in range(days):
        when = start + index * step
        base = share(when, rng) if callable(share) else share
        value = base * math.exp(rng.gauss(0.0, noise))
        size = written if written is not None else WRITTEN
        observation = Observation(
            time=when,
            changed_blocks=max(0, round(value * size)),
            written_blocks=written,
            content=(sample or plain)(rng),
            previous_time=previous,
        )
        verdict = judge(observation, entries, config or ScoringConfig())
        entries.append(HistoryEntry(observation, verdict.severity))
        previous = when
    return entries


def next_observation(
    entries: list[HistoryEntry],
    share: float,
    sampled: Content | None,
    *,
    written: int | None = WRITTEN,
    step: timedelta = timedelta(days=1),
) -> Observation:
    """The observation one step after the history's last entry."""
    last = entries[-1].observation.time if entries else START - step
    when = last + step
    size = written if written is not None else WRITTEN
    return Observation(
        time=when,
        changed_blocks=round(share * size),
        written_blocks=written,
        content=sampled,
        previous_time=last if entries else None,
    )
