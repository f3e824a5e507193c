"""Re-onboarding an account whose backup vault was retained: the new stack adopts it."""

from __future__ import annotations

import pytest

from generator.naming import PARAM_ADOPT_VAULT
from rollout.artifacts import build
from rollout.deploy import deploy
from rollout.plan import make_plan
from testing.organization import assume
from tests.rollout.conftest import A, B, config_dict, load, org_sessions

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


def test_a_retained_vault_is_adopted_and_stays_adopted(aws, recorder, display, tmp_path):
    data = config_dict("SELF_MANAGED")
    config = load(data)
    sessions = org_sessions(config, recorder)
    vault = config.backup.vault_name
    # Left behind by an earlier onboarding (RetainExceptOnCreate), with recovery points.
    assume(A, "eu-west-1").client("backup").create_backup_vault(BackupVaultName=vault)
    built = build(config, tmp_path / "dist")

    plan = make_plan(config, sessions, built)
    overrides = {(c.account, c.region): dict(c.overrides) for c in plan.instances}
    assert overrides[(A, "eu-west-1")][PARAM_ADOPT_VAULT] == "true"
    assert PARAM_ADOPT_VAULT not in overrides[(A, "us-east-1")]
    assert PARAM_ADOPT_VAULT not in overrides[(B, "eu-west-1")]
    assert any(f"backup vault {vault} exists" in note for note in plan.notes)

    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert result.ok, display.console.export_text()
    creates = recorder.requests("CreateStackInstances")
    adopting = [
        r
        for r in creates
        if {"ParameterKey": PARAM_ADOPT_VAULT, "ParameterValue": "true"}
        in r.get("ParameterOverrides", [])
    ]
    assert [(r["Accounts"], r["Regions"]) for r in adopting] == [([A], ["eu-west-1"])]

    # Later plans keep the override: dropping it would make the stack create the vault.
    again = make_plan(config, sessions, built)
    assert again.instances == [], [(c.account, c.region, c.reason) for c in again.instances]
