"""The commands end to end through build.py, with the real generated templates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import build
from generator.config.loader import load_config
from tests.rollout.conftest import CallRecorder, org_sessions

# moto names every resource type its CloudFormation skips (known, see DESIGN.md).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "accounts.yaml"


def test_plan_deploy_plan_package(aws, tmp_path, capsys):
    org_sessions(load_config(EXAMPLE), CallRecorder(), {"ou-ab12-prod0001": ["777777777777"]})
    common = ["--config", str(EXAMPLE), "--out", str(tmp_path / "dist")]

    assert build.main(["plan", *common, "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "+ 777777777777 us-east-1  CeilingPercent=30" in out
    assert "+ 555555555555 us-east-1" in out and "555555555555 eu-west-1" not in out
    assert "Estimated monthly cost" in out and "per protected volume" in out

    assert build.main(["deploy", *common, "--poll-seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "all 5 stack instance(s) are CURRENT" in out

    assert build.main(["plan", *common, "--detailed-exitcode", "--volumes", "20"]) == 0
    out = capsys.readouterr().out
    assert "Summary: instances 0 to add, 0 to update, 0 to remove" in out
    assert "total about $" in out

    assert build.main(["package", *common]) == 0
    assert "0 uploaded, 4 already present" in capsys.readouterr().out


def test_missing_bucket_is_a_user_error(aws, tmp_path, capsys):
    org_sessions(load_config(EXAMPLE), CallRecorder())
    code = build.main(["package", "--config", str(EXAMPLE), "--out", str(tmp_path)])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demo_tells_its_story_and_backtest_replays_it_to_the_same_verdicts(tmp_path, capsys):
    assert build.main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    subjects = re.findall(r"^  email \(day (\d+)\): (.*)$", out, re.M)
    # The wave: one incident across two accounts, three volumes, not three emails a volume.
    assert any(
        "CRITICAL" in s and "3 volumes in 2 accounts (payments-prod, analytics)" in s
        for _, s in subjects
    ), subjects
    # Low-and-slow: flagged by content at its first backup, resolved when it stopped.
    assert any("[HIGH] Backup anomaly: 1 volume in analytics" in s for _, s in subjects)
    assert any(s.startswith("[RESOLVED]") for _, s in subjects)
    # The unlisted member never reports: an operational incident, once.
    assert [s for _, s in subjects if "silent" in s] == [
        "[OPERATIONAL] Backup anomaly detection: 2 account-region(s) silent"
    ]
    assert "Malware scan (GuardDuty): THREATS FOUND" in out
    # Where the account keeps its CloudWatch alarms: into ALARM and back to OK are mailed,
    # the first INSUFFICIENT_DATA -> OK of each alarm is not.
    alarms = [s for _, s in subjects if s.startswith(("Backup anomaly alarm", "Resolved:"))]
    assert any(" is ALARM (was OK) in account 444444444444" in s for s in alarms)
    assert any(s.startswith("Resolved: backup anomaly alarm") for s in alarms)
    assert "INSUFFICIENT_DATA -> OK" in out and "INSUFFICIENT_DATA" not in "".join(alarms)
    assert len(re.findall(r"^    \S+: CRITICAL +Malware found: ", out, re.M)) == 3
    # The month-end batch of ordinary data is no alert.
    assert not any("reports" in s for _, s in subjects)
    assert "  NO  " not in out
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")

    # The Lambda's verdicts, replayed offline from the audit trail, come out the same.
    events = tmp_path / "demo-events.jsonl"
    verdicts = tmp_path / "verdicts.jsonl"
    assert build.main(["backtest", "--events", str(events), "--verdicts", str(verdicts)]) == 0
    published = {
        e["detail"]["measurementId"]: e["detail"]["verdict"]
        for e in map(json.loads, events.read_text().splitlines())
    }
    replayed = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert len(replayed) == len(published) > 100
    for v in replayed:
        assert v["severity"] == published[v["measurementId"]]["severity"], v
        assert v["score"] == pytest.approx(published[v["measurementId"]]["score"], abs=1e-3)
    assert {v["severity"] for v in replayed} >= {"none", "high", "critical"}


def test_aws_error_is_reported_without_traceback(aws, tmp_path, capsys):
    # No organization exists: Organizations answers with an error, not the code.
    code = build.main(["import-accounts", "--config", str(EXAMPLE), "--dry-run"])
    assert code == 1
    err = capsys.readouterr().err
    assert "AWS error in ListRoots: AWSOrganizationsNotInUseException" in err
    assert "Traceback" not in err


def test_endpoint_url_against_a_moto_server(tmp_path, monkeypatch, capsys):
    """Across a process-like boundary: every call goes over HTTP to a moto server."""
    import socket

    from moto.server import ThreadedMotoServer

    from testing.moto_fidelity import faithful_moto

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="localhost", port=port, verbose=False)
    server.start()
    url = f"http://localhost:{port}"
    try:
        with faithful_moto():
            with monkeypatch.context() as env:
                env.setenv("AWS_ENDPOINT_URL", url)  # the organization is built there too
                org_sessions(load_config(EXAMPLE), CallRecorder())
            common = ["--config", str(EXAMPLE), "--out", str(tmp_path), "--endpoint-url", url]
            assert build.main(["deploy", *common, "--poll-seconds", "0"]) == 0
            assert build.main(["plan", *common, "--detailed-exitcode"]) == 0
    finally:
        server.stop()
    assert "all 3 stack instance(s) are CURRENT" in capsys.readouterr().out
