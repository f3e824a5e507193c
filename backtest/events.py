"""Reading ``Backup Change Measured`` events from JSON lines, as an audit queue holds them.

One EventBridge envelope per line (an SQS message whose ``Body`` is the envelope is
accepted too). Liberal in what is optional (``writtenBlocks``, ``content``, labels; times
with ``Z``), strict in what a measurement is: a count given as a string, a time without a
timezone or content counts that do not add up are problems, reported with their line
number, never guessed at. Events of another detail-type are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from backup_anomaly.scoring import Content

MEASURED = "Backup Change Measured"
_CONTENT_KEYS = ("sampledBlocks", "pages", "incompressibleBefore", "incompressibleAfter")


class EventsUnreadable(Exception):
    """The events file cannot be read at all (missing, a directory, not text)."""


@dataclass(frozen=True)
class Labels:
    """What a labelled (simulated or hand-labelled) event says it is.

    Attributes:
        label: ``detail.label`` (``attack`` marks a positive), or None.
        attack: ``detail.attack``, the attack kind.
        attack_percent: ``detail.attackPercent``, share of written data encrypted (percent).
        attack_day: ``detail.attackDay``, 0 for an episode's first measurement.
        attack_id: ``detail.attackId``, the episode.
        data_kind: ``detail.simulation.dataKind``.
        benign: ``detail.simulation.benign``, a benign cause (``reorg``, ``month_end``).
    """

    label: str | None = None
    attack: str | None = None
    attack_percent: float | None = None
    attack_day: int | None = None
    attack_id: str | None = None
    data_kind: str | None = None
    benign: str | None = None

    @property
    def is_attack(self) -> bool:
        """Whether the event is labelled as an attack."""
        return self.label is not None and self.label.lower() == "attack"


@dataclass(frozen=True)
class Measurement:
    """One measurement event, validated.

    Attributes:
        line: line number in the input (1-based).
        measurement_id: ``detail.measurementId`` (stable across retries).
        volume_key: the volume: ``detail.volumeArn``, else account:region:volumeId.
        volume_id: ``detail.volumeId``.
        completion_time: the new snapshot's backup completion time (UTC).
        changed_blocks: ``detail.changedBlocks``.
        written_blocks: ``detail.writtenBlocks`` (None when absent).
        content: ``detail.content`` (None when null or absent).
        previous_snapshot_id: ``detail.previousSnapshotId``.
        snapshot_id: ``detail.snapshotId``.
        labels: the labels, when present.
        previous_completion_time: ``detail.previousCompletionTime``, the previous snapshot's
            backup completion time (None when absent: the previous measurement's stands in).
        account: the account (the envelope's, else the detail's; "" when neither says).
    """

    line: int
    measurement_id: str
    volume_key: str
    volume_id: str
    completion_time: datetime
    changed_blocks: int
    written_blocks: int | None
    content: Content | None
    previous_snapshot_id: str | None
    snapshot_id: str | None
    labels: Labels
    previous_completion_time: datetime | None = None
    account: str = ""

    def same_measure(self, other: Measurement) -> bool:
        """Whether two events of one measurement report the same numbers."""
        return (
            self.completion_time == other.completion_time
            and self.changed_blocks == other.changed_blocks
            and self.written_blocks == other.written_blocks
            and self.content == other.content
        )


@dataclass(frozen=True)
class Problem:
    """A line that is not a valid event."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ReadResult:
    """Everything read from one events file.

    Attributes:
        measurements: the valid measurements, in input order (duplicates included).
        problems: invalid lines.
        skipped: events of another detail-type, counted by detail-type.
        lines: non-blank lines read.
    """

    measurements: list[Measurement] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    lines: int = 0


class _Bad(Exception):
    """A field is invalid; the message says which and why."""


def read_events(path: str) -> ReadResult:
    """Reads and validates every line of ``path``.

    Raises:
        EventsUnreadable: the file cannot be opened or is not UTF-8 text.
    """
    result = ReadResult()
    try:
        with open(path, encoding="utf-8") as lines:
            for number, text in enumerate(lines, start=1):
                if not text.strip():
                    continue
                result.lines += 1
                parse_line(text, number, result)
    except (OSError, UnicodeDecodeError) as exc:
        raise EventsUnreadable(f"{path}: {exc}") from exc
    return result


def parse_line(text: str, number: int, result: ReadResult) -> None:
    """Parses one line into ``result`` (a measurement, a skip or a problem)."""
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        result.problems.append(Problem(number, f"not JSON: {exc.msg} at column {exc.colno}"))
        return
    try:
        envelope = _unwrap(envelope)
        detail_type = envelope.get("detail-type")
        if not isinstance(detail_type, str):
            raise _Bad("no detail-type: not an EventBridge event")
        if detail_type != MEASURED:
            result.skipped[detail_type] += 1
            return
        result.measurements.append(_measurement(envelope, number))
    except _Bad as exc:
        result.problems.append(Problem(number, str(exc)))


def _unwrap(value: object) -> dict:
    if not isinstance(value, dict):
        raise _Bad(f"expected a JSON object, got {type(value).__name__}")
    body = value.get("Body")
    if "detail-type" not in value and isinstance(body, str):
        # An SQS message as the audit queue holds it: the envelope is its body.
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            raise _Bad(f"Body is not JSON: {exc.msg}") from exc
        if not isinstance(value, dict):
            raise _Bad("Body is not a JSON object")
    return value


def _measurement(envelope: dict, number: int) -> Measurement:
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise _Bad("detail must be an object")
    volume_arn = _optional_str(detail, "volumeArn")
    volume_id = _optional_str(detail, "volumeId")
    if volume_id is None and volume_arn is not None:
        volume_id = volume_arn.rsplit("/", 1)[-1]
    if volume_id is None:
        raise _Bad("detail.volumeId is missing (and there is no detail.volumeArn)")
    # The envelope's account is EventBridge's own (the detail's is the sender's word).
    account = _optional_str(envelope, "account") or _optional_str(detail, "account") or ""
    if volume_arn is not None:
        key = volume_arn
    else:
        region = _optional_str(detail, "region") or _optional_str(envelope, "region") or ""
        key = f"{account}:{region}:{volume_id}"
    previous = _optional_str(detail, "previousSnapshotId")
    snapshot = _optional_str(detail, "snapshotId")
    measurement_id = _optional_str(detail, "measurementId")
    if measurement_id is None:
        if previous is None or snapshot is None:
            raise _Bad("detail.measurementId is missing")
        measurement_id = f"{key}/{previous}/{snapshot}"
    changed = _count(detail, "changedBlocks", required=True)
    assert changed is not None
    written = _count(detail, "writtenBlocks", required=False)
    if written == 0:
        written = None  # an empty snapshot: nothing to take a share of
    return Measurement(
        line=number,
        measurement_id=measurement_id,
        volume_key=key,
        volume_id=volume_id,
        completion_time=_time(detail, "completionTime"),
        changed_blocks=changed,
        written_blocks=written,
        content=_content(detail.get("content")),
        previous_snapshot_id=previous,
        snapshot_id=snapshot,
        labels=_labels(detail),
        previous_completion_time=_time(detail, "previousCompletionTime")
        if detail.get("previousCompletionTime") is not None
        else None,
        account=account,
    )


def _optional_str(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{key} must be a string, got {json.dumps(value)}")
    return value or None


def _count(data: dict, key: str, *, required: bool, where: str = "detail") -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _Bad(f"{where}.{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"{where}.{key} must be an integer, got {json.dumps(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _Bad(f"{where}.{key} must be an integer, got {value!r}")
        value = int(value)
    if value < 0:
        raise _Bad(f"{where}.{key} must be >= 0, got {value}")
    return value


def _time(data: dict, key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise _Bad(f"detail.{key} must be an ISO 8601 time, got {json.dumps(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Bad(f"detail.{key} is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Bad(f"detail.{key} has no timezone: {value!r}")
    return parsed


def _content(value: object) -> Content | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(f"detail.content must be an object or null, got {json.dumps(value)}")
    counts = [_count(value, key, required=True, where="detail.content") for key in _CONTENT_KEYS]
    try:
        return Content(*counts)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _Bad(f"detail.{exc}") from exc


def _labels(detail: dict) -> Labels:
    label = detail.get("label")
    simulation = detail.get("simulation")
    if not isinstance(simulation, dict):
        simulation = {}
    if label is None and not simulation:
        return _NO_LABELS
    percent = detail.get("attackPercent")
    day = detail.get("attackDay")
    return Labels(
        label=_text(label),
        attack=_text(detail.get("attack")),
        attack_percent=float(percent) if isinstance(percent, int | float) else None,
        attack_day=int(day) if isinstance(day, int) and not isinstance(day, bool) else None,
        attack_id=_text(detail.get("attackId")),
        data_kind=_text(simulation.get("dataKind")),
        benign=_text(simulation.get("benign")),
    )


_NO_LABELS = Labels()


def _text(value: object) -> str | None:
    return None if value is None else str(value)
