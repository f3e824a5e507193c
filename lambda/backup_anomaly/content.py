"""Judge a block's 4 KiB pages compressible or not, in memory, keeping nothing of the data.

Ransomware output is ciphertext, and ciphertext does not compress. Each 4 KiB page (the
file-system cluster, so a file's first page or one "intermittent" chunk is one page) is
compressed with zlib level 1 and called *incompressible* when the output is at least
``INCOMPRESSIBLE_RATIO`` (99 %) of the page.

Why 99 %, measured per page on real data (``testing/blocks.py``, zlib level 1):

============================== ==================== =================================
data                           compressed / page    pages at or above 0.99
============================== ==================== =================================
Python sources (text)          0.15 .. 0.50         0 %
interpreter, ``.so`` binaries  0.01 .. 0.71         0 %
SQLite database pages          0.61 .. 0.68         0 %
zeros                          0.01                 0 %
random doubles / gaussian      0.95 / 0.97          0 %
noisy 16-bit PCM audio         0.976 .. 0.982       0 %
gzip / zlib / lzma output      0.91 .. 1.003        98 % / 99 % / 100 %
ciphertext (any plaintext)     1.003 (always)       100 %
============================== ==================== =================================

Ciphertext never compresses below 1.003 (zlib falls back to a stored block and adds 11
bytes), while numeric noise that merely looks random stays under 0.99, so the threshold
sits just below the stored-block floor: volumes of floats or audio are not mistaken for
encrypted ones, and already-compressed data counts as incompressible before and after an
attack alike (that it *changed* is what the scoring weighs). Fully encrypted blocks judge
100 %, "intermittent" ones (4 KiB of every 64 KiB) 8 pages of 128 (6.25 %), header-only
ones one page per file start.

Cost: about 8-13 ms per 512 KiB block on this project's 2-core test machine; zlib releases
the GIL while it compresses, so concurrent samplers use every core.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

PAGE_SIZE = 4096
INCOMPRESSIBLE_RATIO = 0.99
# Integer form of the test (compressed * 100 >= 99 * page), no floats per page.
_RATIO_NUM, _RATIO_DEN = 99, 100
_ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass(frozen=True)
class PageVerdict:
    """The judgement of one block: how many pages, and which are incompressible.

    Attributes:
        pages: 4 KiB pages judged (a final short page counts as one).
        incompressible: How many of them are incompressible.
        mask: Bit ``i`` set when page ``i`` is incompressible (lets a caller compare the
            same page in two snapshots without keeping either).
    """

    pages: int
    incompressible: int
    mask: int


def zero_verdict(pages: int) -> PageVerdict:
    """The verdict for a block that reads as zeros (absent from a snapshot)."""
    return PageVerdict(pages, 0, 0)


def judge_block(data: bytes | bytearray | memoryview, page_size: int = PAGE_SIZE) -> PageVerdict:
    """Judge every page of ``data`` compressible or not.

    Nothing is kept: pages are compressed from a view of the caller's buffer and only the
    compressed lengths are looked at.

    Args:
        data: The block's bytes (any length; EBS blocks are 524,288 bytes).
        page_size: Page size in bytes.

    Returns:
        The page count, the incompressible count and the per-page bit mask.
    """
    view = memoryview(data).cast("B")
    n = len(view)
    mask = 0
    count = 0
    zero = _ZERO_PAGE if page_size == PAGE_SIZE else bytes(page_size)
    bit = 1
    for start in range(0, n, page_size):
        page = view[start : start + page_size]
        # Never-written and trimmed regions are common; they are compressible by definition.
        if len(page) == page_size and page == zero:
            bit <<= 1
            continue
        compressed = len(zlib.compress(page, 1))
        if compressed * _RATIO_DEN >= _RATIO_NUM * len(page):
            mask |= bit
            count += 1
        bit <<= 1
    pages = (n + page_size - 1) // page_size
    return PageVerdict(pages, count, mask)
