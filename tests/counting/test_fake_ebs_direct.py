"""The fake speaks ListChangedBlocks as AWS does, through a real boto3 client."""

import http.client
import json

import pytest
from botocore.exceptions import ClientError

from testing.fakes.ebs_direct import (
    BLOCKS_PER_GIB,
    FakeEbsDirect,
    FakeEbsDirectProcess,
    Layout,
    fraction_layout,
)
from tests.counting._support import make_client, new_pair_ids


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def _list_all(client, first, second, **kwargs):
    """Every page of a plain NextToken loop."""
    pages, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_changed_blocks(
            FirstSnapshotId=first, SecondSnapshotId=second, **kwargs, **extra
        )
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return pages


def test_layout_counts_and_takes_without_materializing():
    layout = Layout(16384, [(0, 16384 * BLOCKS_PER_GIB)])
    assert layout.count() == 33_554_432
    assert layout.count(100, 250) == 150
    assert layout.take(33_554_430, 10, layout.total_blocks) == [(33_554_430, 33_554_432)]
    sparse = Layout(1, [(5, 10), (10, 12), (100, 200)], new_only=[(150, 160)])
    assert (sparse.starts, sparse.ends) == ([5, 100], [12, 200])  # adjacent ranges merge
    assert sparse.next_changed(13) == 100
    assert sparse.next_changed(200) is None
    assert sparse.split_new_only(140, 170) == [
        (140, 150, False),
        (150, 160, True),
        (160, 170, False),
    ]


def test_layout_rejects_bad_ranges():
    with pytest.raises(ValueError, match="sorted and disjoint"):
        Layout(1, [(10, 20), (15, 30)])
    with pytest.raises(ValueError, match="outside"):
        Layout(1, [(0, BLOCKS_PER_GIB + 1)])
    with pytest.raises(ValueError, match="not inside"):
        Layout(1, [(0, 10)], new_only=[(5, 20)])


def test_full_page_is_realistic(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 16, [(0, 16 * BLOCKS_PER_GIB)], new_only=[(9990, 10000)])
    page = client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
    blocks = page["ChangedBlocks"]
    assert len(blocks) == 10000  # the default MaxResults
    assert [b["BlockIndex"] for b in blocks] == list(range(10000))
    assert len(blocks[0]["FirstBlockToken"]) == len(blocks[0]["SecondBlockToken"]) == 76
    assert "FirstBlockToken" not in blocks[-1]  # only in the second snapshot
    assert blocks[0]["FirstBlockToken"] != blocks[0]["SecondBlockToken"]
    assert page["VolumeSize"] == 16 and page["BlockSize"] == 524288
    assert page["ExpiryTime"].year >= 2024
    assert page["NextToken"]
    assert 2_000_000 < fake.stats()["bytes"] < 2_400_000  # ~2.2 MB, as AWS


def test_next_token_absent_on_last_page_and_starting_index(fake, client):
    first, second = new_pair_ids()
    layout = fake.add_pair(first, second, 1, [(3, 250), (1000, 1100)])
    pages = _list_all(client, first, second, MaxResults=100)
    assert [len(p["ChangedBlocks"]) for p in pages] == [100, 100, 100, 47]
    assert "NextToken" not in pages[-1]
    assert sum(len(p["ChangedBlocks"]) for p in pages) == layout.count()
    page = client.list_changed_blocks(
        FirstSnapshotId=first, SecondSnapshotId=second, StartingBlockIndex=1050
    )
    assert page["ChangedBlocks"][0]["BlockIndex"] == 1050
    assert len(page["ChangedBlocks"]) == 50 and "NextToken" not in page


def test_page_token_overrides_starting_index(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 300)])
    token = client.list_changed_blocks(
        FirstSnapshotId=first, SecondSnapshotId=second, MaxResults=100
    )["NextToken"]
    page = client.list_changed_blocks(
        FirstSnapshotId=first,
        SecondSnapshotId=second,
        MaxResults=100,
        NextToken=token,
        StartingBlockIndex=250,
    )
    assert page["ChangedBlocks"][0]["BlockIndex"] == 100


def test_scan_window_gives_empty_pages_that_carry_a_token(fake, client):
    first, second = new_pair_ids()
    layout = fake.add_pair(first, second, 1, [(10, 20), (1500, 1510)])
    fake.scan_window = 500
    pages = _list_all(client, first, second)
    sizes = [len(p["ChangedBlocks"]) for p in pages]
    assert sizes == [10, 0, 0, 10, 0]  # windows 0-500, 500-1000, ..., 2000-2048
    assert all(p.get("NextToken") for p in pages[:-1])
    assert sum(sizes) == layout.count()


def test_max_page_blocks_caps_pages(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 1000)])
    fake.max_page_blocks = 300
    assert [len(p["ChangedBlocks"]) for p in _list_all(client, first, second)] == [
        300,
        300,
        300,
        100,
    ]


def test_modeled_errors_parse_with_code_and_reason(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    fake.add_snapshot("snap-0e0e", 1)
    cases = [
        (
            dict(FirstSnapshotId="snap-0e0e", SecondSnapshotId=second),
            "ValidationException",
            "UNRELATED_SNAPSHOTS",
            400,
        ),
        (
            dict(FirstSnapshotId=first, SecondSnapshotId="snap-dead"),
            "ResourceNotFoundException",
            "SNAPSHOT_NOT_FOUND",
            404,
        ),
        (
            dict(FirstSnapshotId=first, SecondSnapshotId=second, NextToken="AAAAbogus"),
            "ValidationException",
            "INVALID_PAGE_TOKEN",
            400,
        ),
        (
            dict(FirstSnapshotId=first, SecondSnapshotId="snap-NOTHEX"),
            "ValidationException",
            "INVALID_SNAPSHOT_ID",
            400,
        ),
    ]
    for kwargs, code, reason, status in cases:
        err = _error(lambda kw=kwargs: client.list_changed_blocks(**kw))
        assert err.response["Error"]["Code"] == code
        assert err.response["Reason"] == reason
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert err.response["Error"]["Message"]
    assert fake.stats()["errors"] == len(cases)


def test_deleted_snapshot_is_not_found(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    fake.delete_snapshot(first)
    err = _error(lambda: client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second))
    assert err.response["Error"]["Code"] == "ResourceNotFoundException"


def _raw_get(fake, path):
    host, port = fake.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", path, headers={"Authorization": "AWS4-HMAC-SHA256 fake"})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), json.loads(resp.read())


def test_max_results_bounds_are_enforced_server_side(fake):
    # botocore validates the minimum itself, so speak HTTP directly, as another SDK might.
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    for bad in (99, 10001, "ten"):
        status, headers, body = _raw_get(
            fake, f"/snapshots/{second}/changedblocks?firstSnapshotId={first}&maxResults={bad}"
        )
        assert status == 400
        assert headers["x-amzn-ErrorType"] == "ValidationException"
        assert body["Reason"] == "INVALID_PARAMETER_VALUE"
    status, _, body = _raw_get(
        fake, f"/snapshots/{second}/changedblocks?firstSnapshotId={first}&maxResults=100"
    )
    assert status == 200 and len(body["ChangedBlocks"]) == 10


def test_unsigned_request_is_refused(fake):
    host, port = fake.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/snapshots/snap-1/changedblocks")
    assert conn.getresponse().status == 403


def test_quota_throttles_with_the_real_error(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    fake.set_quota(1, burst=2)
    client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
    client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
    err = _error(lambda: client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second))
    assert err.response["Error"]["Code"] == "RequestThrottledException"
    assert err.response["Reason"] == "ACCOUNT_THROTTLED"
    assert fake.stats()["throttled"] == 1
    assert fake.requests_served == 3


def test_injected_faults_are_5xx(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 10)])
    fake.inject_faults(1, 500)
    fake.inject_faults(1, 503)
    call = lambda: client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)  # noqa: E731
    assert _error(call).response["Error"]["Code"] == "InternalServerException"
    assert _error(call).response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert len(call()["ChangedBlocks"]) == 10
    assert fake.stats()["faults"] == 2


def test_fraction_layout_shares():
    assert fraction_layout(4, 1.0).count() == 4 * BLOCKS_PER_GIB
    assert fraction_layout(4, 0.0).count() == 0
    half = fraction_layout(16, 0.5)
    assert abs(half.count() / half.total_blocks - 0.5) < 0.01
    assert fraction_layout(16, 0.01).count() / (16 * BLOCKS_PER_GIB) == pytest.approx(0.01, 0.05)


def test_process_mode_serves_and_reports():
    with FakeEbsDirectProcess(latency=0.0) as remote:
        first, second = new_pair_ids()
        assert remote.add_pair(first, second, 1, [(0, 42)]).count() == 42
        client = make_client(remote.url)
        page = client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
        assert len(page["ChangedBlocks"]) == 42
        assert remote.requests_served == 1
        assert remote.peak_rss_kib() > 0


def test_context_manager_stops_server():
    with FakeEbsDirect() as server:
        url = server.url
    with pytest.raises(Exception):  # noqa: B017 - connection refused, whatever its class
        make_client(url).list_changed_blocks(FirstSnapshotId="snap-1", SecondSnapshotId="snap-2")
