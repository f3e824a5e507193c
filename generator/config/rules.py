"""How cross-field rules report problems: each with its own path, so each gets its line.

A rule collects ``(path, message)`` pairs relative to the model it validates and raises
:class:`RuleViolations` (a ``ValueError``, so pydantic reports it); the loader unpacks the
pairs into one located issue each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]


class RuleViolations(ValueError):
    """Problems found by a cross-field rule, each with its path relative to the model.

    A ``ValueError`` so pydantic reports it as a validation error; the loader unpacks
    ``problems`` (reachable through the error's ``ctx``) into one located issue each.
    """

    def __init__(self, problems: Problems):
        self.problems = problems
        super().__init__("; ".join(f"{dotted(loc) or '(here)'}: {msg}" for loc, msg in problems))


def dotted(loc: Loc) -> str:
    """``('targets', 'accounts', 3)`` -> ``targets.accounts[3]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def raise_problems(problems: Problems) -> None:
    """Raises :class:`RuleViolations` when there is any problem."""
    if problems:
        raise RuleViolations(problems)


def duplicates(
    values: Iterable[Any],
    what: str,
    prefix: Loc = (),
    key: Callable[[Any], Any] | None = None,
) -> Problems:
    """One problem per repeated value, at the repeat; O(n) with a dict of first indexes."""
    first: dict = {}
    problems: Problems = []
    for index, value in enumerate(values):
        k = key(value) if key else value
        if k in first:
            shown = repr(str(value)) if isinstance(value, str) else repr(value)
            problems.append(
                ((*prefix, index), f"duplicate {what} {shown} (already at [{first[k]}])")
            )
        else:
            first[k] = index
    return problems
