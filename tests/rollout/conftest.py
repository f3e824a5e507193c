"""Fixtures for the rollout tests: a moto organization and small hand-made templates.

The organization is built with the config's own ids (``testing.organization``) and
moto is made faithful where the rollout depends on it (``testing.moto_fidelity``).
Every client the code under test creates carries a call recorder (a botocore event hook),
so tests count the API calls made, without replacing any code under test.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from generator.config.model import OrgConfig
from generator.naming import PARAM_CODE_BUCKET_PREFIX, PARAM_CODE_KEY, Names
from rollout.artifacts import Built
from rollout.display import Display
from rollout.sessions import AwsSessions
from testing.moto_fidelity import faithful_moto
from testing.organization import build_organization

PARAM_BAND_WIDTH = "AnomalyBandWidth"
MANAGEMENT, ADMIN, SECURITY = "111111111111", "222222222222", "333333333333"
PROD_OU, WORK_OU = "ou-ab12-prod0001", "ou-ab12-work0002"
A, B, C = "444444444444", "555555555555", "666666666666"


def config_dict(model: str = "SERVICE_MANAGED", **deployment) -> dict:
    """A small valid config; SERVICE_MANAGED targets two OUs, SELF_MANAGED two accounts."""
    data = {
        "name": "bad",
        "organization": {
            "management_account_id": MANAGEMENT,
            "delegated_admin_account_id": ADMIN,
            "org_id": "o-testorg0001",
        },
        "security": {"account_id": SECURITY, "home_region": "us-east-1"},
        "deployment": {
            "permission_model": model,
            "regions": ["us-east-1", "eu-west-1"],
            "targets": {"organizational_units": [], "accounts": []},
            "operation_preferences": {
                "failure_tolerance_count": 1,
                "max_concurrent_count": 2,
                "region_concurrency": "PARALLEL",
                "region_order": ["eu-west-1"],
            },
        },
        "tags": {"Project": "test"},
    }
    if model == "SERVICE_MANAGED":
        data["deployment"]["call_as"] = "DELEGATED_ADMIN"
        data["deployment"]["targets"]["organizational_units"] = [
            {"id": PROD_OU, "name": "Production"},
            {"id": WORK_OU, "name": "Workloads"},
        ]
    else:
        data["deployment"]["targets"]["accounts"] = [{"id": A, "name": "a"}, {"id": B, "name": "b"}]
    data["deployment"].update(deployment)
    return data


def load(data: dict) -> OrgConfig:
    return OrgConfig.model_validate(data)


def _template(resources: dict, parameters: dict | None = None) -> str:
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": parameters or {},
            "Resources": resources,
        },
        sort_keys=True,
    )


@pytest.fixture
def built(tmp_path: Path) -> Built:
    """Tiny stand-ins for the generated templates (moto-deployable, explicit names)."""
    return make_built(tmp_path, "bad", marker="v1")


def make_built(out: Path, prefix: str, marker: str = "v1") -> Built:
    out.mkdir(parents=True, exist_ok=True)
    bucket = {"Fn::Sub": f"{prefix}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}"}
    templates = {
        "artifacts": _template(
            {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}}
        ),
        "central": _template(
            {
                "Queue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": f"{prefix}-audit"},
                },
                # The correlator's table: deploy writes the roster into it.
                "Table": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {
                        "TableName": Names(prefix).correlator_table,
                        "BillingMode": "PAY_PER_REQUEST",
                        "KeySchema": [
                            {"AttributeName": "pk", "KeyType": "HASH"},
                            {"AttributeName": "sk", "KeyType": "RANGE"},
                        ],
                        "AttributeDefinitions": [
                            {"AttributeName": "pk", "AttributeType": "S"},
                            {"AttributeName": "sk", "AttributeType": "S"},
                        ],
                    },
                },
            }
        ),
        "stackset-roles": _template(
            {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "RoleName": "AWSCloudFormationStackSetAdministrationRole",
                        "AssumeRolePolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": {"Service": "cloudformation.amazonaws.com"},
                                    "Action": "sts:AssumeRole",
                                }
                            ],
                        },
                    },
                }
            }
        ),
        "member": _template(
            {
                "Queue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "QueueName": {"Fn::Sub": f"{prefix}-work-{marker}-${{{PARAM_BAND_WIDTH}}}"}
                    },
                }
            },
            {
                PARAM_CODE_BUCKET_PREFIX: {"Type": "String"},
                PARAM_CODE_KEY: {"Type": "String"},
                PARAM_BAND_WIDTH: {"Type": "String", "Default": "2"},
            },
        ),
    }
    paths = {}
    for name, body in templates.items():
        paths[name] = out / f"{name}.json"
        paths[name].write_text(body)
    zip_path = out / "detector.zip"
    zip_path.write_bytes(b"PK-not-really-a-zip-" + marker.encode())
    names = Names(prefix)
    return Built(
        templates=paths,
        lambda_path=zip_path,
        lambda_key=names.lambda_key(marker * 4),
        member_key=names.member_template_key(marker * 4),
    )


class CallRecorder:
    """Records every API call (operation name and the caller's parameters) through
    botocore's ``before-parameter-build`` event, on every client the code creates."""

    EVENT = "before-parameter-build"
    STACKSET_OPERATIONS = (
        "CreateStackSet",
        "UpdateStackSet",
        "CreateStackInstances",
        "UpdateStackInstances",
        "DeleteStackInstances",
    )

    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.params: list[tuple[str, dict]] = []

    def __call__(self, params, model, **_kwargs):
        self.calls[model.name] += 1
        self.params.append((model.name, copy.deepcopy(params)))

    def reset(self) -> None:
        self.calls.clear()
        self.params.clear()

    def requests(self, name: str) -> list[dict]:
        return [p for n, p in self.params if n == name]

    @property
    def stackset_operations(self) -> int:
        return sum(self.calls[name] for name in self.STACKSET_OPERATIONS)


@pytest.fixture
def recorder() -> CallRecorder:
    return CallRecorder()


@pytest.fixture
def aws():
    with mock_aws(), faithful_moto():
        yield


def org_sessions(
    config: OrgConfig, recorder: CallRecorder, extra=None, extra_observers=()
) -> AwsSessions:
    """Creates the organization of ``config`` and sessions acting as its management account."""
    sim = build_organization(config, extra)
    return AwsSessions(
        base=sim.management, observers=[(CallRecorder.EVENT, recorder), *extra_observers]
    )


@pytest.fixture
def display() -> Display:
    from rich.console import Console

    return Display(Console(record=True, width=200, force_terminal=False, color_system=None))


def dump(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
