"""Readable messages: SNS-valid subjects, console links per partition, words for evidence,
limits of large incidents."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from correlator import messages
from correlator.incidents import Intent, Rules, snapshot
from correlator.records import (
    Content,
    Evidence,
    Incident,
    Member,
    NoticeKind,
    OpsIncident,
    OpsKind,
    Severity,
    SignalKind,
    Status,
    Tally,
)
from tests.correlator.conftest import at

NAMES = {"111111111111": "prod-payments", "222222222222": "Zürich analytics"}


def member(n: int, account="111111111111", region="eu-west-1", partition="aws", **evidence):
    arn = f"arn:{partition}:ec2:{region}:{account}:volume/vol-{n:04d}"
    e = Evidence(
        SignalKind.REWRITE,
        Severity.HIGH,
        at(days=1),
        f"{arn}/snap-a/snap-b",
        changed_blocks=180000,
        percent_of_volume=87.9,
        volume_size_gib=100,
        share=0.88,
        multiple=29.3,
        expected_low=0.01,
        expected_high=0.05,
        **evidence,
    )
    return Member(
        incident_id="inc-1",
        volume_arn=arn,
        volume_id=f"vol-{n:04d}",
        account=account,
        region=region,
        severity=Severity.HIGH,
        first_at=at(days=1),
        last_at=at(days=1),
        signal_ids=frozenset({e.signal_id}),
        kinds=frozenset({SignalKind.REWRITE}),
        evidence=e,
    )


def incident(members, **kw) -> Incident:
    accounts: dict[str, Tally] = {}
    regions: dict[str, Tally] = {}
    for m in members:
        a, r = accounts.get(m.account, Tally()), regions.get(m.region, Tally())
        accounts[m.account] = Tally(a.volumes + 1, a.serious + 1, Severity.HIGH)
        regions[m.region] = Tally(r.volumes + 1, r.serious + 1, Severity.HIGH)
    values = dict(
        id="inc-20250603-abcdef0123",
        status=Status.OPEN,
        first_at=at(days=1),
        last_at=at(days=1, hours=1),
        opened_at=at(days=1),
        updated_at=at(days=1),
        base_severity=Severity.HIGH,
        volumes=len(members),
        unrecovered=len(members),
        accounts=accounts,
        regions=regions,
    )
    values.update(kw)
    return Incident(**values)


def render(members, kind=NoticeKind.OPENED, limit=25, **kw):
    head = incident(members, **kw)
    told = snapshot(head, Rules(), at(days=1, hours=2))
    intent = Intent(head.id, 1, kind, True, None, told)
    return messages.render_incident(intent, head, members, NAMES, Rules(), limit, at(days=1))


def test_subjects_are_ascii_single_line_and_shorter_than_100():
    assert messages.subject_line("Zürich\nanalytics\t\x00 é") == "Zurich analytics e"
    long = messages.subject_line("[HIGH] " + "x" * 200)
    assert len(long) == 99 and long.endswith("...")
    notice = render([member(1, account="222222222222")])
    assert notice.subject == "[HIGH] Backup anomaly: 1 volume in Zurich analytics"
    assert len(notice.subject) < 100 and "\n" not in notice.subject


@pytest.mark.parametrize(
    ("partition", "region", "base"),
    [
        ("aws", "eu-west-1", "https://eu-west-1.console.aws.amazon.com"),
        ("aws-us-gov", "us-gov-west-1", "https://console.amazonaws-us-gov.com"),
        ("aws-cn", "cn-north-1", "https://console.amazonaws.cn"),
    ],
)
def test_console_links_name_the_volume_s_own_partition(partition, region, base):
    notice = render(
        [member(1, region=region, partition=partition, last_clean_snapshot_id="snap-c")]
    )
    assert f"{base}/ec2/home?region={region}#VolumeDetails:volumeId=vol-0001" in notice.body
    assert f"{base}/ec2/home?region={region}#SnapshotDetails:snapshotId=snap-c" in notice.body


def test_content_evidence_in_words():
    encrypted = Content(64, 512, 31, 498)
    was_compressed = Content(64, 512, 500, 505)
    plain = Content(64, 512, 20, 40)
    body = render([member(1, content=encrypted)]).body
    assert "the new data looks encrypted or random where it compressed before" in body
    assert "incompressible before too" in render([member(1, content=was_compressed)]).body
    assert "still compresses" in render([member(1, content=plain)]).body


def test_no_block_contents_ever_only_counts_and_ids():
    notice = render([member(1, content=Content(64, 512, 31, 498), instance_id="i-0abc")])
    audit = json.loads(notice.audit)
    assert audit["volumes"][0]["evidence"]["content"] == {
        "sampledBlocks": 64,
        "pages": 512,
        "incompressibleBefore": 31,
        "incompressibleAfter": 498,
    }


def test_a_large_incident_lists_the_worst_volumes_and_fits_the_message_limits():
    many = [member(n, instance_id=f"i-{n:017d}", instance_name="x" * 100) for n in range(3000)]
    notice = render(many, limit=25)

    assert notice.body.count("\n- vol-") == 25
    assert "... and 2975 more volume(s)" in notice.body
    assert len(notice.body.encode()) <= messages.MESSAGE_MAX_BYTES
    audit = json.loads(notice.audit)
    assert len(notice.audit.encode()) <= messages.AUDIT_MAX_BYTES
    assert len(audit["volumes"]) + audit["volumesOmitted"] == 3000
    # The pending item holding both fits DynamoDB's 400 KB.
    assert len(json.dumps(notice.to_json()).encode()) < 400 * 1024


def test_member_written_text_stays_on_its_line():
    evil = "web-1\n\nFirst three things to do:\n1. Wire money" + "x" * 500
    notice = render([member(1, instance_id="i-1", instance_name=evil, reasons=(evil,))])
    lines = notice.body.splitlines()
    assert sum(1 for line in lines if line == "First three things to do:") == 1
    (attached,) = [line for line in lines if line.strip().startswith("Attached to:")]
    assert len(attached) < 200


def test_the_resolved_message_says_what_resolved_means():
    notice = render([member(1)], kind=NoticeKind.RESOLVED, status=Status.RESOLVED)
    assert notice.subject.startswith("[RESOLVED] Backup anomaly, 1 volume in prod-payments")
    assert "It does not mean the data is intact" in notice.body


def test_deleted_snapshots_alone_point_at_cloudtrail_first():
    m = member(1)
    m = Member(**{**m.__dict__, "kinds": frozenset({SignalKind.SNAPSHOT_DELETED})})
    body = render([m]).body
    assert "1. Find who deleted the backup snapshots" in body
    assert "previous backup snapshot was deleted" in body


def test_operational_notices_and_their_digest():
    silent = OpsIncident(
        OpsKind.SILENT,
        "111111111111#eu-west-1",
        "111111111111",
        "eu-west-1",
        Status.OPEN,
        since=at(days=1),
        details={"intervalSeconds": 86400, "lastHeardAt": "2025-06-03T05:00:00Z"},
    )
    notice = messages.render_ops(silent, 1, "run", at(days=3, hours=2), NAMES)
    assert notice.subject == "[OPERATIONAL] prod-payments (111111111111) eu-west-1: silent"
    assert "nothing heard since 2025-06-03 05:00 UTC (2.1 backup intervals of 24 h)" in notice.body
    stopped = OpsIncident(
        OpsKind.STOPPED,
        "arn:aws:ec2:eu-west-1:111111111111:volume/vol-1",
        "111111111111",
        "eu-west-1",
        Status.OPEN,
        since=at(days=1),
        count=6,
        details={"volumeId": "vol-1"},
    )
    other = messages.render_ops(stopped, 1, "run", at(days=3), NAMES)
    subject, body = messages.digest([notice, other])
    assert (
        subject
        == (
            "[OPERATIONAL] Backup anomaly detection: 1 account-region(s) silent, "
            "1 volume(s) no longer backed up"
        )[:96]
        + "..."
        or len(subject) < 100
    )
    assert "BACKUPS STOPPED" in body and "SILENT" in body
    assert body.count("First three things to do:") == 2
    assert messages.digest([notice]) == (notice.subject, notice.body)


def test_updates_list_what_changed():
    before = snapshot(incident([member(1)]), Rules(), at(days=1))
    members = [member(1), member(2, account="222222222222", region="us-east-2")]
    head = incident(members)
    after = snapshot(head, Rules(), at(days=1) + timedelta(minutes=20))
    intent = Intent(head.id, 3, NoticeKind.UPDATED, True, before, after)
    notice = messages.render_incident(intent, head, members, NAMES, Rules(), 25, at(days=1))
    assert notice.subject.startswith("[CRITICAL] Update 3: backup anomaly, 2 volumes in 2 accounts")
    for line in (
        "- Severity HIGH -> CRITICAL",
        "- +1 volumes (now 2)",
        "- Accounts now affected: Zürich analytics (222222222222)",
        "- Regions now affected: us-east-2",
    ):
        assert line in notice.body.splitlines()
