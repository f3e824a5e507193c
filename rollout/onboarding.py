"""``import-accounts``: merge the organization's accounts into the config, keeping the file.

The config is the user's document: comments, order, quoting and overrides stay as written.
So the merge works on the text: the YAML is composed (not loaded) to find where
``deployment.targets.accounts`` ends, and new entries are inserted there in the list's own
indentation. Nothing is removed: accounts that left the organization are reported. The
merged text is validated like any config before it replaces the file.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from generator.config.loader import ConfigError, load_config
from generator.config.model import OrgConfig, PermissionModel
from generator.errors import UserError
from rollout.display import Display
from rollout.organization import OrgAccount, OrgTree, read_organization
from rollout.sessions import AwsSessions

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 ._-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


@dataclass(frozen=True)
class NewAccount:
    """An account to add, with the OU it is listed under."""

    id: str
    name: str
    ou: str
    note: str = ""


@dataclass(frozen=True)
class ImportPlan:
    """What an import adds and reports."""

    added: list[NewAccount]
    left: list[str]  # in the config, no longer an active member of the organization
    skipped: list[tuple[str, str]]  # (account, why)
    untargeted_ous: list[tuple[str, str, int]] = field(default_factory=list)
    """(OU id, name, accounts) that no target covers."""


def plan_import(config: OrgConfig, tree: OrgTree) -> ImportPlan:
    """Which organization accounts are new to the config, and which config accounts left.

    Every listed account counts as known, excluded ones included: an exclusion is the
    user's decision, and importing must not turn it back into a target.
    """
    listed = {a.id for a in config.deployment.targets.accounts}
    targeted = {ou.id for ou in config.deployment.targets.organizational_units}
    service = config.deployment.permission_model is PermissionModel.SERVICE_MANAGED
    added, skipped = [], []
    for account in sorted(tree.accounts.values(), key=lambda a: a.id):
        if account.id in listed:
            continue
        if account.id == config.organization.management_account_id:
            skipped.append((account.id, "the management account (runs no workloads)"))
            continue
        if account.id in (config.security.account_id, config.admin_account_id):
            # They run the toolkit itself; protecting their volumes too is a deliberate
            # choice, so it is left to the user.
            skipped.append(
                (
                    account.id,
                    "runs the toolkit (security or StackSet admin); "
                    "list it by hand to protect its volumes too",
                )
            )
            continue
        if account.status != "ACTIVE":
            skipped.append((account.id, f"status {account.status}"))
            continue
        added.append(_new_account(account, tree, targeted if service else set()))
    left = sorted(
        a.id
        for a in config.deployment.targets.accounts
        if a.id not in tree.accounts or tree.accounts[a.id].status != "ACTIVE"
    )
    return ImportPlan(added, left, skipped, _untargeted(tree, targeted) if service else [])


def _untargeted(tree: OrgTree, targeted: set[str]) -> list[tuple[str, str, int]]:
    """OUs with accounts that no OU target covers (a hint: target them to protect them all)."""
    found = []
    for unit in sorted(tree.units.values(), key=lambda u: u.id):
        if unit.parent_id is None or any(a in targeted for a in tree.ancestors(unit.id)):
            continue
        count = len(tree.accounts_under(unit.id))
        if count:
            found.append((unit.id, unit.name, count))
    return found


def _new_account(account: OrgAccount, tree: OrgTree, targeted: set[str]) -> NewAccount:
    parent = tree.units.get(account.parent_id)
    # Under SERVICE_MANAGED, list the account under the nearest targeted OU: it stays in
    # that OU's instance group (StackSets reaches child OUs too) until given settings.
    ou = next((u for u in tree.ancestors(account.parent_id) if u in targeted), account.parent_id)
    note = ""
    if ou != account.parent_id and parent is not None:
        note = f"in OU {parent.name} ({parent.id})"
    elif parent is not None and parent.parent_id is not None:
        note = f"OU {parent.name}"
    return NewAccount(account.id, account.name, ou, note)


# --- text merge ---------------------------------------------------------------------------------


def _scalar(value: str) -> str:
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS and not value.endswith(" "):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _child(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _last_line(node: yaml.Node) -> int:
    """0-based line of the last character that belongs to ``node``."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        return end.line if end.column > 0 else end.line - 1
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [part for pair in node.value for part in pair]
    )
    return max((_last_line(c) for c in children), default=node.start_mark.line)


def _entries(accounts: list[NewAccount], dash: int) -> list[str]:
    pad, inner = " " * dash, " " * (dash + 2)
    lines = [f"{pad}# added by `build.py import-accounts` from AWS Organizations\n"]
    for a in accounts:
        lines.append(f'{pad}- id: "{a.id}"\n')
        if a.name:
            lines.append(f"{inner}name: {_scalar(a.name)}\n")
        lines.append(f"{inner}ou: {a.ou}" + (f"  # {a.note}" if a.note else "") + "\n")
    return lines


def merge_accounts(text: str, accounts: list[NewAccount]) -> str:
    """``text`` with ``accounts`` appended to ``deployment.targets.accounts``.

    Raises:
        UserError: the file's shape leaves no safe place to insert (e.g. a non-empty
            flow-style list).
    """
    if not accounts:
        return text
    root = yaml.compose(text)
    deployment = _child(root, "deployment") if isinstance(root, yaml.MappingNode) else None
    targets = (
        _child(deployment[1], "targets")
        if deployment and isinstance(deployment[1], yaml.MappingNode)
        else None
    )
    if targets is None or not isinstance(targets[1], yaml.MappingNode):
        raise UserError("the config has no deployment.targets mapping to add accounts to")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    found = _child(targets[1], "accounts")
    if found is None:
        indent = targets[1].value[0][0].start_mark.column if targets[1].value else 4
        at = _last_line(targets[1]) + 1
        block = [" " * indent + "accounts:\n", *_entries(accounts, indent + 2)]
        return "".join(lines[:at] + block + lines[at:])
    key, seq = found
    if not isinstance(seq, yaml.SequenceNode) and not (
        isinstance(seq, yaml.ScalarNode) and seq.value in ("", "~", "null")
    ):
        raise UserError("deployment.targets.accounts is not a list")
    if isinstance(seq, yaml.ScalarNode) or (seq.flow_style and not seq.value):
        # `accounts:` or `accounts: []`: replace the value with a block list.
        line = lines[key.start_mark.line]
        head = line[: key.end_mark.column] + ":"
        comment = line[line.index("#") :] if "#" in line[key.end_mark.column :] else "\n"
        lines[key.start_mark.line] = head + (" " + comment if comment != "\n" else "\n")
        at = key.start_mark.line + 1
        return "".join(lines[:at] + _entries(accounts, key.start_mark.column + 2) + lines[at:])
    if seq.flow_style:
        raise UserError(
            "deployment.targets.accounts is a flow-style list ([...]); write it as a block "
            "list (one '- id: ...' per account) so accounts can be added without rewriting it"
        )
    first = seq.value[0]
    line = lines[first.start_mark.line]
    dash = line.rfind("-", 0, first.start_mark.column)
    dash = dash if dash >= 0 else max(first.start_mark.column - 2, 0)
    at = _last_line(seq) + 1
    return "".join(lines[:at] + _entries(accounts, dash) + lines[at:])


# --- command ------------------------------------------------------------------------------------


def import_accounts(
    path: Path, config: OrgConfig, sessions: AwsSessions, display: Display, dry_run: bool = False
) -> ImportPlan:
    """Reads the organization, merges new accounts into ``path``, reports what left.

    Raises:
        UserError: the merged config would not validate (nothing is written).
    """
    client = sessions.client("organizations", config.admin_account_id, config.security.home_region)
    tree = read_organization(client)
    plan = plan_import(config, tree)
    text = path.read_text()
    merged = merge_accounts(text, plan.added)
    _validate(merged, path)
    for a in plan.added:
        display.line(f"  [green]+[/] {a.id} {a.name} (ou: {a.ou}{', ' + a.note if a.note else ''})")
    for account, why in plan.skipped:
        display.line(f"    {account}: not added, {why}")
    excluded = {a.id for a in config.deployment.targets.excluded()}
    for account in plan.left:
        display.line(
            f"  [yellow]![/] {account} is in the config but not an active member of the "
            "organization; "
            + (
                "it is excluded already, so removing it from the config changes nothing deployed"
                if account in excluded
                else "it is kept: remove it from the config to offboard it"
            )
        )
    for ou, name, count in plan.untargeted_ous:
        display.line(
            f"    OU {name} ({ou}) holds {count} account(s) and is not a target: list it under "
            "deployment.targets.organizational_units to protect every account in it"
        )
    display.line(
        f"{len(plan.added)} account(s) added, {len(plan.left)} no longer in the organization; "
        "run `build.py plan` to see what a deploy would change"
    )
    if dry_run:
        display.console.print(merged, markup=False, highlight=False, end="")
    elif merged != text:
        path.write_text(merged)
    return plan


def _validate(text: str, path: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as tmp:
        tmp.write(text)
        tmp.flush()
        try:
            load_config(tmp.name)
        except ConfigError as exc:
            problems = "; ".join(f"{i.path}: {i.message}" for i in exc.issues[:5])
            raise UserError(
                f"the merged config would not validate, so {path} was left unchanged: {problems}"
            ) from exc
