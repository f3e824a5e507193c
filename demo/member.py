"""One member account of the demo: its volumes, its detector, its scan service stand-in.

Each day the member's volumes are backed up (``demo.backups``), each backup's job event
is put on the member's default bus, where the deployed rule sends it to the detector's
work queue; the REAL detector handler then drains that queue. A high or critical verdict
starts a confirmation scan (against the AWS Backup scan fake, which speaks the real wire
format) and imports a Security Hub finding (moto); the scan's state changes are put on the
member's bus as AWS Backup would, and the deployed rule sends them on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3

from demo.alarms import AlarmLife
from demo.backups import SimulatedVolume, create_volume
from demo.events import as_entry, backup_job_completed, scheduled
from demo.stories import Story, Volume
from generator.config.model import OrgConfig
from generator.naming import Names
from testing.fakes.backup_scan import FakeBackupScan
from testing.lambda_runtime import LocalLambda


@dataclass
class Protected:
    """One simulated volume: its story, its EBS state, what happened and what was judged."""

    story: Story
    plan: Volume
    volume: SimulatedVolume
    what: list[str] = field(default_factory=list)
    verdicts: list[dict[str, Any] | None] = field(default_factory=list)
    alarms: list[list[str]] = field(default_factory=list)


class Member:
    """One member account in the home region."""

    def __init__(self, config: OrgConfig, account: str, name: str, session: boto3.Session):
        self.config = config
        self.account = account
        self.name = name
        self.session = session
        self.region = config.security.home_region
        self.names = Names(config.name)
        self.vault = vault_of(config)
        self.events = session.client("events", region_name=self.region)
        self.sqs = session.client("sqs", region_name=self.region)
        self.securityhub = session.client("securityhub", region_name=self.region)
        self.scans = FakeBackupScan(account=account, region=self.region)
        self.runtime = LocalLambda(session, self.region, self.names.detector_function)
        self.volumes: list[Protected] = []
        self.alarm_life = AlarmLife(self, config.detection.alarm_prefix)

    def start(self) -> None:
        """Starts the scan fake and points the detector's AWS Backup client at it."""
        self.scans.start()
        self.scans.add_vault(self.vault)
        # by hand: AWS Backup's scan API (moto has none) is the fake on 127.0.0.1
        self.runtime.environment["AWS_ENDPOINT_URL_BACKUP"] = self.scans.url

    def stop(self) -> None:
        self.scans.stop()

    def add(self, story: Story, seed: str) -> Protected:
        tag = (self.config.backup.selection_tag.key, self.config.backup.selection_tag.value)
        volume = create_volume(
            self.session,
            self.account,
            self.region,
            tag,
            story.name,
            story.kind,
            story.written_blocks,
            story.size_gib,
        )
        protected = Protected(story, Volume(story, seed), volume)
        self.volumes.append(protected)
        return protected

    def back_up(self, day: int, days: int, started: datetime) -> None:
        """Each volume's backup of the day, its job event on the member's bus."""
        completed = started + timedelta(minutes=41)
        for p in self.volumes:
            writes, what = p.plan.writes(day, days, started)
            snapshot = p.volume.back_up(writes)
            p.what.append(what)
            attacked = any(kind == "encrypted" for kind in writes.values())
            self.scans.add_recovery_point(
                f"arn:aws:ec2:{self.region}::snapshot/{snapshot}",
                vault=self.vault,
                resource_arn=p.volume.arn,
                resource_name=p.story.name,
                created_at=completed,
                # What GuardDuty would find: the ransomware's binary beside what it encrypted.
                result="THREATS_FOUND" if attacked and "ransomware" in what else "NO_THREATS_FOUND",
            )
            event = backup_job_completed(
                self.account,
                self.region,
                p.volume.volume_id,
                snapshot,
                p.volume.size_gib,
                started,
                completed,
                self.vault,
            )
            self.events.put_events(Entries=[as_entry(event, completed)])

    def detect(self, fn: LocalLambda, when: datetime) -> list[dict[str, Any]]:
        """The detector drains its work queue; the day's verdicts are kept per volume, and
        where the account keeps CloudWatch alarms, they are evaluated (by hand)."""
        records = fn.drain_work_queue()
        by_volume = {
            r.get("volume"): r
            for r in records
            if r.get("decision") in ("measured", "baseline_created")
        }
        for p in self.volumes:
            record = by_volume.get(p.volume.volume_id)
            measured = record if record and record.get("decision") == "measured" else None
            p.verdicts.append(measured)
            value = int(measured.get("changed_blocks") or 0) if measured else None
            p.alarms.append(
                [] if value is None else self.alarm_life.evaluate(p.volume.volume_id, value, when)
            )
        return records

    def finish_scans(self, fn: LocalLambda, when: datetime) -> list[dict[str, Any]]:
        """Every started scan runs to its end; its state changes go on the member's bus."""
        events = self.scans.run_to_completion()
        for event in events:
            # by hand: AWS Backup emits Scan Job State Change on the account's default bus
            self.events.put_events(Entries=[as_entry(event, when)])
        return fn.drain_work_queue() if events else []

    def heartbeat(self, fn: LocalLambda, when: datetime) -> None:
        """The heartbeat schedule's event, sent to the work queue as its rule would."""
        send_heartbeat(self.sqs, fn, self.account, self.region, self.names, when)

    def findings(self) -> list[dict[str, Any]]:
        return self.securityhub.get_findings()["Findings"]


def send_heartbeat(sqs, fn: LocalLambda, account: str, region: str, names: Names, when) -> None:
    """by hand: EventBridge runs the heartbeat rule's schedule; moto runs no schedule."""
    event = scheduled(account, region, names.heartbeat_rule, when)
    sqs.send_message(QueueUrl=fn.environment["WORK_QUEUE_URL"], MessageBody=json.dumps(event))
    fn.drain_work_queue()


def vault_of(config: OrgConfig) -> str:
    """The vault the member rule listens to (create mode: the toolkit's own vault)."""
    if config.backup.mode.value == "create":
        return config.backup.vault_name
    return (config.backup.existing.vault_names or ["Default"])[0]
