"""The fake speaks GetSnapshotBlock as AWS does, through a real boto3 client."""

import base64
import hashlib
import http.client
import json

import pytest
from botocore.exceptions import ClientError

from testing import blocks
from testing.fakes.ebs_direct import (
    BLOCK_TOKEN_TTL_SECONDS,
    BLOCKS_PER_GIB,
    GET_SNAPSHOT_BLOCK,
    LIST_CHANGED_BLOCKS,
    FakeEbsDirectProcess,
    block_content,
)
from tests.counting._support import make_client, new_pair_ids


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def _tokens(client, first, second, **kwargs):
    page = client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second, **kwargs)
    return {b["BlockIndex"]: b for b in page["ChangedBlocks"]}


def _read(client, snapshot, index, token):
    response = client.get_snapshot_block(SnapshotId=snapshot, BlockIndex=index, BlockToken=token)
    return response, response["BlockData"].read()


def test_block_is_served_with_its_length_and_checksum(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)], new_only=[(10, 20)])
    fake.set_contents(second, [(0, 5, "encrypted")], default="database")
    listed = _tokens(client, first, second)
    assert "FirstBlockToken" not in listed[12]
    response, data = _read(client, second, 3, listed[3]["SecondBlockToken"])
    assert len(data) == response["DataLength"] == 524288
    assert response["ChecksumAlgorithm"] == "SHA256"
    assert response["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert data == block_content(second, 3, "encrypted")
    _, other = _read(client, second, 7, listed[7]["SecondBlockToken"])
    assert other == blocks.block("database", f"{second}|7".encode())
    _, again = _read(client, second, 3, listed[3]["SecondBlockToken"])
    assert again == data  # deterministic per (snapshot, index)
    _, before = _read(client, first, 3, listed[3]["FirstBlockToken"])
    assert before == blocks.block("text", f"{first}|3".encode())  # the default kind
    stats = fake.stats()
    assert (stats["get_block_requests"], stats["blocks_read"]) == (4, 4)


def test_block_tokens_name_their_snapshot_and_index_and_expire(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)])
    listed = _tokens(client, first, second)
    token = listed[5]["SecondBlockToken"]
    assert len(token) == 76
    wrong = [
        (second, 6, token),  # another index
        (first, 5, token),  # another snapshot
        (second, 5, "A" * 76),  # forged
        (second, 5, token[:-1]),  # damaged
    ]
    for snapshot, index, bad in wrong:
        err = _error(lambda s=snapshot, i=index, t=bad: _read(client, s, i, t))
        assert err.response["Error"]["Code"] == "ValidationException"
        assert err.response["Reason"] == "INVALID_BLOCK_TOKEN"
    fake.advance_clock(BLOCK_TOKEN_TTL_SECONDS - 60)
    _read(client, second, 5, token)  # still valid just before 7 days
    fake.advance_clock(120)
    err = _error(lambda: _read(client, second, 5, token))
    assert err.response["Reason"] == "INVALID_BLOCK_TOKEN"
    fresh = _tokens(client, first, second)[5]["SecondBlockToken"]
    assert _read(client, second, 5, fresh)[1]


def test_missing_snapshot_and_bad_index_are_the_modeled_errors(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)])
    token = _tokens(client, first, second)[1]["SecondBlockToken"]
    fake.delete_snapshot(second)
    err = _error(lambda: _read(client, second, 1, token))
    assert err.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.response["Reason"] == "SNAPSHOT_NOT_FOUND"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    err = _error(lambda: _read(client, first, BLOCKS_PER_GIB, token))
    assert err.response["Error"]["Code"] == "ValidationException"
    err = _error(lambda: _read(client, "snap-NOTHEX", 1, token))
    assert err.response["Reason"] == "INVALID_SNAPSHOT_ID"


def test_a_request_without_a_token_is_refused_server_side(fake):
    # botocore requires BlockToken itself, so speak HTTP directly, as another SDK might.
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)])
    host, port = fake.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", f"/snapshots/{second}/blocks/1", headers={"Authorization": "x"})
    response = conn.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["Reason"] == "INVALID_PARAMETER_VALUE"


def test_get_snapshot_block_has_its_own_quota(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)])
    fake.set_quota(1, burst=1, operation=GET_SNAPSHOT_BLOCK)
    token = _tokens(client, first, second)[1]["SecondBlockToken"]
    _read(client, second, 1, token)
    err = _error(lambda: _read(client, second, 1, token))
    assert err.response["Error"]["Code"] == "RequestThrottledException"
    assert err.response["Reason"] == "ACCOUNT_THROTTLED"
    for _ in range(3):  # ListChangedBlocks is not affected
        _tokens(client, first, second)
    stats = fake.stats()
    assert stats["get_block_throttled"] == stats["throttled"] == 1


def test_faults_can_target_one_operation(fake, client):
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 20)])
    fake.inject_faults(1, 503, operation=GET_SNAPSHOT_BLOCK)
    fake.inject_error(
        400, "ValidationException", "INVALID_PAGE_TOKEN", operation=LIST_CHANGED_BLOCKS
    )
    err = _error(lambda: _tokens(client, first, second))
    assert err.response["Reason"] == "INVALID_PAGE_TOKEN"
    token = _tokens(client, first, second)[1]["SecondBlockToken"]
    err = _error(lambda: _read(client, second, 1, token))
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert _read(client, second, 1, token)[1]


def test_a_16_tib_volume_with_contents_costs_nothing_to_describe(fake, client):
    first, second = new_pair_ids()
    total = 16384 * BLOCKS_PER_GIB
    fake.add_pair(first, second, 16384, [(0, total)])
    fake.set_contents(second, [(0, total // 2, "encrypted")], default="intermittent")
    last = total - 1
    token = fake.block_token(second, last)
    _, data = _read(client, second, last, token)
    assert judge_share(data) == pytest.approx(1 / 16)
    _, data = _read(client, second, 5, fake.block_token(second, 5))
    assert judge_share(data) == 1.0


def judge_share(data: bytes) -> float:
    from backup_anomaly.content import judge_block

    verdict = judge_block(data)
    return verdict.incompressible / verdict.pages


def test_process_mode_serves_blocks():
    with FakeEbsDirectProcess() as remote:
        first, second = new_pair_ids()
        remote.add_pair(first, second, 1, [(0, 4)])
        remote.set_contents(second, default="zeros")
        client = make_client(remote.url)
        token = _tokens(client, first, second)[2]["SecondBlockToken"]
        assert _read(client, second, 2, token)[1] == bytes(524288)
