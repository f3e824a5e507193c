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
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

BLOCK_SIZE = 524288
PAGE_SIZE = 10000
DEFAULT_SAFETY_MARGIN_SECONDS = 10.0
_THROTTLE_CODES = frozenset(
    {"RequestThrottledException", "ThrottlingException", "Throttling", "TooManyRequestsException"}
)
_MAX_ATTEMPTS = 10
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0


class UnrelatedSnapshots(Exception):
    """The snapshots are not of the same lineage (ValidationException UNRELATED_SNAPSHOTS)."""


class SnapshotNotFound(Exception):
    """A snapshot does not exist (ResourceNotFoundException, reason SNAPSHOT_NOT_FOUND)."""


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
    """

    first_snapshot_id: str
    second_snapshot_id: str
    changed_blocks: int
    api_calls: int
    ranges: tuple[tuple[int, int | None, str | None], ...]
    volume_size_gib: int | None = None
    block_size: int = BLOCK_SIZE

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return json.dumps(
            {
                "v": 1,
                "first": self.first_snapshot_id,
                "second": self.second_snapshot_id,
                "count": self.changed_blocks,
                "calls": self.api_calls,
                "ranges": [list(r) for r in self.ranges],
                "volume_size_gib": self.volume_size_gib,
                "block_size": self.block_size,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, s: str) -> CountCheckpoint:
        """Parse a checkpoint written by ``to_json``.

        Raises:
            ValueError: The text is not a valid checkpoint.
        """
        try:
            d = json.loads(s)
            if d.get("v") != 1:
                raise ValueError(f"unsupported checkpoint version {d.get('v')!r}")
            ranges = tuple(
                (int(a), None if b is None else int(b), None if t is None else str(t))
                for a, b, t in d["ranges"]
            )
            return cls(
                first_snapshot_id=str(d["first"]),
                second_snapshot_id=str(d["second"]),
                changed_blocks=int(d["count"]),
                api_calls=int(d["calls"]),
                ranges=ranges,
                volume_size_gib=None if d["volume_size_gib"] is None else int(d["volume_size_gib"]),
                block_size=int(d["block_size"]),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid count checkpoint: {exc}") from exc


@dataclass(frozen=True)
class CountResult:
    """Outcome of one ``count_changed_blocks`` call."""

    changed_blocks: int
    complete: bool
    checkpoint: CountCheckpoint | None
    api_calls: int
    volume_size_gib: int | None
    block_size: int


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


def _is_throttle(err: Exception) -> bool:
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in (
        _THROTTLE_CODES
    )


def _is_invalid_token(err: Exception) -> bool:
    return (
        isinstance(err, ClientError)
        and err.response.get("Error", {}).get("Code") == "ValidationException"
        and err.response.get("Reason") == "INVALID_PAGE_TOKEN"
    )


def _retryable(err: Exception) -> bool:
    """Throttling, 5xx and connection failures are transient."""
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _is_throttle(err) or status >= 500
    return isinstance(err, BotoConnectionError | HTTPClientError)


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
    indexes = [b["BlockIndex"] for b in response.get("ChangedBlocks", [])]
    body = ",".join(f'"BlockIndex":{i}' for i in indexes).encode()
    return _Summary(len(indexes), indexes[-1] if indexes else None, body, 0, len(body))


# --- pacing ------------------------------------------------------------------------------


class _RateLimiter:
    """Thread-safe pacing shared by all workers, slowing down when throttled.

    Requests are spaced ``1/rate`` apart (no bursts, so a shared account quota is never
    overrun by this caller alone). A throttle cuts the rate by 30 %; each success wins
    back a little, up to the configured ceiling.
    """

    def __init__(self, rate: float) -> None:
        self.ceiling = rate
        self.rate = rate
        self.next_slot = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)

    def throttled(self) -> None:
        with self.lock:
            self.rate = max(1.0, self.rate * 0.7)

    def succeeded(self) -> None:
        with self.lock:
            self.rate = min(self.ceiling, self.rate + 0.5)


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
        rate: float,
        workers: int,
        remaining: Callable[[], float] | None,
        margin: float,
        page_size: int,
    ) -> None:
        self.client, self.first, self.second = client, first, second
        self.count, self.calls = cp.changed_blocks, cp.api_calls
        self.volume_size, self.block_size = cp.volume_size_gib, cp.block_size
        self.pending = [_Range(a, b, t) for a, b, t in cp.ranges]
        self.active: list[_Range] = []
        self.workers = workers
        self.page_size = page_size
        self.remaining, self.margin = remaining, margin
        self.limiter = _RateLimiter(rate)
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
        span = r.end - r.next
        step = max(span // parts, math.ceil(self._stride(r)))
        cuts = list(range(r.next + step, r.end, step))[: parts - 1]
        bounds = [*cuts, r.end]
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
            self.count += s.count_below(r.end)
            if s.last_index is not None:
                if s.blocks >= self.page_size:
                    r.stride = s.last_index + 1 - requested_from
                r.next = max(r.next, s.last_index + 1)
            r.token = token
            if not token:
                bound = r.next if s.last_index is None else s.last_index + 1
                self.empty_from = bound if self.empty_from is None else min(bound, self.empty_from)
            self.cond.notify_all()
            return not token or self._exhausted(r)

    def _split_after_discovery(self, r: _Range, s: _Summary, requested_from: int) -> None:
        """Once the volume size is known, spread the rest over the workers."""
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
                if not _retryable(err) or attempt == _MAX_ATTEMPTS - 1:
                    raise
                if _is_throttle(err):
                    self.limiter.throttled()
                time.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))
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
            )
        return CountResult(
            self.count, not left, checkpoint, self.calls, self.volume_size, self.block_size
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
        max_requests_per_second: Request budget for this count, shared by all workers.
        workers: Concurrent requests (capped by the client's connection pool).
        safety_margin_seconds: How much of ``remaining_seconds`` to keep in reserve.
        page_size: MaxResults per request (100..10000); smaller only makes tests cheap.

    Returns:
        The count; ``complete`` False with a ``checkpoint`` when it stopped early.
        ``api_calls`` includes retries and earlier invocations of a resumed count.

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
    _install_hook(ebs_client)
    counter = _Counter(
        ebs_client,
        first_snapshot_id,
        second_snapshot_id,
        checkpoint,
        max_requests_per_second,
        max(1, min(workers, _pool_size(ebs_client))),
        remaining_seconds,
        safety_margin_seconds,
        page_size,
    )
    return counter.run()
