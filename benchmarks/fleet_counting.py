"""Benchmark: many volumes counted at once under one account quota, shared or not.

Usage::

    .venv/bin/python benchmarks/fleet_counting.py                 # 8 x 512 GiB, fully rewritten
    .venv/bin/python benchmarks/fleet_counting.py --volumes 4 --size-gib 128   # quicker
    .venv/bin/python benchmarks/fleet_counting.py --quick         # smoke run (seconds)

Ransomware rewrites every volume of an account together, so every volume's count runs at
once. Each volume here is counted by its own process (a detector invocation of its own)
through the real ``count_changed_blocks`` and a real boto3 client, against one fake EBS
direct API in its own process holding the account quota (50 ListChangedBlocks requests/s,
a bucket of 5, 20 ms latency: the same as ``benchmarks/changed_blocks.py``). The shared
budget's DynamoDB table is served by moto (``ThreadedMotoServer`` on 127.0.0.1, in its own
process). Every process builds and warms up its clients (one call each) before a barrier,
then all counts start together (``--stagger`` spreads the starts): in Lambda each
invocation has its own CPU for that start-up, here they would share two cores.

Side by side in one run:

* ``per-count``: today's behaviour, every count with its own budget (``--per-count-rate``,
  the deployed default 40/s), so N counts ask the account for N times that;
* ``shared``: every count holds a lease on the account's budget (``budget.SharedBudget``,
  ``--account-rate``, the quota itself by default);
* ``shared, one count``: a single volume as large as the whole fleet, alone on the shared
  budget, which must still run at the quota;
* with ``--baseline FILE`` (a ``changed_blocks.py`` of another revision, e.g.
  ``git show main:lambda/backup_anomaly/changed_blocks.py > /tmp/main_cb.py``), also
  ``baseline per-count``: that revision's count, each with its own budget, in the same run.

For each: whether every count is exact, the fleet's wall time against the account bound
(all pages / 50 s), the throttled share of requests, and the DynamoDB writes the leases
cost. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "lambda"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_key, _value)

from testing.fakes.ebs_direct import FakeEbsDirectProcess, fraction_layout  # noqa: E402

QUOTA = 50.0
LATENCY = 0.020
BURST = 5.0
PAGE = 10000
TABLE = "backup-anomaly-state"
REGION = "us-east-1"
WARM_UP = ("snap-0eee0001", "snap-0eee0002")
START_TIMEOUT = 120.0  # seconds the children get to import boto3 and reach the barrier
RUN_TIMEOUT = 1800.0  # no count of this benchmark may run longer


@dataclass(frozen=True)
class Count:
    """One process's count, as it reports it."""

    blocks: int
    requests: int
    started: float
    ended: float
    lease_writes: int


@dataclass(frozen=True)
class Run:
    """One mode's fleet."""

    mode: str
    volumes: int
    pages: int
    exact: bool
    seconds: float
    requests: int
    throttled: int
    lease_writes: int


# --- the moto server (DynamoDB) in a process of its own ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_moto(port: int, ready, stop) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    stop.wait(RUN_TIMEOUT * 4)
    server.stop()


def _dynamodb(url: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


# --- one count in a process of its own --------------------------------------------------------


def _load_count(path: str | None):
    """``count_changed_blocks`` of this tree, or of another revision's file."""
    if not path:
        from backup_anomaly.changed_blocks import count_changed_blocks

        return count_changed_blocks
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_changed_blocks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.count_changed_blocks


def _count_in_child(
    ebs_url, dynamodb_url, first, second, mode, rate, workers, ready, go, delay, results, source
):
    """Child process body: build clients, wait for the start, count, report."""
    import boto3
    from botocore.config import Config

    from backup_anomaly.budget import LIST_CHANGED_BLOCKS, SharedBudget

    count_changed_blocks = _load_count(source)

    ebs = boto3.client(
        "ebs",
        endpoint_url=ebs_url,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=workers + 2),
    )
    leases = []
    budget = None
    if mode.startswith("shared"):

        class Recording(SharedBudget):
            @contextmanager
            def lease(self, cap=None):  # keeps the lease, for its write count
                with super().lease(cap) as held:
                    leases.append(held)
                    yield held

        budget = Recording(_dynamodb(dynamodb_url), TABLE, LIST_CHANGED_BLOCKS, rate)
    # A client's first call loads its service model and opens its connection: CPU that
    # eight processes would otherwise fight for on two cores at the start (in Lambda each
    # has its own). Done before the barrier; it may be throttled, which does not matter.
    try:
        ebs.list_changed_blocks(FirstSnapshotId=WARM_UP[0], SecondSnapshotId=WARM_UP[1])
        _dynamodb(dynamodb_url).get_item(TableName=TABLE, Key={"VolumeArn": {"S": "warm-up"}})
    except Exception:  # noqa: BLE001, S110 - a warm-up only
        pass
    ready.release()
    if not go.wait(START_TIMEOUT):
        results.put(None)
        return
    time.sleep(delay)
    started = time.time()
    extra = {"budget": budget} if budget is not None else {}
    result = count_changed_blocks(
        ebs, first, second, max_requests_per_second=rate, workers=workers, **extra
    )
    ended = time.time()
    writes = sum(lease.writes for lease in leases)
    results.put(Count(result.changed_blocks, result.api_calls, started, ended, writes))


def _fleet(
    fake, dynamodb_url, mode, pairs, rate, workers, stagger, source=None
) -> tuple[list[Count], dict]:
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = []
    for i, (first, second) in enumerate(pairs):
        delay = stagger * i / max(1, len(pairs) - 1) if stagger else 0.0
        args = (fake.url, dynamodb_url, first, second, mode, rate, workers, ready, go, delay)
        procs.append(
            ctx.Process(target=_count_in_child, args=(*args, results, source), daemon=True)
        )
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=START_TIMEOUT):
            raise SystemExit("a counting process did not start")
    fake.reset_stats()
    go.set()
    counts = [results.get(timeout=RUN_TIMEOUT) for _ in procs]
    for p in procs:
        p.join(30)
    if any(c is None for c in counts):
        raise SystemExit("a counting process gave up waiting for the start")
    return counts, fake.stats()


def _measure(
    fake, dynamodb_url, mode, n, size_gib, rate, workers, stagger, tag, source=None
) -> Run:
    layout = fraction_layout(size_gib, 1.0)
    pairs = []
    for i in range(n):
        first, second = f"snap-{tag:02x}{i:04x}0001", f"snap-{tag:02x}{i:04x}0002"
        fake.add_layout(first, second, layout)
        pairs.append((first, second))
    counts, stats = _fleet(fake, dynamodb_url, mode, pairs, rate, workers, stagger, source)
    pages = n * -(-layout.count() // PAGE)
    seconds = max(c.ended for c in counts) - min(c.started for c in counts)
    return Run(
        mode,
        n,
        pages,
        all(c.blocks == layout.count() for c in counts),
        seconds,
        stats.get("requests", 0),
        stats.get("throttled", 0),
        sum(c.lease_writes for c in counts),
    )


def _table(rows: list[list[str]], headers: list[str], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print(" | ".join(headers))
        for row in rows:
            print(" | ".join(row))
        return
    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the fleet in every mode and print the table; non-zero exit on a wrong count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument("--size-gib", type=int, default=512)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-count-rate", type=float, default=40.0)
    parser.add_argument("--account-rate", type=float, default=QUOTA)
    parser.add_argument("--stagger", type=float, default=0.0, help="seconds over which to start")
    parser.add_argument("--quick", action="store_true", help="3 x 32 GiB, seconds")
    parser.add_argument("--baseline", help="another revision's changed_blocks.py to compare")
    args = parser.parse_args(argv)
    if args.quick:
        args.volumes, args.size_gib = 3, 32

    port = _free_port()
    ctx = multiprocessing.get_context("spawn")
    moto_ready, moto_stop = ctx.Event(), ctx.Event()
    moto = ctx.Process(target=_serve_moto, args=(port, moto_ready, moto_stop), daemon=True)
    moto.start()
    if not moto_ready.wait(START_TIMEOUT):
        raise SystemExit("moto server did not start")
    dynamodb_url = f"http://127.0.0.1:{port}"
    _dynamodb(dynamodb_url).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "VolumeArn", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "VolumeArn", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    n, size = args.volumes, args.size_gib
    plan = [
        ("per-count", n, size, args.per_count_rate, None),
        ("shared", n, size, args.account_rate, None),
        ("shared, one count", 1, n * size, args.account_rate, None),
    ]
    if args.baseline:
        plan.insert(0, ("baseline per-count", n, size, args.per_count_rate, args.baseline))
    runs = []
    try:
        with FakeEbsDirectProcess(requests_per_second=QUOTA, burst=BURST, latency=LATENCY) as fake:
            fake.add_pair(*WARM_UP, 1, [(0, 1)])
            for tag, (mode, volumes, gib, rate, source) in enumerate(plan):
                run = _measure(
                    fake,
                    dynamodb_url,
                    mode,
                    volumes,
                    gib,
                    rate,
                    args.workers,
                    args.stagger,
                    tag,
                    source,
                )
                runs.append(run)
                print(f"done {mode}: {run.seconds:.2f}s", flush=True)
    finally:
        moto_stop.set()
        moto.join(10)

    headers = [
        "mode",
        "volumes",
        "pages",
        "exact",
        "fleet s",
        "account bound s",
        "fleet / bound",
        "requests",
        "throttled",
        "throttled %",
        "lease writes",
    ]
    rows = []
    for run in runs:
        bound = run.pages / QUOTA
        rows.append(
            [
                run.mode,
                str(run.volumes),
                f"{run.pages:,}",
                "yes" if run.exact else "NO",
                f"{run.seconds:.2f}",
                f"{bound:.2f}",
                f"{run.seconds / bound:.2f}",
                f"{run.requests:,}",
                f"{run.throttled:,}",
                f"{100 * run.throttled / max(1, run.requests):.1f}",
                f"{run.lease_writes:,}" if run.mode.startswith("shared") else "-",
            ]
        )
    title = (
        f"{n} x {size} GiB fully rewritten, one process per volume, one account quota "
        f"({QUOTA:.0f} req/s, bucket {BURST:.0f}, {LATENCY * 1000:.0f} ms); per-count budget "
        f"{args.per_count_rate:g}/s, shared budget {args.account_rate:g}/s; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    _table(rows, headers, title)
    return 0 if all(run.exact for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
