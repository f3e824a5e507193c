"""Security Hub findings of high and critical anomalies, in the volume's own account and region.

With the default product ARN (``arn:<partition>:securityhub:<region>:<account>:product/
<account>/default``) ``BatchImportFindings`` accepts a finding only from the account the
finding names (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-custom-providers.html),
so each member imports its own and the organization's Security Hub administrator, with a
finding aggregator, sees them all. One finding per anomaly episode of a volume: its ``Id``
names the first anomalous snapshot, a later anomaly of the same episode re-imports it
(severity never lowered), the scan's result is added when it arrives, and the first
backup judged normal again archives it (``RecordState`` ARCHIVED, a provider field) and
sets its workflow to RESOLVED (``BatchUpdateFindings``, a customer field).

The finding carries numbers and identifiers only: never a byte of the volume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from backup_anomaly import links
from backup_anomaly.records import Measurement
from backup_anomaly.scoring import Severity

SCHEMA_VERSION = "2018-10-08"
GENERATOR_ID = "backup-anomaly-detection/verdict"
_TYPES = ["Effects/Data Destruction", "TTPs/Impact/Data Encrypted for Impact"]
_LABELS = {Severity.HIGH: "HIGH", Severity.CRITICAL: "CRITICAL"}
_TITLE_MAX, _TEXT_MAX = 256, 1024
REMEDIATION = (
    "Isolate the instance (stop it or detach the volume) and snapshot its current state for "
    "forensics; restore from the last snapshot judged clean; look in CloudTrail for who "
    "deleted or encrypted data and revoke their credentials."
)
REMEDIATION_URL = (
    "https://docs.aws.amazon.com/prescriptive-guidance/latest/backup-recovery/restore.html"
)


class FindingRefused(Exception):
    """Security Hub refused the finding (its message says why)."""


@dataclass(frozen=True)
class OpenFinding:
    """The volume's open finding, as kept in its state (``OpenFinding``).

    Attributes:
        finding: the ASFF finding as last imported.
        severity: the worst severity of the episode so far.
    """

    finding: dict[str, Any]
    severity: Severity

    @property
    def id(self) -> str:
        return str(self.finding["Id"])

    @property
    def product_arn(self) -> str:
        return str(self.finding["ProductArn"])

    def to_json(self) -> str:
        return json.dumps({"finding": self.finding, "severity": self.severity.value})

    @classmethod
    def from_json(cls, text: str) -> OpenFinding:
        """Raises ``ValueError`` when the text is not an open finding."""
        try:
            data = json.loads(text)
            return cls(dict(data["finding"]), Severity(data["severity"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid open finding: {exc}") from exc


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def product_arn(partition: str, region: str, account: str) -> str:
    """The default product of an account: the one a member may import its own findings to."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def build(measurement: Measurement, now: datetime, previous: OpenFinding | None) -> OpenFinding:
    """The finding of a high or critical anomaly (continuing ``previous``'s episode)."""
    t = measurement.target
    judgement = measurement.judgement
    if judgement is None or not judgement.severity.at_least(Severity.HIGH):
        raise ValueError("only high and critical verdicts become findings")
    partition = t.volume_arn.split(":", 2)[1]
    severity = judgement.severity
    if previous is not None and previous.severity.rank > severity.rank:
        severity = previous.severity
    verdict = judgement.verdict
    share = verdict.get("share")
    amount = (
        f"{100 * share:.1f} % of its written data"
        if isinstance(share, float)
        else (f"{measurement.changed_blocks:,} blocks")
    )
    name = measurement.attachment.instance_name if measurement.attachment else None
    where = f" ({name})" if name else ""
    title = f"Backup of {t.volume_id}{where} shows ransomware-like change: {amount} rewritten"
    reasons = "; ".join(str(r) for r in verdict.get("reasons", []))
    clean = judgement.last_clean_snapshot_id
    description = (
        f"{severity.value.upper()} verdict on backup {t.snapshot_id} of {t.volume_id}: {reasons}."
        + (f" Last snapshot judged clean: {clean}." if clean else "")
    )
    resources: list[dict[str, Any]] = [
        {
            "Type": "AwsEc2Volume",
            "Id": t.volume_arn,
            "Partition": partition,
            "Region": t.region,
            **(
                {"Tags": {"Name": measurement.attachment.volume_name}}
                if measurement.attachment and measurement.attachment.volume_name
                else {}
            ),
        },
        {
            "Type": "Other",
            "Id": f"arn:{partition}:ec2:{t.region}::snapshot/{t.snapshot_id}",
            "Partition": partition,
            "Region": t.region,
        },
    ]
    if measurement.attachment and measurement.attachment.instance_id:
        resources.append(
            {
                "Type": "AwsEc2Instance",
                "Id": f"arn:{partition}:ec2:{t.region}:{t.account}:instance/"
                f"{measurement.attachment.instance_id}",
                "Partition": partition,
                "Region": t.region,
            }
        )
    first = previous.finding if previous is not None else None
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": first["Id"] if first else f"{t.volume_arn}/backup-anomaly/{t.snapshot_id}",
        "ProductArn": product_arn(partition, t.region, t.account),
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": t.account,
        "Region": t.region,
        "Types": _TYPES,
        "CreatedAt": first["CreatedAt"] if first else _iso(now),
        "UpdatedAt": _iso(now),
        "FirstObservedAt": first["FirstObservedAt"] if first else _iso(t.completion_time),
        "LastObservedAt": _iso(t.completion_time),
        "Severity": {"Label": _LABELS[severity], "Original": str(verdict.get("score"))},
        # What a provider may change later (Severity and Types only on creation).
        "FindingProviderFields": {
            "Severity": {"Label": _LABELS[severity], "Original": str(verdict.get("score"))},
            "Types": _TYPES,
        },
        "Title": _clip(title, _TITLE_MAX),
        "Description": _clip(description, _TEXT_MAX),
        "Remediation": {
            "Recommendation": {"Text": _clip(REMEDIATION, 512), "Url": REMEDIATION_URL}
        },
        "SourceUrl": links.snapshot(partition, t.region, clean or t.snapshot_id),
        "ProductFields": {
            "backup-anomaly/measurementId": measurement.id,
            "backup-anomaly/snapshotId": t.snapshot_id,
            "backup-anomaly/lastCleanSnapshotId": clean or "",
            "backup-anomaly/score": str(verdict.get("score")),
        },
        "Resources": resources,
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }
    return OpenFinding(finding, severity)


def with_scan(
    open_finding: OpenFinding, state: str, result: str | None, now: datetime
) -> OpenFinding:
    """The finding with a confirmation scan's outcome (malware found: critical)."""
    finding = dict(open_finding.finding)
    fields = dict(finding.get("ProductFields", {}))
    fields["backup-anomaly/scanState"] = state
    fields["backup-anomaly/scanResult"] = result or ""
    finding["ProductFields"] = fields
    finding["UpdatedAt"] = _iso(now)
    severity = open_finding.severity
    if result == "THREATS_FOUND":
        severity = Severity.CRITICAL
        provided = dict(finding.get("FindingProviderFields", {}))
        provided["Severity"] = {**provided.get("Severity", {}), "Label": "CRITICAL"}
        finding["FindingProviderFields"] = provided
        finding["Title"] = _clip("Malware found: " + str(finding["Title"]), _TITLE_MAX)
    elif result == "NO_THREATS_FOUND":
        finding["Description"] = _clip(
            str(finding["Description"])
            + " GuardDuty found no known malware in the recovery point (ransomware that ran "
            "elsewhere leaves none on the volume): the change itself is the evidence.",
            _TEXT_MAX,
        )
    return replace(open_finding, finding=finding, severity=severity)


def archived(open_finding: OpenFinding, now: datetime) -> dict[str, Any]:
    """The finding archived by its provider (the volume's backups are judged normal again)."""
    return {**open_finding.finding, "UpdatedAt": _iso(now), "RecordState": "ARCHIVED"}


# Once a finding exists, a provider's import may not change the customer's fields and
# should change Severity and Types through FindingProviderFields only
# (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html).
_NOT_ON_UPDATE = ("Note", "UserDefinedFields", "VerificationState", "Workflow", "Severity", "Types")


def put(securityhub: Any, finding: dict[str, Any], *, update: bool = False) -> None:
    """Imports (creates, or with ``update`` updates) one finding.

    Raises:
        FindingRefused: Security Hub refused it (e.g. not enabled in this region).
    """
    if update:
        finding = {k: v for k, v in finding.items() if k not in _NOT_ON_UPDATE}
    response = securityhub.batch_import_findings(Findings=[finding])
    if response.get("FailedCount"):
        failed = (response.get("FailedFindings") or [{}])[0]
        raise FindingRefused(
            f"{failed.get('ErrorCode', 'Error')}: {failed.get('ErrorMessage', 'refused')}"
        )


def resolve(securityhub: Any, open_finding: OpenFinding, now: datetime) -> None:
    """Archives the finding and sets its workflow to RESOLVED, with a note saying why."""
    put(securityhub, archived(open_finding, now), update=True)
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": open_finding.id, "ProductArn": open_finding.product_arn}],
        Workflow={"Status": "RESOLVED"},
        Note={
            "Text": "The volume's next backup was judged normal (backup anomaly detection).",
            "UpdatedBy": GENERATOR_ID,
        },
    )
    if response.get("UnprocessedFindings"):
        failed = response["UnprocessedFindings"][0]
        raise FindingRefused(f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}")
