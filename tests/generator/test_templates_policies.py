"""Every policy document of every template: no Action "*", Resource "*" only where AWS
offers no resource-level permission, wildcard principals only behind an org condition."""

from __future__ import annotations

import json

import pytest

from generator.templates import stackset_roles
from tests.generator import template_helpers as h

# Actions that have no resource-level permission in IAM, so "*" is the only resource.
NO_RESOURCE_LEVEL = {
    "cloudwatch:PutMetricData",  # scoped by the cloudwatch:namespace condition
    "ec2:DescribeImages",
    "ec2:DescribeSnapshots",
    "ec2:DescribeVolumes",
    "ec2:DescribeInstances",
    "backup:DescribeBackupJob",  # AWS Backup has no backup-job resource type
    "backup:StartScanJob",  # its resource type is not confirmed: see the member template
    "securityhub:BatchUpdateFindings",  # names findings, not resources
    *stackset_roles.NO_RESOURCE_LEVEL_ACTIONS,
}

CASES = [(v, n) for v in h.VARIANTS for n in sorted(h.synth(v).templates)]


def _documents():
    for variant, name in CASES:
        for logical_id, kind, document in h.policy_documents(h.template(variant, name)):
            yield f"{variant}/{name}/{logical_id}", kind, document


def test_there_are_policies_to_check():
    kinds = {kind for _, kind, _ in _documents()}
    assert kinds == {"iam", "trust", "key", "resource", "boundary"}


def test_no_statement_allows_every_action():
    for where, _, document in _documents():
        for statement in h.statements(document):
            actions = h.as_list(statement.get("Action", []))
            assert "*" not in actions, where
            if statement["Effect"] == "Allow":
                # service:* only ever appears in Deny statements (the TLS guards).
                assert not [a for a in actions if a.endswith(":*")], (where, actions)


def test_resource_star_only_for_actions_without_resource_level_permissions():
    for where, kind, document in _documents():
        if kind in ("key", "boundary"):
            continue  # "*" is the key itself / a cap on roles that name their resources
        for statement in h.statements(document):
            if "*" in h.as_list(statement.get("Resource", [])):
                actions = set(h.as_list(statement["Action"]))
                assert actions <= NO_RESOURCE_LEVEL, (where, statement.get("Sid"), actions)


def test_wildcard_principals_only_with_an_organization_condition_or_in_a_deny():
    for where, _, document in _documents():
        for statement in h.statements(document):
            principal = statement.get("Principal")
            if principal in ("*", {"AWS": "*"}):
                if statement["Effect"] == "Deny":
                    continue
                assert "aws:PrincipalOrgID" in statement["Condition"]["StringEquals"], where


def test_service_principals_are_always_conditioned_in_resource_and_key_policies():
    for where, kind, document in _documents():
        if kind not in ("resource", "key"):
            continue
        for statement in h.statements(document):
            principal = statement.get("Principal")
            if isinstance(principal, dict) and "Service" in principal:
                assert statement.get("Condition"), (where, statement.get("Sid"))


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_trust_policies_name_one_principal(variant):
    for name in h.synth(variant).templates:
        for where, kind, document in h.policy_documents(h.template(variant, name)):
            if kind != "trust":
                continue
            (statement,) = h.statements(document)
            assert statement["Action"] == ["sts:AssumeRole"]
            assert statement["Principal"] not in ("*", {"AWS": "*"}), where


# IAM's quota for the inline policies of one role, counted without whitespace.
ROLE_INLINE_POLICY_CHARS = 10_240


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_inline_policies_fit_the_iam_quota(variant):
    for name in h.synth(variant).templates:
        tpl = h.template(variant, name)
        for logical_id, role in h.resources(tpl, "AWS::IAM::Role").items():
            policies = role["Properties"].get("Policies", [])
            size = sum(
                len(json.dumps(p["PolicyDocument"], separators=(",", ":"))) for p in policies
            )
            assert size < ROLE_INLINE_POLICY_CHARS, (name, logical_id, size)
