"""The report as one self-contained HTML page: the same tables, and the plots inline.

Nothing is loaded from elsewhere: the plots are PNG data URIs and the style is inline, and
the page's Content-Security-Policy forbids scripts and every other source. Every value
from the table is escaped (volume and instance names come from member accounts).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path

from report import plots
from report.collect import FleetReport
from report.tables import Table, all_tables, headline

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1f2933; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
p.headline { margin-top: 0; color: #52606d; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #cbd2d9; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f4f8; }
tr.ok td:nth-child(3) { color: #1e7f34; }
tr.warn { background: #fff8e1; }
tr.bad { background: #fde8e8; font-weight: 600; }
p.empty { color: #52606d; font-style: italic; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        f'<tr class="{status}">'
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
        + "</tr>"
        for row, status in zip(table.rows, table.status, strict=True)
    )
    title = f'<h2 id="{table.key}">{html.escape(table.title)}</h2>'
    if not table.rows:
        return f'{title}<p class="empty">{html.escape(table.empty)}</p>'
    return (
        f'{title}<table data-table="{table.key}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _image(png: bytes, alt: str, key: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img data-plot="{key}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def page(report: FleetReport) -> str:
    """The whole page."""
    tables = {t.key: t for t in all_tables(report)}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>Backup anomaly fleet report {report.generated_at:%Y-%m-%d}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Backup anomaly fleet report</h1>",
        f'<p class="headline">{html.escape(headline(report))}<br>'
        f"From {html.escape(report.table)} at {report.generated_at:%Y-%m-%d %H:%M} UTC</p>",
        _table(tables["accounts"]),
        _table(tables["open"]),
        _table(tables["recent"]),
        "<h2>Verdicts over time</h2>",
        _image(plots.verdicts_over_time(report), "Measurements per day by verdict", "verdicts"),
        _table(tables["verdicts"]),
        _table(tables["volumes"]),
    ]
    if report.top_rewritten:
        parts += [
            "<h2>Most rewritten volumes</h2>",
            _image(plots.top_rewritten(report), "The most rewritten volumes", "top"),
        ]
    parts += [_table(tables["top"]), "</body></html>"]
    return "\n".join(parts)


def write(report: FleetReport, path: Path) -> None:
    """Writes the page to ``path`` atomically (a half-written report is never left)."""
    text = page(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary file (mkstemp makes it 0600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
