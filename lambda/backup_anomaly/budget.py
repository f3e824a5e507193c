"""One account-wide EBS direct API request budget, shared by every concurrent count and sampler.

Ransomware rewrites every volume of an account at once, so at the worst moment several
detector invocations count at the same time against one account quota per API (Service
Quotas, per account and Region: ``ListChangedBlocks requests per account`` 50/s, code
L-DB2FBAA1, not adjustable; ``GetSnapshotBlock requests per account`` 1,000/s, code
L-C125AE42, adjustable; see https://docs.aws.amazon.com/ebs/latest/userguide/ebs-resource-quotas.html
and the Service Quotas console). Each with its own budget, N counts ask for N times the
quota and a third of their requests are throttled.

Design: **leases in the detector's state table.** One item per API, keyed
``#budget/ebs/<Api>`` (the table's partition key is ``VolumeArn``; a volume ARN always
starts with ``arn:``, so these keys can never collide with a volume). Every holder (a count,
a sampler) writes its own top-level attribute ``L#<id>`` = ``"<expiry ms>:<cap>"`` and
renews it about every second with one ``UpdateItem`` that returns the whole item
(``ReturnValues=ALL_NEW``), so one call both proves it is alive and shows who else is.
Its rate is its water-filling share of the budget among the live leases (equal shares,
except that a holder capped below its share leaves the rest to the others). A newcomer
that finds others ramps up from a quarter of its share over one refresh period, the time
the others take to see it and slow down, so joins do not overshoot the quota. A holder
that ends removes its attribute; one that dies (a Lambda timeout, a crash) stops renewing
and its lease expires after ``lease_seconds``; whoever sees an expired lease long past its
expiry removes it with a conditional ``REMOVE`` (the condition is its old value, so a lease
renewed meanwhile is never removed).

Why this and not the alternatives: a DynamoDB token bucket would cost a conditional write
per *request* (50 to 1,000 writes a second, and a hot item); leases cost one write a second
per *holder* and leave pacing local, where the count's limiter already spaces requests and
backs off on throttling. Attributes at the top level rather than in one map avoid the
"document path invalid" race of creating the map; the item stays small (about 30 bytes a
holder, under 1 KB up to about 30 concurrent holders). With more than
``RENEWALS_PER_SECOND`` holders each renews (and its lease lasts) proportionally longer, so
the item sees about 16 writes a second however many detectors run. Only ``UpdateItem`` is
used, which the detector's role already has on the table.

Cost per count: one write to join, one a second while counting, one to leave; each is one
write unit while the item is under 1 KB. A 16 TiB count at 50/s runs 70 s: about 72
writes, roughly $0.00005 on demand, against $0.002 of ListChangedBlocks requests (measured:
a 4 TiB count, 17 s, 19 writes; 8 concurrent 512 GiB counts, 160 writes in all). A count
joins only when its first page shows more to list, so the one-page counts of ordinary
daily backups cost nothing; a sampler joins for its run (two writes and one round trip,
about 5-10 ms, plus one a second).

Failure modes: if the table cannot be reached when joining, the lease degrades to the
full budget (today's per-count behaviour; the count's limiter still slows down on
throttling) and says so in ``Lease.degraded``; a failed renewal keeps the last share and
retries at the next tick.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

LIST_CHANGED_BLOCKS = "ListChangedBlocks"
GET_SNAPSHOT_BLOCK = "GetSnapshotBlock"
# Service Quotas defaults per account and Region (see the module docstring).
ACCOUNT_QUOTAS = {LIST_CHANGED_BLOCKS: 50.0, GET_SNAPSHOT_BLOCK: 1000.0}
KEY_PREFIX = "#budget/ebs/"
LEASE_PREFIX = "L#"
DEFAULT_REFRESH_SECONDS = 1.0
DEFAULT_LEASE_SECONDS = 4.0
RAMP_START = 0.25  # a newcomer's first share, as a fraction of its fair share
# Beyond this many holders each renews less often, so the item takes about this many
# writes a second whatever the crowd (one partition key takes at most 1,000 WCU/s).
RENEWALS_PER_SECOND = 16

_log = logging.getLogger(__name__)


def budget_key(api: str) -> str:
    """The state table key of an API's budget item (never a volume ARN)."""
    return KEY_PREFIX + api


class Lease(Protocol):
    """What a limiter reads: the requests per second this holder may make now."""

    def rate(self) -> float:
        """Current allowed rate (requests per second), cheap enough to call per request."""
        ...


class Budget(Protocol):
    """A source of leases; ``lease()`` is held for the duration of one count or sampling."""

    def lease(self, cap: float | None = None) -> Any:
        """A context manager yielding a ``Lease``; ``cap`` bounds this holder's rate."""
        ...


@dataclass(frozen=True)
class _Fixed:
    value: float

    def rate(self) -> float:
        return self.value


class FixedBudget:
    """A budget of one holder's own, unshared: today's per-count limit.

    Args:
        rate: Requests per second for each holder.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.requests_per_second = rate

    @contextmanager
    def lease(self, cap: float | None = None) -> Iterator[_Fixed]:
        """A lease at the fixed rate (or ``cap`` if lower)."""
        yield _Fixed(min(self.requests_per_second, cap or math.inf))


def water_fill(total: float, caps: dict[str, float]) -> dict[str, float]:
    """Split ``total`` among holders: equal shares, a capped holder's unused part to the rest.

    Args:
        total: The rate to share.
        caps: Each holder's cap (``math.inf`` for none).

    Returns:
        Each holder's share; shares sum to at most ``total``.
    """
    shares: dict[str, float] = {}
    left, remaining = total, sorted(caps.items(), key=lambda kv: kv[1])
    while remaining:
        level = left / len(remaining)
        holder, cap = remaining[0]
        if cap >= level:
            shares.update({h: level for h, _ in remaining})
            break
        shares[holder] = cap
        left -= cap
        remaining.pop(0)
    return shares


def _parse(value: Any) -> tuple[float, float] | None:
    """``"<expiry ms>:<cap>"`` -> (expiry seconds, cap); None when malformed."""
    try:
        expiry, cap = str(value["S"]).split(":", 1)
        return int(expiry) / 1000.0, float(cap)
    except (KeyError, TypeError, ValueError):
        return None


class SharedBudget:
    """An account-wide budget for one EBS API, shared through leases in the state table.

    Args:
        dynamodb: A boto3 DynamoDB client (low level).
        table_name: The detector's state table (partition key ``VolumeArn``).
        api: ``LIST_CHANGED_BLOCKS`` or ``GET_SNAPSHOT_BLOCK`` (any name works: one item each).
        rate: The account-wide budget for this API, requests per second.
        refresh_seconds: How often a lease is renewed (and the share recomputed).
        lease_seconds: How long a lease lives without renewal.
        clock: Wall-clock seconds (shared by all holders, so it must be real time).
        auto_refresh: Renew in a background thread; False lets tests call ``refresh()``.
    """

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        api: str,
        rate: float,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        auto_refresh: bool = True,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if lease_seconds <= refresh_seconds:
            raise ValueError("lease_seconds must exceed refresh_seconds")
        self.dynamodb, self.table_name, self.api = dynamodb, table_name, api
        self.requests_per_second = rate
        self.refresh_seconds, self.lease_seconds = refresh_seconds, lease_seconds
        self.clock, self.auto_refresh = clock, auto_refresh
        self.key = {"VolumeArn": {"S": budget_key(api)}}

    @contextmanager
    def lease(self, cap: float | None = None) -> Iterator[SharedLease]:
        """Join the budget for the duration of the block, then leave it."""
        held = SharedLease(self, cap)
        held.join()
        try:
            yield held
        finally:
            held.leave()


class SharedLease:
    """One holder's lease on a ``SharedBudget`` (see the module docstring).

    Attributes:
        lease_id: This holder's id (its attribute is ``L#<id>``).
        share: The rate the last renewal granted (before the join ramp).
        live: Live leases seen at the last renewal, this one included.
        degraded: Why the table could not be used, or None.
        writes: UpdateItem calls made (for cost accounting).
    """

    def __init__(self, budget: SharedBudget, cap: float | None) -> None:
        self.budget = budget
        self.cap = min(cap or math.inf, budget.requests_per_second)
        self.lease_id = secrets.token_hex(6)
        self.attribute = LEASE_PREFIX + self.lease_id
        self.share = self.cap
        self.live = 1
        self.degraded: str | None = None
        self.writes = 0
        self._ramp_from: float | None = None  # monotonic time of a crowded join
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    # -- what the limiter reads -------------------------------------------------------

    def rate(self) -> float:
        """The share, ramped up after joining a crowd (see the module docstring)."""
        share = self.share
        start = self._ramp_from
        if start is None:
            return share
        done = (time.monotonic() - start) / self.budget.refresh_seconds
        if done >= 1.0:
            self._ramp_from = None
            return share
        return share * (RAMP_START + (1.0 - RAMP_START) * done)

    # -- lifecycle ----------------------------------------------------------------------

    def join(self) -> None:
        """Register; compute the first share; start renewing."""
        try:
            others = self._renew()
        except (ClientError, BotoCoreError) as exc:
            self.degraded = f"budget table unavailable: {exc}"
            _log.warning(
                "EBS request budget %s degraded to %.1f/s: %s",
                self.budget.api,
                self.share,
                exc,
            )
            return
        if others:
            self._ramp_from = time.monotonic()
        if self.budget.auto_refresh:
            self._thread = threading.Thread(
                target=self._run, name=f"ebs-budget-{self.budget.api}", daemon=True
            )
            self._thread.start()

    def leave(self) -> None:
        """Stop renewing and remove this lease (others get its share at their next renewal)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.budget.refresh_seconds + 5)
        if self.degraded is not None:
            return
        try:
            self.writes += 1
            self.budget.dynamodb.update_item(
                TableName=self.budget.table_name,
                Key=self.budget.key,
                UpdateExpression="REMOVE #me",
                ExpressionAttributeNames={"#me": self.attribute},
            )
        except (ClientError, BotoCoreError) as exc:  # it expires anyway
            _log.warning("EBS request budget %s: lease not removed: %s", self.budget.api, exc)

    def refresh(self) -> None:
        """Renew now (the background thread calls this; tests may call it directly)."""
        try:
            self._renew()
        except (ClientError, BotoCoreError) as exc:
            if not self._warned:
                self._warned = True
                _log.warning("EBS request budget %s: renewal failed: %s", self.budget.api, exc)

    def _spread(self) -> float:
        """How much longer than one period each renewal waits, in a large crowd."""
        return max(1.0, self.live / RENEWALS_PER_SECOND)

    def _run(self) -> None:
        interval = self.budget.refresh_seconds / 4  # soon after joining: others are joining too
        while not self._stop.wait(interval):
            before = self.live
            self.refresh()
            # While the crowd changes, look again sooner; once stable, every refresh period.
            settled = self.live == before
            interval = self.budget.refresh_seconds * (1.0 if settled else 0.25) * self._spread()

    def _renew(self) -> int:
        """One UpdateItem: renew this lease, read all, recompute the share. Returns others."""
        budget = self.budget
        now = budget.clock()
        expiry_ms = int((now + budget.lease_seconds * self._spread()) * 1000)
        cap = "inf" if math.isinf(self.cap) else f"{self.cap:g}"
        self.writes += 1
        response = budget.dynamodb.update_item(
            TableName=budget.table_name,
            Key=budget.key,
            UpdateExpression="SET #me = :lease",
            ExpressionAttributeNames={"#me": self.attribute},
            ExpressionAttributeValues={":lease": {"S": f"{expiry_ms}:{cap}"}},
            ReturnValues="ALL_NEW",
        )
        item = response.get("Attributes", {})
        live: dict[str, float] = {}
        dead: dict[str, Any] = {}
        for name, value in item.items():
            if not name.startswith(LEASE_PREFIX):
                continue
            parsed = _parse(value)
            if parsed is None or parsed[0] < now - budget.lease_seconds:
                dead[name] = value  # long expired (or unreadable): collect it
            elif parsed[0] >= now:
                live[name] = parsed[1]
        live[self.attribute] = self.cap
        self.live = len(live)
        self.share = water_fill(budget.requests_per_second, live)[self.attribute]
        if dead:
            self._collect(dead)
        return len(live) - 1

    def _collect(self, dead: dict[str, Any]) -> None:
        """Remove long-expired leases, only if still exactly as seen (never a renewed one)."""
        names = {f"#d{i}": name for i, name in enumerate(sorted(dead)[:20])}
        values = {f":d{i}": dead[name] for i, name in enumerate(sorted(dead)[:20])}
        try:
            self.writes += 1
            self.budget.dynamodb.update_item(
                TableName=self.budget.table_name,
                Key=self.budget.key,
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression=" AND ".join(f"#d{i} = :d{i}" for i in range(len(names))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as exc:
            # Renewed meanwhile (ConditionalCheckFailed) or a transient failure: whoever
            # sees them next tries again; a dead lease never counts as live either way.
            _log.debug("EBS request budget %s: expired leases kept: %s", self.budget.api, exc)
