"""``build.py demo``: the whole flow on a simulated organization, in one process.

1. moto (in-process, no network, fake credentials) becomes the organization of the config:
   OUs and accounts with the config's ids.
2. The SAME package and deploy code as ``build.py deploy`` deploys to it.
3. 30 days of daily backups of one tagged volume in each of two member accounts, with
   normal churn; on the last day one of them is rewritten as ransomware would.
4. Each backup event goes through the member's EventBridge rule to its work queue and, as
   an SQS batch, to the REAL detector handler.
5. A local estimator judges each measurement against a band; the alarm state is set, and
   its state-change event travels the member's forward rule and the central bus to the
   security account, where the alert topic and the audit queue receive it.

Where the demo does by hand what AWS would do, it says so in one line starting ``by hand``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.markup import escape

from backup_anomaly import contract
from generator.config.loader import load_config
from generator.config.model import OrgConfig
from generator.errors import UserError
from generator.naming import Names
from rollout.display import Display

WRITTEN_BLOCKS = 256  # blocks with data on each simulated 1 GiB volume
CHURN = (0.03, 0.045)  # share of those blocks a normal day rewrites
ATTACK_SHARE = 0.9  # share the ransomware rewrites on the last day
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

    from testing.moto_fidelity import faithful_moto

    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)  # moto logs every resource type it skips
    try:
        with warnings.catch_warnings(), mock_aws(), faithful_moto():
            warnings.simplefilter("ignore")
            yield
    finally:
        moto_logger.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Protected:
    """One simulated volume, its detector and what was measured."""

    name: str
    session: object
    volume: object
    runtime: object
    band_width: float
    attacked: bool
    alarms: bool = True
    cells: list[str] = field(default_factory=list)
    measured: list[int] = field(default_factory=list)
    state: str = "INSUFFICIENT_DATA"


# Days of backups the demo can tell its story in: a first backup, enough history for the
# judgement to know the volume's usual change, and the attack; at most a year.
MIN_DAYS = 10
MAX_DAYS = 366


def main(args) -> int:
    """``build.py demo``: the parsed arguments (``--config``, ``--out``, ``--days``)."""
    if not MIN_DAYS <= args.days <= MAX_DAYS:
        raise UserError(
            f"--days must be between {MIN_DAYS} and {MAX_DAYS}, got {args.days}: the demo needs "
            "a first backup, some days of normal change to learn from, and the attack day"
        )
    return run(Path(args.config), Path(args.out), Display(), days=args.days)


def run(config_path: Path, out_dir: Path, display: Display, days: int = 30) -> int:
    """Runs the demo; returns 0 when the attack was detected and delivered centrally."""
    started = time.monotonic()
    config = load_config(config_path)
    region = config.security.home_region
    display.line(
        "[bold]Backup anomaly detection: demo on a simulated organization[/] "
        "(moto in-process: no AWS account, no network)"
    )
    with offline_aws(region), tempfile.TemporaryDirectory() as build_dir:
        delivered = _simulate(config, Path(build_dir), display, days)
    display.line(f"\ndone in {time.monotonic() - started:.1f} s")
    return 0 if delivered else 1


def _simulate(config: OrgConfig, build_dir: Path, display: Display, days: int) -> bool:
    from rollout.artifacts import build
    from rollout.deploy import deploy
    from rollout.sessions import AwsSessions
    from testing.organization import assume, build_organization

    region = config.security.home_region
    names = Names(config.name)
    members = _members(config)
    # One member the config does not list: the OU target reaches it all the same.
    extra = (
        {config.deployment.targets.organizational_units[0].id: [EXTRA_MEMBER]}
        if (
            config.deployment.targets.organizational_units
            and config.deployment.targets.organizational_units[0].id.startswith("ou-")
        )
        else {}
    )
    sim = build_organization(config, extra)
    display.line(
        f"organization from the config: management {config.organization.management_account_id}, "
        f"StackSet admin {config.admin_account_id}, security {config.security.account_id}, "
        f"{len(sim.ou_ids)} OU(s), {len(sim.accounts)} other account(s)"
    )

    display.line("\n[bold]1. Deploy[/] (the same code as `build.py deploy`)")
    result = deploy(
        config, AwsSessions(base=sim.management), build(config, build_dir), display, poll_seconds=0
    )
    if not result.ok:
        display.line("[red]the deployment failed; see above[/]")
        return False

    security = assume(config.security.account_id, region)
    inbox = _subscribe_inbox(security, region, names, config.security.account_id)

    display.line(f"\n[bold]2. {days} days of daily backups[/] in {region}")
    display.line(
        "  by hand: AWS Backup's jobs (moto has none): incremental snapshots of the volume via "
        "the EBS direct API, the job event put on the member's default bus"
    )
    display.line(
        "  by hand: Lambda (moto runs no code): the REAL handler gets each SQS batch from the "
        "detector's work queue, with the deployed function's environment"
    )
    display.line(
        "  by hand: CloudWatch alarm evaluation (moto has none): a local estimator judges each "
        "value against a band that approximates CloudWatch's anomaly model (see "
        "demo/estimator.py); the demo sets the alarm state and puts the state-change "
        "event CloudWatch would emit on the member's default bus"
    )
    protected = [
        _protect(config, account, name, region, names, attacked=(i == 0))
        for i, (account, name) in enumerate(members)
    ]
    for p in protected:
        display.line(
            f"  {p.name} ({p.volume.account}): volume {p.volume.volume_id}, "
            f"{WRITTEN_BLOCKS} blocks written, band width {p.band_width:g}"
            + ("  <- ransomware on the last day" if p.attacked else "")
        )
    _backups(config, protected, days, display)

    display.line(
        "\n[bold]3. What the security team receives[/] "
        f"(security account {config.security.account_id})"
    )
    display.line(
        "  by hand: email delivery (no mail server here): an SQS queue is subscribed to "
        "the alert topic and stands in for the inbox"
    )
    return _report(security, region, names, config, inbox, display)


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
            f"not excluded, that deploy to the home region {home}"
        )
    return chosen[:2]


def _protect(
    config: OrgConfig, account: str, name: str, region: str, names: Names, attacked: bool
) -> Protected:
    from demo.backups import create_volume
    from testing.lambda_runtime import LocalLambda
    from testing.organization import assume

    session = assume(account, region)
    tag = (config.backup.selection_tag.key, config.backup.selection_tag.value)
    volume = create_volume(session, account, region, tag, WRITTEN_BLOCKS)
    runtime = LocalLambda(session, region, names.detector_function)
    band = contract.setting("band_width")
    width = float(runtime.environment.get(band.env or "", config.setting(band.name)))
    switch = contract.setting("cloudwatch_alarms")
    alarms = runtime.environment.get(switch.env or "", "false") == "true"
    return Protected(name, session, volume, runtime, width, attacked, alarms)


def _backups(config: OrgConfig, protected: list[Protected], days: int, display: Display) -> None:
    from demo.estimator import band, judge
    from demo.events import as_entry, backup_job_completed

    today = datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0)
    vault = _vault(config)
    for p in protected:
        # One warm execution environment per account, as Lambda keeps between invocations.
        rng = random.Random(f"{SEED}-{p.volume.account}")
        events = p.session.client("events", region_name=p.volume.region)
        with p.runtime.running() as fn:
            for day in range(days):
                started = today - timedelta(days=days - 1 - day)
                completed = started + timedelta(minutes=41)
                blocks = list(range(WRITTEN_BLOCKS))
                if day == 0:
                    changed = blocks
                elif day == days - 1 and p.attacked:
                    changed = rng.sample(blocks, int(ATTACK_SHARE * WRITTEN_BLOCKS))
                else:
                    changed = rng.sample(blocks, round(rng.uniform(*CHURN) * WRITTEN_BLOCKS))
                snapshot = p.volume.back_up(changed)
                event = backup_job_completed(
                    p.volume.account,
                    p.volume.region,
                    p.volume.volume_id,
                    snapshot,
                    p.volume.size_gib,
                    started,
                    completed,
                    vault,
                )
                events.put_events(Entries=[as_entry(event, completed)])
                outcomes = fn.drain_work_queue()
                p.cells.append(_judge(config, p, outcomes, completed, band, judge))
    display.line("  day  date    " + "".join(f"{p.name[:30]:<32}" for p in protected))
    # Print the days that tell the story; summarize the quiet ones between them.
    notable = {0, 1, 2, days - 3, days - 2, days - 1}
    judged = [
        d
        for d in range(days)
        if all(" OK " in p.cells[d] or "ALARM" in p.cells[d] for p in protected)
    ]
    notable |= set(judged[:1])  # the first verdict, once the band has enough history
    notable |= {d for d in range(days) for p in protected if "ALARM" in p.cells[d]}
    skipped: list[int] = []
    for day in range(days):
        if day not in notable:
            skipped.append(day)
            continue
        if skipped:
            display.line(
                f"  ...  days {skipped[0] + 1}-{skipped[-1] + 1}: "
                + (
                    "no alarm"
                    if not any("ALARM" in p.cells[d] for d in skipped for p in protected)
                    else "see above"
                )
            )
            skipped = []
        when = today - timedelta(days=days - 1 - day)
        display.line(
            f"  {day + 1:>3}  {when:%m-%d}   " + "".join(f"{p.cells[day]:<32}" for p in protected)
        )


def _vault(config: OrgConfig) -> str:
    """The vault the member rule listens to (create mode: the toolkit's own vault)."""
    if config.backup.mode.value == "create":
        return config.backup.vault_name
    return (config.backup.existing.vault_names or ["Default"])[0]


def _judge(
    config: OrgConfig, p: Protected, outcomes: list[dict], when: datetime, band, judge
) -> str:
    measured = [o for o in outcomes if o.get("decision") == "measured"]
    if not measured:
        decisions = ",".join(sorted({str(o.get("decision")) for o in outcomes})) or "no event"
        return "baseline" if "baseline_created" in decisions else decisions
    value = int(measured[-1]["changed_blocks"])
    expected = band(p.measured, p.band_width)
    state = judge(value, expected)
    p.measured.append(value)
    cell = f"{value:>4} blocks"
    if expected is None:
        return cell + "  (training)"
    cell += f"  {state} (<= {expected.upper:.0f})"
    if state != p.state and p.alarms:
        _set_alarm(config, p, state, value, expected.upper, when)
    return cell


def _set_alarm(
    config: OrgConfig, p: Protected, state: str, value: int, upper: float, when: datetime
) -> None:
    from demo.events import alarm_state_change, as_entry

    session = p.session
    cloudwatch = session.client("cloudwatch", region_name=p.volume.region)
    name = Names.volume_alarm(config.detection.alarm_prefix, p.volume.volume_id)
    reason = (
        f"Thresholds Crossed: 1 out of the last 1 datapoints [{value}] was greater than the "
        f"upper threshold [{upper:.1f}] (local estimate)"
    )
    if state == "OK":
        reason = f"Datapoint [{value}] within the band [<= {upper:.1f}] (local estimate)"
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    previous, p.state = p.state, state
    if state != "ALARM":
        return  # only the transition into ALARM is routed below, to keep the output short
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    event = alarm_state_change(
        p.volume.account, p.volume.region, alarm, state, previous, reason, when
    )
    # by hand: CloudWatch emits this event on alarm state changes; moto does not.
    session.client("events", region_name=p.volume.region).put_events(
        Entries=[as_entry(event, when)]
    )


def _subscribe_inbox(security, region: str, names: Names, account: str) -> str:
    sqs = security.client("sqs", region_name=region)
    url = sqs.create_queue(QueueName="demo-secops-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    security.client("sns", region_name=region).subscribe(
        TopicArn=f"arn:aws:sns:{region}:{account}:{names.alert_topic}",
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


def _drain(sqs, url: str) -> list[str]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _report(
    security, region: str, names: Names, config: OrgConfig, inbox: str, display: Display
) -> bool:
    sqs = security.client("sqs", region_name=region)
    alerts = _drain(sqs, inbox)
    audit_url = sqs.get_queue_url(QueueName=names.audit_queue)["QueueUrl"]
    audit = [json.loads(b) for b in _drain(sqs, audit_url)]
    kinds: dict[str, int] = {}
    for event in audit:
        kinds[event.get("detail-type", "?")] = kinds.get(event.get("detail-type", "?"), 0) + 1
    for alert in alerts:
        display.line("  [bold red]alert topic (email):[/]")
        try:
            text = json.loads(alert)
        except ValueError:
            text = alert
        body = text if isinstance(text, str) else json.dumps(text, indent=2)
        for line in body.splitlines():
            display.line(f"    {escape(line)}")
    display.line(
        "  audit queue (SIEM): " + ", ".join(f"{n} x {kind}" for kind, n in sorted(kinds.items()))
    )
    if not alerts:
        display.line("  [red]no alert reached the security account[/]")
    return bool(alerts)
