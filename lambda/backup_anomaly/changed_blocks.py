"""Count the blocks that differ between two EBS snapshots, at the speed of the API quota.

``ListChangedBlocks`` returns at most 10,000 blocks a page, each with one or two 76-character
block tokens: a page is about 2.2 MB of JSON. A ransomware-sized change (16 TiB rewritten) is
3,356 pages. Two things keep the count close to the account quota (about 50 requests/s):

* **Concurrency under one limiter.** The block index space is cut into ranges listed
  concurrently (``StartingBlockIndex``, stopping at the range's end); idle workers split the
  range with the most estimated pages left. One shared limiter spaces every request (retries
  included) to the budget and slows down when the service throttles.
* **No token parsing.** Only the count matters, so a ``before-parse`` hook registered on the
  client (and active only on this module's worker threads) counts ``"BlockIndex"`` keys in the
  raw body, then hands botocore the same JSON with an empty ``ChangedBlocks`` array. Signing,
  endpoint resolution, error parsing and ``NextToken``/``VolumeSize`` parsing stay botocore's.

The count stops cleanly when ``remaining_seconds()`` falls under a margin and returns a
``CountCheckpoint`` (each pending range's next index and the partial count) from which a later
call finishes with exactly the total an uninterrupted count gives.

Two optional capabilities ride on the same path:

* **A uniform sample of the changed blocks** (``sample_size=K``): a reservoir (Li's
  Algorithm L) over the stream of counted blocks, in whatever order the concurrent ranges
  deliver them. It draws the ordinals it keeps in advance, about ``K (1 + ln(N / K))`` of
  them for N blocks, and reads only those entries out of the raw page (their index and two
  block tokens), so the other blocks are still never parsed. The reservoir is saved in the
  checkpoint (version 2; version 1 is still read), so a count resumed in another invocation
  keeps a sample that is uniform over the whole change.
* **An account-wide request budget** (``budget=``, see ``budget.py``): the limiter's ceiling
  is the lease's current share of the account quota, so concurrent counts of many volumes
  share it instead of each asking for all of it. A count joins the budget only once its
  first page shows there is more than that page to list: the one-page counts of ordinary
  daily backups never touch the budget table, nor dent the others' shares.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from backup_anomaly.budget import Budget, FixedBudget, Lease

BLOCK_SIZE = 524288
PAGE_SIZE = 10000
DEFAULT_SAFETY_MARGIN_SECONDS = 10.0
_THROTTLE_CODES = frozenset(
    {"RequestThrottledException", "ThrottlingException", "Throttling", "TooManyRequestsException"}
)
_MAX_ATTEMPTS = 10
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0
# A sample is saved in the checkpoint, inside the volume's DynamoDB item (400 KB at most):
# about 170 bytes a sampled block with real 76-character tokens.
MAX_SAMPLE_SIZE = 1024
CHECKPOINT_VERSION = 2


class UnrelatedSnapshots(Exception):
    """The snapshots are not of the same lineage (ValidationException UNRELATED_SNAPSHOTS)."""


class SnapshotNotFound(Exception):
    """A snapshot does not exist (ResourceNotFoundException, reason SNAPSHOT_NOT_FOUND)."""


@dataclass(frozen=True)
class BlockSample:
    """One sampled changed block: its index and the block tokens to read it with.

    Attributes:
        index: Block index (units of ``block_size``).
        first_token: Token of the block in the first snapshot; None when the first snapshot
            does not have the block (it reads as zeros).
        second_token: Token of the block in the second snapshot (None only if a service
            reported none).
    """

    index: int
    first_token: str | None
    second_token: str | None


@dataclass(frozen=True)
class SampleState:
    """A reservoir in progress (Algorithm L), as saved in a checkpoint.

    Attributes:
        size: The sample size asked for (the reservoir's capacity).
        seen: Changed blocks offered to the reservoir so far.
        weight: Algorithm L's W once the reservoir is full, else None.
        next_pick: Ordinal (0-based, over all blocks offered) of the next block to keep.
        items: The reservoir (``min(seen, size)`` samples, in slot order).
    """

    size: int
    seen: int
    weight: float | None
    next_pick: int
    items: tuple[BlockSample, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used inside a checkpoint."""
        return {
            "k": self.size,
            "seen": self.seen,
            "w": self.weight,
            "next": self.next_pick,
            "items": [[b.index, b.first_token, b.second_token] for b in self.items],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleState:
        """Parse ``to_dict``'s output (errors propagate as KeyError/TypeError/ValueError)."""
        items = tuple(
            BlockSample(int(i), None if f is None else str(f), None if t is None else str(t))
            for i, f, t in d["items"]
        )
        state = cls(
            int(d["k"]),
            int(d["seen"]),
            None if d["w"] is None else float(d["w"]),
            int(d["next"]),
            items,
        )
        if not 1 <= state.size <= MAX_SAMPLE_SIZE or len(items) != min(state.seen, state.size):
            raise ValueError("inconsistent sample state")
        return state


@dataclass(frozen=True)
class CountCheckpoint:
    """Resumable progress of a count.

    Attributes:
        first_snapshot_id: Older snapshot of the pair.
        second_snapshot_id: Newer snapshot of the pair.
        changed_blocks: Blocks counted so far (all below every pending range's next index).
        api_calls: ListChangedBlocks requests made so far, across invocations.
        ranges: Pending half-open ranges ``(next_index, end, page_token)``; ``end`` None
            means the volume's end. Every changed block inside them is still uncounted.
            ``page_token`` (or None) continues the listing where it stopped, which matters
            after empty pages; once expired, the listing restarts from ``next_index``.
        volume_size_gib: Volume size, once a response has told it.
        block_size: Block size in bytes.
        sample: The reservoir of a count asked for samples, or None.
    """

    first_snapshot_id: str
    second_snapshot_id: str
    changed_blocks: int
    api_calls: int
    ranges: tuple[tuple[int, int | None, str | None], ...]
    volume_size_gib: int | None = None
    block_size: int = BLOCK_SIZE
    sample: SampleState | None = None

    def to_json(self) -> str:
        """Serialize to a compact JSON string (version 2)."""
        d: dict[str, Any] = {
            "v": CHECKPOINT_VERSION,
            "first": self.first_snapshot_id,
            "second": self.second_snapshot_id,
            "count": self.changed_blocks,
            "calls": self.api_calls,
            "ranges": [list(r) for r in self.ranges],
            "volume_size_gib": self.volume_size_gib,
            "block_size": self.block_size,
        }
        if self.sample is not None:
            d["sample"] = self.sample.to_dict()
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> CountCheckpoint:
        """Parse a checkpoint written by ``to_json`` (version 2) or by earlier code (1).

        Raises:
            ValueError: The text is not a valid checkpoint.
        """
        try:
            d = json.loads(s)
            if d.get("v") not in (1, CHECKPOINT_VERSION):
                raise ValueError(f"unsupported checkpoint version {d.get('v')!r}")
            ranges = tuple(
                (int(a), None if b is None else int(b), None if t is None else str(t))
                for a, b, t in d["ranges"]
            )
            sample = d.get("sample") if d["v"] >= 2 else None
            return cls(
                first_snapshot_id=str(d["first"]),
                second_snapshot_id=str(d["second"]),
                changed_blocks=int(d["count"]),
                api_calls=int(d["calls"]),
                ranges=ranges,
                volume_size_gib=None if d["volume_size_gib"] is None else int(d["volume_size_gib"]),
                block_size=int(d["block_size"]),
                sample=None if sample is None else SampleState.from_dict(sample),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid count checkpoint: {exc}") from exc


@dataclass(frozen=True)
class CountResult:
    """Outcome of one ``count_changed_blocks`` call.

    Attributes:
        changed_blocks: Blocks counted (all of them when ``complete``).
        complete: Whether the count finished.
        checkpoint: Where to resume, when not complete.
        api_calls: ListChangedBlocks requests, retries and earlier invocations included.
        volume_size_gib: Volume size, once a response told it.
        block_size: Block size in bytes.
        samples: Up to ``sample_size`` changed blocks drawn uniformly from the
            ``sampled_from`` blocks counted, in random order: any prefix is itself a
            uniform sample. Empty when sampling is off.
        sampled_from: How many counted blocks the sample was drawn from. Equal to
            ``changed_blocks`` unless sampling started from a checkpoint without a
            sample (written by earlier code), which covers only the blocks counted since.
    """

    changed_blocks: int
    complete: bool
    checkpoint: CountCheckpoint | None
    api_calls: int
    volume_size_gib: int | None
    block_size: int
    samples: tuple[BlockSample, ...] = ()
    sampled_from: int = 0


def _map_error(err: ClientError) -> Exception:
    """Translate the two lineage errors into domain exceptions; others unchanged."""
    code = err.response.get("Error", {}).get("Code")
    reason = err.response.get("Reason")
    if code == "ValidationException" and reason == "UNRELATED_SNAPSHOTS":
        return UnrelatedSnapshots(str(err))
    # Only a missing snapshot resets the baseline; a missing KMS key or grant
    # (DEPENDENCY_RESOURCE_NOT_FOUND, GRANT_NOT_FOUND) would fail the new baseline too.
    if code == "ResourceNotFoundException" and reason in (None, "SNAPSHOT_NOT_FOUND"):
        return SnapshotNotFound(str(err))
    return err


def is_throttle(err: BaseException) -> bool:
    """Whether an error is the service's throttling (any of its spellings)."""
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in (
        _THROTTLE_CODES
    )


_is_throttle = is_throttle


def _is_invalid_token(err: Exception) -> bool:
    return (
        isinstance(err, ClientError)
        and err.response.get("Error", {}).get("Code") == "ValidationException"
        and err.response.get("Reason") == "INVALID_PAGE_TOKEN"
    )


def is_retryable(err: BaseException) -> bool:
    """Throttling, 5xx and connection failures are transient."""
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return is_throttle(err) or status >= 500
    return isinstance(err, BotoConnectionError | HTTPClientError)


_retryable = is_retryable


def backoff_seconds(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (0-based)."""
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))


def retry_attempts() -> int:
    """Attempts per request, the first included (shared with the sampler)."""
    return _MAX_ATTEMPTS


# --- the count-only hook ---------------------------------------------------------------

_HOOK_EVENT = "before-parse.ebs.ListChangedBlocks"
_HOOK_ID = "backup-anomaly-changed-blocks-count-only"
_SUMMARY_KEY = "_BackupAnomalyPageSummary"
_INDEX = re.compile(rb'"BlockIndex"\s*:\s*(\d+)')
_ARRAY = re.compile(rb'"ChangedBlocks"\s*:\s*\[')
# Set on this module's worker threads only: other callers of the same client, on any
# thread, keep getting fully parsed responses.
_counting = threading.local()


@dataclass(frozen=True)
class _Summary:
    """What the hook extracted from a page before botocore saw it."""

    blocks: int
    last_index: int | None
    body: bytes  # the raw page, kept only for the rare page that crosses a range end
    lo: int
    hi: int

    def count_below(self, end: int | None) -> int:
        """Blocks on this page with an index below ``end``."""
        if end is None or self.last_index is None or self.last_index < end:
            return self.blocks
        return sum(1 for m in _INDEX.finditer(self.body, self.lo, self.hi) if int(m[1]) < end)

    def entries(self, positions: Sequence[int]) -> list[BlockSample]:
        """The blocks at these ordinals of the page (ascending), read from the raw bytes.

        Each entry is found by counting ``"BlockIndex"`` keys up to an estimate (entries are
        nearly equal in size), from the previous entry found or from the array's end,
        whichever is nearer, and stepping a key or two from there; then only that one object
        is decoded. Nothing else is parsed, and a page is scanned at most about once.
        """
        body, lo, hi, n = self.body, self.lo, self.hi, self.blocks
        out = []
        anchor, anchor_ordinal = lo, 0
        for j in positions:
            at = _nth_key(body, lo, hi, n, j, anchor, anchor_ordinal)
            anchor, anchor_ordinal = at, j
            start = body.rfind(b"{", lo, at)
            end = body.find(b"}", at, hi)
            entry = json.loads(body[start : end + 1])
            first, second = entry.get("FirstBlockToken"), entry.get("SecondBlockToken")
            out.append(
                BlockSample(
                    int(entry["BlockIndex"]),
                    None if first is None else str(first),
                    None if second is None else str(second),
                )
            )
        return out


_KEY = b'"BlockIndex"'


def _nth_key(
    body: bytes, lo: int, hi: int, n: int, j: int, anchor: int | None = None, anchored: int = 0
) -> int:
    """Offset of the ``j``-th (0-based) of the ``n`` ``"BlockIndex"`` keys in ``body[lo:hi]``.

    ``anchored`` keys are known to start before offset ``anchor`` (by default none before
    ``lo``), and ``j >= anchored``. The key cannot overlap itself, so
    ``count(key, a, e + len(key) - 1)`` is the number of keys starting in ``[a, e)``.
    """
    width = len(_KEY)
    start = lo if anchor is None else anchor
    est = start + (hi - start) * (j - anchored) // max(1, n - anchored)
    if est - start <= hi - est:
        before = anchored + body.count(_KEY, start, min(hi, est + width - 1))
    else:
        before = n - body.count(_KEY, est, hi)
    # ``before`` keys start before est; the first one at or after est is number ``before``.
    if before <= j:
        at = body.find(_KEY, est, hi)
        for _ in range(j - before):
            at = body.find(_KEY, at + width, hi)
    else:
        at = body.rfind(_KEY, start, min(hi, est + width - 1))
        for _ in range(before - 1 - j):
            at = body.rfind(_KEY, start, at)
    if at < 0:
        raise ValueError("block entry not found in page")
    return at


def _summarize(body: bytes) -> tuple[bytes, _Summary] | None:
    """Count a page's blocks in its raw bytes and cut the array out of it.

    Block tokens match ``[A-Za-z0-9+/=]+``, so neither ``]`` nor ``"BlockIndex"`` can occur
    inside one: the first ``]`` after the array opens closes it. Returns None when the body
    does not look as expected, and botocore then parses it in full.
    """
    m = _ARRAY.search(body)
    if m is None:
        return None
    lo = m.end()
    hi = body.find(b"]", lo)
    if hi < 0:
        return None
    blocks = body.count(b'"BlockIndex"', lo, hi)
    last = None
    if blocks:
        last_match = _INDEX.match(body, body.rfind(b'"BlockIndex"', lo, hi))
        if last_match is None:
            return None
        last = int(last_match[1])
    return body[:lo] + body[hi:], _Summary(blocks, last, body, lo, hi)


def _count_only_hook(response_dict, customized_response_dict, **_kwargs) -> None:
    """``before-parse`` handler: replace a 200 page's block array by its count."""
    if not getattr(_counting, "active", False) or response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes):
        return
    result = _summarize(body)
    if result is not None:
        response_dict["body"], customized_response_dict[_SUMMARY_KEY] = result


def _install_hook(client) -> None:
    """Register the hook on this client only (idempotent thanks to the unique id)."""
    client.meta.events.register(_HOOK_EVENT, _count_only_hook, unique_id=_HOOK_ID)


def _page_summary(response: dict) -> _Summary:
    """The page's summary, from the hook or, if it did not run, from the parsed blocks."""
    summary = response.get(_SUMMARY_KEY)
    if summary is not None:
        return summary
    blocks = response.get("ChangedBlocks", [])
    body = json.dumps(blocks, default=str).encode()  # the same shape the hook reads
    last = blocks[-1]["BlockIndex"] if blocks else None
    return _Summary(len(blocks), last, body, 0, len(body))


# --- sampling ------------------------------------------------------------------------------


def _open_unit(rng: random.Random) -> float:
    """A uniform draw in (0, 1): logarithms below never see zero."""
    u = rng.random()
    while u == 0.0:
        u = rng.random()
    return u


class _Reservoir:
    """A uniform sample of ``size`` blocks of a stream of unknown length (Li's Algorithm L).

    The ordinal of the next block to keep is drawn in advance (a geometric jump), so the
    caller only extracts the blocks it is told to. Not thread-safe: the counter calls it
    under its lock, which also fixes the order of the stream.
    """

    def __init__(self, state: SampleState, rng: random.Random) -> None:
        self.size, self.seen = state.size, state.seen
        self.weight, self.next_pick = state.weight, state.next_pick
        self.items = list(state.items)
        self.rng = rng

    @staticmethod
    def empty(size: int) -> SampleState:
        """The state of a reservoir that has seen nothing."""
        return SampleState(size, 0, None, 0, ())

    def _advance(self) -> None:
        """Move ``next_pick`` past the block just kept."""
        if self.next_pick < self.size - 1:  # still filling: keep every block
            self.next_pick += 1
            return
        factor = math.exp(math.log(_open_unit(self.rng)) / self.size)
        self.weight = factor if self.weight is None else self.weight * factor
        gap = math.log(_open_unit(self.rng)) / math.log1p(-self.weight) if self.weight else 1e18
        self.next_pick += int(min(gap, 1e18)) + 1

    def offer(self, count: int) -> list[tuple[int, int]]:
        """Offer the next ``count`` blocks; returns (position among them, slot) to keep."""
        picks = []
        end = self.seen + count
        while self.next_pick < end:
            pick = self.next_pick
            slot = pick if pick < self.size else self.rng.randrange(self.size)
            picks.append((pick - self.seen, slot))
            self._advance()
        self.seen = end
        return picks

    def put(self, slot: int, sample: BlockSample) -> None:
        """Store a kept block (slots fill in order, then are replaced)."""
        if slot == len(self.items):
            self.items.append(sample)
        else:
            self.items[slot] = sample

    def state(self) -> SampleState:
        """The reservoir as a checkpoint holds it."""
        return SampleState(self.size, self.seen, self.weight, self.next_pick, tuple(self.items))

    def shuffled(self) -> tuple[BlockSample, ...]:
        """The sample in random order (slot order is not random while filling)."""
        items = list(self.items)
        self.rng.shuffle(items)
        return tuple(items)


# --- pacing ------------------------------------------------------------------------------


class RateLimiter:
    """Thread-safe pacing shared by all workers, slowing down when throttled.

    Requests are spaced ``1/rate`` apart (no bursts, so a shared account quota is never
    overrun by this caller alone). The rate is read from a lease when a request becomes due,
    not when a worker starts waiting: a slot booked in advance would lock in the rate of
    that moment (a lease's ramp, a throttle), however soon it rises again. A throttle cuts
    the rate by 30 %; each success wins back 0.5 requests/s, up to the ceiling. The cut is a
    fraction of the ceiling, so it keeps its meaning when a lease's share changes.

    Args:
        ceiling: Returns the current allowed rate (a ``Lease``'s ``rate``).
    """

    POLL_SECONDS = 0.05  # how soon a waiting worker sees a changed rate

    def __init__(self, ceiling: Callable[[], float]) -> None:
        self.ceiling = ceiling
        self.factor = 1.0  # share of the ceiling used, below 1 after throttling
        self.last = -math.inf  # when the last request was let through
        self.lock = threading.Lock()

    def rate(self) -> float:
        """The rate requests are spaced at now."""
        return max(1.0, self.ceiling() * self.factor)

    def wait(self) -> None:
        """Block until a request may go, ``1/rate`` after the previous one."""
        while True:
            with self.lock:
                spacing = 1.0 / self.rate()
                now = time.monotonic()
                due = self.last + spacing
                if now >= due:
                    # A waiter woken a little late keeps the schedule (the average rate
                    # stays exact); one arriving after a pause starts from now (no burst).
                    self.last = due if now - due < spacing else now
                    return
                delay = due - now
            time.sleep(min(delay, self.POLL_SECONDS))

    def throttled(self) -> None:
        """The service throttled a request: slow down by 30 %."""
        with self.lock:
            self.factor = max(1.0 / max(1.0, self.ceiling()), self.factor * 0.7)

    def succeeded(self) -> None:
        """A request went through: win back a little."""
        with self.lock:
            self.factor = min(1.0, self.factor + 0.5 / max(1.0, self.ceiling()))


_RateLimiter = RateLimiter


# --- ranges and scheduling ---------------------------------------------------------------


@dataclass
class _Range:
    """A half-open slice of the block index space being listed."""

    next: int
    end: int | None
    token: str | None = None
    stride: float = 0.0  # block indexes one full page was seen to cover (0: unknown)


class _Stop(Exception):
    """Raised inside a worker when the count must stop (deadline or another's error)."""


class _Counter:
    """The shared state of one count: ranges, totals, limiter and worker loop."""

    def __init__(
        self,
        client,
        first: str,
        second: str,
        cp: CountCheckpoint,
        budget: Budget | None,
        rate: float,
        exits: ExitStack,
        workers: int,
        remaining: Callable[[], float] | None,
        margin: float,
        page_size: int,
        sample: SampleState | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client, self.first, self.second = client, first, second
        self.count, self.calls = cp.changed_blocks, cp.api_calls
        self.volume_size, self.block_size = cp.volume_size_gib, cp.block_size
        self.pending = [_Range(a, b, t) for a, b, t in cp.ranges]
        self.active: list[_Range] = []
        self.workers = workers
        self.page_size = page_size
        self.remaining, self.margin = remaining, margin
        # A budget of its own until the count proves larger than a page (see _join_budget).
        self.rate, self.budget, self.exits = rate, budget, exits
        self.lease: Lease = exits.enter_context(FixedBudget(rate).lease())
        self.joined = budget is None
        self.join_lock = threading.Lock()
        self.limiter = RateLimiter(lambda: self.lease.rate())
        self.rng = rng or random.Random()
        self.reservoir = None if sample is None else _Reservoir(sample, self.rng)
        self.cond = threading.Condition()
        self.stopping = False
        self.error: BaseException | None = None
        self.empty_from: int | None = None  # no changed block at or after this index

    # -- scheduling (all under self.cond) -----------------------------------------------

    def _estimated_pages(self, r: _Range) -> float:
        return 0.0 if r.end is None else (r.end - r.next) / self._stride(r)

    def _stride(self, r: _Range) -> float:
        """Index span a page of ``r`` is expected to cover: at least a page of blocks."""
        return max(r.stride, self.page_size)

    def _split(self, r: _Range, parts: int) -> bool:
        """Cut the unlisted rest of ``r`` into ``parts``; r keeps the first, the rest queue."""
        end = r.end
        assert end is not None, "only a range with a known end is split"
        span = end - r.next
        unit = math.ceil(self._stride(r))
        # Whole pages per part: a cut inside a page makes both sides request that page.
        step = max(1, -(-(span // parts) // unit)) * unit
        cuts = list(range(r.next + step, end, step))[: parts - 1]
        bounds = [*cuts, end]
        r.end = bounds[0]
        for a, b in zip(bounds, bounds[1:], strict=False):
            self.pending.append(_Range(a, b, stride=r.stride))
        return bool(cuts)

    def _acquire(self) -> _Range | None:
        """Block until there is a range to list; None when the count is over."""
        with self.cond:
            while True:
                if self.stopping:
                    return None
                self.pending = [r for r in self.pending if not self._exhausted(r)]
                if self.pending:
                    r = self.pending.pop(0)
                    self.active.append(r)
                    return r
                if not self.active:
                    return None
                busiest = max(self.active, key=self._estimated_pages)
                if self._estimated_pages(busiest) >= 2 and self._split(busiest, 2):
                    continue
                self.cond.wait()

    def _release(self, r: _Range, keep: bool) -> None:
        with self.cond:
            self.active.remove(r)
            if keep:
                self.pending.append(r)
            self.cond.notify_all()

    def _exhausted(self, r: _Range) -> bool:
        return (r.end is not None and r.next >= r.end) or (
            self.empty_from is not None and r.next >= self.empty_from
        )

    def _record(self, r: _Range, response: dict, requested_from: int) -> bool:
        """Account for one page of range ``r``; True when the range is finished."""
        s = _page_summary(response)
        token = response.get("NextToken")
        with self.cond:
            self.limiter.succeeded()
            self.block_size = response.get("BlockSize") or self.block_size
            if response.get("VolumeSize") and self.volume_size is None:
                self.volume_size = response["VolumeSize"]
            if r.end is None and self.volume_size:
                r.end = math.ceil(self.volume_size * (1 << 30) / self.block_size)
                self._split_after_discovery(r, s, requested_from)
            counted = s.count_below(r.end)
            self.count += counted
            if self.reservoir is not None and counted:
                self._sample(s, counted)
            if s.last_index is not None:
                if s.blocks >= self.page_size:
                    r.stride = s.last_index + 1 - requested_from
                r.next = max(r.next, s.last_index + 1)
            r.token = token
            if not token:
                bound = r.next if s.last_index is None else s.last_index + 1
                self.empty_from = bound if self.empty_from is None else min(bound, self.empty_from)
            done = not token or self._exhausted(r)
            if not self.joined and (not done or self.pending or len(self.active) > 1):
                # More than this page to list: join the shared budget now, before the other
                # workers see the ranges just split off (one round trip, once per count).
                self._join_budget()
            self.cond.notify_all()
            return done

    def _sample(self, s: _Summary, counted: int) -> None:
        """Offer a page's counted blocks (a prefix of the page) to the reservoir."""
        assert self.reservoir is not None
        picks = self.reservoir.offer(counted)
        if picks:
            found = s.entries([pos for pos, _ in picks])
            for (_, slot), sample in zip(picks, found, strict=True):
                self.reservoir.put(slot, sample)

    def _split_after_discovery(self, r: _Range, s: _Summary, requested_from: int) -> None:
        """Once the volume size is known, spread the rest over the workers."""
        assert r.end is not None
        after = s.last_index + 1 if s.last_index is not None else r.next
        if s.blocks >= self.page_size:
            r.stride = after - requested_from
        left = (r.end - after) / self._stride(r)
        parts = max(1, min(self.workers, int(left)))
        if parts > 1 and after < r.end:
            # r keeps [r.next, first cut) and goes on with its token; the rest queue up.
            r_next = r.next
            r.next = after
            self._split(r, parts)
            r.next = r_next

    # -- requests -------------------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.stopping:
            raise _Stop
        if self.remaining is not None and self.remaining() < self.margin:
            with self.cond:
                self.stopping = True
                self.cond.notify_all()
            raise _Stop

    def _request(self, r: _Range) -> dict:
        """One page for ``r``, paced and retried with jittered, bounded backoff."""
        for attempt in range(_MAX_ATTEMPTS):
            params = {
                "FirstSnapshotId": self.first,
                "SecondSnapshotId": self.second,
                "MaxResults": self.page_size,
            }
            if r.token:
                params["NextToken"] = r.token
            else:
                params["StartingBlockIndex"] = r.next
            self._check_deadline()
            self.limiter.wait()
            if self.stopping:  # decided while this worker waited for its slot
                raise _Stop
            with self.cond:
                self.calls += 1
            try:
                return self.client.list_changed_blocks(**params)
            except (ClientError, BotoConnectionError, HTTPClientError) as err:
                if r.token and _is_invalid_token(err):
                    # A checkpointed token outlived its 60 minutes: restart from r.next,
                    # below which everything in the range is already counted.
                    r.token = None
                    continue
                if not is_retryable(err) or attempt == _MAX_ATTEMPTS - 1:
                    raise
                if is_throttle(err):
                    self.limiter.throttled()
                time.sleep(backoff_seconds(attempt))
        raise AssertionError("unreachable")

    def _list_range(self, r: _Range) -> None:
        """Page through ``r`` until it is done; on a stop, hand it back unfinished."""
        while True:
            if self._exhausted(r):
                self._release(r, keep=False)
                return
            try:
                requested_from = r.next
                response = self._request(r)
            except _Stop:
                self._release(r, keep=True)
                return
            if self._record(r, response, requested_from):
                self._release(r, keep=False)
                return

    def _join_budget(self) -> None:
        """Join the shared budget (once); until then the count has a budget of its own."""
        with self.join_lock:
            if not self.joined and self.budget is not None:
                self.lease = self.exits.enter_context(self.budget.lease(self.rate))
                self.joined = True

    def worker(self) -> None:
        """Thread body: list ranges until none is left or the count stops."""
        _counting.active = True
        try:
            while (r := self._acquire()) is not None:
                try:
                    self._list_range(r)
                except BaseException:
                    self._release(r, keep=True)
                    raise
        except BaseException as err:  # noqa: BLE001 - re-raised by run() in the caller
            with self.cond:
                if self.error is None:
                    self.error = err
                self.stopping = True
                self.cond.notify_all()
        finally:
            _counting.active = False

    def run(self) -> CountResult:
        """Run the workers and build the result (or raise the first error)."""
        if not self.joined and (len(self.pending) > 1 or any(r.token for r in self.pending)):
            self._join_budget()  # a resumed count: large, by definition
        threads = [
            threading.Thread(target=self.worker, name=f"changed-blocks-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.error is not None:
            err = self.error
            if isinstance(err, ClientError):
                mapped = _map_error(err)
                if mapped is not err:
                    raise mapped from err
            raise err
        left = sorted((r for r in self.pending if not self._exhausted(r)), key=lambda r: r.next)
        sample = None if self.reservoir is None else self.reservoir.state()
        checkpoint = None
        if left:
            checkpoint = CountCheckpoint(
                self.first,
                self.second,
                self.count,
                self.calls,
                tuple((r.next, r.end, r.token) for r in left),
                self.volume_size,
                self.block_size,
                sample,
            )
        return CountResult(
            self.count,
            not left,
            checkpoint,
            self.calls,
            self.volume_size,
            self.block_size,
            self.reservoir.shuffled() if self.reservoir is not None else (),
            sample.seen if sample is not None else 0,
        )


def _pool_size(client) -> int:
    return getattr(client.meta.config, "max_pool_connections", None) or 10


def count_changed_blocks(
    ebs_client,
    first_snapshot_id: str,
    second_snapshot_id: str,
    *,
    checkpoint: CountCheckpoint | None = None,
    remaining_seconds: Callable[[], float] | None = None,
    max_requests_per_second: float = 40.0,
    workers: int = 8,
    safety_margin_seconds: float = DEFAULT_SAFETY_MARGIN_SECONDS,
    page_size: int = PAGE_SIZE,
    sample_size: int = 0,
    budget: Budget | None = None,
    sample_seed: int | None = None,
) -> CountResult:
    """Count the blocks that differ between two snapshots of one volume lineage.

    Args:
        ebs_client: A boto3 ``ebs`` client. A count-only ``before-parse`` hook is registered
            on it; it acts only inside this function's worker threads.
        first_snapshot_id: The older snapshot.
        second_snapshot_id: The newer snapshot.
        checkpoint: Progress returned by an interrupted call, to resume from.
        remaining_seconds: Time left to the caller; when it drops under
            ``safety_margin_seconds`` no new request starts, in-flight ones finish, and the
            result carries a checkpoint.
        max_requests_per_second: Request budget for this count, shared by all workers (with
            ``budget``, the most this count takes of the shared budget).
        workers: Concurrent requests (capped by the client's connection pool).
        safety_margin_seconds: How much of ``remaining_seconds`` to keep in reserve.
        page_size: MaxResults per request (100..10000); smaller only makes tests cheap.
        sample_size: Keep a uniform sample of up to this many changed blocks (0: off, the
            count is exactly as fast as without). A resumed count continues the sample its
            checkpoint carries, with the size it started with.
        budget: An account-wide budget (``budget.SharedBudget`` for ListChangedBlocks)
            whose lease paces this count while it runs, from its second page on (a one-page
            count never joins it); None: a budget of its own.
        sample_seed: Seed for the sample's random draws (tests); None draws from the OS.

    Returns:
        The count; ``complete`` False with a ``checkpoint`` when it stopped early.
        ``api_calls`` includes retries and earlier invocations of a resumed count.
        ``samples`` is the sample so far (complete when the count is).

    Raises:
        UnrelatedSnapshots: The snapshots are not of the same lineage.
        SnapshotNotFound: A snapshot does not exist (or is gone).
        ValueError: The checkpoint belongs to another snapshot pair.
        botocore.exceptions.ClientError: Any other error, or retries exhausted.
    """
    if checkpoint is None:
        checkpoint = CountCheckpoint(
            first_snapshot_id, second_snapshot_id, 0, 0, ((0, None, None),)
        )
    elif (checkpoint.first_snapshot_id, checkpoint.second_snapshot_id) != (
        first_snapshot_id,
        second_snapshot_id,
    ):
        raise ValueError("checkpoint is for another snapshot pair")
    if max_requests_per_second <= 0 or workers < 1:
        raise ValueError("max_requests_per_second and workers must be positive")
    if not 100 <= page_size <= 10000:
        raise ValueError("page_size must be within 100..10000 (the API's MaxResults range)")
    if not 0 <= sample_size <= MAX_SAMPLE_SIZE:
        raise ValueError(f"sample_size must be within 0..{MAX_SAMPLE_SIZE}")
    sample = None
    if sample_size:
        sample = checkpoint.sample or _Reservoir.empty(sample_size)
    _install_hook(ebs_client)
    if remaining_seconds is not None and remaining_seconds() < safety_margin_seconds:
        budget = None  # nothing will be requested: do not join the shared budget for it
    with ExitStack() as exits:  # leaves the shared budget, if joined, however the count ends
        counter = _Counter(
            ebs_client,
            first_snapshot_id,
            second_snapshot_id,
            checkpoint,
            budget,
            max_requests_per_second,
            exits,
            max(1, min(workers, _pool_size(ebs_client))),
            remaining_seconds,
            safety_margin_seconds,
            page_size,
            sample,
            random.Random(sample_seed),
        )
        return counter.run()
