"""Content evidence: read sampled changed blocks from both snapshots and judge their pages.

``count_changed_blocks(..., sample_size=K)`` hands back a uniform sample of the changed
blocks with their block tokens. ``sample_content`` reads each sampled block from the
previous and from the new snapshot with ``GetSnapshotBlock``, judges every 4 KiB page
compressible or not (``content.judge_block``) and returns only counts: how many pages, how
many were incompressible before, how many after, and how many turned incompressible in
place. Ransomware turns compressible pages into ciphertext; ordinary writes leave them
compressible; volumes of already-compressed data are incompressible before and after.

Block contents never leave this module's memory: each block is read into one buffer,
checked against its SHA-256 checksum, judged and dropped. Nothing of it is logged, stored,
returned or put into an exception message.

What it respects:

* **the account quota** of GetSnapshotBlock (1,000/s per account and Region by default,
  Service Quotas code L-C125AE42; see https://docs.aws.amazon.com/ebs/latest/userguide/ebs-resource-quotas.html),
  through a ``budget`` lease shared with every other sampler (``budget.SharedBudget``);
* **throttling and 5xx**, retried with full-jitter backoff like the count;
* **the deadline**: no block is started once ``remaining_seconds()`` is under the margin;
  the counts cover the blocks finished, and ``complete`` is False;
* **block tokens** are valid for 7 days (EBS direct API FAQ,
  https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-faq.html): a count resumed over
  days can hand over an expired one. A ValidationException on the token re-lists that one
  index (``ListChangedBlocks`` from ``StartingBlockIndex``, ``MaxResults=100``) for fresh
  tokens;
* **encrypted snapshots** read as plain data given the KMS permissions on their key
  (``kms:Decrypt``; see https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-permissions.html);
  without them GetSnapshotBlock fails with AccessDeniedException, which is raised as is.

A block the previous snapshot does not have (no FirstBlockToken) reads as zeros: all its
pages are compressible and no request is made for it.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
)

from backup_anomaly.budget import Budget, FixedBudget, Lease
from backup_anomaly.changed_blocks import (
    BLOCK_SIZE,
    DEFAULT_SAFETY_MARGIN_SECONDS,
    BlockSample,
    RateLimiter,
    backoff_seconds,
    is_retryable,
    is_throttle,
    retry_attempts,
)
from backup_anomaly.content import PAGE_SIZE, PageVerdict, judge_block, zero_verdict

DEFAULT_GET_BLOCK_REQUESTS_PER_SECOND = 800.0  # of the 1,000/s account quota
RELIST_REQUESTS_PER_SECOND = 5.0  # without a ListChangedBlocks budget: a sliver of 50/s
_RELIST_PAGES = 3


class SnapshotGone(Exception):
    """A snapshot being sampled no longer exists (ResourceNotFoundException SNAPSHOT_NOT_FOUND).

    Attributes:
        snapshot_id: The snapshot that is gone.
        partial: The counts made before it was found missing (``complete`` False).
    """

    def __init__(self, snapshot_id: str, partial: SampleResult | None = None) -> None:
        super().__init__(f"snapshot {snapshot_id} no longer exists")
        self.snapshot_id = snapshot_id
        self.partial = partial


class BlockChecksumMismatch(Exception):
    """A block's data did not match its SHA-256 checksum on every attempt."""


@dataclass(frozen=True)
class Content:
    """Page counts of the sampled blocks, previous snapshot (before) and new (after).

    Attributes:
        sampled_blocks: Blocks judged in both snapshots.
        pages: 4 KiB pages in those blocks (per snapshot: 128 a block).
        incompressible_before: Incompressible pages in the previous snapshot's blocks.
        incompressible_after: Incompressible pages in the new snapshot's blocks.
        newly_incompressible: Pages compressible before and incompressible after, at the
            same offset (the change itself, which the two totals above only bound).
        blocks_newly_incompressible: Sampled blocks with at least one such page
            (header-only encryption turns one page in most changed blocks).
    """

    sampled_blocks: int = 0
    pages: int = 0
    incompressible_before: int = 0
    incompressible_after: int = 0
    newly_incompressible: int = 0
    blocks_newly_incompressible: int = 0

    def to_event(self) -> dict[str, int]:
        """The ``content`` object of the event contract."""
        return {
            "sampledBlocks": self.sampled_blocks,
            "pages": self.pages,
            "incompressibleBefore": self.incompressible_before,
            "incompressibleAfter": self.incompressible_after,
        }


@dataclass(frozen=True)
class SampleResult:
    """Outcome of one ``sample_content`` call.

    Attributes:
        content: The counts.
        complete: Every sample was judged (False: stopped at the deadline).
        requested: Samples handed in.
        api_calls: Requests made, retries included (GetSnapshotBlock and re-lists).
        get_block_calls: GetSnapshotBlock requests, retries included.
        relisted: Samples whose tokens had to be fetched again.
        skipped: Samples no longer listed as changed when re-listed (not counted).
    """

    content: Content
    complete: bool
    requested: int
    api_calls: int
    get_block_calls: int
    relisted: int = 0
    skipped: int = 0


class _Stop(Exception):
    """Raised inside a worker when sampling must stop (deadline or another's error)."""


class _StaleToken(Exception):
    """The block token was rejected (expired or invalid)."""


def _reason(err: ClientError) -> tuple[str | None, str | None]:
    return err.response.get("Error", {}).get("Code"), err.response.get("Reason")


def _is_stale_token(err: ClientError) -> bool:
    code, reason = _reason(err)
    return code == "ValidationException" and reason in (None, "INVALID_BLOCK_TOKEN")


def _is_snapshot_gone(err: ClientError) -> bool:
    # Not GRANT_NOT_FOUND / DEPENDENCY_RESOURCE_NOT_FOUND: a missing KMS key or grant is
    # not a deleted snapshot (the same distinction the count makes).
    code, reason = _reason(err)
    return code == "ResourceNotFoundException" and reason in (None, "SNAPSHOT_NOT_FOUND")


class _Tally:
    """Running totals, updated under the sampler's lock."""

    def __init__(self) -> None:
        self.blocks = self.pages = self.before = self.after = 0
        self.turned = self.blocks_turned = 0

    def add(self, before: PageVerdict, after: PageVerdict) -> None:
        turned = (after.mask & ~before.mask).bit_count()
        self.blocks += 1
        self.pages += after.pages
        self.before += before.incompressible
        self.after += after.incompressible
        self.turned += turned
        self.blocks_turned += 1 if turned else 0

    def content(self) -> Content:
        return Content(
            self.blocks, self.pages, self.before, self.after, self.turned, self.blocks_turned
        )


class _Sampler:
    """The shared state of one sampling run: the queue, the totals, the limiters."""

    def __init__(
        self,
        client: Any,
        first: str,
        second: str,
        samples: Sequence[BlockSample],
        lease: Lease,
        list_budget: Budget | None,
        remaining: Callable[[], float] | None,
        margin: float,
        block_size: int,
        verify_checksums: bool,
    ) -> None:
        self.client, self.first, self.second = client, first, second
        self.samples = list(samples)
        self.limiter = RateLimiter(lease.rate)
        self.list_budget = list_budget
        self.list_limiter: RateLimiter | None = None
        self.exits = ExitStack()
        self.remaining, self.margin = remaining, margin
        self.pages_per_block = max(1, block_size // PAGE_SIZE)
        self.verify = verify_checksums
        self.lock = threading.Lock()
        self.position = 0
        self.tally = _Tally()
        self.calls = self.get_calls = self.relisted = self.skipped = 0
        self.stopping = False
        self.error: BaseException | None = None

    # -- pacing and retries -----------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.stopping:
            raise _Stop
        if self.remaining is not None and self.remaining() < self.margin:
            with self.lock:
                self.stopping = True
            raise _Stop

    def _relist_limiter(self) -> RateLimiter:
        with self.lock:
            if self.list_limiter is None:
                budget = self.list_budget or FixedBudget(RELIST_REQUESTS_PER_SECOND)
                lease = self.exits.enter_context(budget.lease(RELIST_REQUESTS_PER_SECOND))
                self.list_limiter = RateLimiter(lease.rate)
            return self.list_limiter

    def _call(self, limiter: RateLimiter, request: Callable[[], Any], get_block: bool) -> Any:
        """One paced request, retried on throttling, 5xx and broken connections."""
        attempts = retry_attempts()
        for attempt in range(attempts):
            self._check_deadline()
            limiter.wait()
            if self.stopping:
                raise _Stop
            with self.lock:
                self.calls += 1
                self.get_calls += 1 if get_block else 0
            try:
                result = request()
            except (ClientError, BotoCoreError, BlockChecksumMismatch) as err:
                transient = is_retryable(err) or isinstance(
                    err, IncompleteReadError | BlockChecksumMismatch
                )
                if not transient or attempt == attempts - 1:
                    raise
                if is_throttle(err):
                    limiter.throttled()
                time.sleep(backoff_seconds(attempt))
                continue
            limiter.succeeded()
            return result
        raise AssertionError("unreachable")

    # -- one block ------------------------------------------------------------------------

    def _read_and_judge(self, snapshot_id: str, index: int, token: str) -> PageVerdict:
        """GetSnapshotBlock, verify, judge, forget the bytes."""

        def request() -> PageVerdict:
            response = self.client.get_snapshot_block(
                SnapshotId=snapshot_id, BlockIndex=index, BlockToken=token
            )
            stream = response["BlockData"]
            try:
                data = stream.read()
            finally:
                stream.close()
            try:
                self._verify(response, data, snapshot_id, index)
                return judge_block(data)
            finally:
                del data

        try:
            verdict: PageVerdict = self._call(self.limiter, request, get_block=True)
            return verdict
        except ClientError as err:
            if _is_stale_token(err):
                raise _StaleToken from None
            if _is_snapshot_gone(err):
                raise SnapshotGone(snapshot_id) from err
            raise

    def _verify(self, response: dict, data: bytes, snapshot_id: str, index: int) -> None:
        """Check the length and, when given, the SHA-256 checksum (cheap next to judging)."""
        where = f"block {index} of {snapshot_id}"
        length = response.get("DataLength")
        if length is not None and int(length) != len(data):
            raise BlockChecksumMismatch(f"{where}: {len(data)} bytes read, {length} announced")
        checksum = response.get("Checksum")
        if not self.verify or not checksum or response.get("ChecksumAlgorithm") != "SHA256":
            return
        if base64.b64encode(hashlib.sha256(data).digest()).decode() != checksum:
            raise BlockChecksumMismatch(f"{where}: SHA-256 checksum mismatch")

    def _relist(self, index: int) -> BlockSample | None:
        """Fresh tokens for one index; None when it is no longer listed as changed."""
        limiter = self._relist_limiter()
        token: str | None = None
        for _ in range(_RELIST_PAGES):
            params: dict[str, Any] = {
                "FirstSnapshotId": self.first,
                "SecondSnapshotId": self.second,
                "MaxResults": 100,
            }
            if token:
                params["NextToken"] = token
            else:
                params["StartingBlockIndex"] = index

            def request(p: dict[str, Any] = params) -> Any:
                return self.client.list_changed_blocks(**p)

            try:
                page = self._call(limiter, request, False)
            except ClientError as err:
                if _is_snapshot_gone(err):
                    raise SnapshotGone(self.first) from err
                raise
            for block in page.get("ChangedBlocks", []):
                if block["BlockIndex"] == index:
                    return BlockSample(
                        index, block.get("FirstBlockToken"), block.get("SecondBlockToken")
                    )
                if block["BlockIndex"] > index:
                    return None
            token = page.get("NextToken")
            if not token:
                return None
        return None

    def _judge_pair(self, sample: BlockSample) -> tuple[PageVerdict, PageVerdict] | None:
        """Both verdicts of one sampled block (None: it is no longer a changed block)."""
        relisted = False
        while True:
            try:
                before = (
                    zero_verdict(self.pages_per_block)
                    if sample.first_token is None
                    else self._read_and_judge(self.first, sample.index, sample.first_token)
                )
                after = (
                    zero_verdict(self.pages_per_block)
                    if sample.second_token is None
                    else self._read_and_judge(self.second, sample.index, sample.second_token)
                )
                return before, after
            except _StaleToken:
                if relisted:
                    raise ValueError(
                        f"block {sample.index}: fresh block tokens rejected as well"
                    ) from None
                fresh = self._relist(sample.index)
                relisted = True
                with self.lock:
                    self.relisted += 1
                if fresh is None:
                    return None
                sample = fresh

    # -- workers --------------------------------------------------------------------------

    def _next(self) -> BlockSample | None:
        with self.lock:
            if self.stopping or self.position >= len(self.samples):
                return None
            sample = self.samples[self.position]
            self.position += 1
            return sample

    def worker(self) -> None:
        """Thread body: judge samples in order until none is left or sampling stops."""
        try:
            while (sample := self._next()) is not None:
                try:
                    pair = self._judge_pair(sample)
                except _Stop:
                    return
                with self.lock:
                    if pair is None:
                        self.skipped += 1
                    else:
                        self.tally.add(*pair)
        except BaseException as err:  # noqa: BLE001 - re-raised by run() in the caller
            with self.lock:
                if self.error is None:
                    self.error = err
                self.stopping = True

    def result(self) -> SampleResult:
        done = self.tally.blocks + self.skipped
        return SampleResult(
            self.tally.content(),
            done == len(self.samples),
            len(self.samples),
            self.calls,
            self.get_calls,
            self.relisted,
            self.skipped,
        )

    def run(self, workers: int) -> SampleResult:
        threads = [
            threading.Thread(target=self.worker, name=f"block-sampler-{i}", daemon=True)
            for i in range(workers)
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            self.exits.close()
        if self.error is not None:
            if isinstance(self.error, SnapshotGone):
                raise SnapshotGone(self.error.snapshot_id, self.result()) from self.error
            raise self.error
        return self.result()


def sample_content(
    ebs_client: Any,
    first_snapshot_id: str,
    second_snapshot_id: str,
    samples: Sequence[BlockSample],
    *,
    remaining_seconds: Callable[[], float] | None = None,
    budget: Budget | None = None,
    list_budget: Budget | None = None,
    max_requests_per_second: float = DEFAULT_GET_BLOCK_REQUESTS_PER_SECOND,
    workers: int = 8,
    safety_margin_seconds: float = DEFAULT_SAFETY_MARGIN_SECONDS,
    block_size: int = BLOCK_SIZE,
    verify_checksums: bool = True,
) -> SampleResult:
    """Judge sampled changed blocks in both snapshots and count their pages.

    Args:
        ebs_client: A boto3 ``ebs`` client (the counting client is fine).
        first_snapshot_id: The previous snapshot (the count's first).
        second_snapshot_id: The new snapshot.
        samples: ``CountResult.samples`` (or a prefix of it: any prefix is uniform).
        remaining_seconds: Time left to the caller; under ``safety_margin_seconds`` no new
            block is started and the result is incomplete.
        budget: The account's GetSnapshotBlock budget (``SharedBudget``); None: a budget of
            ``max_requests_per_second`` of its own.
        list_budget: The account's ListChangedBlocks budget, for re-listing expired tokens
            (None: a small fixed rate).
        max_requests_per_second: The most this sampler takes (of ``budget``, if given).
        workers: Blocks read concurrently (capped by the client's connection pool).
        safety_margin_seconds: How much of ``remaining_seconds`` to keep in reserve.
        block_size: The snapshot's block size (``CountResult.block_size``).
        verify_checksums: Check each block's SHA-256 (about 1 ms a block).

    Returns:
        The page counts; ``complete`` False when the deadline stopped it.

    Raises:
        SnapshotGone: A snapshot disappeared; ``partial`` holds the counts so far.
        BlockChecksumMismatch: A block never arrived intact.
        botocore.exceptions.ClientError: Anything else (AccessDenied for a KMS key, ...),
            or retries exhausted.
    """
    if max_requests_per_second <= 0 or workers < 1:
        raise ValueError("max_requests_per_second and workers must be positive")
    if not samples or (
        remaining_seconds is not None and remaining_seconds() < safety_margin_seconds
    ):
        return SampleResult(Content(), not samples, len(samples), 0, 0)
    pool = getattr(ebs_client.meta.config, "max_pool_connections", None) or 10
    with (budget or FixedBudget(max_requests_per_second)).lease(max_requests_per_second) as lease:
        sampler = _Sampler(
            ebs_client,
            first_snapshot_id,
            second_snapshot_id,
            samples,
            lease,
            list_budget,
            remaining_seconds,
            safety_margin_seconds,
            block_size,
            verify_checksums,
        )
        return sampler.run(max(1, min(workers, pool, len(samples) or 1)))
