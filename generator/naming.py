"""Every name the toolkit gives to a stack, resource, alarm, parameter or event.

The templates, the deploy code and the detector (through its environment, set by the member
template from these functions) all take names from here, so they cannot disagree.
Names are derived from the config's ``name`` (the product prefix, default
``backup-anomaly``) and never from CloudFormation's generated names: moto's StackSet
instances contain a colon in the stack name, and people search consoles by name.
"""

from __future__ import annotations

import hashlib

from backup_anomaly import contract, events, links
from backup_anomaly.records import ResetReason

# Parameters of the member template that locate its code; every other parameter is a
# setting of the contract (backup_anomaly/contract.py), named there.
PARAM_CODE_BUCKET_PREFIX = "CodeBucketPrefix"
# The permissions boundary (a managed policy's name) of the roles the member creates;
# empty: none (SERVICE_MANAGED, where StackSets' own role deploys).
PARAM_PERMISSIONS_BOUNDARY = "PermissionsBoundaryName"
# Backup mode create, per stack instance: "true" where a retained vault of the configured
# name exists already (the rollout sets it; the config never does).
PARAM_ADOPT_VAULT = "AdoptBackupVault"
PARAM_CODE_KEY = "CodeKey"

# Events, spelled once in the detector package (it cannot import the generator): what the
# detector puts on the central bus and sends itself, and the AWS events it listens to.
EVENT_SOURCE = str(contract.setting("event_source").default)
MEASUREMENT_DETAIL_TYPE = events.MEASURED_DETAIL_TYPE
BASELINE_RESET_DETAIL_TYPE = events.BASELINE_RESET_DETAIL_TYPE
CONTINUATION_DETAIL_TYPE = events.CONTINUATION_DETAIL_TYPE
# Every detail type the detector puts on the central bus (its bus policy admits only these).
ANOMALY_DETAIL_TYPE = events.ANOMALY_DETECTED_DETAIL_TYPE
HEARTBEAT_DETAIL_TYPE = events.HEARTBEAT_DETAIL_TYPE
SCAN_DETAIL_TYPE = events.SCAN_JOB_DETAIL_TYPE
SCAN_FINAL_STATES = events.SCAN_FINAL_STATES
DETECTOR_DETAIL_TYPES = (
    MEASUREMENT_DETAIL_TYPE,
    BASELINE_RESET_DETAIL_TYPE,
    ANOMALY_DETAIL_TYPE,
    HEARTBEAT_DETAIL_TYPE,
)
# ``detail.reason`` of a baseline reset whose previous snapshot was deleted: the central
# stack alerts on it (deleting recovery points is a ransomware precursor).
RESET_PREVIOUS_SNAPSHOT_MISSING = ResetReason.PREVIOUS_SNAPSHOT_MISSING.value
RESET_UNRELATED_SNAPSHOTS = ResetReason.UNRELATED_SNAPSHOTS.value
BACKUP_EVENT_SOURCE = events.BACKUP_SOURCE
BACKUP_DETAIL_TYPE = events.BACKUP_JOB_DETAIL_TYPE
ALARM_EVENT_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"

# AWS managed policies of the role AWS Backup assumes for the plan this toolkit creates;
# Fn::Sub strings, since IAM rejects a managed policy ARN of another partition.
# Backup only: nothing here restores, so the restore policy would be unused privilege.
BACKUP_MANAGED_POLICIES = (
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
)
# Confirmation scans: AWS Backup's role runs the scan job, GuardDuty's reads the recovery
# point (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSBackupServiceRolePolicyForScans.html,
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSBackupGuardDutyRolePolicyForScans.html).
BACKUP_SCAN_POLICY = "arn:${AWS::Partition}:iam::aws:policy/AWSBackupServiceRolePolicyForScans"
SCANNER_POLICY = "arn:${AWS::Partition}:iam::aws:policy/AWSBackupGuardDutyRolePolicyForScans"
SCANNER_SERVICE = "malware-protection.guardduty.amazonaws.com"
# The member's heartbeat: often enough that two missed backups are never mistaken for a
# dead detector, rarely enough to cost nothing (120 invocations a month).
HEARTBEAT_SCHEDULE = "rate(6 hours)"

CENTRAL_STACK_SUFFIX = "central"
ARTIFACTS_STACK_SUFFIX = "artifacts"
STACKSET_STACK_SUFFIX = "stackset"
STACKSET_ROLES_STACK_SUFFIX = "stackset-roles"

# Tag put on every resource besides the config's tags; its value is the config's ``name``.
PRODUCT_TAG_KEY = "backup-anomaly-detection:deployment"

# The longest region name AWS uses (ap-southeast-4, us-gov-west-1 are shorter or equal):
# names that get ``-{region}`` appended reserve this much so they fit in every region.
MAX_REGION_LENGTH = 14

# IAM names are global per account, and a StackSet puts one stack per region into each
# account: every IAM name built here carries the region. IAM role names allow 64 chars.
IAM_ROLE_MAX = 64
S3_BUCKET_MAX = 63

# Placeholder the member template fills in with Fn::Sub.
REGION_PLACEHOLDER = "${AWS::Region}"
# ARNs in templates name the stack's own partition: a literal "arn:aws:" is invalid in
# aws-us-gov and aws-cn, whose regions the config accepts.
PARTITION_PLACEHOLDER = "${AWS::Partition}"

# Inline policy names (scoped to their role, so fixed strings are unique enough).
DETECTOR_POLICY = "detector"
FORWARDER_POLICY = "forward-to-central"
STACKSET_ADMIN_POLICY = "assume-execution-roles"
STACKSET_EXECUTION_POLICY = "manage-backup-anomaly-member"

# Fixed by AWS for SELF_MANAGED StackSets unless custom role names are passed.
STACKSET_ADMIN_ROLE = "AWSCloudFormationStackSetAdministrationRole"
STACKSET_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"


# The console of each partition (``<region>`` is the alert templates' placeholder); one
# table, shared with the detector's links (backup_anomaly.links).
CONSOLE_URLS = links.CONSOLE_URLS


def console_url(partition: str) -> str:
    """The console base URL of ``partition`` (``<region>`` left for the alert template)."""
    return CONSOLE_URLS.get(partition, CONSOLE_URLS["aws"])


class Names:
    """Names for one deployment, derived from the config's product prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    # -- stacks -------------------------------------------------------------------------
    def stack(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @property
    def central_stack(self) -> str:
        return self.stack(CENTRAL_STACK_SUFFIX)

    @property
    def artifacts_stack(self) -> str:
        return self.stack(ARTIFACTS_STACK_SUFFIX)

    @property
    def stackset(self) -> str:
        return f"{self.prefix}-member"

    @property
    def stackset_stack(self) -> str:
        """Stack holding the StackSet resource (the stackset template), if used."""
        return self.stack(STACKSET_STACK_SUFFIX)

    @property
    def stackset_roles_stack(self) -> str:
        return self.stack(STACKSET_ROLES_STACK_SUFFIX)

    # -- artifacts ----------------------------------------------------------------------
    def artifact_bucket_prefix(self, account_id: str) -> str:
        """Bucket name without its region: the member template appends ``-{region}``.

        S3 names are lowercase and at most 63 characters: the prefix is lowercased and,
        when too long to leave room for any region, shortened with a hash of the full
        prefix so two long prefixes cannot collide.
        """
        return self._bucket_prefix("artifacts", account_id)

    def _bucket_prefix(self, what: str, account_id: str) -> str:
        body = f"{self.prefix.lower()}-{what}"
        tail = f"-{account_id}"
        room = S3_BUCKET_MAX - len(tail) - 1 - MAX_REGION_LENGTH
        if len(body) > room:
            digest = hashlib.sha256(f"{self.prefix}/{what}".encode()).hexdigest()[:8]
            if what == "artifacts":
                digest = hashlib.sha256(self.prefix.encode()).hexdigest()[:8]
            body = f"{body[: room - 9].rstrip('-')}-{digest}"
        return f"{body}{tail}"

    def artifact_log_bucket(self, account_id: str, region: str) -> str:
        """Where the artifact bucket of ``region`` writes its S3 server access logs."""
        return f"{self._bucket_prefix('artifact-logs', account_id)}-{region}"

    def artifact_bucket(self, account_id: str, region: str) -> str:
        return f"{self.artifact_bucket_prefix(account_id)}-{region}"

    @staticmethod
    def lambda_key(sha256: str) -> str:
        """S3 key of the detector zip, content-addressed: a new build is a new key."""
        return f"lambda/detector-{sha256}.zip"

    @staticmethod
    def member_template_key(sha256: str) -> str:
        """S3 key of the member template, content-addressed like the zip."""
        return f"templates/member-{sha256}.json"

    # -- central ------------------------------------------------------------------------
    @property
    def central_bus(self) -> str:
        return f"{self.prefix}-central"

    def central_bus_arn(self, region: str, account_id: str, partition: str = "aws") -> str:
        """The central bus's ARN; templates pass ``PARTITION_PLACEHOLDER`` into an Fn::Sub
        (EventBridge never forwards across partitions, so the member's own is the bus's)."""
        return f"arn:{partition}:events:{region}:{account_id}:event-bus/{self.central_bus}"

    @property
    def alert_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def audit_queue(self) -> str:
        return f"{self.prefix}-audit"

    @property
    def audit_dlq(self) -> str:
        return f"{self.prefix}-audit-dlq"

    @property
    def central_alarm_rule(self) -> str:
        return f"{self.prefix}-alarm-state"

    @property
    def central_alarm_alert_rule(self) -> str:
        """Volume alarms into ALARM, to the alert topic."""
        return f"{self.prefix}-alarm-alert"

    @property
    def central_alarm_resolved_rule(self) -> str:
        """Volume alarms back from ALARM to OK, to the alert topic."""
        return f"{self.prefix}-alarm-resolved"

    @property
    def central_operational_rule(self) -> str:
        """The detectors' operational alarms, to the alert topic as operational alerts."""
        return f"{self.prefix}-operational-alert"

    @property
    def central_measurement_rule(self) -> str:
        return f"{self.prefix}-measurements"

    @property
    def central_reset_rule(self) -> str:
        """Every baseline reset, to the audit queue."""
        return f"{self.prefix}-baseline-resets"

    @property
    def correlator_table(self) -> str:
        return f"{self.prefix}-central"

    @property
    def correlator_queue(self) -> str:
        return f"{self.prefix}-correlator"

    @property
    def correlator_dlq(self) -> str:
        return f"{self.prefix}-correlator-dlq"

    @property
    def correlator_function(self) -> str:
        return f"{self.prefix}-correlator"

    @property
    def correlator_log_group(self) -> str:
        return f"/aws/lambda/{self.correlator_function}"

    def correlator_role(self, region: str) -> str:
        return self._iam("correl", region)

    @property
    def correlator_rule(self) -> str:
        """The members' measurements, anomalies, resets and heartbeats, to the correlator."""
        return f"{self.prefix}-to-correlator"

    @property
    def correlator_scan_rule(self) -> str:
        """Finished confirmation scans, to the correlator and the audit queue."""
        return f"{self.prefix}-scan-results"

    @property
    def sweep_rule(self) -> str:
        return f"{self.prefix}-correlator-sweep"

    @property
    def correlator_dlq_alarm(self) -> str:
        return f"{self.prefix}-correlator-dlq"

    @property
    def correlator_errors_alarm(self) -> str:
        return f"{self.prefix}-correlator-errors"

    @property
    def central_key_alias(self) -> str:
        return f"alias/{self.prefix}-central"

    @property
    def central_dlq_alarm(self) -> str:
        """Alarm on the DLQ shared by the central rules' targets (alerts and audit)."""
        return f"{self.prefix}-central-dlq-depth"

    @property
    def member_boundary(self) -> str:
        """SELF_MANAGED: the permissions boundary of every role the member stack creates."""
        return f"{self.prefix}-member-boundary"

    # -- member -------------------------------------------------------------------------
    @property
    def detector_function(self) -> str:
        return f"{self.prefix}-detector"

    @property
    def detector_log_group(self) -> str:
        # Lambda's own default log group name, so nothing else creates a second one.
        return f"/aws/lambda/{self.detector_function}"

    def _iam(self, what: str, region: str) -> str:
        # prefix (<= 40, the config's limit) + what (<= 7) + region (<= 14) + 2 dashes
        # stays within IAM's 64.
        return f"{self.prefix}-{what}-{region}"

    def detector_role(self, region: str) -> str:
        """IAM role of the detector in ``region`` (pass REGION_PLACEHOLDER in templates)."""
        return self._iam("detect", region)

    def forwarder_role(self, region: str) -> str:
        """Role EventBridge assumes to forward alarm state changes to the central bus."""
        return self._iam("forward", region)

    def backup_role(self, region: str) -> str:
        """Role AWS Backup assumes for the plan this toolkit creates (mode ``create``)."""
        return self._iam("backup", region)

    def scanner_role(self, region: str) -> str:
        """Role GuardDuty Malware Protection assumes to scan a recovery point."""
        return self._iam("scanner", region)

    @property
    def state_table(self) -> str:
        return f"{self.prefix}-state"

    @property
    def work_queue(self) -> str:
        return f"{self.prefix}-work"

    @property
    def work_dlq(self) -> str:
        return f"{self.prefix}-work-dlq"

    @property
    def forward_dlq(self) -> str:
        """Alarm state changes the central bus refused (the forward rule's DLQ)."""
        return f"{self.prefix}-forward-dlq"

    @property
    def backup_rule(self) -> str:
        return f"{self.prefix}-backup-completed"

    @property
    def alarm_forward_rule(self) -> str:
        return f"{self.prefix}-alarm-forward"

    @property
    def scan_result_rule(self) -> str:
        return f"{self.prefix}-scan-result"

    @property
    def heartbeat_rule(self) -> str:
        return f"{self.prefix}-heartbeat"

    @property
    def member_key_alias(self) -> str:
        return f"alias/{self.prefix}-member"

    @property
    def backup_plan(self) -> str:
        return f"{self.prefix}-plan"

    @property
    def backup_plan_rule(self) -> str:
        return f"{self.prefix}-rule"

    @property
    def backup_selection(self) -> str:
        # AWS Backup caps selection names at 50 characters; the prefix is at most 40.
        return f"{self.prefix}-tagged"

    # -- alarms (the detector makes per-volume alarms from ALARM_PREFIX) -----------------
    @staticmethod
    def volume_alarm(alarm_prefix: str, volume_id: str) -> str:
        return f"{alarm_prefix}{volume_id}"

    @staticmethod
    def volume_ceiling_alarm(alarm_prefix: str, volume_id: str) -> str:
        return f"{alarm_prefix}{volume_id}-ceiling"

    @staticmethod
    def dlq_alarm(alarm_prefix: str) -> str:
        return f"{alarm_prefix}detector-dlq"

    @staticmethod
    def errors_alarm(alarm_prefix: str) -> str:
        return f"{alarm_prefix}detector-errors"

    @staticmethod
    def forward_dlq_alarm(alarm_prefix: str) -> str:
        return f"{alarm_prefix}forward-dlq"

    # -- rollout ------------------------------------------------------------------------
    @staticmethod
    def s3_object_url(bucket: str, region: str, key: str) -> str:
        """The virtual-hosted HTTPS URL CloudFormation reads a template from (China
        regions answer under amazonaws.com.cn)."""
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://{bucket}.s3.{region}.{suffix}/{key}"

    @staticmethod
    def stack_template_key(template: str, sha256: str) -> str:
        """Key of a stack template too large to pass inline (over 51,200 bytes)."""
        return f"templates/{template}-{sha256}.json"
