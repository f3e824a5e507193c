"""Confirmation scans: an AWS Backup malware scan (GuardDuty) of an anomaly's recovery point.

Only for ``high`` and ``critical`` verdicts, and only where ``confirmation_scan`` is on
(about $0.05 per GB scanned): scanning every backup would cost that on every backup;
scanning only the suspect one, incrementally against the last recovery point judged clean,
is the cost play. ``StartScanJob`` takes (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_StartScanJob.html):

* ``IamRoleArn``: the role that created the recovery point (the backup job's
  ``iamRoleArn``), which needs the managed policy ``AWSBackupServiceRolePolicyForScans``
  (the member template attaches it to the backup role it creates);
* ``ScannerRoleArn``: the role GuardDuty Malware Protection assumes to read the recovery
  point, with ``AWSBackupGuardDutyRolePolicyForScans``
  (https://docs.aws.amazon.com/guardduty/latest/ug/malware-protection-backup-iam-permissions.html);
* ``ScanMode``: ``INCREMENTAL_SCAN`` against ``ScanBaseRecoveryPointArn`` (the last clean
  snapshot of an EBS volume: its recovery point is the snapshot), ``FULL_SCAN`` when there
  is none (an AMI's earlier recovery point is not kept in the volume's history) or when
  AWS Backup refuses the base (an incremental scan's base must itself have been scanned,
  and the detector scans only suspects: the last clean point usually was not);
* ``IdempotencyToken``: derived from the measurement, so a retried publication (the
  anomaly stays pending until delivered) starts no second job.

The result arrives later as a ``Scan Job State Change`` event, which the member forwards to
the security account and hands to this detector for the volume's finding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from backup_anomaly.records import Measurement


@dataclass(frozen=True)
class ScanStart:
    """What starting the scan did: ``started`` (with the job), ``skipped`` or ``failed``."""

    status: str
    job_id: str | None = None
    mode: str | None = None
    note: str | None = None


def _snapshot_arn(measurement: Measurement, snapshot_id: str) -> str:
    t = measurement.target
    partition = t.volume_arn.split(":", 2)[1]
    return f"arn:{partition}:ec2:{t.region}::snapshot/{snapshot_id}"


def token(measurement: Measurement) -> str:
    """The scan's idempotency token: one job per measurement, whatever the retries."""
    return hashlib.sha256(measurement.id.encode()).hexdigest()[:64]


def start_scan(backup: Any, measurement: Measurement, scanner_role_arn: str | None) -> ScanStart:
    """Starts the scan of ``measurement``'s recovery point (errors are returned, not raised)."""
    t = measurement.target
    if not scanner_role_arn:
        return ScanStart("skipped", note="no scanner role (confirmation_scan is off)")
    if not (t.recovery_point_arn and t.vault_name and t.backup_role_arn):
        return ScanStart(
            "skipped", note="the backup job named no recovery point, vault or role to scan with"
        )
    request: dict[str, Any] = {
        "BackupVaultName": t.vault_name,
        "IamRoleArn": t.backup_role_arn,
        "MalwareScanner": "GUARDDUTY",
        "RecoveryPointArn": t.recovery_point_arn,
        "ScannerRoleArn": scanner_role_arn,
        "IdempotencyToken": token(measurement),
    }
    judgement = measurement.judgement
    clean = judgement.last_clean_snapshot_id if judgement else None
    is_snapshot = ":snapshot/" in t.recovery_point_arn
    if clean and is_snapshot and clean != t.snapshot_id:
        request["ScanMode"] = "INCREMENTAL_SCAN"
        request["ScanBaseRecoveryPointArn"] = _snapshot_arn(measurement, clean)
    else:
        request["ScanMode"] = "FULL_SCAN"
    note = None
    try:
        response = backup.start_scan_job(**request)
    except (ClientError, BotoCoreError) as exc:
        refused = _describe(exc)
        if request["ScanMode"] != "INCREMENTAL_SCAN" or _code(exc) not in _BASE_REFUSED:
            return ScanStart("failed", mode=request["ScanMode"], note=refused)
        # The base was refused (never scanned, or gone): the whole recovery point, then.
        request.pop("ScanBaseRecoveryPointArn")
        request["ScanMode"] = "FULL_SCAN"
        request["IdempotencyToken"] = token(measurement)[:60] + "full"
        note = f"incremental scan refused ({refused}): full scan"
        try:
            response = backup.start_scan_job(**request)
        except (ClientError, BotoCoreError) as again:
            return ScanStart("failed", mode="FULL_SCAN", note=_describe(again))
    return ScanStart(
        "started", job_id=response.get("ScanJobId"), mode=request["ScanMode"], note=note
    )


# What AWS Backup answers when an incremental scan's base will not do.
_BASE_REFUSED = (
    "InvalidRequestException",
    "InvalidParameterValueException",
    "ResourceNotFoundException",
)


def _code(exc: BaseException) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
