"""Page judgement on real block contents: what ordinary data and ransomware output look like."""

import array
import random
import struct

import pytest

from backup_anomaly.content import PAGE_SIZE, judge_block, zero_verdict
from testing import blocks

KEYS = [b"k%d" % i for i in range(8)]


def share(kind: str) -> float:
    """Incompressible share of the pages of eight blocks of ``kind``."""
    verdicts = [judge_block(blocks.block(kind, key)) for key in KEYS]
    return sum(v.incompressible for v in verdicts) / sum(v.pages for v in verdicts)


@pytest.mark.parametrize("kind", ["text", "binary", "database", "files", "zeros"])
def test_ordinary_data_is_compressible(kind):
    assert share(kind) <= 0.01


@pytest.mark.parametrize("kind", ["gzip", "zlib", "lzma", "zip"])
def test_already_compressed_data_is_incompressible(kind):
    assert share(kind) >= 0.97


@pytest.mark.parametrize(
    "kind",
    ["random", "encrypted", "encrypted_binary", "encrypted_database", "encrypted_gzip"],
)
def test_full_encryption_is_entirely_incompressible(kind):
    assert share(kind) == 1.0


@pytest.mark.parametrize("kind", ["intermittent", "intermittent_binary", "intermittent_database"])
def test_intermittent_encryption_is_one_page_in_sixteen(kind):
    # 4 KiB of every 64 KiB: 8 of a block's 128 pages, on compressible plaintext.
    assert share(kind) == pytest.approx(1 / 16, abs=0.005)
    verdict = judge_block(blocks.block(kind, b"x"))
    assert verdict.mask == sum(1 << p for p in range(0, 128, 16))


def test_header_only_encryption_is_one_page_per_file():
    for key in KEYS:
        verdict = judge_block(blocks.block("header_only", key))
        assert verdict.incompressible == blocks.header_pages(key) > 0
        plain = judge_block(blocks.block("files", key))
        assert plain.incompressible == 0


def test_numeric_noise_is_not_mistaken_for_ciphertext():
    # Random doubles (~0.95), gaussian doubles (~0.97) and noisy 16-bit audio (~0.98)
    # compress little, yet below the 0.99 threshold: such volumes must not look encrypted.
    rng = random.Random(7)
    n = blocks.BLOCK_SIZE
    doubles = struct.pack(f"<{n // 8}d", *(rng.random() for _ in range(n // 8)))
    gauss = struct.pack(f"<{n // 8}d", *(rng.gauss(0, 1) for _ in range(n // 8)))
    pcm = array.array(
        "h", (max(-32768, min(32767, int(rng.gauss(0, 3000)))) for _ in range(n // 2))
    )
    for data in (doubles, gauss, pcm.tobytes()):
        assert judge_block(data).incompressible == 0


def test_verdict_shape_mask_and_short_pages():
    data = blocks.block("text") + blocks.keystream(b"tail", PAGE_SIZE + 100)
    verdict = judge_block(data)
    assert verdict.pages == 128 + 2
    assert verdict.mask == (1 << 128) | (1 << 129)
    assert verdict.incompressible == 2
    assert judge_block(b"") == zero_verdict(0)
    assert zero_verdict(128).mask == 0


def test_judging_keeps_nothing_of_the_data():
    data = blocks.block("encrypted", b"secret")
    verdict = judge_block(bytearray(data))
    assert {type(v) for v in vars(verdict).values()} == {int}


def test_kit_is_deterministic_and_block_sized():
    for kind in blocks.KINDS:
        a, b = blocks.block(kind, b"same"), blocks.block(kind, b"same")
        assert a == b and len(a) == blocks.BLOCK_SIZE, kind
    assert blocks.block("encrypted", b"a") != blocks.block("encrypted", b"b")
    with pytest.raises(KeyError):
        blocks.block("nonsense")
