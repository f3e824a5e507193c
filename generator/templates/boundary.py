"""The permissions boundary of every role a SELF_MANAGED member stack creates.

The StackSet execution role may create roles named with the deployment's prefix; without a
boundary it could mint one with any policy (an administrator in every target account).
With it, the execution role may create a role, or change its policies, only when the role
carries this boundary (``iam:PermissionsBoundary``), and no role the member creates can do
more than the boundary allows, whatever its own policies say: the services the detector,
the alarm forwarder and AWS Backup use for EBS volumes and EC2 instances, and no IAM,
Organizations or STS at all.

A boundary only limits; each role's own policy stays the narrow grant. A test checks that
every action the member template grants is inside the boundary, so it never silently
denies the detector.
"""

from __future__ import annotations

from awacs import aws

from generator import iam

# What the member's roles may ever do (each role's own policy grants a subset): the
# detector's reads and writes, the alarm forwarder's PutEvents, and AWS Backup's managed
# policy AWSBackupServiceRolePolicyForBackup for EBS volumes and EC2 instances (its
# other services, never selected here, are left out).
ALLOWED_ACTIONS = (
    # counting and sampling changed blocks
    "ebs:ListChangedBlocks",
    "ebs:ListSnapshotBlocks",
    "ebs:GetSnapshotBlock",
    # the volume's state and the account's request budget
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    # metrics and the per-volume alarms
    "cloudwatch:PutMetricData",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:TagResource",
    # resolving backups into snapshots; AWS Backup's snapshots and images
    "ec2:Describe*",
    "ec2:CreateSnapshot",
    "ec2:DeleteSnapshot",
    "ec2:CopySnapshot",
    "ec2:CreateImage",
    "ec2:CopyImage",
    "ec2:DeregisterImage",
    "ec2:CreateTags",
    "backup:DescribeBackupJob",
    "backup:DescribeBackupVault",
    "backup:CopyIntoBackupVault",
    "backup:CopyFromBackupVault",
    "tag:GetResources",
    # the work queue and the detector's own logs
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    # encrypted queues, table, snapshots
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:DescribeKey",
    # everything that reaches the security account
    "events:PutEvents",
    # anomalies: where the volume is attached, a confirmation scan, a Security Hub finding
    "backup:StartScanJob",
    "securityhub:BatchImportFindings",
    "securityhub:BatchUpdateFindings",
    # AWS Backup and GuardDuty scanning a recovery point (their managed policies for scans:
    # AWSBackupServiceRolePolicyForScans, AWSBackupGuardDutyRolePolicyForScans)
    "guardduty:StartMalwareScan",
    "guardduty:GetMalwareScan",
    "backup:DescribeRecoveryPoint",
    "backup:CreateBackupAccessPoint",
    "backup:DescribeBackupAccessPoint",
    "backup:DeleteBackupAccessPoint",
    "kms:RetireGrant",
)


# AWS Backup's grants on the volumes' keys, only for AWS resources (as its managed policy);
# GuardDuty's, for the scan of an encrypted recovery point, only through GuardDuty or Backup
# (AWSBackupGuardDutyRolePolicyForScans's own condition).
GRANT_ACTIONS = ("kms:CreateGrant",)
SCAN_GRANT_SERVICES = ("guardduty.*.amazonaws.com", "backup.*.amazonaws.com")
# Roles are passed only to AWS Backup (a scan names the backup and scanner roles) and by
# AWS Backup to GuardDuty Malware Protection; nothing else.
PASS_ROLE_ACTIONS = ("iam:PassRole",)
PASSED_TO = ("backup.amazonaws.com", "malware-protection.guardduty.amazonaws.com")
# AWS Backup's changes to who may use a snapshot or image, only on its own recovery points
# (its managed policy's condition: they carry the aws:backup:source-resource tag).
RECOVERY_POINT_ACTIONS = (
    "ec2:ModifySnapshotAttribute",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotTier",
)


def document():
    """The boundary's policy document (resources are each role's own policy's business)."""
    return iam.document(
        iam.allow(
            "MemberRolesAtMost",
            [aws.Action(*action.split(":", 1)) for action in ALLOWED_ACTIONS],
            # A boundary intersects with each role's policy, which names the resources.
            ["*"],
        ),
        iam.allow(
            "GrantsOnlyForAwsResources",
            [aws.Action(*action.split(":", 1)) for action in GRANT_ACTIONS],
            ["*"],
            aws.Bool("kms:GrantIsForAWSResource", "true"),
        ),
        iam.allow(
            "ScanGrantsOnlyThroughGuardDutyOrBackup",
            [aws.Action(*action.split(":", 1)) for action in GRANT_ACTIONS],
            ["*"],
            aws.StringLike("kms:ViaService", list(SCAN_GRANT_SERVICES)),
        ),
        iam.allow(
            "PassRolesOnlyToBackupAndItsScanner",
            [aws.Action(*action.split(":", 1)) for action in PASS_ROLE_ACTIONS],
            ["*"],
            aws.StringEquals("iam:PassedToService", list(PASSED_TO)),
        ),
        iam.allow(
            "OnlyBackupsOwnRecoveryPoints",
            [aws.Action(*action.split(":", 1)) for action in RECOVERY_POINT_ACTIONS],
            ["*"],
            aws.Null("aws:ResourceTag/aws:backup:source-resource", "false"),
        ),
    )
