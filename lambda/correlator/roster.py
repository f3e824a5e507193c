"""The roster: which account-regions are expected to report, named, with their interval.

``build.py deploy`` writes it with :func:`put_roster` (security account credentials) from
the config's targets; the silence check reads it. Items: ``ROSTER`` / ``AR#<account>#<region>``
with ``account``, ``name``, ``region``, ``intervalSeconds`` and ``since`` (when the
account-region first appeared in the roster: one never heard from is silent from then).

The account-regions actually heard from are kept apart (``HEARD`` items, see
``correlator.store``); :func:`heard_from` reads them.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from correlator.records import Heard, RosterEntry, iso, parse_iso
from correlator.store import BATCH_WRITE_MAX, UNPROCESSED_ATTEMPTS, ar_key, heard_from_item

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")  # eusc-de-east-1 too
MIN_INTERVAL_SECONDS = 3600
MAX_INTERVAL_SECONDS = 30 * 86400


class RosterError(ValueError):
    """An entry is invalid; the message names it."""


@dataclass(frozen=True)
class Expected:
    """A roster entry as stored: the entry and since when it is expected."""

    entry: RosterEntry
    since: datetime


def _check(entry: RosterEntry) -> None:
    where = f"roster entry {entry.account}/{entry.region}"
    if not _ACCOUNT.fullmatch(entry.account):
        raise RosterError(f"{where}: account must be 12 digits")
    if not _REGION.fullmatch(entry.region):
        raise RosterError(f"{where}: {entry.region!r} is not a region")
    if not MIN_INTERVAL_SECONDS <= entry.interval_seconds <= MAX_INTERVAL_SECONDS:
        raise RosterError(
            f"{where}: interval_seconds must be {MIN_INTERVAL_SECONDS}..{MAX_INTERVAL_SECONDS}"
        )
    if len(entry.name) > 256:
        raise RosterError(f"{where}: name longer than 256 characters")


def _query_all(client, table: str, pk: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        response = client.query(**kwargs)
        items.extend(response.get("Items", []))
        if not response.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def read_roster(client, table: str) -> list[Expected]:
    """The roster, sorted by account and region."""
    out = []
    for item in _query_all(client, table, "ROSTER"):
        out.append(
            Expected(
                RosterEntry(
                    account=item["account"]["S"],
                    name=item.get("name", {}).get("S", ""),
                    region=item["region"]["S"],
                    interval_seconds=int(item["intervalSeconds"]["N"]),
                ),
                parse_iso(item["since"]["S"]),
            )
        )
    return sorted(out, key=lambda e: (e.entry.account, e.entry.region))


def account_names(client, table: str) -> dict[str, str]:
    """Account id -> name, from the roster (entries without a name are left out)."""
    return {e.entry.account: e.entry.name for e in read_roster(client, table) if e.entry.name}


def heard_from(client, table: str) -> list[Heard]:
    """Every account-region the correlator has heard from, sorted."""
    heard = [heard_from_item(item) for item in _query_all(client, table, "HEARD")]
    return sorted(heard, key=lambda h: (h.account, h.region))


def put_roster(
    client, table: str, entries: Iterable[RosterEntry], now: datetime | None = None
) -> int:
    """Replaces the roster with ``entries``; idempotent.

    An account-region already in the roster keeps its ``since``; one no longer in
    ``entries`` is removed (it is no longer expected, so its silence is no incident).

    Args:
        client: boto3 DynamoDB client (security account, the table's region).
        table: the central table's name.
        entries: the expected account-regions with names and backup intervals.
        now: ``since`` of new entries (default: now).

    Returns:
        How many items were written or deleted (0 when the roster was already this).

    Raises:
        RosterError: an entry is invalid, or two name the same account-region (nothing is
            written).
        RuntimeError: DynamoDB kept items unprocessed after bounded retries.
    """
    wanted: dict[str, RosterEntry] = {}
    for entry in entries:
        _check(entry)
        key = ar_key(entry.account, entry.region)
        if key in wanted:
            raise RosterError(f"roster entry {entry.account}/{entry.region} given twice")
        wanted[key] = entry
    since_default = iso(now or datetime.now(UTC))
    current = {item["sk"]["S"]: item for item in _query_all(client, table, "ROSTER")}
    requests: list[dict[str, Any]] = []
    for key, entry in sorted(wanted.items()):
        old = current.get(key)
        item = {
            "pk": {"S": "ROSTER"},
            "sk": {"S": key},
            "account": {"S": entry.account},
            "name": {"S": entry.name},
            "region": {"S": entry.region},
            "intervalSeconds": {"N": str(entry.interval_seconds)},
            "since": old["since"] if old and "since" in old else {"S": since_default},
        }
        if old != item:
            requests.append({"PutRequest": {"Item": item}})
    for key in sorted(set(current) - set(wanted)):
        requests.append({"DeleteRequest": {"Key": {"pk": {"S": "ROSTER"}, "sk": {"S": key}}}})
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        _write(client, table, requests[start : start + BATCH_WRITE_MAX])
    return len(requests)


def _write(client, table: str, requests: list[dict[str, Any]]) -> None:
    for attempt in range(UNPROCESSED_ATTEMPTS):
        response = client.batch_write_item(RequestItems={table: requests})
        requests = list(response.get("UnprocessedItems", {}).get(table, []))
        if not requests:
            return
        time.sleep(min(1.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
    raise RuntimeError(f"{len(requests)} roster writes left unprocessed (throttled); run again")
