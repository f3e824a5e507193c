"""deploy against a moto organization: first deploy, no-op second deploy, changes."""

from __future__ import annotations

from rollout.deploy import deploy, make_plan
from tests.rollout.conftest import (
    ADMIN,
    PROD_OU,
    WORK_OU,
    A,
    B,
    config_dict,
    load,
    org_sessions,
)


def _instances(sessions, config):
    cfn = sessions.client("cloudformation", ADMIN, "us-east-1")
    kwargs = (
        {"CallAs": "DELEGATED_ADMIN"}
        if config.deployment.permission_model.value == "SERVICE_MANAGED"
        else {}
    )
    return sorted(
        (s["Account"], s["Region"])
        for s in cfn.list_stack_instances(StackSetName="bad-member", **kwargs)["Summaries"]
    )


def test_service_managed_deploy_then_nothing_to_do(aws, built, recorder, display):
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})
    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert result.ok, display.console.export_text()
    assert _instances(sessions, config) == [
        (A, "eu-west-1"),
        (A, "us-east-1"),
        (B, "eu-west-1"),
        (B, "us-east-1"),
    ]
    # one CreateStackSet and one CreateStackInstances for the single instance group
    assert recorder.calls["CreateStackSet"] == 1
    assert recorder.calls["CreateStackInstances"] == 1

    recorder.reset()
    again = deploy(config, sessions, built, display, poll_seconds=0)
    assert again.ok
    assert recorder.stackset_operations == 0, recorder.calls
    assert not make_plan(config, sessions, built).has_changes


def test_self_managed_deploy_then_nothing_to_do(aws, built, recorder, display):
    config = load(config_dict("SELF_MANAGED"))
    sessions = org_sessions(config, recorder)
    result = deploy(config, sessions, built, display, poll_seconds=0)
    assert result.ok, display.console.export_text()
    assert _instances(sessions, config) == [
        (A, "eu-west-1"),
        (A, "us-east-1"),
        (B, "eu-west-1"),
        (B, "us-east-1"),
    ]
    assert recorder.calls["CreateStackInstances"] == 1
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert recorder.stackset_operations == 0, recorder.calls
