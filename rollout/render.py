"""Rendering a plan: stacks, the StackSet, every instance change, the counts."""

from __future__ import annotations

from rich.markup import escape

from generator.config.model import PermissionModel
from rollout.display import Display
from rollout.plan import Plan

_COLOR = {"+": "green", "~": "yellow", "-": "red"}


def _mark(symbol: str) -> str:
    return f"[{_COLOR[symbol]}]{symbol}[/]"


def render(plan: Plan, display: Display) -> None:
    """Prints the plan: stacks, the StackSet, every instance change, and the counts."""
    config = plan.config
    d = config.deployment
    display.line(
        f"[bold]Plan for {config.name}[/]: {d.permission_model.value}, StackSet admin "
        f"{config.admin_account_id}"
        + (
            f", call as {d.call_as.value}"
            if d.permission_model is PermissionModel.SERVICE_MANAGED
            else ""
        )
    )
    display.line("\n[bold]Stacks[/]")
    for s in plan.stacks:
        if s.action != "none":
            t = s.target
            symbol = "+" if s.action == "create" else "~"
            display.line(
                f"  {_mark(symbol)} {t.label} {t.name} in {t.account} {t.region} "
                f"({escape(s.reason)})"
            )
    unchanged = sum(s.action == "none" for s in plan.stacks)
    if unchanged:
        display.line(f"    {unchanged} stack(s) unchanged")
    display.line(f"\n[bold]StackSet {plan.spec.name}[/]")
    if plan.stackset.action == "none":
        display.line("    no change")
    else:
        symbol = "+" if plan.stackset.action == "create" else "~"
        for reason in plan.stackset.reasons:
            display.line(f"  {_mark(symbol)} {escape(reason)}")
    display.line(f"\n[bold]Stack instances[/] ({plan.unchanged_instances} unchanged)")
    excluded = config.deployment.targets.excluded()
    if excluded:
        # Shown even when nothing is deployed there, so a reviewer sees every carve-out.
        shown = ", ".join(a.id for a in excluded[:10]) + (" ..." if len(excluded) > 10 else "")
        display.line(f"    excluded by the config ({len(excluded)}): {shown}")
    for c in sorted(plan.instances, key=lambda c: ("+~-".index(c.symbol), c.account, c.region)):
        detail = c.reason
        if c.action == "add" and c.overrides:
            detail = ", ".join(f"{k}={v}" for k, v in c.overrides)
        if c.action == "remove":
            retain = config.deployment.retain_stacks_on_removal
            detail = ", ".join(
                filter(None, (c.reason, "stack retained" if retain else "stack deleted"))
            )
        display.line(
            f"  {_mark(c.symbol)} {c.account} {c.region}"
            + (f"  {escape(detail)}" if detail else "")
        )
    if plan.targets or plan.notes:
        display.line("\n[bold]Targets the organization does not hold as the config says[/]")
        for problem in plan.targets:
            mark = "[yellow]expected[/]" if problem.expected else "[red]error[/]"
            display.line(f"  {mark} {escape(str(problem))}")
        for note in plan.notes:
            display.line(f"  [yellow]note[/] {escape(note)}")
    stacks_created = sum(s.action == "create" for s in plan.stacks)
    stacks_updated = sum(s.action == "update" for s in plan.stacks)
    display.line(
        f"\n[bold]Summary[/]: instances {plan.count('add')} to add, {plan.count('update')} to "
        f"update, {plan.count('remove')} to remove; stacks {stacks_created} to create, "
        f"{stacks_updated} to update; StackSet: {plan.stackset.action}"
    )
