"""Properties of judge(): monotone in the change and in pages turned incompressible, a score
that is a finite number the severity follows, whatever the history."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_anomaly.scoring import (
    PAGES_PER_BLOCK,
    Content,
    HistoryEntry,
    Observation,
    ScoringConfig,
    judge,
)
from tests.scoring.helpers import START, WRITTEN, gzip, history, plain

# A few fixed histories of different shapes: built once, judged many times.
_HISTORIES = {
    "empty": [],
    "one": history(1),
    "week": history(7),
    "two_months": history(60),
    "gzip": history(40, sample=lambda rng: gzip()),
    "quiet": history(30, 0.0005),
    "absolute": history(30, written=None),
    "hourly": history(48, 0.001, step=timedelta(hours=1)),
}
_NAMES = sorted(_HISTORIES)


def _observation(
    name: str, changed: int, before: int, after: int, blocks: int, with_content: bool
) -> Observation:
    entries: list[HistoryEntry] = _HISTORIES[name]
    step = timedelta(hours=1) if name == "hourly" else timedelta(days=1)
    last = entries[-1].observation.time if entries else START - step
    written = None if name == "absolute" else WRITTEN
    pages = blocks * PAGES_PER_BLOCK
    sampled = Content(blocks, pages, min(before, pages), min(after, pages))
    return Observation(
        time=last + step,
        changed_blocks=changed,
        written_blocks=written,
        content=sampled if with_content else None,
        previous_time=last if entries else None,
    )


changes = st.integers(min_value=0, max_value=WRITTEN)
pages = st.integers(min_value=0, max_value=32 * PAGES_PER_BLOCK)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(_NAMES),
    changed=changes,
    more=st.integers(min_value=1, max_value=WRITTEN),
    before=pages,
    after=pages,
    with_content=st.booleans(),
)
def test_more_change_never_lowers_the_severity(name, changed, more, before, after, with_content):
    entries = _HISTORIES[name]
    less = judge(_observation(name, changed, before, after, 32, with_content), entries)
    bigger = judge(_observation(name, changed + more, before, after, 32, with_content), entries)
    assert bigger.severity.rank >= less.severity.rank
    assert bigger.score >= less.score - 1e-9


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(_NAMES),
    changed=changes,
    before=pages,
    after=pages,
    more=st.integers(min_value=1, max_value=32 * PAGES_PER_BLOCK),
)
def test_more_pages_incompressible_after_never_lowers_the_severity(
    name, changed, before, after, more
):
    entries = _HISTORIES[name]
    fewer = judge(_observation(name, changed, before, after, 32, True), entries)
    noisier = judge(_observation(name, changed, before, after + more, 32, True), entries)
    assert noisier.severity.rank >= fewer.severity.rank
    assert noisier.score >= fewer.score - 1e-9


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(_NAMES),
    changed=changes,
    before=pages,
    after=pages,
    blocks=st.integers(min_value=0, max_value=32),
    with_content=st.booleans(),
)
def test_score_is_finite_and_the_severity_follows_it(
    name, changed, before, after, blocks, with_content
):
    verdict = judge(
        _observation(name, changed, before, after, blocks, with_content), _HISTORIES[name]
    )
    assert math.isfinite(verdict.score) and verdict.score >= 0.0
    assert verdict.severity is ScoringConfig().severity(verdict.score)
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)
    assert 0.0 <= verdict.expected.low <= verdict.expected.median <= verdict.expected.high


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), days=st.integers(min_value=0, max_value=50))
def test_any_history_length_is_judged(seed, days):
    rng = random.Random(seed)
    entries = history(days, rng.uniform(0.001, 0.2), seed=seed, noise=rng.uniform(0.05, 1.0))
    last = entries[-1].observation.time if entries else START
    current = Observation(
        time=last + timedelta(days=1),
        changed_blocks=rng.randint(0, WRITTEN),
        written_blocks=WRITTEN,
        content=plain(rng) if rng.random() < 0.7 else None,
        previous_time=last,
    )
    verdict = judge(current, entries)
    assert verdict.expected.points <= days
    assert math.isfinite(verdict.score)
