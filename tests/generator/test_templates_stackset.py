"""The StackSet, StackSet roles and artifact bucket templates."""

from __future__ import annotations

import json

import pytest

from generator import naming
from generator.instance_groups import instance_groups, parameter_overrides
from generator.naming import Names
from generator.templates import common, stackset, stackset_roles
from tests.generator import template_helpers as h


def _stackset(variant: str) -> dict:
    return h.one(h.template(variant, "stackset"), "AWS::CloudFormation::StackSet")["Properties"]


def test_service_managed_stackset():
    config = h.config("example-stackset")
    props = _stackset("example-stackset")
    assert props["StackSetName"] == Names(config.name).stackset
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["CallAs"] == "DELEGATED_ADMIN"
    assert props["ManagedExecution"] == {"Active": True}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["OperationPreferences"] == {
        "FailureTolerancePercentage": 0,
        "MaxConcurrentPercentage": 25,
        "RegionConcurrencyType": "PARALLEL",
        "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
    }
    assert "AdministrationRoleARN" not in props


def test_template_url_names_the_member_template_by_its_sha256():
    result = h.synth("example-stackset")
    config = h.config("example-stackset")
    bucket = Names(config.name).artifact_bucket(config.admin_account_id, "us-east-1")
    assert _stackset("example-stackset")["TemplateURL"] == (
        f"https://{bucket}.s3.us-east-1.amazonaws.com/{result.member_template_key}"
    )
    assert result.member_template_sha256 in result.member_template_key


def test_parameters_carry_code_location_and_every_overridable_default():
    result = h.synth("example-stackset")
    config = h.config("example-stackset")
    params = {
        p["ParameterKey"]: p["ParameterValue"] for p in _stackset("example-stackset")["Parameters"]
    }
    assert params == {
        naming.PARAM_CODE_BUCKET_PREFIX: Names(config.name).artifact_bucket_prefix("222222222222"),
        naming.PARAM_CODE_KEY: result.lambda_package.key,
        naming.PARAM_PERMISSIONS_BOUNDARY: "",  # SERVICE_MANAGED: StackSets' own role deploys
        naming.PARAM_ADOPT_VAULT: "false",  # the rollout sets it per instance
        "CloudWatchAlarms": "false",
        "AnomalyBandWidth": "2",
        "CeilingPercent": "50",
        "AlarmPeriodSeconds": "86400",
        "EvaluationPeriods": "1",
        "BackupSchedule": config.backup.schedule,
        "BackupRetentionDays": "35",
        "DetectorMemoryMB": "1024",
        "DetectorMaxConcurrency": "5",
        "EbsMaxRequestsPerSecond": "40",
        "EbsGetBlockRequestsPerSecond": "800",
        "ContentSampling": "true",
        "ConfirmationScan": "false",
        "SecurityHubFindings": "false",
        "FloorPercent": "1",
        "FloorBlocks": "64",
        "PriorDailyPercent": "2",
        "PriorSpread": "3",
        "LowScore": "2",
        "MediumScore": "3",
        "HighScore": "4",
        "CriticalScore": "6",
        "RelearnDays": "14",
    }


@pytest.mark.parametrize("variant", h.VARIANTS)
def test_stack_instance_groups_mirror_instance_groups(variant):
    if "stackset" not in h.synth(variant).templates:
        pytest.skip("no stackset.json for this variant (see the omitted test)")
    config = h.config(variant)
    groups = _stackset(variant)["StackInstancesGroup"]
    expected = instance_groups(config)
    assert len(groups) == len(expected)
    for got, want in zip(groups, expected, strict=True):
        assert got["Regions"] == list(want.regions)
        targets = got["DeploymentTargets"]
        assert targets.get("OrganizationalUnitIds", []) == list(want.organizational_unit_ids)
        assert targets.get("Accounts", []) == list(want.accounts)
        assert targets.get("AccountFilterType") == want.account_filter_type
        overrides = {
            p["ParameterKey"]: p["ParameterValue"] for p in got.get("ParameterOverrides", [])
        }
        assert overrides == dict(want.parameter_overrides)


def test_an_ou_with_two_parameter_sets_writes_no_stackset_template_and_says_why():
    # The example gives account 444444444444 its own band width inside its targeted OU:
    # the StackSet resource would reject the OU's two parameter sets at deploy time.
    result = h.synth("example")
    assert "stackset" not in result.templates
    manifest = json.loads(result.manifest_path.read_text())
    (reason,) = manifest["stacks"]["stackset"]["omitted"]
    assert reason.startswith("OU ou-ab12-prod0001 would have 2 parameter sets")
    assert "444444444444" in reason and "build.py deploy" in reason
    assert stackset.unexpressible(h.config("example-stackset")) == []


def test_overrides_reach_the_instances_of_an_account_outside_targeted_ous():
    data = h.raw("example-stackset")
    data["deployment"]["targets"]["accounts"].append(
        {
            "id": "777777777777",
            "ou": "ou-ab12-othr0003",
            "overrides": {"detection": {"band_width": 3}},
        }
    )
    config = h.config_from(data)
    assert stackset.unexpressible(config) == []
    groups = stackset.build(config, member_template_key="k", lambda_key="l").to_dict()
    (group,) = [
        g
        for g in groups["Resources"]["MemberStackSet"]["Properties"]["StackInstancesGroup"]
        if g["DeploymentTargets"].get("Accounts") == ["777777777777"]
    ]
    overrides = {p["ParameterKey"]: p["ParameterValue"] for p in group["ParameterOverrides"]}
    assert overrides == {"AnomalyBandWidth": "3"}


def test_existing_mode_never_overrides_backup_parameters():
    # The config rejects backup overrides in mode existing; the grouping drops them anyway,
    # since StackSets refuse overrides of parameters the template does not declare.
    settings = {"retention_days": 9, "band_width": 3.0}
    assert parameter_overrides(settings, with_backup=False) == (("AnomalyBandWidth", "3"),)
    assert ("BackupRetentionDays", "9") in parameter_overrides(settings)
    params = stackset.stackset_parameters(h.config("self-existing"), "k.zip")
    assert "BackupRetentionDays" not in params
    assert "BackupSchedule" not in params


def test_self_managed_stackset_names_its_roles():
    props = _stackset("self-create")
    assert props["PermissionModel"] == "SELF_MANAGED"
    assert props["AdministrationRoleARN"] == (
        {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::111111111111:role/{naming.STACKSET_ADMIN_ROLE}"}
    )
    assert props["ExecutionRoleName"] == naming.STACKSET_EXECUTION_ROLE
    assert "AutoDeployment" not in props
    assert "CallAs" not in props
    assert props["OperationPreferences"] == {
        "FailureToleranceCount": 1,
        "MaxConcurrentCount": 2,
        "RegionConcurrencyType": "SEQUENTIAL",
        "RegionOrder": ["eu-west-1", "ap-southeast-2"],
        "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
    }


def test_stackset_roles_only_for_self_managed():
    assert "stackset-roles" in h.synth("self-create").templates
    assert "stackset-roles" not in h.synth("example").templates


def test_administration_role_assumes_only_the_execution_roles():
    tpl = h.template("self-existing", "stackset-roles")
    admin = tpl["Resources"]["AdministrationRole"]
    assert admin["Condition"] == stackset_roles.IS_ADMIN
    props = admin["Properties"]
    assert props["RoleName"] == naming.STACKSET_ADMIN_ROLE
    (trust,) = h.statements(props["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    (policy,) = props["Policies"]
    (statement,) = h.statements(policy["PolicyDocument"])
    assert statement["Action"] == ["sts:AssumeRole"]
    assert statement["Resource"] == [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{a}:role/{naming.STACKSET_EXECUTION_ROLE}"}
        for a in ("444444444444", "555555555555")
    ]
    assert tpl["Conditions"][stackset_roles.IS_ADMIN] == {
        "Fn::Equals": [{"Ref": "AWS::AccountId"}, "111111111111"]
    }


def test_execution_role_trusts_only_the_administration_role():
    tpl = h.template("self-existing", "stackset-roles")
    role = tpl["Resources"]["ExecutionRole"]
    assert role["Condition"] == stackset_roles.IS_TARGET  # not in the admin account
    props = role["Properties"]
    assert props["RoleName"] == naming.STACKSET_EXECUTION_ROLE
    (trust,) = h.statements(props["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::111111111111:root"}
    }
    assert trust["Condition"] == {
        "ArnEquals": {
            "aws:PrincipalArn": {
                "Fn::Sub": "arn:${AWS::Partition}:iam::111111111111:role/"
                + naming.STACKSET_ADMIN_ROLE
            }
        }
    }
    assert "ManagedPolicyArns" not in props  # never AdministratorAccess


def test_execution_role_exists_in_the_admin_account_when_it_is_a_target():
    tpl = h.template("self-create", "stackset-roles")
    assert "Condition" not in tpl["Resources"]["ExecutionRole"]
    assert stackset_roles.IS_TARGET not in tpl.get("Conditions", {})


def test_execution_role_covers_backups_only_in_create_mode():
    def sids(variant):
        tpl = h.template(variant, "stackset-roles")
        (policy,) = tpl["Resources"]["ExecutionRole"]["Properties"]["Policies"]
        return {s["Sid"] for s in h.statements(policy["PolicyDocument"])}

    assert {"ManageOwnVault", "ManageOwnPlan"} <= sids("self-create")
    assert not {"ManageOwnVault", "ManageOwnPlan"} & sids("self-existing")


def test_execution_role_resources_are_named_with_the_prefix():
    tpl = h.template("self-existing", "stackset-roles")
    (policy,) = tpl["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    for statement in h.statements(policy["PolicyDocument"]):
        for resource in statement["Resource"]:
            text = resource if isinstance(resource, str) else resource["Fn::Sub"]
            if text == "*":
                continue
            assert (
                "backup-anomaly" in text
                or text.endswith(":key/*")
                or text.endswith("backup-plan:*")
                or text.endswith("event-source-mapping:*")
                or text.endswith("log-group:*")
            ), (statement["Sid"], text)


# -- artifacts --------------------------------------------------------------------------


def _bucket(variant: str, logical_id: str = "ArtifactBucket") -> dict:
    return h.resources(h.template(variant, "artifacts"), "AWS::S3::Bucket")[logical_id]


def test_artifact_bucket_is_versioned_encrypted_private_and_retained():
    bucket = _bucket("example")
    props = bucket["Properties"]
    assert props["BucketName"] == {
        "Fn::Sub": "backup-anomaly-artifacts-222222222222-${AWS::Region}"
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    # Reads of the code every member runs are logged (CloudTrail only has them where data
    # events are on): there is no checkov skip left that claims otherwise.
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": "ArtifactLogBucket"},
        "LogFilePrefix": "artifacts/",
    }
    assert "Metadata" not in bucket


def test_the_access_log_bucket_takes_logs_only_from_the_artifact_bucket_and_keeps_them():
    logs = _bucket("example", "ArtifactLogBucket")
    assert logs["DeletionPolicy"] == "RetainExceptOnCreate"
    assert logs["Properties"]["BucketName"] == {
        "Fn::Sub": "backup-anomaly-artifact-logs-222222222222-${AWS::Region}"
    }
    policies = h.resources(h.template("example", "artifacts"), "AWS::S3::BucketPolicy")
    write, deny = h.statements(policies["ArtifactLogBucketPolicy"]["Properties"]["PolicyDocument"])
    assert write["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert write["Action"] == ["s3:PutObject"]
    assert write["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["ArtifactBucket", "Arn"]}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_log_bucket_name_fits_s3_for_the_longest_prefix_and_region():
    names = Names(h.config("service-existing").name)
    name = names.artifact_log_bucket("111111111111", "x" * naming.MAX_REGION_LENGTH)
    assert len(name) <= naming.S3_BUCKET_MAX and name == name.lower()


def _bucket_policy(variant: str) -> list[dict]:
    policies = h.resources(h.template(variant, "artifacts"), "AWS::S3::BucketPolicy")
    return h.statements(policies["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"])


def test_bucket_is_readable_by_the_organization_over_tls_only():
    read, deny = _bucket_policy("example")
    assert read["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert read["Principal"] == {"AWS": "*"}
    assert read["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorg1"}}
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == ["s3:*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_without_org_id_is_readable_by_the_listed_accounts_only():
    read, _ = _bucket_policy("self-existing")
    security = h.config("self-existing").security.account_id  # its correlator's code
    assert read["Principal"] == {
        "AWS": [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{a}:root"}
            for a in sorted(("444444444444", "555555555555", security))
        ]
    }
    assert "Condition" not in read


def test_bucket_name_fits_s3_for_the_longest_prefix_and_region():
    config = h.config("service-existing")
    names = Names(config.name)
    name = names.artifact_bucket("111111111111", "x" * naming.MAX_REGION_LENGTH)
    assert len(name) <= naming.S3_BUCKET_MAX
    assert name == name.lower()
    longer = Names(config.name + "x")
    assert names.artifact_bucket_prefix("1" * 12) != longer.artifact_bucket_prefix("1" * 12)


# -- excluded accounts ------------------------------------------------------------------


def test_example_carves_the_excluded_account_out_of_its_ou():
    groups = _stackset("example-stackset")["StackInstancesGroup"]
    work = [
        g for g in groups if g["DeploymentTargets"]["OrganizationalUnitIds"] == ["ou-ab12-work0002"]
    ]
    assert sorted(
        (g["DeploymentTargets"]["AccountFilterType"], tuple(g["DeploymentTargets"]["Accounts"]))
        for g in work
    ) == [
        ("DIFFERENCE", ("555555555555", "666666666666")),  # analytics has its own regions
        ("INTERSECTION", ("555555555555",)),  # the excluded account has no group
    ]


def test_excluded_account_gets_no_execution_role_and_no_bucket_access():
    data = h.raw("self-existing")
    data["deployment"]["targets"]["accounts"].append({"id": "666666666666", "exclude": True})
    config = h.config_from(data)
    roles = stackset_roles.StackSetRolesTemplate(config).execution_role_arns()
    assert [r.to_dict() for r in roles] == [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{a}:role/{naming.STACKSET_EXECUTION_ROLE}"}
        for a in ("444444444444", "555555555555")
    ]
    assert common.scope_accounts(config) == ["444444444444", "555555555555"]
    assert sorted(a for g in instance_groups(config) for a in g.accounts) == [
        "444444444444",
        "555555555555",
    ]


# -- execution role against CloudFormation's resource handlers ---------------------------

# Actions CloudFormation's handlers may call that the member template never triggers,
# each for a property it does not set. Anything else a handler lists must be allowed.
_HANDLER_ACTIONS_NOT_USED = {
    # DynamoDB: no import, replicas, streams to Kinesis, contributor insights updates,
    # TTL, resource policy or auto scaling; items are the detector's business.
    **dict.fromkeys(
        [
            "dynamodb:DescribeImport",
            "dynamodb:ImportTable",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:UpdateContributorInsights",
            "dynamodb:EnableKinesisStreamingDestination",
            "dynamodb:DisableKinesisStreamingDestination",
            "dynamodb:UpdateKinesisStreamingDestination",
            "dynamodb:PutResourcePolicy",
            "dynamodb:DeleteResourcePolicy",
            "dynamodb:CreateTableReplica",
            "dynamodb:AssociateTableReplica",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "kinesis:DescribeStream",
            "kinesis:PutRecords",
            "s3:GetObjectMetadata",
            "s3:ListBucket",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ],
        "DynamoDB table: no import, replica, Kinesis stream or resource policy",
    ),
    # Lambda: no VPC, file systems, layers, code signing, reserved or provisioned
    # concurrency, runtime pinning, capacity providers or published versions.
    **dict.fromkeys(
        [
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
            "ec2:DescribeNetworkInterfaces",
            "elasticfilesystem:DescribeMountTargets",
            "s3files:ListMountTargets",
            "lambda:GetLayerVersion",
            "lambda:GetCodeSigningConfig",
            "lambda:PutFunctionCodeSigningConfig",
            "lambda:DeleteFunctionCodeSigningConfig",
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:PutRuntimeManagementConfig",
            "lambda:PutFunctionScalingConfig",
            "lambda:PassCapacityProvider",
            "lambda:AssociateRuntimeAlias",
            "lambda:PublishVersion",
        ],
        "Lambda function: no VPC, EFS, layers, code signing, concurrency or versions",
    ),
    # Logs: no data protection, index or resource policy, deliveries or deletion
    # protection on the detector's log group.
    **dict.fromkeys(
        [
            "logs:PutDataProtectionPolicy",
            "logs:CreateLogDelivery",
            "s3:REST.PUT.OBJECT",
            "firehose:TagDeliveryStream",
            "logs:PutResourcePolicy",
            "logs:DeleteResourcePolicy",
            "logs:PutIndexPolicy",
            "logs:DeleteIndexPolicy",
            "logs:PutBearerTokenAuthentication",
            "logs:PutLogGroupDeletionProtection",
        ],
        "log group: no data protection, index or resource policy",
    ),
    # Backup vault: no access policy, notifications or vault lock.
    **dict.fromkeys(
        [
            "backup:PutBackupVaultAccessPolicy",
            "backup:PutBackupVaultNotifications",
            "backup:PutBackupVaultLockConfiguration",
            "backup:DeleteBackupVaultAccessPolicy",
            "backup:DeleteBackupVaultNotifications",
            "backup:DeleteBackupVaultLockConfiguration",
            "backup-storage:Mount",
        ],
        "vault: no access policy, notifications or lock",
    ),
    "iam:PutRolePermissionsBoundary": "roles carry no permissions boundary",
    "iam:DeleteRolePermissionsBoundary": "roles carry no permissions boundary",
}
# The same, for one resource type only (another type in the template does need it).
_HANDLER_ACTIONS_NOT_USED_BY_TYPE = {
    ("AWS::DynamoDB::Table", "iam:CreateServiceLinkedRole"): "global tables, auto scaling",
}


def _handler_permissions() -> dict[str, dict[str, list[str]]]:
    """Resource type -> handler -> permissions, from the schemas cfn-lint ships."""
    import glob
    import json
    import os

    import cfnlint

    found: dict[str, dict[str, list[str]]] = {}
    folder = os.path.join(os.path.dirname(cfnlint.__file__), "data", "schemas", "resources")
    for path in glob.glob(os.path.join(folder, "*.json")):
        with open(path) as f:
            schema = json.load(f)
        handlers = schema.get("handlers")
        if handlers and schema.get("typeName") not in found:
            found[schema["typeName"]] = {k: v.get("permissions", []) for k, v in handlers.items()}
    return found


def _allowed_actions(document: dict) -> list[str]:
    return [
        a.lower()
        for s in h.statements(document)
        if s["Effect"] == "Allow"
        for a in h.as_list(s["Action"])
    ]


def _is_allowed(action: str, allowed: list[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in allowed)


@pytest.mark.parametrize("variant", ["self-create", "self-existing"])
def test_execution_role_allows_every_call_cloudformation_makes_for_the_member(variant):
    """A missing action here fails the stack instance in every target account."""
    member = h.template(variant, "member")
    roles = h.template(variant, "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    allowed = _allowed_actions(policy["PolicyDocument"])
    handlers = _handler_permissions()
    missing = set()
    for type_ in {r["Type"] for r in member["Resources"].values()}:
        assert type_ in handlers, f"no handler schema for {type_}"
        for handler in ("create", "read", "update", "delete"):
            for action in handlers[type_].get(handler, []):
                unused = action in _HANDLER_ACTIONS_NOT_USED or (
                    (type_, action) in _HANDLER_ACTIONS_NOT_USED_BY_TYPE
                )
                if not unused and not _is_allowed(action, allowed):
                    missing.add(f"{type_} {handler}: {action}")
    assert not missing, sorted(missing)


def test_execution_role_tags_event_source_mappings_by_their_own_arn():
    # The mapping carries the product tags: tag-on-create is authorized as
    # lambda:TagResource on the mapping's ARN, not the function's.
    roles = h.template("self-existing", "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    resources = [
        r if isinstance(r, str) else r["Fn::Sub"]
        for s in h.statements(policy["PolicyDocument"])
        if "lambda:TagResource" in h.as_list(s["Action"])
        for r in h.as_list(s["Resource"])
    ]
    assert any(r.endswith(":event-source-mapping:*") for r in resources), resources


def test_execution_role_may_tag_the_key_it_creates():
    # CloudFormation creates the key with its tags in the CreateKey request, which KMS
    # authorizes as kms:TagResource on a key that has no tags yet: a grant conditioned
    # on aws:ResourceTag alone denies it and the key (and every stack) fails to create.
    roles = h.template("self-existing", "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    tag = f"aws:RequestTag/{naming.PRODUCT_TAG_KEY}"
    tagging = [
        s
        for s in h.statements(policy["PolicyDocument"])
        if "kms:TagResource" in h.as_list(s["Action"])
    ]
    assert any(
        s.get("Condition", {}).get("StringEquals", {}).get(tag) == "backup-anomaly"
        and "aws:ResourceTag/" + naming.PRODUCT_TAG_KEY
        not in s.get("Condition", {}).get("StringEquals", {})
        for s in tagging
    ), tagging


def test_execution_role_may_tag_the_stacks_stacksets_creates():
    # StackSets puts the StackSet's tags on every stack instance's stack.
    roles = h.template("self-existing", "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    (stacks,) = [s for s in h.statements(policy["PolicyDocument"]) if s["Sid"] == "ManageOwnStacks"]
    assert {"cloudformation:TagResource", "cloudformation:UntagResource"} <= set(stacks["Action"])


def test_execution_role_reads_code_only_from_the_admin_accounts_buckets():
    # Bucket names are predictable: a same-named bucket in another account (a region the
    # admin has not deployed yet) must not be where member stacks take the code from.
    roles = h.template("self-existing", "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    (read,) = [s for s in h.statements(policy["PolicyDocument"]) if s["Sid"] == "ReadDetectorCode"]
    assert read["Condition"] == {"StringEquals": {"s3:ResourceAccount": "111111111111"}}


def test_execution_policy_fits_iams_inline_size_limit_for_the_longest_name():
    # IAM caps a role's inline policies at 10,240 characters (whitespace not counted):
    # over it, the roles stack fails in every target account.
    import json

    data = h.raw("self-create")
    data["name"] = "a" * 19 + "-" + "b" * 20
    template = json.loads(stackset_roles.build(h.config_from(data)).to_json())
    (policy,) = template["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    text = json.dumps(policy["PolicyDocument"], separators=(",", ":"))
    text = text.replace("${AWS::Partition}", "aws-us-gov").replace(
        "${AWS::AccountId}", "123456789012"
    )
    assert len(text) <= 10_240


def test_execution_role_reads_event_source_mappings_without_the_function_condition():
    # lambda:FunctionArn is in the request context of Create/Update/DeleteEventSourceMapping
    # only: a Get behind that condition is denied, and the mapping handler's read (after
    # every create) fails the stack.
    roles = h.template("self-existing", "stackset-roles")
    (policy,) = roles["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    readers = [
        s
        for s in h.statements(policy["PolicyDocument"])
        if "lambda:GetEventSourceMapping" in h.as_list(s["Action"])
    ]
    assert readers and all("Condition" not in s for s in readers), readers


# -- SELF_MANAGED: no role the member creates can hold more than the boundary --------------


def _granted_actions(template: dict) -> set[str]:
    actions = set()
    for resource in template["Resources"].values():
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::RolePolicy":
            documents = [resource["Properties"]["PolicyDocument"]]
        for document in documents:
            for statement in h.statements(document):
                actions.update(h.as_list(statement["Action"]))
    return actions


@pytest.mark.parametrize("variant", ["self-existing", "self-create"])
def test_the_boundary_allows_every_action_the_member_grants(variant):
    import fnmatch

    from generator.templates import boundary

    granted = _granted_actions(h.template(variant, "member"))
    assert granted, "the member template grants something"
    capped = (
        *boundary.ALLOWED_ACTIONS,
        *boundary.GRANT_ACTIONS,
        *boundary.RECOVERY_POINT_ACTIONS,
        *boundary.PASS_ROLE_ACTIONS,
    )
    outside = [a for a in granted if not any(fnmatch.fnmatch(a, p) for p in capped)]
    assert outside == []
    assert not any(
        p.startswith(("iam:", "sts:", "organizations:")) for p in boundary.ALLOWED_ACTIONS
    )


def test_every_member_role_carries_the_boundary_when_the_stackset_has_one():
    member = h.template("self-create", "member")
    roles = h.resources(member, "AWS::IAM::Role")
    assert roles
    for role in roles.values():
        assert role["Properties"]["PermissionsBoundary"] == {
            "Fn::If": [
                "HasPermissionsBoundary",
                {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/"
                    "${PermissionsBoundaryName}"
                },
                {"Ref": "AWS::NoValue"},
            ]
        }
    self_params = stackset.stackset_parameters(h.config("self-create"), "k.zip")
    assert self_params["PermissionsBoundaryName"] == "anomaly2-member-boundary"
    service_params = stackset.stackset_parameters(h.config("service-existing"), "k.zip")
    assert service_params["PermissionsBoundaryName"] == ""


def test_the_execution_role_creates_roles_only_with_the_boundary():
    tpl = h.template("self-create", "stackset-roles")
    (role,) = [
        r
        for r in h.resources(tpl, "AWS::IAM::Role").values()
        if "Condition" in r or True
        if r["Properties"]["RoleName"] == naming.STACKSET_EXECUTION_ROLE
    ]
    (policy,) = role["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in h.statements(policy["PolicyDocument"])}
    boundary_arn = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/anomaly2-member-boundary"
    }
    writes = ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy")
    for statement in statements.values():
        if set(writes) & set(statement["Action"]):
            condition = statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"]
            assert condition == boundary_arn, statement["Sid"]
    every = {a for s in statements.values() for a in s["Action"]}
    assert "iam:DeleteRolePermissionsBoundary" not in every
    assert h.one(tpl, "AWS::IAM::ManagedPolicy")["Properties"]["ManagedPolicyName"] == (
        "anomaly2-member-boundary"
    )


def test_stackset_role_names_come_from_the_config():
    data = h.raw("self-create")
    data["deployment"]["stackset_roles"] = {
        "administration_role_name": "corp-ss-admin",
        "execution_role_name": "corp-ss-exec",
    }
    config = h.config_from(data)
    tpl = stackset_roles.build(config).to_dict()
    names = sorted(r["Properties"]["RoleName"] for r in h.resources(tpl, "AWS::IAM::Role").values())
    assert names == ["corp-ss-admin", "corp-ss-exec"]
    props = stackset.build(config, member_template_key="k", lambda_key="l").to_dict()
    stackset_props = props["Resources"]["MemberStackSet"]["Properties"]
    assert stackset_props["ExecutionRoleName"] == "corp-ss-exec"
    assert stackset_props["AdministrationRoleARN"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::111111111111:role/corp-ss-admin"
    }


def test_stackset_role_names_are_refused_under_service_managed():
    from generator.config.loader import ConfigError

    data = h.raw("service-existing")
    data["deployment"]["stackset_roles"] = {"execution_role_name": "x"}
    with pytest.raises(ConfigError) as caught:
        h.config_from(data)
    (issue,) = caught.value.issues
    assert issue.path == "deployment.stackset_roles"
    assert "applies only to SELF_MANAGED" in issue.message
