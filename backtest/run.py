"""One backtest: measurements through a model, then the rates. Shared by the CLI and the
benchmark, so that both measure exactly the same code path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backtest import rates
from backtest.events import Measurement
from backtest.replay import Replay, model, replay
from backup_anomaly.scoring import DEFAULT_CONFIG, ScoringConfig, Severity

# The headline recalls (the goals in the README): kind, backups from the start, minimum
# share of written data encrypted (percent).
HEADLINES = (
    ("full >= 10 %, first backup", "full", 1, 10.0),
    ("intermittent >= 20 %, first backup", "intermittent", 1, 20.0),
    ("low-and-slow, within 3 backups", "low_and_slow", 3, None),
    ("header-only, first backup", "header_only", 1, None),
)


@dataclass(frozen=True)
class Result:
    """A backtest's verdicts and measures.

    Attributes:
        model: the model's name.
        replay: every verdict.
        alerts: the false-alert rates.
        recall: per label and attack kind, measurements flagged high or above.
        headlines: the episode recalls of :data:`HEADLINES` (high or above).
        seconds: time spent judging.
    """

    model: str
    replay: Replay
    alerts: rates.AlertRates
    recall: list[rates.Recall]
    headlines: list[rates.Recall]
    seconds: float


def backtest(
    measurements: Sequence[Measurement],
    model_name: str = "ours",
    config: ScoringConfig = DEFAULT_CONFIG,
    by_account: Mapping[str, ScoringConfig] | None = None,
) -> Result:
    """Replays ``measurements`` through the named model and measures the outcome.

    ``by_account``: the settings of accounts that override the organization's ``config``.
    """
    judge_with = model(model_name, config)
    judges = {account: model(model_name, own) for account, own in (by_account or {}).items()}
    started = time.perf_counter()
    replayed = replay(measurements, judge_with, judges)
    seconds = time.perf_counter() - started
    found = rates.episodes(replayed.judged)
    headlines = [
        rates.episode_recall(found, name=name, kind=kind, within=within, min_percent=percent)
        for name, kind, within, percent in HEADLINES
    ]
    return Result(
        model=model_name,
        replay=replayed,
        alerts=rates.alert_rates(replayed.judged),
        recall=rates.label_recall(replayed.judged, Severity.HIGH),
        headlines=headlines,
        seconds=seconds,
    )
