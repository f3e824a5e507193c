"""Read the shape of an AWS organization: roots, OUs (recursively) and their accounts.

StackSets resolve OU targets to accounts server-side; the plan needs the same answer
client-side to say which instances will be added or removed, so it walks the same tree
(every page of every list, child OUs included, as StackSets does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OrgAccount:
    """An account and its direct parent (root or OU)."""

    id: str
    name: str
    status: str
    parent_id: str


@dataclass(frozen=True)
class OrgUnit:
    """An OU (or a root, whose parent is None)."""

    id: str
    name: str
    parent_id: str | None


@dataclass
class OrgTree:
    """The part of the organization that was read."""

    units: dict[str, OrgUnit] = field(default_factory=dict)
    accounts: dict[str, OrgAccount] = field(default_factory=dict)

    def children(self, unit_id: str) -> list[OrgUnit]:
        return [u for u in self.units.values() if u.parent_id == unit_id]

    def accounts_under(self, unit_id: str) -> list[OrgAccount]:
        """Active accounts in ``unit_id`` and every OU below it."""
        found: list[OrgAccount] = []
        pending = [unit_id]
        while pending:
            current = pending.pop()
            found.extend(
                a for a in self.accounts.values() if a.parent_id == current and a.status == "ACTIVE"
            )
            pending.extend(u.id for u in self.children(current))
        return sorted(found, key=lambda a: a.id)

    def ancestors(self, unit_id: str) -> list[str]:
        """``unit_id`` and its parents up to the root, nearest first."""
        chain: list[str] = []
        current: str | None = unit_id
        while current is not None and current not in chain:
            chain.append(current)
            unit = self.units.get(current)
            current = unit.parent_id if unit else None
        return chain


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterable[dict]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def read_organization(client: Any, start: Iterable[str] | None = None) -> OrgTree:
    """Reads OUs and accounts below ``start`` (default: every root), all pages.

    Args:
        client: an Organizations client (management or delegated admin account).
        start: OU or root ids to read below; None reads the whole organization.
    """
    tree = OrgTree()
    if start is None:
        roots = list(_pages(client, "list_roots", "Roots"))
        for root in roots:
            tree.units[root["Id"]] = OrgUnit(root["Id"], root.get("Name", "Root"), None)
        pending = [r["Id"] for r in roots]
    else:
        pending = list(dict.fromkeys(start))
        for unit_id in pending:
            tree.units.setdefault(unit_id, OrgUnit(unit_id, unit_id, None))
    visited: set[str] = set()
    while pending:
        parent = pending.pop()
        if parent in visited:
            continue
        visited.add(parent)
        for account in _pages(client, "list_accounts_for_parent", "Accounts", ParentId=parent):
            tree.accounts[account["Id"]] = OrgAccount(
                id=account["Id"],
                name=account.get("Name", ""),
                status=account.get("Status", "ACTIVE"),
                parent_id=parent,
            )
        for unit in _pages(
            client, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent
        ):
            if unit["Id"] not in tree.units or tree.units[unit["Id"]].parent_id is None:
                tree.units[unit["Id"]] = OrgUnit(unit["Id"], unit.get("Name", ""), parent)
                pending.append(unit["Id"])
    return tree
