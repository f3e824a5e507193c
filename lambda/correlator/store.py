"""The central DynamoDB table: one table, every item the correlator keeps.

Keys: partition key ``pk`` (S), sort key ``sk`` (S); one global secondary index ``gsi1``
(``gsi1pk`` S, ``gsi1sk`` S, projection INCLUDE :data:`GSI1_ATTRIBUTES`); TTL on ``ttl``
(epoch seconds). :func:`table_definition` is the exact definition (the central template
must create the same).

======================  ===============================  ==============================
item                    pk / sk                          gsi1pk / gsi1sk
======================  ===============================  ==============================
measurement             ``VOL#<volumeArn>`` /            ``AR#<account>#<region>`` /
                        ``M#<completion>#<snap>#<prev>``  ``<completion>#<volumeArn>``
baseline reset          ``VOL#<volumeArn>`` /            as a measurement
                        ``R#<completion>#<snap>#<prev>``
forged record           ``FORGED#<sender>`` /            (none: kept out of every query)
                        ``<detail type>#<record id>``
scan result             ``SCAN#<resourceArn>`` / job id
incident index          ``ORG`` / ``INCIDENTS``
incident head           ``INC#<id>`` / ``#HEAD``          ``INCIDENTS`` / ``<first>#<id>``
incident volume         ``INC#<id>`` / ``VOL#<volumeArn>``
instance alias          ``INC#<id>`` / ``INST#<instanceId>``
pending notification    ``PENDING`` / ``<created>#<id>``
operational incident    ``OPS`` / ``<kind>#<key>``
heard from              ``HEARD`` / ``AR#<account>#<region>``
roster entry            ``ROSTER`` / ``AR#<account>#<region>`` (see ``correlator.roster``)
======================  ===============================  ==============================

Deduplication: a measurement's or reset's key is made of its stable id's parts (volume,
snapshot, previous snapshot) and its completion time, which a retry repeats: a duplicate
overwrites its own item with identical content (its TTL comes from the completion time,
not the arrival). So the records of an SQS batch are written with one BatchWriteItem, no
read and no condition: the idempotence is in the key.

Incidents: every change of any incident is one TransactWriteItems conditional on the
index item's ``version`` (compare-and-swap): the index (every incident that can still take
a signal), the changed heads, the changed volume rows, and the notifications it calls for
as pending items. Of two concurrent changes one commits; the other re-reads and decides
again. Volume rows are written only in such transactions, so rows read before a commit
that succeeds are the rows of the version it replaced.

TTL (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html):
DynamoDB deletes expired items within days, not at once, and until then they still read;
queries here filter on ``ttl`` where it matters, and nothing relies on the deletion's time.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from correlator.incidents import Index, Normal, Transition
from correlator.records import (
    Heard,
    Heartbeat,
    Incident,
    Measurement,
    Member,
    Notice,
    OpsIncident,
    Reset,
    Scan,
    incidents_from_json,
    incidents_to_json,
    iso,
    parse_iso,
)

GSI1 = "gsi1"
# What the account-region index carries: enough for the silence check and the report
# without reading the full ``data`` of each measurement.
GSI1_ATTRIBUTES = (
    "kind",
    "account",
    "region",
    "volumeArn",
    "volumeId",
    "completionTime",
    "severity",
    "share",
    "multiple",
    "percentOfVolume",
    "changedBlocks",
    "instanceName",
    "status",
    "ttl",
)
INDEX_KEY = {"pk": {"S": "ORG"}, "sk": {"S": "INCIDENTS"}}
HEAD_SK = "#HEAD"
INCIDENTS_GSI = "INCIDENTS"
BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
TRANSACT_MAX = 100
# Bounded retries of a batch's unprocessed items (throttling); what is left fails the
# records it came from, and SQS delivers them again.
UNPROCESSED_ATTEMPTS = 5
NORMAL_SEVERITIES = ("none", "low")


class Conflict(Exception):
    """A conditional write lost against a concurrent change; re-read and decide again."""


def table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the central table (TTL is set apart: ``ttl``)."""
    return {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name_, "AttributeType": "S"}
            for name_ in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": list(GSI1_ATTRIBUTES),
                },
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_table(client, name: str) -> None:
    """Creates the central table with its TTL (tests, benchmarks and the demo)."""
    client.create_table(**table_definition(name))
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
    )


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _get_s(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value["S"] if value and "S" in value else None


def _get_n(item: Mapping[str, Any], key: str) -> float | None:
    value = item.get(key)
    return float(value["N"]) if value and "N" in value else None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def ar_key(account: str, region: str) -> str:
    return f"AR#{account}#{region}"


# -- measurement and reset items ---------------------------------------------------------


def measurement_item(m: Measurement, history: timedelta) -> dict[str, Any]:
    """The stored item of a measurement (also one that came as an anomaly event)."""
    at = iso(m.completion_time)
    item: dict[str, Any] = {
        "pk": _s(f"VOL#{m.volume_arn}"),
        "sk": _s(f"M#{at}#{m.snapshot_id}#{m.previous_snapshot_id}"),
        "gsi1pk": _s(ar_key(m.account, m.region)),
        "gsi1sk": _s(f"{at}#{m.volume_arn}"),
        "kind": _s("measurement"),
        "measurementId": _s(m.id),
        "account": _s(m.account),
        "region": _s(m.region),
        "volumeArn": _s(m.volume_arn),
        "volumeId": _s(m.volume_id),
        "completionTime": _s(at),
        "changedBlocks": _n(m.changed_blocks),
        "data": _s(json.dumps(m.to_json(), sort_keys=True)),
        "ttl": _n(epoch(m.completion_time + history)),
    }
    if m.verdict is not None:
        item["severity"] = _s(m.verdict.severity.value)
        if m.verdict.share is not None:
            item["share"] = _n(m.verdict.share)
        if m.verdict.multiple is not None:
            item["multiple"] = _n(m.verdict.multiple)
    if m.percent_of_volume is not None:
        item["percentOfVolume"] = _n(m.percent_of_volume)
    if m.instance_name:
        item["instanceName"] = _s(m.instance_name)
    return item


def reset_item(r: Reset, history: timedelta) -> dict[str, Any]:
    """The stored item of a baseline reset."""
    at = iso(r.completion_time)
    return {
        "pk": _s(f"VOL#{r.volume_arn}"),
        "sk": _s(f"R#{at}#{r.snapshot_id}#{r.previous_snapshot_id}"),
        "gsi1pk": _s(ar_key(r.account, r.region)),
        "gsi1sk": _s(f"{at}#{r.volume_arn}"),
        "kind": _s("reset"),
        "resetId": _s(r.id),
        "reason": _s(r.reason),
        "account": _s(r.account),
        "region": _s(r.region),
        "volumeArn": _s(r.volume_arn),
        "volumeId": _s(r.volume_id),
        "completionTime": _s(at),
        "data": _s(json.dumps(r.to_json(), sort_keys=True)),
        "ttl": _n(epoch(r.completion_time + history)),
    }


def forged_item(
    detail_type: str, record_id: str, sender: str, data: Mapping[str, Any], at: datetime,
    history: timedelta,
) -> dict[str, Any]:  # fmt: skip
    """A forged record, kept under its sender only (never in an account-region's index)."""
    return {
        "pk": _s(f"FORGED#{sender}"),
        "sk": _s(f"{detail_type}#{record_id}"),
        "kind": _s("forged"),
        "account": _s(sender),
        "data": _s(json.dumps(data, sort_keys=True)),
        "ttl": _n(epoch(at + history)),
    }


@dataclass(frozen=True)
class WindowMeasurement:
    """One measurement as the account-region index returns it."""

    volume_arn: str
    volume_id: str
    completion_time: datetime
    severity: str | None
    share: float | None
    multiple: float | None
    percent_of_volume: float | None
    changed_blocks: int | None
    instance_name: str | None
    kind: str


@dataclass(frozen=True)
class Pending:
    """A pending notification and when it was last claimed for publishing."""

    notice: Notice
    claimed_at: datetime


class Store:
    """Reads and writes the central table.

    Args:
        table: the table name (``CENTRAL_TABLE``).
        client: boto3 DynamoDB client.
        history: how long records are kept (their TTL).
        sleep: how retries wait (tests pass a no-op).
    """

    def __init__(self, table: str, client, history: timedelta, sleep=time.sleep):
        self.table = table
        self.client = client
        self.history = history
        self._sleep = sleep

    # -- records of a batch ---------------------------------------------------------------

    def put_items(self, items: Sequence[Mapping[str, Any]]) -> set[int]:
        """Writes items with BatchWriteItem (25 a call); the indexes of those left unwritten.

        Items with the same key (a duplicate delivered in the same batch) are written once:
        BatchWriteItem refuses a request that names one key twice.
        """
        by_key: dict[tuple[str, str], list[int]] = {}
        for position, item in enumerate(items):
            by_key.setdefault((item["pk"]["S"], item["sk"]["S"]), []).append(position)
        unique = [(positions, items[positions[0]]) for positions in by_key.values()]
        failed: set[int] = set()
        for start in range(0, len(unique), BATCH_WRITE_MAX):
            chunk = unique[start : start + BATCH_WRITE_MAX]
            left = self._batch_write([item for _, item in chunk])
            for positions, item in chunk:
                if (item["pk"]["S"], item["sk"]["S"]) in left:
                    failed.update(positions)
        return failed

    def _batch_write(self, items: list[Mapping[str, Any]]) -> set[tuple[str, str]]:
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = self.client.batch_write_item(RequestItems={self.table: requests})
            requests = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not requests:
                return set()
            self._backoff(attempt)
        return {(r["PutRequest"]["Item"]["pk"]["S"], r["PutRequest"]["Item"]["sk"]["S"])
                for r in requests}  # fmt: skip

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(1.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))

    def latest_normal(self, volume_arn: str, after: datetime) -> Normal | None:
        """The volume's newest measurement judged none or low completed after ``after``."""
        best: Normal | None = None
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": _s(f"VOL#{volume_arn}"),
                ":lo": _s(f"M#{iso(after)}"),
                ":hi": _s("M#~"),
            },
            ProjectionExpression="severity, completionTime, measurementId",
            ConsistentRead=True,
        ):
            completed = _get_s(item, "completionTime")
            if _get_s(item, "severity") not in NORMAL_SEVERITIES or completed is None:
                continue
            at = parse_iso(completed)
            if at > after and (best is None or at > best.time):
                best = Normal(at, _get_s(item, "measurementId") or "")
        return best

    def measured_after(self, volume_arn: str, after: datetime) -> datetime | None:
        """The completion time of the volume's newest measurement after ``after``, if any."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": _s(f"VOL#{volume_arn}"),
                ":lo": _s(f"M#{iso(after)}~"),
                ":hi": _s("M#~"),
            },
            ProjectionExpression="completionTime",
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        completed = _get_s(items[0], "completionTime") if items else None
        return parse_iso(completed) if completed else None

    def _query(self, index: str | None = None, **kwargs) -> Iterator[dict[str, Any]]:
        """Every item of a query, page after page."""
        if index:
            kwargs["IndexName"] = index
        while True:
            response = self.client.query(TableName=self.table, **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def window(
        self, account: str, region: str, start: datetime, end: datetime, now: datetime | None = None
    ) -> Iterator[WindowMeasurement]:
        """The measurements and resets of an account-region completed in ``[start, end]``.

        Items whose TTL is before ``now`` (default: the wall clock) are left out.
        """
        cutoff = epoch(now or datetime.now(UTC))
        for item in self._query(
            GSI1,
            KeyConditionExpression="gsi1pk = :ar AND gsi1sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":ar": _s(ar_key(account, region)),
                ":lo": _s(iso(start)),
                ":hi": _s(iso(end) + "~"),
            },
        ):
            ttl = _get_n(item, "ttl")
            if ttl is not None and ttl <= cutoff:
                continue  # expired, not yet deleted
            completed = _get_s(item, "completionTime")
            volume = _get_s(item, "volumeArn")
            if completed is None or volume is None:
                continue
            blocks = _get_n(item, "changedBlocks")
            yield WindowMeasurement(
                volume_arn=volume,
                volume_id=_get_s(item, "volumeId") or volume.rsplit("/", 1)[-1],
                completion_time=parse_iso(completed),
                severity=_get_s(item, "severity"),
                share=_get_n(item, "share"),
                multiple=_get_n(item, "multiple"),
                percent_of_volume=_get_n(item, "percentOfVolume"),
                changed_blocks=int(blocks) if blocks is not None else None,
                instance_name=_get_s(item, "instanceName"),
                kind=_get_s(item, "kind") or "measurement",
            )

    # -- scans ------------------------------------------------------------------------------

    def put_scan(self, scan: Scan) -> None:
        """Keeps a finished scan under its resource (a job's final result never changes)."""
        at = scan.at or datetime.now(UTC)
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": _s(f"SCAN#{scan.resource_arn}"),
                "sk": _s(scan.job_id),
                "kind": _s("scan"),
                "data": _s(json.dumps(scan.to_json(), sort_keys=True)),
                "ttl": _n(epoch(at + self.history)),
            },
        )

    def scans_for(self, resource_arns: Iterable[str]) -> list[Scan]:
        """The finished scans kept for these resources."""
        scans = []
        for arn in dict.fromkeys(resource_arns):
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(f"SCAN#{arn}")},
                ConsistentRead=True,
            ):
                scans.append(Scan.from_json(json.loads(item["data"]["S"])))
        return scans

    # -- incidents --------------------------------------------------------------------------

    def read_index(self) -> Index:
        """The incidents that can still take a signal (strongly consistent)."""
        item = self.client.get_item(TableName=self.table, Key=INDEX_KEY, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return Index()
        return Index(int(item["version"]["N"]), incidents_from_json(item["incidents"]["S"]))

    def rows(self, incident_ids: Sequence[str], volume_arn: str) -> list[Member]:
        """The rows of one volume under each of these incidents (strongly consistent)."""
        keys = [
            {"pk": _s(f"INC#{incident_id}"), "sk": _s(f"VOL#{volume_arn}")}
            for incident_id in dict.fromkeys(incident_ids)
        ]
        return [Member.from_json(json.loads(i["data"]["S"])) for i in self._batch_get(keys)]

    def rows_for(self, incident_ids: Sequence[str], volume_arns: Iterable[str]) -> list[Member]:
        """The rows of several volumes under each of these incidents."""
        keys = [
            {"pk": _s(f"INC#{incident_id}"), "sk": _s(f"VOL#{arn}")}
            for incident_id in dict.fromkeys(incident_ids)
            for arn in dict.fromkeys(volume_arns)
        ]
        return [Member.from_json(json.loads(i["data"]["S"])) for i in self._batch_get(keys)]

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: list[dict[str, Any]] = keys[start : start + BATCH_GET_MAX]
            for attempt in range(UNPROCESSED_ATTEMPTS + 1):
                if not pending:
                    break
                response = self.client.batch_get_item(
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
                )
                found.extend(response.get("Responses", {}).get(self.table, []))
                pending = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if pending:
                    self._backoff(attempt)
            if pending:
                raise Conflict("BatchGetItem left keys unprocessed (throttled); retry later")
        return found

    def family_rows(self, incident_ids: Sequence[str]) -> list[Member]:
        """Every volume row under these incidents (strongly consistent, all pages)."""
        rows = []
        for incident_id in dict.fromkeys(incident_ids):
            for item in self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :vol)",
                ExpressionAttributeValues={":pk": _s(f"INC#{incident_id}"), ":vol": _s("VOL#")},
                ConsistentRead=True,
            ):
                rows.append(Member.from_json(json.loads(item["data"]["S"])))
        return rows

    def alias_volumes(self, incident_ids: Sequence[str], instance_id: str) -> set[str]:
        """The volumes of an instance recorded in these incidents."""
        keys = [
            {"pk": _s(f"INC#{incident_id}"), "sk": _s(f"INST#{instance_id}")}
            for incident_id in dict.fromkeys(incident_ids)
        ]
        volumes: set[str] = set()
        for item in self._batch_get(keys):
            volumes.update(item.get("volumes", {}).get("SS", []))
        return volumes

    def commit(self, version: int, transition: Transition, notices: Sequence[Notice]) -> None:
        """Writes a transition and its pending notifications, if the index is unchanged.

        Raises:
            Conflict: the index changed since ``version`` was read (or a concurrent
                transaction touched one of the items): re-read and decide again.
        """
        now = datetime.now(UTC)
        index_item: dict[str, Any] = {
            **INDEX_KEY,
            "version": _n(version + 1),
            "incidents": _s(incidents_to_json(transition.incidents)),
        }
        index_put: dict[str, Any] = {"TableName": self.table, "Item": index_item}
        if version == 0:
            index_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            index_put["ConditionExpression"] = "version = :v"
            index_put["ExpressionAttributeValues"] = {":v": _n(version)}
        items: list[dict[str, Any]] = [{"Put": index_put}]
        for head in transition.heads:
            items.append({"Put": {"TableName": self.table, "Item": self._head_item(head)}})
        for row in transition.rows:
            items.append({"Put": {"TableName": self.table, "Item": self._row_item(row, now)}})
        for incident_id, instance_id, volume_arn in transition.aliases:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": _s(f"INC#{incident_id}"), "sk": _s(f"INST#{instance_id}")},
                        "UpdateExpression": "ADD volumes :v SET #ttl = :ttl",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {
                            ":v": {"SS": [volume_arn]},
                            ":ttl": _n(epoch(now + self.history)),
                        },
                    }
                }
            )
        for notice in notices:
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self._pending_item(notice),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        if len(items) > TRANSACT_MAX:
            raise ValueError(f"a transition of {len(items)} items exceeds {TRANSACT_MAX}")
        # The same transaction sent again (botocore retrying one that did commit) is
        # answered as a success within ten minutes instead of failing its condition.
        token = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:36]
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=token)
        except ClientError as exc:
            if _error_code(exc) in (
                "TransactionCanceledException",
                "TransactionConflictException",
                "TransactionInProgressException",
                "ConditionalCheckFailedException",
            ):
                raise Conflict(str(exc)) from exc
            raise

    def _head_item(self, head: Incident) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": _s(f"INC#{head.id}"),
            "sk": _s(HEAD_SK),
            "gsi1pk": _s(INCIDENTS_GSI),
            "gsi1sk": _s(f"{iso(head.first_at)}#{head.id}"),
            "kind": _s("incident"),
            "status": _s(head.status.value),
            "data": _s(json.dumps(head.to_json(), sort_keys=True)),
        }
        if head.closed_at is not None:
            item["ttl"] = _n(epoch(head.closed_at + self.history))
        return item

    def _row_item(self, row: Member, now: datetime) -> dict[str, Any]:
        return {
            "pk": _s(f"INC#{row.incident_id}"),
            "sk": _s(f"VOL#{row.volume_arn}"),
            "kind": _s("member"),
            "data": _s(json.dumps(row.to_json(), sort_keys=True)),
            # Closed incidents keep their rows as long as their heads (history after close).
            "ttl": _n(epoch(max(now, row.last_at) + self.history + timedelta(days=90))),
        }

    @staticmethod
    def _pending_key(notice: Notice) -> dict[str, Any]:
        return {"pk": _s("PENDING"), "sk": _s(f"{iso(notice.created_at)}#{notice.id}")}

    def _pending_item(self, notice: Notice) -> dict[str, Any]:
        return {
            **self._pending_key(notice),
            "kind": _s("pending"),
            "data": _s(json.dumps(notice.to_json(), sort_keys=True)),
            # Claimed by its writer, who publishes it next; another publishes it only once
            # the claim is older than the lease (the writer crashed).
            "claimedAt": _s(iso(notice.created_at)),
        }

    def pending_notices(self) -> list[Pending]:
        """Notifications recorded and not yet published, oldest first."""
        out = []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s("PENDING")},
            ConsistentRead=True,
        ):
            notice = Notice.from_json(json.loads(item["data"]["S"]))
            emailed = bool(item.get("emailed", {}).get("BOOL"))
            claimed = _get_s(item, "claimedAt") or iso(notice.created_at)
            out.append(Pending(replace(notice, emailed=emailed), parse_iso(claimed)))
        return out

    def claim_notice(self, pending: Pending, now: datetime) -> bool:
        """Takes over a pending notification whose claim expired; False: someone else did."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._pending_key(pending.notice),
                UpdateExpression="SET claimedAt = :now",
                ConditionExpression="claimedAt = :old",
                ExpressionAttributeValues={
                    ":now": _s(iso(now)),
                    ":old": _s(iso(pending.claimed_at)),
                },
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_emailed(self, notice: Notice) -> None:
        """Records that a pending notification's email went out (its audit copy may not)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._pending_key(notice),
                UpdateExpression="SET emailed = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    def clear_notice(self, notice: Notice) -> None:
        """Forgets a published notification (deleting one already deleted is harmless)."""
        self.client.delete_item(TableName=self.table, Key=self._pending_key(notice))

    def heads_since(self, since: datetime) -> list[Incident]:
        """Incident heads whose first signal is at or after ``since`` (the head index)."""
        heads = []
        for item in self._query(
            GSI1,
            KeyConditionExpression="gsi1pk = :p AND gsi1sk >= :t",
            ExpressionAttributeValues={":p": _s(INCIDENTS_GSI), ":t": _s(iso(since))},
        ):
            key = {"pk": item["pk"], "sk": item["sk"]}
            full = self.client.get_item(TableName=self.table, Key=key).get("Item")
            if full:
                heads.append(Incident.from_json(json.loads(full["data"]["S"])))
        return heads

    # -- heard from -------------------------------------------------------------------------

    def touch_heard(
        self,
        account: str,
        region: str,
        *,
        measurement_at: datetime | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Moves an account-region's "last heard" times forward (never back)."""
        key = {"pk": _s("HEARD"), "sk": _s(ar_key(account, region))}
        now = _s(iso(datetime.now(UTC)))
        if measurement_at is not None:
            self._advance(
                key,
                "lastMeasurementAt",
                iso(measurement_at),
                {"account": _s(account), "region": _s(region)},
                now,
            )
        if heartbeat is not None:
            extra: dict[str, Any] = {
                "account": _s(account),
                "region": _s(region),
                "intervalSeconds": _n(heartbeat.interval_seconds),
            }
            if heartbeat.volumes_known is not None:
                extra["volumesKnown"] = _n(heartbeat.volumes_known)
            if heartbeat.detector_version:
                extra["detectorVersion"] = _s(heartbeat.detector_version)
            if heartbeat.last_measurement_time is not None:
                extra["memberLastMeasurementAt"] = _s(iso(heartbeat.last_measurement_time))
            self._advance(key, "lastHeartbeatAt", iso(heartbeat.sent_at), extra, now)

    def _advance(
        self, key: dict, attribute: str, value: str, extra: Mapping[str, Any], now: dict
    ) -> None:
        names = {"#a": attribute}
        values: dict[str, Any] = {":t": _s(value), ":now": now}
        sets = ["#a = :t", "firstHeardAt = if_not_exists(firstHeardAt, :now)"]
        for position, (name, attr_value) in enumerate(sorted(extra.items())):
            names[f"#x{position}"] = name
            values[f":x{position}"] = attr_value
            sets.append(f"#x{position} = :x{position}")
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(#a) OR #a < :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise  # a newer time is already there: nothing to do

    def heard(self) -> list[Heard]:
        """Every account-region heard from."""
        out = []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s("HEARD")},
        ):
            out.append(heard_from_item(item))
        return out

    def set_volumes_checked(self, account: str, region: str, at: datetime) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"pk": _s("HEARD"), "sk": _s(ar_key(account, region))},
            UpdateExpression="SET volumesCheckedAt = :t, account = :a, #r = :r",
            ExpressionAttributeNames={"#r": "region"},
            ExpressionAttributeValues={":t": _s(iso(at)), ":a": _s(account), ":r": _s(region)},
        )

    # -- operational incidents ----------------------------------------------------------------

    def ops_items(self) -> list[OpsIncident]:
        """Every operational incident (open and closed within its TTL)."""
        return [
            _ops_from_item(item)
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s("OPS")},
                ConsistentRead=True,
            )
        ]

    def get_ops(self, sort_key: str) -> OpsIncident | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": _s("OPS"), "sk": _s(sort_key)}, ConsistentRead=True
        ).get("Item")
        return _ops_from_item(item) if item else None

    def put_ops(self, item: OpsIncident, expected_version: int) -> None:
        """Writes an operational incident with its pending notice, if unchanged since read.

        Raises:
            Conflict: it changed (or appeared) since ``expected_version`` was read.
        """
        data: dict[str, Any] = {
            "pk": _s("OPS"),
            "sk": _s(item.sort_key),
            "kind": _s("ops"),
            "status": _s(item.status.value),
            "version": _n(expected_version + 1),
            "data": _s(json.dumps(item.to_json(), sort_keys=True)),
        }
        if item.pending is not None:
            data["pending"] = _s(json.dumps(item.pending.to_json(), sort_keys=True))
            data["pendingId"] = _s(item.pending.id)
            data["pendingClaimedAt"] = _s(iso(item.pending.created_at))
        if item.closed_at is not None:
            data["ttl"] = _n(epoch(item.closed_at + self.history))
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": data}
        if expected_version == 0:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            kwargs["ConditionExpression"] = "version = :v"
            kwargs["ExpressionAttributeValues"] = {":v": _n(expected_version)}
        try:
            self.client.put_item(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(item.sort_key) from exc
            raise

    def claim_ops_pending(self, item: OpsIncident, now: datetime) -> bool:
        """Takes over an operational notice whose claim expired; False: someone else did."""
        assert item.pending is not None
        claimed_at = item.pending_claimed_at or item.pending.created_at
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s("OPS"), "sk": _s(item.sort_key)},
                UpdateExpression="SET pendingClaimedAt = :now",
                ConditionExpression="pendingId = :id AND pendingClaimedAt = :old",
                ExpressionAttributeValues={
                    ":id": _s(item.pending.id),
                    ":now": _s(iso(now)),
                    ":old": _s(iso(claimed_at)),
                },
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_ops_emailed(self, sort_key: str, notice_id: str) -> None:
        self._ops_update(sort_key, notice_id, "SET pendingEmailed = :t", {":t": {"BOOL": True}})

    def clear_ops_pending(self, sort_key: str, notice_id: str) -> None:
        """Removes a published pending notice (no-op when another one replaced it)."""
        self._ops_update(
            sort_key, notice_id, "REMOVE pending, pendingId, pendingClaimedAt, pendingEmailed", {}
        )

    def _ops_update(self, sort_key: str, notice_id: str, expression: str, values: dict) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s("OPS"), "sk": _s(sort_key)},
                UpdateExpression=expression,
                ConditionExpression="pendingId = :id",
                ExpressionAttributeValues={":id": _s(notice_id), **values},
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise


def heard_from_item(item: Mapping[str, Any]) -> Heard:
    def t(key: str) -> datetime | None:
        value = _get_s(item, key)
        return parse_iso(value) if value else None

    interval = _get_n(item, "intervalSeconds")
    volumes = _get_n(item, "volumesKnown")
    return Heard(
        account=_get_s(item, "account") or "",
        region=_get_s(item, "region") or "",
        first_heard_at=t("firstHeardAt"),
        last_measurement_at=t("lastMeasurementAt"),
        last_heartbeat_at=t("lastHeartbeatAt"),
        interval_seconds=int(interval) if interval is not None else None,
        volumes_known=int(volumes) if volumes is not None else None,
        detector_version=_get_s(item, "detectorVersion"),
        volumes_checked_at=t("volumesCheckedAt"),
        member_last_measurement_at=t("memberLastMeasurementAt"),
    )


def _ops_from_item(item: Mapping[str, Any]) -> OpsIncident:
    pending = _get_s(item, "pending")
    notice = None
    if pending:
        notice = replace(
            Notice.from_json(json.loads(pending)),
            emailed=bool(item.get("pendingEmailed", {}).get("BOOL")),
        )
    claimed = _get_s(item, "pendingClaimedAt")
    return replace(
        OpsIncident.from_json(
            json.loads(item["data"]["S"]), version=int(item["version"]["N"]), pending=notice
        ),
        pending_claimed_at=parse_iso(claimed) if claimed else None,
    )
