"""Onboarding and offboarding by editing the config, and the parameters of each call.

moto ignores operation preferences, CallAs, RetainStacks and auto-deployment, so for those
the tests assert the calls the rollout makes (recorded through botocore events).
"""

from __future__ import annotations

import pytest

from generator.errors import UserError
from rollout.deploy import deploy
from rollout.desired import desired_instances
from rollout.organization import OrgAccount, OrgTree, OrgUnit
from rollout.plan import make_plan
from rollout.render import render
from tests.rollout.conftest import (
    ADMIN,
    PROD_OU,
    WORK_OU,
    A,
    B,
    C,
    config_dict,
    load,
    org_sessions,
)


def _instances(sessions, service: bool) -> list[tuple[str, str]]:
    cfn = sessions.client("cloudformation", ADMIN, "us-east-1")
    extra = {"CallAs": "DELEGATED_ADMIN"} if service else {}
    summaries = cfn.list_stack_instances(StackSetName="bad-member", **extra)["Summaries"]
    return sorted((s["Account"], s["Region"]) for s in summaries)


def test_self_managed_onboard_then_offboard(aws, built, recorder, display):
    data = config_dict("SELF_MANAGED", retain_stacks_on_removal=True)
    config = load(data)
    sessions = org_sessions(config, recorder, {PROD_OU: [C]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (stackset,) = recorder.requests("CreateStackSet")
    assert stackset["PermissionModel"] == "SELF_MANAGED" and "CallAs" not in stackset
    assert stackset["AdministrationRoleARN"] == (
        f"arn:aws:iam::{ADMIN}:role/AWSCloudFormationStackSetAdministrationRole"
    )
    assert stackset["ExecutionRoleName"] == "AWSCloudFormationStackSetExecutionRole"
    assert "AutoDeployment" not in stackset
    # the roles stack goes first to the admin account and to every target account
    roles = [p for p in recorder.requests("CreateStack") if p["StackName"] == "bad-stackset-roles"]
    assert len(roles) == 3

    # Onboard C: listed in the config, then one CreateStackInstances for both regions.
    data["deployment"]["targets"]["accounts"].append({"id": C, "name": "c"})
    config = load(data)
    plan = make_plan(config, sessions, built)
    assert [(c.action, c.account) for c in plan.instances] == [("add", C), ("add", C)]
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert recorder.stackset_operations == 1
    (create,) = recorder.requests("CreateStackInstances")
    assert create["Accounts"] == [C] and sorted(create["Regions"]) == ["eu-west-1", "us-east-1"]
    assert (C, "eu-west-1") in _instances(sessions, service=False)

    # Offboard A: removed from the config, one DeleteStackInstances, stacks retained as
    # the config says.
    data["deployment"]["targets"]["accounts"] = [
        a for a in data["deployment"]["targets"]["accounts"] if a["id"] != A
    ]
    config = load(data)
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (delete,) = recorder.requests("DeleteStackInstances")
    assert delete["Accounts"] == [A] and delete["RetainStacks"] is True
    assert "CallAs" not in delete  # SELF_MANAGED StackSets take no CallAs
    assert all(account != A for account, _ in _instances(sessions, service=False))
    assert recorder.stackset_operations == 1


def test_service_managed_new_account_in_ou_and_ou_removed(aws, built, recorder, display):
    data = config_dict(retain_stacks_on_removal=False)
    config = load(data)
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok

    # An account joins the Production OU (auto-deployment would onboard it in AWS;
    # moto has none): the plan sees it through Organizations and deploy adds it.
    org = sessions.base.client("organizations")
    new = org.create_account(Email="n@example.com", AccountName="n")["CreateAccountStatus"]
    root = org.list_roots()["Roots"][0]["Id"]
    org.move_account(AccountId=new["AccountId"], SourceParentId=root, DestinationParentId=PROD_OU)
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (create,) = recorder.requests("CreateStackInstances")
    assert create["DeploymentTargets"] == {
        "OrganizationalUnitIds": [PROD_OU],
        "Accounts": [new["AccountId"]],
        "AccountFilterType": "INTERSECTION",
    }
    assert create["CallAs"] == "DELEGATED_ADMIN"

    # The Workloads OU is dropped from the config: its instances are deleted, one call.
    data["deployment"]["targets"]["organizational_units"] = [{"id": PROD_OU}]
    config = load(data)
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (delete,) = recorder.requests("DeleteStackInstances")
    assert delete["DeploymentTargets"]["OrganizationalUnitIds"] == [WORK_OU]
    assert delete["DeploymentTargets"]["Accounts"] == [B]
    assert delete["RetainStacks"] is False
    assert all(account != B for account, _ in _instances(sessions, service=True))


def test_calls_carry_the_configured_settings(aws, built, recorder, display):
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (stackset,) = recorder.requests("CreateStackSet")
    assert stackset["PermissionModel"] == "SERVICE_MANAGED"
    assert stackset["CallAs"] == "DELEGATED_ADMIN"
    assert stackset["ManagedExecution"] == {"Active": True}
    assert stackset["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stackset["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert stackset["TemplateURL"].startswith(
        "https://bad-artifacts-222222222222-us-east-1.s3.us-east-1.amazonaws.com/templates/"
    )
    (create,) = recorder.requests("CreateStackInstances")
    assert create["OperationPreferences"] == {
        "RegionConcurrencyType": "PARALLEL",
        "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
        "FailureToleranceCount": 1,
        "MaxConcurrentCount": 2,
        "RegionOrder": ["eu-west-1", "us-east-1"],
    }
    # one group, one call: both OUs, both regions
    assert create["DeploymentTargets"] == {"OrganizationalUnitIds": [PROD_OU, WORK_OU]}


def test_override_change_is_one_update_per_group(aws, built, recorder, display):
    data = config_dict()
    config = load(data)
    sessions = org_sessions(config, recorder, {PROD_OU: [A, C], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok

    data["deployment"]["targets"]["organizational_units"][0]["overrides"] = {
        "detection": {"band_width": 3}
    }
    config = load(data)
    plan = make_plan(config, sessions, built)
    assert sorted((c.action, c.account) for c in plan.instances) == [
        ("update", A),
        ("update", A),
        ("update", C),
        ("update", C),
    ]
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (update,) = recorder.requests("UpdateStackInstances")
    assert update["ParameterOverrides"] == [
        {"ParameterKey": "AnomalyBandWidth", "ParameterValue": "3"}
    ]
    assert update["DeploymentTargets"]["Accounts"] == [A, C]
    assert not make_plan(config, sessions, built).has_changes

    # Dropping the override neutralizes it with the StackSet's own value.
    data["deployment"]["targets"]["organizational_units"][0].pop("overrides")
    config = load(data)
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (update,) = recorder.requests("UpdateStackInstances")
    assert update["ParameterOverrides"] == [
        {"ParameterKey": "AnomalyBandWidth", "ParameterValue": "2"}
    ]
    assert not make_plan(config, sessions, built).has_changes


def test_stackset_parameter_change_is_one_update_stack_set(aws, built, recorder, display):
    data = config_dict()
    sessions = org_sessions(load(data), recorder, {PROD_OU: [A], WORK_OU: [B]})
    assert deploy(load(data), sessions, built, display, poll_seconds=0).ok
    data["detection"] = {"ceiling_percent": 40}
    recorder.reset()
    assert deploy(load(data), sessions, built, display, poll_seconds=0).ok
    (update,) = recorder.requests("UpdateStackSet")
    assert {"ParameterKey": "CeilingPercent", "ParameterValue": "40"} in update["Parameters"]
    assert "Accounts" not in update and "DeploymentTargets" not in update  # every instance
    assert recorder.stackset_operations == 1


def test_service_managed_exclude_one_account_of_a_targeted_ou(aws, built, recorder, display):
    # A has settings of its own and C is then excluded: both carve-outs of one OU.
    data = config_dict(retain_stacks_on_removal=True)
    data["deployment"]["targets"]["accounts"] = [
        {"id": A, "ou": PROD_OU, "overrides": {"detection": {"band_width": 3}}}
    ]
    config = load(data)
    sessions = org_sessions(config, recorder, {PROD_OU: [A, C], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert (C, "us-east-1") in _instances(sessions, service=True)

    data["deployment"]["targets"]["accounts"].append({"id": C, "ou": PROD_OU, "exclude": True})
    config = load(data)
    plan = make_plan(config, sessions, built)
    assert [(c.action, c.account, c.region) for c in plan.instances] == [
        ("remove", C, "eu-west-1"),
        ("remove", C, "us-east-1"),
    ]
    assert plan.unchanged_instances == 4  # A (own settings) and B untouched
    render(plan, display)
    text = display.console.export_text()
    assert f"- {C} us-east-1  excluded, stack retained" in text
    assert f"excluded by the config (1): {C}" in text

    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert recorder.stackset_operations == 1
    (delete,) = recorder.requests("DeleteStackInstances")
    assert delete["DeploymentTargets"] == {
        "OrganizationalUnitIds": [PROD_OU],
        "Accounts": [C],
        "AccountFilterType": "INTERSECTION",
    }
    assert sorted(delete["Regions"]) == ["eu-west-1", "us-east-1"]
    assert delete["RetainStacks"] is True and delete["CallAs"] == "DELEGATED_ADMIN"
    assert _instances(sessions, service=True) == [
        (a, r) for a in sorted((A, B)) for r in ("eu-west-1", "us-east-1")
    ]

    # The exclusion holds: the next deploy makes no StackSet operation.
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert recorder.stackset_operations == 0
    assert not make_plan(config, sessions, built).has_changes


def test_exclusion_naming_the_wrong_ou_is_reported():
    # C sits in a child OU of Production; its exclusion names the child, which is no
    # target, so Production's instances would still reach it.
    data = config_dict()
    data["deployment"]["targets"]["accounts"] = [
        {"id": C, "ou": "ou-ab12-batch003", "exclude": True}
    ]
    tree = OrgTree(
        units={
            "r-ab12": OrgUnit("r-ab12", "Root", None),
            PROD_OU: OrgUnit(PROD_OU, "Production", "r-ab12"),
            "ou-ab12-batch003": OrgUnit("ou-ab12-batch003", "Batch", PROD_OU),
        },
        accounts={C: OrgAccount(C, "c", "ACTIVE", "ou-ab12-batch003")},
    )
    with pytest.raises(UserError) as exc:
        desired_instances(load(data), tree)
    assert str(exc.value) == (
        f"account {C} has exclude: true but OU {PROD_OU} still reaches it (its ou is "
        f"ou-ab12-batch003); set its ou to {PROD_OU} so it is carved out of that OU"
    )
    data["deployment"]["targets"]["accounts"][0]["ou"] = PROD_OU
    assert desired_instances(load(data), tree) == {}


def test_self_managed_excluded_account_is_not_deployed(aws, built, recorder, display):
    data = config_dict("SELF_MANAGED")
    data["deployment"]["targets"]["accounts"].append({"id": C, "exclude": True})
    config = load(data)
    sessions = org_sessions(config, recorder)
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert {a for a, _ in _instances(sessions, service=False)} == {A, B}
    roles = [p for p in recorder.requests("CreateStack") if p["StackName"] == "bad-stackset-roles"]
    assert len(roles) == 3  # the admin account, A and B: none for the excluded C

    # Excluding a deployed account offboards it like removing it, and keeps it listed.
    data["deployment"]["targets"]["accounts"][1]["exclude"] = True
    recorder.reset()
    assert deploy(load(data), sessions, built, display, poll_seconds=0).ok
    (delete,) = recorder.requests("DeleteStackInstances")
    assert delete["Accounts"] == [B] and delete["RetainStacks"] is False
    assert recorder.stackset_operations == 1
    assert {a for a, _ in _instances(sessions, service=False)} == {A}
