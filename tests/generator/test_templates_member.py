"""The member template (StackSet body): wiring, environment, IAM, backups, limits."""

from __future__ import annotations

import json

import pytest

from generator import naming
from generator.naming import Names
from generator.synth import INLINE_TEMPLATE_BYTES
from tests.generator import template_helpers as h


def _member(variant: str) -> dict:
    return h.template(variant, "member")


def _function(tpl: dict) -> dict:
    return h.one(tpl, "AWS::Lambda::Function")["Properties"]


def _rule(tpl: dict, name: str) -> dict:
    rules = [
        r["Properties"]
        for r in h.resources(tpl, "AWS::Events::Rule").values()
        if r["Properties"]["Name"] == name
    ]
    assert len(rules) == 1, name
    return rules[0]


# -- backup event pattern -----------------------------------------------------------------


def test_create_mode_matches_completed_jobs_in_our_vault():
    config = h.config("example")
    rule = _rule(_member("example"), Names(config.name).backup_rule)
    assert rule["EventPattern"] == {
        "source": ["aws.backup"],
        "detail-type": ["Backup Job State Change"],
        "detail": {
            "state": ["COMPLETED"],
            "resourceType": ["EBS", "EC2"],
            "backupVaultName": [config.backup.vault_name],
        },
    }
    assert "EventBusName" not in rule  # the default bus, where AWS Backup puts its events


def test_existing_mode_filters_on_vaults_and_plans():
    rule = _rule(_member("self-existing"), Names("backup-anomaly").backup_rule)
    assert rule["EventPattern"]["detail"] == {
        "state": ["COMPLETED"],
        "resourceType": ["EBS", "EC2"],
        "backupVaultName": ["Default", "prod-vault"],
        "createdBy": {"backupPlanId": ["plan-1234"]},
    }


def test_existing_mode_without_filters_matches_every_completed_job():
    config = h.config("service-existing")
    rule = _rule(_member("service-existing"), Names(config.name).backup_rule)
    assert rule["EventPattern"]["detail"] == {
        "state": ["COMPLETED"],
        "resourceType": ["EBS", "EC2"],
    }


def test_resource_types_follow_the_config():
    config = h.config("self-create")
    rule = _rule(_member("self-create"), Names(config.name).backup_rule)
    assert rule["EventPattern"]["detail"]["resourceType"] == ["EBS"]
    assert _function(_member("self-create"))["Environment"]["Variables"]["RESOURCE_TYPES"] == "EBS"


def test_backup_rule_targets_the_work_queue_with_a_dead_letter_queue():
    tpl = _member("example")
    rule = _rule(tpl, Names("backup-anomaly").backup_rule)
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]}


# -- queue, function, event source ----------------------------------------------------------


def test_queue_redrives_to_dlq_and_outlasts_the_function():
    tpl = _member("example")
    config = h.config("example")
    queue = tpl["Resources"]["WorkQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]
    }
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    timeout = _function(tpl)["Timeout"]
    assert timeout == config.detection.detector.timeout_seconds
    assert queue["VisibilityTimeout"] >= 6 * timeout
    for logical_id in ("WorkQueue", "WorkDeadLetterQueue"):
        props = tpl["Resources"][logical_id]["Properties"]
        assert props["KmsMasterKeyId"] == {"Fn::GetAtt": ["MemberKey", "Arn"]}


def test_queue_policies_admit_only_the_rule_that_sends_to_them():
    tpl = _member("example")
    senders = {
        # Backup jobs, the heartbeat's schedule and finished scans are the detector's work.
        "WorkQueue": ["BackupCompletedRule", "HeartbeatRule", "ScanResultRule"],
        "WorkDeadLetterQueue": ["BackupCompletedRule"],
        "ForwardDeadLetterQueue": ["AlarmForwardRule", "ScanResultRule"],
    }
    policies = h.resources(tpl, "AWS::SQS::QueuePolicy").values()
    assert sorted(p["Properties"]["Queues"][0]["Ref"] for p in policies) == sorted(senders)
    for policy in policies:
        (queue,) = [q["Ref"] for q in policy["Properties"]["Queues"]]
        allow, deny = h.statements(policy["Properties"]["PolicyDocument"])
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == ["sqs:SendMessage"]
        arns = [{"Fn::GetAtt": [rule, "Arn"]} for rule in senders[queue]]
        assert allow["Condition"] == {
            "ArnEquals": {"aws:SourceArn": arns[0] if len(arns) == 1 else arns}
        }
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_function_runtime_code_and_sizing():
    config = h.config("example")
    fn = _function(_member("example"))
    assert fn["Runtime"] in ("python3.12", "python3.13")
    assert fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == "backup_anomaly.handler.lambda_handler"
    assert fn["Code"] == {
        "S3Bucket": {"Fn::Sub": "${CodeBucketPrefix}-${AWS::Region}"},
        "S3Key": {"Ref": naming.PARAM_CODE_KEY},
    }
    assert fn["MemorySize"] == {"Ref": "DetectorMemoryMB"}
    assert _member("example")["Parameters"]["DetectorMemoryMB"]["Default"] == str(
        config.detection.detector.memory_mb
    )
    assert fn["FunctionName"] == Names(config.name).detector_function
    assert fn["KmsKeyArn"] == {"Fn::GetAtt": ["MemberKey", "Arn"]}


def test_environment_is_exactly_the_detector_contract():
    config = h.config("example")
    env = _function(_member("example"))["Environment"]["Variables"]
    assert env == {
        "STATE_TABLE": {"Ref": "StateTable"},
        "METRIC_NAMESPACE": config.detection.metric_namespace,
        "ALARM_PREFIX": config.detection.alarm_prefix,
        "CLOUDWATCH_ALARMS": {"Ref": "CloudWatchAlarms"},
        "ANOMALY_BAND_WIDTH": {"Ref": "AnomalyBandWidth"},
        "CEILING_PERCENT": {"Ref": "CeilingPercent"},
        "ALARM_PERIOD_SECONDS": {"Ref": "AlarmPeriodSeconds"},
        "EVALUATION_PERIODS": {"Ref": "EvaluationPeriods"},
        "RESOURCE_TYPES": "EBS,EC2",
        "CENTRAL_BUS_ARN": {
            "Fn::Sub": Names(config.name).central_bus_arn(
                config.security.home_region, config.security.account_id, "${AWS::Partition}"
            )
        },
        "EVENT_SOURCE": naming.EVENT_SOURCE,
        "WORK_QUEUE_URL": {"Ref": "WorkQueue"},
        # Overridable per OU or account (a parameter), unlike the count's worker count.
        "EBS_MAX_REQUESTS_PER_SECOND": {"Ref": "EbsMaxRequestsPerSecond"},
        "EBS_GET_BLOCK_REQUESTS_PER_SECOND": {"Ref": "EbsGetBlockRequestsPerSecond"},
        "CONTENT_SAMPLES": "32",
        "CONTENT_SAMPLES_MAX": "256",
        "EBS_COUNT_WORKERS": "8",
        "ALARM_ACTIONS_ENABLED": "true",
        "SCANNER_ROLE_ARN": {
            "Fn::If": ["ConfirmationScansOn", {"Fn::GetAtt": ["ScannerRole", "Arn"]}, ""]
        },
        # The verdict's knobs, overridable but the history's length (the item's size).
        "CONTENT_SAMPLING": {"Ref": "ContentSampling"},
        "CONFIRMATION_SCAN": {"Ref": "ConfirmationScan"},
        "SECURITY_HUB_FINDINGS": {"Ref": "SecurityHubFindings"},
        "FLOOR_PERCENT": {"Ref": "FloorPercent"},
        "FLOOR_BLOCKS": {"Ref": "FloorBlocks"},
        "PRIOR_DAILY_PERCENT": {"Ref": "PriorDailyPercent"},
        "PRIOR_SPREAD": {"Ref": "PriorSpread"},
        "LOW_SCORE": {"Ref": "LowScore"},
        "MEDIUM_SCORE": {"Ref": "MediumScore"},
        "HIGH_SCORE": {"Ref": "HighScore"},
        "CRITICAL_SCORE": {"Ref": "CriticalScore"},
        "HISTORY_LIMIT": "120",
        "RELEARN_DAYS": {"Ref": "RelearnDays"},
    }


def test_environment_values_are_accepted_by_the_detector_settings():
    """Resolve the template's environment with the defaults and parse it like the detector."""
    settings = pytest.importorskip("backup_anomaly.settings")
    tpl = _member("example")
    env = _function(tpl)["Environment"]["Variables"]
    resolved = {}
    for key, value in env.items():
        if isinstance(value, dict) and "Ref" in value:
            param = tpl["Parameters"].get(value["Ref"])
            value = param["Default"] if param else f"resolved-{value['Ref']}"
        elif isinstance(value, dict) and "Fn::Sub" in value:
            value = value["Fn::Sub"].replace("${AWS::Partition}", "aws")
        elif isinstance(value, dict) and "Fn::If" in value:
            value = value["Fn::If"][2]  # the switch's default: off
        resolved[key] = value
    parsed = settings.load(resolved)
    assert parsed.alarm_prefix == "backup-anomaly-"
    assert parsed.resource_types == frozenset({"EBS", "EC2"})


def test_event_source_mapping_reports_partial_failures_and_caps_concurrency():
    config = h.config("example")
    esm = h.one(_member("example"), "AWS::Lambda::EventSourceMapping")["Properties"]
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "DetectorMaxConcurrency"}}
    assert _member("example")["Parameters"]["DetectorMaxConcurrency"]["Default"] == str(
        config.detection.detector.max_concurrency
    )
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}


def test_state_table_and_log_group():
    tpl = _member("example")
    table = h.one(tpl, "AWS::DynamoDB::Table")["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "VolumeArn", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "VolumeArn", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    logs = h.one(tpl, "AWS::Logs::LogGroup")["Properties"]
    assert logs["LogGroupName"] == "/aws/lambda/backup-anomaly-detector"
    assert logs["RetentionInDays"] >= 365
    assert "KmsKeyId" in logs


def test_kms_key_rotates_and_grants_services_with_conditions():
    key = h.one(_member("example"), "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    services = [s for s in h.statements(key["KeyPolicy"]) if "Service" in s["Principal"]]
    assert {json.dumps(s["Principal"]["Service"]) for s in services} == {
        '"events.amazonaws.com"',
        '{"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}',
    }
    assert all("Condition" in s for s in services)


# -- IAM -----------------------------------------------------------------------------------


def _detector_policy(tpl: dict) -> dict[str, dict]:
    role = tpl["Resources"]["DetectorRole"]["Properties"]
    (policy,) = role["Policies"]
    return {s["Sid"]: s for s in h.statements(policy["PolicyDocument"])}


def test_detector_role_allows_exactly_what_the_code_calls():
    statements = _detector_policy(_member("example"))
    actions = {sid: sorted(s["Action"]) for sid, s in statements.items()}
    assert actions == {
        "ReadChangedBlocks": ["ebs:GetSnapshotBlock", "ebs:ListChangedBlocks"],
        "State": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        "PublishChangedBlocks": ["cloudwatch:PutMetricData"],
        "ManageVolumeAlarms": sorted(
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:TagResource",
            ]
        ),
        "ResolveSnapshots": sorted(
            [
                "ec2:DescribeImages",
                "ec2:DescribeSnapshots",
                "ec2:DescribeVolumes",
                "ec2:DescribeInstances",
            ]
        ),
        "ResolveBackupJob": ["backup:DescribeBackupJob"],
        "ConsumeAndRequeueWork": sorted(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"]
        ),
        "UseQueueKey": ["kms:Decrypt", "kms:GenerateDataKey"],
        "ReadEncryptedSnapshotsThroughEbs": ["kms:Decrypt", "kms:DescribeKey"],
        "GrantsOnEncryptedSnapshotKeysForEbs": ["kms:CreateGrant"],
        "ForwardMeasurements": ["events:PutEvents"],
        "WriteOwnLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
    }


def test_detector_role_resources_are_scoped():
    config = h.config("example")
    s = _detector_policy(_member("example"))
    assert s["ReadChangedBlocks"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*"}
    ]
    assert s["State"]["Resource"] == [{"Fn::GetAtt": ["StateTable", "Arn"]}]
    assert s["PublishChangedBlocks"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": config.detection.metric_namespace}
    }
    assert s["ManageVolumeAlarms"]["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:"
            f"alarm:{config.detection.alarm_prefix}*"
        }
    ]
    assert s["ConsumeAndRequeueWork"]["Resource"] == [{"Fn::GetAtt": ["WorkQueue", "Arn"]}]
    through_ebs = {
        "kms:ViaService": [
            {"Fn::Sub": "ec2.${AWS::Region}.amazonaws.com"},
            {"Fn::Sub": "ebs.${AWS::Region}.amazonaws.com"},
        ]
    }
    assert s["ReadEncryptedSnapshotsThroughEbs"]["Condition"] == {"StringEquals": through_ebs}
    assert s["GrantsOnEncryptedSnapshotKeysForEbs"]["Condition"] == {
        "StringEquals": through_ebs,
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    security = config.security
    bus = Names(config.name).central_bus_arn(
        security.home_region, security.account_id, "${AWS::Partition}"
    )
    assert s["ForwardMeasurements"]["Resource"] == [{"Fn::Sub": bus}]


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_every_iam_role_name_carries_the_region(variant):
    for logical_id, role in h.resources(_member(variant), "AWS::IAM::Role").items():
        name = role["Properties"]["RoleName"]
        assert "${AWS::Region}" in name["Fn::Sub"], logical_id
        longest = name["Fn::Sub"].replace("${AWS::Region}", "x" * naming.MAX_REGION_LENGTH)
        assert len(longest) <= naming.IAM_ROLE_MAX, (logical_id, longest)


# -- alarms and forwarding -----------------------------------------------------------------


def test_operational_alarms_use_the_prefix_so_they_reach_the_central_bus():
    config = h.config("service-existing")
    prefix = config.detection.alarm_prefix
    alarms = h.resources(_member("service-existing"), "AWS::CloudWatch::Alarm")
    names = sorted(a["Properties"]["AlarmName"] for a in alarms.values())
    assert names == sorted(
        [Names.dlq_alarm(prefix), Names.errors_alarm(prefix), Names.forward_dlq_alarm(prefix)]
    )
    assert all(n.startswith(prefix) for n in names)


def test_alarm_state_changes_are_forwarded_to_the_central_bus_with_a_role():
    config = h.config("service-existing")
    names = Names(config.name)
    tpl = _member("service-existing")
    rule = _rule(tpl, names.alarm_forward_rule)
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": config.detection.alarm_prefix}]},
    }
    (target,) = rule["Targets"]
    bus = {
        "Fn::Sub": names.central_bus_arn(
            config.security.home_region, config.security.account_id, "${AWS::Partition}"
        )
    }
    assert target["Arn"] == bus
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwarderRole", "Arn"]}
    role = tpl["Resources"]["ForwarderRole"]["Properties"]
    (policy,) = role["Policies"]
    assert h.statements(policy["PolicyDocument"]) == [
        {
            "Sid": "PutOnCentralBus",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": [bus],
        }
    ]


# -- backups ---------------------------------------------------------------------------


def test_a_retained_vault_is_adopted_instead_of_created():
    tpl = _member("example")
    vault = h.one(tpl, "AWS::Backup::BackupVault")
    assert vault["Condition"] == "CreateBackupVault"
    assert tpl["Conditions"]["CreateBackupVault"] == {
        "Fn::Equals": [{"Ref": naming.PARAM_ADOPT_VAULT}, "false"]
    }
    plan = h.one(tpl, "AWS::Backup::BackupPlan")["Properties"]["BackupPlan"]
    (rule,) = plan["BackupPlanRule"]
    assert rule["TargetBackupVault"] == {
        "Fn::If": [
            "CreateBackupVault",
            {"Ref": "BackupVault"},
            h.config("example").backup.vault_name,
        ]
    }
    assert naming.PARAM_ADOPT_VAULT not in _member("self-existing")["Parameters"]


def test_create_mode_has_vault_plan_and_tag_selection():
    config = h.config("example")
    tpl = _member("example")
    vault = h.one(tpl, "AWS::Backup::BackupVault")
    assert vault["Properties"]["BackupVaultName"] == config.backup.vault_name
    assert vault["Properties"]["EncryptionKeyArn"] == {"Fn::GetAtt": ["MemberKey", "Arn"]}
    assert vault["DeletionPolicy"] == "RetainExceptOnCreate"
    plan = h.one(tpl, "AWS::Backup::BackupPlan")["Properties"]["BackupPlan"]
    (rule,) = plan["BackupPlanRule"]
    assert rule["ScheduleExpression"] == {"Ref": "BackupSchedule"}
    assert rule["Lifecycle"] == {"DeleteAfterDays": {"Ref": "BackupRetentionDays"}}
    selection = h.one(tpl, "AWS::Backup::BackupSelection")["Properties"]["BackupSelection"]
    tag = config.backup.selection_tag
    assert selection["Conditions"] == {
        "StringEquals": [
            {"ConditionKey": f"aws:ResourceTag/{tag.key}", "ConditionValue": tag.value}
        ]
    }
    assert selection["Resources"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:*:volume/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:*:instance/*"},
    ]
    assert "ListOfTags" not in selection  # ORed with Resources: would select every volume
    role = h.resources(tpl, "AWS::IAM::Role")["BackupRole"]["Properties"]
    # Backup only (nothing restores), assumed by AWS Backup for this account only.
    assert role["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup"
        },
        # A confirmation scan names the role that made the recovery point.
        {
            "Fn::If": [
                "ConfirmationScansOn",
                {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/"
                    "AWSBackupServiceRolePolicyForScans"
                },
                {"Ref": "AWS::NoValue"},
            ]
        },
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_create_mode_selection_follows_resource_types():
    selection = h.one(_member("self-create"), "AWS::Backup::BackupSelection")
    assert selection["Properties"]["BackupSelection"]["Resources"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:*:volume/*"}
    ]


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_member_arns_name_the_stacks_own_partition(variant):
    # The config accepts aws-us-gov and aws-cn regions: there a literal "arn:aws:" (the
    # backup role's managed policies, the central bus) fails the stack.
    text = json.dumps(_member(variant))
    assert "arn:aws:" not in text


@pytest.mark.parametrize("variant", ["self-existing", "service-existing"])
def test_existing_mode_creates_no_backup_resources_or_parameters(variant):
    tpl = _member(variant)
    assert not [r for r in tpl["Resources"].values() if r["Type"].startswith("AWS::Backup::")]
    assert "BackupRole" not in tpl["Resources"]
    assert "BackupSchedule" not in tpl["Parameters"]
    assert "BackupRetentionDays" not in tpl["Parameters"]


# -- template-wide properties --------------------------------------------------------------


def test_parameters_are_the_overridable_settings_and_the_code_location():
    assert sorted(_member("example")["Parameters"]) == sorted(
        [
            naming.PARAM_CODE_BUCKET_PREFIX,
            naming.PARAM_CODE_KEY,
            naming.PARAM_PERMISSIONS_BOUNDARY,
            naming.PARAM_ADOPT_VAULT,
            "CloudWatchAlarms",
            "AnomalyBandWidth",
            "CeilingPercent",
            "AlarmPeriodSeconds",
            "EvaluationPeriods",
            "BackupSchedule",
            "BackupRetentionDays",
            "DetectorMemoryMB",
            "DetectorMaxConcurrency",
            "EbsMaxRequestsPerSecond",
            "EbsGetBlockRequestsPerSecond",
            "ContentSampling",
            "ConfirmationScan",
            "SecurityHubFindings",
            "FloorPercent",
            "FloorBlocks",
            "PriorDailyPercent",
            "PriorSpread",
            "LowScore",
            "MediumScore",
            "HighScore",
            "CriticalScore",
            "RelearnDays",
        ]
    )
    assert _member("example")["Parameters"]["AnomalyBandWidth"]["Default"] == "2"


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_member_template_fits_inline_and_within_stackset_limits(variant):
    path = h.synth(variant).templates["member"]
    tpl = json.loads(path.read_text())
    assert path.stat().st_size < INLINE_TEMPLATE_BYTES  # documented in member.py
    assert len(tpl["Resources"]) < 500
    assert len(tpl["Parameters"]) < 200
    assert "Transform" not in tpl  # StackSets reject transforms


def test_alarm_forwarding_keeps_what_the_central_bus_refuses():
    # A refused cross-account PutEvents (the bus policy not yet admitting this account,
    # the central stack missing) is not retried: without a DLQ the alert is gone.
    config = h.config("example")
    names = Names(config.name)
    tpl = _member("example")
    (target,) = _rule(tpl, names.alarm_forward_rule)["Targets"]
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    dlq = tpl["Resources"][dlq_id]["Properties"]
    assert dlq["QueueName"] == names.forward_dlq
    assert dlq["KmsMasterKeyId"] == {"Fn::GetAtt": ["MemberKey", "Arn"]}
    (policy,) = [
        p["Properties"]
        for p in h.resources(tpl, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    allow = h.statements(policy["PolicyDocument"])[0]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [
                {"Fn::GetAtt": ["AlarmForwardRule", "Arn"]},
                {"Fn::GetAtt": ["ScanResultRule", "Arn"]},
            ]
        }
    }
    alarms = h.resources(tpl, "AWS::CloudWatch::Alarm").values()
    assert any(
        a["Properties"]["AlarmName"] == Names.forward_dlq_alarm(config.detection.alarm_prefix)
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}
        for a in alarms
    )
