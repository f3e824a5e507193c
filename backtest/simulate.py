"""A labelled synthetic fleet of volumes, written as ``Backup Change Measured`` events.

For a team without history to try the backtest on, and for ``benchmarks/``. Seeded and
reproducible: the same model, seed, volume count and days give the same bytes.

The model (every number is a field of :class:`FleetModel`; the defaults are the
``standard`` fleet, :data:`STRESS` is a second fleet with different parameters):

* Size: each volume starts with ``written`` data, lognormal around 100 GiB; a share of
  the volumes *fills up*: it appends new data every day (new blocks, which the previous
  snapshot did not hold and therefore read as zeros there).
* Churn: the share of the written data a volume changes on an ordinary day is lognormal
  across volumes (median ``churn_median_percent``, log spread ``churn_spread``). Each
  day multiplies it by heavy-tailed noise (Student t with ``noise_df`` degrees of freedom
  on the log scale, per-volume spread in ``noise_sigma``), by a weekend factor on
  ``weekend_days`` for ``weekend_share`` of the volumes, by a month-end batch factor on a
  month's last day for ``month_end_share`` of them, and by a trend (a log-linear drift
  over the simulated period for ``trend_share`` of them). A benign large rewrite of
  ordinary data (a database reorganisation, 20-100 % of the written data) happens with
  probability ``reorg_rate`` per volume-day.
* Backups: daily at a per-volume hour with a few minutes of jitter, or hourly, or weekly
  (``cadence``); a backup is missed with probability ``missing_rate`` (the next one
  measures the whole gap, the union of the days' changes). The change of an interval is
  ``1 - prod(1 - daily share)`` over the days it covers (pro rata within a day).
* Data kinds: ``ordinary`` data (binaries, text, databases: each 4 KiB page incompressible
  with a per-volume probability in ``ordinary_incompressible``), ``mixed`` (a per-volume
  share of the blocks is compressed data; a rewritten block keeps its kind with
  probability 0.95), ``compressed`` (always incompressible: media, archives) and
  ``compressing`` (ordinary data whose daily change includes freshly compressed files
  written into new blocks, like rotated logs: a benign flip every day).
* Content: ``sampled_blocks`` changed blocks are drawn from the interval's changed blocks
  (attack, new, reorganised or ordinary); pages are counted per block on each side with
  binomial draws of the block's kind.
* Attacks on ``attack_share`` of the volumes, one episode each, starting at a uniformly
  drawn measurement (``first_measurement_attacks`` of them at the volume's first
  measurement, its second backup): ``full`` encryption of ``full_percent`` of the written
  data within one interval; ``intermittent`` (4 KiB of every 64 KiB of each block) of
  ``intermittent_percent``; ``low_and_slow``: ``low_and_slow_percent`` a day for
  ``low_and_slow_days`` days; ``header_only``: the first 1-4 pages of ``header_percent``
  of the blocks. Attacked measurements carry ``detail.label = "attack"``,
  ``detail.attack`` (the kind), ``detail.attackPercent`` (share of written data encrypted
  in that interval), ``detail.attackDay`` (0 for the episode's first measurement) and
  ``detail.attackId``. Every event carries ``detail.simulation`` (the volume's data kind
  and cadence, and a benign cause such as ``reorg`` or ``month_end`` when there is one).

The output is one EventBridge envelope per line, volume after volume (``shuffle`` reorders
lines within windows, ``duplicate_rate`` repeats some with a new envelope id, as an audit
queue redelivers them).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from backup_anomaly.scoring import BLOCK_BYTES, PAGES_PER_BLOCK

BLOCKS_PER_GIB = 2048
SOURCE = "backup-anomaly-detection"
DETAIL_TYPE = "Backup Change Measured"
ATTACK_KINDS = ("full", "intermittent", "low_and_slow", "header_only")
DATA_KINDS = ("ordinary", "mixed", "compressed", "compressing")
CADENCES = ("daily", "hourly", "weekly")
_CADENCE_DAYS = {"daily": 1.0, "hourly": 1.0 / 24.0, "weekly": 7.0}
_ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444")
_REGIONS = ("us-east-1", "eu-west-1")
_GZIP_PAGE = 0.998  # compressed data: nearly every page incompressible
_KEEP_KIND = 0.95  # a rewritten block of a mixed volume keeps its kind


@dataclass(frozen=True)
class FleetModel:
    """Parameters of a synthetic fleet (see the module docstring for the model).

    Ranges are ``(low, high)`` of a uniform draw per volume; weights need not sum to 1.
    """

    name: str = "standard"
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    written_median_gib: float = 100.0
    written_spread: float = 1.0
    growth_share: float = 0.15
    growth_percent: tuple[float, float] = (0.2, 2.0)
    churn_median_percent: float = 1.8
    churn_spread: float = 0.9
    noise_sigma: tuple[float, float] = (0.2, 0.5)
    noise_df: float = 3.0
    weekend_share: float = 0.7
    weekend_days: tuple[int, ...] = (5, 6)
    weekend_factor: tuple[float, float] = (0.2, 0.7)
    month_end_share: float = 0.3
    month_end_factor: tuple[float, float] = (3.0, 10.0)
    trend_share: float = 0.2
    trend_log_range: tuple[float, float] = (-0.5, 1.0)
    reorg_rate: float = 0.002
    reorg_percent: tuple[float, float] = (20.0, 100.0)
    data_kinds: tuple[tuple[str, float], ...] = (
        ("ordinary", 0.77),
        ("mixed", 0.10),
        ("compressed", 0.10),
        ("compressing", 0.03),
    )
    ordinary_incompressible: tuple[float, float] = (0.0, 0.015)
    mixed_compressed_blocks: tuple[float, float] = (0.1, 0.6)
    compressing_share: tuple[float, float] = (0.05, 0.3)
    sampled_blocks: int = 32
    content_off_share: float = 0.0
    cadence: tuple[tuple[str, float], ...] = (("daily", 1.0),)
    missing_rate: float = 0.01
    duplicate_rate: float = 0.0
    shuffle: bool = False
    attack_share: float = 0.3
    attack_kinds: tuple[tuple[str, float], ...] = (
        ("full", 0.35),
        ("intermittent", 0.25),
        ("low_and_slow", 0.25),
        ("header_only", 0.15),
    )
    first_measurement_attacks: float = 0.1
    full_percent: tuple[float, float] = (10.0, 100.0)
    intermittent_percent: tuple[float, float] = (20.0, 100.0)
    low_and_slow_percent: float = 2.0
    low_and_slow_days: int = 10
    header_percent: tuple[float, float] = (10.0, 100.0)


STANDARD = FleetModel()

# A fleet unlike the standard one, for checking what was not tuned on: busier and more
# spread churn, Friday-Saturday weekends, more always-incompressible and filling volumes,
# more reorganisations, hourly and weekly backups, gaps, sampling off on some volumes,
# duplicated and reordered events.
STRESS = replace(
    STANDARD,
    name="stress",
    start=datetime(2026, 4, 13, tzinfo=UTC),
    growth_share=0.3,
    growth_percent=(0.5, 4.0),
    churn_median_percent=4.0,
    churn_spread=1.3,
    noise_sigma=(0.15, 0.8),
    noise_df=2.5,
    weekend_share=0.5,
    weekend_days=(4, 5),
    weekend_factor=(0.1, 1.5),
    month_end_share=0.5,
    month_end_factor=(2.0, 15.0),
    trend_share=0.4,
    trend_log_range=(-1.0, 1.5),
    reorg_rate=0.01,
    data_kinds=(("ordinary", 0.55), ("mixed", 0.2), ("compressed", 0.2), ("compressing", 0.05)),
    ordinary_incompressible=(0.0, 0.05),
    content_off_share=0.1,
    cadence=(("daily", 0.85), ("hourly", 0.05), ("weekly", 0.10)),
    missing_rate=0.05,
    duplicate_rate=0.03,
    shuffle=True,
    first_measurement_attacks=0.15,
)

FLEETS = {"standard": STANDARD, "stress": STRESS}


@dataclass(frozen=True)
class _Volume:
    """One simulated volume's traits."""

    index: int
    account: str
    region: str
    volume_id: str
    written: float
    growth: float
    churn: float
    noise: float
    weekend: float
    month_end: float
    trend: float
    kind: str
    incompressible: float
    compressed_blocks: float
    compressing: float
    sampling: bool
    cadence: str
    hour: float

    @property
    def arn(self) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account}:volume/{self.volume_id}"


@dataclass(frozen=True)
class _Attack:
    kind: str
    start: int  # measurement index (1 = the first measurement)
    percent: float
    days: int


def generate(model: FleetModel, volumes: int, days: int, seed: int) -> Iterator[str]:
    """The fleet's events, one JSON line each (no trailing newline).

    Args:
        model: the fleet's parameters.
        volumes: number of volumes (>= 1).
        days: simulated days of backups (>= 1).
        seed: the random seed.

    Yields:
        EventBridge envelopes as JSON text.
    """
    if volumes < 1 or days < 1:
        raise ValueError("volumes and days must be at least 1")
    window: list[str] = []
    shuffler = random.Random(f"{seed}/shuffle")
    for index in range(volumes):
        rng = random.Random(f"{model.name}/{seed}/{index}")
        volume = _volume(model, rng, index)
        for line in _volume_events(model, volume, rng, days):
            if not model.shuffle:
                yield line
                continue
            window.append(line)
            if len(window) >= 5000:
                shuffler.shuffle(window)
                yield from window
                window = []
    shuffler.shuffle(window)
    yield from window


def write(path: str, model: FleetModel, volumes: int, days: int, seed: int) -> int:
    """Writes the fleet's events to ``path`` (JSON lines); returns the number of lines."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for line in generate(model, volumes, days, seed):
            out.write(line)
            out.write("\n")
            count += 1
    return count


def _pick(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    total = sum(w for _, w in weights)
    draw = rng.random() * total
    for name, weight in weights:
        draw -= weight
        if draw < 0:
            return name
    return weights[-1][0]


def _uniform(rng: random.Random, bounds: tuple[float, float]) -> float:
    return rng.uniform(bounds[0], bounds[1])


def _volume(model: FleetModel, rng: random.Random, index: int) -> _Volume:
    written = model.written_median_gib * math.exp(rng.gauss(0.0, model.written_spread))
    written = min(max(written, 2.0), 16384.0) * BLOCKS_PER_GIB
    churn = model.churn_median_percent / 100.0 * math.exp(rng.gauss(0.0, model.churn_spread))
    return _Volume(
        index=index,
        account=_ACCOUNTS[index % len(_ACCOUNTS)],
        region=_REGIONS[(index // len(_ACCOUNTS)) % len(_REGIONS)],
        volume_id=f"vol-{index:017x}",
        written=written,
        growth=(
            _uniform(rng, model.growth_percent) / 100.0
            if rng.random() < model.growth_share
            else 0.0
        ),
        churn=min(max(churn, 0.0001), 0.6),
        noise=_uniform(rng, model.noise_sigma),
        weekend=_uniform(rng, model.weekend_factor) if rng.random() < model.weekend_share else 1.0,
        month_end=(
            _uniform(rng, model.month_end_factor) if rng.random() < model.month_end_share else 1.0
        ),
        trend=_uniform(rng, model.trend_log_range) if rng.random() < model.trend_share else 0.0,
        kind=_pick(rng, model.data_kinds),
        incompressible=_uniform(rng, model.ordinary_incompressible),
        compressed_blocks=_uniform(rng, model.mixed_compressed_blocks),
        compressing=_uniform(rng, model.compressing_share),
        sampling=rng.random() >= model.content_off_share,
        cadence=_pick(rng, model.cadence),
        hour=rng.uniform(0.0, 24.0),
    )


def _attack(
    model: FleetModel, rng: random.Random, measurements: int, cadence: str
) -> _Attack | None:
    if rng.random() >= model.attack_share or measurements < 4:
        return None
    kind = _pick(rng, model.attack_kinds)
    start = (
        1 if rng.random() < model.first_measurement_attacks else rng.randint(1, measurements - 3)
    )
    if kind == "full":
        percent = math.exp(
            _uniform(rng, (math.log(model.full_percent[0]), math.log(model.full_percent[1])))
        )
    elif kind == "intermittent":
        percent = _uniform(rng, model.intermittent_percent)
    elif kind == "header_only":
        percent = _uniform(rng, model.header_percent)
    else:
        per_backup = _CADENCE_DAYS[cadence]
        percent = model.low_and_slow_percent * per_backup
    length = 1
    if kind == "low_and_slow":
        length = max(1, round(model.low_and_slow_days / _CADENCE_DAYS[cadence]))
    return _Attack(kind, start, percent, length)


def _daily_share(
    model: FleetModel, volume: _Volume, rng: random.Random, day: datetime, progress: float
) -> tuple[float, str | None]:
    """The share of written data the volume changes on ``day`` and a benign cause, if any."""
    t = rng.gauss(0.0, 1.0) / math.sqrt(
        rng.gammavariate(model.noise_df / 2.0, 2.0 / model.noise_df)
    )
    if model.noise_df > 2:
        t /= math.sqrt(model.noise_df / (model.noise_df - 2.0))
    share = volume.churn * math.exp(volume.noise * t + volume.trend * progress)
    cause = None
    if day.weekday() in model.weekend_days:
        share *= volume.weekend
    if (day + timedelta(days=1)).month != day.month and volume.month_end > 1.0:
        share *= volume.month_end * rng.uniform(0.8, 1.2)
        cause = "month_end"
    if rng.random() < model.reorg_rate:
        share = max(share, _uniform(rng, model.reorg_percent) / 100.0)
        cause = "reorg"
    return min(share, 0.95), cause


def _volume_events(
    model: FleetModel, volume: _Volume, rng: random.Random, days: int
) -> Iterator[str]:
    step = _CADENCE_DAYS[volume.cadence]
    first = model.start + timedelta(
        hours=volume.hour if volume.cadence != "hourly" else volume.hour % 1
    )
    times = []
    count = int(days / step)
    for k in range(count + 1):
        jitter = rng.gauss(0.0, 4.0) if volume.cadence != "hourly" else rng.uniform(0.0, 3.0)
        when = first + timedelta(days=k * step, minutes=jitter)
        if k == 0 or k == count or rng.random() >= model.missing_rate:
            times.append(when)
    # Daily activity over the whole period, drawn once so that intervals add up.
    day0 = datetime(first.year, first.month, first.day, tzinfo=UTC)
    span = (times[-1] - day0).days + 2
    activity = []
    for d in range(span):
        day = day0 + timedelta(days=d)
        activity.append(_daily_share(model, volume, rng, day, d / max(1, span - 1)))
    attack = _attack(model, rng, len(times) - 1, volume.cadence)
    written = volume.written
    previous = f"snap-{volume.index:08x}{0:08x}"
    for j in range(1, len(times)):
        start, end = times[j - 1], times[j]
        keep, causes, new_share = 1.0, [], 0.0
        cursor = start
        while cursor < end:
            day_index = (cursor - day0).days
            day_end = day0 + timedelta(days=day_index + 1)
            piece = (min(end, day_end) - cursor).total_seconds() / 86400.0
            share, cause = activity[day_index]
            keep *= (1.0 - share) ** piece
            new_share += volume.growth * piece
            if cause and cause not in causes:
                causes.append(cause)
            cursor = day_end
        churn_share = 1.0 - keep
        label = None
        attack_percent = 0.0
        attack_day = None
        if attack is not None and attack.start <= j < attack.start + attack.days:
            label = attack.kind
            attack_percent = attack.percent
            attack_day = j - attack.start
        new_blocks = written * new_share
        written_after = written + new_blocks
        churn_blocks = written * churn_share
        attack_blocks = min(written * attack_percent / 100.0, written)
        changed = min(written_after, churn_blocks + attack_blocks + new_blocks)
        changed_blocks = max(0, round(changed))
        written_blocks = max(1, round(written_after))
        content = None
        if volume.sampling:
            content = _content(
                model,
                volume,
                rng,
                changed_blocks,
                attack_blocks,
                new_blocks,
                churn_blocks,
                label,
                "reorg" in causes,
            )
        snapshot = f"snap-{volume.index:08x}{j:08x}"
        detail: dict = {
            "measurementId": f"{volume.arn}/{previous}/{snapshot}",
            "account": volume.account,
            "region": volume.region,
            "volumeId": volume.volume_id,
            "volumeArn": volume.arn,
            "previousSnapshotId": previous,
            "snapshotId": snapshot,
            "changedBlocks": changed_blocks,
            "changedBytes": changed_blocks * BLOCK_BYTES,
            "percentOfVolume": None,
            "volumeSizeGiB": None,
            "writtenBlocks": written_blocks,
            "content": content,
            "verdict": None,
            "backupJobId": f"job-{volume.index:08x}-{j:06d}",
            "resourceType": "EBS",
            "completionTime": end.isoformat(timespec="microseconds"),
            "measuredAt": (end + timedelta(seconds=30)).isoformat(timespec="microseconds"),
            "simulation": {
                "dataKind": volume.kind,
                "cadence": volume.cadence,
                "benign": causes[0] if causes else None,
            },
        }
        size_gib = max(1, math.ceil(written_blocks * 1.25 / BLOCKS_PER_GIB))
        detail["volumeSizeGiB"] = size_gib
        detail["percentOfVolume"] = round(100.0 * changed_blocks / (size_gib * BLOCKS_PER_GIB), 4)
        if label is not None:
            detail.update(
                {
                    "label": "attack",
                    "attack": label,
                    "attackPercent": round(attack_percent, 4),
                    "attackDay": attack_day,
                    "attackId": f"{volume.volume_id}/{label}",
                }
            )
        line = _envelope(volume, rng, detail, end + timedelta(seconds=31))
        yield line
        if rng.random() < model.duplicate_rate:
            yield _envelope(volume, rng, detail, end + timedelta(minutes=7))
        written = written_after
        previous = snapshot


def _envelope(volume: _Volume, rng: random.Random, detail: dict, when: datetime) -> str:
    envelope = {
        "version": "0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": volume.account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": volume.region,
        "resources": [volume.arn],
        "detail": detail,
    }
    return json.dumps(envelope, separators=(",", ":"))


def _content(
    model: FleetModel,
    volume: _Volume,
    rng: random.Random,
    changed: int,
    attack_blocks: float,
    new_blocks: float,
    churn_blocks: float,
    attack: str | None,
    reorg: bool,
) -> dict | None:
    """Page counts of the sampled changed blocks, drawn per block kind."""
    n = min(model.sampled_blocks, changed)
    if n == 0:
        return {"sampledBlocks": 0, "pages": 0, "incompressibleBefore": 0, "incompressibleAfter": 0}
    total = attack_blocks + new_blocks + churn_blocks
    if total <= 0:
        total, churn_blocks = 1.0, 1.0
    p_attack = attack_blocks / total
    p_new = new_blocks / total
    compressing = volume.compressing if volume.kind == "compressing" and not reorg else 0.0
    # Most of a reorganisation day's change is the reorganisation itself.
    reorg_share = 0.9
    before = after = 0
    for _ in range(n):
        draw = rng.random()
        if draw < p_attack:
            kind_before = _block_kind(volume, rng)
            before += _pages(rng, volume, kind_before)
            if attack == "full":
                after += PAGES_PER_BLOCK
            elif attack == "intermittent":
                encrypted = PAGES_PER_BLOCK // 16
                after += encrypted + _pages(rng, volume, kind_before, PAGES_PER_BLOCK - encrypted)
            elif attack == "header_only":
                encrypted = rng.randint(1, 4)
                after += encrypted + _pages(rng, volume, kind_before, PAGES_PER_BLOCK - encrypted)
            else:  # low_and_slow encrypts whole blocks
                after += PAGES_PER_BLOCK
        elif draw < p_attack + p_new:
            # A block the previous snapshot did not hold reads as zeros there.
            after += _pages(rng, volume, _block_kind(volume, rng))
        elif reorg and rng.random() < reorg_share:
            # A reorganisation rewrites ordinary data: compressible afterwards.
            before += _pages(rng, volume, _block_kind(volume, rng))
            after += _pages(rng, volume, "ordinary")
        elif compressing and rng.random() < compressing:
            before += _pages(rng, volume, "ordinary")
            after += _pages(rng, volume, "compressed")
        else:
            kind_before = _block_kind(volume, rng)
            kind_after = kind_before
            if volume.kind == "mixed" and rng.random() >= _KEEP_KIND:
                kind_after = _block_kind(volume, rng)
            before += _pages(rng, volume, kind_before)
            after += _pages(rng, volume, kind_after)
    return {
        "sampledBlocks": n,
        "pages": n * PAGES_PER_BLOCK,
        "incompressibleBefore": before,
        "incompressibleAfter": after,
    }


def _block_kind(volume: _Volume, rng: random.Random) -> str:
    if volume.kind == "compressed":
        return "compressed"
    if volume.kind == "mixed" and rng.random() < volume.compressed_blocks:
        return "compressed"
    return "ordinary"


def _pages(rng: random.Random, volume: _Volume, kind: str, pages: int = PAGES_PER_BLOCK) -> int:
    """Incompressible pages among ``pages`` of a block of ``kind``."""
    rate = _GZIP_PAGE if kind == "compressed" else volume.incompressible
    return _binomial(rng, pages, rate)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    """A binomial draw, fast for the small and near-one rates used here."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - _binomial(rng, n, 1.0 - p)
    # Geometric skips: O(n p) draws instead of n.
    log_q = math.log(1.0 - p)
    count, position = 0, 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1
