"""``build.py report``: the fleet from the central table, in a terminal and as an HTML page.

The table is filled by the real correlator from detector-shaped events (moto); the page is
opened in headless Chromium, which must show the tables and decode both plots.
"""

from __future__ import annotations

import html as html_module
import json
import os
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import yaml
from rich.console import Console

from correlator.incidents import Rules
from report import html, text
from report.collect import collect, rules
from tests.correlator.conftest import TABLE, anomaly, at, heartbeat, measured, scheduled
from tests.generator import template_helpers as h

PROD, ANALYTICS, WEB = "111111111111", "222222222222", "333333333333"
EVIL = '<img src=x onerror="alert(1)">'
MARKUP = "db-1 [/] [bold]x $5$"  # rich markup and mathtext, as an EC2 Name tag may carry


def fill(central) -> None:
    """Two accounts attacked on day 5, a third silent from the start, a week of history."""
    central.clock.now = at(days=0)
    central.roster(
        (PROD, "eu-west-1", 86400), (ANALYTICS, "eu-west-1", 86400), (WEB, "us-east-1", 86400)
    )
    correlator = central.correlator()
    events = []
    for day in range(1, 6):
        events += [
            measured(PROD, "vol-0a1", day, "none", instance="i-1", name=MARKUP),
            measured(ANALYTICS, "vol-0b1", day, "none", name=EVIL),
        ]
    events += [
        anomaly(PROD, "vol-0a2", 5, "critical", share=0.91),
        anomaly(PROD, "vol-0a3", 5, "critical", share=0.88),
        anomaly(ANALYTICS, "vol-0b2", 5, "high", share=0.62),
        heartbeat(ANALYTICS, "eu-west-1", at(days=5, hours=2), volumes=2),
    ]
    central.clock.now = at(days=5, hours=3)
    assert correlator.handle_batch([(f"m{n}", e) for n, e in enumerate(events)]) == []
    central.clock.now = at(days=5, hours=4)
    correlator.handle(scheduled(central.clock.now))  # the sweep: WEB never reported


def _report(central, days=7):
    return collect(central.dynamodb, TABLE, days, Rules(), now=at(days=5, hours=5))


def test_the_terminal_report_shows_the_fleet_and_what_needs_attention(central):
    fill(central)
    report = _report(central)
    console = Console(record=True, width=250)

    text.render(report, console)

    out = console.export_text()
    assert "3 account(s), 3 account-region(s) expected; 5 volume(s) measured in 7 days" in out
    assert "1 open security incident(s), 1 operational; 1 silent" in out
    accounts = _section(out, "Accounts and regions protected", "Open incidents")
    assert re.search(r"web \(333333333333\)\s*│\s*us-east-1\s*│\s*SILENT", accounts)
    assert re.search(r"analytics \(222222222222\)\s*│\s*eu-west-1\s*│\s*reporting", accounts)
    cells = {
        row[1]: row
        for row in (
            [c.strip() for c in line.split("│")] for line in accounts.splitlines() if "│" in line
        )
    }
    # Volumes: the heartbeat's count where it says one, else the volumes measured.
    assert cells["analytics (222222222222)"][7] == "2"
    assert cells["prod-payments (111111111111)"][7] == "3"
    incidents = _section(out, "Open incidents", "Security incidents of the last")
    security = next(line for line in incidents.splitlines() if "CRITICAL incident" in line)
    assert "prod-payments (111111111111), analytics (222222222222)" in security
    assert re.search(r"│\s*3\s*│", security)  # three volumes
    assert "SILENT account-region" in incidents and "web (333333333333)" in incidents
    verdicts = _section(out, "Verdicts by severity", "Volumes measured")
    total = next(line for line in verdicts.splitlines() if "total" in line)
    # critical, high, medium, low, none, unjudged, measurements
    assert [int(n) for n in re.findall(r"\d+", total)] == [2, 1, 0, 0, 10, 0, 13]
    top = _section(out, "Most rewritten volumes", None)
    assert [line.split("│")[1].strip() for line in top.splitlines() if "vol-" in line][:3] == [
        "vol-0a2",
        "vol-0a3",
        "vol-0b2",
    ]
    assert "91.0%" in top
    assert f'"{MARKUP}"' in top  # shown as it is, never read as markup


def _section(out: str, start: str, end: str | None) -> str:
    text_ = out[out.index(start) :]
    return text_[: text_.index(end)] if end else text_


def test_an_empty_table_says_what_to_do(central):
    report = _report(central)
    console = Console(record=True, width=200)
    text.render(report, console)
    out = console.export_text()
    assert "No account-region in the roster or heard from: run `build.py deploy` first." in out
    assert "No open incident." in out
    page = html.page(report)
    assert "No open incident." in page and 'data-plot="top"' not in page  # nothing to plot


def test_rules_come_from_the_config_correlation_settings():
    data = yaml.safe_load(h.EXAMPLE.read_text())
    data.setdefault("correlation", {})["window_hours"] = 6
    data["correlation"]["open_severity"] = "high"

    configured = rules(h.config_from(data))

    assert configured.window == timedelta(hours=6) and configured.opening.value == "high"
    assert rules(h.config("example")).window == Rules().window


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The probe: after load, what the page shows (innerText: rendered text only), whether each
# plot decoded, and whether anything ran that the page did not ship.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    text: document.body.innerText,
    plots: [...document.querySelectorAll('img[data-plot]')].map(
      i => [i.dataset.plot, i.naturalWidth, i.naturalHeight]),
    rows: Object.fromEntries([...document.querySelectorAll('table[data-table]')].map(
      t => [t.dataset.table, t.tBodies[0].rows.length])),
    injected: document.querySelectorAll('td img, td script').length,
    alerted: window.__alerted || false,
  });
  document.body.appendChild(out);
});
window.alert = () => { window.__alerted = true; };
</script>"""


def _open_in_chromium(page: str, tmp_path) -> dict:
    # The copy drops the page's CSP (it forbids every script, the probe's too) and adds the
    # probe; the page under test is otherwise byte for byte what the report wrote.
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page, count=1)
    probe = probe.replace("</body>", PROBE + "</body>")
    path = tmp_path / "probe.html"
    path.write_text(probe, encoding="utf-8")
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, result.stderr[-2000:]
    return json.loads(html_module.unescape(match.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (./run test installs it)")
def test_the_html_page_shows_the_same_fleet_in_chromium(central, tmp_path):
    fill(central)
    report = _report(central)
    path = tmp_path / "out" / "fleet.html"

    html.write(report, path)

    page = path.read_text(encoding="utf-8")
    assert html_module.escape(EVIL) in page and EVIL not in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained: nothing loaded
    shown = _open_in_chromium(page, tmp_path)
    assert {name for name, *_ in shown["plots"]} == {"verdicts", "top"}
    assert all(width > 300 and height > 100 for _, width, height in shown["plots"]), shown
    assert shown["rows"] == {
        "accounts": 3,
        "open": 2,
        "recent": 1,
        "verdicts": 8,  # 7 days and the total
        "volumes": 2,
        "top": 5,
    }
    seen = shown["text"]
    assert "Backup anomaly fleet report" in seen
    assert "CRITICAL incident" in seen and "SILENT account-region" in seen
    assert "prod-payments (111111111111), analytics (222222222222)" in seen
    # A member's instance name is shown as text, never run or rendered as markup.
    assert EVIL in seen and shown["injected"] == 0 and shown["alerted"] is False
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary left beside it


def test_the_command_reads_the_security_account_and_writes_the_page(aws, tmp_path, capsys):
    import build
    from correlator.store import create_table
    from generator.naming import Names

    data = yaml.safe_load(h.EXAMPLE.read_text())
    data["security"]["account_id"] = "123456789012"  # moto's caller: no role to assume
    config_path = tmp_path / "accounts.yaml"
    config_path.write_text(yaml.safe_dump(data))
    home = data["security"]["home_region"]
    argv = ["report", "--config", str(config_path), "--html", str(tmp_path / "r.html")]

    assert build.main(argv) == 2  # nothing deployed yet
    err = capsys.readouterr().err
    assert f"central table {Names(data['name']).correlator_table} does not exist" in err
    assert "123456789012" in err and home in err and not (tmp_path / "r.html").exists()

    import boto3

    create_table(boto3.client("dynamodb", region_name=home), Names(data["name"]).correlator_table)
    assert build.main(argv) == 0
    out = capsys.readouterr().out
    assert "No account-region in the roster" in out and "wrote" in out
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")

    for bad in (["--days", "0"], ["--top", "1000"]):
        assert build.main([*argv, *bad]) == 2
        assert "must be" in capsys.readouterr().err
    assert build.main([*argv[:-1], str(tmp_path)]) == 2  # --html names a folder
    assert "cannot write it" in capsys.readouterr().err
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_the_page_escapes_what_members_wrote(central):
    fill(central)
    page = html.page(_report(central))
    assert html_module.escape(EVIL) in page and EVIL not in page
    assert "<script" not in page and "script-src" not in page  # the CSP forbids scripts
