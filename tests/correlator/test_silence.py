"""Silence is an alert: quiet account-regions and stopped backups, through the handler."""

from __future__ import annotations

from datetime import timedelta

from correlator import handler
from tests.correlator.conftest import (
    at,
    heartbeat,
    measured,
    scheduled,
    sqs_batch,
)

PROD, ANALYTICS, WEB = "111111111111", "222222222222", "333333333333"


def sweep(central):
    assert handler.lambda_handler(scheduled(central.clock.now), None) == {"status": "ok"}


def send(*events):
    assert handler.lambda_handler(sqs_batch(list(events)), None) == {"batchItemFailures": []}


def test_an_account_region_quiet_for_two_intervals_is_one_incident_until_heard_again(
    central, handler_env
):
    clock = central.clock
    clock.now = at(days=0)
    central.roster(
        (PROD, "eu-west-1", 86400), (ANALYTICS, "eu-west-1", 86400), (WEB, "us-east-2", 86400)
    )
    clock.now = at(days=1, hours=1)
    send(measured(PROD, "vol-0a1", 1), heartbeat(ANALYTICS, "eu-west-1", at(days=1)))
    sweep(central)
    assert central.emails() == []

    # Two intervals and a bit without a word from anyone; WEB was never heard from.
    clock.now = at(days=3, hours=2)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == (
        "[OPERATIONAL] Backup anomaly detection: 3 account-region(s) silent"
    )
    body = email["body"].splitlines()
    assert any(
        line.startswith(
            "- prod-payments (111111111111), eu-west-1: SILENT: nothing heard since "
            "2025-06-03 05:00 UTC"
        )  # fmt: skip
        for line in body
    )
    assert any(line.startswith("- analytics (222222222222), eu-west-1: SILENT") for line in body)
    assert any(
        line.startswith("- web (333333333333), us-east-2: SILENT: never heard from since")
        for line in body
    )
    assert "1. Check the detector in that account and region" in email["body"]
    audits = central.audits()
    assert sorted(a["item"]["key"] for a in audits) == [
        f"{PROD}#eu-west-1",
        f"{ANALYTICS}#eu-west-1",
        f"{WEB}#us-east-2",
    ]
    assert {a["kind"] for a in audits} == {"silent"}

    clock.advance(hours=1)
    sweep(central)
    assert central.emails() == []  # one incident per account-region, told once

    # Heard again (a heartbeat is enough: the chain works, even with nothing to measure).
    send(heartbeat(PROD, "eu-west-1", clock.now))
    clock.advance(minutes=15)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] prod-payments (111111111111) eu-west-1: heard again"
    assert "heard from again at" in email["body"]
    (audit,) = central.audits()
    assert audit["status"] == "resolved"

    # Left the roster: no longer expected, so its silence closes without a word... but told.
    central.roster((PROD, "eu-west-1", 86400), (WEB, "us-east-2", 86400))
    clock.advance(minutes=15)
    sweep(central)
    resolved = [a["item"]["key"] for a in central.audits()]
    assert resolved == [f"{ANALYTICS}#eu-west-1"]


def test_backups_that_stop_on_a_regularly_measured_volume_are_reported(central, handler_env):
    clock = central.clock
    clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 86400))
    for day in range(1, 6):
        clock.now = at(days=day, hours=1)
        send(
            measured(PROD, "vol-0a1", day),
            measured(PROD, "vol-0a2", day),
            heartbeat(PROD, "eu-west-1", clock.now),
        )
        sweep(central)
    assert central.emails() == []

    # vol-0a2's backups stop; the account-region keeps reporting.
    for day in range(6, 9):
        clock.now = at(days=day, hours=1)
        send(measured(PROD, "vol-0a1", day), heartbeat(PROD, "eu-west-1", clock.now))
        sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] vol-0a2: backups stopped"
    assert (
        "- vol-0a2 in prod-payments (111111111111), eu-west-1: BACKUPS STOPPED: last measured "
        "backup 2025-06-07 05:00 UTC (4 measured backups before it stopped)"
    ) in email["body"]
    assert "Stopping backups often precedes encryption" in email["body"]

    clock.now = at(days=9, hours=1)
    send(measured(PROD, "vol-0a1", 9), heartbeat(PROD, "eu-west-1", clock.now))
    sweep(central)
    assert central.emails() == []  # told once

    clock.now = at(days=10, hours=1)
    send(measured(PROD, "vol-0a2", 10), measured(PROD, "vol-0a1", 10))
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] vol-0a2: backed up again"


def test_a_volume_that_never_resumes_is_closed_quietly_after_thirty_days(central, handler_env):
    clock = central.clock
    clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 86400))
    for day in range(1, 5):
        clock.now = at(days=day, hours=1)
        send(measured(PROD, "vol-0a1", day), measured(PROD, "vol-0a2", day))
    for day in range(5, 9):
        clock.now = at(days=day, hours=1)
        send(measured(PROD, "vol-0a1", day), heartbeat(PROD, "eu-west-1", clock.now))
        sweep(central)
    assert [e["subject"] for e in central.emails()] == ["[OPERATIONAL] vol-0a2: backups stopped"]
    clock.now = at(days=40)
    send(heartbeat(PROD, "eu-west-1", clock.now))
    sweep(central)
    assert central.emails() == []
    item = handler_env.store.get_ops(
        f"stopped#{measured(PROD, 'vol-0a2', 1)['detail']['volumeArn']}"
    )
    assert item is not None and item.status.value == "resolved"


def test_a_volume_measured_only_once_or_twice_is_not_regular(central, handler_env):
    clock = central.clock
    clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 86400))
    clock.now = at(days=1, hours=1)
    send(measured(PROD, "vol-0a1", 1), measured(PROD, "vol-0a9", 1))
    clock.now = at(days=2, hours=1)
    send(measured(PROD, "vol-0a1", 2), measured(PROD, "vol-0a9", 2))
    for day in range(3, 7):
        clock.now = at(days=day, hours=1)
        send(measured(PROD, "vol-0a1", day))
        sweep(central)
    assert central.emails() == []


def test_without_a_roster_every_account_region_heard_from_is_watched(central, handler_env):
    clock = central.clock
    clock.now = at(days=1, hours=1)
    send(heartbeat(PROD, "eu-west-1", at(days=1), interval=3600))
    clock.now = at(days=1, hours=3)
    sweep(central)
    assert central.emails() == []  # hourly backups, but heartbeats come every 6 hours
    clock.now = at(days=1, hours=13)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] 111111111111 eu-west-1: silent"
    assert "backup intervals of 1 h" in email["body"]


def test_a_silent_account_s_volumes_are_not_reported_one_by_one(central, handler_env):
    clock = central.clock
    clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 86400))
    for day in range(1, 5):
        clock.now = at(days=day, hours=1)
        send(*(measured(PROD, f"vol-0a{n}", day) for n in range(4)))
    clock.now = at(days=7)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] prod-payments (111111111111) eu-west-1: silent"
    assert "BACKUPS STOPPED" not in email["body"]
    clock.now += timedelta(hours=7)
    sweep(central)
    assert central.emails() == []


def test_hourly_backups_are_judged_on_the_heartbeat_not_on_each_quiet_hour(central, handler_env):
    # Hourly backups in a region with no job for a few hours (no tagged volume, a quiet
    # night): its heartbeat every 6 hours is what says the detector is alive.
    from correlator.silence import HEARTBEAT_SECONDS
    from generator.naming import HEARTBEAT_SCHEDULE

    assert HEARTBEAT_SCHEDULE == f"rate({HEARTBEAT_SECONDS // 3600} hours)"
    clock = central.clock
    clock.now = at(days=0)
    central.roster((PROD, "eu-west-1", 3600))
    for hours in (0, 6, 12):
        clock.now = at(days=1, hours=hours)
        send(heartbeat(PROD, "eu-west-1", clock.now, interval=3600))
        clock.now = at(days=1, hours=hours + 5)
        sweep(central)
    assert central.emails() == []

    # Then nothing for two heartbeats and more: silent.
    clock.now = at(days=1, hours=12 + 2 * 6 + 1)
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[OPERATIONAL] prod-payments (111111111111) eu-west-1: silent"


def test_one_deleted_previous_snapshot_is_emailed(central, handler_env):
    from tests.correlator.conftest import reset

    central.clock.now = at(days=2, hours=1)
    send(reset(PROD, "vol-0a1", 2))
    sweep(central)
    (email,) = central.emails()
    assert email["subject"] == "[HIGH] Backup anomaly: 1 volume in 111111111111"  # no roster
    assert "previous backup snapshot was deleted" in email["body"]
