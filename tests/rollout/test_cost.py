"""The monthly cost estimate: what each instance's own settings add, side by side."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from generator.config.loader import load_config
from generator.instance_groups import instance_groups
from rollout import cost
from rollout.desired import DesiredInstance
from rollout.display import Display
from tests.generator.config_helpers import BASE

MEMBER = {"Resources": {"K": {"Type": "AWS::KMS::Key"}, "A": {"Type": "AWS::CloudWatch::Alarm"}}}
CENTRAL = {"Resources": {"K": {"Type": "AWS::KMS::Key"}}}


def _plan(text: str, overrides_by_instance: list[dict[str, str]]):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounts.yaml"
        path.write_text(text)
        config = load_config(path)
    group = instance_groups(config)[0]
    desired = {
        (f"{i:012d}", "us-east-1"): DesiredInstance(
            f"{i:012d}", "us-east-1", tuple(sorted(o.items())), group
        )
        for i, o in enumerate(overrides_by_instance)
    }
    return SimpleNamespace(config=config, desired=desired)


def _with(detection_lines: str) -> str:
    return BASE.replace("  evaluation_periods: 1\n", "  evaluation_periods: 1\n" + detection_lines)


def test_alarms_are_counted_only_where_they_are_on():
    plan = _plan(_with(""), [{}, {"CloudWatchAlarms": "true"}, {}])

    estimate = cost.estimate(plan, MEMBER, CENTRAL, volumes=10)

    lines = {line.item: line for line in estimate.lines}
    alarms = lines["CloudWatch anomaly and ceiling alarms (where on)"]
    assert alarms.quantity == 10  # one instance of three, ten volumes
    assert alarms.unit == pytest.approx(0.40)
    assert estimate.alarm_instances == 1
    assert lines["ChangedBlocks custom metrics"].quantity == 30
    assert estimate.total == pytest.approx(sum(line.monthly for line in estimate.lines))


def test_verdicts_cost_a_fraction_of_the_alarms_they_replace():
    on = cost.estimate(_plan(_with(""), [{}]), MEMBER, CENTRAL, volumes=None)
    off = cost.estimate(
        _plan(_with("  content_sampling: false\n"), [{}]), MEMBER, CENTRAL, volumes=None
    )

    # The sample reads 2 x 32 blocks a day: cents a month, against $0.40 of alarms.
    assert off.verdicts_per_volume < on.verdicts_per_volume < 0.1 * on.alarms_per_volume
    assert on.verdicts_per_volume - off.verdicts_per_volume == pytest.approx(
        30 * 32 * cost.SAMPLE_PER_BLOCK
    )


def test_an_hourly_schedule_costs_per_backup():
    daily = cost.estimate(_plan(_with(""), [{}]), MEMBER, CENTRAL, volumes=1)
    hourly = cost.estimate(
        _plan(_with(""), [{"BackupSchedule": "cron(0 * ? * * *)"}]), MEMBER, CENTRAL, volumes=1
    )

    assert hourly.verdicts_per_volume == pytest.approx(24 * daily.verdicts_per_volume)


def test_scans_are_priced_per_gb_where_on(capsys):
    plan = _plan(_with(""), [{"ConfirmationScan": "true"}, {}])

    estimate = cost.estimate(plan, MEMBER, CENTRAL, volumes=None)
    cost.render_cost(estimate, Display())

    out = capsys.readouterr().out
    assert estimate.scan_instances == 1
    assert "confirmation scans on in 1 instance(s): $0.05 per GB scanned" in out
    assert "per protected volume" in out
    assert "(detection.cloudwatch_alarms is off)" in out
