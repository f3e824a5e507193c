"""Read functions of ``build.py report``: typed results, queries only (never a table scan)."""

from __future__ import annotations

from datetime import date

from correlator import queries
from correlator.records import RosterEntry
from correlator.roster import RosterError, put_roster, read_roster
from tests.correlator.conftest import (
    TABLE,
    Recorder,
    anomaly,
    at,
    heartbeat,
    measured,
    scheduled,
)

PROD, ANALYTICS, OTHER = "111111111111", "222222222222", "555555555555"


def fill(central):
    central.clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 86400), (ANALYTICS, "eu-west-1", 86400))
    correlator = central.correlator()
    events = []
    for day in (1, 2, 3):
        events += [measured(PROD, "vol-0a1", day, "none", instance="i-1", name="db-1"),
                   measured(ANALYTICS, "vol-0b1", day, "low", share=0.2)]  # fmt: skip
    events += [
        anomaly(PROD, "vol-0a2", 3, "high", share=0.91),
        anomaly(ANALYTICS, "vol-0b2", 3, "medium", share=0.4),
        measured(OTHER, "vol-0c1", 3, severity=None),  # not in the roster, no verdict
        heartbeat(ANALYTICS, "eu-west-1", at(days=3, hours=2), volumes=7),
    ]
    central.clock.now = at(days=3, hours=3)
    assert correlator.handle_batch([(f"m{n}", e) for n, e in enumerate(events)]) == []
    return correlator


def test_the_report_queries(central):
    fill(central)
    db = Recorder(central.dynamodb, record=("scan", "query", "get_item"))
    now = at(days=3, hours=4)

    regions = queries.account_regions(db, TABLE)
    assert [(r.account, r.name, r.region, r.expected) for r in regions] == [
        (PROD, "prod-payments", "eu-west-1", True),
        (ANALYTICS, "analytics", "eu-west-1", True),
        (OTHER, None, "eu-west-1", False),
    ]
    analytics = regions[1]
    assert analytics.last_heartbeat_at == at(days=3, hours=2)
    assert analytics.last_measurement_at == at(days=3)
    assert analytics.volumes_known == 7 and analytics.detector_version == "0.2.0"
    assert not analytics.silent

    volumes = queries.volumes_measured(db, TABLE, days=7, now=now)
    assert [(v.volume_id, v.measurements, v.worst_severity) for v in volumes] == [
        ("vol-0a1", 3, "none"),
        ("vol-0a2", 1, "high"),
        ("vol-0b1", 3, "low"),
        ("vol-0b2", 1, "medium"),
        ("vol-0c1", 1, "unjudged"),
    ]
    assert volumes[0].instance_name == "db-1"

    (incident,) = queries.open_incidents(db, TABLE)
    assert (incident.kind, incident.status, incident.severity, incident.volumes) == (
        "security",
        "open",
        "critical",
        2,
    )
    assert incident.accounts == ((PROD, "prod-payments"), (ANALYTICS, "analytics"))
    assert [i.id for i in queries.incidents_since(db, TABLE, days=30, now=now)] == [incident.id]

    days = queries.verdicts_by_day(db, TABLE, days=3, now=now)
    assert [d.day for d in days] == [date(2025, 6, 3), date(2025, 6, 4), date(2025, 6, 5)]
    assert days[0].counts == {
        "none": 1, "low": 1, "medium": 0, "high": 0, "critical": 0, "unjudged": 0,
    }  # fmt: skip
    assert queries.verdicts_by_day(db, TABLE, days=5, now=now)[0].total == 0
    assert days[2].counts["none"] == 1 and days[2].counts["high"] == 1
    assert days[2].counts["unjudged"] == 1 and days[2].total == 5
    assert days[1].total == 2

    top = queries.top_rewritten(db, TABLE, days=7, limit=3, now=now)
    assert [(t.volume_id, t.share) for t in top] == [
        ("vol-0a2", 0.91),
        ("vol-0b2", 0.4),
        ("vol-0b1", 0.2),
    ]
    assert top[0].name == "prod-payments" and top[0].severity == "high"

    assert [name for name, _ in db.calls if name == "scan"] == []


def test_open_incidents_include_operational_ones(central):
    correlator = fill(central)
    central.clock.now = at(days=6)
    correlator.handle(scheduled(central.clock.now))
    kinds = sorted(i.kind for i in queries.open_incidents(central.dynamodb, TABLE))
    assert kinds == ["security", "silent", "silent"]  # both roster account-regions quiet


def test_put_roster_replaces_the_roster_idempotently(central):
    entries = [
        RosterEntry(PROD, "prod-payments", "eu-west-1", 86400),
        RosterEntry(PROD, "prod-payments", "us-east-1", 86400),
        RosterEntry(ANALYTICS, "analytics", "eu-west-1", 43200),
    ]
    assert put_roster(central.dynamodb, TABLE, entries, now=at(days=1)) == 3
    assert put_roster(central.dynamodb, TABLE, entries, now=at(days=2)) == 0
    renamed = [
        RosterEntry(PROD, "payments", "eu-west-1", 86400),
        RosterEntry(ANALYTICS, "analytics", "eu-west-1", 43200),
    ]
    assert put_roster(central.dynamodb, TABLE, renamed, now=at(days=3)) == 2  # rename, removal
    roster = read_roster(central.dynamodb, TABLE)
    assert [(e.entry.account, e.entry.name, e.entry.region, e.since) for e in roster] == [
        (PROD, "payments", "eu-west-1", at(days=1)),  # still expected since it was first
        (ANALYTICS, "analytics", "eu-west-1", at(days=1)),
    ]


def test_put_roster_refuses_bad_entries_and_writes_nothing(central):
    bad = [
        [RosterEntry("1111", "x", "eu-west-1", 86400)],
        [RosterEntry(PROD, "x", "Europe", 86400)],
        [RosterEntry(PROD, "x", "eu-west-1", 60)],
        [RosterEntry(PROD, "x", "eu-west-1", 86400), RosterEntry(PROD, "y", "eu-west-1", 3600)],
    ]
    for entries in bad:
        try:
            put_roster(central.dynamodb, TABLE, entries)
        except RosterError as exc:
            assert PROD in str(exc) or "1111" in str(exc)
        else:
            raise AssertionError(f"accepted {entries}")
    assert read_roster(central.dynamodb, TABLE) == []


def test_the_roster_takes_every_region_botocore_knows(central):
    import json
    import os

    import botocore

    with open(os.path.join(os.path.dirname(botocore.__file__), "data", "partitions.json")) as f:
        partitions = json.load(f)["partitions"]
    regions = sorted(r for p in partitions for r in p["regions"] if not r.endswith("-global"))
    assert "eusc-de-east-1" in regions  # a four-letter prefix: the European Sovereign Cloud
    entries = [RosterEntry(PROD, "prod", r, 86400) for r in regions]
    assert put_roster(central.dynamodb, TABLE, entries, now=at(days=1)) == len(regions)
