"""Readable notifications: the SNS subject and plain-text body, and the audit queue's JSON.

An email says, in this order: what happened and how bad (subject: severity, account name,
volume count), what changed since the last email, the first three things to do, then per
volume (most severe first, at most ``message_volumes`` of them) the share of its written
data the backup rewrote and the multiple of its usual, the content evidence in words, the
instance it is attached to and its Name tag, the last clean snapshot to restore from, the
malware scan's result, and console links in the volume's own partition. Every volume and
every field is in the JSON on the audit queue.

Only counts and ids ever appear: no block or page contents exist in the correlator.

SNS limits (Publish, https://docs.aws.amazon.com/sns/latest/api/API_Publish.html):
``Subject`` is ASCII text with no line breaks or control characters, shorter than 100
characters (moto refuses 100); ``Message`` at most 262,144 bytes, which is also the SQS
message limit (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from correlator.incidents import Intent, Rules, severity
from correlator.records import (
    SCAN_CLEAN,
    SCAN_THREATS,
    Incident,
    Member,
    Notice,
    NoticeKind,
    OpsIncident,
    OpsKind,
    Severity,
    SignalKind,
    Snapshot,
    Status,
    iso,
    partition_of,
)

SUBJECT_MAX = 99
MESSAGE_MAX_BYTES = 262_144
# A pending notification is one DynamoDB item (at most 400 KB) holding the body and the
# audit JSON (escaped once more inside it): both are capped well under the SNS and SQS
# limits so that the item fits.
AUDIT_MAX_BYTES = 180_000
BODY_MAX_BYTES = 100_000
# Text a member wrote (an instance's Name tag, a verdict's reasons) is shown on one line
# and shortened: it is data, not message structure.
MEMBER_TEXT_MAX = 128
AUDIT_TYPE = "backup-anomaly-incident"
OPS_AUDIT_TYPE = "backup-anomaly-operational"

# The console of each partition. Commercial regions have regional consoles
# (https://docs.aws.amazon.com/general/latest/gr/mgmt-console.html); AWS GovCloud (US) and
# the China regions have one console host each
# (https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/govcloud-iam.html).
CONSOLES = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
    "aws-cn": "https://console.amazonaws.cn",
}


def console(partition: str, region: str) -> str:
    """The console base URL for a region of ``partition`` (commercial when unknown)."""
    return CONSOLES.get(partition, CONSOLES["aws"]).format(region=region)


def ec2_link(arn: str, region: str, what: str, resource_id: str) -> str:
    """A console link to an EC2 resource (``VolumeDetails:volumeId`` ...)."""
    return f"{console(partition_of(arn), region)}/ec2/home?region={region}#{what}={resource_id}"


def ascii_text(text: str) -> str:
    """``text`` in printable ASCII on one line (accents dropped, controls as spaces)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        c if " " <= c <= "~" else " " for c in decomposed if not unicodedata.combining(c)
    )
    return " ".join(kept.split())


def member_text(text: str) -> str:
    """Member-written text for a body: one line, no control characters, at most 128."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= MEMBER_TEXT_MAX else line[: MEMBER_TEXT_MAX - 3] + "..."


def subject_line(text: str) -> str:
    """A valid SNS Subject: printable ASCII, one line, shorter than 100 characters."""
    line = ascii_text(text) or "Backup anomaly detection"
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 3].rstrip() + "..."


def account_label(account: str, names: Mapping[str, str]) -> str:
    """``prod-payments (111111111111)``, or the bare id when no name is known."""
    name = names.get(account)
    return f"{name} ({account})" if name else account


def _short(account: str, names: Mapping[str, str]) -> str:
    return names.get(account) or account


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _percent(value: float | None) -> str:
    if value is None:
        return "?"
    percent = value * 100
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def _where(incident: Incident, names: Mapping[str, str]) -> str:
    """``3 volumes in prod-payments`` or ``12 volumes in 3 accounts (a, b +1)``."""
    volumes = f"{incident.volumes} volume{'s' if incident.volumes != 1 else ''}"
    accounts = sorted(incident.accounts, key=lambda a: (-incident.accounts[a].volumes, a))
    if len(accounts) == 1:
        return f"{volumes} in {_short(accounts[0], names)}"
    shown = ", ".join(_short(a, names) for a in accounts[:2])
    more = f" +{len(accounts) - 2}" if len(accounts) > 2 else ""
    return f"{volumes} in {len(accounts)} accounts ({shown}{more})"


def _subject(intent: Intent, incident: Incident, names: Mapping[str, str]) -> str:
    level = intent.after.severity.value.upper()
    where = _where(incident, names)
    kind = intent.kind
    if kind is NoticeKind.OPENED:
        return subject_line(f"[{level}] Backup anomaly: {where}")
    if kind is NoticeKind.UPDATED:
        return subject_line(f"[{level}] Update {intent.seq}: backup anomaly, {where}")
    if kind is NoticeKind.REOPENED:
        return subject_line(f"[{level}] Reopened: backup anomaly, {where}")
    if kind is NoticeKind.RESOLVED:
        return subject_line(f"[RESOLVED] Backup anomaly, {where}: measured normal again")
    if kind is NoticeKind.EXPIRED:
        return subject_line(f"[EXPIRED] Backup anomaly, {where}: closed, not all normal")
    return subject_line(f"[{level}] Backup anomaly {incident.id} merged into {intent.merged_into}")


def _changes(before: Snapshot | None, after: Snapshot, names: Mapping[str, str]) -> list[str]:
    """What changed since the previous notification, one line each."""
    if before is None:
        return []
    lines = []
    if after.severity.rank != before.severity.rank:
        lines.append(f"Severity {before.severity.value.upper()} -> {after.severity.value.upper()}")
    if after.volumes != before.volumes:
        lines.append(f"{after.volumes - before.volumes:+d} volumes (now {after.volumes})")
    joined = [a for a in after.accounts if a not in before.accounts]
    if joined:
        lines.append("Accounts now affected: " + ", ".join(account_label(a, names) for a in joined))
    regions = [r for r in after.regions if r not in before.regions]
    if regions:
        lines.append("Regions now affected: " + ", ".join(regions))
    if after.threats and not before.threats:
        lines.append("A malware scan FOUND THREATS in a recovery point of this incident")
    if after.scanned != before.scanned:
        lines.append(f"Malware scan results for {after.scanned - before.scanned} more volume(s)")
    if after.status is not before.status:
        lines.append(f"Status {before.status.value} -> {after.status.value}")
    return lines


def _todo(incident: Incident, members: Sequence[Member], kind: NoticeKind) -> list[str]:
    """The first three things to do."""
    if kind is NoticeKind.RESOLVED:
        return [
            "Resolved means every volume was measured normal in a later backup: the rewrite "
            "stopped. It does not mean the data is intact.",
            "Check each volume's data; where it was encrypted, restore from the last clean "
            "snapshot listed below rather than from a newer one.",
            "Keep the last clean snapshots (and their recovery points) until you have done so.",
        ]
    if kind is NoticeKind.MERGED:
        return ["Follow the incident it was merged into: its messages carry these volumes."]
    deleted = any(SignalKind.SNAPSHOT_DELETED in m.kinds for m in members)
    rewrites = any(SignalKind.REWRITE in m.kinds or m.threats for m in members)
    first = (
        "Contain: isolate the instances listed (a security group without rules, or stop "
        "them) and find who acted (CloudTrail in the accounts named) before changing anything."
    )
    if deleted and not rewrites:
        first = (
            "Find who deleted the backup snapshots: CloudTrail DeleteSnapshot and "
            "DeleteRecoveryPoint in the accounts named; revoke that principal's access."
        )
    return [
        first,
        "Protect the backups: stop any deletion of recovery points (AWS Backup Vault Lock, "
        "a copy of the last clean snapshots in another account) before anything else.",
        "Restore: create new volumes from the last clean snapshots listed, check them, then "
        "swap them in; keep the rewritten volumes and snapshots as evidence.",
    ]


def _content_words(member: Member) -> str | None:
    content = member.evidence.content
    if content is None or content.pages <= 0:
        return None
    after = content.incompressible_after / content.pages
    before = content.incompressible_before / content.pages
    counts = (
        f"{content.incompressible_after} of {content.pages} sampled 4 KiB pages "
        f"({content.sampled_blocks} blocks) do not compress after this backup, "
        f"{content.incompressible_before} did not before"
    )
    if after >= 0.8 and before < 0.5:
        verdict = "the new data looks encrypted or random where it compressed before"
    elif after >= 0.8:
        verdict = "it was incompressible before too (compressed or encrypted data all along)"
    elif after > before + 0.2:
        verdict = "more of it is incompressible than before"
    else:
        verdict = "it still compresses: not what encryption looks like"
    return f"{counts}: {verdict}"


def _volume_lines(member: Member, names: Mapping[str, str]) -> list[str]:
    e = member.evidence
    head = (
        f"- {member.volume_id} in {account_label(member.account, names)}, {member.region}: "
        f"{member.severity.value.upper()}"
    )
    lines = [head]
    if SignalKind.REWRITE in member.kinds and e.kind is SignalKind.REWRITE:
        usual = ""
        if e.expected_low is not None and e.expected_high is not None:
            usual = f"usually {_percent(e.expected_low)}-{_percent(e.expected_high)}"
        if e.multiple is not None:
            usual = f"{usual}; " if usual else ""
            usual += f"{e.multiple:.1f}x its usual"
        share = _percent(e.share) if e.share is not None else None
        if share is not None:
            tail = f" ({usual})" if usual else ""
            lines.append(f"  Rewritten: {share} of the data written on it{tail}")
        changed = f"{e.changed_blocks:,} blocks of 512 KiB" if e.changed_blocks is not None else ""
        if changed:
            size = f" of the {e.volume_size_gib} GiB volume" if e.volume_size_gib else ""
            percent = (
                f", {e.percent_of_volume:.1f}%{size}" if e.percent_of_volume is not None else ""
            )
            lines.append(f"  Changed since the previous backup: {changed}{percent}")
        if e.reasons:
            lines.append("  Why: " + "; ".join(member_text(r) for r in e.reasons[:3]))
        words = _content_words(member)
        if words:
            lines.append(f"  Content: {words}")
    if SignalKind.SNAPSHOT_DELETED in member.kinds:
        lines.append(
            "  Its previous backup snapshot was deleted before it could be compared "
            "(deleting recovery points often precedes encryption)"
        )
    instance = e.instance_id or member.instance_id
    if instance:
        name = f' "{member_text(e.instance_name)}"' if e.instance_name else ""
        lines.append(f"  Attached to: {instance}{name}")
    if e.last_clean_snapshot_id:
        lines.append(f"  Restore from: {e.last_clean_snapshot_id} (the last clean snapshot)")
    if member.scan is not None:
        result = {
            SCAN_THREATS: "THREATS FOUND",
            SCAN_CLEAN: "no threats found",
        }.get(member.scan.result or "", f"{member.scan.state.lower()}, no result")
        lines.append(f"  Malware scan (GuardDuty): {result} (scan job {member.scan.job_id})")
    if member.recovered:
        lines.append(f"  Measured normal again: backup of {_when(member.recovered_at)}")
    volume_link = ec2_link(
        member.volume_arn, member.region, "VolumeDetails:volumeId", member.volume_id
    )
    links = [f"volume {volume_link}"]
    if e.last_clean_snapshot_id:
        links.append(
            "clean snapshot "
            + ec2_link(
                member.volume_arn,
                member.region,
                "SnapshotDetails:snapshotId",
                e.last_clean_snapshot_id,
            )
        )
    if instance:
        links.append(
            "instance "
            + ec2_link(member.volume_arn, member.region, "InstanceDetails:instanceId", instance)
        )
    lines.append(f"  Console (sign in to {member.account}): " + links[0])
    lines.extend(f"    {link}" for link in links[1:])
    return lines


def order(members: Sequence[Member]) -> list[Member]:
    """Most severe first, then the most rewritten, then by volume id."""
    return sorted(
        members,
        key=lambda m: (
            -int(m.threats),
            -m.severity.rank,
            -(m.evidence.share or 0.0),
            m.volume_id,
        ),
    )


def render_incident(
    intent: Intent,
    incident: Incident,
    members: Sequence[Member],
    names: Mapping[str, str],
    rules: Rules,
    volume_limit: int,
    now: datetime,
) -> Notice:
    """The notification of one incident change.

    Args:
        intent: what to tell.
        incident: the incident after the change.
        members: its volumes (combined states).
        names: account names.
        rules: the settings (severity).
        volume_limit: volumes described in the body.
        now: when it is recorded.
    """
    ranked = order(members)
    level = severity(incident, rules)
    accounts = sorted(incident.accounts)
    lines = [
        f"Backup anomaly incident {incident.id}: {intent.kind.value.upper()}, "
        f"severity {level.value.upper()}",
        "",
        f"{_where(incident, names)}; status {incident.status.value}.",
        "Accounts: "
        + "; ".join(
            f"{account_label(a, names)}: {incident.accounts[a].volumes} volume(s), "
            f"worst {incident.accounts[a].worst.value}"
            for a in accounts
        ),
        "Regions: " + ", ".join(sorted(incident.regions)),
        f"Backups between {_when(incident.first_at)} and {_when(incident.last_at)}.",
    ]
    if incident.threats:
        lines.append("A malware scan of one of its recovery points FOUND THREATS.")
    if intent.kind is NoticeKind.MERGED:
        lines.append(f"It is now part of incident {intent.merged_into}.")
    changes = _changes(intent.before, intent.after, names)
    if changes and intent.kind is not NoticeKind.OPENED:
        lines += ["", "Changed since the last message:"] + [f"- {c}" for c in changes]
    lines += ["", "First three things to do:"]
    lines += [f"{n}. {t}" for n, t in enumerate(_todo(incident, members, intent.kind), 1)]
    if intent.kind is not NoticeKind.MERGED:
        lines += ["", "Volumes, most severe first:"]
        for member in ranked[:volume_limit]:
            lines += _volume_lines(member, names)
        if len(ranked) > volume_limit:
            lines.append(
                f"... and {len(ranked) - volume_limit} more volume(s): every one is in the "
                f"audit queue's JSON (notification {intent.notice_id}) and in build.py report."
            )
    lines += ["", f"Notification {intent.notice_id}, {_when(now)}."]
    body = _fit("\n".join(lines), BODY_MAX_BYTES)
    audit = _audit(intent, incident, ranked, names, level, now)
    return Notice(
        id=intent.notice_id,
        subject_id=incident.id,
        seq=intent.seq,
        kind=intent.kind.value,
        email=intent.email,
        subject=_subject(intent, incident, names),
        body=body,
        audit=audit,
        created_at=now,
    )


def _fit(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 40].decode(errors="ignore") + "\n... (cut to fit the message limit)"


def _audit(
    intent: Intent,
    incident: Incident,
    ranked: Sequence[Member],
    names: Mapping[str, str],
    level: Severity,
    now: datetime,
) -> str:
    document: dict[str, Any] = {
        "type": AUDIT_TYPE,
        "notificationId": intent.notice_id,
        "kind": intent.kind.value,
        "email": intent.email,
        "severity": level.value,
        "incident": incident.to_json(),
        "accountNames": {a: names[a] for a in sorted(incident.accounts) if a in names},
        "told": intent.after.to_json(),
        "previouslyTold": intent.before.to_json() if intent.before else None,
        "mergedInto": intent.merged_into,
        "generatedAt": iso(now),
        "volumes": [m.to_json() for m in ranked],
    }
    text = json.dumps(document, sort_keys=True)
    kept = len(ranked)
    while len(text.encode()) > AUDIT_MAX_BYTES and kept > 0:
        # Too many volumes for one message: keep the most severe, say how many are left.
        kept = kept * 3 // 4
        document["volumes"] = document["volumes"][:kept]
        document["volumesOmitted"] = len(ranked) - kept
        text = json.dumps(document, sort_keys=True)
    return text


# -- operational notifications ----------------------------------------------------------

_OPS_TODO = {
    OpsKind.SILENT: [
        "Check the detector in that account and region: its dead-letter queue, its errors "
        "(CloudWatch Logs), and that its stack instance is CURRENT (build.py drift).",
        "Check that AWS Backup still runs there: the plan, its selection, the jobs of the "
        "last two intervals.",
        "Check the forwarding to the central bus: the rule, its role and the bus policy "
        "(permissions revoked there silence an account too).",
    ],
    OpsKind.STOPPED: [
        "Find out why the volume's backups stopped: the backup plan and its selection (tags "
        "removed?), AWS Backup jobs, CloudTrail for changes to either.",
        "Stopping backups often precedes encryption: check the volume's instance for "
        "activity now, before its last backup ages out.",
        "Keep the last recovery points of the volume until you know.",
    ],
    OpsKind.FORGED: [
        "Find who put the event: CloudTrail PutEvents in the sending account.",
        "Check the central bus policy admits only your organization, and the sender's "
        "detector role and code (an event naming another account is never ours).",
        "Treat the sending account as possibly compromised until you know.",
    ],
}


def _ops_line(item: OpsIncident, names: Mapping[str, str], now: datetime) -> str:
    where = account_label(item.account, names)
    if item.region:
        where += f", {item.region}"
    details = item.details
    if item.kind is OpsKind.SILENT:
        if item.status is Status.OPEN:
            interval = float(details.get("intervalSeconds") or 86400)
            heard = details.get("lastHeardAt")
            quiet = (now - item.since).total_seconds()
            what = "nothing heard" if heard else "never heard from since it was expected"
            return (
                f"- {where}: SILENT: {what} since {_when(item.since)} "
                f"({quiet / interval:.1f} backup intervals of {_hours(interval)}): "
                "no measurement, no heartbeat"
            )
        return f"- {where}: heard from again at {_when(item.last_seen)}"
    if item.kind is OpsKind.STOPPED:
        volume = details.get("volumeId") or item.key
        if item.status is Status.OPEN:
            return (
                f"- {volume} in {where}: BACKUPS STOPPED: last measured backup "
                f"{_when(item.since)} ({item.count} measured backups before it stopped)"
            )
        return f"- {volume} in {where}: measured again ({_when(item.last_seen)})"
    claimed = ", ".join(sorted(details.get("claimedAccounts") or []))
    fields = ", ".join(sorted(details.get("fields") or []))
    return (
        f"- events sent by account {where} claim to be about account(s) {claimed} "
        f"({fields}); {item.count} so far, first {_when(item.since)}. They are stored apart "
        "and never attributed to the account they name."
    )


def render_ops(item: OpsIncident, seq: int, digest: str | None, now: datetime,
               names: Mapping[str, str]) -> Notice:  # fmt: skip
    """The notification of one operational incident change (a section of a digest)."""
    line = _ops_line(item, names, now)
    opened = item.status is Status.OPEN
    if item.kind is OpsKind.FORGED:
        subject = f"[SECURITY] Forged backup events from {account_label(item.account, names)}"
    elif item.kind is OpsKind.SILENT:
        state = "silent" if opened else "heard again"
        subject = f"[OPERATIONAL] {account_label(item.account, names)} {item.region}: {state}"
    else:
        state = "backups stopped" if opened else "backed up again"
        subject = f"[OPERATIONAL] {item.details.get('volumeId') or item.key}: {state}"
    body = "\n".join(
        [line, "", "First three things to do:"]
        + [f"{n}. {t}" for n, t in enumerate(_OPS_TODO[item.kind], 1)]
    )
    notice_id = f"{item.sort_key}#{seq}"
    audit = json.dumps(
        {
            "type": OPS_AUDIT_TYPE,
            "notificationId": notice_id,
            "kind": item.kind.value,
            "status": item.status.value,
            "item": item.to_json(),
            "accountName": names.get(item.account),
            "generatedAt": iso(now),
        },
        sort_keys=True,
    )
    return Notice(
        id=notice_id,
        subject_id=item.sort_key,
        seq=seq,
        kind=f"{item.kind.value}_{'opened' if opened else 'resolved'}",
        email=True,
        subject=subject_line(subject),
        body=body,
        audit=audit,
        created_at=now,
        digest=digest,
    )


def digest(notices: Sequence[Notice]) -> tuple[str, str]:
    """One email for several operational notices of one run: subject and body."""
    if len(notices) == 1:
        return notices[0].subject, notices[0].body
    opened = [n for n in notices if n.kind.endswith("_opened")]
    closed = len(notices) - len(opened)
    silent = sum(1 for n in opened if n.kind.startswith(OpsKind.SILENT.value))
    stopped = sum(1 for n in opened if n.kind.startswith(OpsKind.STOPPED.value))
    forged = sum(1 for n in opened if n.kind.startswith(OpsKind.FORGED.value))
    parts = []
    if silent:
        parts.append(f"{silent} account-region(s) silent")
    if stopped:
        parts.append(f"{stopped} volume(s) no longer backed up")
    if forged:
        parts.append(f"{forged} sender(s) of forged events")
    if closed:
        parts.append(f"{closed} back to normal")
    tag = "[SECURITY]" if forged else "[OPERATIONAL]"
    subject = subject_line(f"{tag} Backup anomaly detection: " + ", ".join(parts))
    sections = []
    for kind in OpsKind:
        mine = [n for n in notices if n.kind.startswith(kind.value)]
        if not mine:
            continue
        sections.append("\n".join(n.body.split("\n\n", 1)[0] for n in mine))
        sections.append(
            "First three things to do:\n"
            + "\n".join(f"{i}. {t}" for i, t in enumerate(_OPS_TODO[kind], 1))
        )
    ids = ", ".join(n.id for n in notices)
    body = _fit("\n\n".join(sections) + f"\n\nNotifications {ids}.", BODY_MAX_BYTES)
    return subject, body
