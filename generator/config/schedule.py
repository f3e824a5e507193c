"""AWS Backup schedule expressions: ``cron(minutes hours day-of-month month day-of-week year)``.

AWS Backup takes only cron expressions (``BackupRule.ScheduleExpression``; EventBridge's
``rate(...)`` is not accepted) in EventBridge's six-field dialect, and refuses a plan whose
jobs would start less than 60 minutes apart. Checking here turns a failed StackSet rollout,
minutes into a deploy and repeated in every account, into one line at validate time.
"""

from __future__ import annotations

import re

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}

# (name, low, high, names, special tokens allowed)
_FIELDS: tuple[tuple[str, int, int, dict[str, int], str], ...] = (
    ("minutes", 0, 59, {}, ""),
    ("hours", 0, 23, {}, ""),
    ("day-of-month", 1, 31, {}, "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, {}, ""),
)

_CRON_RE = re.compile(r"^cron\((?P<body>[^()]*)\)$")
_RATE_RE = re.compile(r"^rate\((?P<n>\d+)\s+(?P<unit>\w+)\)$")
_EXAMPLE = "cron(0 5 ? * * *) runs daily at 05:00 UTC"


def _value(token: str, field: tuple) -> int:
    name, low, high, names, _ = field
    number = names.get(token.upper()) if names else None
    if number is None:
        if not token.isdigit():
            raise ValueError(
                f"{name} has {token!r}, expected {low}-{high}"
                + (" or a name like " + next(iter(names)) if names else "")
            )
        number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{name} must be {low}-{high} (got {token})")
    return number


def _check_item(item: str, field: tuple) -> None:
    name, _, _, _, special = field
    if item == "*" or (item == "?" and "?" in special):
        return
    if "L" in special and item == "L":
        return
    if name == "day-of-month" and re.fullmatch(r"\d{1,2}W|LW", item):
        if item != "LW":
            _value(item[:-1], field)
        return
    if name == "day-of-week" and "#" in item:
        day, _, nth = item.partition("#")
        _value(day, field)
        if not (nth.isdigit() and 1 <= int(nth) <= 5):
            raise ValueError(f"day-of-week {item!r}: the n in DAY#n must be 1-5")
        return
    if name == "day-of-week" and item.endswith("L") and len(item) > 1:
        _value(item[:-1], field)
        return
    base, slash, step = item.partition("/")
    if slash:
        if not (step.isdigit() and int(step) >= 1):
            raise ValueError(f"{name} {item!r}: the step after '/' must be a positive number")
        if base == "*":
            return
    low_token, dash, high_token = base.partition("-")
    _value(low_token, field)
    if dash:
        _value(high_token, field)


def backup_schedule(value: str) -> str:
    """Checks an AWS Backup cron expression; returns it unchanged or raises ``ValueError``."""
    rate = _RATE_RE.match(value)
    if rate:
        n, unit = int(rate["n"]), rate["unit"]
        hint = _EXAMPLE
        if unit.startswith("hour") and n and 24 % n == 0 and n < 24:
            hint = f"cron(0 0/{n} ? * * *) runs every {n} hour(s)"
        raise ValueError(f"AWS Backup takes cron(...) schedules, not rate(...): {hint}")
    cron = _CRON_RE.match(value)
    if not cron:
        raise ValueError(f"expected an AWS cron expression such as {_EXAMPLE}")
    fields = cron["body"].split()
    if len(fields) != 6:
        raise ValueError(
            "AWS cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    for text, field in zip(fields, _FIELDS, strict=True):
        for item in text.split(","):
            if not item:
                raise ValueError(f"{field[0]} has an empty list item")
            _check_item(item, field)
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    if not fields[0].isdigit():
        # Any list, range, step or '*' in the minutes starts more than one job an hour.
        raise ValueError(
            f"minutes must be a single number 0-59 (got {fields[0]!r}): AWS Backup starts "
            "jobs at least 60 minutes apart"
        )
    return value


def schedule_interval(value: str) -> int | None:
    """Seconds between runs of a valid cron that runs at one fixed interval of a day or less.

    ``cron(0 5 ? * * *)`` is 86400, ``cron(15 * ? * * *)`` 3600, ``cron(0 0/6 ? * * *)``
    and ``cron(0 1,7,13,19 ? * * *)`` 21600. ``None`` for anything else (weekly, monthly,
    uneven hours), where no single alarm period fits.
    """
    match = _CRON_RE.match(value)
    if not match:
        return None
    fields = match["body"].split()
    if len(fields) != 6 or not fields[0].isdigit():
        return None
    _, hours, day_of_month, month, day_of_week, year = fields
    if {day_of_month, day_of_week} != {"*", "?"} or month != "*" or year != "*":
        return None
    if hours == "*":
        return 3600
    base, slash, step = hours.partition("/")
    if slash:
        start = 0 if base == "*" else int(base) if base.isdigit() else None
        if step.isdigit() and start is not None and start < int(step) and 24 % int(step) == 0:
            return int(step) * 3600
        return None
    if not all(h.isdigit() for h in hours.split(",")):
        return None
    runs = sorted({int(h) for h in hours.split(",")})
    gaps = {b - a for a, b in zip(runs, runs[1:] + [runs[0] + 24], strict=True)}
    return gaps.pop() * 3600 if len(gaps) == 1 else None
