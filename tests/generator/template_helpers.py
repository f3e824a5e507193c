"""Config variants and cached syntheses shared by the template, lint and synth tests.

Each variant is a config a real team could write; together they cover both permission
models, both backup modes, with and without an organization id, and a maximal name.
``synth(variant)`` synthesizes once per test process into a private temporary folder.
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import shutil
import tempfile
from pathlib import Path

import yaml

from generator.config.loader import load_config
from generator.config.model import OrgConfig
from generator.synth import SynthResult, synthesize

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "accounts.yaml"

_SELF_EXISTING = {
    "name": "backup-anomaly",
    "organization": {"management_account_id": "111111111111"},
    "security": {
        "account_id": "333333333333",
        "home_region": "us-east-1",
        "notification_emails": ["secops@example.com"],
    },
    "deployment": {
        "permission_model": "SELF_MANAGED",
        "regions": ["us-east-1", "eu-west-1"],
        "targets": {
            "accounts": [
                {"id": "444444444444"},
                {
                    "id": "555555555555",
                    "regions": ["us-east-1"],
                    "overrides": {"detection": {"band_width": 3}},
                },
            ]
        },
    },
    "backup": {
        "mode": "existing",
        "existing": {"vault_names": ["Default", "prod-vault"], "plan_ids": ["plan-1234"]},
    },
    "tags": {"Owner": "security"},
}

_SELF_CREATE = {
    "name": "anomaly2",
    "organization": {"management_account_id": "111111111111", "org_id": "o-exampleorg1"},
    "security": {"account_id": "333333333333", "home_region": "eu-west-1"},
    "deployment": {
        "permission_model": "SELF_MANAGED",
        "include_management_account": True,
        "regions": ["eu-west-1", "ap-southeast-2"],
        "targets": {
            "accounts": [
                {"id": "111111111111"},  # the admin account protects itself too
                {
                    "id": "444444444444",
                    "overrides": {
                        "backup": {"retention_days": 90, "schedule": "cron(0 0/12 ? * * *)"},
                        "detection": {"alarm_period_seconds": 43200},
                    },
                },
            ]
        },
        "operation_preferences": {
            "failure_tolerance_count": 1,
            "max_concurrent_count": 2,
            "region_concurrency": "SEQUENTIAL",
            "region_order": ["eu-west-1", "ap-southeast-2"],
        },
    },
    "backup": {"mode": "create", "vault_name": "anomaly-vault"},
    "detection": {"resource_types": ["EBS"]},
}

# The longest name the config allows (40 characters), SERVICE_MANAGED, no delegated admin.
_SERVICE_EXISTING = {
    "name": "a" * 19 + "-" + "b" * 20,
    "organization": {"management_account_id": "111111111111", "org_id": "o-exampleorg1"},
    "security": {
        "account_id": "333333333333",
        "home_region": "ap-southeast-4",
        "notification_emails": ["a@example.com", "b@example.org"],
    },
    "deployment": {
        "permission_model": "SERVICE_MANAGED",
        "regions": ["ap-southeast-4", "eu-central-2"],
        "targets": {
            "organizational_units": [{"id": "ou-ab12-prod0001"}, {"id": "ou-ab12-work0002"}]
        },
        "auto_deployment": {"enabled": False},
        "managed_execution": False,
    },
    "backup": {"mode": "existing"},
    "detection": {"alarm_prefix": "ops-backup-", "metric_namespace": "Custom/Backup"},
}


def _example_stackset() -> dict:
    """The example without its one per-account setting inside a targeted OU: a StackSet the
    CloudFormation resource can express (the example's stackset.json is not written)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    for account in data["deployment"]["targets"]["accounts"]:
        account.pop("overrides", None)
    return data


CONFIGS: dict[str, dict | Path] = {
    "example": EXAMPLE,
    "example-stackset": _example_stackset(),
    "self-existing": _SELF_EXISTING,
    "self-create": _SELF_CREATE,
    "service-existing": _SERVICE_EXISTING,
}
VARIANTS = tuple(CONFIGS)

_ROOT = Path(tempfile.mkdtemp(prefix="backup-anomaly-template-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def raw(variant: str) -> dict:
    """A deep copy of a variant's config data (the example is read from its file)."""
    source = CONFIGS[variant]
    if isinstance(source, Path):
        return yaml.safe_load(source.read_text())
    return copy.deepcopy(source)


def write_config(data: dict, folder: Path, name: str = "accounts.yaml") -> Path:
    """Writes ``data`` as YAML under ``folder`` and returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_from(data: dict) -> OrgConfig:
    """Loads ``data`` through the real loader (so it is validated like a user's file)."""
    folder = Path(tempfile.mkdtemp(dir=_ROOT))
    return load_config(write_config(data, folder))


@functools.cache
def config(variant: str) -> OrgConfig:
    source = CONFIGS[variant]
    return load_config(source) if isinstance(source, Path) else config_from(source)


@functools.cache
def synth(variant: str) -> SynthResult:
    """The variant synthesized once per process (do not modify its files)."""
    return synthesize(config(variant), _ROOT / "synth" / variant)


def template(variant: str, name: str) -> dict:
    """A synthesized template, parsed."""
    return json.loads(synth(variant).templates[name].read_text())


def resources(tpl: dict, type_: str) -> dict[str, dict]:
    """Resources of one type, by logical id."""
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == type_}


def one(tpl: dict, type_: str) -> dict:
    """The only resource of ``type_`` (fails if there are none or several)."""
    found = resources(tpl, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_documents(tpl: dict):
    """Every policy document in a template: (logical id, kind, document).

    Kinds: ``iam`` (role inline policies, managed and standalone policies), ``trust``,
    ``key`` (KMS key policies, where Resource "*" means the key itself), ``resource``
    (queue, topic, bucket and event bus policies) and ``boundary`` (a permissions boundary,
    which grants nothing: it caps roles whose own policies name their resources).
    """
    for logical_id, res in tpl["Resources"].items():
        props = res.get("Properties", {})
        kind = res["Type"]
        if kind == "AWS::IAM::Role":
            yield logical_id, "trust", props["AssumeRolePolicyDocument"]
            for policy in props.get("Policies", []):
                yield logical_id, "iam", policy["PolicyDocument"]
        elif kind == "AWS::IAM::ManagedPolicy" and logical_id == "MemberBoundary":
            yield logical_id, "boundary", props["PolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            yield logical_id, "iam", props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, "key", props["KeyPolicy"]
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            yield logical_id, "resource", props["PolicyDocument"]
        elif kind == "AWS::Events::EventBus" and "Policy" in props:
            yield logical_id, "resource", props["Policy"]


def statements(document: dict) -> list[dict]:
    return as_list(document["Statement"])


def all_templates():
    """(variant, template name, parsed template) for every variant and template."""
    for variant in VARIANTS:
        for name in synth(variant).templates:
            yield variant, name, template(variant, name)
