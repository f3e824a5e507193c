"""The report in a terminal (or a pipe): rich tables, the same rows as the HTML page."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from report.collect import FleetReport
from report.tables import Table, all_tables, headline

_STYLES = {"ok": "green", "warn": "yellow", "bad": "bold red", "": ""}


def _rich(table: Table) -> RichTable:
    out = RichTable(title=table.title, title_justify="left", title_style="bold")
    for column in table.columns:
        out.add_column(column, overflow="fold")
    for row, status in zip(table.rows, table.status, strict=True):
        # Cells are text, never markup: names and tags come from member accounts.
        out.add_row(*(Text(cell) for cell in row), style=_STYLES.get(status, ""))
    return out


PIPE_WIDTH = 160  # a pipe or a file has no width: wide enough for every table unfolded


def console() -> Console:
    """A console for the report: the terminal's width, else :data:`PIPE_WIDTH`."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)


def render(report: FleetReport, console: Console) -> None:
    """Prints the headline and every table (a table without rows says so in one line)."""
    console.print(
        f"[bold]Fleet report[/] from {escape(report.table)}, "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC: {escape(headline(report))}",
        highlight=False,
    )
    for table in all_tables(report):
        console.print()
        if table.rows:
            console.print(_rich(table))
        else:
            console.print(f"[bold]{escape(table.title)}[/]: {escape(table.empty)}", highlight=False)
