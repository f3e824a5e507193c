"""Typed model of ``config/accounts.yaml``.

Every section is a frozen pydantic model with ``extra="forbid"`` so a typo in a key is an
error, not a silently ignored setting. Defaults live here, once; per-OU and per-account
overrides are partial copies of the overridable sections and are resolved by
:meth:`OrgConfig.targets` (the more specific wins: account over OU over defaults).
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from generator.config.regions import known_regions

# --- scalar types -------------------------------------------------------------------------

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_OU_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
_ROOT_RE = re.compile(r"^r-[0-9a-z]{4,32}$")
_ORG_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,40}$")
_ALARM_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./#:-]{0,254}$")
_VAULT_RE = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")


def _account_id(value: object) -> str:
    # YAML reads an unquoted 012345678901 as the integer 12345678901 (or as octal): the
    # leading zero is gone before we see it, so an int is always a mistake worth naming.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("account id must be a 12-digit string")
    if isinstance(value, int):
        raise ValueError(
            f"account id {value} was read as a number; quote it (\"{value:012d}\" if it had "
            "leading zeros) so YAML keeps all 12 digits"
        )
    if not _ACCOUNT_RE.match(value):
        raise ValueError(f"account id {value!r} must be exactly 12 digits")
    return value


def _regex(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return check


def _region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(f"unknown region {value!r} (not in botocore's endpoint data)")
    return value


AccountId = Annotated[str, BeforeValidator(_account_id)]
OuId = Annotated[str, AfterValidator(_regex(_OU_RE, "OU id (ou-xxxx-xxxxxxxx)"))]
OrgId = Annotated[str, AfterValidator(_regex(_ORG_RE, "organization id (o-xxxxxxxxxx)"))]
Email = Annotated[str, AfterValidator(_regex(_EMAIL_RE, "email address"))]
Region = Annotated[str, AfterValidator(_region)]


def _ou_or_root(value: str) -> str:
    if _OU_RE.match(value) or _ROOT_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not a valid OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)")


OuOrRootId = Annotated[str, AfterValidator(_ou_or_root)]


def _unique(values: list, what: str) -> list:
    seen: dict = {}
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} at [{index}] (first at [{seen[value]}])")
        seen[value] = index
    return values


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- enums --------------------------------------------------------------------------------


class PermissionModel(StrEnum):
    SERVICE_MANAGED = "SERVICE_MANAGED"
    SELF_MANAGED = "SELF_MANAGED"


class CallAs(StrEnum):
    SELF = "SELF"
    DELEGATED_ADMIN = "DELEGATED_ADMIN"


class BackupMode(StrEnum):
    CREATE = "create"
    EXISTING = "existing"


class ResourceType(StrEnum):
    EBS = "EBS"
    EC2 = "EC2"


class RegionConcurrency(StrEnum):
    SEQUENTIAL = "SEQUENTIAL"
    PARALLEL = "PARALLEL"


class ConcurrencyMode(StrEnum):
    STRICT_FAILURE_TOLERANCE = "STRICT_FAILURE_TOLERANCE"
    SOFT_FAILURE_TOLERANCE = "SOFT_FAILURE_TOLERANCE"


# --- sections -----------------------------------------------------------------------------


class Organization(_Model):
    management_account_id: AccountId
    delegated_admin_account_id: AccountId | None = None
    org_id: OrgId | None = None


class Security(_Model):
    account_id: AccountId
    home_region: Region
    notification_emails: list[Email] = Field(default_factory=list, max_length=50)

    @field_validator("notification_emails")
    @classmethod
    def _no_duplicate_emails(cls, value: list[str]) -> list[str]:
        return _unique([v.lower() for v in value], "email")


_CRON_RE = re.compile(r"^cron\((?P<body>[^()]+)\)$")
_RATE_RE = re.compile(r"^rate\((?P<n>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*?,/#L W-]+$")


def backup_schedule(value: str) -> str:
    """Checks an AWS Backup ``cron(...)`` (six fields) or ``rate(...)`` expression."""
    rate = _RATE_RE.match(value)
    if rate:
        n, unit = int(rate["n"]), rate["unit"]
        if (n == 1) != (not unit.endswith("s")):
            raise ValueError(f"{value!r}: use '{unit.rstrip('s')}' for 1 and '{unit.rstrip('s')}s' otherwise")
        if unit.startswith("minute") and n < 60:
            raise ValueError(f"{value!r}: AWS Backup runs at most once an hour")
        return value
    cron = _CRON_RE.match(value)
    if not cron:
        raise ValueError(f"{value!r} is not a cron(...) or rate(...) expression")
    fields = cron["body"].split()
    if len(fields) != 6:
        raise ValueError(
            f"{value!r}: AWS cron takes 6 fields (minutes hours day-of-month month "
            f"day-of-week year), got {len(fields)}"
        )
    if any(not _CRON_FIELD_RE.match(f) for f in fields):
        raise ValueError(f"{value!r}: unexpected characters in a cron field")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"{value!r}: exactly one of day-of-month and day-of-week must be '?'")
    minute = fields[0]
    if minute.isdigit() and not 0 <= int(minute) <= 59:
        raise ValueError(f"{value!r}: minute must be 0-59")
    hour = fields[1]
    if hour.isdigit() and not 0 <= int(hour) <= 23:
        raise ValueError(f"{value!r}: hour must be 0-23")
    return value


Schedule = Annotated[str, AfterValidator(backup_schedule)]


class SelectionTag(_Model):
    key: str = "backup-anomaly-detection"
    value: str = "true"

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value.lower().startswith("aws:") or not _TAG_KEY_RE.match(value):
            raise ValueError(f"{value!r} is not a valid tag key")
        return value


class ExistingBackups(_Model):
    """Which of the organization's own backup jobs to measure (mode ``existing``)."""

    vault_names: list[Annotated[str, AfterValidator(_regex(_VAULT_RE, "backup vault name"))]] = (
        Field(default_factory=list, max_length=20)
    )
    plan_ids: list[str] = Field(default_factory=list, max_length=20)


class Backup(_Model):
    mode: BackupMode = BackupMode.CREATE
    vault_name: Annotated[str, AfterValidator(_regex(_VAULT_RE, "backup vault name"))] = (
        "backup-anomaly-detection"
    )
    schedule: Schedule = "cron(0 5 ? * * *)"
    retention_days: int = Field(default=35, ge=1, le=36500)
    selection_tag: SelectionTag = SelectionTag()
    existing: ExistingBackups = ExistingBackups()


class BackupOverrides(_Model):
    schedule: Schedule | None = None
    retention_days: int | None = Field(default=None, ge=1, le=36500)


class Detector(_Model):
    """Sizing of the detector Lambda in each member account and region."""

    memory_mb: int = Field(default=1024, ge=128, le=10240)
    timeout_seconds: int = Field(default=900, ge=60, le=900)
    max_concurrency: int = Field(default=5, ge=2, le=1000)
    ebs_max_requests_per_second: float = Field(default=40, gt=0, le=50)
    dlq_max_receive_count: int = Field(default=5, ge=5, le=1000)


class Detection(_Model):
    band_width: float = Field(default=2.0, gt=0, le=10)
    ceiling_percent: float = Field(default=50.0, ge=0, le=100)
    alarm_period_seconds: int = Field(default=86400, ge=3600, le=86400)
    evaluation_periods: int = Field(default=1, ge=1, le=7)
    resource_types: list[ResourceType] = Field(
        default_factory=lambda: [ResourceType.EBS, ResourceType.EC2], min_length=1
    )
    metric_namespace: Annotated[str, AfterValidator(_regex(_NAMESPACE_RE, "metric namespace"))] = (
        "BackupAnomalyDetection"
    )
    alarm_prefix: Annotated[str, AfterValidator(_regex(_ALARM_PREFIX_RE, "alarm prefix"))] = (
        "backup-anomaly-"
    )
    detector: Detector = Detector()

    @field_validator("resource_types")
    @classmethod
    def _unique_types(cls, value: list[ResourceType]) -> list[ResourceType]:
        return _unique(value, "resource type")

    @field_validator("alarm_period_seconds")
    @classmethod
    def _whole_hours(cls, value: int) -> int:
        if value % 3600:
            raise ValueError("alarm period must be a whole number of hours (backups run at most hourly)")
        return value

    @model_validator(mode="after")
    def _window(self) -> Detection:
        # CloudWatch caps period x evaluation periods at 7 days for periods of an hour or more.
        if self.alarm_period_seconds * self.evaluation_periods > 7 * 86400:
            raise ValueError("alarm_period_seconds x evaluation_periods must not exceed 7 days")
        return self


class DetectionOverrides(_Model):
    band_width: float | None = Field(default=None, gt=0, le=10)
    ceiling_percent: float | None = Field(default=None, ge=0, le=100)
    alarm_period_seconds: int | None = Field(default=None, ge=3600, le=86400)
    evaluation_periods: int | None = Field(default=None, ge=1, le=7)


class Overrides(_Model):
    """The settings an OU or an account may change; they become StackSet parameter overrides."""

    detection: DetectionOverrides = DetectionOverrides()
    backup: BackupOverrides = BackupOverrides()


class Encryption(_Model):
    kms_key_rotation: bool = True
    kms_pending_window_days: int = Field(default=30, ge=7, le=30)


class OperationPreferences(_Model):
    failure_tolerance_count: int | None = Field(default=None, ge=0)
    failure_tolerance_percentage: int | None = Field(default=None, ge=0, le=100)
    max_concurrent_count: int | None = Field(default=None, ge=1)
    max_concurrent_percentage: int | None = Field(default=25, ge=1, le=100)
    region_concurrency: RegionConcurrency = RegionConcurrency.PARALLEL
    region_order: list[Region] = Field(default_factory=list)
    concurrency_mode: ConcurrencyMode = ConcurrencyMode.STRICT_FAILURE_TOLERANCE

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: object) -> object:
        if isinstance(data, dict):
            for a, b in (
                ("failure_tolerance_count", "failure_tolerance_percentage"),
                ("max_concurrent_count", "max_concurrent_percentage"),
            ):
                if data.get(a) is not None and data.get(b) is not None:
                    raise ValueError(f"set either {a} or {b}, not both")
            if data.get("max_concurrent_count") is not None:
                data = {**data, "max_concurrent_percentage": None}
        return data


class AutoDeployment(_Model):
    enabled: bool = True
    retain_stacks_on_account_removal: bool = False


class OuTarget(_Model):
    id: OuOrRootId
    name: str | None = None
    regions: list[Region] | None = None
    overrides: Overrides = Overrides()


class AccountTarget(_Model):
    id: AccountId
    name: str | None = None
    ou: OuOrRootId | None = None
    regions: list[Region] | None = None
    overrides: Overrides = Overrides()


class Targets(_Model):
    organizational_units: list[OuTarget] = Field(default_factory=list)
    accounts: list[AccountTarget] = Field(default_factory=list)


class Deployment(_Model):
    permission_model: PermissionModel = PermissionModel.SERVICE_MANAGED
    call_as: CallAs = CallAs.SELF
    regions: list[Region] = Field(min_length=1)
    targets: Targets
    operation_preferences: OperationPreferences = OperationPreferences()
    auto_deployment: AutoDeployment = AutoDeployment()
    managed_execution: bool = True
    retain_stacks_on_removal: bool = False

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, value: list[str]) -> list[str]:
        return _unique(value, "region")


class OrgConfig(_Model):
    """The whole organization as the security team describes it."""

    name: Annotated[str, AfterValidator(_regex(_NAME_RE, "name (letters, digits, '-')"))] = (
        "backup-anomaly"
    )
    organization: Organization
    security: Security
    deployment: Deployment
    backup: Backup = Backup()
    detection: Detection = Detection()
    encryption: Encryption = Encryption()
    tags: dict[str, str] = Field(default_factory=dict, max_length=40)
    schema_version: Literal[1] = 1

    @cached_property
    def admin_account_id(self) -> str:
        """The account that owns the StackSet: the delegated admin when set."""
        return self.organization.delegated_admin_account_id or self.organization.management_account_id

    def targets(self) -> list[ResolvedTarget]:
        """Every deployment target with its regions and fully resolved overrides."""
        from generator.config.resolve import resolve_targets

        return resolve_targets(self)


class ResolvedTarget(_Model):
    """One OU or account with the settings that apply to it after overrides."""

    kind: Literal["ou", "account"]
    id: str
    ou: str | None
    regions: tuple[str, ...]
    detection: DetectionOverrides
    backup: BackupOverrides
