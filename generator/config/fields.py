"""Scalar types of the config: ids, regions, emails, tags, names.

Each type is an ``Annotated`` string with a validator that says what was expected, and a
JSON Schema that tells an editor the same. Messages never start with pydantic's
"Value error, "; the loader strips that prefix and places the message on its line.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from generator.config.regions import known_regions
from generator.config.schedule import backup_schedule

ACCOUNT_RE = re.compile(r"^\d{12}$")
OU_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
ROOT_RE = re.compile(r"^r-[0-9a-z]{4,32}$")
ORG_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# CloudFormation/resource tags: Unicode letters, digits, spaces and _ . : / = + - @.
TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$")
TAG_VALUE_RE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
VAULT_RE = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")
PLAN_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,50}$")
# The product prefix ends up in S3 bucket names: lowercase, digits, inner hyphens.
NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")

ACCOUNT_NUMBER_ERROR = "account_id_number"
BOOL_FOR_NUMBER_ERROR = "bool_for_number"


def account_number_message(number: int, source: str | None = None) -> str:
    """Explains an account id that YAML read as a number, quoting what the user wrote."""
    text = source if source is not None else str(number)
    if source is not None and re.fullmatch(r"0[0-7_]+", source):
        return (
            f"account id {text} is unquoted, so YAML read it as the octal number {number}; "
            f'quote it: "{text}"'
        )
    digits = re.sub(r"\D", "", text)
    if len(digits) == 12:
        return f'account id {text} is unquoted, so YAML read it as a number; quote it: "{digits}"'
    return (
        f"account id {text} is unquoted, so YAML read it as a number with {len(digits)} "
        "digits; quote it with all 12 digits, leading zeros included "
        f'("{digits.zfill(12)}" if zeros were lost)'
    )


def _account_id(value: object) -> object:
    # YAML reads an unquoted 012345678901 as the integer 12345678901 and 012345670123 as
    # an octal number: the leading zero is gone before we see it, so an int is always a
    # mistake worth naming. The loader refines the message with the text as written.
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError(
            ACCOUNT_NUMBER_ERROR, account_number_message(value), {"number": value}
        )
    if not isinstance(value, str):
        return value  # pydantic's own "expected a string" follows
    if not ACCOUNT_RE.match(value.strip()):
        raise ValueError(f"account id {value!r} must be exactly 12 digits")
    return value.strip()


def _not_bool(value: object) -> object:
    # pydantic's lax mode turns true into 1; YAML 1.1 turns yes/on into true. A number
    # field given yes is a mistake, not 1.
    if isinstance(value, bool):
        raise PydanticCustomError(BOOL_FOR_NUMBER_ERROR, "expected a number, got a boolean")
    return value


def _regex(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return check


SUGGEST_CUTOFF = 0.6  # difflib similarity: 'regoins' -> 'regions', 'colour' -> nothing


def suggest(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=SUGGEST_CUTOFF)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(
            f"unknown region {value!r}{suggest(value, known_regions())}; "
            "expected a region botocore knows, such as 'us-east-1'"
        )
    return value


def _ou_or_root(value: str) -> str:
    if OU_RE.match(value) or ROOT_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)")


def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key {value!r}: the 'aws:' prefix is reserved for AWS")
    if not TAG_KEY_RE.match(value):
        raise ValueError(
            f"tag key {value!r} must be 1-128 letters, digits, spaces or _ . : / = + - @"
        )
    return value


def _tag_value(value: str) -> str:
    if not TAG_VALUE_RE.match(value):
        raise ValueError(
            f"tag value {value!r} must be 0-256 letters, digits, spaces or _ . : / = + - @"
        )
    return value


def _string(pattern: str, **extra) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, **extra})


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
AccountId = Annotated[
    str, BeforeValidator(_account_id), _string(ACCOUNT_RE.pattern, description="12 digits, quoted")
]
OuOrRootId = Annotated[
    str, AfterValidator(_ou_or_root), _string(f"{OU_RE.pattern}|{ROOT_RE.pattern}")
]
OrgId = Annotated[
    str,
    AfterValidator(_regex(ORG_RE, "organization id (o- and 10-32 lowercase letters or digits)")),
    _string(ORG_RE.pattern),
]
Email = Annotated[
    str,
    AfterValidator(_regex(EMAIL_RE, "email address")),
    _string(EMAIL_RE.pattern, format="email"),
]
Region = Annotated[
    str,
    AfterValidator(_region),
    WithJsonSchema({"type": "string", "enum": sorted(known_regions())}),
]
TagKey = Annotated[str, AfterValidator(_tag_key), _string(TAG_KEY_RE.pattern)]
TagValue = Annotated[str, AfterValidator(_tag_value), _string(TAG_VALUE_RE.pattern)]
Schedule = Annotated[
    str,
    AfterValidator(backup_schedule),
    _string(
        r"^cron\(.+\)$",
        description="AWS cron: minutes hours day-of-month month "
        "day-of-week year, UTC, at most hourly",
    ),
]
VaultName = Annotated[
    str,
    AfterValidator(_regex(VAULT_RE, "backup vault name (2-50 letters, digits, - or _)")),
    _string(VAULT_RE.pattern),
]
PlanId = Annotated[
    str, AfterValidator(_regex(PLAN_ID_RE, "backup plan id")), _string(PLAN_ID_RE.pattern)
]
