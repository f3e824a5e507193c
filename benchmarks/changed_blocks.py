"""Benchmark: counting changed blocks at the speed of the ListChangedBlocks quota.

Usage::

    .venv/bin/python benchmarks/changed_blocks.py            # 1, 4, 16 TiB x 1, 50, 100 %
    .venv/bin/python benchmarks/changed_blocks.py --quick    # small smoke run (seconds)

The fake EBS direct API (``testing/fakes/ebs_direct.py``) runs in its own process with the
account quota (50 requests/s, a bucket of 5) and 20 ms latency per request. Every count runs
in a fresh child process, so each peak-RSS figure is that count's own process (interpreter,
boto3 and the count), untouched by the server or by earlier runs. For each case the same run
measures ``count_changed_blocks`` and the plain sequential boto3 loop (NextToken until
absent, every page parsed by botocore), checks both against the layout's exact count, and
prints the quota bound (pages / 50 s) with both times' ratios to it. The same run also counts
each case with sampling on (``sample_size``, default 256: the reservoir, its entries read out
of the raw pages, saved with the result) and prints its time and CPU next to sampling off.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "lambda"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# No AWS account is involved: the fake checks that requests are signed, not by whom.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_key, _value)

from testing.fakes.ebs_direct import BLOCKS_PER_GIB, FakeEbsDirectProcess, fraction_layout  # noqa: E402

QUOTA = 50.0
LATENCY = 0.020
BURST = 5.0
PAGE = 10000


@dataclass(frozen=True)
class Run:
    """One measured count, as reported by its child process."""

    blocks: int
    requests: int
    seconds: float
    rss_before_mib: float
    peak_rss_mib: float
    cpu_seconds: float = 0.0
    samples: int = 0


@dataclass(frozen=True)
class Case:
    """A volume size and share of changed blocks."""

    size_gib: int
    fraction: float

    @property
    def label(self) -> str:
        size = f"{self.size_gib // 1024} TiB" if self.size_gib >= 1024 else f"{self.size_gib} GiB"
        return f"{size} {self.fraction:.0%}"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(url: str):
    import boto3

    return boto3.client("ebs", endpoint_url=url, region_name="us-east-1")


def _run_fast(url: str, first: str, second: str, workers: int, sample_size: int = 0) -> Run:
    """Child process: our concurrent count (sampling ``sample_size`` blocks, or not)."""
    from backup_anomaly.changed_blocks import count_changed_blocks

    client = _client(url)
    before = _rss_mib()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = count_changed_blocks(
        client,
        first,
        second,
        max_requests_per_second=QUOTA,
        workers=workers,
        sample_size=sample_size,
    )
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    assert result.complete
    assert len(result.samples) == min(sample_size, result.changed_blocks)
    return Run(
        result.changed_blocks,
        result.api_calls,
        seconds,
        before,
        _rss_mib(),
        cpu,
        len(result.samples),
    )


def _run_sequential(url: str, first: str, second: str) -> Run:
    """Child process: the plain boto3 loop, every page parsed by botocore."""
    client = _client(url)
    before = _rss_mib()
    start = time.perf_counter()
    blocks = requests = 0
    token = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_changed_blocks(
            FirstSnapshotId=first, SecondSnapshotId=second, MaxResults=PAGE, **extra
        )
        requests += 1
        blocks += len(page.get("ChangedBlocks", []))
        token = page.get("NextToken")
        if not token:
            break
    return Run(blocks, requests, time.perf_counter() - start, before, _rss_mib())


def _in_child(fn, *args) -> Run:
    """Run ``fn`` in a fresh process, so its peak RSS is its own."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, max_tasks_per_child=1) as ex:
        return ex.submit(fn, *args).result()


def _measure(fake, case: Case, index: int, workers: int, sequential: bool, sample_size: int):
    first, second = f"snap-{index:04x}0001", f"snap-{index:04x}0002"
    expected = fake.add_layout(first, second, fraction_layout(case.size_gib, case.fraction)).count()
    fake.reset_stats()
    fast = _in_child(_run_fast, fake.url, first, second, workers)
    throttled = fake.stats().get("throttled", 0)
    sampled = _in_child(_run_fast, fake.url, first, second, workers, sample_size)
    seq = _in_child(_run_sequential, fake.url, first, second) if sequential else None
    for run in (fast, sampled, seq):
        if run is not None and run.blocks != expected:
            raise SystemExit(f"{case.label}: counted {run.blocks}, expected {expected}")
    return expected, fast, sampled, seq, throttled


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
    Console(width=260).print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; non-zero exit on a wrong count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small volumes, seconds")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-sequential", action="store_true", help="skip the boto3 loop")
    parser.add_argument("--sizes", help="comma-separated volume sizes in GiB")
    parser.add_argument("--fractions", help="comma-separated shares changed, e.g. 0.01,1")
    parser.add_argument("--sample-size", type=int, default=256, help="blocks sampled when on")
    args = parser.parse_args(argv)
    sizes = [8, 32] if args.quick else [1024, 4096, 16384]
    fractions = [0.01, 1.0] if args.quick else [0.01, 0.5, 1.0]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    if args.fractions:
        fractions = [float(x) for x in args.fractions.split(",")]
    cases = [Case(s, f) for s in sizes for f in fractions]

    headers = [
        "case",
        "changed blocks",
        "pages",
        "our requests",
        "our s",
        "quota bound s",
        "ours / bound",
        "boto3 loop s",
        "loop / bound",
        "speed-up",
        "our peak RSS MiB",
        "loop peak RSS MiB",
        "throttled",
        "our CPU s",
        "sampling s",
        "sampling / off",
        "sampling CPU s",
        "sampling RSS MiB",
    ]
    rows = []
    with FakeEbsDirectProcess(requests_per_second=QUOTA, burst=BURST, latency=LATENCY) as fake:
        for i, case in enumerate(cases):
            blocks, fast, sampled, seq, throttled = _measure(
                fake, case, i, args.workers, not args.no_sequential, args.sample_size
            )
            pages = seq.requests if seq else max(1, -(-blocks // PAGE))
            bound = pages / QUOTA
            rows.append(
                [
                    case.label,
                    f"{blocks:,}",
                    f"{pages:,}",
                    f"{fast.requests:,}",
                    f"{fast.seconds:.2f}",
                    f"{bound:.2f}",
                    f"{fast.seconds / bound:.2f}",
                    f"{seq.seconds:.2f}" if seq else "-",
                    f"{seq.seconds / bound:.2f}" if seq else "-",
                    f"{seq.seconds / fast.seconds:.1f}x" if seq else "-",
                    f"{fast.peak_rss_mib:.0f}",
                    f"{seq.peak_rss_mib:.0f}" if seq else "-",
                    str(throttled),
                    f"{fast.cpu_seconds:.2f}",
                    f"{sampled.seconds:.2f}",
                    f"{sampled.seconds / fast.seconds:.3f}",
                    f"{sampled.cpu_seconds:.2f}",
                    f"{sampled.peak_rss_mib:.0f}",
                ]
            )
            print(
                f"done {case.label}: {fast.seconds:.2f}s, sampling {sampled.seconds:.2f}s"
                + (f", loop {seq.seconds:.2f}s" if seq else ""),
                flush=True,
            )
        server_rss = fake.peak_rss_kib() / 1024
    title = (
        f"ListChangedBlocks count vs quota ({QUOTA:.0f} req/s, {LATENCY * 1000:.0f} ms latency, "
        f"{BLOCKS_PER_GIB * 1024:,} blocks per TiB; sampling {args.sample_size} blocks; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()})"
    )
    _table(rows, headers, title)
    print(
        f"peak RSS is each counting process's own (fresh process, includes interpreter and "
        f"boto3, ~{fast.rss_before_mib:.0f} MiB before counting); fake server process peak "
        f"RSS {server_rss:.0f} MiB, not included."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
