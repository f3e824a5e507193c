"""Deterministic zip of the detector Lambda (``lambda/``), content-addressed by sha256.

The same sources always give the same bytes: entries sorted, every timestamp fixed, fixed
permissions, no caches or bytecode. So the S3 key (which carries the sha256) changes only
when the code does, and an unchanged detector is never re-uploaded or redeployed.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from generator.errors import UserError
from generator.naming import Names

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "lambda"

# The earliest date a zip can hold; any fixed value works, this one is conventional.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_NAMES = frozenset({".DS_Store"})


@dataclass(frozen=True)
class LambdaPackage:
    """The built zip; ``key`` is where it goes in every region's artifact bucket."""

    path: Path
    sha256: str
    key: str
    size: int


def _included(relative: Path) -> bool:
    parts = relative.parts
    if any(p in EXCLUDED_DIRS or p.startswith(".") or p.endswith(".egg-info") for p in parts[:-1]):
        return False
    name = parts[-1]
    return not (name in EXCLUDED_NAMES or name.startswith(".") or name.endswith(EXCLUDED_SUFFIXES))


def source_files(source_dir: Path) -> list[Path]:
    """Files to package, relative to ``source_dir``, in zip order (sorted POSIX paths)."""
    files = [
        path.relative_to(source_dir)
        for path in source_dir.rglob("*")
        if path.is_file() and _included(path.relative_to(source_dir))
    ]
    return sorted(files, key=lambda p: p.as_posix())


def zip_bytes(source_dir: Path) -> bytes:
    """The deterministic zip of ``source_dir`` as bytes."""
    files = source_files(source_dir)
    if not files:
        raise UserError(f"nothing to package: {source_dir} has no files")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_DATE)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, whatever the build machine
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (source_dir / relative).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_lambda_zip(out_dir: Path, source_dir: Path = DEFAULT_SOURCE) -> LambdaPackage:
    """Writes the detector zip under ``out_dir`` at its S3 key and describes it.

    Args:
        out_dir: output folder; the zip lands at ``out_dir / key``.
        source_dir: the folder whose contents become the zip's root.

    Raises:
        UserError: ``source_dir`` is missing or empty.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise UserError(f"Lambda source folder {source_dir} does not exist")
    data = zip_bytes(source_dir)
    sha256 = hashlib.sha256(data).hexdigest()
    key = Names.lambda_key(sha256)
    path = Path(out_dir) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return LambdaPackage(path=path, sha256=sha256, key=key, size=len(data))
