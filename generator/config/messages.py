"""Pydantic errors to one human line each: what is wrong, what was expected, where.

pydantic's ``msg`` is written for developers ("Input should be a valid string"); here each
error type gets a sentence that names what the user wrote, as YAML read it, and what the
field expects. Paths are cleaned of pydantic's internal union tags by walking the data.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from generator.config.fields import (
    ACCOUNT_NUMBER_ERROR,
    BOOL_FOR_NUMBER_ERROR,
    SUGGEST_CUTOFF,
    account_number_message,
    suggest,
)
from generator.config.rules import RuleViolations

Loc = tuple[str | int, ...]

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def dotted(loc: Loc) -> str:
    """``('deployment', 'targets', 'accounts', 3)`` -> ``deployment.targets.accounts[3]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _KEY_RE.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(top level)"


def clean_loc(loc: tuple, data: object) -> tuple[Loc, bool]:
    """``loc`` without pydantic's union and validator tags; True if it names a mapping key.

    Each part is kept when the data has it (or it is the last part, a missing key);
    anything else is a tag pydantic inserted, such as ``function-after[...]``.
    """
    out: list[str | int] = []
    current: Any = data
    for index, part in enumerate(loc):
        if part == "[key]":
            return tuple(out), True
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif index != len(loc) - 1:
            continue
        else:
            current = None
        out.append(part)
    return tuple(out), False


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc``, if any."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (list, tuple):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def known_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the mapping at ``loc`` accepts, sorted (empty if it is not a model)."""
    known = model_at(root, loc)
    return sorted(known.model_fields) if known else []


def typo_of(root: type[BaseModel], loc: Loc) -> str | None:
    """For an unknown key at ``loc``, the known key it most likely misspells."""
    close = difflib.get_close_matches(
        str(loc[-1]), known_keys(root, loc[:-1]), n=1, cutoff=SUGGEST_CUTOFF
    )
    return close[0] if close else None


def describe(value: object, source: str | None) -> str:
    """What YAML made of a value, in the user's terms."""
    if value is None:
        return (
            "nothing (null)"
            if source in (None, "", "~", "null", "Null", "NULL")
            else f"{source} (null)"
        )
    if isinstance(value, bool):
        return f"the boolean {source or str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {source or value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, datetime.date):
        return f"the date {source or value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _quote_hint(value: object, source: str | None) -> str:
    if source is not None and isinstance(value, bool | int | float | datetime.date):
        kind = (
            "boolean"
            if isinstance(value, bool)
            else "date"
            if isinstance(value, datetime.date)
            else "number"
        )
        return f'expected text, but YAML read {source} as a {kind}; quote it: "{source}"'
    return f"expected text, got {describe(value, source)}"


def _choices(expected: str) -> list[str]:
    # pydantic writes "'A', 'B' or 'C'" for enums and "1" for Literal[1].
    return re.findall(r"'([^']*)'", expected) or re.split(r",\s*|\s+or\s+", expected)


def message(error: dict, root: type[BaseModel], loc: Loc, source: str | None) -> str:
    """One sentence for one pydantic error."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    got = describe(value, source)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        fields = known_keys(root, loc[:-1])
        hint = suggest(str(loc[-1]), fields)
        if not hint and fields:
            hint = f"; expected one of: {', '.join(fields)}"
        return f"unknown key {loc[-1]!r}{hint}"
    if kind == ACCOUNT_NUMBER_ERROR:
        return account_number_message(ctx["number"], source)
    if kind == "string_type":
        return _quote_hint(value, source)
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return f"expected a whole number, got {got}"
    if kind in ("float_type", "float_parsing", "finite_number", BOOL_FOR_NUMBER_ERROR):
        return f"expected a number, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), got {got}"
    if kind in ("enum", "literal_error"):
        choices = _choices(ctx.get("expected", ""))
        hint = suggest(str(value), choices) if isinstance(value, str) else ""
        return f"expected one of {', '.join(choices)}, got {got}{hint}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx[key]}, got {source or value}"
    if kind in ("too_short", "too_long"):
        unit = "key" if isinstance(value, dict) else "item"
        limit = ctx["min_length"] if kind == "too_short" else ctx["max_length"]
        words = "at least" if kind == "too_short" else "at most"
        plural = "" if limit == 1 else "s"
        actual = ctx.get("actual_length")
        if actual is None and isinstance(value, dict | list):
            actual = len(value)  # pydantic leaves it out for mappings
        return f"must have {words} {limit} {unit}{plural}, got {actual}"
    if kind in ("string_too_short", "string_too_long"):
        limit = ctx.get("min_length", ctx.get("max_length"))
        words = "at least" if kind == "string_too_short" else "at most"
        return f"must be {words} {limit} characters, got {len(str(value))}"
    text = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text


def expand(error: dict) -> list[tuple[tuple, dict]]:
    """A rule error carries several problems: one (loc, error) pair for each."""
    exc = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and isinstance(exc, RuleViolations):
        return [
            ((*error["loc"], *loc), {"type": "rule", "msg": msg, "input": None})
            for loc, msg in exc.problems
        ]
    return [(error["loc"], error)]
