"""Artifacts template: the code bucket of one region, in the StackSet admin account.

Deployed once per region that needs it (every target region, plus the security account's
home region where the StackSet resource reads the member template), always as the same
template: the bucket name is ``Names.artifact_bucket(admin_account, region)`` with the
region filled in by CloudFormation. Lambda loads code only from a bucket in its own
region, hence one bucket per region. Member accounts read it: CloudFormation (the StackSet
execution role) passes the object to Lambda with the caller's credentials.
"""

from __future__ import annotations

from functools import cached_property

from awacs import s3 as as3
from awacs.aws import Principal, StringEquals
from troposphere import Join, Output, Sub, Template
from troposphere import s3 as ts3

from generator import iam
from generator.config.model import OrgConfig
from generator.naming import REGION_PLACEHOLDER, Names
from generator.templates import common

NONCURRENT_VERSION_DAYS = 90
ABORT_MULTIPART_DAYS = 7


class ArtifactsTemplate:
    """Builds the artifact bucket template."""

    def __init__(self, config: OrgConfig):
        self.config = config
        self.names = Names(config.name)
        self.admin_account = config.admin_account_id
        self.accounts = common.scope_accounts(config)

    @cached_property
    def bucket(self) -> ts3.Bucket:
        bucket = ts3.Bucket(
            "ArtifactBucket",
            BucketName=Sub(self.names.artifact_bucket(self.admin_account, REGION_PLACEHOLDER)),
            BucketEncryption=ts3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    ts3.ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=ts3.ServerSideEncryptionByDefault(
                            SSEAlgorithm="AES256"
                        ),
                        BucketKeyEnabled=True,
                    )
                ]
            ),
            VersioningConfiguration=ts3.VersioningConfiguration(Status="Enabled"),
            PublicAccessBlockConfiguration=ts3.PublicAccessBlockConfiguration(
                BlockPublicAcls=True,
                BlockPublicPolicy=True,
                IgnorePublicAcls=True,
                RestrictPublicBuckets=True,
            ),
            OwnershipControls=ts3.OwnershipControls(
                Rules=[ts3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
            ),
            LifecycleConfiguration=ts3.LifecycleConfiguration(
                Rules=[
                    ts3.LifecycleRule(
                        Id="expire-old-versions",
                        Status="Enabled",
                        NoncurrentVersionExpiration=ts3.NoncurrentVersionExpiration(
                            NoncurrentDays=NONCURRENT_VERSION_DAYS
                        ),
                        AbortIncompleteMultipartUpload=ts3.AbortIncompleteMultipartUpload(
                            DaysAfterInitiation=ABORT_MULTIPART_DAYS
                        ),
                    )
                ]
            ),
            Tags=common.tags(self.config),
        )
        # Deployed stacks refer to objects in it: an accidental stack deletion must not
        # take the code of every detector with it.
        common.retain_after_create(bucket)
        return common.skip_checkov(
            bucket,
            (
                "CKV_AWS_18",
                "Holds only content-addressed code and templates written by the deploy "
                "tool; access is audited by CloudTrail, and a log bucket per region would "
                "itself be an unlogged bucket.",
            ),
        )

    def objects_arn(self) -> Join:
        return Join("", [self.bucket.get_att("Arn"), "/*"])

    def readers(self):
        """Read access for the organization, or for the listed target accounts."""
        objects = self.objects_arn()
        actions = [as3.GetObject, as3.GetObjectVersion]
        if self.accounts is None:
            return iam.allow(
                "OrganizationReadsArtifacts",
                actions,
                [objects],
                StringEquals("aws:PrincipalOrgID", self.config.organization.org_id),
                principal=Principal("AWS", "*"),
            )
        return iam.allow(
            "TargetAccountsReadArtifacts",
            actions,
            [objects],
            principal=iam.accounts(self.accounts),
        )

    @cached_property
    def bucket_policy(self) -> ts3.BucketPolicy:
        return ts3.BucketPolicy(
            "ArtifactBucketPolicy",
            Bucket=self.bucket.ref(),
            PolicyDocument=iam.document(
                self.readers(),
                iam.deny(
                    "DenyInsecureTransport",
                    [as3.Action("*")],
                    [self.bucket.get_att("Arn"), self.objects_arn()],
                    *common.insecure_transport_conditions(),
                    principal=Principal("*"),
                ),
            ),
        )

    def create_template(self) -> Template:
        return common.new_template(
            f"Backup anomaly detection ({self.config.name}): code and template bucket of one "
            f"region, in the StackSet admin account {self.admin_account}",
            resources=[self.bucket, self.bucket_policy],
            outputs=[Output("BucketName", Value=self.bucket.ref())],
        )


def build(config: OrgConfig) -> Template:
    """The artifact bucket template for ``config`` (region-independent)."""
    return ArtifactsTemplate(config).create_template()
