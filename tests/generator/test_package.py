"""The detector zip: deterministic bytes, no caches, content-addressed key."""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path

import pytest

from generator.errors import UserError
from generator.package import DEFAULT_SOURCE, FIXED_DATE, build_lambda_zip


def _sources(root: Path) -> Path:
    src = root / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "handler.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    (src / "pkg" / "b.py").write_text("B = 2\n")
    (src / "pkg" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0cache")
    (src / "pkg" / "stale.pyc").write_bytes(b"\0")
    (src / ".pytest_cache").mkdir()
    (src / ".pytest_cache" / "README.md").write_text("cache")
    (src / "pkg" / ".DS_Store").write_bytes(b"mac")
    return src


def test_zip_is_sorted_with_fixed_dates_and_permissions_and_no_caches(tmp_path):
    package = build_lambda_zip(tmp_path / "out", _sources(tmp_path))
    with zipfile.ZipFile(package.path) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == ["pkg/__init__.py", "pkg/b.py", "pkg/handler.py"]
        assert {i.date_time for i in infos} == {FIXED_DATE}
        assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}
        assert archive.read("pkg/b.py") == b"B = 2\n"


def test_same_sources_give_the_same_bytes_whatever_the_mtimes(tmp_path):
    src = _sources(tmp_path)
    first = build_lambda_zip(tmp_path / "one", src)
    for path in src.rglob("*.py"):
        os.utime(path, (time.time() + 3600, time.time() + 3600))
    second = build_lambda_zip(tmp_path / "two", src)
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_key_size_and_sha256_describe_the_file(tmp_path):
    package = build_lambda_zip(tmp_path / "out", _sources(tmp_path))
    data = package.path.read_bytes()
    assert package.sha256 == hashlib.sha256(data).hexdigest()
    assert package.size == len(data)
    assert package.sha256 in package.key
    assert package.key.endswith(".zip")
    assert package.path == tmp_path / "out" / package.key


def test_a_change_in_the_code_changes_the_key(tmp_path):
    src = _sources(tmp_path)
    before = build_lambda_zip(tmp_path / "one", src)
    (src / "pkg" / "b.py").write_text("B = 3\n")
    after = build_lambda_zip(tmp_path / "two", src)
    assert before.key != after.key


def test_empty_or_missing_source_is_a_user_error(tmp_path):
    (tmp_path / "empty" / "__pycache__").mkdir(parents=True)
    with pytest.raises(UserError, match="nothing to package"):
        build_lambda_zip(tmp_path / "out", tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        build_lambda_zip(tmp_path / "out", tmp_path / "missing")


def test_the_repository_detector_packages_with_its_handler(tmp_path):
    package = build_lambda_zip(tmp_path)
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
    if (DEFAULT_SOURCE / "backup_anomaly" / "handler.py").exists():
        assert "backup_anomaly/handler.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert names == sorted(names)
