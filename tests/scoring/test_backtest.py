"""``build.py backtest`` end to end, and the parts it is made of."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

import build
from backtest import simulate
from backtest.cloudwatch import read_changed_blocks
from backtest.events import read_events
from backtest.replay import model, replay
from backup_anomaly.scoring import HistoryEntry, Observation, judge
from tests.scoring.helpers import content, plain

VOLUME_ARN = "arn:aws:ec2:us-east-1:444444444444:volume/vol-0abc"
CONTRACT = {"measurementId", "volumeId", "completionTime", "severity", "score", "reasons"}


def envelope(index: int, changed: int, *, written: int | None = 100_000, sampled=None, **extra):
    """A Backup Change Measured envelope of vol-0abc's measurement ``index``."""
    when = datetime(2026, 5, 1, 5, 41, 5, 921000, tzinfo=UTC) + timedelta(days=index)
    detail = {
        "measurementId": f"{VOLUME_ARN}/snap-{index}/snap-{index + 1}",
        "account": "444444444444",
        "region": "us-east-1",
        "volumeId": "vol-0abc",
        "volumeArn": VOLUME_ARN,
        "previousSnapshotId": f"snap-{index}",
        "snapshotId": f"snap-{index + 1}",
        "changedBlocks": changed,
        "changedBytes": changed * 524288,
        "percentOfVolume": 1.2,
        "volumeSizeGiB": 100,
        "writtenBlocks": written,
        "content": sampled,
        "verdict": {"severity": "none", "score": 0, "reasons": []},
        "backupJobId": f"job-{index}",
        "resourceType": "EBS",
        "completionTime": when.isoformat(),
        "measuredAt": (when + timedelta(seconds=30)).isoformat(),
        **extra,
    }
    return {
        "version": "0",
        "id": f"id-{index}",
        "detail-type": "Backup Change Measured",
        "source": "backup-anomaly-detection",
        "account": "444444444444",
        "region": "us-east-1",
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [VOLUME_ARN],
        "detail": detail,
    }


def counts(c):
    return {
        "sampledBlocks": c.sampled_blocks,
        "pages": c.pages,
        "incompressibleBefore": c.incompressible_before,
        "incompressibleAfter": c.incompressible_after,
    }


def write_lines(path: Path, items) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items))
    return path


def run(*args: str) -> int:
    return build.main(["backtest", *args])


def verdicts(path: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {line["measurementId"]: line for line in lines}
    assert len(by_id) == len(lines)
    return by_id


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    """A small labelled fleet (40 volumes x 30 days)."""
    path = tmp_path_factory.mktemp("fleet") / "events.jsonl"
    simulate.write(str(path), simulate.STANDARD, 40, 30, 3)
    return path


# -- simulation -----------------------------------------------------------------------------


def test_simulation_is_reproducible():
    first = list(simulate.generate(simulate.STRESS, 6, 20, 11))
    assert first == list(simulate.generate(simulate.STRESS, 6, 20, 11))
    assert first != list(simulate.generate(simulate.STRESS, 6, 20, 12))


def test_simulate_writes_the_same_bytes_for_the_same_seed(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    simulate.write(str(first), simulate.STANDARD, 5, 15, 8)
    simulate.write(str(second), simulate.STANDARD, 5, 15, 8)
    assert first.read_bytes() == second.read_bytes()


def test_simulated_events_carry_labels_and_the_contract(fleet):
    events = [json.loads(line) for line in fleet.read_text().splitlines()]
    details = [e["detail"] for e in events]
    assert all(e["detail-type"] == "Backup Change Measured" for e in events)
    attacks = [d for d in details if d.get("label") == "attack"]
    assert attacks
    assert {d["attack"] for d in attacks} <= set(simulate.ATTACK_KINDS)
    assert all(d["attackDay"] >= 0 and d["attackPercent"] > 0 for d in attacks)
    sampled = [d["content"] for d in details if d["content"] is not None]
    assert set(sampled[0]) == {
        "sampledBlocks",
        "pages",
        "incompressibleBefore",
        "incompressibleAfter",
    }
    assert all(d["writtenBlocks"] >= 1 for d in details)


# -- the CLI --------------------------------------------------------------------------------


def test_backtest_writes_one_verdict_per_measurement_and_prints_rates(fleet, tmp_path, capsys):
    out = tmp_path / "verdicts.jsonl"
    assert run("--events", str(fleet), "--verdicts", str(out)) == 0
    printed = capsys.readouterr().out
    lines = verdicts(out)
    assert len(lines) == len(fleet.read_text().splitlines())
    assert all(CONTRACT <= set(line) for line in lines.values())
    assert {line["severity"] for line in lines.values()} <= {
        "none",
        "low",
        "medium",
        "high",
        "critical",
    }
    assert "false alerts per 1,000 volume-days:" in printed
    assert "high or above" in printed
    assert "attack=full" in printed
    assert "full >= 10 %, first backup" in printed


def test_duplicates_and_any_order_give_the_same_verdicts(fleet, tmp_path):
    ordered = tmp_path / "ordered.jsonl"
    assert run("--events", str(fleet), "--verdicts", str(ordered)) == 0
    lines = fleet.read_text().splitlines()
    rng = random.Random(5)
    messy = lines + rng.sample(lines, 200)  # redelivered events
    rng.shuffle(messy)
    shuffled_events = write_lines(tmp_path / "messy-events.jsonl", messy)
    shuffled = tmp_path / "shuffled.jsonl"
    assert run("--events", str(shuffled_events), "--verdicts", str(shuffled)) == 0
    assert verdicts(shuffled) == verdicts(ordered)


def test_bad_lines_are_reported_with_their_number_and_nothing_is_written(tmp_path, capsys):
    good = [envelope(i, 1500, sampled=counts(plain(random.Random(i)))) for i in range(4)]
    as_string = envelope(4, 1500)
    as_string["detail"]["changedBlocks"] = "1500"
    naive = envelope(5, 1500)
    naive["detail"]["completionTime"] = "2026-05-06T05:41:05"
    bad_content = envelope(
        6,
        1500,
        sampled={
            "sampledBlocks": 1,
            "pages": 128,
            "incompressibleBefore": 129,
            "incompressibleAfter": 0,
        },
    )
    events = write_lines(
        tmp_path / "events.jsonl",
        [good[0], "{not json", good[1], as_string, naive, bad_content, good[2]],
    )
    out = tmp_path / "verdicts.jsonl"
    assert run("--events", str(events), "--verdicts", str(out)) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0] == f"{events}:2: not JSON: Expecting property name enclosed in double quotes "
        "at column 2"
    )
    assert err[1] == f'{events}:4: detail.changedBlocks must be an integer, got "1500"'
    assert err[2] == f"{events}:5: detail.completionTime has no timezone: '2026-05-06T05:41:05'"
    assert err[3] == f"{events}:6: detail.content.incompressible_before (129) exceeds pages (128)"
    assert err[4] == f"error: 4 invalid line(s) in {events}; nothing was written"
    assert not out.exists()


def test_unreadable_input_is_exit_2(tmp_path, capsys):
    assert run("--events", str(tmp_path / "missing.jsonl")) == 2
    assert "cannot read the events" in capsys.readouterr().err
    assert run() == 2


def test_other_events_are_skipped_and_counted_and_sqs_bodies_read(tmp_path, capsys):
    rng = random.Random(1)
    items = [envelope(i, 1800, sampled=counts(plain(rng))) for i in range(3)]
    items[1] = {"MessageId": "m-1", "Body": json.dumps(items[1])}
    reset = {"detail-type": "Backup Baseline Reset", "detail": {}}
    events = write_lines(tmp_path / "events.jsonl", [*items, reset, reset])
    out = tmp_path / "verdicts.jsonl"
    assert run("--events", str(events), "--verdicts", str(out)) == 0
    assert "skipped 2 events of another detail-type (2 'Backup Baseline Reset')" in (
        capsys.readouterr().out
    )
    assert len(verdicts(out)) == 3


def test_a_duplicate_that_disagrees_is_reported_and_the_first_kept(tmp_path, capsys):
    rng = random.Random(6)
    items = [envelope(i, 1800, sampled=counts(plain(rng))) for i in range(5)]
    other = json.loads(json.dumps(items[2]))
    other["detail"]["changedBlocks"] = 99_000
    events = write_lines(tmp_path / "events.jsonl", [*items, other])
    out = tmp_path / "verdicts.jsonl"
    assert run("--events", str(events), "--verdicts", str(out)) == 0
    printed = capsys.readouterr().out
    assert "1 duplicate events dropped" in printed
    assert (
        "warning: 1 duplicate measurementId(s) with different numbers (first kept), "
        "e.g. lines 3 and 6" in printed
    )
    assert verdicts(out)[items[2]["detail"]["measurementId"]]["severity"] == "none"


def test_content_null_is_judged_on_size_alone(tmp_path):
    rng = random.Random(2)
    items = [envelope(i, 1800, sampled=counts(plain(rng))) for i in range(30)]
    items.append(envelope(30, 40_000, sampled=None))
    events = write_lines(tmp_path / "events.jsonl", items)
    out = tmp_path / "verdicts.jsonl"
    assert run("--events", str(events), "--verdicts", str(out)) == 0
    last = verdicts(out)[items[-1]["detail"]["measurementId"]]
    assert "content not sampled: judged on size alone" in last["reasons"]
    assert last["severity"] in ("medium", "high", "critical")
    assert last["completionTime"] == "2026-05-31T05:41:05.921000+00:00"


def test_input_verdicts_are_ignored_and_recomputed(tmp_path):
    rng = random.Random(3)
    items = [envelope(i, 1800, sampled=counts(plain(rng))) for i in range(10)]
    for item in items:
        item["detail"]["verdict"] = {"severity": "critical", "score": 99, "reasons": ["x"]}
    out = tmp_path / "verdicts.jsonl"
    assert (
        run("--events", str(write_lines(tmp_path / "e.jsonl", items)), "--verdicts", str(out)) == 0
    )
    assert {line["severity"] for line in verdicts(out).values()} == {"none"}


def test_replay_gives_the_verdicts_the_lambda_would_have_given(tmp_path):
    # The Lambda: judge each measurement with the entries it stored before it.
    rng = random.Random(4)
    stored: list[HistoryEntry] = []
    expected = {}
    items = []
    previous = None
    for i in range(40):
        share = 0.02 if i != 33 else 0.3
        sampled = plain(rng) if i != 33 else content(20, 3900)
        item = envelope(i, round(share * 100_000), sampled=counts(sampled))
        when = datetime.fromisoformat(item["detail"]["completionTime"])
        observation = Observation(when, round(share * 100_000), 100_000, sampled, previous)
        verdict = judge(observation, stored)
        stored.append(HistoryEntry(observation, verdict.severity))
        expected[item["detail"]["measurementId"]] = verdict
        items.append(item)
        previous = when
    read = read_events(str(write_lines(tmp_path / "e.jsonl", reversed(items))))
    replayed = replay(read.measurements, model("ours"))
    assert len(replayed.judged) == 40
    for item in replayed.judged:
        assert item.verdict == expected[item.measurement.measurement_id]
    assert expected[items[33]["detail"]["measurementId"]].severity.value == "critical"


@pytest.mark.slow
def test_out_writes_three_real_pngs(fleet, tmp_path, capsys):
    plots = tmp_path / "plots"
    assert run("--events", str(fleet), "--out", str(plots)) == 0
    assert sorted(p.name for p in plots.iterdir()) == ["scores.png", "timeline.png", "tradeoff.png"]
    for png in plots.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000


def test_simulate_writes_events_under_out_and_backtests_them(tmp_path, capsys, monkeypatch):
    from backtest import plots

    monkeypatch.setattr(plots, "write_all", lambda *a, **k: [])  # plots have their own test
    assert run("--simulate", "12", "--days", "20", "--seed", "3", "--out", str(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "events.jsonl").exists()
    assert "simulated 12 volumes x 20 days (standard fleet, seed 3)" in printed
    assert "model ours: " in printed


@pytest.mark.parametrize("name", ["size-only", "cloudwatch-band"])
def test_comparison_models_run(fleet, tmp_path, name, capsys):
    out = tmp_path / "v.jsonl"
    assert run("--events", str(fleet), "--model", name, "--verdicts", str(out)) == 0
    assert f"model {name}: " in capsys.readouterr().out
    assert len(verdicts(out)) == len(fleet.read_text().splitlines())


def test_knobs_can_be_set_and_bad_ones_are_exit_2(fleet, tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert run("--events", str(fleet), "--set", "use_content=false", "--verdicts", str(out)) == 0
    assert all(
        "content not used: judged on size alone" in line["reasons"]
        for line in verdicts(out).values()
    )
    assert run("--events", str(fleet), "--set", "floor=1") == 2
    assert run("--events", str(fleet), "--set", "high_score=1") == 2
    assert "score thresholds must increase" in capsys.readouterr().err


def _with_verdicts(base: str, line: str) -> str:
    edited = base.replace(
        "  evaluation_periods: 1\n", f"  evaluation_periods: 1\n  verdicts:\n    {line}\n"
    )
    assert edited != base
    return edited


def test_the_configs_verdict_settings_are_the_backtests_own(fleet, tmp_path, capsys):
    from tests.generator.config_helpers import BASE

    strict = tmp_path / "strict.yaml"
    strict.write_text(_with_verdicts(BASE, "floor_percent: 90"))
    default, configured = tmp_path / "default.jsonl", tmp_path / "configured.jsonl"
    missing = str(tmp_path / "none.yaml")  # no config file: the defaults

    assert run("--config", missing, "--events", str(fleet), "--verdicts", str(default)) == 0
    assert run("--config", str(strict), "--events", str(fleet), "--verdicts", str(configured)) == 0

    flagged = [v for v in verdicts(default).values() if v["severity"] != "none"]
    assert flagged, "the fleet has attacks"
    # A floor of 90 % of the written data a day: what is flagged is (nearly) total rewrites.
    strict_flagged = [v for v in verdicts(configured).values() if v["severity"] != "none"]
    assert len(strict_flagged) < len(flagged) / 2
    assert any(
        "below the floor (90 % of written data a day" in reason
        for v in verdicts(configured).values()
        for reason in v["reasons"]
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(_with_verdicts(BASE, "floor_percent: 900"))
    capsys.readouterr()
    assert run("--config", str(broken), "--events", str(fleet)) == 2
    assert "floor_percent: must be at most 100" in capsys.readouterr().err.replace("\n", " ")


# -- CloudWatch history ---------------------------------------------------------------------


@mock_aws
def test_from_cloudwatch_reads_changed_blocks_of_every_volume():
    client = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC).replace(microsecond=0)
    for volume, base in (("vol-1", 1000), ("vol-2", 50)):
        for day in range(12):
            client.put_metric_data(
                Namespace="BackupAnomalyDetection",
                MetricData=[
                    {
                        "MetricName": "ChangedBlocks",
                        "Dimensions": [{"Name": "VolumeId", "Value": volume}],
                        "Timestamp": now - timedelta(days=12 - day),
                        "Value": float(base * (20 if day == 11 else 1)),
                    }
                ],
            )
    found = read_changed_blocks(
        boto3.Session(region_name="us-east-1"),
        "BackupAnomalyDetection",
        ["us-east-1"],
        days=30,
        now=now,
    )
    assert sorted({m.volume_id for m in found}) == ["vol-1", "vol-2"]
    assert len(found) == 24
    assert all(m.written_blocks is None and m.content is None for m in found)
    judged = replay(found, model("ours")).judged
    last = max(
        (j for j in judged if j.measurement.volume_id == "vol-1"), key=lambda j: j.observation.epoch
    )
    assert last.observation.changed_blocks == 20_000
    assert "written data unknown: judged on absolute change" in " ".join(last.verdict.reasons)
    assert last.verdict.severity.value != "none"


def test_an_accounts_own_verdict_settings_judge_its_volumes(fleet, tmp_path):
    # The account 444444444444 of this config sets its own floor (an OU's would do the
    # same): its volumes are judged with it, every other account's with the organization's.
    from tests.generator.config_helpers import BASE

    own = BASE.replace(
        "            band_width: 3\n",
        "            band_width: 3\n            verdicts:\n              floor_percent: 90\n",
    )
    assert own != BASE
    config = tmp_path / "own.yaml"
    config.write_text(own)
    events = [json.loads(line) for line in fleet.read_text().splitlines()]
    volumes = sorted({e["detail"]["volumeArn"] for e in events})
    theirs = set(volumes[: len(volumes) // 2])
    for event in events:  # half the fleet belongs to the account with its own floor
        mine = event["detail"]["volumeArn"] in theirs
        event["account"] = "444444444444" if mine else "999999999999"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(e) + "\n" for e in events))
    default, judged = tmp_path / "default.jsonl", tmp_path / "judged.jsonl"

    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    assert run("--config", str(base), "--events", str(mixed), "--verdicts", str(default)) == 0
    assert run("--config", str(config), "--events", str(mixed), "--verdicts", str(judged)) == 0

    arn = {e["detail"]["measurementId"]: e["detail"]["volumeArn"] for e in events}
    before, after = verdicts(default), verdicts(judged)
    for measurement, verdict in after.items():
        if arn[measurement] not in theirs:  # the organization's settings: unchanged
            assert verdict["severity"] == before[measurement]["severity"]
    floored = [
        v for m, v in after.items() if arn[m] in theirs and any("90 %" in r for r in v["reasons"])
    ]
    assert floored, "the account's own floor was applied"
