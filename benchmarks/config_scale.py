"""Config scale: time and peak memory to load, validate, resolve and group (and synth).

    .venv/bin/python benchmarks/config_scale.py            # 100, 1,000, 10,000 accounts
    .venv/bin/python benchmarks/config_scale.py --sizes 100 1000 10000 100000

Each size runs in fresh subprocesses, so one size's memory cannot hide another's:

- the timed runs (``--repeat``, default 3) report wall time per phase, the best run kept
  as the least disturbed on a shared machine, and the process's peak RSS, the highest of
  the runs (``ru_maxrss``: interpreter, imports and work together, the number the goal
  is about), plus the RSS reached after the imports alone, so the work's share shows;
- a second run repeats the work under ``tracemalloc`` and reports the peak of Python
  allocations made by the work (tracemalloc slows it down, so its times are not used).

The config is written by ``benchmarks/orgs.py``: N accounts in N/50 OUs (200 at 10,000)
over 17 regions, one account in ten with overrides. When ``generator.synth.synthesize``
exists the timed run also synthesizes every template and the Lambda zip into a
temporary folder (time and RSS reported separately). Goal at 10,000 accounts: under 2 s
and 300 MB, growing no worse than linearly.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGIONS = 17


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(accounts: int, config_path: Path, traced: bool, synth: bool) -> dict:
    """Runs the work once in this (fresh) process and returns its measurements."""
    if traced:
        import tracemalloc

        tracemalloc.start()
    started = time.perf_counter()
    from generator.config.loader import ConfigError, validate
    from generator.config.resolve import targets as resolved_targets
    from generator.config.yamlsource import parse
    from generator.instance_groups import instance_groups

    imported = time.perf_counter()
    result: dict = {"import_s": imported - started, "rss_after_import_mb": _rss_mb()}
    if traced:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]

    t0 = time.perf_counter()
    gc.disable()  # as load_config does around these two steps
    parsed = parse(config_path.read_text())
    t1 = time.perf_counter()
    config, issues = validate(parsed, str(config_path))
    gc.enable()
    if issues or config is None:
        raise ConfigError(issues)
    del parsed  # what load_config's caller keeps is the config, not the line table
    t2 = time.perf_counter()
    targets = resolved_targets(config)
    t3 = time.perf_counter()
    groups = instance_groups(config)
    t4 = time.perf_counter()
    result.update(
        parse_s=t1 - t0,
        validate_s=t2 - t1,
        resolve_s=t3 - t2,
        group_s=t4 - t3,
        total_s=t4 - t0,
        targets=len(targets),
        groups=len(groups),
        rss_peak_mb=_rss_mb(),
    )
    if traced:
        result["traced_peak_mb"] = (tracemalloc.get_traced_memory()[1] - before) / 2**20
        return result

    if synth:
        try:
            from generator.synth import synthesize
        except ImportError as exc:
            result["synth"] = f"skipped: {exc}"
        else:
            with tempfile.TemporaryDirectory() as tmp:
                t5 = time.perf_counter()
                synthesize(config, Path(tmp) / "out")
                result["synth_s"] = time.perf_counter() - t5
            result["rss_peak_with_synth_mb"] = _rss_mb()
    return result


def _run_child(accounts: int, path: Path, traced: bool, synth: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(accounts), "--config", str(path)]
    command += ["--traced"] if traced else []
    command += [] if synth else ["--no-synth"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode:
        raise SystemExit(f"child for {accounts} accounts failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--no-synth", action="store_true", help="skip the synth timing")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (best kept)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.config, args.traced, not args.no_synth)))
        return 0

    sys.path.insert(0, str(ROOT))
    from benchmarks.orgs import org_yaml

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            ous = max(1, min(200, n // 50)) if n <= 10_000 else n // 50
            path = Path(tmp) / f"org-{n}.yaml"
            path.write_text(org_yaml(n, ous, REGIONS))
            # Best of --repeat runs for the times (the machine is shared; the minimum is the
            # least disturbed run), the highest peak RSS of them all for memory.
            runs = [
                _run_child(n, path, traced=False, synth=not args.no_synth)
                for _ in range(args.repeat)
            ]
            timed = dict(min(runs, key=lambda r: r["total_s"]))
            for key in ("rss_peak_mb", "rss_peak_with_synth_mb"):
                if key in timed:
                    timed[key] = max(r[key] for r in runs)
            if "synth_s" in timed:
                timed["synth_s"] = min(r["synth_s"] for r in runs)
            traced = _run_child(n, path, traced=True, synth=False)
            rows.append((n, ous, path.stat().st_size, timed, traced))

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {REGIONS} regions; "
        f"times in seconds (best of {args.repeat}), memory in MB; fresh subprocesses per size"
    )
    header = (
        f"{'accounts':>8} {'OUs':>5} {'YAML KB':>8} {'parse':>6} {'valid.':>6} "
        f"{'resolve':>7} {'groups':>6} {'total':>6} {'import':>6} {'RSS':>6} "
        f"{'RSS-imp':>7} {'traced':>6} {'synth':>6} {'RSS+syn':>7}"
    )
    print(header)
    for n, ous, size, t, tr in rows:
        synth_s = f"{t['synth_s']:6.2f}" if "synth_s" in t else f"{'-':>6}"
        synth_rss = f"{t['rss_peak_with_synth_mb']:7.0f}" if "synth_s" in t else f"{'-':>7}"
        print(
            f"{n:>8,} {ous:>5} {size / 1024:>8.0f} {t['parse_s']:6.3f} "
            f"{t['validate_s']:6.3f} {t['resolve_s']:7.3f} {t['group_s']:6.3f} "
            f"{t['total_s']:6.3f} {t['import_s']:6.2f} {t['rss_peak_mb']:6.0f} "
            f"{t['rss_peak_mb'] - t['rss_after_import_mb']:7.0f} "
            f"{tr['traced_peak_mb']:6.1f} {synth_s} {synth_rss}"
        )
    for (n1, _, _, a, ta), (n2, _, _, b, tb) in zip(rows, rows[1:], strict=False):
        synth = (
            f", synth x{b['synth_s'] / a['synth_s']:.1f}"
            if "synth_s" in a and "synth_s" in b
            else ""
        )
        print(
            f"{n1:,} -> {n2:,} accounts (x{n2 / n1:g}): "
            f"total time x{b['total_s'] / a['total_s']:.1f}, "
            f"traced memory x{tb['traced_peak_mb'] / ta['traced_peak_mb']:.1f}{synth}"
        )
    notes = {t.get("synth") for *_, t, _ in rows if isinstance(t.get("synth"), str)}
    for note in sorted(notes):
        print(f"synth {note}")
    print(
        "total = parse + validate + resolve + groups (what `build.py validate` does before "
        "templates); RSS = peak RSS of the timed process (interpreter + imports + work); "
        "RSS-imp = peak RSS minus RSS after imports; traced = tracemalloc peak of the work "
        "alone (separate run)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
