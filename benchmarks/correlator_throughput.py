"""Benchmark: the correlator absorbing a whole organization's backups landing together.

Usage::

    .venv/bin/python benchmarks/correlator_throughput.py            # 10,000 measurements
    .venv/bin/python benchmarks/correlator_throughput.py --quick    # 1,000 (seconds)

DynamoDB, SNS and SQS are a moto server in its own process on 127.0.0.1 (so its CPU is
not the correlator's), reached through the real boto3 clients the handler builds
(``AWS_ENDPOINT_URL``). The events are a realistic mix: 100 account-regions of 100
volumes each, every volume measured once, the backups completing over one hour (verdict
``none`` for about 99 %), and 30 anomalies clustered in three accounts within ten minutes,
each sent twice as the detector sends it (``Backup Change Measured`` and ``Backup Anomaly
Detected``). They go through the real
``lambda_handler`` in SQS batches of 10 (the default batch size), one invocation after the
other: one execution environment.

The same events go, on fresh tables of the same server, through two other ways of storing
the records, side by side:

* ``conditional``: one conditional PutItem per record (``attribute_not_exists``), the
  usual way to deduplicate;
* ``naive``: GetItem to find a duplicate, then PutItem, then a "last heard" UpdateItem,
  per record.

Printed per variant: measurements a minute achieved, DynamoDB calls per measurement (by
operation), and the incidents and emails that resulted (which must be the same). Timings
depend on the machine and on moto; the calls per measurement do not.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "lambda"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# No AWS account is involved: the moto server accepts any signature.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402

from correlator import handler  # noqa: E402
from correlator.store import Store, create_table  # noqa: E402

REGION = "us-east-1"
BATCH = 10
SOURCE = "backup-anomaly-detection"
T0 = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)
ANOMALOUS_ACCOUNTS = ("100000000003", "100000000017", "100000000042")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen, str]:
    """A moto server in a child process; returns it and its URL once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):  # bounded: about 20 s
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the moto server did not start")


def events(count: int) -> list[dict]:
    """``count`` measurement events (about 1 % anomalies, each also as an anomaly event)."""
    out = []
    anomalies = 30 if count >= 1000 else 3
    for n in range(count - anomalies):
        account = f"1{n % 50:011d}"
        region = ("eu-west-1", "us-east-2")[(n // 50) % 2]
        # The organization's backups complete over one hour and arrive in that order.
        out.append(_event(account, region, f"vol-{n:08x}", n * 60 // count, "none", 0.02))
    for n in range(anomalies):
        account = ANOMALOUS_ACCOUNTS[n % 3]
        severity = ("medium", "high", "critical")[n % 3]
        detail = _event(account, "eu-west-1", f"vol-a{n:07x}", 20 + n // 3, severity, 0.9)
        out.append(detail)
        twin = json.loads(json.dumps(detail))
        twin["detail-type"] = "Backup Anomaly Detected"
        twin["id"] = str(uuid.uuid4())
        out.append(twin)
    # Anomalies arrive among the rest, not at the end.
    step = max(1, len(out) // (2 * anomalies + 1))
    tail = out[count - anomalies :]
    body = out[: count - anomalies]
    for position, event in enumerate(tail):
        body.insert(min(len(body), (position + 1) * step), event)
    return body


def _event(account, region, volume, minute, severity, share) -> dict:
    arn = f"arn:aws:ec2:{region}:{account}:volume/{volume}"
    completion = T0 + timedelta(minutes=minute)
    detail = {
        "measurementId": f"{arn}/snap-{volume[4:]}a/snap-{volume[4:]}b",
        "account": account,
        "region": region,
        "volumeId": volume,
        "volumeArn": arn,
        "previousSnapshotId": f"snap-{volume[4:]}a",
        "snapshotId": f"snap-{volume[4:]}b",
        "changedBlocks": 180000 if severity != "none" else 900,
        "changedBytes": 900 * 524288,
        "percentOfVolume": 0.4,
        "volumeSizeGiB": 100,
        "writtenBlocks": 200000,
        "backupJobId": f"job-{volume}",
        "resourceType": "EBS",
        "completionTime": completion.isoformat(),
        "measuredAt": (completion + timedelta(minutes=2)).isoformat(),
        "content": {
            "sampledBlocks": 64,
            "pages": 512,
            "incompressibleBefore": 40,
            "incompressibleAfter": 480 if severity != "none" else 41,
        },
        "verdict": {
            "severity": severity,
            "score": 0.1,
            "reasons": [],
            "expected": {"low": 0.01, "high": 0.05, "median": 0.02},
            "share": share,
            "multiple": share / 0.02,
        },
        "lateForAlarms": False,
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Backup Change Measured",
        "source": SOURCE,
        "account": account,
        "time": (completion + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [arn],
        "detail": detail,
    }


def _conditional(self: Store, items):
    """One conditional PutItem per record."""
    failed = set()
    for position, item in enumerate(items):
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # a duplicate
        except Exception:  # noqa: BLE001 - that record fails, as the real one would
            failed.add(position)
    return failed


def _naive(self: Store, items):
    """GetItem, PutItem and a "last heard" UpdateItem per record."""
    for item in items:
        key = {"pk": item["pk"], "sk": item["sk"]}
        if self.client.get_item(TableName=self.table, Key=key).get("Item"):
            continue
        self.client.put_item(TableName=self.table, Item=item)
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": "HEARD"}, "sk": {"S": f"AR#{item['account']['S']}"}},
            UpdateExpression="SET lastMeasurementAt = :t",
            ExpressionAttributeValues={":t": item["completionTime"]},
        )
    return set()


VARIANTS = {"batched": None, "conditional": _conditional, "naive": _naive}


def run(variant: str, url: str, batch_events: list[dict]) -> dict:
    table = f"central-{variant}"
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=url)
    create_table(dynamodb, table)
    sns = boto3.client("sns", region_name=REGION, endpoint_url=url)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=url)
    topic = sns.create_topic(Name=f"alerts-{variant}")["TopicArn"]
    inbox = sqs.create_queue(QueueName=f"inbox-{variant}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    audit = sqs.create_queue(QueueName=f"audit-{variant}")["QueueUrl"]
    os.environ.update(
        CENTRAL_TABLE=table, ALERT_TOPIC_ARN=topic, AUDIT_QUEUE_URL=audit, AWS_ENDPOINT_URL=url
    )
    handler.reset()
    correlator = handler.get_correlator()
    correlator.clock = lambda: T0 + timedelta(hours=2)
    patch = VARIANTS[variant]
    if patch is not None:
        correlator.store.put_items = patch.__get__(correlator.store)  # type: ignore[method-assign]
    calls: Counter[str] = Counter()
    correlator.clients.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.update([model.name])
    )
    quiet = open(os.devnull, "w")  # noqa: SIM115 - the JSON log lines are not the output
    stdout, sys.stdout = sys.stdout, quiet
    started = time.perf_counter()
    cpu = time.process_time()
    try:
        for start in range(0, len(batch_events), BATCH):
            chunk = batch_events[start : start + BATCH]
            records = [
                {
                    "messageId": f"{variant}-{start + n}",
                    "body": json.dumps(e),
                    "eventSource": "aws:sqs",
                }
                for n, e in enumerate(chunk)
            ]
            result = handler.lambda_handler({"Records": records}, None)
            if result["batchItemFailures"]:
                raise RuntimeError(f"{variant}: records failed: {result}")
    finally:
        sys.stdout = stdout
        quiet.close()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    index = correlator.store.read_index()
    emails = 0
    for _ in range(50):  # bounded
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        emails += len(messages)
        for m in messages:
            sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
    measurements = sum(1 for e in batch_events if e["detail-type"] == "Backup Change Measured")
    return {
        "variant": variant,
        "seconds": elapsed,
        "cpu": cpu,
        "events": len(batch_events),
        "measurements": measurements,
        "calls": calls,
        "incidents": [(i.volumes, sorted(i.accounts)) for i in index.incidents],
        "emails": emails,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10000, help="measurement events")
    parser.add_argument("--quick", action="store_true", help="1,000 measurements")
    parser.add_argument("--variants", default="batched,conditional,naive")
    args = parser.parse_args()
    count = 1000 if args.quick else max(100, min(args.count, 100000))
    stream = events(count)
    anomalies = sum(1 for e in stream if e["detail"]["verdict"]["severity"] != "none")
    print(
        f"{len(stream)} events ({count} measurements, {anomalies // 2} of them anomalies, each "
        f"also as an anomaly event), SQS batches of {BATCH}, one execution environment, moto "
        f"server in its own process; {os.cpu_count()} cores"
    )
    print(
        f"{'variant':<12} {'meas./min':>10} {'x time':>7} {'CPU ms/meas.':>13} "
        f"{'DynamoDB calls/meas.':>21}  by operation",
        flush=True,
    )
    proc, url = start_moto()
    results = []
    try:
        for variant in args.variants.split(","):
            r = run(variant, url, stream)
            results.append(r)
            base = results[0]
            per_minute = r["events"] / r["seconds"] * 60
            total = sum(r["calls"].values())
            ops = ", ".join(f"{k} {v / r['events']:.3f}" for k, v in sorted(r["calls"].items()))
            print(
                f"{r['variant']:<12} {per_minute:>10,.0f} {r['seconds'] / base['seconds']:>7.2f} "
                f"{1000 * r['cpu'] / r['events']:>13.2f} {total / r['events']:>21.3f}  {ops}",
                flush=True,
            )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    base = results[0]
    same = all(
        r["incidents"] == base["incidents"] and r["emails"] == base["emails"] for r in results
    )
    print(
        f"incidents (volumes, accounts): {base['incidents']}; emails: {base['emails']}; "
        f"the same in every variant: {same}"
    )
    print(
        "meas./min: one execution environment, wall clock, mostly spent waiting on the moto "
        "server; CPU ms/meas.: the correlator's own process (moto excluded), the bound on one "
        "environment when DynamoDB answers at once. Needed: 10,000 a minute; the queue feeds "
        "up to correlator_max_concurrency (default 5) environments at once."
    )


if __name__ == "__main__":
    main()
