"""Mistakes a user makes meet one clear line and exit 2 (1 for AWS), never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from botocore.exceptions import SSOTokenLoadError

import build
from generator.config import loader
from tests.generator import template_helpers as h


def test_an_unwritable_out_folder_names_the_folder_not_a_temporary_path(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "dist"
    assert build.main(["--config", str(h.EXAMPLE), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: cannot create it" in err
    assert ".tmp-" not in err and "internal error" not in err


def test_synth_lists_every_file_it_wrote_aligned(tmp_path, capsys):
    assert build.main(["--config", str(h.EXAMPLE), "--out", str(tmp_path / "d")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if " bytes" in line]
    names = [row.split()[0] for row in rows]
    assert names[-1] == "manifest.json" and any(n.startswith("lambda/") for n in names)
    assert len({row.index(" bytes") for row in rows}) == 1  # one column, whatever the name


def test_a_tab_in_the_yaml_is_named_as_a_tab(tmp_path, capsys):
    text = h.EXAMPLE.read_text().replace("  management_account_id:", "\tmanagement_account_id:")
    config = tmp_path / "tab.yaml"
    config.write_text(text)
    assert build.main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:15:" in err and "a tab character at column 1" in err


def test_a_huge_file_is_refused_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(loader, "MAX_CONFIG_BYTES", 1000)
    config = tmp_path / "big.yaml"
    config.write_text("x: " + "y" * 2000 + "\n")
    assert build.main(["validate", "--config", str(config)]) == 2
    assert "MB a config may have" in capsys.readouterr().err


def test_the_size_limit_fits_ten_times_the_largest_measured_organization():
    # benchmarks/config_scale.py: 10,000 accounts and 200 OUs are about 0.9 MB.
    assert loader.MAX_CONFIG_BYTES >= 10 * 1_000_000


def test_thousands_of_problems_are_capped_and_the_exit_code_kept(tmp_path, capsys):
    accounts = "".join(f'      - id: "{i:012d}"\n        bogus_{i}: 1\n' for i in range(150))
    text = h.EXAMPLE.read_text().replace("    accounts:\n", "    accounts:\n" + accounts, 1)
    config = tmp_path / "many.yaml"
    config.write_text(text)
    assert build.main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        len([line for line in err if line.startswith(str(config))]) == build.MAX_REPORTED_PROBLEMS
    )
    assert err[-2].startswith("... and ") and err[-2].endswith(" more")
    assert err[-1].endswith("problem(s) in the config; nothing was written.")


@pytest.mark.parametrize("days", ["0", "3", "15", "9999"])
def test_demo_days_are_checked_before_anything_runs(days, capsys):
    assert build.main(["demo", "--days", days]) == 2
    assert "--days must be between" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_endpoint_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    port = _closed_port()
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code = build.main(
        [
            "plan",
            "--config",
            str(h.EXAMPLE),
            "--out",
            str(tmp_path / "d"),
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot reach AWS at http://127.0.0.1:{port}" in err
    assert "internal error" not in err and "Traceback" not in err


def test_the_standard_retry_variables_are_honoured(monkeypatch):
    import boto3

    from rollout.sessions import DEFAULT_MAX_ATTEMPTS, client_config

    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    assert client_config(boto3.Session()).retries == {
        "mode": "standard",
        "max_attempts": DEFAULT_MAX_ATTEMPTS,
    }
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    config = client_config(boto3.Session())
    assert config.retries == {"mode": "adaptive"}  # botocore reads max_attempts itself
    client = boto3.Session().client("sts", region_name="us-east-1", config=config)
    assert client.meta.config.retries["total_max_attempts"] == 2


def test_an_sso_session_not_logged_in_says_how_to_log_in(monkeypatch, tmp_path, capsys):
    from rollout import commands

    def expired(*_args, **_kwargs):
        raise SSOTokenLoadError(error_msg="Token for sso-profile does not exist")

    monkeypatch.setattr(commands, "_setup", expired)
    code = build.main(["plan", "--config", str(h.EXAMPLE), "--profile", "sso-profile"])
    assert code == 2
    assert "run `aws sso login --profile sso-profile`" in capsys.readouterr().err


def test_endpoint_url_is_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        build.main(["plan", "--help"])
    assert "--endpoint-url" in capsys.readouterr().out


@pytest.mark.slow
def test_the_demo_never_reads_the_users_profile(tmp_path):
    env = {**os.environ, "AWS_PROFILE": "no-such-profile"}
    done = subprocess.run(
        [sys.executable, "build.py", "demo", "--days", "16", "--out", str(tmp_path)],
        cwd=h.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ProfileNotFound" not in done.stderr
