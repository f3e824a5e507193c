"""Events the demo plays: AWS Backup job completions and CloudWatch alarm state changes.

Their shapes follow the samples in ``tests/detector/events/`` (copied from AWS's
documentation): the same fields, with this simulation's ids and times.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def backup_job_completed(
    account: str,
    region: str,
    volume_id: str,
    snapshot_id: str,
    size_gib: int,
    started: datetime,
    completed: datetime,
    vault: str = "Default",
) -> dict[str, Any]:
    """A ``Backup Job State Change`` COMPLETED event for one EBS volume."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Backup Job State Change",
        "source": "aws.backup",
        "account": account,
        "time": completed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}::snapshot/{snapshot_id}"],
        "detail": {
            "backupJobId": str(uuid.uuid4()),
            "backupSizeInBytes": str(size_gib * 1024**3),
            "backupVaultArn": f"arn:aws:backup:{region}:{account}:backup-vault:{vault}",
            "backupVaultName": vault,
            "bytesTransferred": "0",
            "creationDate": _iso(started),
            "completionDate": _iso(completed),
            "iamRoleArn": f"arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole",
            "resourceArn": f"arn:aws:ec2:{region}:{account}:volume/{volume_id}",
            "resourceType": "EBS",
            "state": "COMPLETED",
            "percentDone": 100,
        },
    }


def alarm_state_change(
    account: str,
    region: str,
    alarm: dict[str, Any],
    state: str,
    previous: str,
    reason: str,
    when: datetime,
) -> dict[str, Any]:
    """A ``CloudWatch Alarm State Change`` event for ``alarm`` (a DescribeAlarms entry)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    metrics = [
        {
            k: v
            for k, v in {
                "id": m["Id"],
                "expression": m.get("Expression"),
                "label": m.get("Label"),
                "metricStat": m.get("MetricStat")
                and {
                    "metric": {
                        "namespace": m["MetricStat"]["Metric"]["Namespace"],
                        "name": m["MetricStat"]["Metric"]["MetricName"],
                        "dimensions": {
                            d["Name"]: d["Value"]
                            for d in m["MetricStat"]["Metric"].get("Dimensions", [])
                        },
                    },
                    "period": m["MetricStat"]["Period"],
                    "stat": m["MetricStat"]["Stat"],
                },
                "returnData": m.get("ReturnData", True),
            }.items()
            if v is not None
        }
        for m in alarm.get("Metrics", [])
    ]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": reason, "timestamp": stamp},
            "previousState": {"value": previous, "reason": "", "timestamp": stamp},
            "configuration": {"metrics": metrics, "description": alarm.get("AlarmDescription", "")},
        },
    }


def as_entry(event: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The PutEvents entry that makes EventBridge deliver ``event`` on the default bus."""
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
        "Time": when,
    }


def scheduled(account: str, region: str, rule: str, when: datetime) -> dict[str, Any]:
    """The ``Scheduled Event`` EventBridge sends when the schedule of ``rule`` fires."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule}"],
        "detail": {},
    }
