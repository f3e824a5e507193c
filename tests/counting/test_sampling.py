"""Sampling changed blocks during the count: uniform, exact, resumable, never parsing pages."""

import json
import random
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_anomaly import changed_blocks as cb
from backup_anomaly.changed_blocks import (
    BlockSample,
    CountCheckpoint,
    SampleState,
    count_changed_blocks,
)
from tests.counting._support import new_pair_ids
from tests.counting.test_changed_blocks import deadline_after, layouts

# Chi-square critical values at p = 1e-6 (generous: a correct sampler fails once in a
# million runs, while the biased ones below are far beyond them).
CHI2_CRITICAL = {9: 44.0, 19: 56.0, 99: 177.0}


def chi_square(observed: Counter, cells: int, expected: float) -> float:
    return sum((observed.get(c, 0) - expected) ** 2 / expected for c in range(cells))


def reservoir_draws(n, k, trials, rng, chunker, reservoir_cls=cb._Reservoir):
    """Inclusion counts per item, and which item comes first in the shuffled output."""
    included, first = Counter(), Counter()
    for _ in range(trials):
        res = reservoir_cls(cb._Reservoir.empty(k), rng)
        seen = 0
        while seen < n:
            c = min(n - seen, chunker(rng))
            for pos, slot in res.offer(c):
                res.put(slot, BlockSample(seen + pos, None, "t"))
            seen += c
        out = res.shuffled()
        assert len({s.index for s in out}) == len(out) == min(n, k)
        included.update(s.index for s in out)
        first[out[0].index] += 1
    return included, first


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    monkeypatch.setattr(cb, "_BACKOFF_BASE", 0.001)
    monkeypatch.setattr(cb, "_BACKOFF_CAP", 0.01)


# --- uniformity -------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", ["single", "pages", "random"])
def test_reservoir_includes_every_block_equally_often(chunks):
    rng = random.Random(20240601)
    chunker = {
        "single": lambda r: 1,
        "pages": lambda r: 37,
        "random": lambda r: r.randrange(1, 60),
    }[chunks]
    n, k, trials = 100, 10, 6000
    included, first = reservoir_draws(n, k, trials, rng, chunker)
    assert chi_square(included, n, trials * k / n) < CHI2_CRITICAL[99]
    # The output order is random: its first element alone is a uniform sample of one.
    assert chi_square(first, n, trials / n) < CHI2_CRITICAL[99]


def test_the_same_bound_fails_biased_samplers():
    rng = random.Random(7)
    n, k, trials = 100, 10, 6000

    class OffByOne(cb._Reservoir):  # Algorithm L's jump without its "+ 1"
        def _advance(self):
            before = self.next_pick
            super()._advance()
            if before >= self.size - 1:
                self.next_pick -= 1
                self.next_pick = max(self.next_pick, before + 1)

    class KeepsFirst(cb._Reservoir):  # never replaces: the first k blocks
        def offer(self, count):
            picks = [(p, self.seen + p) for p in range(count) if self.seen + p < self.size]
            self.seen += count
            return picks

    for biased in (OffByOne, KeepsFirst):
        included, _ = reservoir_draws(n, k, trials, rng, lambda r: 13, biased)
        assert chi_square(included, n, trials * k / n) > CHI2_CRITICAL[99], biased


def test_count_samples_uniformly_across_concurrent_ranges(fake, client):
    # Ten runs of 200 blocks in a 5,000-block span, listed 100 blocks a page by 6 workers:
    # pages reach the reservoir in a different order every time.
    first, second = new_pair_ids()
    runs = [(i * 500, i * 500 + 200) for i in range(10)]
    fake.add_pair(first, second, 4, runs)
    k, trials = 8, 150
    per_run = Counter()
    for t in range(trials):
        result = count_changed_blocks(
            client,
            first,
            second,
            sample_size=k,
            sample_seed=t,
            page_size=100,
            workers=6,
            max_requests_per_second=10_000,
        )
        assert result.changed_blocks == result.sampled_from == 2000
        assert len({s.index for s in result.samples}) == k
        per_run.update(s.index // 500 for s in result.samples)
    assert chi_square(per_run, 10, trials * k / 10) < CHI2_CRITICAL[9]


# --- exactness and resumption --------------------------------------------------------------


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    layout=layouts(),
    page_size=st.sampled_from([100, 137, 1000]),
    scan_window=st.sampled_from([None, None, 5_000]),
    workers=st.integers(1, 8),
    interruptions=st.lists(st.integers(1, 8), max_size=3),
    sample_size=st.integers(1, 40),
    fault_rate=st.sampled_from([0.0, 0.0, 0.1]),
)
def test_sampling_keeps_the_count_exact_and_the_sample_valid(
    fake, client, layout, page_size, scan_window, workers, interruptions, sample_size, fault_rate
):
    first, second = new_pair_ids()
    fake.add_layout(first, second, layout)
    fake.scan_window, fake.fault_rate = scan_window, fault_rate
    try:
        checkpoint = None
        for checks in [*interruptions, None]:
            result = count_changed_blocks(
                client,
                first,
                second,
                checkpoint=checkpoint,
                remaining_seconds=None if checks is None else deadline_after(checks),
                max_requests_per_second=10_000,
                workers=workers,
                page_size=page_size,
                sample_size=sample_size,
            )
            if result.complete:
                break
            checkpoint = CountCheckpoint.from_json(result.checkpoint.to_json())
            assert checkpoint == result.checkpoint
            assert checkpoint.sample.seen == checkpoint.changed_blocks
    finally:
        fake.scan_window, fake.fault_rate = None, 0.0
    total = layout.count()
    assert result.complete and result.changed_blocks == result.sampled_from == total
    assert len(result.samples) == min(sample_size, total)
    assert len({s.index for s in result.samples}) == len(result.samples)
    for s in result.samples:
        assert layout.count(s.index, s.index + 1) == 1  # a changed block
        spans = zip(layout.new_starts, layout.new_ends, strict=True)
        new = any(a <= s.index < b for a, b in spans)
        assert (s.first_token is None) == new
        assert s.second_token and s.second_token[52:64] == f"{s.index:012d}"


def test_sampling_off_is_todays_count(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 500)])
    result = count_changed_blocks(client, first, second, page_size=100, workers=2)
    assert (result.samples, result.sampled_from, result.changed_blocks) == ((), 0, 500)
    stopped = count_changed_blocks(
        client, first, second, page_size=100, remaining_seconds=deadline_after(2)
    )
    assert stopped.checkpoint.sample is None
    assert "sample" not in json.loads(stopped.checkpoint.to_json())


def test_a_version_1_checkpoint_resumes_and_says_what_its_sample_covers(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 1000)])
    v1 = json.dumps(
        {
            "v": 1,
            "first": first,
            "second": second,
            "count": 300,
            "calls": 3,
            "ranges": [[300, None, None]],
            "volume_size_gib": 1,
            "block_size": 524288,
        }
    )
    checkpoint = CountCheckpoint.from_json(v1)
    assert checkpoint.sample is None
    result = count_changed_blocks(
        client, first, second, checkpoint=checkpoint, sample_size=10, page_size=100
    )
    assert result.changed_blocks == 1000
    assert result.sampled_from == 700  # only the blocks counted since
    assert all(s.index >= 300 for s in result.samples)


def test_checkpoint_version_2_round_trips_and_is_validated():
    state = SampleState(3, 10, 0.25, 14, tuple(BlockSample(i, None, "T") for i in (1, 4, 9)))
    cp = CountCheckpoint("snap-0a", "snap-0b", 10, 2, ((20, None, "tok"),), 1, 524288, state)
    text = cp.to_json()
    assert json.loads(text)["v"] == 2
    assert CountCheckpoint.from_json(text) == cp
    broken = json.loads(text)
    broken["sample"]["items"] = broken["sample"]["items"][:1]
    with pytest.raises(ValueError, match="invalid count checkpoint"):
        CountCheckpoint.from_json(json.dumps(broken))
    with pytest.raises(ValueError, match="unsupported checkpoint version"):
        CountCheckpoint.from_json(json.dumps({**json.loads(text), "v": 3}))


def test_resumed_count_keeps_the_size_it_started_with(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 2000)])
    part = count_changed_blocks(
        client, first, second, sample_size=5, page_size=100, remaining_seconds=deadline_after(3)
    )
    assert not part.complete and part.checkpoint.sample.size == 5
    done = count_changed_blocks(
        client, first, second, checkpoint=part.checkpoint, sample_size=50, page_size=100
    )
    assert len(done.samples) == 5 and done.sampled_from == 2000


def test_sample_size_is_bounded():
    with pytest.raises(ValueError, match="sample_size"):
        count_changed_blocks(None, "snap-0a", "snap-0b", sample_size=cb.MAX_SAMPLE_SIZE + 1)


def test_samples_come_from_parsed_blocks_when_the_hook_did_not_run(fake, client, monkeypatch):
    monkeypatch.setattr(cb, "_summarize", lambda body: None)
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 300)], new_only=[(0, 10)])
    result = count_changed_blocks(client, first, second, sample_size=300, page_size=100)
    assert {s.index for s in result.samples} == set(range(300))
    assert all((s.first_token is None) == (s.index < 10) for s in result.samples)


# --- finding an entry in the raw page ---------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(40, 80), st.sampled_from(["", " ", "\n  "])),
        min_size=1,
        max_size=60,
    )
)
def test_nth_key_finds_every_entry_of_uneven_pages(entries):
    parts = []
    for i, (has_first, width, ws) in enumerate(entries):
        first = f',{ws}"FirstBlockToken":{ws}"{"F" * width}"' if has_first else ""
        parts.append(f'{{"BlockIndex":{ws}{i}{first},"SecondBlockToken":"{"S" * width}"}}')
    body = (
        '{"BlockSize":524288,"ChangedBlocks":[' + ",".join(parts) + '],"VolumeSize":1}'
    ).encode()
    small, summary = cb._summarize(body)
    assert summary.blocks == len(entries)
    starts = [m.start() for m in re.finditer(rb'"BlockIndex"', body)]
    for j, at in enumerate(starts):
        assert cb._nth_key(body, summary.lo, summary.hi, summary.blocks, j) == at
    found = summary.entries(range(len(entries)))
    assert [s.index for s in found] == list(range(len(entries)))
    assert [s.first_token is not None for s in found] == [e[0] for e in entries]
