"""The member and central templates created as real stacks in moto, and events routed.

moto's CloudFormation silently skips some types (Backup, CloudWatch alarms, SQS queue
policies, SNS subscriptions and topic policies); for those cfn-lint and checkov are the
checks. Everything it does create is checked here, and a backup event put on the default
bus must land in the work queue, a measurement on the central bus in the audit queue.
"""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from moto import mock_aws

from generator import naming
from generator.naming import Names
from tests.generator import template_helpers as h

# moto warns once per resource type it skips; the docstring lists them.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
EVENTS = h.REPO / "tests" / "detector" / "events"


def moto_compatible(template: dict) -> dict:
    """The template with the one shim moto 5.2 needs, and nothing else changed.

    moto passes a KMS key's CloudFormation ``Tags`` (Key/Value) to its tagger, which expects
    ``TagKey``/``TagValue`` and raises KeyError; the key then looks undefined to every
    ``Fn::GetAtt``. Real CloudFormation takes Key/Value.
    """
    template = copy.deepcopy(template)
    for res in template["Resources"].values():
        if res["Type"] == "AWS::KMS::Key" and "Tags" in res["Properties"]:
            res["Properties"]["Tags"] = [
                {"TagKey": t["Key"], "TagValue": t["Value"]} for t in res["Properties"]["Tags"]
            ]
    return template


def _create_member(variant: str) -> dict[str, dict]:
    """Uploads the zip, creates the member stack, returns its resources by logical id."""
    result = h.synth(variant)
    names = Names(h.config(variant).name)
    prefix = names.artifact_bucket_prefix(ACCOUNT)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=f"{prefix}-{REGION}")
    s3.put_object(
        Bucket=f"{prefix}-{REGION}",
        Key=result.lambda_package.key,
        Body=result.lambda_package.path.read_bytes(),
    )
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="backup-anomaly-member",
        TemplateBody=json.dumps(moto_compatible(h.template(variant, "member"))),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": naming.PARAM_CODE_BUCKET_PREFIX, "ParameterValue": prefix},
            {"ParameterKey": naming.PARAM_CODE_KEY, "ParameterValue": result.lambda_package.key},
        ],
    )
    stack = cfn.describe_stacks(StackName="backup-anomaly-member")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = cfn.list_stack_resources(StackName="backup-anomaly-member")
    return {r["LogicalResourceId"]: r for r in summaries["StackResourceSummaries"]}


@pytest.fixture
def aws(monkeypatch):
    from testing.moto_fidelity import faithful_moto

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), faithful_moto():
        yield


@pytest.mark.parametrize("variant", ["example", "self-existing"])
def test_member_stack_creates_its_resources(aws, variant):
    config = h.config(variant)
    names = Names(config.name)
    created = _create_member(variant)
    for logical_id in (
        "MemberKey",
        "MemberKeyAlias",
        "WorkQueue",
        "WorkDeadLetterQueue",
        "StateTable",
        "DetectorLogGroup",
        "DetectorRole",
        "DetectorFunction",
        "DetectorEventSource",
        "BackupCompletedRule",
        "ForwarderRole",
        "AlarmForwardRule",
    ):
        assert created[logical_id]["ResourceStatus"] == "CREATE_COMPLETE", logical_id

    table = boto3.client("dynamodb").describe_table(TableName=names.state_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "VolumeArn", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=names.work_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["VisibilityTimeout"]) == 6 * config.detection.detector.timeout_seconds
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{names.work_dlq}")
    assert int(redrive["maxReceiveCount"]) == config.detection.detector.dlq_max_receive_count

    function = boto3.client("lambda").get_function(FunctionName=names.detector_function)
    env = function["Configuration"]["Environment"]["Variables"]
    assert env["STATE_TABLE"] == names.state_table
    assert env["WORK_QUEUE_URL"] == url
    assert env["ANOMALY_BAND_WIDTH"] == "2"
    assert function["Configuration"]["Role"].endswith(f"role/{names.detector_role(REGION)}")

    mappings = boto3.client("lambda").list_event_source_mappings(
        FunctionName=names.detector_function
    )["EventSourceMappings"]
    assert [m["EventSourceArn"].rsplit(":", 1)[-1] for m in mappings] == [names.work_queue]

    roles = {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}
    assert {names.detector_role(REGION), names.forwarder_role(REGION)} <= roles


def _event_entry(sample: str, **detail) -> dict:
    event = json.loads((EVENTS / sample).read_text())
    event["detail"].update(detail)
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
    }


def _drain(url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_completed_backup_events_reach_the_work_queue_and_others_do_not(aws):
    if not (EVENTS / "backup-job-completed-ebs.json").exists():
        pytest.skip("sample backup event missing")
    config = h.config("example")
    names = Names(config.name)
    _create_member("example")
    vault = config.backup.vault_name
    events = boto3.client("events")
    events.put_events(
        Entries=[
            _event_entry("backup-job-completed-ebs.json", backupVaultName=vault),
            _event_entry("backup-job-completed-ebs.json", backupVaultName=vault, state="RUNNING"),
            _event_entry("backup-job-completed-ebs.json", backupVaultName="someone-elses"),
        ]
    )
    url = boto3.client("sqs").get_queue_url(QueueName=names.work_queue)["QueueUrl"]
    received = _drain(url)
    assert len(received) == 1
    assert received[0]["detail"]["state"] == "COMPLETED"
    assert received[0]["detail"]["backupVaultName"] == vault


def test_central_stack_routes_measurements_to_the_audit_queue(aws):
    config = h.config("self-existing")
    names = Names(config.name)
    # The correlator runs the detector's zip, from the home region's artifact bucket.
    from generator.layout import layout

    result = h.synth("self-existing")
    bucket = layout(config).artifact_bucket(config.security.home_region)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket,
        Key=result.lambda_package.key,
        Body=result.lambda_package.path.read_bytes(),
    )
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName="backup-anomaly-central",
        TemplateBody=json.dumps(moto_compatible(h.template("self-existing", "central"))),
    )
    stack = cfn.describe_stacks(StackName="backup-anomaly-central")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    buses = {b["Name"] for b in boto3.client("events").list_event_buses()["EventBuses"]}
    assert names.central_bus in buses
    topics = boto3.client("sns").list_topics()["Topics"]
    assert [t["TopicArn"].rsplit(":", 1)[-1] for t in topics] == [names.alert_topic]

    boto3.client("events").put_events(
        Entries=[
            {
                "Source": naming.EVENT_SOURCE,
                "DetailType": naming.MEASUREMENT_DETAIL_TYPE,
                "Detail": json.dumps({"volumeId": "vol-1", "changedBlocks": 42}),
                "EventBusName": names.central_bus,
            },
            {
                "Source": "somebody.else",
                "DetailType": naming.MEASUREMENT_DETAIL_TYPE,
                "Detail": "{}",
                "EventBusName": names.central_bus,
            },
        ]
    )
    url = boto3.client("sqs").get_queue_url(QueueName=names.audit_queue)["QueueUrl"]
    received = _drain(url)
    assert [m["detail"]["changedBlocks"] for m in received] == [42]
