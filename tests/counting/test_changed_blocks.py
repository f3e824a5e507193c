"""count_changed_blocks against the fake: exact, resumable, retrying, and cheap to parse."""

import itertools
import threading
import time

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_anomaly import changed_blocks as cb
from backup_anomaly.changed_blocks import (
    CountCheckpoint,
    SnapshotNotFound,
    UnrelatedSnapshots,
    count_changed_blocks,
)
from testing.fakes.ebs_direct import BLOCKS_PER_GIB, Layout
from tests.counting._support import make_client, new_pair_ids


def sequential_count(client, first, second, page_size=10000):
    """The plain boto3 loop the fast count must always agree with."""
    total, token = 0, None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_changed_blocks(
            FirstSnapshotId=first, SecondSnapshotId=second, MaxResults=page_size, **extra
        )
        total += len(page.get("ChangedBlocks", []))
        token = page.get("NextToken")
        if not token:
            return total


def deadline_after(checks: int):
    """A ``remaining_seconds`` that allows ``checks`` requests to start, then says stop."""
    counter = itertools.count()
    lock = threading.Lock()

    def remaining() -> float:
        with lock:
            return 1e6 if next(counter) < checks else 0.0

    return remaining


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    """Keep retry sleeps tiny; the backoff shape is what matters here, not its length."""
    monkeypatch.setattr(cb, "_BACKOFF_BASE", 0.001)
    monkeypatch.setattr(cb, "_BACKOFF_CAP", 0.01)


# --- the property ------------------------------------------------------------------------


@st.composite
def layouts(draw):
    """Random sorted runs of changed blocks, some new in the second snapshot."""
    runs = draw(
        st.lists(
            st.tuples(
                st.integers(0, 40_000),  # gap before the run
                st.integers(1, 3_000),  # run length
                st.booleans(),  # new only in the second snapshot
            ),
            max_size=12,
        )
    )
    changed, new_only, pos = [], [], 0
    for gap, length, new in runs:
        start = pos + gap
        changed.append((start, start + length))
        if new:
            new_only.append((start, start + length))
        pos = start + length + 1  # keep runs apart so new_only ranges stay exact
    size = max(1, -(-pos // BLOCKS_PER_GIB)) + draw(st.integers(0, 40))
    return Layout(size, changed, new_only)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    layout=layouts(),
    page_size=st.sampled_from([100, 137, 1000, 10000]),
    server_cap=st.sampled_from([None, None, 100, 333]),
    scan_window=st.sampled_from([None, None, 5_000, 30_000]),
    workers=st.integers(1, 8),
    interruptions=st.lists(st.integers(1, 12), max_size=4),
    fault_rate=st.sampled_from([0.0, 0.0, 0.1]),
)
def test_fast_count_equals_sequential_loop(
    fake, client, layout, page_size, server_cap, scan_window, workers, interruptions, fault_rate
):
    first, second = new_pair_ids()
    fake.add_layout(first, second, layout)
    fake.max_page_blocks, fake.scan_window = server_cap, scan_window
    try:
        expected = sequential_count(client, first, second)
        assert expected == layout.count()
        fake.fault_rate = fault_rate  # 5xx on the fast count only: it retries, the loop can't

        checkpoint = None
        for checks in [*interruptions, None]:
            remaining = None if checks is None else deadline_after(checks)
            result = count_changed_blocks(
                client,
                first,
                second,
                checkpoint=checkpoint,
                remaining_seconds=remaining,
                max_requests_per_second=10_000,
                workers=workers,
                page_size=page_size,
            )
            if result.complete:
                assert result.checkpoint is None
                break
            checkpoint = CountCheckpoint.from_json(result.checkpoint.to_json())
            assert checkpoint == result.checkpoint
            assert result.changed_blocks == checkpoint.changed_blocks <= expected
        assert result.complete
        assert result.changed_blocks == expected
        assert result.volume_size_gib == layout.volume_size_gib
        assert result.block_size == 524288
    finally:
        fake.max_page_blocks = fake.scan_window = None
        fake.fault_rate = 0.0


# --- behaviour -----------------------------------------------------------------------------


def test_large_change_is_split_across_workers(fake, client):
    first, second = new_pair_ids()
    layout = fake.add_pair(first, second, 64, [(0, 64 * BLOCKS_PER_GIB)])
    result = count_changed_blocks(
        client, first, second, max_requests_per_second=10_000, workers=4, page_size=5000
    )
    assert result.changed_blocks == layout.count() == 131_072
    assert result.complete and result.volume_size_gib == 64
    pages = -(-layout.count() // 5000)
    assert pages <= result.api_calls <= pages + 8  # a few boundary pages, no more
    assert fake.stats()["requests"] == result.api_calls


def test_block_tokens_are_never_parsed_by_botocore(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 16, [(0, 25_000)])
    parsed_sizes = []
    client.meta.events.register(
        "after-call.ebs.ListChangedBlocks",
        lambda parsed, **_: parsed_sizes.append(len(parsed.get("ChangedBlocks", []))),
    )
    try:
        result = count_changed_blocks(client, first, second, max_requests_per_second=10_000)
        assert result.changed_blocks == 25_000
        assert parsed_sizes and set(parsed_sizes) == {0}
        # The same client, outside the count, still parses pages in full.
        page = client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
        assert len(page["ChangedBlocks"]) == 10_000
        assert "FirstBlockToken" in page["ChangedBlocks"][0]
        assert not any(k.startswith("_") for k in page)
    finally:
        client.meta.events.unregister("after-call.ebs.ListChangedBlocks")


def test_falls_back_to_parsed_blocks_when_the_body_is_unexpected(fake, client, monkeypatch):
    monkeypatch.setattr(cb, "_summarize", lambda body: None)
    first, second = new_pair_ids()
    fake.add_pair(first, second, 32, [(100, 30_100), (60_000, 60_010)])
    result = count_changed_blocks(client, first, second, max_requests_per_second=10_000)
    assert result.changed_blocks == 30_010


def test_throttling_is_retried_and_slows_down(fake):
    client = make_client(fake.url)  # botocore retries off: ours must do the work
    first, second = new_pair_ids()
    fake.add_pair(first, second, 8, [(0, 8 * BLOCKS_PER_GIB)])
    fake.set_quota(20, burst=1)
    result = count_changed_blocks(
        client, first, second, max_requests_per_second=1000, workers=4, page_size=1000
    )
    assert result.changed_blocks == 16_384
    stats = fake.stats()
    assert stats["throttled"] > 0
    assert result.api_calls == stats["requests"] == stats["pages"] + stats["throttled"]


def test_5xx_is_retried(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 4, [(0, 5000)])
    fake.inject_faults(3, 500)
    fake.inject_faults(2, 503)
    result = count_changed_blocks(client, first, second, page_size=1000, workers=2)
    assert result.changed_blocks == 5000
    assert fake.stats()["faults"] == 5


def test_retries_are_bounded(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 4, [(0, 5000)])
    fake.inject_faults(1000, 500)
    try:
        with pytest.raises(ClientError) as info:
            count_changed_blocks(client, first, second, workers=1)
        assert info.value.response["Error"]["Code"] == "InternalServerException"
        assert fake.stats()["requests"] == cb._MAX_ATTEMPTS
    finally:
        fake.clear_faults()


def test_unrelated_snapshots_map_to_domain_error(fake, client):
    first, _ = new_pair_ids()
    other, second = new_pair_ids()
    fake.add_pair(first, f"{first}0", 1, [(0, 1)])
    fake.add_pair(other, second, 1, [(0, 1)])
    with pytest.raises(UnrelatedSnapshots) as info:
        count_changed_blocks(client, first, second)
    assert isinstance(info.value.__cause__, ClientError)


def test_missing_snapshot_maps_to_domain_error(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 1)])
    fake.delete_snapshot(first)
    with pytest.raises(SnapshotNotFound):
        count_changed_blocks(client, first, second)


@pytest.mark.parametrize("reason", ["DEPENDENCY_RESOURCE_NOT_FOUND", "GRANT_NOT_FOUND"])
def test_not_found_other_than_a_snapshot_is_not_a_missing_snapshot(fake, client, reason):
    # A missing KMS key or grant is not a deleted snapshot: resetting the baseline on it
    # would reset it on every backup and never measure again. It raises (SQS, then DLQ).
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 1)])
    fake.inject_error(404, "ResourceNotFoundException", reason)
    with pytest.raises(ClientError) as info:
        count_changed_blocks(client, first, second, workers=1)
    assert not isinstance(info.value, SnapshotNotFound)
    assert info.value.response["Reason"] == reason


def test_other_client_errors_propagate_unchanged(fake, client):
    with pytest.raises(ClientError) as info:
        count_changed_blocks(client, "snap-0a", "snap-nothex")
    assert info.value.response["Reason"] == "INVALID_SNAPSHOT_ID"


def test_empty_pages_with_a_token_are_not_the_end(fake, client):
    first, second = new_pair_ids()
    layout = fake.add_pair(first, second, 4, [(10, 20), (8000, 8100)])
    fake.scan_window = 700  # many empty pages, each with a NextToken, one trailing
    for workers in (1, 3):
        result = count_changed_blocks(
            client, first, second, workers=workers, page_size=100, max_requests_per_second=10_000
        )
        assert result.changed_blocks == layout.count() == 110


def test_absent_next_token_ends_the_count(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 150)])
    result = count_changed_blocks(client, first, second, workers=1, page_size=100)
    assert result.changed_blocks == 150
    assert result.api_calls == 2  # page of 100, last page of 50 without a NextToken


def test_no_change_is_one_request(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 16384, [])
    result = count_changed_blocks(client, first, second)
    assert (result.changed_blocks, result.api_calls, result.complete) == (0, 1, True)
    assert result.volume_size_gib == 16384


def test_deadline_before_start_returns_untouched_checkpoint(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    result = count_changed_blocks(client, first, second, remaining_seconds=lambda: 1.0)
    assert not result.complete and result.api_calls == 0
    assert result.checkpoint.ranges == ((0, None, None),)
    resumed = count_changed_blocks(client, first, second, checkpoint=result.checkpoint)
    assert resumed.changed_blocks == 10 and resumed.complete


def test_expired_checkpoint_token_restarts_from_next_index(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 500)])
    stale = CountCheckpoint(first, second, 100, 1, ((100, 2048, "AAAAexpired"),), 1, 524288)
    result = count_changed_blocks(client, first, second, checkpoint=stale, page_size=100)
    assert result.changed_blocks == 500


def test_checkpoint_is_bound_to_its_pair_and_validated(fake, client):
    first, second = new_pair_ids()
    cp = CountCheckpoint(first, second, 0, 0, ((0, None, None),))
    with pytest.raises(ValueError, match="another snapshot pair"):
        count_changed_blocks(client, first, "snap-0ff", checkpoint=cp)
    with pytest.raises(ValueError, match="invalid count checkpoint"):
        CountCheckpoint.from_json('{"v": 1}')
    with pytest.raises(ValueError):
        CountCheckpoint.from_json("not json")


def test_request_rate_stays_under_budget(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 8, [(0, 8 * BLOCKS_PER_GIB)])
    start = time.monotonic()
    result = count_changed_blocks(
        client, first, second, max_requests_per_second=25, workers=8, page_size=1000
    )
    elapsed = time.monotonic() - start
    assert result.changed_blocks == 16_384
    # n requests spaced 1/25 s apart need at least (n - 1) / 25 seconds.
    assert elapsed >= (result.api_calls - 1) / 25 * 0.95


def test_summary_reads_any_key_order_and_whitespace():
    import json

    page = {
        "NextToken": "abc=",
        "ChangedBlocks": [
            {"SecondBlockToken": "AAAA", "BlockIndex": 7},
            {"BlockIndex": 9, "FirstBlockToken": "BBBB", "SecondBlockToken": "CCCC"},
        ],
        "VolumeSize": 1,
    }
    small, summary = cb._summarize(json.dumps(page, indent=2).encode())
    assert json.loads(small) == {**page, "ChangedBlocks": []}
    assert (summary.blocks, summary.last_index) == (2, 9)
    assert [summary.count_below(e) for e in (None, 7, 8, 10)] == [2, 0, 1, 2]
    small, summary = cb._summarize(b'{"ChangedBlocks" : [ ],"VolumeSize":1}')
    assert (summary.blocks, summary.last_index) == (0, None)
    assert cb._summarize(b'{"VolumeSize":1}') is None


def test_hook_is_registered_on_the_given_client_only(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 16, [(0, 12_000)])
    count_changed_blocks(client, first, second, max_requests_per_second=10_000)
    other = make_client(fake.url)  # same default session, its own event emitter
    sizes = []

    def list_as_a_counting_thread():
        cb._counting.active = True  # even a thread flagged as counting is untouched
        page = other.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
        sizes.append(len(page["ChangedBlocks"]))

    thread = threading.Thread(target=list_as_a_counting_thread)
    thread.start()
    thread.join()
    assert sizes == [10_000]
