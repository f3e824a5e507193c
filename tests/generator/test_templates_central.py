"""The central template: bus policy scope, topic policy, rules, notification, audit queue."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from generator import naming
from generator.config.loader import ConfigError
from generator.naming import Names
from generator.templates import central
from tests.generator import template_helpers as h


def _central(variant: str) -> dict:
    return h.template(variant, "central")


def _bus_statements(tpl: dict) -> dict[str, dict]:
    bus = h.one(tpl, "AWS::Events::EventBus")["Properties"]
    return {s["Sid"]: s for s in h.statements(bus["Policy"])}


ADMITTED = {
    "MembersPutDetectorEvents": (
        naming.EVENT_SOURCE,
        [
            "Backup Change Measured",
            "Backup Baseline Reset",
            "Backup Anomaly Detected",
            "Backup Detector Heartbeat",
        ],
    ),
    "MembersPutForwardedAlarmStateChanges": (
        "aws.cloudwatch",
        ["CloudWatch Alarm State Change"],
    ),
    "MembersPutForwardedScanResults": ("aws.backup", ["Scan Job State Change"]),
}


def test_bus_is_named_and_admits_only_the_organization_and_only_what_members_send():
    config = h.config("example")
    tpl = _central("example")
    bus = h.one(tpl, "AWS::Events::EventBus")["Properties"]
    assert bus["Name"] == Names(config.name).central_bus
    statements = _bus_statements(tpl)
    assert set(statements) == set(ADMITTED)
    for sid, (source, detail_types) in ADMITTED.items():
        statement = statements[sid]
        assert statement["Action"] == ["events:PutEvents"]
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"events:source": [source]},
            "StringEquals": {
                "aws:PrincipalOrgID": config.organization.org_id,
                "events:detail-type": detail_types,
            },
        }
        assert statement["Resource"] == [
            {
                "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
                f"event-bus/{Names(config.name).central_bus}"
            }
        ]


def test_bus_without_org_id_admits_exactly_the_listed_accounts():
    for statement in _bus_statements(_central("self-existing")).values():
        assert statement["Principal"] == {
            "AWS": [
                {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{a}:root"}
                for a in ("444444444444", "555555555555")
            ]
        }
        assert "aws:PrincipalOrgID" not in statement["Condition"]["StringEquals"]


def test_ou_targets_without_org_id_are_refused_with_their_line():
    data = h.raw("example")
    del data["organization"]["org_id"]
    with pytest.raises(ConfigError) as caught:
        h.config_from(data)
    (issue,) = caught.value.issues
    assert issue.path == "organization"
    assert issue.message.startswith("org_id is required when deployment targets include OUs")


def test_topic_is_encrypted_and_has_one_email_subscription_per_address():
    config = h.config("service-existing")
    tpl = _central("service-existing")
    topic = h.one(tpl, "AWS::SNS::Topic")["Properties"]
    assert topic["TopicName"] == Names(config.name).alert_topic
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["CentralKey", "Arn"]}
    subscriptions = h.resources(tpl, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(
        config.security.notification_emails
    )
    assert {s["Properties"]["Protocol"] for s in subscriptions} == {"email"}


def test_topic_policy_admits_only_our_alert_rules_and_our_alarm():
    policy = h.one(_central("example"), "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    allows = [s for s in h.statements(policy) if s["Effect"] == "Allow"]
    sources = {
        (s["Principal"]["Service"], s["Sid"]): s["Condition"]["ArnEquals"]["aws:SourceArn"]
        for s in allows
    }
    alert_rules = ["VolumeAlarmRule", "VolumeResolvedRule", "OperationalAlarmRule"]
    assert sources == {
        ("events.amazonaws.com", "AlertRulesPublish"): [
            {"Fn::GetAtt": [rule, "Arn"]} for rule in alert_rules
        ],
        # The central dead letters and the correlator's own trouble: operational alerts.
        ("cloudwatch.amazonaws.com", "CentralAlarmsPublish"): [
            {"Fn::GetAtt": [alarm, "Arn"]}
            for alarm in (
                "CentralDeadLetterAlarm",
                "CorrelatorDeadLetterAlarm",
                "CorrelatorErrorsAlarm",
            )
        ],
    }
    for statement in allows:
        assert statement["Action"] == ["sns:Publish"]
        assert statement["Resource"] == [{"Ref": "AlertTopic"}]


def test_key_policy_grants_services_only_for_this_account():
    key = h.one(_central("example"), "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    services = [s for s in h.statements(key["KeyPolicy"]) if "Service" in s["Principal"]]
    publishers = [s for s in services if isinstance(s["Principal"]["Service"], str)]
    assert {s["Principal"]["Service"] for s in publishers} == {
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }
    for statement in publishers:
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }
    # The correlator's log group is encrypted with this key: CloudWatch Logs of this region
    # may use it for that log group only (without it, the log group fails to create).
    (logs,) = [s for s in services if s not in publishers]
    assert logs["Principal"]["Service"] == {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    (context,) = logs["Condition"]["ArnEquals"].values()
    assert Names(h.config("example").name).correlator_log_group in json.dumps(context)
    group = h.one(_central("example"), "AWS::Logs::LogGroup")["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["CentralKey", "Arn"]}


def _rules(tpl: dict) -> dict[str, dict]:
    rules = h.resources(tpl, "AWS::Events::Rule").values()
    return {r["Properties"]["Name"]: r["Properties"] for r in rules}


def test_every_alarm_state_change_reaches_the_audit_queue_and_only_it():
    config = h.config("example")
    names = Names(config.name)
    rule = _rules(_central("example"))[names.central_alarm_rule]
    assert rule["EventBusName"] == {"Fn::GetAtt": ["CentralBus", "Arn"]}
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": config.detection.alarm_prefix}]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AuditQueue", "Arn"]}


@pytest.mark.parametrize(
    ("rule_name", "state"),
    [
        ("central_alarm_alert_rule", {"state": {"value": ["ALARM"]}}),
        (
            "central_alarm_resolved_rule",
            {"state": {"value": ["OK"]}, "previousState": {"value": ["ALARM"]}},
        ),
    ],
)
def test_volume_alarms_reach_the_topic_only_into_alarm_and_back(rule_name, state):
    config = h.config("example")
    rule = _rules(_central("example"))[getattr(Names(config.name), rule_name)]
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": f"{config.detection.alarm_prefix}vol-"}], **state},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlertTopic"}
    transformer = target["InputTransformer"]
    used = set(re.findall(r"<(\w+)>", transformer["InputTemplate"]))
    assert used == set(transformer["InputPathsMap"])
    assert transformer["InputPathsMap"]["account"] == "$.account"  # never the detail's
    assert "description" not in used  # member-written text
    assert "https://<region>.console.aws.amazon.com/cloudwatch" in transformer["InputTemplate"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CentralDeadLetterQueue", "Arn"]}


def test_operational_alarms_are_worded_as_operational_alerts():
    config = h.config("example")
    prefix = config.detection.alarm_prefix
    rule = _rules(_central("example"))[Names(config.name).central_operational_rule]
    detail = rule["EventPattern"]["detail"]
    assert detail["alarmName"] == [
        f"{prefix}detector-dlq",
        f"{prefix}detector-errors",
        f"{prefix}forward-dlq",
    ]
    assert detail["$or"] == [
        {"state": {"value": ["ALARM"]}},
        {"state": {"value": ["OK"]}, "previousState": {"value": ["ALARM"]}},
    ]
    text = rule["Targets"][0]["InputTransformer"]["InputTemplate"]
    assert text.startswith('"Operational alert (not an anomaly)')
    assert "ransomware" not in text


@pytest.mark.parametrize(
    ("region", "console"),
    [
        ("us-gov-west-1", "https://console.amazonaws-us-gov.com/cloudwatch"),
        ("cn-north-1", "https://console.amazonaws.cn/cloudwatch"),
    ],
)
def test_console_links_name_the_console_of_the_partition(region, console):
    data = h.raw("self-existing")
    data["deployment"]["regions"] = [region]
    data["deployment"]["targets"]["accounts"][1]["regions"] = [region]
    data["security"]["home_region"] = region
    tpl = central.build(h.config_from(data), "k.zip").to_dict()
    texts = [
        t["InputTransformer"]["InputTemplate"]
        for r in h.resources(tpl, "AWS::Events::Rule").values()
        for t in r["Properties"]["Targets"]
        if "InputTransformer" in t
    ]
    assert texts and all(console.split("/cloudwatch")[0] in t for t in texts)
    assert not any("console.aws.amazon.com" in t for t in texts)


def test_input_transformer_paths_exist_in_a_real_alarm_event(tmp_path):
    sample = h.REPO / "tests" / "detector" / "events"
    candidates = list(sample.glob("*alarm*.json")) if sample.is_dir() else []
    if not candidates:
        pytest.skip("no alarm state change sample event in tests/detector/events")
    import json

    event = json.loads(candidates[0].read_text())
    for name, path in central.ALARM_PATHS.items():
        if name in central.OPTIONAL_ALERT_PATHS:
            continue
        node = event
        for part in re.findall(r"[\w-]+|\[\d+\]", path[2:]):
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        assert node not in (None, ""), name


def test_measurement_rule_sends_every_measurement_to_the_audit_queue():
    names = Names("backup-anomaly")
    rule = _rules(_central("example"))[names.central_measurement_rule]
    assert rule["EventPattern"] == {
        "source": [naming.EVENT_SOURCE],
        # Anomalies of every severity too: the SIEM keeps what the topic never sees.
        "detail-type": [naming.MEASUREMENT_DETAIL_TYPE, naming.ANOMALY_DETAIL_TYPE],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AuditQueue", "Arn"]}


def test_queue_policies_admit_only_the_rules_that_target_them():
    audit_rules = [
        {"Fn::GetAtt": [rule, "Arn"]}
        for rule in ("AlarmStateRule", "MeasurementRule", "BaselineResetRule", "ScanResultsRule")
    ]
    alert_rules = [
        {"Fn::GetAtt": [rule, "Arn"]}
        for rule in ("VolumeAlarmRule", "VolumeResolvedRule", "OperationalAlarmRule")
    ]
    correlator_rules = [
        {"Fn::GetAtt": [rule, "Arn"]} for rule in ("CorrelatorRule", "ScanResultsRule")
    ]
    expected = {
        "AuditQueue": audit_rules,
        # Every rule dead-letters here, the alert-only ones and the correlator's too.
        "CentralDeadLetterQueue": [
            *audit_rules,
            *alert_rules,
            {"Fn::GetAtt": ["CorrelatorRule", "Arn"]},
        ],
        "CorrelatorQueue": correlator_rules,
    }
    policies = h.resources(_central("example"), "AWS::SQS::QueuePolicy").values()
    seen = {}
    for policy in policies:
        (queue,) = policy["Properties"]["Queues"]
        allow, deny = h.statements(policy["Properties"]["PolicyDocument"])
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        seen[queue["Ref"]] = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert seen == expected


# -- baseline resets ----------------------------------------------------------------------


def _reset_event(reason: str = naming.RESET_PREVIOUS_SNAPSHOT_MISSING) -> dict:
    """The event the detector puts for a reset (its own detail builder, not a copy)."""
    from backup_anomaly.records import BaselineReset, ResetReason
    from backup_anomaly.snapshots import VolumeSnapshot

    volume_arn = "arn:aws:ec2:eu-west-1:444444444444:volume/vol-0abc"
    reset = BaselineReset(
        target=VolumeSnapshot(
            volume_arn=volume_arn,
            volume_id="vol-0abc",
            snapshot_id="snap-new",
            completion_time=datetime(2026, 11, 24, 5, tzinfo=UTC),
            backup_job_id="job-1",
            resource_type="EBS",
            account="444444444444",
            region="eu-west-1",
        ),
        previous_snapshot_id="snap-old",
        reason=ResetReason(reason),
        reset_at=datetime(2026, 11, 24, 5, 1, tzinfo=UTC),
    )
    return {
        "version": "0",
        "id": "1",
        "source": naming.EVENT_SOURCE,
        "detail-type": naming.BASELINE_RESET_DETAIL_TYPE,
        "account": "444444444444",
        "time": "2026-11-24T05:01:00Z",
        "region": "eu-west-1",
        "resources": [volume_arn],
        "detail": reset.detail(),
    }


def _path(event: dict, path: str):
    node = event
    for part in re.findall(r"[\w-]+|\[\d+\]", path[2:]):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def test_reset_rule_sends_every_baseline_reset_to_the_audit_queue():
    names = Names("backup-anomaly")
    rule = _rules(_central("example"))[names.central_reset_rule]
    assert rule["EventBusName"] == {"Fn::GetAtt": ["CentralBus", "Arn"]}
    assert rule["EventPattern"] == {
        "source": [naming.EVENT_SOURCE],
        "detail-type": [naming.BASELINE_RESET_DETAIL_TYPE],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AuditQueue", "Arn"]}
    assert "InputTransformer" not in target  # the SIEM gets the whole event
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CentralDeadLetterQueue", "Arn"]}


def test_a_deleted_previous_snapshot_goes_to_the_correlator_not_one_email_each():
    """Deleting recovery points precedes encryption: the correlator makes it an incident
    (escalated by count and spread), where one email per volume would flood the inbox."""
    rules = _rules(_central("example"))
    names = Names("backup-anomaly")
    missing = _reset_event()

    def matches(pattern: dict, event: dict) -> bool:
        return all(
            matches(value, event.get(key, {}))
            if isinstance(value, dict)
            else event.get(key) in value
            for key, value in pattern.items()
        )

    to_correlator = rules[names.correlator_rule]
    assert matches(to_correlator["EventPattern"], missing)
    assert matches(rules[names.central_reset_rule]["EventPattern"], missing)
    alerting = [
        name
        for name, rule in rules.items()
        if any(t["Arn"] == {"Ref": "AlertTopic"} for t in rule["Targets"])
        and matches(rule["EventPattern"], missing)
    ]
    assert alerting == []
    (target,) = to_correlator["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["CorrelatorQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CentralDeadLetterQueue", "Arn"]}


def test_dead_letter_alarm_notifies_the_topic():
    alarm = h.resources(_central("example"), "AWS::CloudWatch::Alarm")["CentralDeadLetterAlarm"][
        "Properties"
    ]
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["CentralDeadLetterQueue", "QueueName"]}}
    ]


@pytest.mark.parametrize("variant", ["self-existing", "self-create"])
def test_the_security_account_may_read_the_code_its_correlator_runs(variant):
    # Without an organization id the artifact bucket names its readers: the targets, and
    # the security account, whose correlator function is created from the same zip.
    config = h.config(variant)
    policy = h.template(variant, "artifacts")["Resources"]["ArtifactBucketPolicy"]["Properties"]
    (readers,) = [s for s in h.statements(policy["PolicyDocument"]) if s["Effect"] == "Allow"]
    if readers["Principal"] == {"AWS": "*"}:  # organization-scoped: the security account too
        assert "aws:PrincipalOrgID" in readers["Condition"]["StringEquals"]
    else:
        assert f":{config.security.account_id}:root" in json.dumps(readers["Principal"])
    code = h.one(_central(variant), "AWS::Lambda::Function")["Properties"]["Code"]
    assert code["S3Key"]


def _correlator_actions(tpl: dict) -> dict[str, list]:
    role = tpl["Resources"]["CorrelatorRole"]["Properties"]
    out: dict[str, list] = {}
    for policy in role["Policies"]:
        for statement in h.statements(policy["PolicyDocument"]):
            for action in h.as_list(statement["Action"]):
                out[action] = h.as_list(statement["Resource"])
    return out


def test_account_names_from_organizations_are_allowed_only_when_asked_for():
    from generator.templates import central

    assert "organizations:DescribeAccount" not in _correlator_actions(_central("example"))
    data = h.raw("example")
    data["correlation"] = {"organizations_names": True}
    config = h.config_from(data)
    actions = _correlator_actions(central.build(config, "detector.zip").to_dict())
    (resource,) = actions["organizations:DescribeAccount"]
    assert resource == {
        "Fn::Sub": "arn:${AWS::Partition}:organizations::"
        f"{config.organization.management_account_id}:account/{config.organization.org_id}/*"
    }
