"""Onboarding and offboarding by editing the config, and the parameters of each call.

moto ignores operation preferences, CallAs, RetainStacks and auto-deployment, so for those
the tests assert the calls the rollout makes (recorded through botocore events).
"""

from __future__ import annotations

from rollout.deploy import deploy, make_plan
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
