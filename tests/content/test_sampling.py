"""sample_content against the fake: counts, deadline, throttling, expired tokens, 5xx, errors."""

import base64
import logging
import pickle

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from backup_anomaly import budget as b
from backup_anomaly.changed_blocks import BlockSample, count_changed_blocks
from backup_anomaly.content import judge_block
from backup_anomaly.sampling import (
    BlockChecksumMismatch,
    Content,
    SampleResult,
    SnapshotGone,
    sample_content,
)
from testing.fakes.ebs_direct import (
    BLOCK_TOKEN_TTL_SECONDS,
    BLOCKS_PER_GIB,
    GET_SNAPSHOT_BLOCK,
    block_content,
)
from tests.counting._support import new_pair_ids
from tests.counting.test_changed_blocks import deadline_after


def counted(fake, client, size_gib, changed, new_only=(), first_kind="text", second=(), k=16):
    """A registered pair, its contents, and the count's sample."""
    first, second_id = new_pair_ids()
    fake.add_pair(first, second_id, size_gib, changed, new_only)
    fake.set_contents(first, default=first_kind)
    fake.set_contents(second_id, second, default="text")
    result = count_changed_blocks(
        client, first, second_id, sample_size=k, max_requests_per_second=10_000, page_size=1000
    )
    assert len(result.samples) == min(k, result.changed_blocks)
    return first, second_id, result.samples


def expected(fake, first, second, samples) -> Content:
    """What the sampler must find, judged here from the fake's own contents."""
    blocks = pages = before = after = turned = blocks_turned = 0
    for s in samples:
        new = judge_block(block_content(second, s.index, fake.content_kind(second, s.index)))
        if s.first_token is None:
            old_mask, old_count = 0, 0
        else:
            old = judge_block(block_content(first, s.index, fake.content_kind(first, s.index)))
            old_mask, old_count = old.mask, old.incompressible
        t = (new.mask & ~old_mask).bit_count()
        blocks, pages = blocks + 1, pages + new.pages
        before, after, turned = before + old_count, after + new.incompressible, turned + t
        blocks_turned += bool(t)
    return Content(blocks, pages, before, after, turned, blocks_turned)


def test_full_encryption_over_text(fake, client):
    total = 4 * BLOCKS_PER_GIB
    first, second, samples = counted(
        fake, client, 4, [(0, total)], second=[(0, total, "encrypted")], k=24
    )
    result = sample_content(client, first, second, samples)
    assert result.complete and result.requested == 24
    assert result.content == Content(24, 24 * 128, 0, 24 * 128, 24 * 128, 24)
    assert result.content.to_event() == {
        "sampledBlocks": 24,
        "pages": 3072,
        "incompressibleBefore": 0,
        "incompressibleAfter": 3072,
    }
    assert result.get_block_calls == result.api_calls == 48 == fake.stats()["blocks_read"]


def test_mixed_contents_are_counted_exactly(fake, client):
    ranges = [(0, 500, "intermittent"), (500, 1000, "header_only"), (1000, 1500, "gzip")]
    first, second, samples = counted(
        fake, client, 1, [(0, 2000)], first_kind="binary", second=ranges, k=40
    )
    result = sample_content(client, first, second, samples, workers=4)
    assert result.complete
    assert result.content == expected(fake, first, second, samples)


def test_blocks_absent_from_the_first_snapshot_read_as_zeros_without_a_request(fake, client):
    first, second, samples = counted(
        fake, client, 1, [(0, 1000)], new_only=[(0, 1000)], second=[(0, 1000, "encrypted")]
    )
    assert all(s.first_token is None for s in samples)
    result = sample_content(client, first, second, samples)
    assert result.content == Content(16, 2048, 0, 2048, 2048, 16)
    assert result.get_block_calls == 16 == fake.stats()["get_block_requests"]


def test_already_incompressible_data_stays_so(fake, client):
    first, second, samples = counted(
        fake, client, 1, [(0, 1000)], first_kind="gzip", second=[(0, 1000, "lzma")]
    )
    content = sample_content(client, first, second, samples).content
    assert content.incompressible_before >= 0.97 * content.pages
    assert content.incompressible_after == content.pages
    assert content.newly_incompressible <= 0.03 * content.pages


def test_the_deadline_stops_cleanly_with_partial_counts(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=30)
    result = sample_content(
        client, first, second, samples, workers=1, remaining_seconds=deadline_after(10)
    )
    assert not result.complete
    assert 0 < result.content.sampled_blocks < 30
    assert result.content.pages == 128 * result.content.sampled_blocks
    assert result.get_block_calls <= 10
    untouched = sample_content(client, first, second, samples, remaining_seconds=lambda: 1.0)
    assert (untouched.complete, untouched.api_calls, untouched.content) == (False, 0, Content())


def test_throttling_is_retried_under_the_get_block_quota(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=12)
    fake.set_quota(20, burst=1, operation=GET_SNAPSHOT_BLOCK)
    result = sample_content(client, first, second, samples, max_requests_per_second=1000)
    stats = fake.stats()
    assert result.complete and result.content.sampled_blocks == 12
    assert stats["get_block_throttled"] > 0
    assert result.get_block_calls == stats["get_block_requests"]
    assert result.get_block_calls == stats["blocks_read"] + stats["get_block_throttled"]


def test_5xx_is_retried(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=4)
    fake.inject_faults(3, 500, operation=GET_SNAPSHOT_BLOCK)
    fake.inject_faults(2, 503, operation=GET_SNAPSHOT_BLOCK)
    result = sample_content(client, first, second, samples, workers=2)
    assert result.complete and result.get_block_calls == 8 + 5
    assert result.content == expected(fake, first, second, samples)


def test_expired_block_tokens_are_listed_again(fake, client):
    # A count resumed over days hands over tokens past their 7 days.
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=6)
    fake.advance_clock(BLOCK_TOKEN_TTL_SECONDS + 60)
    result = sample_content(client, first, second, samples, workers=2)
    assert result.complete and result.relisted == 6 and result.skipped == 0
    assert result.content == expected(fake, first, second, samples)
    assert result.api_calls == result.get_block_calls + 6  # one ListChangedBlocks each


def test_an_invalid_token_relists_that_index_only(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=3)
    broken = [BlockSample(samples[0].index, samples[0].first_token, "A" * 76), *samples[1:]]
    result = sample_content(client, first, second, broken)
    assert result.complete and result.relisted == 1
    assert result.content == expected(fake, first, second, samples)


def test_a_block_no_longer_listed_is_skipped_not_counted(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=2)
    ghost = BlockSample(1500, "A" * 76, "A" * 76)  # not a changed block
    result = sample_content(client, first, second, [*samples, ghost])
    assert result.complete and result.skipped == 1 and result.content.sampled_blocks == 2


def test_a_snapshot_that_disappeared_is_a_typed_error_with_partial_counts(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=4)
    fake.delete_snapshot(second)
    with pytest.raises(SnapshotGone) as info:
        sample_content(client, first, second, samples, workers=1)
    assert info.value.snapshot_id == second
    assert isinstance(info.value.partial, SampleResult) and not info.value.partial.complete


def test_access_denied_on_the_key_is_raised_as_is(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=2)
    fake.inject_error(
        403, "AccessDeniedException", "DEPENDENCY_ACCESS_DENIED", operation=GET_SNAPSHOT_BLOCK
    )
    with pytest.raises(ClientError) as info:
        sample_content(client, first, second, samples, workers=1)
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_corrupted_block_is_retried_then_refused(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=1)
    corrupt = {"n": 2}

    def tamper(response_dict, **_):
        if corrupt["n"] > 0:
            corrupt["n"] -= 1
            response_dict["headers"]["x-amz-Checksum"] = base64.b64encode(b"x" * 32).decode()

    client.meta.events.register("before-parse.ebs.GetSnapshotBlock", tamper)
    try:
        result = sample_content(client, first, second, samples)
        assert result.complete and result.get_block_calls == 2 + 2
        corrupt["n"] = 10**6
        with pytest.raises(BlockChecksumMismatch):
            sample_content(client, first, second, samples)
    finally:
        client.meta.events.unregister("before-parse.ebs.GetSnapshotBlock", tamper)


def test_no_byte_of_a_block_reaches_logs_or_the_result(fake, client, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, botocore's included
    first, second, samples = counted(
        fake, client, 1, [(0, 1000)], second=[(0, 1000, "encrypted")], k=8
    )
    result = sample_content(client, first, second, samples)
    logged = caplog.text + "".join(capsys.readouterr())
    dumped = repr(result) + repr(pickle.dumps(result))
    for s in samples:
        for snapshot in (first, second):
            data = block_content(snapshot, s.index, fake.content_kind(snapshot, s.index))
            for probe in (data[1000:1032], data[300_000:300_032]):
                for form in (
                    probe.hex(),
                    base64.b64encode(probe).decode()[:40],
                    repr(probe)[2:40],
                ):
                    assert form not in logged and form not in dumped
    fields = vars(result.content).values()
    assert all(type(v) is int for v in fields)
    assert caplog.records  # botocore did log (so the check above looked at something)


def test_samplers_share_the_accounts_get_block_budget(fake, client):
    first, second, samples = counted(fake, client, 1, [(0, 1000)], k=4)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "VolumeArn", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "VolumeArn", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        budget = b.SharedBudget(dynamodb, "state", b.GET_SNAPSHOT_BLOCK, 1000)
        key = {"VolumeArn": {"S": b.budget_key(b.GET_SNAPSHOT_BLOCK)}}
        during = []

        def look(**_):
            item = dynamodb.get_item(TableName="state", Key=key).get("Item", {})
            during.append(sum(k.startswith("L#") for k in item))

        client.meta.events.register("before-call.ebs.GetSnapshotBlock", look)
        try:
            with budget.lease() as other:  # another sampler already reading blocks
                result = sample_content(client, first, second, samples, budget=budget)
                assert other.live == 1  # (it has not renewed yet)
        finally:
            client.meta.events.unregister("before-call.ebs.GetSnapshotBlock", look)
        assert result.complete
        assert set(during) == {2}  # both leases were live while this one sampled
        item = dynamodb.get_item(TableName="state", Key=key).get("Item", {})
        assert not any(k.startswith("L#") for k in item)


def test_nothing_to_sample_is_complete_and_free(fake, client):
    class NoLease:
        def lease(self, cap=None):
            raise AssertionError("no lease for nothing")

    result = sample_content(client, "snap-0a", "snap-0b", [], budget=NoLease())
    assert (result.complete, result.api_calls, result.content) == (True, 0, Content())
