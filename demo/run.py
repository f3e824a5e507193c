"""``build.py demo``: the whole flow on a simulated organization, in one process.

1. moto (in-process, no network, fake credentials) becomes the organization of the config:
   OUs and accounts with the config's ids, plus one member the config does not list.
2. The SAME package and deploy code as ``build.py deploy`` deploys to it (with confirmation
   scans and Security Hub findings switched on for the run).
3. Day by day (the clock travels, ``time-machine``), five volumes in two member accounts are
   backed up with real contents (``demo/stories.py``: an encrypted wave on the last day, a
   benign month-end batch, a low-and-slow encryption); each backup's event goes through the
   member's rule and work queue to the REAL detector, whose verdict, content evidence, scan
   and finding go where the deployed stacks send them. Every account-region's detector sends
   its heartbeat, except the unlisted member's: that one is silent.
4. In the security account the REAL correlator turns them into incidents and emails;
   the demo ends with the incidents, the findings and ``build.py report``.

Where the demo does by hand what AWS would do, it says so in one line starting ``by hand``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.markup import escape

from demo.stories import SLOW_DAYS, SLOW_ENDS_BEFORE
from generator.config.loader import load_config
from generator.config.model import OrgConfig
from generator.errors import UserError
from rollout.display import Display

SEED = 7
EXTRA_MEMBER = "100000000001"

# The user's own AWS settings, which the demo must never read.
_USER_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_SESSION_TOKEN": "demo",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def offline_aws(region: str) -> Iterator[None]:
    """Fake credentials, no profile, moto in-process with the fidelity patches; restored after.

    The environment is set before moto is imported: importing it builds a boto3 session,
    which would read the user's profile (and fail on a missing one) otherwise.
    """
    saved = dict(os.environ)
    for name in _USER_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(_FAKE_ENV, AWS_DEFAULT_REGION=region)
    from moto import mock_aws

    from testing.moto_fidelity import faithful_changed_blocks, faithful_moto

    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)  # moto logs every resource type it skips
    try:
        with warnings.catch_warnings(), mock_aws(), faithful_moto(), faithful_changed_blocks():
            warnings.simplefilter("ignore")
            yield
    finally:
        moto_logger.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)


# Days of backups the demo can tell its story in: a first backup, enough history for the
# verdicts to know each volume's usual change, and the attack; at most a year.
MIN_DAYS = SLOW_ENDS_BEFORE + SLOW_DAYS + 3  # the low-and-slow run, its end, and the wave
MAX_DAYS = 366
DEFAULT_DAYS = 35  # a month end and the low-and-slow run fit in it
# The story's last day, the same on every run: month ends and weekends fall on the same
# days, so every run (and the test) sees the same verdicts and emails.
END = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def main(args) -> int:
    """``build.py demo``: the parsed arguments (``--config``, ``--out``, ``--days``)."""
    if not MIN_DAYS <= args.days <= MAX_DAYS:
        raise UserError(
            f"--days must be between {MIN_DAYS} and {MAX_DAYS}, got {args.days}: the demo needs "
            "a first backup, some days of normal change to learn from, and the attack day"
        )
    return run(Path(args.config), Path(args.out), Display(), days=args.days)


def run(config_path: Path, out_dir: Path, display: Display, days: int = DEFAULT_DAYS) -> int:
    """Runs the demo; returns 0 when the security account saw the wave, its scan verdict,
    its findings and the silent account."""
    started = time.monotonic()
    config = _with_scans_and_findings(load_config(config_path))
    region = config.security.home_region
    display.line(
        "[bold]Backup anomaly detection: demo on a simulated organization[/] "
        "(moto in-process: no AWS account, no network)"
    )
    with offline_aws(region), tempfile.TemporaryDirectory() as build_dir:
        ok = _simulate(config, Path(build_dir), out_dir, display, days)
    display.line(f"\ndone in {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def _with_scans_and_findings(config: OrgConfig) -> OrgConfig:
    """The config with the two follow-ups of a high verdict on (both are off by default)."""
    detection = config.detection.model_copy(
        update={"confirmation_scan": True, "security_hub_findings": True}
    )
    return config.model_copy(update={"detection": detection})


def _simulate(
    config: OrgConfig, build_dir: Path, out_dir: Path, display: Display, days: int
) -> bool:
    import time_machine

    from rollout.artifacts import build
    from rollout.deploy import deploy
    from rollout.sessions import AwsSessions
    from testing.organization import assume, build_organization

    region = config.security.home_region
    members = _members(config)
    silent = _unlisted_member(config)
    end = END
    first = end - timedelta(days=days - 1)
    # by hand: time. The clock travels from day to day (time-machine; time.monotonic,
    # which rate limits and deadlines read, is left alone).
    with time_machine.travel(first - timedelta(hours=2), tick=True) as clock:
        sim = build_organization(config, {silent[1]: [silent[0]]} if silent else {})
        display.line(
            f"organization from the config: management "
            f"{config.organization.management_account_id}, StackSet admin "
            f"{config.admin_account_id}, security {config.security.account_id}, "
            f"{len(sim.ou_ids)} OU(s), {len(sim.accounts)} other account(s)"
            + (f"; {silent[0]} is in {silent[1]} but not listed in the config" if silent else "")
        )
        display.line(
            "\n[bold]1. Deploy[/] (the same code as `build.py deploy`; confirmation scans and "
            "Security Hub findings switched on for the demo)"
        )
        result = deploy(
            config,
            AwsSessions(base=sim.management),
            build(config, build_dir),
            display,
            poll_seconds=0,
        )
        if not result.ok:
            display.line("[red]the deployment failed; see above[/]")
            return False
        from demo.member import Member
        from demo.security import Security

        security = Security(config, assume(config.security.account_id, region))
        accounts = [Member(config, a, n, assume(a, region)) for a, n in members]
        heartbeats = _heartbeat_targets(config, result.plan.desired, silent)
        _introduce(accounts, config, days, silent, display)
        for member in accounts:
            member.start()
        try:
            emails = _days(accounts, security, heartbeats, clock, first, days, display)
        finally:
            for member in accounts:
                member.stop()
        # The correlator's next sweeps deliver what its update interval held back.
        clock.move_to(end + timedelta(hours=6))
        with security.correlator.running() as fn:
            security.correlate(fn, end + timedelta(hours=6))
        emails += security.emails(days - 1)
        return _security_view(config, accounts, security, emails, out_dir, display, days)


def _members(config: OrgConfig) -> list[tuple[str, str]]:
    home = config.security.home_region
    chosen = []
    for account in config.deployment.targets.deployed_accounts():
        regions = account.regions or config.deployment.regions
        if home in regions and account.id != config.organization.management_account_id:
            chosen.append((account.id, account.name or account.id))
    if len(chosen) < 2:
        raise UserError(
            "the demo needs two member accounts listed under deployment.targets.accounts, "
            "not excluded, that deploy to the home region "
            f"{home}"
        )
    return chosen[:2]


def _unlisted_member(config: OrgConfig) -> tuple[str, str] | None:
    """A member of the first targeted OU that the config does not list: it is deployed
    like every member of the OU, and its detector is the one that never reports."""
    ous = [o.id for o in config.deployment.targets.organizational_units if o.id.startswith("ou-")]
    return (EXTRA_MEMBER, ous[0]) if ous else None


def _heartbeat_targets(config: OrgConfig, desired, silent) -> list[tuple[str, str]]:
    return sorted(
        (d.account, d.region) for d in desired.values() if not silent or d.account != silent[0]
    )


def _introduce(accounts, config: OrgConfig, days: int, silent, display: Display) -> None:
    from demo.stories import STORIES

    region = config.security.home_region
    display.line(f"\n[bold]2. {days} days of daily backups[/] in {region}")
    for line in (
        "by hand: AWS Backup's jobs (moto has none): incremental snapshots written with the "
        "EBS direct API, real file contents (64 KiB of each block), the job event put on the "
        "member's default bus",
        "by hand: Lambda (moto runs no code): the REAL detector and correlator handlers take "
        "their SQS batches, with the deployed functions' environments",
        "by hand: AWS Backup's malware scans (moto has none): the scan fake on 127.0.0.1, "
        "speaking the API's wire format; its state changes put on the member's bus",
        "by hand: schedules (moto runs none): each detector's heartbeat and the correlator's "
        "sweep are invoked once a day, after the backups",
        f"by hand: the clock (time-machine) travels from day to day; the story ends on "
        f"{END:%Y-%m-%d}",
        "by hand: CloudWatch alarm evaluation (moto has none), where an account keeps the "
        "per-volume alarms: the ceiling against its threshold, the anomaly alarm against a "
        "local estimate of CloudWatch's band (demo/estimator.py); each state change's event "
        "put on the member's bus",
    ):
        display.line(f"  {line}")
    for member in accounts:
        for story in STORIES:
            if accounts.index(member) == story.account:
                p = member.add(story, f"{SEED}-{member.account}-{story.name}")
                display.line(
                    f"  {member.name} ({member.account}): {story.name} {p.volume.volume_id} "
                    f"({story.kind}, {story.written_blocks} blocks written): {story.describe()}"
                )
    if silent:
        display.line(
            f"  {silent[0]}: deployed, but its detector never reports (as if its role were "
            "revoked): the correlator should notice"
        )


def _days(accounts, security, heartbeats, clock, first: datetime, days: int, display) -> list:
    from demo.member import send_heartbeat
    from testing.lambda_runtime import LocalLambda
    from testing.organization import assume

    covered = {(m.account, security.region) for m in accounts}
    regional = {
        (account, region): LocalLambda(
            assume(account, region), region, security.names.detector_function
        )
        for account, region in heartbeats
        if (account, region) not in covered
    }
    emails = []
    header = "".join(f"{p.story.name[:14]:<16}" for m in accounts for p in m.volumes)
    display.line(f"\n  day  date   {header}")
    quiet: list[int] = []
    for day in range(days):
        started = first + timedelta(days=day)
        clock.move_to(started + timedelta(minutes=41))
        for member in accounts:
            member.back_up(day, days, started)
            with member.runtime.running() as fn:
                member.detect(fn, started + timedelta(minutes=45))
                clock.move_to(started + timedelta(hours=1))
                member.finish_scans(fn, started + timedelta(hours=1))
                member.heartbeat(fn, started + timedelta(hours=1))
        for (account, region), runtime in regional.items():
            with runtime.running() as fn:
                send_heartbeat(
                    fn.sqs, fn, account, region, security.names, started + timedelta(hours=1)
                )
        clock.move_to(started + timedelta(hours=2))
        with security.correlator.running() as fn:
            security.correlate(fn, started + timedelta(hours=2))
        security.audit_events()  # a SIEM reads the audit queue as it fills
        today = security.emails(day)
        emails += today
        notable = _print_day(accounts, day, days, started, today, quiet, display)
        if not notable:
            quiet.append(day)
    _flush_quiet(quiet, display)
    return emails


_SHORT = {"none": "none", "low": "low", "medium": "MED", "high": "HIGH", "critical": "CRIT"}


def _cell(p, day: int) -> str:
    record = p.verdicts[day]
    if record is None:
        return "baseline" if day == 0 else "-"
    changed = int(record.get("changed_blocks") or 0)
    share = changed / p.story.written_blocks
    return f"{_SHORT.get(str(record.get('severity')), '?')} {share:.1%}"


def _print_day(accounts, day: int, days: int, started: datetime, emails, quiet, display) -> bool:
    volumes = [p for m in accounts for p in m.volumes]
    flagged = any(
        p.verdicts[day] is not None and p.verdicts[day].get("severity") not in ("none", None)
        for p in volumes
    )
    eventful = any(p.what[day] != "ordinary day" or p.alarms[day] for p in volumes if day > 0)
    if not (day in (0, 1, days - 1) or flagged or eventful or emails):
        return False
    _flush_quiet(quiet, display)
    cells = "".join(f"{_cell(p, day):<16}" for p in volumes)
    display.line(f"  {day + 1:>3}  {started:%m-%d}  {cells}")
    for p in volumes:
        if day > 0 and p.what[day] != "ordinary day":
            display.line(f"       {p.story.name}: {p.what[day]}")
        for note in p.alarms[day]:
            display.line(f"       {p.story.name}: CloudWatch {note}")
    for email in emails:
        display.line(f"       [bold]email:[/] {escape(email.subject)}")
    return True


def _flush_quiet(quiet: list[int], display) -> None:
    if quiet:
        span = f"day {quiet[0] + 1}" if len(quiet) == 1 else f"days {quiet[0] + 1}-{quiet[-1] + 1}"
        display.line(f"  ...  {span}: ordinary days, every verdict none, no email")
        quiet.clear()


def _security_view(config, accounts, security, emails, out_dir: Path, display, days) -> bool:
    from correlator import queries
    from report import html as report_html
    from report import text as report_text
    from report.collect import collect, rules

    display.line(
        "\n[bold]3. What the security team receives[/] "
        f"(security account {config.security.account_id})"
    )
    display.line("  by hand: email delivery: an SQS queue subscribed to the alert topic")
    for email in emails:
        display.line(f"\n  [bold red]email[/] (day {email.day + 1}): {escape(email.subject)}")
        for line in email.body.splitlines():
            display.line(f"    {escape(line)}")
    alarm_mails = [e for e in emails if not e.subject.startswith("[")]
    if alarm_mails:
        display.line(
            f"\n  {len(alarm_mails)} of these emails come from the per-volume CloudWatch alarms an "
            "account kept (cloudwatch_alarms): one each per alarm and volume, a month-end batch "
            "among them that the verdicts judged ordinary; no email for INSUFFICIENT_DATA -> OK"
        )
    audit = security.audit_events()
    kinds: dict[str, int] = {}
    for event in audit:
        # The correlator's own records (each notification's full JSON) carry a ``type``.
        kind = event.get("detail-type") or event.get("type") or "?"
        kinds[kind] = kinds.get(kind, 0) + 1
    display.line(
        "\n  audit queue (SIEM): " + ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items()))
    )
    _evidence(
        audit, {p.volume.volume_id: p.story.name for m in accounts for p in m.volumes}, display
    )
    display.line("\n  Security Hub findings, each imported in its own account:")
    findings = 0
    for member in accounts:
        for finding in member.findings():
            findings += 1
            scan = finding.get("ProductFields", {}).get("backup-anomaly/scanResult", "not scanned")
            display.line(
                f"    {member.name}: {finding['Severity']['Label']:<8} "
                f"{escape(finding['Title'])} [workflow {finding['Workflow']['Status']}, "
                f"scan {scan}]"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / "demo-events.jsonl"
    measured = [e for e in audit if e.get("detail-type") == "Backup Change Measured"]
    events_path.write_text("".join(json.dumps(e) + "\n" for e in measured))
    display.line(
        f"\n  {len(measured)} measurements written to {events_path}: replay them with "
        f"`python build.py backtest --events {events_path} --verdicts {out_dir}/verdicts.jsonl`"
    )

    display.line("\n[bold]4. build.py report[/] (the security account's central table)\n")
    table = security.names.correlator_table
    fleet = collect(security.dynamodb, table, min(days, 14), rules(config))
    report_text.render(fleet, report_text.console())
    page = out_dir / "report.html"
    report_html.write(fleet, page)
    display.line(f"\n  the same as one page: {page}")

    incidents = queries.incidents_since(security.dynamodb, table, days=days + 1)
    wave = [i for i in incidents if len(i.accounts) >= 2 and i.volumes >= 3]
    scanned = any(i.threats for i in wave)
    silent = [i for i in fleet.open_incidents if i.kind == "silent"]
    checks = {
        "an incident spanning two accounts with three or more volumes": bool(wave),
        "its confirmation scan found the malware": scanned,
        "Security Hub findings in the members' accounts": findings >= 3,
        "the silent account's operational incident": bool(silent),
        # The correlator's emails for 170 measurements, 7 flagged volume-days and a silent
        # account: a few per incident, never one a volume (the alarms' are per volume).
        "emails per incident, not per volume": len(emails) - len(alarm_mails) < 10,
    }
    display.line("")
    for what, ok in checks.items():
        display.line(f"  {'[green]yes[/]' if ok else '[red]NO[/]'}  {what}")
    return all(checks.values())


def _evidence(audit: list[dict], names: dict[str, str], display) -> None:
    """The verdicts worth reading: each volume's worst, with its reasons and content."""
    worst: dict[str, dict] = {}
    rank = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
    for event in audit:
        if event.get("detail-type") != "Backup Change Measured":
            continue
        detail = event["detail"]
        verdict = detail.get("verdict") or {}
        old = worst.get(detail["volumeId"])
        key = (rank.get(verdict.get("severity"), 0), verdict.get("score") or 0)
        if old is None or key > old["key"]:
            worst[detail["volumeId"]] = {"key": key, "detail": detail}
    display.line("\n  each volume's most severe verdict, as the detector explained it:")
    for entry in worst.values():
        detail = entry["detail"]
        verdict = detail.get("verdict") or {}
        content = detail.get("content") or {}
        pages = content.get("pages") or 0
        display.line(
            f"    {names.get(detail['volumeId'], detail['volumeId'])} "
            f"({detail['completionTime'][:10]}): {str(verdict.get('severity')).upper()}, "
            f"score {verdict.get('score')}"
            + (
                f"; content: {content.get('incompressibleBefore')}/{pages} pages "
                f"incompressible before, {content.get('incompressibleAfter')}/{pages} after"
                if pages
                else ""
            )
        )
        for reason in (verdict.get("reasons") or [])[:3]:
            display.line(f"      - {escape(reason)}")
