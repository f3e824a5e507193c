"""The measurement of one event, exactly once per volume and snapshot.

For each volume of a completed backup the detector reads the volume's state and decides:

* first sighting: the snapshot becomes the baseline (nothing to compare with yet);
* the baseline itself, or older than it: a duplicate or a late event, a no-op (the change a
  late snapshot carries is inside the newer measurement already made, so no change goes
  unmeasured);
* newer: count the blocks changed since the baseline, then, in one conditional write, move
  the baseline and record the measurement as pending; publish it; clear it.

Crash safety: a pending measurement left by a crash is published by whoever reads the volume
next (the retry of the same event, which is now a duplicate, or any later event) before
anything else happens. Concurrency: every transition is a compare-and-swap on the state's
version, so of two invocations for one volume only one moves the baseline; the other
re-reads and decides again.

Counts that outlast one invocation: when the count stops at the deadline, its checkpoint is
saved in the volume's state with a generation number and a continuation message is sent to
the work queue (before the save, so a saved checkpoint always has a message on its way).
A continuation resumes only if its generation is the state's; a duplicate finds a newer
generation or a moved baseline and is a no-op. A newer backup of a volume whose count is in
progress waits (it is retried by SQS) so that every consecutive pair is measured. A count
whose checkpoint has not moved for ``STALE_PROGRESS`` lost its continuation: the next event
of the volume resumes it, one generation up, instead of waiting behind it forever.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from backup_anomaly import findings, metrics
from backup_anomaly import history as history_codec
from backup_anomaly.alarms import AlarmManager
from backup_anomaly.attachment import lookup as look_up_attachment
from backup_anomaly.budget import GET_SNAPSHOT_BLOCK, LIST_CHANGED_BLOCKS, SharedBudget
from backup_anomaly.changed_blocks import (
    CountCheckpoint,
    CountResult,
    SnapshotNotFound,
    UnrelatedSnapshots,
    count_changed_blocks,
)
from backup_anomaly.confirm import ScanStart, start_scan
from backup_anomaly.events import (
    HEARTBEAT_DETAIL_TYPE,
    BackupJob,
    Continuation,
    Heartbeat,
    MalformedEvent,
    ScanResult,
    Skip,
    classify,
    continuation_event,
)
from backup_anomaly.forward import forward_measurement, forward_reset, put_event
from backup_anomaly.logs import Outcome, emit
from backup_anomaly.records import (
    BaselineReset,
    CountProgress,
    Decision,
    Judgement,
    Measurement,
    Pending,
    ResetReason,
)
from backup_anomaly.sampling import BlockChecksumMismatch, SnapshotGone, sample_content
from backup_anomaly.scoring import (
    Content,
    HistoryEntry,
    Observation,
    Severity,
    judge,
    last_clean,
    size_verdict,
    wants_more_samples,
)
from backup_anomaly.settings import Settings
from backup_anomaly.snapshots import RecoveryPointGone, VolumeSnapshot, resolve
from backup_anomaly.state import StateConflict, StateStore, VolumeState

DETECTOR_VERSION = "2"  # bumped when what the detector publishes changes
MAX_ATTEMPTS = 4
# Seconds kept back from the count for what follows it: save the checkpoint, send the
# continuation, or publish, put alarms and forward.
POST_COUNT_RESERVE_SECONDS = 5.0
# A continuation is delivered after this delay, so the checkpoint saved right after sending
# it is normally visible when it arrives (if not, it is retried, see ProgressNotVisible).
CONTINUATION_DELAY_SECONDS = 1
# A saved count whose checkpoint has not moved for this long has lost its continuation (in
# the DLQ after repeated stalls, or never delivered): the next event of the volume resumes it
# rather than wait behind it forever. Longer than any one invocation (15 minutes), so a live
# chain is rarely overtaken; if it is, generations keep the result exact.
STALE_PROGRESS = timedelta(minutes=30)


class RetryLater(Exception):
    """Transient condition: the event must be retried (SQS redelivers it)."""


class VolumeBusy(RetryLater):
    """An older snapshot's count of this volume is still in progress."""


class ProgressNotVisible(RetryLater):
    """A continuation arrived before the checkpoint it continues was saved."""


class CountStalled(RetryLater):
    """The count stopped for the deadline without progress: the invocation has too little time."""


class AnomalyNotDelivered(RetryLater):
    """An anomaly could not be put on the central bus; it stays pending and is retried."""


WATCHED_CLIENTS = ("ec2", "backup", "cloudwatch", "dynamodb", "events", "sqs", "securityhub")


@dataclass
class Clients:
    """The AWS clients the detector uses (any object with the boto3 methods works)."""

    ebs: Any
    ec2: Any
    backup: Any
    cloudwatch: Any
    dynamodb: Any
    events: Any
    sqs: Any
    securityhub: Any = None

    def watch(self, hook: Callable[..., None]) -> None:
        """Registers ``hook`` on every call of the clients but EBS (the count reports its own)."""
        for name in WATCHED_CLIENTS:
            meta = getattr(getattr(self, name, None), "meta", None)
            if meta is not None:
                meta.events.register("before-call", hook)


@dataclass
class _Run:
    """Accounting of one volume's processing, for its log line."""

    started: float = field(default_factory=time.monotonic)
    calls_before: int = 0
    count_calls: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    """An AWS error in one line: its code and message, never a request's payload."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _stalled(progress: CountProgress) -> bool:
    """Whether a saved count has not moved for ``STALE_PROGRESS``."""
    if progress.saved_at is None:
        return True
    return _now() - progress.saved_at > STALE_PROGRESS


def _older_than_counted(snapshots: dict) -> Outcome:
    return Outcome(
        Decision.STALE, snapshots=snapshots, reason="older than the snapshot being counted"
    )


class Detector:
    """Turns events into measurements, state transitions, metrics, alarms and forwards.

    Args:
        settings: the environment contract.
        clients: the AWS clients.
        count: the counting function (``changed_blocks.count_changed_blocks``).
        sample: the content sampler (``sampling.sample_content``).
    """

    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        count: Callable = count_changed_blocks,
        sample: Callable = sample_content,
    ):
        self.settings = settings
        self.clients = clients
        self.count = count
        self.sample = sample
        self.scoring = settings.scoring()
        self.store = StateStore(settings.state_table, clients.dynamodb)
        self.alarms = AlarmManager(settings, clients.cloudwatch, self.store)
        # One lease holder per execution environment and API: every count and sampler of
        # the account and region shares the EBS direct API quotas (backup_anomaly.budget).
        self.list_budget = SharedBudget(
            clients.dynamodb,
            settings.state_table,
            LIST_CHANGED_BLOCKS,
            rate=settings.ebs_max_requests_per_second,
        )
        self.read_budget = SharedBudget(
            clients.dynamodb,
            settings.state_table,
            GET_SNAPSHOT_BLOCK,
            rate=settings.ebs_get_block_requests_per_second,
        )
        self._call_total = 0
        self._run = _Run()
        clients.watch(self._on_call)

    def _on_call(self, **_kwargs) -> None:
        self._call_total += 1

    # -- entry point ----------------------------------------------------------------------

    def handle(self, raw: object, remaining: Callable[[], float] | None = None) -> list[dict]:
        """Processes one EventBridge event.

        Args:
            raw: the decoded event.
            remaining: seconds left in the invocation (None: no deadline).

        Returns:
            The logged outcome records.

        Raises:
            Exception: the event must be retried (after every volume was attempted).
        """
        started = time.monotonic()
        decision = classify(raw, self.settings)
        if isinstance(decision, Skip):
            return [emit(self._skip_outcome(decision, started))]
        work = decision.work
        if isinstance(work, Continuation):
            return [
                self._run_volume(
                    work.volume_arn,
                    work.account,
                    work.region,
                    lambda state: self._continue(state, work, remaining),
                    snapshot_id=work.snapshot_id,
                    backup_job_id=None,
                    event_id=work.event.id,
                )
            ]
        if isinstance(work, Heartbeat):
            return [emit(self._heartbeat(work, started))]
        if isinstance(work, ScanResult):
            return [emit(self._scan_result(work, started))]
        return self._handle_job(work, remaining, started)

    def _skip_outcome(self, skip: Skip, started: float) -> Outcome:
        return Outcome(
            decision=Decision.MALFORMED if skip.code == "malformed" else Decision.SKIPPED,
            account=skip.account,
            region=skip.region,
            reason=skip.code,
            duration_ms=int((time.monotonic() - started) * 1000),
            extra={"message": skip.message, "event_id": skip.event_id},
        )

    def _handle_job(self, job: BackupJob, remaining, started: float) -> list[dict]:
        calls_before = self._call_total
        try:
            targets = resolve(job, ec2_client=self.clients.ec2, backup_client=self.clients.backup)
        except (RecoveryPointGone, MalformedEvent) as exc:
            decision = Decision.MALFORMED if isinstance(exc, MalformedEvent) else Decision.SKIPPED
            return [
                emit(
                    Outcome(
                        decision=decision,
                        account=job.account,
                        region=job.region,
                        volume=job.resource_arn.resource_id,
                        reason="malformed"
                        if decision is Decision.MALFORMED
                        else "recovery_point_gone",
                        api_calls=self._call_total - calls_before,
                        duration_ms=int((time.monotonic() - started) * 1000),
                        extra={
                            "message": str(exc),
                            "event_id": job.event.id,
                            "backup_job_id": job.backup_job_id,
                        },
                    )
                )
            ]
        except Exception as exc:
            emit(
                Outcome(
                    decision=Decision.ERROR,
                    account=job.account,
                    region=job.region,
                    volume=job.resource_arn.resource_id,
                    reason=type(exc).__name__,
                    api_calls=self._call_total - calls_before,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    extra={
                        "message": str(exc),
                        "event_id": job.event.id,
                        "backup_job_id": job.backup_job_id,
                    },
                )
            )
            raise
        if not targets:
            return [
                emit(
                    Outcome(
                        decision=Decision.SKIPPED,
                        account=job.account,
                        region=job.region,
                        volume=job.resource_arn.resource_id,
                        reason="no_volume_lineage",
                        api_calls=self._call_total - calls_before,
                        duration_ms=int((time.monotonic() - started) * 1000),
                        extra={
                            "message": "no snapshot of the recovery point was made from a volume",
                            "event_id": job.event.id,
                            "backup_job_id": job.backup_job_id,
                        },
                    )
                )
            ]
        records, failure = [], None
        for target in targets:
            try:
                records.append(
                    self._run_volume(
                        target.volume_arn,
                        target.account,
                        target.region,
                        functools.partial(self._measure_job, target=target, remaining=remaining),
                        snapshot_id=target.snapshot_id,
                        backup_job_id=job.backup_job_id,
                        event_id=job.event.id,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - measure the other volumes, then retry
                failure = failure or exc
        if failure is not None:
            raise failure
        return records

    # -- one volume -------------------------------------------------------------------------

    def _run_volume(
        self,
        volume_arn: str,
        account: str,
        region: str,
        step: Callable[[VolumeState | None], Outcome],
        *,
        snapshot_id: str,
        backup_job_id: str | None,
        event_id: str | None,
    ) -> dict:
        run = _Run(calls_before=self._call_total)
        self._run = run
        volume_id = volume_arn.rsplit("/", 1)[-1]
        try:
            for _attempt in range(MAX_ATTEMPTS):
                state = self.store.get(volume_arn)
                if state is not None and state.pending is not None:
                    self._publish_pending(volume_arn, state.pending, state.open_finding)
                try:
                    outcome = step(state)
                    break
                except StateConflict:
                    continue
            else:
                raise RetryLater(f"{volume_arn}: state kept changing during {MAX_ATTEMPTS} tries")
        except Exception as exc:
            record = Outcome(
                decision=Decision.RETRY if isinstance(exc, RetryLater) else Decision.ERROR,
                account=account,
                region=region,
                volume=volume_id,
                snapshots={"current": snapshot_id},
                reason=type(exc).__name__,
                api_calls=self._call_total - run.calls_before + run.count_calls,
                duration_ms=int((time.monotonic() - run.started) * 1000),
                extra={
                    "message": str(exc),
                    "volume_arn": volume_arn,
                    "backup_job_id": backup_job_id,
                    "event_id": event_id,
                },
            )
            emit(record)
            raise
        outcome.account, outcome.region, outcome.volume = account, region, volume_id
        outcome.api_calls = self._call_total - run.calls_before + run.count_calls
        outcome.duration_ms = int((time.monotonic() - run.started) * 1000)
        outcome.extra = {
            "volume_arn": volume_arn,
            "backup_job_id": backup_job_id,
            "event_id": event_id,
            **outcome.extra,
        }
        return emit(outcome)

    def _measure_job(self, state: VolumeState | None, target: VolumeSnapshot, remaining) -> Outcome:
        snapshots = {
            "previous": state.snapshot_id if state else None,
            "current": target.snapshot_id,
        }
        if state is None:
            self._move_baseline(target, expected_version=None, pending=None)
            return self._with_alarms(
                Outcome(Decision.BASELINE_CREATED, snapshots=snapshots, reason="first sighting"),
                None,
                target,
            )
        if state.snapshot_id == target.snapshot_id:
            return self._with_alarms(
                Outcome(Decision.DUPLICATE, snapshots=snapshots, reason="snapshot is the baseline"),
                state,
                target,
            )
        if not state.is_newer(target.completion_time, target.snapshot_id):
            return Outcome(Decision.STALE, snapshots=snapshots, reason="older than the baseline")
        progress = state.progress
        if progress is not None:
            other = progress.target
            stalled = _stalled(progress)
            if other.snapshot_id == target.snapshot_id:
                if stalled:
                    return self._take_over(state, progress, remaining)
                return Outcome(
                    Decision.IN_PROGRESS,
                    snapshots=snapshots,
                    reason="count continues in a queued continuation",
                    extra={"generation": progress.generation},
                )
            if progress.counts_newer_than(target.completion_time, target.snapshot_id):
                return _older_than_counted(snapshots)
            if not stalled:
                raise VolumeBusy(f"count of {other.snapshot_id} in progress; retry later")
            adopted = self._take_over(state, progress, remaining)
            adopted.account, adopted.region, adopted.volume = (
                other.account,
                other.region,
                other.volume_id,
            )
            adopted.extra = {"volume_arn": other.volume_arn, **adopted.extra}
            emit(adopted)
            if adopted.decision is Decision.CONTINUED:
                raise VolumeBusy(f"count of {other.snapshot_id} resumed; retry later")
            raise StateConflict(target.volume_arn)  # the baseline moved: re-read, measure
        return self._measure(state, target, None, 0, remaining)

    def _take_over(self, state: VolumeState, progress: CountProgress, remaining) -> Outcome:
        """Resumes a count whose continuation was lost, one generation up (the lost chain,
        should it come back, is then a duplicate). An unreadable checkpoint restarts it."""
        try:
            checkpoint: CountCheckpoint | None = CountCheckpoint.from_json(progress.checkpoint)
        except ValueError:
            checkpoint = None
        outcome = self._measure(state, progress.target, checkpoint, progress.generation, remaining)
        saved = progress.saved_at.isoformat() if progress.saved_at else None
        outcome.extra = {**outcome.extra, "took_over": saved}
        return outcome

    def _continue(self, state: VolumeState | None, work: Continuation, remaining) -> Outcome:
        snapshots = {"previous": state.snapshot_id if state else None, "current": work.snapshot_id}
        if state is None:
            return Outcome(Decision.SKIPPED, snapshots=snapshots, reason="unknown_volume")
        progress = state.progress
        if progress is not None and progress.target.snapshot_id == work.snapshot_id:
            generation = progress.generation
            if generation > work.generation:
                return Outcome(
                    Decision.DUPLICATE,
                    snapshots=snapshots,
                    reason="continuation of an older generation",
                    extra={"generation": work.generation},
                )
            if generation < work.generation:
                raise ProgressNotVisible(
                    f"checkpoint generation {work.generation} not saved yet ({generation})"
                )
            checkpoint = CountCheckpoint.from_json(progress.checkpoint)
            return self._measure(state, progress.target, checkpoint, generation, remaining)
        if state.snapshot_id == work.snapshot_id:
            # The count completed (maybe by this very message, whose publishing failed
            # after the baseline moved): what followed the move must still happen.
            return self._ensure_alarms_of_baseline(
                state,
                Outcome(Decision.DUPLICATE, snapshots=snapshots, reason="count already completed"),
            )
        if not state.is_newer(work.completion_time, work.snapshot_id):
            return Outcome(
                Decision.DUPLICATE, snapshots=snapshots, reason="count already completed"
            )
        if progress is not None and progress.counts_newer_than(
            work.completion_time, work.snapshot_id
        ):
            return _older_than_counted(snapshots)
        raise ProgressNotVisible(f"no checkpoint for {work.snapshot_id} yet")

    # -- counting and transitions -------------------------------------------------------------

    def _measure(
        self,
        state: VolumeState,
        target: VolumeSnapshot,
        checkpoint: CountCheckpoint | None,
        generation: int,
        remaining,
    ) -> Outcome:
        snapshots = {"previous": state.snapshot_id, "current": target.snapshot_id}
        deadline = None
        if remaining is not None and self.settings.work_queue_url:
            # Without a work queue nothing could continue the count: let it run to the end.
            def deadline() -> float:
                return remaining() - POST_COUNT_RESERVE_SECONDS

        try:
            result = self.count(
                self.clients.ebs,
                state.snapshot_id,
                target.snapshot_id,
                checkpoint=checkpoint,
                remaining_seconds=deadline,
                max_requests_per_second=self.settings.ebs_max_requests_per_second,
                workers=self.settings.ebs_count_workers,
                # The sample is drawn while counting (the larger one: whether it is needed
                # is known only once the count is); a resumed count carries its own.
                sample_size=self.settings.content_samples_max
                if self.settings.content_sampling
                else 0,
                budget=self.list_budget,
            )
        except (UnrelatedSnapshots, SnapshotNotFound) as exc:
            # SnapshotNotFound: the baseline's snapshot is gone (deleted since the last
            # backup, which is what ransomware does to recovery points first).
            reason = (
                ResetReason.UNRELATED_SNAPSHOTS
                if isinstance(exc, UnrelatedSnapshots)
                else ResetReason.PREVIOUS_SNAPSHOT_MISSING
            )
            reset = BaselineReset(target, state.snapshot_id, reason, _now())
            published = self._advance(target, state, reset)
            return self._with_alarms(
                Outcome(
                    Decision.BASELINE_RESET,
                    snapshots=snapshots,
                    reason=reason.value,
                    extra={"message": str(exc), **published},
                ),
                state,
                target,
            )
        before = checkpoint.api_calls if checkpoint else 0
        self._run.count_calls += result.api_calls - before
        if not result.complete:
            if result.checkpoint is None or result.api_calls <= before:
                raise CountStalled("no time left to count in this invocation")
            generation += 1
            self._send_continuation(target, state.snapshot_id, generation)
            self.store.save_progress(
                target.volume_arn,
                expected_version=state.version,
                progress=CountProgress(
                    target=target,
                    previous_snapshot_id=state.snapshot_id,
                    generation=generation,
                    checkpoint=result.checkpoint.to_json(),
                    saved_at=_now(),
                ),
            )
            return Outcome(
                Decision.CONTINUED,
                snapshots=snapshots,
                changed_blocks=result.changed_blocks,
                reason="deadline; continuation queued",
                extra={"generation": generation, "partial": True},
            )
        measurement, entry, sampled_calls = self._judge(state, target, result, deadline)
        self._run.count_calls += sampled_calls
        history = history_codec.appended(state.history, entry, self.settings.history_limit)
        published = self._advance(target, state, measurement, history)
        judgement = measurement.judgement
        extra: dict[str, Any] = {**published}
        if judgement is not None:
            extra["severity"] = judgement.severity.value
            extra["score"] = judgement.verdict.get("score")
        if measurement.content is not None:
            extra["sampled_blocks"] = measurement.content.sampled_blocks
        if measurement.content_note:
            extra["content_note"] = measurement.content_note
        return self._with_alarms(
            Outcome(
                Decision.MEASURED,
                snapshots=snapshots,
                changed_blocks=result.changed_blocks,
                extra=extra,
            ),
            state,
            target,
        )

    # -- the verdict ----------------------------------------------------------------------------

    def _judge(
        self,
        state: VolumeState,
        target: VolumeSnapshot,
        result: CountResult,
        deadline: Callable[[], float] | None,
    ) -> tuple[Measurement, HistoryEntry, int]:
        """Size verdict, content sample (the larger one when the size is unusual), verdict.

        Returns:
            The measurement with its verdict, its history entry, and the requests sampling made.
        """
        observation = Observation(
            time=target.completion_time,
            changed_blocks=result.changed_blocks,
            written_blocks=target.written_blocks,
            previous_time=state.completion_time,
            snapshot_id=target.snapshot_id,
        )
        content: Content | None = None
        calls = 0
        if not self.settings.content_sampling:
            note: str | None = "content sampling is off"
        elif result.changed_blocks == 0:
            note = "nothing changed: nothing to sample"
        else:
            size = size_verdict(observation, state.history, self.scoring)
            wanted = (
                self.settings.content_samples_max
                if wants_more_samples(size, self.scoring)
                else self.settings.content_samples
            )
            content, note, calls = self._sample_content(state, target, result, wanted, deadline)
            observation = dataclasses.replace(observation, content=content)
        verdict = judge(observation, state.history, self.scoring)
        clean = last_clean(state.history)
        if clean is not None:
            clean_id, clean_time = clean.observation.snapshot_id, clean.observation.time
        elif not state.history:
            # The first snapshot seen: nothing was judged before it, and it is the oldest
            # point the detector knows to restore from.
            clean_id, clean_time = state.snapshot_id, state.completion_time
        else:
            clean_id, clean_time = None, None
        # Who to call: looked up only for what will be reported (two EC2 calls).
        attachment = (
            look_up_attachment(self.clients.ec2, target.volume_id)
            if verdict.severity.at_least(Severity.LOW)
            else None
        )
        period = self.settings.alarm_period_seconds * self.settings.evaluation_periods
        late = self.settings.cloudwatch_alarms and (
            _now() - target.completion_time > timedelta(seconds=period)
        )
        measurement = Measurement(
            target=target,
            previous_snapshot_id=state.snapshot_id,
            changed_blocks=result.changed_blocks,
            volume_size_gib=result.volume_size_gib or target.volume_size_gib,
            block_size=result.block_size,
            measured_at=_now(),
            written_blocks=target.written_blocks,
            previous_completion_time=state.completion_time,
            content=content,
            content_note=note,
            judgement=Judgement(verdict.severity, verdict.to_detail(), clean_id, clean_time),
            late_for_alarms=late,
            attachment=attachment,
        )
        return measurement, HistoryEntry(observation, verdict.severity), calls

    def _sample_content(
        self,
        state: VolumeState,
        target: VolumeSnapshot,
        result: CountResult,
        wanted: int,
        deadline: Callable[[], float] | None,
    ) -> tuple[Content | None, str | None, int]:
        """Reads ``wanted`` of the count's sampled blocks from both snapshots.

        Sampling never fails a measurement: whatever stops it (a key the detector may not
        use, a snapshot deleted meanwhile, the deadline) leaves the verdict on size alone,
        or on the blocks read so far, and says why in the note.
        """
        samples = result.samples[:wanted]
        if not samples:
            return None, "no sample was drawn (a count resumed from an older checkpoint)", 0
        note = None
        if result.sampled_from < result.changed_blocks:
            note = f"sampled from the last {result.sampled_from:,} changed blocks counted"
        try:
            sampled = self.sample(
                self.clients.ebs,
                state.snapshot_id,
                target.snapshot_id,
                samples,
                remaining_seconds=deadline,
                budget=self.read_budget,
                list_budget=self.list_budget,
                max_requests_per_second=self.settings.ebs_get_block_requests_per_second,
                workers=self.settings.ebs_count_workers,
                block_size=result.block_size,
            )
        except SnapshotGone as exc:
            metrics.put_counter(
                self.clients.cloudwatch,
                self.settings.metric_namespace,
                metrics.CONTENT_SAMPLING_FAILURES,
            )
            partial = exc.partial
            if partial is None or not partial.content.sampled_blocks:
                return None, f"{exc.snapshot_id} was deleted while its blocks were read", 0
            sampled = partial
            note = f"{exc.snapshot_id} was deleted while its blocks were read"
        except (BlockChecksumMismatch, ClientError, BotoCoreError) as exc:
            metrics.put_counter(
                self.clients.cloudwatch,
                self.settings.metric_namespace,
                metrics.CONTENT_SAMPLING_FAILURES,
            )
            return None, f"content not read: {_describe(exc)}", 0
        found = sampled.content
        if not found.sampled_blocks:
            return None, "no time was left to read the sampled blocks", sampled.api_calls
        if not sampled.complete:
            note = f"deadline: {found.sampled_blocks} of {len(samples)} sampled blocks read"
        content = Content(
            found.sampled_blocks,
            found.pages,
            found.incompressible_before,
            found.incompressible_after,
        )
        return content, note, sampled.api_calls

    def _move_baseline(
        self,
        target: VolumeSnapshot,
        *,
        expected_version: int | None,
        pending: Pending | None,
        history: tuple[HistoryEntry, ...] | None = None,
    ) -> None:
        self.store.move_baseline(
            target.volume_arn,
            volume_id=target.volume_id,
            snapshot_id=target.snapshot_id,
            completion_time=target.completion_time,
            base_blocks=target.base_blocks,
            volume_size_gib=target.volume_size_gib,
            expected_version=expected_version,
            pending=pending,
            history=history,
        )

    def _advance(
        self,
        target: VolumeSnapshot,
        state: VolumeState,
        pending: Pending,
        history: tuple[HistoryEntry, ...] | None = None,
    ) -> dict:
        """Moves the baseline to ``target`` with ``pending`` (and the history it extends) in
        the same write, then publishes it."""
        self._move_baseline(
            target, expected_version=state.version, pending=pending, history=history
        )
        return self._publish_pending(target.volume_arn, pending, state.open_finding)

    def _publish_pending(
        self, volume_arn: str, pending: Pending, open_finding: findings.OpenFinding | None = None
    ) -> dict:
        """Publishes a pending record (and what follows a verdict), then clears it. Safe to
        repeat: events dedupe by id, the scan by its idempotency token, the finding by id."""
        namespace = self.settings.metric_namespace
        cloudwatch = self.clients.cloudwatch
        bus, source = self.settings.central_bus_arn, self.settings.event_source
        info: dict = {}
        if isinstance(pending, BaselineReset):
            metrics.put_counter(cloudwatch, namespace, metrics.BASELINE_RESETS)
            forwarded = forward_reset(self.clients.events, bus, source, pending)
        else:
            timestamp = pending.target.completion_time
            if metrics.publishable(timestamp):
                metrics.put_changed_blocks(
                    cloudwatch,
                    namespace,
                    pending.target.volume_id,
                    pending.changed_blocks,
                    timestamp,
                )
                info["metric"] = "published"
            else:
                # CloudWatch would reject it forever; the forward below still records it.
                info["metric"] = "too_old"
            forwarded = forward_measurement(self.clients.events, bus, source, pending)
        info["forward"] = forwarded.status
        if forwarded.status == "failed":
            info["forward_error"] = forwarded.error
            metrics.put_counter(cloudwatch, namespace, metrics.FORWARD_FAILURES)
            judgement = pending.judgement if isinstance(pending, Measurement) else None
            if judgement is not None and judgement.is_anomaly:
                # An anomaly the security account never hears of is a missed attack: it
                # stays pending, and the event is retried (then dead-lettered, which alarms).
                raise AnomalyNotDelivered(
                    f"{judgement.severity.value} anomaly of {pending.target.volume_id} not "
                    f"delivered to the central bus: {forwarded.error}"
                )
        if isinstance(pending, Measurement):
            info.update(self._follow_up(volume_arn, pending, open_finding))
        self.store.clear_pending(volume_arn, pending.target.snapshot_id)
        return info

    def _follow_up(
        self, volume_arn: str, measurement: Measurement, open_finding: findings.OpenFinding | None
    ) -> dict:
        """A high or critical verdict starts the confirmation scan and imports (or updates)
        the volume's finding; the first normal one resolves an open finding. Best effort:
        failures are logged and counted, the verdict is already delivered."""
        judgement = measurement.judgement
        if judgement is None:
            return {}
        out: dict[str, Any] = {}
        namespace, cloudwatch = self.settings.metric_namespace, self.clients.cloudwatch
        if judgement.severity.at_least(Severity.HIGH):
            if self.settings.confirmation_scan:
                try:
                    started = start_scan(
                        self.clients.backup, measurement, self.settings.scanner_role_arn
                    )
                except Exception as exc:  # noqa: BLE001 - AWS errors come back as a status
                    started = ScanStart("failed", note=_describe(exc))
                out["scan"] = started.status
                if started.job_id:
                    out["scan_job_id"], out["scan_mode"] = started.job_id, started.mode
                if started.note:
                    out["scan_note"] = started.note
                if started.status == "failed":
                    metrics.put_counter(cloudwatch, namespace, metrics.SCAN_FAILURES)
            if self.settings.security_hub_findings:
                try:
                    found = findings.build(measurement, _now(), open_finding)
                    findings.put(
                        self.clients.securityhub, found.finding, update=open_finding is not None
                    )
                    self.store.record_finding(volume_arn, found)
                    out["finding"] = "imported"
                except Exception as exc:  # noqa: BLE001 - best effort, the verdict is out
                    # Anything (a refusal, an outage, a client that cannot be built) is
                    # counted and logged: a redelivery would be a duplicate and never retry.
                    out["finding"], out["finding_error"] = "failed", _describe(exc)
                    metrics.put_counter(cloudwatch, namespace, metrics.FINDING_FAILURES)
        elif (
            judgement.severity is Severity.NONE
            and open_finding is not None
            and self.settings.security_hub_findings
        ):
            try:
                findings.resolve(self.clients.securityhub, open_finding, _now())
                self.store.record_finding(volume_arn, None)
                out["finding"] = "resolved"
            except Exception as exc:  # noqa: BLE001 - best effort, as above
                out["finding"], out["finding_error"] = "failed", _describe(exc)
                metrics.put_counter(cloudwatch, namespace, metrics.FINDING_FAILURES)
        return out

    # -- what is not a backup -------------------------------------------------------------------

    def _heartbeat(self, work: Heartbeat, started: float) -> Outcome:
        """Says centrally that this detector runs (silence is how a broken one shows)."""
        detail = {
            "account": work.account,
            "region": work.region,
            "intervalSeconds": self.settings.alarm_period_seconds,
            "sentAt": _now().isoformat(),
            "detectorVersion": DETECTOR_VERSION,
        }
        sent = put_event(
            self.clients.events,
            self.settings.central_bus_arn,
            self.settings.event_source,
            HEARTBEAT_DETAIL_TYPE,
            None,
            detail,
        )
        if sent.status == "failed":
            metrics.put_counter(
                self.clients.cloudwatch, self.settings.metric_namespace, metrics.FORWARD_FAILURES
            )
        return Outcome(
            Decision.HEARTBEAT,
            account=work.account,
            region=work.region,
            duration_ms=int((time.monotonic() - started) * 1000),
            extra={"forward": sent.status, **({"forward_error": sent.error} if sent.error else {})},
        )

    def _scan_result(self, work: ScanResult, started: float) -> Outcome:
        """Adds a finished confirmation scan to the volume's open finding."""
        volume_id = work.volume_arn.rsplit("/", 1)[-1]
        outcome = Outcome(
            Decision.SCAN_RECORDED,
            account=work.account,
            region=work.region,
            volume=volume_id,
            extra={
                "scan_job_id": work.scan_job_id,
                "scan_state": work.state,
                "scan_result": work.result,
            },
        )
        state = self.store.get(work.volume_arn)
        if not self.settings.security_hub_findings or state is None or state.open_finding is None:
            outcome.decision, outcome.reason = Decision.SKIPPED, "no_open_finding"
        else:
            updated = findings.with_scan(state.open_finding, work.state, work.result, _now())
            findings.put(self.clients.securityhub, updated.finding, update=True)
            self.store.record_finding(work.volume_arn, updated)
            outcome.extra["finding"] = "updated"
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return outcome

    def _ensure_alarms_of_baseline(self, state: VolumeState, outcome: Outcome) -> Outcome:
        """Alarms of a volume whose baseline is the snapshot an event names."""
        result = self.alarms.ensure(state, state.volume_arn, state.volume_id, state.base_blocks)
        outcome.extra = {**outcome.extra, "alarms": result.action}
        return outcome

    def _with_alarms(
        self, outcome: Outcome, state: VolumeState | None, target: VolumeSnapshot
    ) -> Outcome:
        result = self.alarms.ensure(state, target.volume_arn, target.volume_id, target.base_blocks)
        outcome.extra = {**outcome.extra, "alarms": result.action}
        return outcome

    def _send_continuation(self, target: VolumeSnapshot, previous: str, generation: int) -> None:
        body = continuation_event(target, previous, generation, self.settings.event_source, _now())
        self.clients.sqs.send_message(
            QueueUrl=self.settings.work_queue_url,
            MessageBody=json.dumps(body),
            DelaySeconds=CONTINUATION_DELAY_SECONDS,
        )
