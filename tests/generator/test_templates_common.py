"""Properties every template shares: tags, explicit names, no transforms, limits."""

from __future__ import annotations

import json

import pytest

from generator import naming
from generator.synth import MAX_PARAMETERS, MAX_RESOURCES, S3_TEMPLATE_BYTES
from tests.generator import template_helpers as h

CASES = [(v, n) for v in h.VARIANTS for n in sorted(h.synth(v).templates)]
IDS = [f"{v}-{n}" for v, n in CASES]

# Types CloudFormation cannot tag.
UNTAGGABLE = {
    "AWS::KMS::Alias",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",
    "AWS::Backup::BackupSelection",
    "AWS::IAM::ManagedPolicy",  # CloudFormation's resource takes no tags
    "AWS::IAM::RolePolicy",  # an inline policy of a tagged role
    "AWS::Lambda::Permission",  # a statement in the function's resource policy
}
# Types without a name of their own (a key is found by its alias, a policy by its target,
# a subscription by its topic and address).
UNNAMED = {
    "AWS::KMS::Key",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::EventSourceMapping",
}
NAME_PATHS = {
    "AWS::Backup::BackupPlan": ("BackupPlan", "BackupPlanName"),
    "AWS::Backup::BackupSelection": ("BackupSelection", "SelectionName"),
}
NAME_KEYS = (
    "Name",
    "ManagedPolicyName",
    "QueueName",
    "TableName",
    "LogGroupName",
    "RoleName",
    "FunctionName",
    "AliasName",
    "AlarmName",
    "BackupVaultName",
    "TopicName",
    "BucketName",
    "StackSetName",
)


def _tags(props: dict) -> dict[str, str] | None:
    if "Tags" in props:
        return {t["Key"]: t["Value"] for t in props["Tags"]}
    for key in ("BackupVaultTags", "BackupPlanTags"):
        if key in props:
            return props[key]
    return None


@pytest.mark.parametrize(("variant", "name"), CASES, ids=IDS)
def test_every_taggable_resource_carries_the_config_tags(variant, name):
    config = h.config(variant)
    expected = {**config.tags, naming.PRODUCT_TAG_KEY: config.name}
    for logical_id, res in h.template(variant, name)["Resources"].items():
        tags = _tags(res.get("Properties", {}))
        if tags is None:
            assert res["Type"] in UNTAGGABLE, f"{logical_id} ({res['Type']}) is not tagged"
            continue
        assert expected.items() <= tags.items(), logical_id


@pytest.mark.parametrize(("variant", "name"), CASES, ids=IDS)
def test_every_resource_is_named_explicitly(variant, name):
    for logical_id, res in h.template(variant, name)["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] in UNNAMED:
            continue
        if res["Type"] in NAME_PATHS:
            outer, inner = NAME_PATHS[res["Type"]]
            assert props[outer][inner], logical_id
            continue
        assert any(k in props for k in NAME_KEYS), f"{logical_id} ({res['Type']}) has no name"


@pytest.mark.parametrize(("variant", "name"), CASES, ids=IDS)
def test_no_transform_and_within_cloudformation_limits(variant, name):
    path = h.synth(variant).templates[name]
    tpl = json.loads(path.read_text())
    assert "Transform" not in tpl
    assert path.stat().st_size <= S3_TEMPLATE_BYTES
    assert len(tpl["Resources"]) <= MAX_RESOURCES
    assert len(tpl.get("Parameters", {})) <= MAX_PARAMETERS
    assert tpl["AWSTemplateFormatVersion"] == "2010-09-09"
    assert tpl["Description"]


def test_build_functions_are_pure_and_repeatable():
    from generator.templates import artifacts, central, member, stackset_roles

    config = h.config("self-create")
    builders = {
        "artifacts": lambda: artifacts.build(config),
        "central": lambda: central.build(config, "k.zip"),
        "member": lambda: member.build(config),
        "stackset_roles": lambda: stackset_roles.build(config),
    }
    for name, build in builders.items():
        first = build().to_json(sort_keys=True)
        assert build().to_json(sort_keys=True) == first, name


def test_no_template_names_a_fixed_partition():
    # The config accepts aws-us-gov and aws-cn regions (one partition per deployment):
    # there a literal "arn:aws:" principal, role or policy ARN fails the stack.
    for variant, name, tpl in h.all_templates():
        assert "arn:aws:" not in json.dumps(tpl), (variant, name)


def test_retained_resources_are_not_left_behind_by_a_failed_create():
    # "Retain" also keeps a resource that a failed first create rolls back: the named
    # vault or bucket then exists, and every retry of that stack (or stack instance)
    # fails with "already exists" until someone deletes it by hand.
    retained = 0
    for variant, name, tpl in h.all_templates():
        for logical_id, res in tpl["Resources"].items():
            if "DeletionPolicy" in res:
                retained += 1
                assert res["DeletionPolicy"] == "RetainExceptOnCreate", (
                    variant,
                    name,
                    logical_id,
                )
                assert res["UpdateReplacePolicy"] == "Retain", (variant, name, logical_id)
    assert retained
