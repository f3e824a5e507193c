"""deploy against a moto organization: first deploy, no-op second deploy, changes."""

from __future__ import annotations

from rollout.deploy import deploy
from rollout.plan import make_plan
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


def test_large_central_template_goes_through_s3(aws, built, recorder, display):
    import json

    body = json.loads(built.templates["central"].read_text())
    body["Description"] = "x" * 1000
    body["Metadata"] = {"Padding": ["y" * 1000] * 60}  # over the 51,200-byte inline limit
    built.templates["central"].write_text(json.dumps(body))
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    (create,) = [p for p in recorder.requests("CreateStack") if p["StackName"] == "bad-central"]
    assert "TemplateBody" not in create
    assert create["TemplateURL"].startswith(
        "https://bad-artifacts-222222222222-us-east-1.s3.us-east-1.amazonaws.com/templates/central-"
    )
    assert not make_plan(config, sessions, built).has_changes


def test_suspended_account_is_left_alone(aws, built, recorder, display):
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A, C], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    from moto.organizations.models import organizations_backends

    backend = organizations_backends["111111111111"]["aws"]
    next(a for a in backend.accounts if a.id == C).status = "SUSPENDED"  # no API suspends
    plan = make_plan(config, sessions, built)
    assert not plan.instances, [(c.action, c.account) for c in plan.instances]


def test_delegated_admin_passes_call_as_on_every_stackset_call(aws, built, recorder, display):
    """A delegated administrator that omits CallAs acts as SELF and sees no StackSet of
    the organization: every StackSet call (reads and waits too) must carry it."""
    import boto3

    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    model = boto3.client("cloudformation", region_name="us-east-1").meta.service_model
    takes_call_as = {
        name
        for name in model.operation_names
        if "CallAs" in model.operation_model(name).input_shape.members
    }
    called = {name for name, _ in recorder.params if name in takes_call_as}
    assert {"DescribeStackSet", "ListStackInstances", "DescribeStackSetOperation"} <= called
    missing = sorted(
        name
        for name, params in recorder.params
        if name in takes_call_as and params.get("CallAs") != "DELEGATED_ADMIN"
    )
    assert not missing, missing


def test_artifacts_go_only_to_buckets_the_admin_account_owns(aws, built, recorder, display):
    """Bucket names are predictable: a bucket of that name in another account (created
    first, in a region not yet deployed) must not receive the detector's code, which
    every member account would then run."""
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    calls = [
        (name, params)
        for name, params in recorder.params
        if name in ("HeadBucket", "HeadObject", "PutObject")
    ]
    assert {name for name, _ in calls} == {"HeadBucket", "HeadObject", "PutObject"}
    assert all(params.get("ExpectedBucketOwner") == ADMIN for _, params in calls), calls


def _roster(sessions, config):
    from correlator.roster import read_roster

    client = sessions.client("dynamodb", config.security.account_id, "us-east-1")
    return [
        (e.entry.account, e.entry.region, e.entry.name, e.entry.interval_seconds)
        for e in read_roster(client, "bad-central")
    ]


def test_deploy_writes_the_roster_the_correlator_checks_for_silence(aws, built, recorder, display):
    data = config_dict()
    # B reports every 6 hours (its own schedule); A keeps the daily default.
    data["deployment"]["targets"]["accounts"] = [
        {
            "id": B,
            "name": "analytics",
            "ou": WORK_OU,
            "overrides": {"backup": {"schedule": "cron(0 0/6 ? * * *)"}},
        }
    ]
    config = load(data)
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})

    result = deploy(config, sessions, built, display, poll_seconds=0)

    assert result.ok, display.console.export_text()
    assert _roster(sessions, config) == [
        (A, "eu-west-1", "member-4444", 86400),  # not named in the config: the org's name
        (A, "us-east-1", "member-4444", 86400),
        (B, "eu-west-1", "analytics", 21600),
        (B, "us-east-1", "analytics", 21600),
    ]
    text = display.console.export_text()
    assert "roster: 4 account-region(s) expected" in text
    # Written before the StackSet is touched: an instance that fails is still expected.
    assert text.index("roster: 4") < text.index("StackSet bad-member: created")
    recorder.reset()
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    assert "roster: 4 account-region(s) expected to report (unchanged)" in (
        display.console.export_text()
    )
    assert recorder.calls["BatchWriteItem"] == 0

    # An account leaving the targets leaves the roster: its silence is no longer news.
    data["deployment"]["targets"]["organizational_units"] = [{"id": WORK_OU, "name": "W"}]
    smaller = load(data)
    assert deploy(smaller, sessions, built, display, poll_seconds=0).ok
    assert [row[:2] for row in _roster(sessions, smaller)] == [
        (B, "eu-west-1"),
        (B, "us-east-1"),
    ]


def test_a_roster_refused_by_dynamodb_fails_the_deploy_by_name(aws, built, recorder, display):
    config = load(config_dict())
    sessions = org_sessions(config, recorder, {PROD_OU: [A], WORK_OU: [B]})
    assert deploy(config, sessions, built, display, poll_seconds=0).ok
    client = sessions.client("dynamodb", config.security.account_id, "us-east-1")
    client.delete_table(TableName="bad-central")  # e.g. deleted by hand after the stack

    result = deploy(config, sessions, built, display, poll_seconds=0)

    assert not result.ok
    assert "bad-central" in result.error and "ResourceNotFoundException" in result.error
    # The members were still rolled out (the roster is the correlator's, not theirs).
    assert _instances(sessions, config) == [
        (A, "eu-west-1"),
        (A, "us-east-1"),
        (B, "eu-west-1"),
        (B, "us-east-1"),
    ]
