"""Count the blocks that differ between two EBS snapshots with ListChangedBlocks.

Simple sequential version (the interface is final; the fast one replaces the body).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

BLOCK_SIZE = 524288
PAGE_SIZE = 10000
DEFAULT_SAFETY_MARGIN_SECONDS = 20.0
_THROTTLE_CODES = frozenset(
    {"RequestThrottledException", "ThrottlingException", "Throttling", "TooManyRequestsException"}
)
_MAX_ATTEMPTS = 10
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0


class UnrelatedSnapshots(Exception):
    """The snapshots are not of the same lineage (ValidationException UNRELATED_SNAPSHOTS)."""


class SnapshotNotFound(Exception):
    """A snapshot does not exist (ResourceNotFoundException)."""


@dataclass(frozen=True)
class CountCheckpoint:
    """Resumable progress of a count.

    Attributes:
        first_snapshot_id: Older snapshot of the pair.
        second_snapshot_id: Newer snapshot of the pair.
        changed_blocks: Blocks counted so far (all below every pending range's next index).
        api_calls: ListChangedBlocks requests made so far, across invocations.
        ranges: Pending half-open ranges ``(next_index, end)``; ``end`` None means the
            volume's end. Every changed block inside them is still uncounted.
        volume_size_gib: Volume size, once a response has told it.
        block_size: Block size in bytes.
    """

    first_snapshot_id: str
    second_snapshot_id: str
    changed_blocks: int
    api_calls: int
    ranges: tuple[tuple[int, int | None], ...]
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
            ranges = tuple((int(a), None if b is None else int(b)) for a, b in d["ranges"])
            return cls(
                first_snapshot_id=str(d["first"]),
                second_snapshot_id=str(d["second"]),
                changed_blocks=int(d["count"]),
                api_calls=int(d["calls"]),
                ranges=ranges,
                volume_size_gib=None if d["volume_size_gib"] is None else int(d["volume_size_gib"]),
                block_size=int(d["block_size"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
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
    if code == "ResourceNotFoundException":
        return SnapshotNotFound(str(err))
    return err


def _retryable(err: Exception) -> bool:
    """Throttling, 5xx and connection failures are transient."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLE_CODES or status >= 500
    return isinstance(err, BotoConnectionError | HTTPClientError)


def _call(client, params: dict) -> dict:
    """One ListChangedBlocks call with jittered, bounded exponential backoff."""
    for attempt in range(_MAX_ATTEMPTS):
        try:
            return client.list_changed_blocks(**params)
        except (ClientError, BotoConnectionError, HTTPClientError) as err:
            if not _retryable(err) or attempt == _MAX_ATTEMPTS - 1:
                if isinstance(err, ClientError):
                    mapped = _map_error(err)
                    if mapped is not err:
                        raise mapped from err
                raise
            time.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))
    raise AssertionError("unreachable")


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
) -> CountResult:
    """Count changed blocks between two snapshots (sequential version)."""
    if checkpoint is None:
        checkpoint = CountCheckpoint(first_snapshot_id, second_snapshot_id, 0, 0, ((0, None),))
    count, calls = checkpoint.changed_blocks, checkpoint.api_calls
    size, block_size = checkpoint.volume_size_gib, checkpoint.block_size
    pending = list(checkpoint.ranges)
    interval = 1.0 / max_requests_per_second
    while pending:
        start, end = pending[0]
        token = None
        while True:
            if remaining_seconds is not None and remaining_seconds() < safety_margin_seconds:
                cp = CountCheckpoint(
                    first_snapshot_id,
                    second_snapshot_id,
                    count,
                    calls,
                    tuple(pending),
                    size,
                    block_size,
                )
                return CountResult(count, False, cp, calls, size, block_size)
            params = {
                "FirstSnapshotId": first_snapshot_id,
                "SecondSnapshotId": second_snapshot_id,
                "MaxResults": PAGE_SIZE,
            }
            if token:
                params["NextToken"] = token
            else:
                params["StartingBlockIndex"] = start
            t0 = time.monotonic()
            page = _call(ebs_client, params)
            calls += 1
            size = page.get("VolumeSize", size)
            block_size = page.get("BlockSize", block_size)
            blocks = page.get("ChangedBlocks", [])
            count += sum(1 for b in blocks if end is None or b["BlockIndex"] < end)
            token = page.get("NextToken")
            last = blocks[-1]["BlockIndex"] if blocks else None
            if last is not None:
                start = last + 1
                pending[0] = (start, end)
            if not token or (end is not None and last is not None and last + 1 >= end):
                break
            time.sleep(max(0.0, interval - (time.monotonic() - t0)))
        pending.pop(0)
    return CountResult(count, True, None, calls, size, block_size)
