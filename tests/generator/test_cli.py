"""build.py's generator commands: synth (default), validate, schema; exit codes."""

from __future__ import annotations

import json

import pytest

import build
from tests.generator import template_helpers as h


def test_synth_is_the_default_command(tmp_path, capsys):
    out = tmp_path / "dist"
    assert build.main(["--config", str(h.EXAMPLE), "--out", str(out)]) == 0
    for name in ("central", "member", "artifacts"):
        assert (out / f"{name}.json").is_file()
    assert (out / "manifest.json").is_file()
    assert list((out / "lambda").glob("detector-*.zip"))
    assert "stack instances" in capsys.readouterr().out


def test_synth_command_explicitly(tmp_path):
    out = tmp_path / "dist"
    assert build.main(["synth", "--config", str(h.EXAMPLE), "--out", str(out)]) == 0
    assert (out / "member.json").is_file()


def test_invalid_config_exits_2_and_writes_nothing(tmp_path, capsys):
    data = h.raw("example")
    data["security"]["account_id"] = "12345"
    config = h.write_config(data, tmp_path / "cfg")
    out = tmp_path / "dist"
    assert build.main(["--config", str(config), "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert f"{config}:" in err
    assert "security.account_id" in err
    assert "nothing was written" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{config}", "--out", "{out}", "synth"],
        ["synth", "--config", "{config}", "--out", "{out}"],
        ["--config", "{config}", "synth", "--out", "{out}"],
    ],
    ids=["before", "after", "split"],
)
def test_options_before_or_after_the_command_are_honoured(argv, tmp_path, capsys):
    data = h.raw("example")
    data["security"]["account_id"] = "12345"
    config = h.write_config(data, tmp_path / "cfg")
    out = tmp_path / "dist"
    args = [a.format(config=config, out=out) for a in argv]
    assert build.main(args) == 2  # the invalid config given was the one read
    assert f"{config}:" in capsys.readouterr().err
    assert not out.exists()


def test_invalid_config_keeps_the_previous_output(tmp_path):
    out = tmp_path / "dist"
    assert build.main(["--config", str(h.EXAMPLE), "--out", str(out)]) == 0
    before = (out / "member.json").read_bytes()
    bad = h.write_config({"name": "x"}, tmp_path / "cfg")
    assert build.main(["--config", str(bad), "--out", str(out)]) == 2
    assert (out / "member.json").read_bytes() == before


def test_missing_org_id_for_ou_targets_exits_2(tmp_path, capsys):
    data = h.raw("example")
    del data["organization"]["org_id"]
    config = h.write_config(data, tmp_path / "cfg")
    assert build.main(["--config", str(config), "--out", str(tmp_path / "dist")]) == 2
    assert "org_id is required" in capsys.readouterr().err
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("variant", ["example", "self-existing"])
def test_validate_lints_every_template_and_writes_nothing(variant, tmp_path, capsys):
    config = h.write_config(h.raw(variant), tmp_path / "cfg")
    out = tmp_path / "dist"
    assert build.main(["validate", "--config", str(config), "--out", str(out)]) == 0
    assert not out.exists()
    printed = capsys.readouterr().out
    assert "member:" in printed and "(inline)" in printed
    assert "templates clean" in printed


def test_validate_reports_an_invalid_config_with_exit_2(tmp_path, capsys):
    config = h.write_config({"name": "x", "unknown": 1}, tmp_path / "cfg")
    assert build.main(["validate", "--config", str(config)]) == 2
    assert "unknown" in capsys.readouterr().err


def test_schema_prints_a_json_schema(capsys):
    assert build.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema.get("type") == "object"
    assert "deployment" in schema["properties"]


@pytest.mark.parametrize("command", [[], ["synth"], ["validate"], ["schema"]])
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build.main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--out" in out
