"""Every name the toolkit gives to a stack, resource, alarm, parameter or event.

The templates, the deploy code and the detector (through its environment, set by the member
template from these functions) all take names from here, so they cannot disagree.
Names are derived from the config's ``name`` (the product prefix, default
``backup-anomaly``) and never from CloudFormation's generated names: moto's StackSet
instances contain a colon in the stack name, and people search consoles by name.
"""

from __future__ import annotations

# Parameters of the member template. StackSet parameter overrides are keyed by these.
PARAM_BAND_WIDTH = "AnomalyBandWidth"
PARAM_CEILING_PERCENT = "CeilingPercent"
PARAM_ALARM_PERIOD = "AlarmPeriodSeconds"
PARAM_EVALUATION_PERIODS = "EvaluationPeriods"
PARAM_BACKUP_SCHEDULE = "BackupSchedule"
PARAM_RETENTION_DAYS = "BackupRetentionDays"
PARAM_CODE_BUCKET_PREFIX = "CodeBucketPrefix"
PARAM_CODE_KEY = "CodeKey"

# Events the detector puts on the central bus (source is also passed as EVENT_SOURCE).
EVENT_SOURCE = "backup-anomaly-detection"
MEASUREMENT_DETAIL_TYPE = "Backup Change Measured"
CONTINUATION_DETAIL_TYPE = "Changed Block Count Continuation"

CENTRAL_STACK_SUFFIX = "central"
ARTIFACTS_STACK_SUFFIX = "artifacts"
STACKSET_STACK_SUFFIX = "stackset"
STACKSET_ROLES_STACK_SUFFIX = "stackset-roles"

# Fixed by AWS for SELF_MANAGED StackSets unless custom role names are passed.
STACKSET_ADMIN_ROLE = "AWSCloudFormationStackSetAdministrationRole"
STACKSET_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"


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

    # -- artifacts ----------------------------------------------------------------------
    def artifact_bucket_prefix(self, account_id: str) -> str:
        """Bucket name without its region: the member template appends ``-{region}``."""
        return f"{self.prefix}-artifacts-{account_id}"

    def artifact_bucket(self, account_id: str, region: str) -> str:
        return f"{self.artifact_bucket_prefix(account_id)}-{region}"

    def lambda_key(self, sha256: str) -> str:
        return f"lambda/detector-{sha256}.zip"

    def member_template_key(self, sha256: str) -> str:
        return f"templates/member-{sha256}.json"

    # -- central ------------------------------------------------------------------------
    @property
    def central_bus(self) -> str:
        return f"{self.prefix}-central"

    def central_bus_arn(self, region: str, account_id: str) -> str:
        return f"arn:aws:events:{region}:{account_id}:event-bus/{self.central_bus}"

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
    def central_measurement_rule(self) -> str:
        return f"{self.prefix}-measurements"

    @property
    def central_key_alias(self) -> str:
        return f"alias/{self.prefix}-central"

    # -- member -------------------------------------------------------------------------
    @property
    def detector_function(self) -> str:
        return f"{self.prefix}-detector"

    @property
    def detector_role(self) -> str:
        return f"{self.prefix}-detector"

    @property
    def forwarder_role(self) -> str:
        return f"{self.prefix}-forward-to-central"

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
    def backup_rule(self) -> str:
        return f"{self.prefix}-backup-completed"

    @property
    def alarm_forward_rule(self) -> str:
        return f"{self.prefix}-alarm-forward"

    @property
    def member_key_alias(self) -> str:
        return f"alias/{self.prefix}-member"

    @property
    def backup_plan(self) -> str:
        return f"{self.prefix}-plan"

    @property
    def backup_role(self) -> str:
        return f"{self.prefix}-backup"

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
