"""The benchmark's smoke run works end to end (timings are printed, never asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_counts_right():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "changed_blocks.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    for label in ("8 GiB 1%", "8 GiB 100%", "32 GiB 1%", "32 GiB 100%"):
        assert label in done.stdout
    assert "quota bound" in done.stdout
