"""The correlation of one batch of events, exactly once, and the scheduled sweep.

For an SQS batch the correlator classifies every event, writes every measurement, reset
and forged record with one BatchWriteItem per 25 (idempotent by key, see
``correlator.store``), then, record by record:

* a measurement judged at least the opening severity, a deleted previous snapshot, or a
  scan that found threats nobody else explains becomes a signal, and joins its incident
  (``incidents.join``): read the index, read the volume's rows, decide, write the change
  with its notifications as one transaction conditional on the index's version; on a
  conflict re-read and decide again (bounded); then publish the notifications;
* a heartbeat moves its account-region's "last heard" forward;
* a finished scan is kept under its resource and added to the incidents of the volumes it
  scanned;
* a record whose detail names another account than its sender is kept apart and opens
  (or counts into) a forged-events incident of the sender.

Normal measurements cost nothing more than their share of the batch write, and a
throttled "last heard" update per account-region. Their effect on incidents (a volume
measured normal again) is applied by the sweep, which reads the stored measurements, so
it does not depend on the order in which anomaly and recovery arrive.

A repeated signal finds its id in the volume's rows and changes nothing; a crash between
the write and the publication leaves the notifications pending, and the next look (the
redelivery, or the sweep) publishes them (``correlator.notify``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from correlator import events as ev
from correlator import incidents as inc
from correlator.logs import Outcome, emit
from correlator.messages import render_incident
from correlator.notify import Outbox, Publisher
from correlator.records import (
    Decision,
    Forgery,
    Heartbeat,
    Incident,
    Measurement,
    Member,
    Notice,
    OpsIncident,
    OpsKind,
    Reset,
    Scan,
    Severity,
    Signal,
    Status,
    combine,
    iso,
    partition_of,
)
from correlator.roster import Expected, read_roster
from correlator.settings import Settings
from correlator.silence import SilenceCheck, SilenceRules, with_notice
from correlator.store import (
    Conflict,
    Store,
    forged_item,
    measurement_item,
    reset_item,
)

# Attempts of one decision against concurrent writers before the event is retried by SQS.
MAX_ATTEMPTS = 8
# "Last heard" from measurements: once per batch and account-region, the newest backup of
# the batch is written when it is HEARD_RESOLUTION newer than what this execution
# environment wrote, or HEARD_EVERY (the correlator's clock) after its last write (a
# heartbeat is always written). So the stored time is never more than HEARD_RESOLUTION
# behind the newest backup received (the silence threshold is at least 1.5 hours), and an
# account-region whose backups land over an hour costs a handful of updates, not one per
# measurement.
HEARD_EVERY = timedelta(minutes=5)
HEARD_RESOLUTION = timedelta(minutes=15)
# Account names are re-read from the roster this often.
NAMES_EVERY = timedelta(minutes=5)
# A deleted previous backup snapshot is a high signal even alone: AWS Backup's lifecycle
# never deletes the newest recovery point of a volume still backed up, and deleting
# recovery points is how ransomware operators remove the way back. It is emailed (as the
# central stack's own rule did before the correlator); several volumes or accounts, or a
# rewrite beside it, raise the incident further.
SNAPSHOT_DELETED_SEVERITY = Severity.HIGH
# Member rows per recovery transaction (with the index and the head: under 100 items).
RECOVERY_CHUNK = 90
# A volume whose backups stopped and never resumed (deleted, decommissioned) was told when
# it stopped; its incident is closed quietly after this long so the open ones stay current.
STOPPED_GIVE_UP = timedelta(days=30)


class RetryLater(Exception):
    """The event must be retried (SQS redelivers it)."""


@dataclass
class Clients:
    """The AWS clients the correlator uses (any object with the boto3 methods works)."""

    dynamodb: Any
    sns: Any
    sqs: Any
    organizations: Any = None


def _now() -> datetime:
    return datetime.now(UTC)


class Correlator:
    """The correlator of one execution environment.

    Args:
        settings: the environment contract.
        clients: AWS clients.
        clock: the current time (tests move it).
        sleep: how conflict retries wait (tests pass a no-op).
    """

    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.sleep = sleep
        self.rules = inc.Rules.of(settings)
        self.store = Store(settings.central_table, clients.dynamodb, settings.history, sleep)
        self.publisher = Publisher(
            clients.sns, clients.sqs, settings.alert_topic_arn, settings.audit_queue_url
        )
        self.outbox = Outbox(self.store, self.publisher, lambda: self.clock())
        # Per account-region: when "last heard" was written, and the backup time written.
        self._heard: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        self._names: dict[str, str] = {}
        self._names_at: datetime | None = None
        self._roster: list[Expected] = []
        self._org_names: dict[str, str | None] = {}

    # -- batches ------------------------------------------------------------------------

    def handle_batch(self, messages: Sequence[tuple[str, object]]) -> list[str]:
        """Processes ``(message id, decoded event)`` pairs; the ids that must be retried."""
        classified = [(mid, ev.classify(raw, self.settings.member_event_source))
                      for mid, raw in messages]  # fmt: skip
        items: list[dict[str, Any]] = []
        owners: list[str] = []
        for mid, record in classified:
            item = self._item(record)
            if item is not None:
                items.append(item)
                owners.append(mid)
        failed: set[str] = set()
        if items:
            try:
                for position in self.store.put_items(items):
                    failed.add(owners[position])
            except (ClientError, BotoCoreError) as exc:
                emit(Outcome(Decision.ERROR, reason=f"batch write failed: {exc}"))
                return [mid for mid, _ in messages]
        try:
            self._heard_from([r for mid, r in classified if mid not in failed])
        except (ClientError, BotoCoreError) as exc:
            # Only the silence check reads it, and the next batch writes it again.
            emit(Outcome(Decision.ERROR, reason=f"last heard not updated: {exc}"))
        for mid, record in classified:
            if mid in failed:
                emit(Outcome(Decision.ERROR, reason="not stored (throttled)",
                             extra={"message_id": mid}))  # fmt: skip
                continue
            try:
                self._act(record)
            except Exception as exc:  # noqa: BLE001 - logged here; SQS retries this record
                emit(
                    Outcome(
                        Decision.ERROR,
                        reason=f"{type(exc).__name__}: {exc}",
                        extra={"message_id": mid},
                    )
                )
                failed.add(mid)
        return [mid for mid, _ in messages if mid in failed]

    def handle(self, raw: object) -> None:
        """Processes one event (a direct invocation).

        Raises:
            RetryLater: it must be retried.
        """
        if self.handle_batch([("direct", raw)]):
            raise RetryLater("the event could not be processed; see the log line")

    def _item(self, record: ev.Classified) -> dict[str, Any] | None:
        history = self.settings.history
        if isinstance(record, Measurement | Reset | Heartbeat | Scan) and record.forged:
            detail_type, record_id, at = _forged_identity(record, self.clock())
            return forged_item(
                detail_type, record_id, record.account, record.to_json(), at, history
            )
        if isinstance(record, Measurement):
            return measurement_item(record, history)
        if isinstance(record, Reset):
            return reset_item(record, history)
        return None

    def _act(self, record: ev.Classified) -> None:
        if isinstance(record, ev.Skip):
            decision = Decision.MALFORMED if record.code == "malformed" else Decision.SKIPPED
            emit(
                Outcome(
                    decision,
                    account=record.account,
                    region=record.region,
                    detail_type=record.detail_type,
                    reason=record.code,
                    extra={"message": record.message, "event_id": record.event_id},
                )
            )
            return
        if isinstance(record, ev.Scheduled):
            self.sweep()
            return
        if record.forged is not None:
            self._forged(record, record.forged)
            return
        if isinstance(record, Measurement):
            self._measured(record)
        elif isinstance(record, Reset):
            self._reset(record)
        elif isinstance(record, Heartbeat):
            self.store.touch_heard(record.account, record.region, heartbeat=record)
            emit(Outcome(Decision.HEARTBEAT, account=record.account, region=record.region))
        else:
            self._scan(record)

    def _heard_from(self, records: Sequence[ev.Classified]) -> None:
        newest: dict[tuple[str, str], datetime] = {}
        for record in records:
            if isinstance(record, Measurement | Reset) and record.forged is None:
                key = (record.account, record.region)
                newest[key] = max(newest.get(key, record.completion_time), record.completion_time)
        now = self.clock()
        for key, at in sorted(newest.items()):
            written = self._heard.get(key)
            if written is not None and (
                at <= written[1]
                or (at - written[1] < HEARD_RESOLUTION and now - written[0] < HEARD_EVERY)
            ):
                continue
            self.store.touch_heard(key[0], key[1], measurement_at=at)
            self._heard[key] = (now, at)

    def _measured(self, m: Measurement) -> None:
        severity = m.severity
        outcome = Outcome(
            Decision.STORED,
            account=m.account,
            region=m.region,
            detail_type=ev.ANOMALY_DETAIL_TYPE if m.anomaly_event else ev.MEASURED_DETAIL_TYPE,
            record=m.id,
            volume=m.volume_arn,
            severity=severity.value if severity else None,
        )
        if severity is not None and severity.at_least(self.rules.opening):
            self._correlate(Signal.of_measurement(m), outcome)
        else:
            emit(outcome)

    def _reset(self, r: Reset) -> None:
        outcome = Outcome(
            Decision.STORED,
            account=r.account,
            region=r.region,
            detail_type=ev.RESET_DETAIL_TYPE,
            record=r.id,
            volume=r.volume_arn,
            reason=r.reason,
        )
        severity = SNAPSHOT_DELETED_SEVERITY
        if r.security_relevant and severity.at_least(self.rules.opening):
            self._correlate(Signal.of_reset(r, severity), outcome)
        else:
            emit(outcome)

    # -- incidents ------------------------------------------------------------------------

    def _correlate(self, signal: Signal, outcome: Outcome) -> None:
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            index = self.store.read_index()
            routed = inc.route(index, signal.time, self.rules)
            families = routed.families
            rows = self.store.rows(families, signal.volume_arn) if families else []
            known = combine(rows, "")
            if known is not None and signal.id in known.signal_ids:
                self._done(outcome, Decision.DUPLICATE, "already counted", known.incident_id)
                self.outbox.deliver_stale()
                return
            transition = inc.join(
                index,
                routed,
                signal,
                rows=rows,
                merge_groups=self._merge_groups(routed),
                normal=self._normal(signal),
                scans=self.store.scans_for(self._scanned_resources(signal)),
                rules=self.rules,
                now=now,
            )
            if transition is None:
                self._done(outcome, Decision.DUPLICATE, "already counted", None)
                return
            notices = self._render(transition, now)
            try:
                self.store.commit(index.version, transition, notices)
            except Conflict:
                self._backoff(attempt)
                continue
            head = transition.heads[0]
            self._done(outcome, Decision.CORRELATED, transition.outcome, head.id,
                       inc.severity(head, self.rules))  # fmt: skip
            self.outbox.deliver(notices)
            # A crashed writer's notifications go out with the next change, not only with
            # the redelivery of its own event or the sweep.
            self.outbox.deliver_stale()
            return
        raise RetryLater(f"incident index contended for {MAX_ATTEMPTS} attempts")

    def _done(
        self,
        outcome: Outcome,
        decision: Decision,
        reason: str,
        incident_id: str | None,
        severity: Severity | None = None,
    ) -> None:
        outcome.decision = decision
        outcome.reason = reason
        outcome.incident = incident_id
        if severity is not None:
            outcome.extra["incident_severity"] = severity.value
        emit(outcome)

    def _backoff(self, attempt: int) -> None:
        self.sleep(min(2.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.0))

    def _normal(self, signal: Signal) -> inc.Normal | None:
        if ":volume/" not in signal.volume_arn:
            return None  # a scan of an instance nobody measured: nothing measures it
        return self.store.latest_normal(signal.volume_arn, signal.time)

    @staticmethod
    def _scanned_resources(signal: Signal) -> list[str]:
        resources = [signal.volume_arn]
        instance = signal.evidence.instance_id
        if instance and ":volume/" in signal.volume_arn:
            partition = partition_of(signal.volume_arn)
            resources.append(
                f"arn:{partition}:ec2:{signal.region}:{signal.account}:instance/{instance}"
            )
        return resources

    def _merge_groups(self, routed: inc.Route) -> list[inc.MergeGroup]:
        if not routed.merged or routed.target is None:
            return []
        merged_ids = [i for m in routed.merged for i in m.family]
        theirs = _by_volume(self.store.family_rows(merged_ids))
        ours = _by_volume(self.store.rows_for(routed.target.family, list(theirs)))
        groups = []
        for arn, rows in sorted(theirs.items()):
            their = combine(rows, routed.target.id)
            assert their is not None
            groups.append(inc.MergeGroup(their, combine(ours.get(arn, []), routed.target.id)))
        return groups

    def _members(self, head: Incident, overlay: Sequence[Member]) -> list[Member]:
        """The combined volumes of an incident, with the rows about to be written."""
        by_volume = _by_volume(self.store.family_rows(head.family))
        for row in overlay:
            if row.incident_id == head.id:
                by_volume.setdefault(row.volume_arn, []).append(row)
        members = []
        for rows in by_volume.values():
            member = combine(rows, head.id)
            if member is not None:
                members.append(member)
        return members

    def _render(self, transition: inc.Transition, now: datetime) -> list[Notice]:
        if not transition.intents:
            return []
        heads = {h.id: h for h in transition.heads}
        for head in transition.heads:
            for account in head.accounts:
                self.learn_name(account)
        names = self.names()
        members: dict[str, list[Member]] = {}
        notices = []
        for intent in transition.intents:
            head = heads[intent.incident_id]
            if head.id not in members:
                members[head.id] = self._members(head, transition.rows)
            notices.append(
                render_incident(
                    intent,
                    head,
                    members[head.id],
                    names,
                    self.rules,
                    self.settings.message_volumes,
                    now,
                )
            )
        return notices

    def _commit_transition(self, version: int, transition: inc.Transition) -> bool:
        notices = self._render(transition, self.clock())
        try:
            self.store.commit(version, transition, notices)
        except Conflict:
            return False
        self.outbox.deliver(notices)
        return True

    # -- scans ---------------------------------------------------------------------------

    def _scan(self, scan: Scan) -> None:
        self.store.put_scan(scan)
        outcome = Outcome(
            Decision.SCAN,
            account=scan.account,
            region=scan.region,
            detail_type=ev.SCAN_DETAIL_TYPE,
            record=scan.job_id,
            volume=scan.resource_arn,
            reason=scan.result or scan.state,
        )
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            index = self.store.read_index()
            matches = self._scan_matches(index, scan)
            if not any(matches.values()):
                if scan.threats:
                    # Threats in a backup nobody flagged: an incident of its own.
                    time_ = scan.created_at or scan.completed_at or now
                    self._correlate(Signal.of_scan(scan, time_), outcome)
                    return
                emit(outcome)
                return
            transition = inc.apply_scan(index, scan, matches, self.rules, now)
            if transition is None:
                self._done(outcome, Decision.DUPLICATE, "scan already counted", None)
                return
            if self._commit_transition(index.version, transition):
                self._done(outcome, Decision.SCAN, transition.outcome, transition.heads[0].id,
                           inc.severity(transition.heads[0], self.rules))  # fmt: skip
                return
            self._backoff(attempt)
        raise RetryLater(f"incident index contended for {MAX_ATTEMPTS} attempts")

    def _scan_matches(self, index: inc.Index, scan: Scan) -> dict[str, list[Member]]:
        """Per incident of the index, the combined members the scan's resource names."""
        matches: dict[str, list[Member]] = {}
        instance = (
            scan.resource_arn.rsplit("/", 1)[-1] if ":instance/" in scan.resource_arn else None
        )
        for incident in index.incidents:
            volumes = {scan.resource_arn}
            if instance:
                volumes |= self.store.alias_volumes(incident.family, instance)
            by_volume = _by_volume(self.store.rows_for(incident.family, sorted(volumes)))
            combined = [combine(rows, incident.id) for rows in by_volume.values()]
            found = [m for m in combined if m is not None and inc.scan_applies(scan, m)]
            if found:
                matches[incident.id] = found
        return matches

    # -- forged records ---------------------------------------------------------------------

    def _forged(self, record: ev.Record, forgery: Forgery) -> None:
        now = self.clock()
        detail_type, record_id, _ = _forged_identity(record, now)
        emit(
            Outcome(
                Decision.FORGED,
                account=record.account,
                region=getattr(record, "region", None),
                detail_type=detail_type,
                record=record_id,
                reason=f"{forgery.field} names {forgery.claimed_account}",
            )
        )
        for attempt in range(MAX_ATTEMPTS):
            item = self.store.get_ops(f"{OpsKind.FORGED.value}#{record.account}")
            if item is None or item.status is not Status.OPEN:
                change = OpsIncident(
                    kind=OpsKind.FORGED,
                    key=record.account,
                    account=record.account,
                    region=None,
                    status=Status.OPEN,
                    since=now,
                    last_seen=now,
                    count=1,
                    details={
                        "claimedAccounts": [forgery.claimed_account],
                        "fields": [forgery.field],
                        "detailTypes": [detail_type],
                    },
                    version=item.version if item else 0,
                    seq=item.seq if item else 0,
                )
                change = with_notice(change, f"forged-{change.key}", now, self.names())
            else:
                details = dict(item.details)
                for key, value in (
                    ("claimedAccounts", forgery.claimed_account),
                    ("fields", forgery.field),
                    ("detailTypes", detail_type),
                ):
                    details[key] = sorted({*details.get(key, []), value})
                # Counted, not told again: one email per sender until it is closed.
                change = replace(item, count=item.count + 1, last_seen=now, details=details)
            try:
                self.store.put_ops(change, item.version if item else 0)
            except Conflict:
                self._backoff(attempt)
                continue
            if change.pending is not None and (item is None or change.pending != item.pending):
                self.outbox.deliver_ops([change], own=True)
            return
        raise RetryLater("forged-events incident contended")

    # -- the sweep ------------------------------------------------------------------------

    def sweep(self) -> None:
        """The scheduled run: notifications left pending, incidents, silence, forged."""
        now = self.clock()
        self.outbox.deliver_stale()
        self._tidy()
        self._recover()
        names = self.names(refresh=True)
        rules = SilenceRules(
            intervals=self.settings.silence_intervals,
            regular=self.settings.regular_backups,
            default_interval_seconds=self.settings.default_interval_seconds,
        )
        written = SilenceCheck(self.store, self.outbox, rules, names).run(self._roster, now)
        self._close_quiet(now)
        self.outbox.deliver_ops(self.store.ops_items(), own=False)
        emit(
            Outcome(
                Decision.SWEEP,
                reason="done",
                extra={"operational_changes": len(written)},
            )
        )

    def _tidy(self) -> None:
        for attempt in range(MAX_ATTEMPTS):
            index = self.store.read_index()
            transition = inc.tidy(index, self.rules, self.clock())
            if transition is None or self._commit_transition(index.version, transition):
                return
            self._backoff(attempt)
        raise RetryLater("incident index contended during the sweep")

    def _recover(self) -> None:
        index = self.store.read_index()
        for incident in index.incidents:
            if incident.status is not Status.OPEN:
                continue
            members = self._members(incident, ())
            normals = {}
            for member in members:
                if member.recovered or ":volume/" not in member.volume_arn:
                    continue
                normal = self.store.latest_normal(member.volume_arn, member.last_at)
                if normal is not None:
                    normals[member.volume_arn] = normal
            volumes = sorted(normals)
            for start in range(0, len(volumes), RECOVERY_CHUNK):
                self._recover_chunk(incident.id, volumes[start : start + RECOVERY_CHUNK], normals)

    def _recover_chunk(
        self, incident_id: str, volumes: Sequence[str], normals: Mapping[str, inc.Normal]
    ) -> None:
        for attempt in range(MAX_ATTEMPTS):
            index = self.store.read_index()
            incident = index.get(incident_id)
            if incident is None or incident.status is not Status.OPEN:
                return
            # Rows read after the index and committed against its version: a concurrent
            # signal on one of these volumes makes the commit fail, and this step re-reads.
            by_volume = _by_volume(self.store.rows_for(incident.family, volumes))
            members = [m for rows in by_volume.values() if (m := combine(rows, incident.id))]
            transition = inc.recover(index, incident, members, normals, self.rules, self.clock())
            if transition is None or self._commit_transition(index.version, transition):
                return
            self._backoff(attempt)
        raise RetryLater("incident index contended during recovery")

    def _close_quiet(self, now: datetime) -> None:
        """Closes, without a word, forged-events incidents quiet for the expiry and
        stopped-backup incidents that never resumed."""
        for item in self.store.ops_items():
            if item.status is not Status.OPEN or item.pending is not None:
                continue
            quiet = now - (item.last_seen or item.since)
            if (item.kind is OpsKind.FORGED and quiet >= self.rules.expiry) or (
                item.kind is OpsKind.STOPPED and quiet >= STOPPED_GIVE_UP
            ):
                closed = replace(item, status=Status.RESOLVED, closed_at=now)
                try:
                    self.store.put_ops(closed, item.version)
                except Conflict:
                    continue

    # -- account names -----------------------------------------------------------------------

    def names(self, refresh: bool = False) -> dict[str, str]:
        """Account id -> name: the roster's, then Organizations' when enabled."""
        now = self.clock()
        if refresh or self._names_at is None or now - self._names_at >= NAMES_EVERY:
            self._roster = read_roster(self.clients.dynamodb, self.settings.central_table)
            self._names = {e.entry.account: e.entry.name for e in self._roster if e.entry.name}
            self._names_at = now
        if not self.settings.organizations_names or self.clients.organizations is None:
            return self._names
        names = dict(self._names)
        for account, name in self._org_names.items():
            if name and account not in names:
                names[account] = name
        return names

    def learn_name(self, account: str) -> None:
        """Looks an account's name up in Organizations once (when enabled)."""
        if (
            not self.settings.organizations_names
            or self.clients.organizations is None
            or account in self._names
            or account in self._org_names
        ):
            return
        try:
            response = self.clients.organizations.describe_account(AccountId=account)
            self._org_names[account] = response.get("Account", {}).get("Name")
        except (ClientError, BotoCoreError) as exc:
            self._org_names[account] = None
            emit(Outcome(Decision.SKIPPED, account=account, reason=f"no account name: {exc}"))


def _by_volume(rows: Sequence[Member]) -> dict[str, list[Member]]:
    out: dict[str, list[Member]] = {}
    for row in rows:
        out.setdefault(row.volume_arn, []).append(row)
    return out


def _forged_identity(record: ev.Record, now: datetime) -> tuple[str, str, datetime]:
    """Detail type, stable id and time of a forged record (its storage key)."""
    if isinstance(record, Measurement):
        kind = ev.ANOMALY_DETAIL_TYPE if record.anomaly_event else ev.MEASURED_DETAIL_TYPE
        return kind, record.id, record.completion_time
    if isinstance(record, Reset):
        return ev.RESET_DETAIL_TYPE, record.id, record.completion_time
    if isinstance(record, Heartbeat):
        return ev.HEARTBEAT_DETAIL_TYPE, f"{record.region}/{iso(record.sent_at)}", record.sent_at
    return ev.SCAN_DETAIL_TYPE, record.job_id, record.at or now
