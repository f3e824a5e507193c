"""The detector's judgement: one verdict per measurement, computed from counts only.

This module is the one place a verdict is computed. The Lambda, the demo and
``build.py backtest`` call :func:`judge` with the same records, so a verdict can be replayed,
explained and tuned offline. It is pure (no I/O, no clock, no randomness) and stdlib only.

What a measurement is:
    An :class:`Observation`: when the backup completed, how many 512 KiB blocks changed since
    the previous snapshot, how many blocks hold data in the new snapshot (``written_blocks``,
    FullSnapshotSizeInBytes / 512 KiB; None when unknown) and, when the detector sampled
    changed blocks, :class:`Content`: how many of their 4 KiB pages were incompressible in
    the previous snapshot and are now. The history is the volume's earlier observations,
    oldest first, each with the severity it was given then (:class:`HistoryEntry`).

The model, in four parts:

1. Size evidence. The change is a share of the written data (or, with ``written_blocks``
   unknown, the absolute count), taken on a log scale with a small offset (a quarter of the
   floor) so that near-idle volumes do not turn tiny changes into huge ratios. A backup
   interval longer than the volume's usual one scales the change down pro rata (a missed
   daily backup measures two days). The expected value is a robust seasonal baseline of the
   volume's own history: day-of-week effects (shrunk towards zero while there are few
   points), a month-end effect (the median over past months of the largest change in the
   days around a month's end, so a monthly batch is expected once it has been seen), a
   recent level (median of the last 28 points) and a non-negative trend (Tukey's
   three-group resistant line; a falling trend is ignored, which only widens the band).
   The scale is 1.4826 x the median absolute error of that prediction over the history,
   pooled with a prior scale. While the history is short, the location is a
   precision-weighted blend with the cold-start prior (``prior_daily_percent`` x/÷
   ``prior_spread``), so the second backup is already judged against something better
   than a fixed ceiling. The size p-value is the
   upper tail of a Student t with 4 degrees of freedom: ordinary change is heavy-tailed,
   and a t tail keeps a one-off 5x day from looking like a one-in-a-million event.

2. Content evidence. The net share of sampled pages that turned from compressible into
   incompressible, ``flip = (after - before) / pages``, compared with the flips the volume's
   own history shows (median and a root-mean-square spread pooled with a prior spread of
   1 %), plus the current sample's counting noise. Encryption of compressible data gives a
   flip near the encrypted share of the changed blocks (full), about 1/16 of it
   (intermittent: 4 KiB of every 64 KiB), or less (headers only). Data that was already
   incompressible cannot flip: when fewer than two blocks' worth of the sampled pages were
   compressible before, content is uninformative and the size carries the verdict. The
   content p-value is again a t(4) upper tail. Two more things content can say:

   * *Ordinary writes*: the flip is not itself unusual, and even a 99 % upper bound of it
     stays below what intermittent encryption of half the sampled blocks would cause (or
     the pages incompressible now are that few). A large change is then an ordinary
     rewrite (a database reorganisation, a batch): its severity is capped at ``medium``.
   * *Decompressed*: encryption never makes data compressible. When pages turned
     compressible (a 99 % lower bound of their share), that part of the change is benign,
     and the size is judged on the rest.

3. Combination. Size and content are independent evidence: their p-values are combined
   with Fisher's method (for two, ``p = k (1 - ln k)`` with ``k = p_size p_content``), and
   ``score = -log10 p``. A score of 4 says: ordinary change on this volume looks like this
   about once in 10,000 backups, by the model's own account. Without informative content
   the score is the size evidence alone. A volume backed up more often than daily is judged
   that many times a day, so its score gives back ``log10`` of its measurements a day
   (hourly: 1.38): alerts per volume-day, not per measurement, are what the thresholds
   hold.

4. Policy on top of the score: change below the floor (``floor_percent`` of written data
   per day of interval, and ``floor_blocks``) is never anomalous (score 0); ordinary writes
   cap the score at ``medium_score``; a change of at least ``ceiling_percent`` of the
   written data that the size also finds unusual (size score >= ``medium_score``) is at
   least ``high`` unless the writes are ordinary. Severity is then the score banded by the
   four thresholds. Every rule is monotone: more change, or more pages incompressible
   after, never lowers the severity, all else equal.

History hygiene: entries judged ``medium`` or worse are left out of both baselines, so an
attack (or a run of them, as in low-and-slow encryption) does not teach the model that
attacks are normal. The latest run of flagged entries comes back when it has lasted
``relearn_days`` up to now, or holds more entries than the clean history before it: then
the change has become the volume's normal (a volume that writes incompressible data into
fresh blocks every day is flagged on its first measurement, then learned). A run that
ended stays out, so a past attack never widens the baseline.

The detector's order of work: count the changed blocks; :func:`size_verdict` (content
ignored); sample ``N`` changed blocks, or more when :func:`wants_more_samples` says the
size is unusual; :func:`judge` with the content. The history it keeps per volume is one
:class:`HistoryEntry` per measurement: ``time``, ``changed_blocks``, ``written_blocks``,
the four content counts (or none), ``previous_time`` and the severity given.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache

PAGES_PER_BLOCK = 128
BLOCK_BYTES = 524288
DAY_SECONDS = 86400.0

# Model constants. They are properties of the statistics, not of a fleet, and are not
# settings: a user tunes the floor, the prior and the thresholds (see ScoringConfig).
_SIZE_PRIOR_SIGMA = 0.5  # day-to-day spread of one volume's log change, before it is known
_SIZE_PRIOR_WEIGHT = 3.0  # pseudo-points the prior spread is worth
_SIZE_MIN_SIGMA = 0.15  # no volume changes more regularly than ~15 % day to day
_MAD_TO_SIGMA = 1.4826
_MEDIAN_VARIANCE = math.pi / 2  # variance of a median relative to a mean, normal data
_RECENT_POINTS = 28  # the level is the median of the latest this many points
_TREND_MIN_POINTS = 14
_DOW_SHRINK = 2.0  # a day-of-week effect seen n times counts n / (n + this)
_MONTH_END_SHRINK = 1.0  # a month-end effect seen in m months counts m / (m + this)
_SEASON_MIN_POINTS = 14
_CONTENT_PRIOR_SPREAD = 0.01  # usual spread of the flip share before the volume is known
_CONTENT_PRIOR_WEIGHT = 3.0
_CONTENT_MIN_POOL_PAGES = 2 * PAGES_PER_BLOCK
_INTERMITTENT_SHARE = 1.0 / 16.0  # 4 KiB of every 64 KiB
_CLEAN_Z = 2.326  # one-sided 99 %
_OFFSET_OF_FLOOR = 0.25  # the log offset is this share of the floor
_LONG_INTERVAL = 1.5  # days: an interval longer than this has no day of the week
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Severity(StrEnum):
    """How bad a verdict is, in increasing order."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ``none`` up to 4 for ``critical``."""
        return _RANKS[self]

    def at_least(self, other: Severity) -> bool:
        """Whether this severity is ``other`` or worse."""
        return _RANKS[self] >= _RANKS[other]


_RANKS = {severity: rank for rank, severity in enumerate(Severity)}
_BY_RANK = tuple(Severity)


@dataclass(frozen=True, slots=True)
class Content:
    """What the sampled changed blocks look like (counts only, never data).

    Attributes:
        sampled_blocks: changed blocks read in both snapshots.
        pages: 4 KiB pages counted on each side (128 per 512 KiB block).
        incompressible_before: pages incompressible in the previous snapshot (a block the
            previous snapshot did not hold reads as zeros, which compress).
        incompressible_after: pages incompressible in the new snapshot.

    Raises:
        ValueError: a count is negative, not an integer, or exceeds ``pages``.
    """

    sampled_blocks: int
    pages: int
    incompressible_before: int
    incompressible_after: int

    def __post_init__(self) -> None:
        for name in ("sampled_blocks", "pages", "incompressible_before", "incompressible_after"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"content.{name} must be an integer >= 0, got {value!r}")
        for name in ("incompressible_before", "incompressible_after"):
            if getattr(self, name) > self.pages:
                raise ValueError(
                    f"content.{name} ({getattr(self, name)}) exceeds pages ({self.pages})"
                )

    @property
    def before_share(self) -> float:
        """Share of the pages incompressible before (0 when nothing was sampled)."""
        return self.incompressible_before / self.pages if self.pages else 0.0

    @property
    def after_share(self) -> float:
        """Share of the pages incompressible now (0 when nothing was sampled)."""
        return self.incompressible_after / self.pages if self.pages else 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """One measurement of a volume: the change between two consecutive snapshots.

    Attributes:
        time: completion time of the new snapshot's backup (timezone-aware; kept in UTC).
        changed_blocks: 512 KiB blocks changed since the previous snapshot.
        written_blocks: blocks holding data in the new snapshot; None when unknown (older
            events, CloudWatch history): the volume is then judged on absolute change.
        content: the sampled blocks' page counts; None when sampling is off.
        previous_time: completion time of the previous snapshot, when known; otherwise the
            previous history entry's time stands in for it.
        snapshot_id: the new snapshot, for :func:`last_clean` (not used by the model).

    Raises:
        ValueError: a naive time, a negative count, or ``written_blocks`` < 1.
    """

    time: datetime
    changed_blocks: int
    written_blocks: int | None = None
    content: Content | None = None
    previous_time: datetime | None = None
    snapshot_id: str | None = None
    # Derived once, so that judging a long history costs little per entry.
    epoch: float = field(init=False, repr=False, compare=False)
    interval_days: float | None = field(init=False, repr=False, compare=False)
    weekday: int = field(init=False, repr=False, compare=False)
    month_end: int | None = field(init=False, repr=False, compare=False)
    share: float | None = field(init=False, repr=False, compare=False)
    flip: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"time must be timezone-aware, got {self.time!r}")
        if type(self.changed_blocks) is not int or self.changed_blocks < 0:
            raise ValueError(f"changed_blocks must be an integer >= 0, got {self.changed_blocks!r}")
        if self.written_blocks is not None and (
            type(self.written_blocks) is not int or self.written_blocks < 1
        ):
            raise ValueError(f"written_blocks must be an integer >= 1, got {self.written_blocks!r}")
        time = self.time.astimezone(UTC)
        object.__setattr__(self, "time", time)
        interval = None
        if self.previous_time is not None:
            if self.previous_time.tzinfo is None or self.previous_time.utcoffset() is None:
                raise ValueError(
                    f"previous_time must be timezone-aware, got {self.previous_time!r}"
                )
            seconds = (time - self.previous_time).total_seconds()
            interval = seconds / DAY_SECONDS if seconds > 0 else None
        object.__setattr__(self, "epoch", time.timestamp())
        object.__setattr__(self, "interval_days", interval)
        weekday, month_end = _calendar(time, interval)
        object.__setattr__(self, "weekday", weekday)
        object.__setattr__(self, "month_end", month_end)
        share = self.changed_blocks / self.written_blocks if self.written_blocks else None
        object.__setattr__(self, "share", share)
        content = self.content
        flip = None
        if content is not None and content.pages > 0:
            flip = (content.incompressible_after - content.incompressible_before) / content.pages
        object.__setattr__(self, "flip", flip)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """An earlier observation of the volume and the severity it was given then."""

    observation: Observation
    severity: Severity = Severity.NONE


def _bound(name: str, value: float, low: float, high: float, *, integer: bool = False) -> None:
    if integer and (type(value) is not int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


@dataclass(frozen=True)
class ScoringConfig:
    """Every knob of the model, with the bounds each accepts.

    Attributes:
        floor_percent: change below this share of the written data, per day of backup
            interval (pro rata for shorter intervals), is never anomalous. 0..100,
            default 1.
        floor_blocks: nor is a change of fewer blocks than this. 0..1,000,000, default 64
            (32 MiB).
        prior_daily_percent: before a volume has history, the share of its written data
            it is expected to change a day. 0.01..100, default 2.
        prior_spread: how far (a factor, one standard deviation) a volume's usual change
            may be from ``prior_daily_percent``. 1.1..100, default 3.
        ceiling_percent: a change of at least this share of the written data that the size
            model also finds unusual (size score >= ``medium_score``) is at least ``high``,
            unless the sampled content shows ordinary writes. 0 disables; 0..100, default 50.
        low_score, medium_score, high_score, critical_score: the score at which each
            severity starts (score = -log10 of the chance that ordinary change looks like
            this). Increasing, 0.5..50; defaults 2, 3, 4, 6.
        history_limit: most recent history entries used. 1..1000, default 120.
        relearn_days: a change flagged ``medium`` or worse re-enters the baselines after this
            many days. 1..365, default 14.
        use_content: whether content evidence is used (False: size only). Default True.

    Raises:
        ValueError: a value is out of its bounds.
    """

    floor_percent: float = 1.0
    floor_blocks: int = 64
    prior_daily_percent: float = 2.0
    prior_spread: float = 3.0
    ceiling_percent: float = 50.0
    low_score: float = 2.0
    medium_score: float = 3.0
    high_score: float = 4.0
    critical_score: float = 6.0
    history_limit: int = 120
    relearn_days: float = 14.0
    use_content: bool = True

    def __post_init__(self) -> None:
        _bound("floor_percent", self.floor_percent, 0.0, 100.0)
        _bound("floor_blocks", self.floor_blocks, 0, 1_000_000, integer=True)
        _bound("prior_daily_percent", self.prior_daily_percent, 0.01, 100.0)
        _bound("prior_spread", self.prior_spread, 1.1, 100.0)
        _bound("ceiling_percent", self.ceiling_percent, 0.0, 100.0)
        thresholds = (self.low_score, self.medium_score, self.high_score, self.critical_score)
        for name, value in zip(("low", "medium", "high", "critical"), thresholds, strict=True):
            _bound(f"{name}_score", value, 0.5, 50.0)
        if list(thresholds) != sorted(thresholds):
            raise ValueError(f"score thresholds must increase from low to critical: {thresholds}")
        _bound("history_limit", self.history_limit, 1, 1000, integer=True)
        _bound("relearn_days", self.relearn_days, 1.0, 365.0)
        if not isinstance(self.use_content, bool):
            raise ValueError(f"use_content must be true or false, got {self.use_content!r}")

    def severity(self, score: float) -> Severity:
        """The severity a score maps to under these thresholds."""
        if score >= self.critical_score:
            return Severity.CRITICAL
        if score >= self.high_score:
            return Severity.HIGH
        if score >= self.medium_score:
            return Severity.MEDIUM
        if score >= self.low_score:
            return Severity.LOW
        return Severity.NONE


DEFAULT_CONFIG = ScoringConfig()


@dataclass(frozen=True)
class Expected:
    """The range the change was compared with.

    Attributes:
        low: the lower end (1st percentile of the model's prediction).
        median: the usual value.
        high: the value at which the size alone becomes ``low`` severity.
        unit: ``share`` (of written data, 0..1) or ``blocks`` (written data unknown).
        basis: ``history``, ``history+prior`` (a short history blended with the prior),
            ``prior`` (no history yet) or ``none`` (nothing to compare with).
        points: history entries the baseline was estimated from.
        context: the seasonal context, e.g. ``on a Tuesday`` or ``around a month end``.
    """

    low: float
    median: float
    high: float
    unit: str
    basis: str
    points: int
    context: str = ""

    def to_detail(self) -> dict:
        """JSON-ready form."""
        return {
            "low": _round(self.low),
            "median": _round(self.median),
            "high": _round(self.high),
            "unit": self.unit,
            "basis": self.basis,
            "points": self.points,
        }


@dataclass(frozen=True)
class ContentEvidence:
    """What the content sampling said, in shares.

    Attributes:
        before: share of sampled pages incompressible before.
        after: share incompressible now.
        flip: net share that turned incompressible (after - before).
        usual_flip: the flip the volume usually shows.
        informative: whether enough of the sampled pages were compressible before.
        ordinary: whether the content clearly shows ordinary writes (caps at ``medium``).
        score: -log10 of the content p-value (0 when uninformative).
        decompressed: a 99 % lower bound of the share of pages that turned compressible
            (encryption never does that: at least this share of the change is benign).
    """

    before: float
    after: float
    flip: float
    usual_flip: float
    informative: bool
    ordinary: bool
    score: float
    decompressed: float = 0.0

    def to_detail(self) -> dict:
        """JSON-ready form."""
        return {
            "incompressibleBeforeShare": _round(self.before),
            "incompressibleAfterShare": _round(self.after),
            "flip": _round(self.flip),
            "usualFlip": _round(self.usual_flip),
            "informative": self.informative,
            "ordinaryWrites": self.ordinary,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class Verdict:
    """The judgement of one measurement.

    Attributes:
        severity: ``none`` .. ``critical``.
        score: the evidence, -log10 of a p-value after the policy rules (see module).
        expected: the range the change was compared with.
        reasons: sentences for a human, most important first.
        share: change as a share of written data (None when written data is unknown).
        multiple_of_usual: the change divided by its usual value (None without a baseline).
        size_score: the size evidence alone.
        content: the content evidence, or None when content was not sampled or not used.
    """

    severity: Severity
    score: float
    expected: Expected
    reasons: tuple[str, ...]
    share: float | None
    multiple_of_usual: float | None
    size_score: float
    content: ContentEvidence | None

    def to_detail(self) -> dict:
        """The JSON-ready ``verdict`` of a ``Backup Change Measured`` event."""
        return {
            "severity": self.severity.value,
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
            "share": _round(self.share) if self.share is not None else None,
            "multipleOfUsual": (
                round(self.multiple_of_usual, 2) if self.multiple_of_usual is not None else None
            ),
            "sizeScore": round(self.size_score, 3),
            "content": self.content.to_detail() if self.content is not None else None,
            "expected": self.expected.to_detail(),
        }


# -- public functions -------------------------------------------------------------------------


def judge(
    current: Observation,
    history: Sequence[HistoryEntry],
    config: ScoringConfig = DEFAULT_CONFIG,
) -> Verdict:
    """Judges one measurement against the volume's history.

    Args:
        current: the measurement to judge.
        history: the volume's earlier entries, oldest first, all before ``current`` (any
            length; only the last ``config.history_limit`` are used).
        config: the model's knobs.

    Returns:
        The verdict.
    """
    recent = history[-config.history_limit :] if history else ()
    usable = _usable(recent, current.epoch, config.relearn_days)
    size = _size_evidence(current, recent, usable, config)
    content = _content_evidence(current, usable, config) if config.use_content else None
    return _combine(current, size, content, config)


def size_verdict(
    current: Observation,
    history: Sequence[HistoryEntry],
    config: ScoringConfig = DEFAULT_CONFIG,
) -> Verdict:
    """The verdict on size alone (``current.content`` ignored), before content is sampled."""
    recent = history[-config.history_limit :] if history else ()
    usable = _usable(recent, current.epoch, config.relearn_days)
    return _combine(current, _size_evidence(current, recent, usable, config), None, config)


def wants_more_samples(size: Verdict, config: ScoringConfig = DEFAULT_CONFIG) -> bool:
    """Whether the sampler should read its larger sample: the size alone is unusual."""
    return size.size_score >= config.low_score


def last_clean(history: Sequence[HistoryEntry]) -> HistoryEntry | None:
    """The most recent entry judged ``none`` (the last snapshot judged clean), if any."""
    for entry in reversed(history):
        if entry.severity is Severity.NONE:
            return entry
    return None


# -- calendar ------------------------------------------------------------------------------


def _calendar(time: datetime, interval_days: float | None) -> tuple[int, int | None]:
    """Day of week of the interval's middle (-1 for long intervals) and its month-end key.

    The month-end key (year * 12 + month) is set when the interval overlaps the days around
    that month's end: its last three days and the first of the next month, so a batch on
    the last business day is covered. Computed on day numbers: this runs once per
    observation, and a long replay makes many.
    """
    days = interval_days if interval_days is not None else 1.0
    end_day = time.timestamp() / DAY_SECONDS  # days since 1970-01-01, a Thursday
    start_day = end_day - days
    weekday = -1 if days > _LONG_INTERVAL else (math.floor(end_day - days / 2) + 3) % 7
    year, month = time.year, time.month
    for _ in range(2):
        first_next = date(year + month // 12, month % 12 + 1, 1).toordinal() - _EPOCH_ORDINAL
        if start_day < first_next + 1 and end_day > first_next - 3:
            return weekday, year * 12 + month
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return weekday, None


# -- size -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Size:
    p: float
    score: float
    expected: Expected
    value: float  # share, or blocks
    multiple: float | None
    below_floor: bool
    note: str  # why there is no baseline, when there is none
    center: float = 0.0  # the prediction, on the model's log scale
    scale: float = 1.0
    offset: float = 0.0
    stretch: float = 1.0
    per_day: float = 1.0  # measurements a day at the volume's usual interval (at least 1)

    def p_for(self, value: float) -> float:
        """The size p-value another change of this measurement would have had."""
        if self.expected.basis == "none":
            return 1.0
        y = math.log(value / self.stretch + self.offset)
        return _t_sf((y - self.center) / self.scale)


def _usable(history: Sequence[HistoryEntry], now: float, relearn_days: float) -> list[Observation]:
    """The entries a baseline learns from.

    Entries judged ``medium`` or worse are left out, so that an attack does not teach the
    model that attacks are normal. The latest run of them comes back when it has lasted
    ``relearn_days`` up to now, or when it is longer than the clean history before it:
    then the change has become the volume's normal (or the clean part was the exception).
    A run that ended stays out, so a past attack never widens the baseline.
    """
    medium = _RANKS[Severity.MEDIUM]
    run_start = len(history)
    while run_start > 0 and _RANKS[history[run_start - 1].severity] >= medium:
        run_start -= 1
    kept = [e.observation for e in history[:run_start] if _RANKS[e.severity] < medium]
    run = len(history) - run_start
    if run and (
        run > len(kept) or now - history[run_start].observation.epoch >= relearn_days * DAY_SECONDS
    ):
        kept.extend(e.observation for e in history[run_start:])
    return kept


def _intervals(current: Observation, history: Sequence[HistoryEntry]) -> tuple[float, float]:
    """(reference interval, current interval) in days: the usual backup interval and this one."""
    known = [i for e in history if (i := e.observation.interval_days) is not None]
    if len(known) + 1 < len(history):
        # Entries that do not know their previous snapshot's time: the entry before stands in.
        known = []
        previous = None
        for entry in history:
            obs = entry.observation
            interval = obs.interval_days
            if interval is None and previous is not None and obs.epoch > previous:
                interval = (obs.epoch - previous) / DAY_SECONDS
            if interval is not None:
                known.append(interval)
            previous = obs.epoch
    previous = history[-1].observation.epoch if history else None
    now = current.interval_days
    if now is None and previous is not None and current.epoch > previous:
        now = (current.epoch - previous) / DAY_SECONDS
    if known:
        reference = _median(known)
    else:
        reference = now if now is not None else 1.0
    return reference, now if now is not None else reference


def _size_evidence(
    current: Observation,
    history: Sequence[HistoryEntry],
    usable: list[Observation],
    config: ScoringConfig,
) -> _Size:
    written = current.written_blocks
    share_mode = written is not None
    reference, interval = _intervals(current, history)
    floor_share = config.floor_percent / 100.0 * min(1.0, interval)
    if written is not None:
        value = current.changed_blocks / written
        below = value < floor_share or current.changed_blocks < config.floor_blocks
        offset = _OFFSET_OF_FLOOR * config.floor_percent / 100.0 * min(1.0, reference)
        unit = "share"
    else:
        value = float(current.changed_blocks)
        below = current.changed_blocks < config.floor_blocks
        offset = max(1.0, _OFFSET_OF_FLOOR * config.floor_blocks)
        unit = "blocks"
    offset = max(offset, 1e-9)
    stretch = max(1.0, interval / reference)  # a longer interval than usual: more change
    y_now = math.log(value / stretch + offset)

    points = [
        obs
        for obs in usable
        if (obs.written_blocks is not None) == share_mode and obs.epoch < current.epoch
    ]
    prior: tuple[float, float] | None = None
    if share_mode:
        prior_share = min(1.0, config.prior_daily_percent / 100.0 * reference)
        prior = (math.log(prior_share + offset), math.log(config.prior_spread))
    if not points and prior is None:
        expected = Expected(0.0, 0.0, 0.0, unit, "none", 0)
        note = "no earlier measurement of this volume to compare its absolute change with"
        return _Size(1.0, 0.0, expected, value, None, below, note)

    log = math.log
    # One pass: the change of each point, scaled down when its interval was longer than
    # usual, on the log scale.
    if share_mode:
        ys = [
            log((o.share or 0.0) / (i / reference) + offset)
            if (i := o.interval_days) is not None and i > reference
            else log((o.share or 0.0) + offset)
            for o in points
        ]
    else:
        ys = [
            log(o.changed_blocks / (i / reference) + offset)
            if (i := o.interval_days) is not None and i > reference
            else log(o.changed_blocks + offset)
            for o in points
        ]
    weekdays = [obs.weekday for obs in points]
    month_ends = [obs.month_end for obs in points]
    now = current.epoch
    times = (
        [(obs.epoch - now) / DAY_SECONDS for obs in points]
        if len(points) >= _TREND_MIN_POINTS
        else []
    )
    n = len(ys)
    mu, sigma, location_var, season_now, context = _baseline(
        ys, weekdays, month_ends, times, current.weekday, current.month_end
    )
    basis = "history"
    if prior is not None:
        prior_mu, prior_sd = prior
        if n == 0:
            mu, location_var, sigma = prior_mu, prior_sd**2, _SIZE_PRIOR_SIGMA
            season_now, context = 0.0, ""
            basis = "prior"
        else:
            data_precision = 1.0 / location_var
            prior_precision = 1.0 / prior_sd**2
            total = data_precision + prior_precision
            mu = (data_precision * mu + prior_precision * prior_mu) / total
            location_var = 1.0 / total
            if prior_precision / total > 0.1:
                basis = "history+prior"
    center = mu + season_now
    scale = math.sqrt(sigma * sigma + location_var)
    z = (y_now - center) / scale
    p = _t_sf(z)
    reach = _t_isf(10.0**-config.low_score)
    lowest = _t_isf(0.01)

    most = 1.0 if share_mode else math.inf  # a share never exceeds all the written data

    def back(y: float) -> float:
        return min(most, max(0.0, (math.exp(y) - offset) * stretch))

    median = back(center)
    expected = Expected(
        low=back(center - lowest * scale),
        median=median,
        high=back(center + reach * scale),
        unit=unit,
        basis=basis,
        points=n,
        context=context,
    )
    multiple = value / median if median > 0 else None
    per_day = max(1.0, 1.0 / reference)
    return _Size(
        p,
        -math.log10(p),
        expected,
        value,
        multiple,
        below,
        "",
        center,
        scale,
        offset,
        stretch,
        per_day,
    )


def _baseline(
    ys: list[float],
    weekdays: list[int],
    month_ends: list[int | None],
    times: list[float],  # days before now, empty when too few points for a trend
    weekday_now: int,
    month_end_now: int | None,
) -> tuple[float, float, float, float, str]:
    """Robust seasonal baseline of log change.

    Returns:
        (level now, scale, variance of the level, seasonal effect now, context words).
    """
    n = len(ys)
    if n == 0:
        return 0.0, _SIZE_PRIOR_SIGMA, 1.0, 0.0, ""
    base = _median(ys)
    dow_effect = [0.0] * 7
    month_effect = 0.0
    seasonal = n >= _SEASON_MIN_POINTS
    if seasonal:
        # One sort groups the points by weekday, each group already in order.
        pairs = sorted(zip(weekdays, ys, strict=True))
        keys = [day for day, _ in pairs]
        for day in range(7):
            first, last = bisect_left(keys, day), bisect_right(keys, day)
            count = last - first
            if count >= 2:
                middle = first + count // 2
                median = (
                    pairs[middle][1]
                    if count % 2
                    else 0.5 * (pairs[middle - 1][1] + pairs[middle][1])
                )
                dow_effect[day] = (median - base) * count / (count + _DOW_SHRINK)
        peaks: dict[int, float] = {}
        ends = [
            (k, d, y) for k, d, y in zip(month_ends, weekdays, ys, strict=True) if k is not None
        ]
        for key, day, y in ends:
            residual = y - base - (dow_effect[day] if day >= 0 else 0.0)
            if residual > peaks.get(key, -math.inf):
                peaks[key] = residual
        if peaks:
            months = len(peaks)
            month_effect = (
                max(0.0, _median(list(peaks.values()))) * months / (months + _MONTH_END_SHRINK)
            )
    flat = [
        y - (dow_effect[day] if day >= 0 else 0.0) - (month_effect if key is not None else 0.0)
        for y, day, key in zip(ys, weekdays, month_ends, strict=True)
    ]
    slope = 0.0
    if times:
        third = n // 3
        left_t, right_t = _sorted_median(times[:third]), _sorted_median(times[-third:])
        if right_t - left_t >= 3.0:
            slope = max(0.0, (_median(flat[-third:]) - _median(flat[:third])) / (right_t - left_t))
    if slope:
        tail = zip(flat[-_RECENT_POINTS:], times[-_RECENT_POINTS:], strict=True)
        recent = [y - slope * t for y, t in tail]
        level = _median(recent)
        residuals = [y - (level + slope * t) for y, t in zip(flat, times, strict=True)]
    else:
        recent = flat[-_RECENT_POINTS:]
        level = _median(recent)
        residuals = [y - level for y in flat]
    # The median absolute error of the prediction: it measures how far the points fall from
    # the level now, so a level that moved widens the scale rather than hiding behind it.
    mad = _median([abs(r) for r in residuals])
    sigma_hat = _MAD_TO_SIGMA * mad
    sigma = math.sqrt(
        (_SIZE_PRIOR_WEIGHT * _SIZE_PRIOR_SIGMA**2 + n * sigma_hat * sigma_hat)
        / (_SIZE_PRIOR_WEIGHT + n)
    )
    sigma = max(sigma, _SIZE_MIN_SIGMA)
    location_var = _MEDIAN_VARIANCE * sigma * sigma / len(recent)
    season = 0.0
    context = ""
    if seasonal:
        if weekday_now >= 0:
            season += dow_effect[weekday_now]
            context = f"on a {_WEEKDAYS[weekday_now]}"
        if month_end_now is not None and month_effect > 0:
            season += month_effect
            context = (context + " " if context else "") + "around a month end"
    return level, sigma, location_var, season, context


# -- content --------------------------------------------------------------------------------


def _content_evidence(
    current: Observation, usable: list[Observation], config: ScoringConfig
) -> tuple[ContentEvidence, float] | None:
    """(evidence, p-value) of the current content, or None when it was not sampled."""
    content = current.content
    if content is None or content.pages == 0:
        return None
    pages = content.pages
    before = content.incompressible_before / pages
    after = content.incompressible_after / pages
    flip = after - before
    pool = pages - content.incompressible_before
    informative = pool >= _CONTENT_MIN_POOL_PAGES
    flips = [f for obs in usable if (f := obs.flip) is not None]
    usual = _median(flips) if flips else 0.0
    squares = sum([(f - usual) * (f - usual) for f in flips])
    spread_sq = (_CONTENT_PRIOR_WEIGHT * _CONTENT_PRIOR_SPREAD**2 + squares) / (
        _CONTENT_PRIOR_WEIGHT + len(flips)
    )
    counting_sq = (content.incompressible_after + content.incompressible_before + 1) / (
        pages * pages
    )
    sigma = math.sqrt(spread_sq + counting_sq)
    # Encryption leaves incompressible pages behind, whatever was there before: when even a
    # 99 % upper bound of the pages incompressible now is below what intermittent
    # encryption of half the sampled blocks leaves, the change was not encryption.
    counting = math.sqrt(counting_sq)
    after_bound = after + _CLEAN_Z * math.sqrt((content.incompressible_after + 1) / (pages * pages))
    after_is_plain = after_bound < 0.5 * _INTERMITTENT_SHARE
    decompressed = max(0.0, -flip - _CLEAN_Z * counting)
    if not informative:
        evidence = ContentEvidence(
            before, after, flip, usual, False, after_is_plain, 0.0, decompressed
        )
        return evidence, 1.0
    p = _t_sf((flip - usual) / sigma)
    hidden = 0.5 * _INTERMITTENT_SHARE * (1.0 - before)
    unusual = -math.log10(p) >= config.low_score
    ordinary = not unusual and ((flip - usual) + _CLEAN_Z * sigma < hidden or after_is_plain)
    evidence = ContentEvidence(
        before, after, flip, usual, True, ordinary, -math.log10(p), decompressed
    )
    return evidence, p


# -- combination ----------------------------------------------------------------------------


def _combine(
    current: Observation,
    size: _Size,
    content_result: tuple[ContentEvidence, float] | None,
    config: ScoringConfig,
) -> Verdict:
    content = content_result[0] if content_result is not None else None
    size_p, size_score = size.p, size.score
    share = size.value if size.expected.unit == "share" else None
    suspect = size.value  # the part of the change that could be encryption
    if content is not None and content.decompressed > 0:
        # Encryption never makes data compressible: judge what is left of the change.
        suspect = size.value * (1.0 - content.decompressed)
        size_p = size.p_for(suspect)
        size_score = -math.log10(size_p)
    if content is not None and content.informative and content_result is not None:
        k = size_p * content_result[1]
        score = -math.log10(k * (1.0 - math.log(k))) if k > 0 else 300.0
    else:
        score = size_score
    # A volume backed up more than daily is judged more than once a day: its p-value is
    # scaled by the measurements a day, so that alerts per volume-day stay what the
    # thresholds say whatever the backup interval.
    score = max(0.0, score - math.log10(size.per_day))
    ordinary = content is not None and content.ordinary
    capped = ordinary and score > config.medium_score
    if capped:
        score = config.medium_score
    # The ceiling is the backstop for what content cannot rule out (intermittent encryption
    # of mixed data, or any encryption of incompressible data): only ordinary writes lift it.
    ceiling = (
        config.ceiling_percent > 0
        and share is not None
        and suspect >= config.ceiling_percent / 100.0
        and size_score >= config.medium_score
        and not ordinary
    )
    if ceiling and score < config.high_score:
        score = config.high_score
    if size.below_floor:
        score = 0.0
    severity = config.severity(score)
    reasons = _reasons(current, size, content, config, capped, ceiling, suspect)
    return Verdict(
        severity=severity,
        score=score,
        expected=size.expected,
        reasons=tuple(reasons),
        share=share,
        multiple_of_usual=size.multiple,
        size_score=size_score,
        content=content,
    )


# -- reasons --------------------------------------------------------------------------------


def _reasons(
    current: Observation,
    size: _Size,
    content: ContentEvidence | None,
    config: ScoringConfig,
    capped: bool,
    ceiling: bool,
    suspect: float,
) -> list[str]:
    expected = size.expected
    reasons = []
    context = f" {expected.context}" if expected.context else ""
    in_blocks = expected.unit == "blocks"
    if in_blocks:
        head = f"changed {current.changed_blocks:,} blocks ({_mib(current.changed_blocks)})"
    else:
        head = f"changed {_pct(size.value)} of written data"

    def amount(value: float) -> str:
        return f"{value:,.0f} blocks" if in_blocks else _pct(value)

    if in_blocks or expected.high < 0.9995:
        bound = f"(expected at most {amount(expected.high)}{context})"
    else:
        bound = "(no share of the written data is unusual by size alone yet)"
    if expected.basis == "none":
        reasons.append(f"{head}; {size.note}")
    else:
        multiple = size.multiple
        if multiple is not None and multiple >= 1.5:
            usual = "its usual" if expected.basis != "prior" else "the prior's usual"
            reasons.append(f"{head}, {_times(multiple)} {usual} {amount(expected.median)} {bound}")
        else:
            reasons.append(f"{head}, usual {amount(expected.median)} {bound}")
    if size.below_floor:
        floor = f"{config.floor_percent:g} % of written data a day"
        reasons.append(
            f"below the floor ({floor}, at least {config.floor_blocks} blocks): never anomalous"
        )
    if content is not None:
        sampled = current.content.sampled_blocks if current.content is not None else 0
        reasons.append(_content_reason(content, sampled))
    elif not config.use_content:
        reasons.append("content not used: judged on size alone")
    else:
        reasons.append("content not sampled: judged on size alone")
    if content is not None and content.decompressed > 0 and suspect < size.value:
        reasons.append(
            f"at least {_pct(content.decompressed)} of the sampled pages turned compressible "
            f"(encryption never does that): judged on the rest, {amount(suspect)}"
        )
    if capped:
        reasons.append(
            "the sampled changed blocks stayed compressible: a large ordinary rewrite "
            "(a database reorganisation, a batch), not encryption; severity capped at medium"
        )
    if ceiling:
        reasons.append(
            f"at least {config.ceiling_percent:g} % of the written data changed: at least high"
        )
    if expected.basis == "prior":
        reasons.append(
            f"first measurement of this volume: compared with the prior "
            f"({config.prior_daily_percent:g} % of written data a day, "
            f"x/÷ {config.prior_spread:g})"
        )
    elif expected.basis == "history+prior":
        reasons.append(
            f"short history ({expected.points} measurement{'s' if expected.points != 1 else ''}): "
            "blended with the prior "
            f"({config.prior_daily_percent:g} % a day)"
        )
    if expected.unit == "blocks" and expected.basis != "none":
        reasons.append(
            "written data unknown: judged on absolute change against the volume's own history"
        )
    return reasons


def _content_reason(content: ContentEvidence, sampled: int) -> str:
    head = (
        f"sampled {sampled} changed blocks: {_pct(content.after)} of their pages are "
        f"incompressible now, {_pct(content.before)} were before"
    )
    if not content.informative:
        if content.before < 0.5:  # compressible, but too few pages sampled
            return f"{head}: too few pages to tell; the size carries the verdict"
        return (
            f"{head}: the data was already incompressible, so content cannot tell; "
            "the size carries the verdict"
        )
    if content.ordinary:
        return f"{head}: ordinary writes"
    if content.score < 2.0:
        return f"{head}: within what this volume usually shows"
    rise = content.flip - content.usual_flip
    if rise >= 0.25:
        what = "the change turned compressible data into noise (encryption)"
    elif rise >= 0.02:
        what = (
            "a few pages of the changed blocks turned into noise (consistent with "
            "intermittent encryption, a few KiB in every 64 KiB, or encrypted file headers)"
        )
    else:
        what = (
            "a small but unusual rise in incompressible pages "
            "(consistent with encryption of file headers only)"
        )
    return f"{head}: {what}"


# -- numbers ----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def _sorted_median(ordered: list[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def _t_sf(t: float) -> float:
    """Upper tail of Student's t with 4 degrees of freedom, the tail of both evidences.

    Closed form, without cancellation far in the tail. Four degrees of freedom: heavy
    enough for ordinary change (a t with 4 has tails like a power of -4), light enough that
    a clear signal still reaches a small p-value.
    """
    if t < 0:
        return 1.0 - _t_sf(-t)
    root = math.sqrt(4.0 + t * t)
    tail = 4.0 / (root * (root + t))  # 1 - t / root, without cancellation
    return max(tail * tail * (3.0 - tail) / 4.0, 1e-300)


@lru_cache(maxsize=64)
def _t_isf(p: float) -> float:
    """The t(4) value whose upper tail is ``p`` (bisection; cached, thresholds are few)."""
    low, high = 0.0, 1e6
    for _ in range(200):
        middle = 0.5 * (low + high)
        if _t_sf(middle) > p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _pct(share: float) -> str:
    percent = 100.0 * share
    if percent >= 99.95 or percent == 0:
        return f"{percent:.0f} %"
    return f"{percent:.1f} %" if percent >= 0.1 else f"{percent:.2f} %"


def _times(multiple: float) -> str:
    return f"{multiple:.0f}x" if multiple >= 10 else f"{multiple:.1f}x"


def _mib(blocks: int) -> str:
    mib = blocks * BLOCK_BYTES / 2**20
    return f"{mib / 1024:,.1f} GiB" if mib >= 1024 else f"{mib:,.0f} MiB"
