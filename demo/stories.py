"""What happens to each simulated volume, day by day: ordinary churn and the demo's plots.

Two member accounts, five volumes, each with its own data and its own story:

- ``orders-db``, ``ledger`` (first account) and ``etl-scratch`` (second): ordinary days,
  then 85 % of the data encrypted on the last day (one wave across two accounts);
- ``reports`` (first account): ordinary days and a large batch rewrite of ordinary data on
  the last day of each month (benign: it compresses like everything before it);
- ``warehouse`` (second account): low-and-slow encryption, 2 % of the data a day for three
  days (by size an ordinary day), twelve days before the end; ordinary days after it.

Churn is 1.5-3 % of the written data a day, lower at weekends, drawn from a seeded random
generator so that every run tells the same story.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import datetime

ENCRYPTED = "encrypted"
ATTACK_SHARE = 0.85
MONTH_END_SHARE = 0.2
SLOW_SHARE = 0.02
SLOW_DAYS = 3
SLOW_ENDS_BEFORE = 10  # days before the last one


@dataclass(frozen=True)
class Story:
    """One volume's data and plot."""

    name: str
    account: int  # 0: the first member account of the demo, 1: the second
    kind: str  # testing.blocks source kind of its ordinary data
    written_blocks: int
    plot: str  # "attack", "month_end", "low_and_slow"

    @property
    def size_gib(self) -> int:
        return max(1, -(-self.written_blocks * 512 // (1024 * 1024)))

    def describe(self) -> str:
        return {
            "attack": "encrypted on the last day",
            "month_end": "a batch rewrite of ordinary data at each month end",
            "low_and_slow": f"low-and-slow: {SLOW_SHARE:.0%} a day encrypted for {SLOW_DAYS} "
            f"days, {SLOW_ENDS_BEFORE + SLOW_DAYS - 1} days before the end",
        }[self.plot]


STORIES = (
    Story("orders-db", 0, "database", 384, "attack"),
    Story("ledger", 0, "text", 384, "attack"),
    Story("reports", 0, "text", 768, "month_end"),
    Story("etl-scratch", 1, "binary", 384, "attack"),
    Story("warehouse", 1, "database", 2400, "low_and_slow"),
)


def is_month_end(when: datetime) -> bool:
    return when.day == calendar.monthrange(when.year, when.month)[1]


def slow_days(days: int) -> range:
    """The days (0-based) of the low-and-slow encryption."""
    last = days - 1 - SLOW_ENDS_BEFORE
    return range(last - SLOW_DAYS + 1, last + 1)


class Volume:
    """The blocks of one story's volume and what each day writes to them."""

    def __init__(self, story: Story, seed: str):
        self.story = story
        self.rng = random.Random(seed)
        self.encrypted: set[int] = set()

    def writes(self, day: int, days: int, when: datetime) -> tuple[dict[int, str], str]:
        """The blocks the day's backup finds changed (index -> kind) and what happened."""
        story, rng = self.story, self.rng
        blocks = range(story.written_blocks)
        if day == 0:
            return dict.fromkeys(blocks, story.kind), "first backup: every written block"
        weekend = when.weekday() >= 5
        churn = rng.uniform(0.015, 0.03) * (0.4 if weekend else 1.0)
        writes = dict.fromkeys(
            rng.sample(blocks, max(1, round(churn * story.written_blocks))), story.kind
        )
        what = "ordinary day"
        if story.plot == "attack" and day == days - 1:
            attacked = rng.sample(blocks, round(ATTACK_SHARE * story.written_blocks))
            writes.update(dict.fromkeys(attacked, ENCRYPTED))
            what = f"ransomware: {ATTACK_SHARE:.0%} of the data encrypted"
        elif story.plot == "month_end" and is_month_end(when) and day < days - 1:
            batch = rng.sample(blocks, round(MONTH_END_SHARE * story.written_blocks))
            writes.update(dict.fromkeys(batch, story.kind))
            what = f"month-end batch: {MONTH_END_SHARE:.0%} rewritten with ordinary data"
        elif story.plot == "low_and_slow" and day in slow_days(days):
            fresh = [b for b in blocks if b not in self.encrypted]
            slow = rng.sample(fresh, round(SLOW_SHARE * story.written_blocks))
            writes.update(dict.fromkeys(slow, ENCRYPTED))
            what = f"low-and-slow: {SLOW_SHARE:.0%} of the data encrypted"
        for index, kind in writes.items():
            if kind == ENCRYPTED:
                self.encrypted.add(index)
            else:
                self.encrypted.discard(index)
        return writes, what
