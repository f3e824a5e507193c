"""No account silently unprotected: targets the organization does not hold stop a deploy.

The organization is built from a correct config; the plan and the deploy then read a config
with the mistakes users make (an OU id one character off, an account under the wrong OU, an
account that left or was suspended), loaded from a file so each problem has its line.
"""

from __future__ import annotations

import pytest

import build
from generator.config.loader import load_config
from generator.errors import UserError
from rollout.deploy import deploy
from rollout.plan import make_plan
from tests.rollout.conftest import (
    PROD_OU,
    WORK_OU,
    A,
    B,
    C,
    config_dict,
    dump,
    load,
    org_sessions,
)

TYPO_OU = "ou-ab12-prod0002"  # one character off PROD_OU


def _config(tmp_path, **edit):
    data = config_dict()
    targets = data["deployment"]["targets"]
    if "ous" in edit:
        targets["organizational_units"] = edit["ous"]
    targets["accounts"] = edit.get("accounts", [])
    return load_config(dump(data, tmp_path / "accounts.yaml")), tmp_path / "accounts.yaml"


def _line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_ou_id_one_character_off_is_an_error_with_its_line(
    aws, built, recorder, display, tmp_path
):
    sessions = org_sessions(load(config_dict()), recorder, {PROD_OU: [A], WORK_OU: [B]})
    config, path = _config(tmp_path, ous=[{"id": TYPO_OU, "name": "Production"}])
    plan = make_plan(config, sessions, built)
    (problem,) = plan.target_errors
    assert problem.location == f"{path}:{_line_of(path, TYPO_OU)}"
    assert problem.message.startswith(f"OU {TYPO_OU} (Production) is not in the organization")

    recorder.reset()
    with pytest.raises(UserError, match="1 target"):
        deploy(config, sessions, built, display, poll_seconds=0)
    assert recorder.stackset_operations == 0 and recorder.calls["CreateStackSet"] == 0
    assert f"{path}:{_line_of(path, TYPO_OU)}: OU {TYPO_OU}" in display.console.export_text()


def test_accounts_under_the_wrong_ou_absent_or_suspended_are_named(
    aws, built, recorder, display, tmp_path
):
    sessions = org_sessions(load(config_dict()), recorder, {PROD_OU: [A], WORK_OU: [B, C]})
    sessions.client("organizations", "111111111111", "us-east-1").close_account(AccountId=C)
    config, path = _config(
        tmp_path,
        accounts=[
            {"id": A, "ou": WORK_OU},  # it is in PROD_OU
            {"id": "999999999999", "ou": WORK_OU, "name": "gone"},
            {"id": C, "ou": WORK_OU},
        ],
    )
    messages = {
        p.message.split(" ")[1]: p.message for p in make_plan(config, sessions, built).target_errors
    }
    assert messages["999999999999"].startswith(
        "account 999999999999 (gone) is not in the organization"
    )
    assert f"is not in OU {WORK_OU} (it is in {PROD_OU}): " in messages[A]
    assert f"set its ou to {PROD_OU}" in messages[A]
    # moto closes an account as SUSPENDED, AWS as PENDING_CLOSURE, then SUSPENDED.
    assert messages[C].endswith(": StackSets deploys nothing there")
    assert " is SUSPENDED" in messages[C] or " is PENDING_CLOSURE" in messages[C]


def test_targets_marked_may_be_absent_are_notes_and_deploy_goes_ahead(
    aws, built, recorder, display, tmp_path
):
    sessions = org_sessions(load(config_dict()), recorder, {PROD_OU: [A], WORK_OU: [B]})
    config, _path = _config(
        tmp_path,
        ous=[{"id": PROD_OU}, {"id": TYPO_OU, "may_be_absent": True}],
        accounts=[{"id": "999999999999", "ou": PROD_OU, "may_be_absent": True}],
    )
    plan = make_plan(config, sessions, built)
    assert len(plan.targets) == 2 and plan.target_errors == []
    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert result.ok, display.console.export_text()
    assert "expected" in display.console.export_text()


def test_plan_exits_2_on_a_target_the_organization_does_not_hold(aws, tmp_path, capsys):
    from tests.rollout.conftest import CallRecorder

    org_sessions(load(config_dict()), CallRecorder(), {PROD_OU: [A], WORK_OU: [B]})
    data = config_dict()
    data["deployment"]["targets"]["organizational_units"][0]["id"] = TYPO_OU
    path = dump(data, tmp_path / "accounts.yaml")
    assert build.main(["plan", "--config", str(path), "--out", str(tmp_path / "d")]) == 2
    captured = capsys.readouterr()
    assert f"OU {TYPO_OU}" in captured.out
    assert "target(s) the organization does not hold" in captured.err


def test_a_stackset_role_of_the_same_name_that_is_not_ours_is_reported(
    aws, built, recorder, display, tmp_path
):
    from testing.organization import assume

    data = config_dict("SELF_MANAGED")
    sessions = org_sessions(load(data), recorder)
    assume(A, "us-east-1").client("iam").create_role(
        RoleName="AWSCloudFormationStackSetExecutionRole",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )
    config = load_config(dump(data, tmp_path / "accounts.yaml"))
    (problem,) = make_plan(config, sessions, built).target_errors
    assert problem.message.startswith(
        f"account {A} already has a role AWSCloudFormationStackSetExecutionRole that this "
        "deployment did not create"
    )
    with pytest.raises(UserError):
        deploy(config, sessions, built, display, poll_seconds=0)

    # Named otherwise, there is nothing in the way.
    data["deployment"]["stackset_roles"] = {"execution_role_name": "bad-stackset-execution"}
    renamed = load_config(dump(data, tmp_path / "renamed.yaml"))
    assert make_plan(renamed, sessions, built).target_errors == []
