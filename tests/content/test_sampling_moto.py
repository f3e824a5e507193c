"""Real block contents written into moto snapshots, then counted, sampled and judged.

The blocks are real files (``testing/blocks.py``) and their encrypted versions, written with
``put_snapshot_block`` into an incremental snapshot pair; the real count samples them and the
real sampler reads them back with moto's ``get_snapshot_block``.
"""

import base64
import hashlib

import boto3
import pytest
from moto import mock_aws

from backup_anomaly.changed_blocks import count_changed_blocks
from backup_anomaly.content import judge_block
from backup_anomaly.sampling import Content, sample_content
from testing import blocks
from testing.moto_fidelity import faithful_changed_blocks, faithful_moto


def _put(ebs, snapshot_id, index, data):
    ebs.put_snapshot_block(
        SnapshotId=snapshot_id,
        BlockIndex=index,
        BlockData=data,
        DataLength=len(data),
        Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        ChecksumAlgorithm="SHA256",
    )


def _snapshot(ebs, written, parent=None):
    kwargs = {"ParentSnapshotId": parent} if parent else {}
    snapshot_id = ebs.start_snapshot(VolumeSize=1, **kwargs)["SnapshotId"]
    for index, data in written.items():
        _put(ebs, snapshot_id, index, data)
    ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(written))
    return snapshot_id


@pytest.fixture
def ebs():
    with mock_aws(), faithful_moto(), faithful_changed_blocks():
        yield boto3.client("ebs", region_name="us-east-1")


def test_real_contents_through_count_sampler_and_judge(ebs):
    key = b"victim"
    plain = {
        0: blocks.block("text", b"0"),
        1: blocks.block("text", b"1"),
        2: blocks.block("binary", b"2"),
        3: blocks.block("database", b"3"),
        4: blocks.block("gzip", b"4"),
        5: blocks.block("files", b"5"),
        6: blocks.block("text", b"6"),
        7: blocks.ZERO_BLOCK,
    }
    _, starts = blocks.files_pool()[[b for b, _ in blocks.files_pool()].index(plain[5])]
    attack = {
        0: blocks.encrypt_full(plain[0], key),  # fully encrypted
        1: blocks.encrypt_intermittent(plain[1], key),  # 4 KiB of every 64 KiB
        2: blocks.encrypt_full(plain[2], key),
        3: blocks.encrypt_intermittent(plain[3], key),
        4: blocks.encrypt_full(plain[4], key),  # already incompressible before
        5: blocks.encrypt_header_only(plain[5], key, starts),  # first 4 KiB of each file
        6: plain[6][:1000] + b"# edited\n" + plain[6][1009:],  # an ordinary write
        9: blocks.encrypt_full(blocks.block("binary", b"9"), key),  # only in the new one
    }
    first = _snapshot(ebs, plain)
    second = _snapshot(ebs, attack, parent=first)

    counted = count_changed_blocks(ebs, first, second, sample_size=100, workers=2)
    assert counted.complete and counted.changed_blocks == 8 and counted.block_size == 524288
    assert sorted(s.index for s in counted.samples) == [0, 1, 2, 3, 4, 5, 6, 9]
    assert [s.index for s in counted.samples if s.first_token is None] == [9]

    result = sample_content(ebs, first, second, counted.samples, workers=3)

    want = Content()
    for index in sorted(attack):
        old = judge_block(plain.get(index, blocks.ZERO_BLOCK))
        new = judge_block(attack[index])
        turned = (new.mask & ~old.mask).bit_count()
        want = Content(
            want.sampled_blocks + 1,
            want.pages + new.pages,
            want.incompressible_before + old.incompressible,
            want.incompressible_after + new.incompressible,
            want.newly_incompressible + turned,
            want.blocks_newly_incompressible + bool(turned),
        )
    assert result.complete and result.content == want
    assert result.get_block_calls == 8 + 7  # no request for block 9 in the first snapshot
    # What the counts show: before, only the gzip block; after, the attack.
    assert result.content.incompressible_before == judge_block(plain[4]).incompressible
    assert result.content.incompressible_after >= 3 * 128 + 2 * 8 + len(starts)
