"""Synthesis: every artifact, the manifest, determinism and all-or-nothing output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from generator import synth as synth_module
from generator.errors import UserError
from generator.synth import MANIFEST, synthesize
from tests.generator import template_helpers as h


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_two_synths_are_byte_identical(tmp_path):
    config = h.config("example")
    synthesize(config, tmp_path / "a")
    synthesize(h.config_from(h.raw("example")), tmp_path / "b")  # a fresh parse, too
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_output_lists_every_template_and_the_zip():
    result = h.synth("example-stackset")
    assert sorted(result.templates) == ["artifacts", "central", "member", "stackset"]
    assert all(p.is_file() for p in result.templates.values())
    assert result.lambda_package.path.is_file()
    assert result.manifest_path == result.out_dir / MANIFEST
    member = result.templates["member"].read_bytes()
    assert result.member_template_sha256 == hashlib.sha256(member).hexdigest()
    assert sorted(h.synth("self-existing").templates) == [
        "artifacts",
        "central",
        "member",
        "stackset",
        "stackset-roles",
    ]


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_manifest_lists_every_artifact_with_its_sha256(variant):
    result = h.synth(variant)
    manifest = json.loads(result.manifest_path.read_text())
    files = {
        p.relative_to(result.out_dir).as_posix()
        for p in result.out_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert {a["path"] for a in manifest["artifacts"]} == files
    for artifact in manifest["artifacts"]:
        data = (result.out_dir / artifact["path"]).read_bytes()
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
        assert artifact["bytes"] == len(data)
    (zip_entry,) = [a for a in manifest["artifacts"] if a["kind"] == "lambda-zip"]
    assert zip_entry["key"] == result.lambda_package.key
    (member,) = [a for a in manifest["artifacts"] if a["name"] == "member"]
    assert member["key"] == result.member_template_key
    assert member["fits_inline"] is True


def test_target_count_is_exact_for_listed_accounts():
    targets = json.loads(h.synth("self-existing").manifest_path.read_text())["targets"]
    # 444444444444 in two regions, 555555555555 in one
    assert targets["stack_instances"] == 3
    assert targets["accounts"] == 2
    assert targets["exact"] is True
    assert "note" not in targets


def test_target_count_is_a_lower_bound_with_ou_targets():
    targets = json.loads(h.synth("example").manifest_path.read_text())["targets"]
    assert targets["exact"] is False
    assert targets["stack_instances"] == 3  # 444444444444 x 2 regions + 555555555555 x 1
    assert "lower bound" in targets["note"]
    targets = json.loads(h.synth("service-existing").manifest_path.read_text())["targets"]
    assert targets == {
        "accounts": 0,
        "organizational_units": 2,
        "regions": ["ap-southeast-4", "eu-central-2"],
        "stack_instances": 0,
        "exact": False,
        "note": targets["note"],
    }


def test_manifest_names_the_stackset_roles_stack_for_self_managed():
    stacks = json.loads(h.synth("self-existing").manifest_path.read_text())["stacks"]
    assert stacks["stackset-roles"] == {
        "stack_name": "backup-anomaly-stackset-roles",
        "accounts": ["111111111111", "444444444444", "555555555555"],
        "region": "us-east-1",
        "template": "stackset-roles",
    }
    example = json.loads(h.synth("example").manifest_path.read_text())
    assert "stackset-roles" not in example["stacks"]


def test_manifest_names_the_stacks_and_buckets():
    manifest = json.loads(h.synth("example").manifest_path.read_text())
    assert manifest["stacks"]["central"]["account"] == "333333333333"
    assert manifest["stacks"]["artifacts"]["account"] == "222222222222"
    assert manifest["artifact_buckets"] == {
        "eu-west-1": "backup-anomaly-artifacts-222222222222-eu-west-1",
        "us-east-1": "backup-anomaly-artifacts-222222222222-us-east-1",
    }


def test_a_failure_leaves_the_previous_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "dist"
    synthesize(h.config("example"), out)
    before = _tree(out)

    def broken(*args, **kwargs):
        raise RuntimeError("template bug")

    monkeypatch.setattr(synth_module.stackset, "build", broken)
    with pytest.raises(RuntimeError, match="template bug"):
        synthesize(h.config("self-existing"), out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]  # no staging left behind


def test_a_failure_writes_nothing_when_there_was_no_output(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_module.central, "build", lambda config, key: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        synthesize(h.config("example"), tmp_path / "dist")
    assert list(tmp_path.iterdir()) == []


def test_resynth_replaces_stale_files(tmp_path):
    out = tmp_path / "dist"
    synthesize(h.config("self-existing"), out)
    assert (out / "stackset-roles.json").exists()
    synthesize(h.config("example"), out)
    assert not (out / "stackset-roles.json").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_previous_output(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="refusing to replace"):
        synthesize(h.config("example"), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
