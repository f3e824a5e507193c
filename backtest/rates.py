"""Detection quality of a replay: false alerts per 1,000 volume-days, recall per label.

A false alert is a verdict at or above a severity on a measurement not labelled
``attack``. Volume-days are the time the measurements cover: per volume, from its first
to its last backup plus one usual interval (with daily backups, the number of
measurements). Recall is measured per measurement (per label and attack kind) and per
attack episode: an episode (``detail.attackId``, else the kind, per volume) is caught
``within`` k backups when one of its first k measurements is flagged at the severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import median

from backtest.replay import Judged
from backup_anomaly.scoring import Severity

_DAY = 86400.0
SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class Recall:
    """How many of a group of positives were flagged."""

    name: str
    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        """hits / total, or None for an empty group."""
        return self.hits / self.total if self.total else None


@dataclass(frozen=True)
class AlertRates:
    """False alerts of a replay.

    Attributes:
        volumes: distinct volumes.
        measurements: distinct measurements.
        volume_days: days covered (see module docstring).
        negatives: measurements not labelled ``attack``.
        labelled: whether any measurement carries a label.
        false_alerts: per severity, negatives flagged at that severity or above.
    """

    volumes: int
    measurements: int
    volume_days: float
    negatives: int
    labelled: bool
    false_alerts: dict[Severity, int]

    def per_1000(self, severity: Severity) -> float:
        """False alerts at ``severity`` or above per 1,000 volume-days."""
        if self.volume_days <= 0:
            return 0.0
        return 1000.0 * self.false_alerts[severity] / self.volume_days


def volume_days(judged: Sequence[Judged]) -> float:
    """Days the measurements cover, summed over volumes."""
    times: dict[str, list[float]] = {}
    for item in judged:
        times.setdefault(item.measurement.volume_key, []).append(item.observation.epoch)
    total = 0.0
    for epochs in times.values():
        epochs.sort()
        gaps = [b - a for a, b in zip(epochs, epochs[1:], strict=False) if b > a]
        usual = median(gaps) if gaps else _DAY
        total += (epochs[-1] - epochs[0] + usual) / _DAY
    return total


def alert_rates(judged: Sequence[Judged]) -> AlertRates:
    """False alerts per severity over a replay."""
    counts = dict.fromkeys(SEVERITIES, 0)
    negatives = 0
    labelled = False
    volumes = set()
    for item in judged:
        labels = item.measurement.labels
        volumes.add(item.measurement.volume_key)
        labelled = labelled or labels.label is not None
        if labels.is_attack:
            continue
        negatives += 1
        rank = item.verdict.severity.rank
        for severity in SEVERITIES:
            if rank >= severity.rank:
                counts[severity] += 1
    return AlertRates(
        volumes=len(volumes),
        measurements=len(judged),
        volume_days=volume_days(judged),
        negatives=negatives,
        labelled=labelled,
        false_alerts=counts,
    )


def label_recall(judged: Iterable[Judged], severity: Severity) -> list[Recall]:
    """Per label (and per attack kind for attacks), measurements flagged at ``severity``+."""
    groups: dict[str, list[int]] = {}
    for item in judged:
        labels = item.measurement.labels
        if labels.label is None:
            continue
        names = [f"label={labels.label}"]
        if labels.is_attack:
            names.append(f"attack={labels.attack or 'unspecified'}")
        hit = int(item.verdict.severity.at_least(severity))
        for name in names:
            group = groups.setdefault(name, [0, 0])
            group[0] += hit
            group[1] += 1
    return [Recall(name, hits, total) for name, (hits, total) in sorted(groups.items())]


def episodes(judged: Iterable[Judged]) -> dict[tuple[str, str], list[Judged]]:
    """Attack episodes: their measurements in time order, keyed by (volume, episode)."""
    found: dict[tuple[str, str], list[Judged]] = {}
    for item in judged:
        labels = item.measurement.labels
        if not labels.is_attack:
            continue
        episode = labels.attack_id or labels.attack or "attack"
        found.setdefault((item.measurement.volume_key, episode), []).append(item)
    for items in found.values():
        items.sort(key=lambda j: j.observation.epoch)
    return found


def episode_recall(
    judged: Iterable[Judged] | dict[tuple[str, str], list[Judged]],
    *,
    name: str,
    kind: str | None = None,
    severity: Severity = Severity.HIGH,
    within: int = 1,
    min_percent: float | None = None,
    where: Callable[[Judged], bool] | None = None,
) -> Recall:
    """Episodes caught at ``severity``+ within their first ``within`` measurements.

    Args:
        judged: a replay's verdicts, or :func:`episodes` of them.
        name: the row's name.
        kind: only episodes of this attack kind (None: all).
        severity: the severity that counts as caught.
        within: backups from the episode's start.
        min_percent: only episodes whose first measurement encrypted at least this share
            of the written data (percent).
        where: only episodes whose first measurement passes this test.
    """
    groups = judged if isinstance(judged, dict) else episodes(judged)
    hits = total = 0
    for items in groups.values():
        first = items[0]
        labels = first.measurement.labels
        if kind is not None and labels.attack != kind:
            continue
        if min_percent is not None and (labels.attack_percent or 0.0) < min_percent:
            continue
        if where is not None and not where(first):
            continue
        total += 1
        if any(item.verdict.severity.at_least(severity) for item in items[:within]):
            hits += 1
    return Recall(name, hits, total)


def sweep(
    judged: Sequence[Judged], thresholds: Sequence[float]
) -> list[tuple[float, float, float | None]]:
    """(threshold, false alerts per 1,000 volume-days, recall of attack measurements'
    first backups) when alerting at ``score >= threshold``."""
    days = volume_days(judged)
    negatives = sorted(
        (i.verdict.score for i in judged if not i.measurement.labels.is_attack), reverse=True
    )
    firsts = sorted(items[0].verdict.score for items in episodes(judged).values())
    rows = []
    for threshold in thresholds:
        false = _count_at_least(negatives, threshold)
        caught = len(firsts) - _first_at_least(firsts, threshold)
        recall = caught / len(firsts) if firsts else None
        rows.append((threshold, 1000.0 * false / days if days else 0.0, recall))
    return rows


def _count_at_least(descending: list[float], threshold: float) -> int:
    low, high = 0, len(descending)
    while low < high:
        middle = (low + high) // 2
        if descending[middle] >= threshold:
            low = middle + 1
        else:
            high = middle
    return low


def _first_at_least(ascending: list[float], threshold: float) -> int:
    low, high = 0, len(ascending)
    while low < high:
        middle = (low + high) // 2
        if ascending[middle] < threshold:
            low = middle + 1
        else:
            high = middle
    return low
