"""Typed model of ``config/accounts.yaml``.

Every section is a frozen pydantic model with ``extra="forbid"`` so a typo in a key is an
error, not a silently ignored setting. Defaults live here, once; per-OU and per-account
overrides are partial copies of the overridable sections and are resolved by
:func:`generator.config.resolve.targets` (the more specific wins: account over OU over defaults).

Rules that span fields live in ``model_validator(mode="after")`` methods on the smallest
model that holds the fields, and raise :class:`RuleViolations` so that each problem keeps
its own path (``targets.accounts[3].ou``), which the loader turns into a line number.
Decisions a reader might question, stated once:

- The management account as a target: an error under SERVICE_MANAGED (StackSets never
  deploy there); under SELF_MANAGED only with ``deployment.include_management_account:
  true``, because the management account should run no workloads and listing it is far
  more often a paste slip than an intent.
- The security account's home region need not be a deployment region: members forward
  over EventBridge, which crosses regions. It must be in the same partition, which
  EventBridge does not cross.
- A target's ``regions`` must be a subset of ``deployment.regions``: the per-region
  artifact buckets (Lambda code must be in the function's region) exist only there.
- A root (``r-...``) as an OU target excludes other OU targets: they are inside it, and
  two instance groups would set the same stack instances' parameters differently.
- The alarm period must equal the backup interval when the schedule has a fixed one of a
  day or less (defaults and each target's effective pair): one data point per period is
  what the anomaly band and the ceiling alarm are built on.
- Account ids are quoted strings; an unquoted id is an error even when it has 12 digits,
  so that one rule ("quote them") covers the ids YAML would have corrupted.
- Settings that would be silently ignored are errors: ``backup.existing`` in mode
  ``create``; the plan settings (``vault_name``, ``schedule``, ``retention_days``,
  ``selection_tag``) and per-target ``overrides.backup`` in mode ``existing``;
  ``auto_deployment`` and ``call_as: DELEGATED_ADMIN`` under SELF_MANAGED; ``regions``
  and ``overrides`` on an account with ``exclude: true``.
- ``exclude: true`` on an account is accepted under both permission models. Under
  SERVICE_MANAGED it carves the account out of its OU's stack instances; under
  SELF_MANAGED the account is simply not deployed. In both it keeps the account listed,
  which is what stops ``import-accounts`` from adding it back. Its ``ou`` need not be a
  target (excluding an account no target reaches only keeps it out of imports). Whether a
  targeted OU reaches it through a child OU only Organizations can tell, so the plan
  checks that.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from backup_anomaly.contract import Scope
from generator import naming
from generator.config.fields import (
    NAME_RE,
    AccountId,
    Email,
    Int,
    OrgId,
    OuOrRootId,
    PlanId,
    Region,
    TagKey,
    TagValue,
    VaultName,
)
from generator.config.regions import partition_of
from generator.config.rules import Loc, duplicates, raise_problems
from generator.config.schedule import schedule_interval
from generator.config.sections import (
    Section,
    entries,
    overridden,
    section_model,
    setting,
    value,
)

# Accounts a resource policy can list before it outgrows its size limit (SNS topic and
# EventBridge bus policies are the tightest); beyond it only aws:PrincipalOrgID scales.
MAX_POLICY_ACCOUNTS = 300


_raise = raise_problems
_duplicates = duplicates


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


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
    """The organization's management account."""
    delegated_admin_account_id: AccountId | None = None
    """The StackSets delegated administrator; the StackSet lives there when set."""
    org_id: OrgId | None = None
    """o-...; scopes bucket, bus and topic policies to the organization when set."""

    @model_validator(mode="after")
    def _admin_is_not_management(self) -> Organization:
        if self.delegated_admin_account_id == self.management_account_id:
            _raise(
                [
                    (
                        ("delegated_admin_account_id",),
                        "is the management account; leave it out to administer from there",
                    )
                ]
            )
        return self


class Security(_Model):
    account_id: AccountId
    """The central account that receives every alert."""
    home_region: Region
    """Region of the central stack (bus, topic, audit queue)."""
    notification_emails: list[Email] = Field(default_factory=list, max_length=50)
    """Subscribed to the alert topic (each confirms by email)."""

    @field_validator("notification_emails")
    @classmethod
    def _no_duplicate_emails(cls, value: list[str]) -> list[str]:
        # SNS treats addresses case-insensitively: two spellings are one subscriber.
        _raise(_duplicates(value, "email", key=str.lower))
        return value


class SelectionTag(_Model):
    key: TagKey = "backup-anomaly-detection"
    """Volumes and instances with this tag key and value are backed up (mode create)."""
    value: TagValue = "true"


class ExistingBackups(_Model):
    """Which of the organization's own backup jobs to measure (mode ``existing``)."""

    vault_names: list[VaultName] = Field(default_factory=list, max_length=20)
    """Only jobs into these vaults (empty: every vault)."""
    plan_ids: list[PlanId] = Field(default_factory=list, max_length=20)
    """Only jobs of these backup plans (empty: every plan)."""

    @model_validator(mode="after")
    def _unique(self) -> ExistingBackups:
        _raise(
            _duplicates(self.vault_names, "vault name", ("vault_names",))
            + _duplicates(self.plan_ids, "plan id", ("plan_ids",))
        )
        return self


class BackupPlan(_Model):
    """The hand-written part of ``backup``: what the plan is, not what travels to members."""

    mode: BackupMode = BackupMode.CREATE
    """create: a vault, plan and tag selection in every member; existing: measure the
    organization's own EBS/EC2 backup jobs."""
    vault_name: VaultName = "backup-anomaly-detection"
    selection_tag: SelectionTag = SelectionTag()
    existing: ExistingBackups = ExistingBackups()

    @model_validator(mode="after")
    def _mode_settings(self) -> BackupPlan:
        if self.mode is BackupMode.CREATE and "existing" in self.model_fields_set:
            _raise(
                [
                    (
                        ("existing",),
                        "applies only to mode: existing; remove it or set backup.mode: existing",
                    )
                ]
            )
        if self.mode is BackupMode.EXISTING:
            _raise(
                [
                    ((name,), "applies only to mode: create (mode existing creates no backup plan)")
                    for name in _CREATE_ONLY
                    if name in self.model_fields_set
                ]
            )
        return self


# Settings that only the backup plan of mode create uses: anything else would be ignored.
_CREATE_ONLY = (
    "vault_name",
    "selection_tag",
    *(s.name for s in entries("backup") if s.scope is Scope.BACKUP_PLAN),
)

# The contract's sections (backup_anomaly/contract.py): generated, so a setting is written
# once. Type checkers see them as Section (attributes are Any).
if TYPE_CHECKING:

    class Backup(BackupPlan):
        def __getattr__(self, name: str) -> Any: ...

    Detection = Section
    DetectionOverrides = Section
    BackupOverrides = Section
    Correlation = Section
else:
    Backup = section_model("Backup", "backup", base=BackupPlan)
    Detection = section_model("Detection", "detection", choices={"resource_types": ResourceType})
    DetectionOverrides = section_model("DetectionOverrides", "detection", overrides=True)
    BackupOverrides = section_model("BackupOverrides", "backup", overrides=True)
    # The security account's correlator (lambda/correlator/contract.py).
    Correlation = section_model("Correlation", "correlation")


class Overrides(_Model):
    """The settings an OU or an account may change; they become StackSet parameter overrides.

    Which settings may be overridden is the contract's ``overridable``."""

    detection: DetectionOverrides = DetectionOverrides()
    backup: BackupOverrides = BackupOverrides()

    def values(self) -> dict[str, object]:
        """The settings this layer sets, by contract name."""
        return overridden(self)


class Encryption(_Model):
    kms_key_rotation: bool = True
    kms_pending_window_days: Int = Field(default=30, ge=7, le=30)


class OperationPreferences(_Model):
    """StackSet operation preferences; they apply per region, not to auto-deployment."""

    failure_tolerance_count: Int | None = Field(default=None, ge=0)
    failure_tolerance_percentage: Int | None = Field(default=None, ge=0, le=100)
    max_concurrent_count: Int | None = Field(default=None, ge=1)
    max_concurrent_percentage: Int | None = Field(default=25, ge=1, le=100)
    region_concurrency: RegionConcurrency = RegionConcurrency.PARALLEL
    region_order: list[Region] = Field(default_factory=list)
    """Regions in rollout order; each must be in deployment.regions."""
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
                # The percentage has a default; a count given instead replaces it.
                data = {**data, "max_concurrent_percentage": None}
        return data

    @model_validator(mode="after")
    def _strict_concurrency(self) -> OperationPreferences:
        problems = _duplicates(self.region_order, "region", ("region_order",))
        if (
            self.concurrency_mode is ConcurrencyMode.STRICT_FAILURE_TOLERANCE
            and self.max_concurrent_count is not None
            and self.failure_tolerance_percentage is None
            and self.max_concurrent_count > (self.failure_tolerance_count or 0) + 1
        ):
            # CloudFormation rejects the operation: under strict tolerance the concurrency
            # may exceed the failure tolerance by at most one.
            problems.append(
                (
                    ("max_concurrent_count",),
                    (
                        f"may be at most failure_tolerance_count + 1 "
                        f"({(self.failure_tolerance_count or 0) + 1}) under "
                        "STRICT_FAILURE_TOLERANCE; "
                        "raise failure_tolerance_count or use SOFT_FAILURE_TOLERANCE"
                    ),
                )
            )
        _raise(problems)
        return self


class AutoDeployment(_Model):
    enabled: bool = True
    """Onboard accounts that join a target OU (SERVICE_MANAGED only)."""
    retain_stacks_on_account_removal: bool = False


class OuTarget(_Model):
    id: OuOrRootId
    """ou-... (the OU and every OU below it) or r-... (the whole organization)."""
    name: str | None = None
    regions: list[Region] | None = Field(default=None, min_length=1)
    """Regions for this OU (default: deployment.regions); a subset of them."""
    overrides: Overrides = Overrides()
    may_be_absent: bool = False
    """true: plan and deploy accept that the organization does not have this OU (yet)."""


class AccountTarget(_Model):
    id: AccountId
    name: str | None = None
    ou: OuOrRootId | None = None
    """The account's OU (or root): required under SERVICE_MANAGED, where StackSets reach a
    single account through its OU."""
    regions: list[Region] | None = Field(default=None, min_length=1)
    """Regions for this account (default: its OU's, else deployment.regions)."""
    overrides: Overrides = Overrides()
    may_be_absent: bool = False
    """true: plan and deploy accept that this account is not (or not yet, or no longer) an
    active member of the OU it names, e.g. while it is being created or closed."""
    exclude: bool = False
    """No stack instance in this account, even though its OU is targeted: it is carved out
    of that OU, and a deploy deletes its instances (offboarding one account of a targeted
    OU). It stays listed, so import-accounts does not add it back. Takes no regions or
    overrides."""

    @model_validator(mode="after")
    def _excluded_has_no_settings(self) -> AccountTarget:
        if self.exclude:
            # Settings on an account that gets no stack instance would be silently ignored.
            _raise(
                [
                    (
                        (name,),
                        "has no effect on an excluded account (exclude: true means no "
                        "stack instance); remove it, or remove exclude to deploy the "
                        "account with it",
                    )
                    for name in ("regions", "overrides")
                    if name in self.model_fields_set
                ]
            )
        return self


class Targets(_Model):
    organizational_units: list[OuTarget] = Field(default_factory=list)
    accounts: list[AccountTarget] = Field(default_factory=list)

    def excluded(self) -> list[AccountTarget]:
        """The accounts listed with ``exclude: true``, in config order."""
        return [account for account in self.accounts if account.exclude]

    def deployed_accounts(self) -> list[AccountTarget]:
        """The listed accounts that get stack instances (all but the excluded ones)."""
        return [account for account in self.accounts if not account.exclude]

    @model_validator(mode="after")
    def _unique(self) -> Targets:
        ous, accounts = self.organizational_units, self.accounts
        problems = _duplicates([ou.id for ou in ous], "OU", ("organizational_units",))
        problems += _duplicates([account.id for account in accounts], "account", ("accounts",))
        # Point at the id, not the list item: that is the line to change.
        problems = [((*loc, "id"), msg) for loc, msg in problems]
        if not ous and not accounts:
            problems.append(((), "no targets: list at least one organizational unit or account"))
        elif not ous and all(account.exclude for account in accounts):
            problems.append(
                (
                    (),
                    "no targets: every listed account is excluded; list at least "
                    "one organizational unit or account to deploy to",
                )
            )
        _raise(problems)
        return self


IAM_ROLE_NAME_RE = r"^[\w+=,.@-]{1,64}$"


class StackSetRoles(_Model):
    """SELF_MANAGED only: the roles StackSets assumes. AWS's default names are common in
    organizations that already use StackSets; ``plan`` reports a role of that name that is
    not this deployment's before ``deploy`` would fail on it."""

    administration_role_name: str = Field(
        default=naming.STACKSET_ADMIN_ROLE, pattern=IAM_ROLE_NAME_RE
    )
    """The role in the StackSet admin account that CloudFormation assumes."""
    execution_role_name: str = Field(
        default=naming.STACKSET_EXECUTION_ROLE, pattern=IAM_ROLE_NAME_RE
    )
    """The role in every target account that the administration role assumes."""


class Deployment(_Model):
    permission_model: PermissionModel = PermissionModel.SERVICE_MANAGED
    """SERVICE_MANAGED targets OUs (Organizations); SELF_MANAGED targets accounts."""
    call_as: CallAs = CallAs.SELF
    """DELEGATED_ADMIN when the StackSet is administered from a delegated admin account."""
    regions: list[Region] = Field(min_length=1)
    """Every region a member stack may be deployed to; artifact buckets are created here."""
    targets: Targets
    operation_preferences: OperationPreferences = OperationPreferences()
    auto_deployment: AutoDeployment = AutoDeployment()
    managed_execution: bool = True
    retain_stacks_on_removal: bool = False
    include_management_account: bool = False
    """SELF_MANAGED only: set true to deploy into the management account on purpose."""
    stackset_roles: StackSetRoles = StackSetRoles()
    """SELF_MANAGED only: the names of the StackSet administration and execution roles."""

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, value: list[str]) -> list[str]:
        _raise(_duplicates(value, "region"))
        return value

    @model_validator(mode="after")
    def _rules(self) -> Deployment:
        problems: list[tuple[Loc, str]] = []
        allowed = set(self.regions)
        ous, accounts = self.targets.organizational_units, self.targets.accounts
        self_managed = self.permission_model is PermissionModel.SELF_MANAGED

        kinds: tuple[tuple[str, Sequence[OuTarget | AccountTarget]], ...] = (
            ("organizational_units", ous),
            ("accounts", accounts),
        )
        for kind, items in kinds:
            for index, target in enumerate(items):
                where = ("targets", kind, index, "regions")
                problems += _duplicates(target.regions or (), "region", where)
                problems += [
                    (
                        (*where, i),
                        f"region {r!r} is not in deployment.regions; add it there "
                        "first (artifact buckets are created only in those)",
                    )
                    for i, r in enumerate(target.regions or ())
                    if r not in allowed
                ]
        # A StackSet, its admin account and its roles live in one partition: the config
        # of another partition's accounts is a deployment of its own.
        first = self.regions[0]
        problems += [
            (
                ("regions", i),
                f"region {r!r} is in partition {partition_of(r)}, but {first!r} (regions[0]) is "
                f"in {partition_of(first)}; a StackSet cannot span partitions: give each "
                "partition a config of its own",
            )
            for i, r in enumerate(self.regions)
            if partition_of(r) != partition_of(first)
        ]
        problems += [
            (
                ("operation_preferences", "region_order", i),
                f"region {r!r} is not in deployment.regions",
            )
            for i, r in enumerate(self.operation_preferences.region_order)
            if r not in allowed
        ]
        if self_managed:
            if ous:
                problems.append(
                    (
                        ("targets", "organizational_units"),
                        (
                            "SELF_MANAGED StackSets target accounts, not OUs: list the accounts, "
                            "or "
                            "use permission_model: SERVICE_MANAGED"
                        ),
                    )
                )
            if self.call_as is CallAs.DELEGATED_ADMIN:
                problems.append(
                    (
                        ("call_as",),
                        "DELEGATED_ADMIN applies only to SERVICE_MANAGED StackSets; use SELF",
                    )
                )
            if "auto_deployment" in self.model_fields_set:
                problems.append(
                    (("auto_deployment",), "applies only to SERVICE_MANAGED StackSets; remove it")
                )
        else:
            if "stackset_roles" in self.model_fields_set:
                problems.append(
                    (
                        ("stackset_roles",),
                        "applies only to SELF_MANAGED StackSets (SERVICE_MANAGED ones use "
                        "roles StackSets manages itself); remove it",
                    )
                )
            roots = [i for i, ou in enumerate(ous) if ou.id.startswith("r-")]
            if roots:
                # Every OU is under the root: two groups would deploy the same stack
                # instances with different settings, and the last operation would win.
                problems += [
                    (
                        ("targets", "organizational_units", i, "id"),
                        (
                            f"the root {ous[roots[0]].id} (organizational_units[{roots[0]}]) "
                            "already "
                            "covers every OU; target OUs instead of the root to give them "
                            "settings of their own"
                        ),
                    )
                    for i, ou in enumerate(ous)
                    if i not in roots
                ]
            problems += [
                (
                    ("targets", "accounts", i, "ou"),
                    (
                        "required under SERVICE_MANAGED: the id of the targeted OU (or root) "
                        "the account is excluded from"
                        if account.exclude
                        else "required under SERVICE_MANAGED: the id of the account's OU (or "
                        "root), "
                        "through which StackSets reach a single account"
                    ),
                )
                for i, account in enumerate(accounts)
                if account.ou is None
            ]
        _raise(problems)
        return self


class OrgConfig(_Model):
    """The whole organization as the security team describes it."""

    name: str = Field(default="backup-anomaly", max_length=40)
    """Prefix of every stack, StackSet and resource name: lowercase letters, digits, '-'.
    At most 40 characters, so that IAM role names (prefix, a word, the region) fit in 64."""
    organization: Organization
    security: Security
    deployment: Deployment
    backup: Backup = Backup()
    detection: Detection = Detection()
    correlation: Correlation = Correlation()
    """The security account's incidents: grouping, escalation, notification, silence."""
    encryption: Encryption = Encryption()
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)
    """Applied to every resource and stack."""
    schema_version: Literal[1] = 1

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value) or value.startswith("xn--"):
            raise ValueError(
                f"{value!r} is not a valid name: it prefixes S3 bucket names, so use lowercase "
                "letters, digits and inner hyphens, starting with a letter"
            )
        return value

    @model_validator(mode="after")
    def _rules(self) -> OrgConfig:
        problems: list[tuple[Loc, str]] = []
        org, deployment = self.organization, self.deployment
        accounts = deployment.targets.accounts
        service_managed = deployment.permission_model is PermissionModel.SERVICE_MANAGED

        for index, account in enumerate(accounts):
            if account.id != org.management_account_id:
                continue
            where = ("deployment", "targets", "accounts", index, "id")
            if service_managed:
                problems.append(
                    (
                        where,
                        "is the management account: SERVICE_MANAGED "
                        "StackSets never deploy there; remove it",
                    )
                )
            elif account.exclude:
                problems.append(
                    (
                        where,
                        (
                            "is the management account, which gets a stack instance only when it "
                            "is "
                            "listed without exclude; there is nothing to exclude, remove it"
                        ),
                    )
                )
            elif not deployment.include_management_account:
                problems.append(
                    (
                        where,
                        (
                            "is the management account, which should run no workloads; remove it, "
                            "or set deployment.include_management_account: true if you mean it"
                        ),
                    )
                )
        if service_managed and deployment.include_management_account:
            problems.append(
                (
                    ("deployment", "include_management_account"),
                    (
                        "SERVICE_MANAGED StackSets never deploy to the management account; use "
                        "SELF_MANAGED to include it"
                    ),
                )
            )

        if deployment.call_as is CallAs.DELEGATED_ADMIN and not org.delegated_admin_account_id:
            problems.append(
                (
                    ("deployment", "call_as"),
                    (
                        "DELEGATED_ADMIN needs organization.delegated_admin_account_id (the "
                        "account "
                        "registered as StackSets delegated administrator)"
                    ),
                )
            )
        if service_managed and org.delegated_admin_account_id and deployment.call_as is CallAs.SELF:
            problems.append(
                (
                    ("deployment", "call_as"),
                    (
                        "must be DELEGATED_ADMIN: the StackSet is administered from the delegated "
                        f"admin account {org.delegated_admin_account_id}"
                    ),
                )
            )

        home = self.security.home_region
        partition = partition_of(deployment.regions[0])
        if partition_of(home) != partition:
            problems.append(
                (
                    ("security", "home_region"),
                    (
                        f"{home!r} is in partition {partition_of(home)} but deployment.regions "
                        f"are in {partition}; EventBridge cannot forward alerts across partitions"
                    ),
                )
            )

        if self.backup.mode is BackupMode.EXISTING:
            kinds: tuple[tuple[str, Sequence[OuTarget | AccountTarget]], ...] = (
                ("organizational_units", deployment.targets.organizational_units),
                ("accounts", accounts),
            )
            for kind, items in kinds:
                problems += [
                    (
                        ("deployment", "targets", kind, i, "overrides", "backup"),
                        "applies only to backup.mode: create (mode existing creates no backup "
                        "plan)",
                    )
                    for i, target in enumerate(items)
                    if "backup" in target.overrides.model_fields_set
                ]
        problems += self._org_id_scope()
        problems += self._periods_match_schedules()
        problems += self._verdict_settings_consistent()
        _raise(problems)
        return self

    def _org_id_scope(self) -> list[tuple[Loc, str]]:
        """Without an org id, resource policies must list every account by hand.

        The central bus and the artifact buckets admit the organization by
        ``aws:PrincipalOrgID``; without it they list the target accounts, which cannot be
        done for OUs (their members are not in the config) nor for more accounts than a
        policy document holds.
        """
        if self.organization.org_id:
            return []
        targets = self.deployment.targets
        if targets.organizational_units:
            return [
                (
                    ("organization",),
                    (
                        "org_id is required when deployment targets include OUs: the central bus "
                        "and the artifact buckets admit the organization by its id, and an OU's "
                        "accounts are not listed in the config"
                    ),
                )
            ]
        listed = len({a.id for a in targets.deployed_accounts()})
        if listed > MAX_POLICY_ACCOUNTS:
            return [
                (
                    ("organization",),
                    (
                        f"org_id is required with more than {MAX_POLICY_ACCOUNTS} target accounts "
                        f"({listed} listed): a resource policy cannot list them all"
                    ),
                )
            ]
        return []

    def _layers(self) -> list[tuple[Loc, list[dict[str, object]]]]:
        """Where each set of effective settings comes from: the defaults (no layers), then
        every OU and account target with its own overrides first, its OU's after them."""
        targets = self.deployment.targets
        ous = {ou.id: ou.overrides.values() for ou in targets.organizational_units}
        found: list[tuple[Loc, list[dict[str, object]]]] = [((), [])]
        kinds: tuple[tuple[str, Sequence[OuTarget | AccountTarget]], ...] = (
            ("organizational_units", targets.organizational_units),
            ("accounts", targets.accounts),
        )
        for kind, items in kinds:
            for index, target in enumerate(items):
                parent = ous.get(getattr(target, "ou", None) or "") if kind == "accounts" else None
                layers = [target.overrides.values()] + ([parent] if parent is not None else [])
                found.append((("deployment", "targets", kind, index, "overrides"), layers))
        return found

    def _effective(self, layers: list[dict[str, object]], name: str) -> Any:
        for layer in layers:
            if name in layer:
                return layer[name]
        return self.setting(name)

    def _periods_match_schedules(self) -> list[tuple[Loc, str]]:
        """Where CloudWatch alarms are on, their period must equal the backup interval: one
        data point per period.

        Checked for the defaults and for every target that sets a schedule, a period or the
        alarms switch of its own; skipped for schedules without one fixed interval (weekly,
        irregular).
        """
        if self.backup.mode is not BackupMode.CREATE:
            return []
        names = ("alarm_period_seconds", "schedule", "cloudwatch_alarms")
        problems = []
        for where, layers in self._layers():
            own = layers[0] if layers else None
            if own is not None and not any(name in own for name in names):
                continue  # inherits all from its OU or the defaults, checked there
            if not self._effective(layers, "cloudwatch_alarms"):
                continue
            schedule = str(self._effective(layers, "schedule"))
            period = self._effective(layers, "alarm_period_seconds")
            interval = schedule_interval(schedule)
            if interval is None or interval == period:
                continue
            if own is None:
                loc: Loc = ("detection", "alarm_period_seconds")
            elif "alarm_period_seconds" in own:
                loc = (*where, "detection", "alarm_period_seconds")
            elif "schedule" in own:
                loc = (*where, "backup", "schedule")
            else:
                loc = (*where, "detection", "cloudwatch_alarms")
            problems.append(
                (
                    loc,
                    (
                        f"alarm period {period} s does not match the backup schedule {schedule}, "
                        f"which runs every {interval} s; set alarm_period_seconds to {interval} "
                        "(one measurement per period)"
                    ),
                )
            )
        return problems

    def _verdict_settings_consistent(self) -> list[tuple[Loc, str]]:
        """Severity thresholds increase from low to critical, for every effective set; the
        usual content sample is no larger than the one taken when the size is unusual."""
        names = ("low_score", "medium_score", "high_score", "critical_score")
        problems: list[tuple[Loc, str]] = []
        for where, layers in self._layers():
            own = layers[0] if layers else None
            if own is not None and not any(name in own for name in names):
                continue
            values = [self._effective(layers, name) for name in names]
            if values == sorted(values):
                continue
            given = set(own) if own is not None else self.detection.verdicts.model_fields_set
            wrong = {
                name
                for i, name in enumerate(names)
                if any(values[j] > values[i] for j in range(i))
                or any(values[j] < values[i] for j in range(i + 1, len(names)))
            }
            first = next((n for n in names if n in wrong and n in given), names[0])
            prefix = (*where, "detection") if own is not None else ("detection",)
            loc = (*prefix, "verdicts", first)
            shown = ", ".join(f"{n} {v:g}" for n, v in zip(names, values, strict=True))
            problems.append((loc, f"score thresholds must increase from low to critical: {shown}"))
        samples, most = self.setting("content_samples"), self.setting("content_samples_max")
        if samples > most:
            problems.append(
                (
                    ("detection", "detector", "content_samples"),
                    f"{samples} exceeds content_samples_max ({most}), the sample taken when "
                    "the size is already unusual",
                )
            )
        return problems

    @property
    def admin_account_id(self) -> str:
        """The account that owns the StackSet: the delegated admin when set."""
        org = self.organization
        return org.delegated_admin_account_id or org.management_account_id

    def setting(self, name: str) -> Any:
        """The configured value of the contract setting ``name`` (its default when unset)."""
        return value(self, setting(name))
