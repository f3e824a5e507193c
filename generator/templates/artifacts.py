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
from awacs.aws import ArnLike, Principal, StringEquals
from troposphere import Join, Output, Ref, Sub, Template
from troposphere import s3 as ts3

from generator import iam
from generator.config.model import OrgConfig
from generator.naming import REGION_PLACEHOLDER, Names
from generator.templates import common

NONCURRENT_VERSION_DAYS = 90
ABORT_MULTIPART_DAYS = 7
# A year of access logs, the same as the detector's own logs.
LOG_RETENTION_DAYS = 365
LOG_PREFIX = "artifacts/"


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
            # Every read of the code every member runs is logged (S3 server access logs;
            # CloudTrail logs object reads only where data events are on).
            LoggingConfiguration=ts3.LoggingConfiguration(
                DestinationBucketName=self.log_bucket.ref(), LogFilePrefix=LOG_PREFIX
            ),
            Tags=common.tags(self.config),
        )
        # Deployed stacks refer to objects in it: an accidental stack deletion must not
        # take the code of every detector with it.
        return common.retain_after_create(bucket)

    @cached_property
    def log_bucket(self) -> ts3.Bucket:
        """The artifact bucket's access logs: who read the code, from where, when."""
        bucket = ts3.Bucket(
            "ArtifactLogBucket",
            BucketName=Sub(self.names.artifact_log_bucket(self.admin_account, REGION_PLACEHOLDER)),
            # Server access logs can be delivered only to a bucket encrypted with SSE-S3:
            # https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
            BucketEncryption=ts3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    ts3.ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=ts3.ServerSideEncryptionByDefault(
                            SSEAlgorithm="AES256"
                        )
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
                        Id="expire-logs",
                        Status="Enabled",
                        ExpirationInDays=LOG_RETENTION_DAYS,
                        NoncurrentVersionExpiration=ts3.NoncurrentVersionExpiration(
                            NoncurrentDays=1
                        ),
                    )
                ]
            ),
            Tags=common.tags(self.config),
        )
        # Audit data: kept when the stack is deleted.
        common.retain_after_create(bucket)
        return common.skip_checkov(
            bucket,
            (
                "CKV_AWS_18",
                "This is the access-log bucket of the artifact bucket: S3 cannot log a bucket "
                "into itself without logging its own log deliveries forever.",
            ),
        )

    @cached_property
    def log_bucket_policy(self) -> ts3.BucketPolicy:
        """Only S3's logging service, for the artifact bucket of this account, may write."""
        objects = Join("", [self.log_bucket.get_att("Arn"), "/*"])
        return ts3.BucketPolicy(
            "ArtifactLogBucketPolicy",
            Bucket=self.log_bucket.ref(),
            PolicyDocument=iam.document(
                iam.allow(
                    "S3ServerAccessLogsDelivery",
                    [as3.PutObject],
                    [objects],
                    ArnLike("aws:SourceArn", self.bucket.get_att("Arn")),
                    StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                    principal=iam.service("logging.s3.amazonaws.com"),
                ),
                iam.deny(
                    "DenyInsecureTransport",
                    [as3.Action("*")],
                    [self.log_bucket.get_att("Arn"), objects],
                    *common.insecure_transport_conditions(),
                    principal=Principal("*"),
                ),
            ),
        )

    def objects_arn(self) -> Join:
        return Join("", [self.bucket.get_att("Arn"), "/*"])

    def readers(self):
        """Read access for the organization, or for the listed target accounts and the
        security account."""
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
        # The security account too: its correlator runs from the same zip.
        readers = sorted({*self.accounts, self.config.security.account_id})
        return iam.allow(
            "TargetAccountsReadArtifacts",
            actions,
            [objects],
            principal=iam.accounts(readers),
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
            resources=[self.log_bucket, self.log_bucket_policy, self.bucket, self.bucket_policy],
            outputs=[Output("BucketName", Value=self.bucket.ref())],
        )


def build(config: OrgConfig) -> Template:
    """The artifact bucket template for ``config`` (region-independent)."""
    return ArtifactsTemplate(config).create_template()
