"""judge() on hand-built histories: every part of the model, through the public interface."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from backup_anomaly.scoring import (
    Content,
    HistoryEntry,
    Observation,
    ScoringConfig,
    Severity,
    judge,
    last_clean,
    size_verdict,
    wants_more_samples,
)
from tests.scoring.helpers import (
    SAMPLED,
    START,
    WRITTEN,
    content,
    gzip,
    history,
    next_observation,
    plain,
)

PAGES = SAMPLED * 128


def full_encryption(share_encrypted: float, churn: float) -> Content:
    """Sampled blocks when ``share_encrypted`` of the written data was encrypted on top of
    ``churn`` of ordinary change: that share of the sampled blocks is noise now."""
    encrypted = round(SAMPLED * share_encrypted / (share_encrypted + churn))
    return content(20, 20 + encrypted * 128 - round(encrypted * 128 * 0.005))


# -- cold start -------------------------------------------------------------------------------


def test_first_measurement_is_judged_against_the_prior():
    verdict = judge(next_observation([], 0.02, plain(random.Random(1))), [])
    assert verdict.severity is Severity.NONE
    assert verdict.expected.basis == "prior"
    assert verdict.expected.median == pytest.approx(0.02)
    assert any("first measurement of this volume" in r for r in verdict.reasons)


def test_full_encryption_on_the_first_measurement_is_high():
    # The volume's second backup: no history at all, 10 % of the data encrypted.
    verdict = judge(next_observation([], 0.118, full_encryption(0.10, 0.018)), [])
    assert verdict.severity.at_least(Severity.HIGH)
    assert "turned compressible data into noise (encryption)" in verdict.reasons[1]


def test_prior_beats_a_fixed_ceiling_in_the_first_weeks():
    # Five quiet days, then a 20 % rewrite that is noise: far below the seed's 50 % ceiling.
    entries = history(5, 0.01)
    verdict = judge(next_observation(entries, 0.21, full_encryption(0.2, 0.01)), entries)
    assert verdict.severity is Severity.CRITICAL
    assert verdict.expected.basis in ("history", "history+prior")


def test_short_history_blends_with_the_prior():
    entries = history(1, 0.02)
    verdict = judge(next_observation(entries, 0.02, plain(random.Random(2))), entries)
    assert verdict.expected.basis == "history+prior"
    assert any("short history (1 measurement): blended" in r for r in verdict.reasons)


# -- seasonality and trend ----------------------------------------------------------------------


def _weekday_volume(when: datetime, rng: random.Random) -> float:
    # Busy on weekdays, near idle at weekends (the interval's middle is the previous day).
    day = (when - timedelta(hours=12)).weekday()
    return 0.03 if day < 5 else 0.002


def test_weekday_pattern_is_learned():
    entries = history(43, _weekday_volume, noise=0.15)
    weekday = next_observation(entries, 0.035, plain(random.Random(3)))
    assert (weekday.time - timedelta(hours=12)).weekday() < 5
    verdict = judge(weekday, entries)
    assert verdict.severity is Severity.NONE
    assert "on a " in verdict.reasons[0]


def test_weekend_expects_less_than_weekdays():
    entries = history(42, _weekday_volume, noise=0.15)
    saturday = Observation(
        time=datetime(2026, 4, 12, 5, 30, tzinfo=UTC),  # measures Saturday the 11th
        changed_blocks=round(0.03 * WRITTEN),
        written_blocks=WRITTEN,
        content=None,
        previous_time=datetime(2026, 4, 11, 5, 30, tzinfo=UTC),
    )
    monday = Observation(
        time=datetime(2026, 4, 14, 5, 30, tzinfo=UTC),
        changed_blocks=round(0.03 * WRITTEN),
        written_blocks=WRITTEN,
        content=None,
        previous_time=datetime(2026, 4, 13, 5, 30, tzinfo=UTC),
    )
    on_saturday = judge(saturday, entries)
    on_monday = judge(monday, entries)
    assert on_saturday.expected.median < on_monday.expected.median / 3
    assert on_saturday.size_score > on_monday.size_score + 1.0
    assert "on a Saturday" in on_saturday.reasons[0]


def _month_end_batch(when: datetime, rng: random.Random) -> float:
    day = when - timedelta(hours=12)
    return 0.15 if (day + timedelta(days=1)).month != day.month else 0.015


def test_month_end_batch_is_expected_once_seen():
    start = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    entries = history(89, _month_end_batch, start=start, noise=0.15)  # to March 30
    batch = Observation(
        time=datetime(2026, 4, 1, 5, 30, tzinfo=UTC),  # measures March 31
        changed_blocks=round(0.15 * WRITTEN),
        written_blocks=WRITTEN,
        content=plain(random.Random(4)),
        previous_time=datetime(2026, 3, 31, 5, 30, tzinfo=UTC),
    )
    seen = judge(batch, entries[:-1])
    assert seen.severity is Severity.NONE
    assert "around a month end" in seen.reasons[0]
    # The same batch in a volume that never had one is unusual (yet, with clean content,
    # at most medium).
    flat = history(89, 0.015, start=start, noise=0.15)
    unseen = judge(batch, flat[:-1])
    assert unseen.size_score > seen.size_score + 2.0
    assert unseen.severity in (Severity.LOW, Severity.MEDIUM)


def test_rising_trend_moves_the_expectation():
    def rising(when: datetime, rng: random.Random) -> float:
        return 0.01 * 1.04 ** (when - START).days

    entries = history(60, rising, noise=0.1)
    expected_now = 0.01 * 1.04**60
    verdict = judge(next_observation(entries, expected_now, plain(random.Random(5))), entries)
    assert verdict.severity is Severity.NONE
    assert verdict.expected.median > 0.06


# -- floor, content -----------------------------------------------------------------------------


def test_change_below_the_floor_is_never_anomalous():
    entries = history(30, 0.0005)
    # 0.9 % of the written data, 18x the usual, all of it encrypted: still below the floor.
    verdict = judge(next_observation(entries, 0.009, content(10, PAGES)), entries)
    assert verdict.severity is Severity.NONE
    assert verdict.score == 0.0
    assert any("below the floor" in r for r in verdict.reasons)


def test_encryption_turns_compressible_content_into_noise():
    entries = history(40)
    verdict = judge(next_observation(entries, 0.118, full_encryption(0.1, 0.018)), entries)
    assert verdict.severity is Severity.CRITICAL
    assert verdict.content is not None and verdict.content.informative
    assert verdict.reasons[1].startswith("sampled 32 changed blocks: ")
    assert verdict.reasons[1].endswith(
        "the change turned compressible data into noise (encryption)"
    )


def test_low_and_slow_encryption_is_caught_by_content_at_ordinary_size():
    entries = history(40)
    # 2 % of the data a day on top of 1.8 % of churn: by size an ordinary day.
    verdict = judge(next_observation(entries, 0.038, full_encryption(0.02, 0.018)), entries)
    assert verdict.size_score < 2.0
    assert verdict.severity.at_least(Severity.HIGH)


def test_intermittent_encryption_is_high():
    entries = history(40)
    # 4 KiB of every 64 KiB of 20 % of the data: 8 of 128 pages of most changed blocks.
    intermittent = content(20, 20 + 29 * 8)
    verdict = judge(next_observation(entries, 0.218, intermittent), entries)
    assert verdict.severity.at_least(Severity.HIGH)
    assert "intermittent encryption" in verdict.reasons[1]


def test_header_only_pattern_is_described():
    entries = history(40)
    headers = content(20, 20 + 30 * 2)  # the first 8 KiB of most changed blocks
    verdict = judge(next_observation(entries, 0.3, headers), entries)
    assert verdict.severity.at_least(Severity.MEDIUM)
    assert "file headers only" in verdict.reasons[1]


def test_always_incompressible_volume_leaves_the_verdict_to_size():
    entries = history(40, sample=lambda rng: gzip())
    ordinary = judge(next_observation(entries, 0.02, gzip()), entries)
    attacked = judge(next_observation(entries, 0.9, gzip()), entries)
    assert ordinary.severity is Severity.NONE
    assert attacked.content is not None and not attacked.content.informative
    assert "content cannot tell" in attacked.reasons[1]
    assert attacked.score == pytest.approx(attacked.size_score)
    assert attacked.severity.at_least(Severity.HIGH)  # 90 % rewritten: the ceiling


def test_benign_large_compressible_rewrite_is_capped_at_medium():
    entries = history(40)
    reorg = judge(next_observation(entries, 0.6, content(21, 19)), entries)
    assert reorg.size_score > 4.0
    assert reorg.severity is Severity.MEDIUM
    assert reorg.score == 3.0
    assert any("a large ordinary rewrite" in r for r in reorg.reasons)


def test_rewrite_that_made_data_compressible_is_judged_on_the_rest():
    # An incompressible volume rewritten with compressible data: encryption never does that.
    entries = history(40, sample=lambda rng: gzip())
    rewrite = judge(next_observation(entries, 0.4, content(PAGES - 5, 300)), entries)
    assert rewrite.severity.rank <= Severity.LOW.rank
    assert any("turned compressible (encryption never does that)" in r for r in rewrite.reasons)


def test_unknown_written_blocks_judges_absolute_change():
    entries = history(30, written=None)
    assert all(e.observation.written_blocks is None for e in entries)
    verdict = judge(next_observation(entries, 0.3, None, written=None), entries)
    assert verdict.expected.unit == "blocks"
    assert verdict.share is None
    assert any("written data unknown: judged on absolute change" in r for r in verdict.reasons)
    assert any("content not sampled: judged on size alone" in r for r in verdict.reasons)
    assert verdict.severity.at_least(Severity.MEDIUM)


def test_unknown_written_blocks_without_history_has_nothing_to_compare():
    verdict = judge(next_observation([], 0.3, None, written=None), [])
    assert verdict.severity is Severity.NONE
    assert verdict.expected.basis == "none"
    assert "no earlier measurement" in verdict.reasons[0]


# -- history hygiene ------------------------------------------------------------------------


def test_past_attack_does_not_widen_the_baseline():
    entries = history(30)
    attack = next_observation(entries, 0.04, full_encryption(0.02, 0.018))
    for _ in range(5):  # five days of low-and-slow encryption, each flagged
        verdict = judge(attack, entries)
        assert verdict.severity.at_least(Severity.HIGH)
        entries.append(HistoryEntry(attack, verdict.severity))
        attack = next_observation(entries, 0.04, full_encryption(0.02, 0.018))
    # Back to normal for a while, then another attack: judged as sharply as the first.
    entries += history(20, start=entries[-1].observation.time + timedelta(days=1), seed=9)
    again = judge(next_observation(entries, 0.04, full_encryption(0.02, 0.018)), entries)
    assert again.severity.at_least(Severity.HIGH)


def test_a_persistent_change_becomes_the_normal_after_relearn_days():
    config = ScoringConfig(relearn_days=5)
    entries = history(30, config=config)

    def noisy(rng: random.Random) -> Content:
        return content(20, 20 + 2000 + rng.randint(-200, 200))

    later = history(
        8, sample=noisy, start=entries[-1].observation.time + timedelta(days=1), config=config
    )
    severities = [e.severity for e in entries + later][30:]
    assert severities[0].at_least(Severity.HIGH)
    assert severities[-1] is Severity.NONE


def test_history_longer_than_the_limit_is_cut():
    config = ScoringConfig(history_limit=20)
    entries = history(60, config=config)
    current = next_observation(entries, 0.05, plain(random.Random(6)))
    assert judge(current, entries, config) == judge(current, entries[-20:], config)


def test_judge_is_deterministic():
    entries = history(30)
    current = next_observation(entries, 0.2, content(20, 500))
    assert judge(current, entries) == judge(current, list(entries))


# -- backup intervals -------------------------------------------------------------------------


def test_missed_backup_expects_more_change():
    entries = history(30)
    last = entries[-1].observation.time
    two_days = Observation(
        time=last + timedelta(days=2),
        changed_blocks=round(0.036 * WRITTEN),
        written_blocks=WRITTEN,
        content=plain(random.Random(7)),
        previous_time=last,
    )
    one_day = Observation(
        time=last + timedelta(days=1),
        changed_blocks=round(0.036 * WRITTEN),
        written_blocks=WRITTEN,
        content=plain(random.Random(7)),
        previous_time=last,
    )
    assert judge(two_days, entries).size_score < judge(one_day, entries).size_score - 0.5


def test_hourly_backups_keep_alerts_per_day_in_check():
    hourly = history(100, 0.018 / 24, step=timedelta(hours=1))
    daily = history(100, 0.018)
    spike = 8.0  # the same 8x jump
    on_hourly = judge(
        next_observation(hourly, spike * 0.018 / 24, None, step=timedelta(hours=1)), hourly
    )
    on_daily = judge(next_observation(daily, spike * 0.018, None), daily)
    # Judged 24 times a day, each hourly measurement needs log10(24) more evidence.
    assert on_hourly.score == pytest.approx(max(0.0, on_hourly.size_score - 1.380211), abs=1e-6)
    assert on_daily.score == pytest.approx(on_daily.size_score)


# -- the sampler's decision, the contract --------------------------------------------------------


def test_size_verdict_ignores_content_and_asks_for_more_samples():
    entries = history(30)
    current = next_observation(entries, 0.3, content(20, PAGES))
    size = size_verdict(current, entries)
    assert size.content is None
    assert "content not sampled" in " ".join(size.reasons)
    assert wants_more_samples(size)
    calm = size_verdict(next_observation(entries, 0.018, None), entries)
    assert not wants_more_samples(calm)


def test_to_detail_has_the_contract_fields():
    entries = history(30)
    detail = judge(
        next_observation(entries, 0.118, full_encryption(0.1, 0.018)), entries
    ).to_detail()
    assert list(detail)[:3] == ["severity", "score", "reasons"]
    assert detail["severity"] == "critical"
    assert isinstance(detail["score"], float)
    assert all(isinstance(r, str) for r in detail["reasons"])
    assert set(detail["expected"]) == {"low", "median", "high", "unit", "basis", "points"}
    assert detail["expected"]["unit"] == "share"
    assert detail["content"]["informative"] is True


def test_last_clean_is_the_latest_entry_judged_none():
    entries = history(10)
    flagged = HistoryEntry(entries[-1].observation, Severity.HIGH)
    assert last_clean([*entries, flagged]) is entries[-1]
    assert last_clean([flagged]) is None


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"floor_percent": -1}, "floor_percent must be between 0 and 100"),
        ({"prior_spread": 1.0}, "prior_spread must be between 1.1 and 100"),
        ({"low_score": 5.0}, "score thresholds must increase"),
        ({"history_limit": 0}, "history_limit must be between 1 and 1000"),
        ({"history_limit": 2.5}, "history_limit must be an integer"),
        ({"ceiling_percent": 101}, "ceiling_percent must be between 0 and 100"),
        ({"use_content": "yes"}, "use_content must be true or false"),
    ],
)
def test_config_bounds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScoringConfig(**kwargs)


def test_observation_rejects_what_is_not_a_measurement():
    with pytest.raises(ValueError, match="timezone-aware"):
        Observation(datetime(2026, 1, 1), 10, 100, None)
    with pytest.raises(ValueError, match="changed_blocks must be an integer >= 0"):
        Observation(START, -1, 100, None)
    with pytest.raises(ValueError, match="written_blocks must be an integer >= 1"):
        Observation(START, 1, 0, None)
    with pytest.raises(ValueError, match="exceeds pages"):
        Content(1, 128, 129, 0)


def test_severity_order():
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    assert Severity.HIGH.at_least(Severity.MEDIUM)
    assert not Severity.LOW.at_least(Severity.MEDIUM)
    assert ScoringConfig().severity(4.0) is Severity.HIGH
    assert ScoringConfig().severity(3.999) is Severity.MEDIUM


def test_too_small_a_sample_says_so_instead_of_blaming_the_data():
    # One sampled block of compressible data: too few pages to judge, and the reason says
    # that, not that the data was already incompressible (which gzip's would be).
    few = judge(next_observation([], 0.02, content(0, 0, blocks=1)), [])
    (reason,) = [r for r in few.reasons if r.startswith("sampled 1 changed blocks")]
    assert "too few pages to tell" in reason and "already incompressible" not in reason
    compressed = judge(next_observation([], 0.02, gzip()), [])
    assert any("already incompressible" in r for r in compressed.reasons)
