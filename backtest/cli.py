"""CLI of ``build.py backtest``: where the measurements come from, what is written.

Sources (one of): ``--events IN.jsonl`` (Backup Change Measured envelopes, as the audit
queue or a SIEM holds them), ``--simulate VOLUMES --days N`` (a labelled synthetic fleet,
written to ``--events`` or ``<out>/events.jsonl`` and then read back like any input), or
``--from-cloudwatch`` (a deployment's ``ChangedBlocks`` history, size only).

Outputs: the summary on stdout; ``--verdicts OUT.jsonl``, one line per distinct
``measurementId``; with ``--out DIR``, the three plots. Exit codes: 0 done, 2 bad input
(an invalid line, with its line number; an unreadable file; a bad option): then nothing is
written.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys

from backtest import simulate, summary
from backtest.events import EventsUnreadable, Measurement, read_events
from backtest.output import write_verdicts
from backtest.replay import MODELS
from backtest.run import backtest
from backup_anomaly.scoring import DEFAULT_CONFIG, ScoringConfig

# build.py's default for --out: a backtest writes plots only to a folder asked for.
_BUILD_DEFAULT_OUT = "dist"
_MAX_PROBLEMS_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The backtest's own options (``build.py`` adds ``--config``/``--out``/``--debug``)."""
    parser.add_argument(
        "--events",
        help="Backup Change Measured events, one JSON envelope a line (with --simulate: "
        "where the generated events are written; default <out>/events.jsonl)",
    )
    parser.add_argument("--verdicts", help="where to write one verdict line per measurement")
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="ours",
        help="ours (default), size-only (content ignored), or cloudwatch-band (an "
        "approximation of the seed design: anomaly band width 2 and the 50 %% ceiling)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a scoring knob, e.g. --set floor_percent=0.5 (repeatable)",
    )
    parser.add_argument(
        "--simulate",
        type=int,
        metavar="VOLUMES",
        help="generate a labelled synthetic fleet of this many volumes and backtest it",
    )
    parser.add_argument("--days", type=int, default=90, help="days to simulate (default 90)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument(
        "--fleet",
        choices=sorted(simulate.FLEETS),
        default="standard",
        help="the simulated fleet's parameters (default standard; see backtest/simulate.py)",
    )
    parser.add_argument(
        "--from-cloudwatch",
        action="store_true",
        help="read an existing deployment's ChangedBlocks history (size only)",
    )
    parser.add_argument(
        "--namespace",
        default="BackupAnomalyDetection",
        help="metric namespace for --from-cloudwatch (default BackupAnomalyDetection)",
    )
    parser.add_argument(
        "--regions", help="comma-separated regions for --from-cloudwatch (default: the session's)"
    )
    parser.add_argument(
        "--lookback-days", type=float, default=90.0, help="days of history for --from-cloudwatch"
    )
    parser.add_argument("--profile", help="AWS profile for --from-cloudwatch")
    parser.add_argument("--plot-volume", help="volume id for the timeline plot")


class _BadInput(Exception):
    """Bad input: the message is printed, the exit code is 2."""


def main(args: argparse.Namespace) -> int:
    """Runs the backtest; returns the exit code."""
    try:
        return _run(args)
    except _BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    organization, own = _configured(getattr(args, "config", None))
    config = scoring_config(args.set, organization)
    by_account = {account: scoring_config(args.set, base) for account, base in own.items()}
    out_dir = args.out if args.out and args.out != _BUILD_DEFAULT_OUT else None
    sources = [args.events is not None and args.simulate is None, args.simulate is not None]
    sources.append(bool(args.from_cloudwatch))
    if sum(sources) != 1:
        raise _BadInput("give exactly one of --events, --simulate VOLUMES or --from-cloudwatch")
    measurements = _measurements(args, out_dir)
    result = backtest(measurements, args.model, config, by_account)
    if args.verdicts:
        count = write_verdicts(args.verdicts, result.replay.judged)
        print(f"wrote {count:,} verdicts to {args.verdicts}")
    for line in summary.lines(result):
        print(line)
    if out_dir is not None:
        from backtest import plots

        for path in plots.write_all(result.replay.judged, out_dir, config, args.plot_volume):
            print(f"wrote {path}")
    return 0


def _configured(path: str | None) -> tuple[ScoringConfig, dict[str, ScoringConfig]]:
    """The verdict settings of the config at ``path``: the organization's, and those of each
    account the config lists whose own or OU overrides differ (an account reached only
    through its OU is not named in the config: it is judged with the organization's), or
    the defaults when there is no such file."""
    if not path or not os.path.isfile(path):
        return DEFAULT_CONFIG, {}
    from backup_anomaly.settings import scoring_config as from_settings
    from generator.config.loader import ConfigError, load_config
    from generator.config.resolve import targets

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise _BadInput(str(exc)) from exc
    organization = from_settings(config.setting)
    own = {}
    for target in targets(config):
        if target.kind == "account":
            mine = from_settings(functools.partial(target.value, config))
            if mine != organization:
                own[target.id] = mine
    return organization, own


def scoring_config(overrides: list[str], base: ScoringConfig = DEFAULT_CONFIG) -> ScoringConfig:
    """The scoring knobs (``base``, the config's) with ``KNOB=VALUE`` overrides applied.

    Raises:
        _BadInput: an unknown knob or a value out of its bounds.
    """
    fields = {f.name: f for f in dataclasses.fields(ScoringConfig)}
    changes: dict[str, object] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise _BadInput(
                f"--set {item!r}: expected KNOB=VALUE with KNOB one of {', '.join(fields)}"
            )
        default = getattr(base, name)
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false"):
                    raise ValueError(f"expected true or false, got {raw!r}")
                changes[name] = raw.lower() == "true"
            elif isinstance(default, int):
                changes[name] = int(raw)
            else:
                changes[name] = float(raw)
        except ValueError as exc:
            raise _BadInput(f"--set {item!r}: {exc}") from exc
    try:
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _BadInput(f"--set: {exc}") from exc


def _measurements(args: argparse.Namespace, out_dir: str | None) -> list[Measurement]:
    if args.from_cloudwatch:
        return _from_cloudwatch(args)
    path = args.events
    if args.simulate is not None:
        if args.simulate < 1 or args.days < 1:
            raise _BadInput("--simulate and --days must be at least 1")
        path = path or os.path.join(out_dir or args.out or ".", "events.jsonl")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fleet = simulate.FLEETS[args.fleet]
        count = simulate.write(path, fleet, args.simulate, args.days, args.seed)
        print(
            f"simulated {args.simulate:,} volumes x {args.days} days ({fleet.name} fleet, "
            f"seed {args.seed}): {count:,} events in {path}"
        )
    try:
        read = read_events(path)
    except EventsUnreadable as exc:
        raise _BadInput(f"cannot read the events: {exc}") from exc
    if read.problems:
        for problem in read.problems[:_MAX_PROBLEMS_SHOWN]:
            print(f"{path}:{problem.line}: {problem.message}", file=sys.stderr)
        more = len(read.problems) - _MAX_PROBLEMS_SHOWN
        if more > 0:
            print(f"... and {more} more", file=sys.stderr)
        raise _BadInput(f"{len(read.problems)} invalid line(s) in {path}; nothing was written")
    skipped = sum(read.skipped.values())
    if skipped:
        kinds = ", ".join(f"{n} {kind!r}" for kind, n in sorted(read.skipped.items()))
        print(f"skipped {skipped:,} events of another detail-type ({kinds})")
    if not read.measurements:
        raise _BadInput(f"no Backup Change Measured events in {path}")
    return read.measurements


def _from_cloudwatch(args: argparse.Namespace) -> list[Measurement]:
    import boto3

    from backtest.cloudwatch import read_changed_blocks

    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    regions = [r.strip() for r in (args.regions or "").split(",") if r.strip()]
    if not regions:
        if not session.region_name:
            raise _BadInput("--from-cloudwatch needs --regions (the session has no region)")
        regions = [session.region_name]
    measurements = read_changed_blocks(session, args.namespace, regions, days=args.lookback_days)
    print(
        f"read {len(measurements):,} ChangedBlocks points from {args.namespace} in "
        f"{', '.join(regions)} (size only: no written blocks, no content)"
    )
    if not measurements:
        raise _BadInput(f"no ChangedBlocks points in {args.namespace}")
    return measurements
