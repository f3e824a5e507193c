"""Failures surface: a failed instance, a failed operation, a busy StackSet, drift.

moto reports every stack instance CURRENT and every operation SUCCEEDED, so a failed
instance is injected at the client boundary: a botocore ``after-call`` hook rewrites the
parsed ListStackInstances answer, exactly where AWS's answer would differ. Operation
waiting and drift detection (not implemented in moto) run against botocore's Stubber.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from generator.errors import UserError
from rollout.deploy import deploy
from rollout.drift import detect
from rollout.sessions import AwsSessions
from rollout.stacks import DeployFailed
from rollout.stackset_ops import OperationRunner
from tests.rollout.conftest import PROD_OU, WORK_OU, A, B, config_dict, load, org_sessions

REASON = "ResourceLogicalId:DetectorFunction, ResourceStatusReason:Access denied (Service: Lambda)"


def _fail_instance(account: str, region: str):
    def hook(parsed, **_kwargs):
        for summary in parsed.get("Summaries", []):
            if (summary["Account"], summary["Region"]) == (account, region):
                summary["Status"] = "OUTDATED"
                summary["StatusReason"] = REASON
                summary["StackInstanceStatus"] = {"DetailedStatus": "FAILED"}

    return ("after-call.cloudformation.ListStackInstances", hook)


def test_failed_instance_is_listed_and_deploy_fails(aws, built, recorder, display):
    config = load(config_dict())
    sessions = org_sessions(
        config,
        recorder,
        {PROD_OU: [A], WORK_OU: [B]},
        extra_observers=[_fail_instance(B, "eu-west-1")],
    )
    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert not result.ok
    assert [(i.account, i.region) for i in result.not_current] == [(B, "eu-west-1")]
    out = display.console.export_text()
    assert "1 of 4 stack instance(s) are not CURRENT" in out
    assert f"{B} eu-west-1: OUTDATED (FAILED) {REASON}" in out

    # The next deploy retries exactly that instance, in one operation.
    recorder.reset()
    deploy(config, sessions, built, display, poll_seconds=0)
    (update,) = recorder.requests("UpdateStackInstances")
    assert update["DeploymentTargets"]["Accounts"] == [B] and update["Regions"] == ["eu-west-1"]


def test_deploy_command_exit_code_on_failed_instance(aws, built, recorder, display, monkeypatch):
    import rollout.commands as commands
    from rollout import artifacts

    config = load(config_dict())
    sessions = org_sessions(
        config,
        recorder,
        {PROD_OU: [A], WORK_OU: [B]},
        extra_observers=[_fail_instance(A, "us-east-1")],
    )
    # The command's own wiring, with the organization's sessions and the small templates.
    monkeypatch.setattr(commands, "_setup", lambda args: (config, sessions, display))
    monkeypatch.setattr(artifacts, "build", lambda config, out: built)

    class Args:
        poll_seconds = 0.0
        out = "unused"

    assert commands.deploy(Args()) == 1


def _stubbed_cfn():
    client = boto3.client("cloudformation", region_name="us-east-1")
    return client, Stubber(client)


def test_operation_in_progress_waits_then_retries(display):
    cfn, stub = _stubbed_cfn()
    args = {"StackSetName": "s", "Accounts": ["444444444444"], "Regions": ["us-east-1"]}
    stub.add_client_error("create_stack_instances", "OperationInProgressException")
    stub.add_response(
        "list_stack_set_operations",
        {"Summaries": [{"OperationId": "other", "Status": "RUNNING"}]},
        {"StackSetName": "s"},
    )
    stub.add_response(
        "describe_stack_set_operation",
        {"StackSetOperation": {"OperationId": "other", "Status": "RUNNING"}},
        {"StackSetName": "s", "OperationId": "other"},
    )
    stub.add_response(
        "describe_stack_set_operation",
        {"StackSetOperation": {"OperationId": "other", "Status": "SUCCEEDED"}},
        {"StackSetName": "s", "OperationId": "other"},
    )
    stub.add_response("create_stack_instances", {"OperationId": "mine"}, args)
    stub.add_response(
        "describe_stack_set_operation",
        {"StackSetOperation": {"OperationId": "mine", "Status": "SUCCEEDED"}},
        {"StackSetName": "s", "OperationId": "mine"},
    )
    runner = OperationRunner(cfn, "s", {}, display, poll_seconds=0)
    with stub:
        assert runner.run("create", lambda: cfn.create_stack_instances(**args)) == "mine"
        stub.assert_no_pending_responses()
    assert "another operation is running" in display.console.export_text()


def test_failed_operation_names_the_failed_instances(display):
    cfn, stub = _stubbed_cfn()
    stub.add_response("update_stack_set", {"OperationId": "op"}, {"StackSetName": "s"})
    stub.add_response(
        "describe_stack_set_operation",
        {
            "StackSetOperation": {
                "OperationId": "op",
                "Status": "FAILED",
                "StatusDetails": {"FailedStackInstancesCount": 1},
            }
        },
        {"StackSetName": "s", "OperationId": "op"},
    )
    stub.add_response(
        "list_stack_set_operation_results",
        {
            "Summaries": [
                {"Account": A, "Region": "us-east-1", "Status": "FAILED", "StatusReason": "quota"}
            ]
        },
        {"StackSetName": "s", "OperationId": "op"},
    )
    runner = OperationRunner(cfn, "s", {}, display, poll_seconds=0)
    with stub, pytest.raises(DeployFailed, match=f"{A} us-east-1: quota"):
        runner.run("update", lambda: cfn.update_stack_set(StackSetName="s"))


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["IN_SYNC", "IN_SYNC"], 0),
        (["IN_SYNC", "DRIFTED"], 2),
    ],
)
def test_drift_exit_codes(statuses, code, display):
    config = load(config_dict("SELF_MANAGED"))
    cfn, stub = _stubbed_cfn()
    stub.add_response("detect_stack_set_drift", {"OperationId": "d"})
    stub.add_response(
        "describe_stack_set_operation",
        {"StackSetOperation": {"OperationId": "d", "Status": "SUCCEEDED"}},
    )
    stub.add_response(
        "list_stack_instances",
        {
            "Summaries": [
                {
                    "Account": A,
                    "Region": "us-east-1",
                    "Status": "CURRENT",
                    "DriftStatus": statuses[0],
                },
                {
                    "Account": B,
                    "Region": "us-east-1",
                    "Status": "CURRENT",
                    "DriftStatus": statuses[1],
                },
            ]
        },
    )

    class Sessions:
        def client(self, service, account, region):
            return cfn

    with stub:
        report = detect(config, Sessions(), display, poll_seconds=0)
        stub.assert_no_pending_responses()
    assert report.exit_code == code
    assert ("DRIFTED" in display.console.export_text()) == (code == 2)


def test_unknown_profile_is_a_user_error():
    class Args:
        profile = "no-such-profile"
        role_name = None
        endpoint_url = None

    with pytest.raises(UserError, match="no-such-profile"):
        AwsSessions.from_args(Args())


def test_drift_as_delegated_admin_passes_call_as_on_every_call(display):
    config = load(config_dict())  # SERVICE_MANAGED, delegated administrator
    cfn, stub = _stubbed_cfn()
    call_as = {"CallAs": "DELEGATED_ADMIN"}
    stub.add_response(
        "detect_stack_set_drift",
        {"OperationId": "d"},
        {"StackSetName": "bad-member", "OperationPreferences": ANY, **call_as},
    )
    stub.add_response(
        "describe_stack_set_operation",
        {"StackSetOperation": {"OperationId": "d", "Status": "SUCCEEDED"}},
        {"StackSetName": "bad-member", "OperationId": "d", **call_as},
    )
    stub.add_response(
        "list_stack_instances", {"Summaries": []}, {"StackSetName": "bad-member", **call_as}
    )

    class Sessions:
        def client(self, service, account, region):
            return cfn

    with stub:
        assert detect(config, Sessions(), display, poll_seconds=0).exit_code == 0
        stub.assert_no_pending_responses()


def _hide_instance(account: str, region: str):
    def hook(parsed, **_kwargs):
        parsed["Summaries"] = [
            s
            for s in parsed.get("Summaries", [])
            if (s["Account"], s["Region"]) != (account, region)
        ]

    return ("after-call.cloudformation.ListStackInstances", hook)


def test_instance_that_was_never_created_fails_the_deploy(aws, built, recorder, display):
    """An OU operation SUCCEEDS without an instance for an account that StackSets did not
    find in that OU (moved, or not yet visible): that account is unprotected, so the
    deploy must say so and fail rather than report every (existing) instance CURRENT."""
    config = load(config_dict())
    sessions = org_sessions(
        config,
        recorder,
        {PROD_OU: [A], WORK_OU: [B]},
        extra_observers=[_hide_instance(A, "us-east-1")],
    )
    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert not result.ok
    assert [(i.account, i.region, i.status) for i in result.not_current] == [
        (A, "us-east-1", "MISSING")
    ]
    assert f"{A} us-east-1: MISSING" in display.console.export_text()


def test_govcloud_rollout_names_its_own_partition():
    """In aws-us-gov the StackSet's administration role, the role assumed into accounts
    and the template URLs all live in that partition; "arn:aws:" names nothing there."""
    from generator.templates.stackset import template_url
    from rollout.artifacts import object_url
    from rollout.desired import stackset_spec

    data = config_dict("SELF_MANAGED", regions=["us-gov-west-1", "us-gov-east-1"])
    data["deployment"]["operation_preferences"]["region_order"] = ["us-gov-east-1"]
    data["security"]["home_region"] = "us-gov-west-1"
    config = load(data)
    spec = stackset_spec(config, "{}", "https://x", "lambda/k.zip")
    assert spec.layout.administration_role_arn == (
        "arn:aws-us-gov:iam::222222222222:role/AWSCloudFormationStackSetAdministrationRole"
    )

    class Sessions:
        endpoint_url = None

    assert object_url(Sessions(), "b", "cn-north-1", "k") == (
        "https://b.s3.cn-north-1.amazonaws.com.cn/k"
    )
    assert ".amazonaws.com/" in template_url(config, "k")

    sts = boto3.client("sts", region_name="us-gov-west-1")
    stub = Stubber(sts)
    stub.add_response(
        "get_caller_identity",
        {"Account": "111111111111", "Arn": "arn:aws-us-gov:iam::111111111111:user/me"},
    )
    stub.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "AKIAEXAMPLEEXAMPLE12",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": "2030-01-01T00:00:00Z",
            }
        },
        {
            "RoleArn": "arn:aws-us-gov:iam::222222222222:role/OrganizationAccountAccessRole",
            "RoleSessionName": ANY,
        },
    )
    sessions = AwsSessions(base=boto3.Session(region_name="us-gov-west-1"))
    sessions._clients[("111111111111", "sts", "us-gov-west-1")] = sts
    sessions._new_client = lambda session, service, region: sts
    with stub:
        sessions.session("222222222222")
        stub.assert_no_pending_responses()
