"""Pieces every template shares: the template header, tags, KMS keys and checkov skips."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from awacs import kms
from awacs.aws import ArnEquals, Bool, Principal, Statement
from troposphere import AWSObject, Sub, Tags, Template
from troposphere import kms as tkms

from generator import iam, naming
from generator.config.model import OrgConfig

TEMPLATE_FORMAT_VERSION = "2010-09-09"

# Actions a key administrator needs; the account root gets them so IAM policies in the
# account decide who administers the key (AWS's default key policy, minus kms:*).
KEY_ADMIN_ACTIONS = [
    kms.Action("Create*"),
    kms.Action("Describe*"),
    kms.Action("Enable*"),
    kms.Action("List*"),
    kms.Action("Put*"),
    kms.Action("Update*"),
    kms.Action("Revoke*"),
    kms.Action("Disable*"),
    kms.Action("Get*"),
    kms.Action("Delete*"),
    kms.Action("TagResource"),
    kms.Action("UntagResource"),
    kms.Action("ScheduleKeyDeletion"),
    kms.Action("CancelKeyDeletion"),
    kms.Action("RotateKeyOnDemand"),
]
KEY_USE_ACTIONS = [
    kms.Encrypt,
    kms.Decrypt,
    kms.ReEncryptFrom,
    kms.ReEncryptTo,
    kms.GenerateDataKey,
    kms.GenerateDataKeyWithoutPlaintext,
    kms.DescribeKey,
]
# What a service principal needs to write to an encrypted SQS queue or SNS topic.
SERVICE_PUBLISH_ACTIONS = [kms.GenerateDataKey, kms.Decrypt]

# In a key policy the resource is always the key itself; "*" is the only valid value.
KEY_POLICY_RESOURCE = "*"


def new_template(
    description: str,
    *,
    parameters: Iterable = (),
    resources: Iterable = (),
    outputs: Iterable = (),
    conditions: dict | None = None,
) -> Template:
    """A template with the format version, ``description`` and the given parts."""
    template = Template(Description=description)
    template.set_version(TEMPLATE_FORMAT_VERSION)
    for parameter in parameters:
        template.add_parameter(parameter)
    for name, condition in (conditions or {}).items():
        template.add_condition(name, condition)
    for resource in resources:
        template.add_resource(resource)
    for output in outputs:
        template.add_output(output)
    return template


def tag_map(config: OrgConfig) -> dict[str, str]:
    """The config's tags plus the product tag, sorted by key."""
    tags = dict(config.tags)
    tags[naming.PRODUCT_TAG_KEY] = config.name
    return dict(sorted(tags.items()))


def tags(config: OrgConfig, name: str | None = None) -> Tags:
    """CloudFormation ``Tags`` (list form) for a resource, with a ``Name`` when given."""
    values = tag_map(config)
    if name is not None and "Name" not in values:
        values["Name"] = name
    return Tags(**dict(sorted(values.items())))


def skip_checkov(resource: AWSObject, *skips: tuple[str, str]) -> AWSObject:
    """Records checkov checks that do not apply to ``resource``, each with its reason."""
    metadata = dict(getattr(resource, "Metadata", None) or {})
    metadata["checkov"] = {"skip": [{"id": check, "comment": why} for check, why in skips]}
    resource.Metadata = metadata
    return resource


def logs_key_use(sid: str, log_group: str) -> Statement:
    """The key policy statement that lets CloudWatch Logs encrypt one log group of this
    region with the key (Logs needs it in the key policy: an IAM grant is not enough).
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"""
    return iam.allow(
        sid,
        [
            kms.Encrypt,
            kms.Decrypt,
            kms.ReEncryptFrom,
            kms.ReEncryptTo,
            kms.GenerateDataKey,
            kms.DescribeKey,
        ],
        [KEY_POLICY_RESOURCE],
        ArnEquals("kms:EncryptionContext:aws:logs:arn", iam.arn("logs", f"log-group:{log_group}")),
        principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
    )


def kms_key(
    title: str,
    config: OrgConfig,
    description: str,
    extra_statements: Sequence[Statement],
    retain: bool = False,
) -> tkms.Key:
    """A customer managed, rotating KMS key administered through the account's IAM.

    Args:
        title: logical id.
        config: the organization config (rotation, deletion window, tags).
        description: what the key protects.
        extra_statements: grants for service principals, each scoped by a condition.
        retain: keep the key when the stack is deleted (it protects retained data).
    """
    policy = iam.document(
        iam.allow(
            "AccountAdministersKeyThroughIam",
            KEY_ADMIN_ACTIONS,
            [KEY_POLICY_RESOURCE],
            principal=iam.this_account(),
        ),
        iam.allow(
            "AccountUsesKeyThroughIam",
            KEY_USE_ACTIONS,
            [KEY_POLICY_RESOURCE],
            principal=iam.this_account(),
        ),
        *extra_statements,
    )
    key = tkms.Key(
        title,
        Description=description,
        EnableKeyRotation=config.encryption.kms_key_rotation,
        PendingWindowInDays=config.encryption.kms_pending_window_days,
        KeyPolicy=policy,
        Tags=tags(config),
    )
    if retain:
        retain_after_create(key)
    return key


def retain_after_create(resource: AWSObject) -> AWSObject:
    """Keeps ``resource`` when its stack is deleted or it is replaced, but not when the
    stack's first create fails: a plain "Retain" would leave the named resource behind
    on that rollback, and every retry of the stack (instance) would then fail with
    "already exists"."""
    resource.DeletionPolicy = "RetainExceptOnCreate"
    resource.UpdateReplacePolicy = "Retain"  # RetainExceptOnCreate is not valid here
    return resource


def kms_alias(title: str, alias: str, key: tkms.Key) -> tkms.Alias:
    """An alias so people find the key by name in the console."""
    return tkms.Alias(title, AliasName=alias, TargetKeyId=key.ref())


def insecure_transport_conditions() -> list:
    """Conditions matching requests made without TLS."""
    return [Bool("aws:SecureTransport", "false")]


def deny_insecure_transport(resource, actions) -> Statement:
    """Denies every request to ``resource`` that does not use TLS."""
    return iam.deny(
        "DenyInsecureTransport",
        actions,
        [resource],
        *insecure_transport_conditions(),
        principal=Principal("*"),
    )


def scope_accounts(config: OrgConfig) -> list[str] | None:
    """Accounts admitted by resource policies when there is no organization id.

    Returns:
        None when ``organization.org_id`` is set (policies use ``aws:PrincipalOrgID``),
        else the sorted target accounts (excluded ones are not admitted). The config
        model already rejects OU targets and more than ``MAX_POLICY_ACCOUNTS`` accounts
        without an org id, with their line.
    """
    if config.organization.org_id:
        return None
    return sorted({a.id for a in config.deployment.targets.deployed_accounts()})
