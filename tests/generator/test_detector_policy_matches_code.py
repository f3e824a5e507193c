"""The detector's IAM policy grants exactly the AWS calls its code makes.

Both directions are read from the sources, not from a list written twice: every boto3
operation called in ``lambda/backup_anomaly`` must be allowed (or the detector fails at
3 a.m. with AccessDenied), and every allowed action must be called by the code or be one
of the few that AWS services call on the function's behalf (or the policy is wider than
least privilege).
"""

import ast
from pathlib import Path

import botocore.session
from botocore import xform_name

from tests.generator import template_helpers as h

LAMBDA_SOURCES = Path(__file__).resolve().parents[2] / "lambda" / "backup_anomaly"
SERVICES = ("dynamodb", "ebs", "cloudwatch", "ec2", "backup", "sqs", "events", "securityhub")

# Called by AWS on the function's behalf, not by the code: the SQS event source mapping
# polls and deletes; the Lambda runtime writes logs; KMS is used by SQS for the queue and
# by EBS for encrypted snapshots (Decrypt, DescribeKey, and grants for AWS resources only).
CALLED_FOR_THE_FUNCTION = {
    "kms:DescribeKey",
    "kms:CreateGrant",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "kms:Decrypt",
    "kms:GenerateDataKey",
}
# Authorized as part of another call: PutMetricAlarm with Tags needs TagResource too;
# StartScanJob names two roles, which the caller must be allowed to pass.
IMPLIED = {"cloudwatch:TagResource": "put_metric_alarm", "iam:PassRole": "start_scan_job"}


def _operations() -> dict[str, set[str]]:
    """snake_case method name -> IAM actions (service:Operation) it may stand for."""
    session = botocore.session.get_session()
    by_method: dict[str, set[str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        prefix = service  # the IAM prefix of each of these is its botocore name
        for operation in model.operation_names:
            by_method.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
    return by_method


def _called_methods() -> set[str]:
    methods = set()
    for source in LAMBDA_SOURCES.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                methods.add(node.func.attr)
    return methods


def _policy_actions() -> set[str]:
    """Everything the detector's role may do: its own policy, and the policies attached to
    it where a switch is on (confirmation scans, Security Hub findings)."""
    resources = h.template("example", "member")["Resources"]
    documents = [p["PolicyDocument"] for p in resources["DetectorRole"]["Properties"]["Policies"]]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::RolePolicy"
        and r["Properties"]["RoleName"] == {"Ref": "DetectorRole"}
    ]
    return {
        action
        for document in documents
        for statement in h.statements(document)
        for action in h.as_list(statement["Action"])
    }


def test_every_call_the_detector_makes_is_allowed():
    operations = _operations()
    allowed = _policy_actions()
    called = {m for m in _called_methods() if m in operations}
    missing = {m: sorted(operations[m]) for m in called if not operations[m] & allowed}
    assert called, "found no boto3 calls: the source scan is broken"
    assert missing == {}


def test_every_allowed_action_is_called_or_used_on_the_functions_behalf():
    operations = _operations()
    called = {a for m in _called_methods() if m in operations for a in operations[m]}
    implied = {action for action, method in IMPLIED.items() if method in _called_methods()}
    unused = _policy_actions() - called - implied - CALLED_FOR_THE_FUNCTION
    assert unused == set()
