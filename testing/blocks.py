"""Real 512 KiB EBS block contents, and their "encrypted" versions, for tests and the demo.

Every block is cut from files present wherever Python runs (this machine, CI, a laptop):

* ``text``: the standard library's own ``.py`` sources, concatenated in sorted order;
* ``binary``: ``sys.executable``, ``libpython`` when shared, and the ``lib-dynload`` ``.so``
  extension modules;
* ``database``: an SQLite database built here with the stdlib ``sqlite3`` (tables of rows
  with text, integers and floats, and their indexes), read back as a file;
* ``gzip``, ``zlib``, ``lzma``, ``zip``: the text corpus compressed by the stdlib codecs
  (data that is already incompressible before any attack);
* ``zeros``: a never-written or trimmed block;
* ``files``: whole files packed at 4 KiB-aligned offsets (a file system's layout), used for
  header-only encryption.

"Encryption" is an XOR with a SHAKE-256 keystream, which is indistinguishable from real
ciphertext to any compressibility test, in three shapes ransomware uses: ``full``,
``intermittent`` (4 KiB of every 64 KiB, as LockBit-style "fast" modes do) and
``header_only`` (the first 4 KiB of each file). Everything is deterministic: the same name
and key give the same bytes on the same Python installation; pools are built lazily and
stay small, so a fake serving a 16 TiB volume holds a few MiB.
"""

from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import io
import lzma
import os
import random
import sqlite3
import sys
import sysconfig
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence

BLOCK_SIZE = 524288
PAGE = 4096
INTERMITTENT_STRIDE = 65536  # 4 KiB encrypted out of every 64 KiB: 1/16 = 6.25 % of pages
POOL_BLOCKS = 8  # blocks kept per source kind (about 4 MiB each)

Block = bytes


# --- sources --------------------------------------------------------------------------


def _stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def _text_files() -> list[str]:
    root = _stdlib_dir()
    files = sorted(glob.glob(os.path.join(root, "*.py")))
    files += sorted(glob.glob(os.path.join(root, "*", "*.py")))
    return [f for f in files if os.path.isfile(f) and "site-packages" not in f]


def _binary_files() -> list[str]:
    files = [os.path.realpath(sys.executable)]
    libdir, lib = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and lib and lib.endswith(".so") and os.path.isfile(os.path.join(libdir, lib)):
        files.append(os.path.join(libdir, lib))
    files += sorted(glob.glob(os.path.join(_stdlib_dir(), "lib-dynload", "*.so")))
    return files


def _concat(paths: Iterable[str], limit: int) -> bytes:
    out = bytearray()
    for path in paths:
        with open(path, "rb") as f:
            out += f.read()
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def _blocks_of(data: bytes) -> list[Block]:
    n = len(data) // BLOCK_SIZE
    if n == 0:
        raise RuntimeError("not enough source data for one block")
    return [data[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE] for i in range(n)]


@functools.cache
def _text_corpus() -> bytes:
    # More than the text pool: the compressed kinds below need 3-4 x their output as input.
    return _concat(_text_files(), 2 * POOL_BLOCKS * BLOCK_SIZE)


@functools.cache
def text_pool() -> tuple[Block, ...]:
    """Blocks of Python source text."""
    return tuple(_blocks_of(_text_corpus()[: POOL_BLOCKS * BLOCK_SIZE]))


@functools.cache
def binary_pool() -> tuple[Block, ...]:
    """Blocks of executable code and data (the interpreter and extension modules)."""
    data = _concat(_binary_files(), POOL_BLOCKS * BLOCK_SIZE)
    if len(data) < BLOCK_SIZE:
        data = (data * (BLOCK_SIZE // max(1, len(data)) + 1))[:BLOCK_SIZE]
    return tuple(_blocks_of(data))


@functools.cache
def database_pool() -> tuple[Block, ...]:
    """Blocks of an SQLite database file (B-tree pages of rows and indexes)."""
    rng = random.Random(20240601)
    words = _text_corpus()[:200_000].decode("utf-8", "replace").split()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "orders.db")
        con = sqlite3.connect(path)
        try:
            con.execute("PRAGMA page_size = 4096")
            con.execute(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, item TEXT, "
                "quantity INTEGER, price REAL, note TEXT)"
            )
            rows = (
                (
                    i,
                    f"customer-{rng.randrange(5000):05d}",
                    " ".join(rng.choices(words, k=3)),
                    rng.randrange(1, 20),
                    round(rng.uniform(1, 500), 2),
                    " ".join(rng.choices(words, k=rng.randrange(0, 12))),
                )
                for i in range(60_000)
            )
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", rows)
            con.execute("CREATE INDEX orders_customer ON orders (customer)")
            con.execute("CREATE INDEX orders_price ON orders (price)")
            con.commit()
        finally:
            con.close()
        with open(path, "rb") as f:
            data = f.read(POOL_BLOCKS * BLOCK_SIZE)
    return tuple(_blocks_of(data))


def _zip_bytes(text: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(0, len(text), 1 << 20):
            info = zipfile.ZipInfo(f"part-{i >> 20:04d}.txt", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text[i : i + (1 << 20)])
    return buf.getvalue()


_COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, compresslevel=6, mtime=0),
    "zlib": lambda b: zlib.compress(b, 9),
    "lzma": lambda b: lzma.compress(b, preset=1),
    "zip": _zip_bytes,
}


@functools.cache
def compressed_pool(codec: str) -> tuple[Block, ...]:
    """Blocks of the text corpus compressed with ``codec`` (gzip, zlib, lzma or zip)."""
    compress = _COMPRESSORS[codec]
    text, out, i = _text_corpus(), b"", 0
    while len(out) < 2 * BLOCK_SIZE:  # at least two blocks, whatever the ratio
        out += compress(text[i:])  # shifted input: a different stream, not a repeat
        i += 1
    return tuple(_blocks_of(out[: POOL_BLOCKS * BLOCK_SIZE]))


@functools.cache
def files_pool() -> tuple[tuple[Block, tuple[int, ...]], ...]:
    """Blocks of whole source files packed at 4 KiB-aligned offsets, with each file's start.

    A file system allocates whole 4 KiB clusters, so every file begins on a page and the
    slack after its end is zeros: what header-only encryption (the first 4 KiB of each
    file) hits on a real volume.
    """
    blocks, buf, starts = [], bytearray(), []
    for path in _text_files():
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            continue
        pos = len(buf)
        if pos // BLOCK_SIZE != (pos + min(len(data), PAGE) - 1) // BLOCK_SIZE:
            buf += bytes(BLOCK_SIZE - pos % BLOCK_SIZE)  # a header never straddles blocks
            pos = len(buf)
        starts.append(pos)
        buf += data
        buf += bytes(-len(buf) % PAGE)
        while len(buf) >= BLOCK_SIZE * (len(blocks) + 1):
            lo = len(blocks) * BLOCK_SIZE
            own = tuple(s - lo for s in starts if lo <= s < lo + BLOCK_SIZE)
            blocks.append((bytes(buf[lo : lo + BLOCK_SIZE]), own))
            if len(blocks) == POOL_BLOCKS:
                return tuple(blocks)
    return tuple(blocks)


# --- encryption -----------------------------------------------------------------------


def keystream(key: bytes, length: int = BLOCK_SIZE) -> bytes:
    """SHAKE-256 output: as random as ciphertext to anything that looks at bytes."""
    return hashlib.shake_256(b"testing.blocks|" + key).digest(length)


def _xor(data: bytes, stream: bytes) -> bytes:
    n = len(data)
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream[:n], "little")).to_bytes(
        n, "little"
    )


def encrypt_full(data: bytes, key: bytes) -> bytes:
    """Every byte encrypted."""
    return _xor(data, keystream(key, len(data)))


def encrypt_ranges(data: bytes, key: bytes, ranges: Sequence[tuple[int, int]]) -> bytes:
    """Only ``[start, end)`` byte ranges encrypted, the rest untouched."""
    out = bytearray(data)
    stream = keystream(key, len(data))
    for a, b in ranges:
        out[a:b] = _xor(data[a:b], stream[a:b])
    return bytes(out)


def encrypt_intermittent(
    data: bytes, key: bytes, chunk: int = PAGE, stride: int = INTERMITTENT_STRIDE
) -> bytes:
    """``chunk`` bytes encrypted at the start of every ``stride`` bytes."""
    return encrypt_ranges(data, key, [(a, a + chunk) for a in range(0, len(data), stride)])


def encrypt_header_only(data: bytes, key: bytes, starts: Iterable[int]) -> bytes:
    """The first 4 KiB of each file (given by its start offset) encrypted."""
    return encrypt_ranges(data, key, [(s, min(s + PAGE, len(data))) for s in starts])


# --- named kinds ----------------------------------------------------------------------

ZERO_BLOCK = bytes(BLOCK_SIZE)

SOURCE_KINDS = ("text", "binary", "database", "files", "gzip", "zlib", "lzma", "zip", "zeros")
ENCRYPTED_KINDS = (
    "random",
    "encrypted",  # full encryption of a text block
    "encrypted_binary",
    "encrypted_database",
    "encrypted_gzip",
    "intermittent",  # 4 KiB of every 64 KiB of a text block
    "intermittent_binary",
    "intermittent_database",
    "header_only",  # the first 4 KiB of each file of a packed-files block
)
KINDS = SOURCE_KINDS + ENCRYPTED_KINDS


def _pool(name: str) -> Sequence[Block]:
    if name == "text":
        return text_pool()
    if name == "binary":
        return binary_pool()
    if name == "database":
        return database_pool()
    if name == "files":
        return tuple(b for b, _ in files_pool())
    if name in _COMPRESSORS:
        return compressed_pool(name)
    raise KeyError(name)


def _pick(pool: Sequence, key: bytes):
    return pool[int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % len(pool)]


def block(kind: str, key: bytes = b"") -> Block:
    """A deterministic 512 KiB block of ``kind`` (see ``KINDS``) chosen and keyed by ``key``.

    Raises:
        KeyError: Unknown kind.
    """
    if kind == "zeros":
        return ZERO_BLOCK
    if kind in ("text", "binary", "database", "files", *_COMPRESSORS):
        return _pick(_pool(kind), key)
    if kind == "random":
        return keystream(b"random|" + key)
    if kind == "header_only":
        data, starts = _pick(files_pool(), key)
        return encrypt_header_only(data, key, starts)
    if kind.startswith("encrypted") or kind.startswith("intermittent"):
        mode, _, source = kind.partition("_")
        plain = _pick(_pool(source or "text"), key)
        if mode == "encrypted":
            return encrypt_full(plain, key)
        return encrypt_intermittent(plain, key)
    raise KeyError(f"unknown block kind {kind!r}; known: {', '.join(KINDS)}")


def header_pages(key: bytes = b"") -> int:
    """How many pages ``block("header_only", key)`` has encrypted (one per file start)."""
    _, starts = _pick(files_pool(), key)
    return len(starts)
