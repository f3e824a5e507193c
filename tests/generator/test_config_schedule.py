"""AWS Backup cron expressions: what AWS accepts, what it refuses, and the interval."""

from __future__ import annotations

import pytest

from generator.config.schedule import backup_schedule, schedule_interval


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 5 ? * * *)",
        "cron(15 * ? * * *)",
        "cron(0 12 * * ? *)",
        "cron(0 0/4 ? * MON-FRI *)",
        "cron(30 2 L * ? *)",
        "cron(0 3 ? * 6#3 *)",
        "cron(0 1 15W * ? 2026-2030)",
        "cron(0 5 ? JAN,JUL * *)",
        "cron(0 5 ? * 6L *)",
        "cron(0 */6 * * ? *)",
    ],
)
def test_valid(expression):
    assert backup_schedule(expression) == expression


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "rate(12 hours)",
            "AWS Backup takes cron(...) schedules, not rate(...): "
            "cron(0 0/12 ? * * *) runs every 12 hour(s)",
        ),
        (
            "rate(7 days)",
            "AWS Backup takes cron(...) schedules, not rate(...): "
            "cron(0 5 ? * * *) runs daily at 05:00 UTC",
        ),
        (
            "0 5 ? * * *",
            "expected an AWS cron expression such as cron(0 5 ? * * *) runs daily at 05:00 UTC",
        ),
        (
            "cron(0 5 ? * *)",
            "AWS cron takes 6 fields (minutes hours day-of-month month day-of-week year), got 5",
        ),
        (
            "cron(* 5 ? * * *)",
            "minutes must be a single number 0-59 (got '*'): AWS Backup "
            "starts jobs at least 60 minutes apart",
        ),
        (
            "cron(0,30 5 ? * * *)",
            "minutes must be a single number 0-59 (got '0,30'): AWS "
            "Backup starts jobs at least 60 minutes apart",
        ),
        ("cron(60 5 ? * * *)", "minutes must be 0-59 (got 60)"),
        ("cron(0 5 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 5 32 * ? *)", "day-of-month must be 1-31 (got 32)"),
        ("cron(0 5 ? 13 * *)", "month must be 1-12 (got 13)"),
        ("cron(0 5 ? * FUNDAY *)", "day-of-week has 'FUNDAY', expected 1-7 or a name like SUN"),
        ("cron(0 5 ? * 2#6 *)", "day-of-week '2#6': the n in DAY#n must be 1-5"),
        ("cron(0 5 ? * * 1969)", "year must be 1970-2199 (got 1969)"),
        ("cron(0 5/0 ? * * *)", "hours '5/0': the step after '/' must be a positive number"),
        ("cron(0 1,,2 ? * * *)", "hours has an empty list item"),
    ],
)
def test_invalid(expression, message):
    with pytest.raises(ValueError) as caught:
        backup_schedule(expression)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("cron(0 5 ? * * *)", 86400),
        ("cron(15 * ? * * *)", 3600),
        ("cron(0 0/6 ? * * *)", 21600),
        ("cron(0 3/6 ? * * *)", 21600),
        ("cron(0 1,7,13,19 ? * * *)", 21600),
        ("cron(0 */12 * * ? *)", 43200),
        ("cron(0 5 ? * MON *)", None),
        ("cron(0 1,2 ? * * *)", None),
        ("cron(0 0/5 ? * * *)", None),
        ("cron(0 5 1 * ? *)", None),
    ],
)
def test_interval(expression, seconds):
    assert schedule_interval(expression) == seconds
