#!/usr/bin/env python3
"""Backup anomaly detection toolkit: ``python build.py <command>`` (default ``synth``).

Exit codes: 0 success, 2 invalid input (config, flags) or, for ``plan --detailed-exitcode``,
changes pending; 1 an internal error or a failed deployment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

DEFAULT_CONFIG = "config/accounts.yaml"
DEFAULT_OUT = "dist"
# A config with thousands of mistakes is one mistake repeated: show the first ones.
MAX_REPORTED_PROBLEMS = 100


def _common(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # Options are accepted before and after the command. A sub-command's own defaults would
    # overwrite what was given before it (`build.py --config x validate`), so there they
    # are SUPPRESSed and the root parser's defaults stand.
    def default(value):
        return argparse.SUPPRESS if sub else value

    parser.add_argument(
        "--config", default=default(DEFAULT_CONFIG), help="organization config (YAML)"
    )
    parser.add_argument("--out", default=default(DEFAULT_OUT), help="output folder for templates")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks of internal errors",
    )


def _aws(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the standard boto3 chain)")
    parser.add_argument(
        "--role-name",
        default="OrganizationAccountAccessRole",
        help="role assumed in the security and admin accounts when they are not the caller's",
    )
    parser.add_argument(
        "--endpoint-url",
        help="one endpoint for every AWS service (a local emulator such as moto's server); "
        "default: AWS's own",
    )


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    # Commands import their modules only when run: `build.py --help` stays instant and a
    # missing optional dependency of one command does not break the others.
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return run


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="build.py",
        description=(
            "Generate, package, deploy and demo backup anomaly detection for an AWS organization."
        ),
    )
    _common(root)
    sub = root.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, run, aws: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, sub=True)
        if aws:
            _aws(p)
        p.set_defaults(run=run)
        return p

    command(
        "synth",
        "write every template, the Lambda zip and manifest.json (default)",
        _lazy("generator.commands", "synth"),
    )
    command(
        "validate",
        "validate the config and cfn-lint every generated template",
        _lazy("generator.commands", "validate"),
    )
    command("schema", "print the JSON Schema of the config", _lazy("generator.commands", "schema"))
    command(
        "package",
        "upload the Lambda zip and member template to every region's artifact bucket",
        _lazy("rollout.commands", "package"),
        aws=True,
    )
    plan = command(
        "plan",
        "show what deploy would change, with a monthly cost estimate",
        _lazy("rollout.commands", "plan"),
        aws=True,
    )
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing would change, 2 when something would",
    )
    plan.add_argument(
        "--volumes",
        type=int,
        default=None,
        help="protected volumes per account and region, for the cost estimate",
    )
    deploy = command(
        "deploy",
        "deploy artifacts, the central stack, the StackSet and its instances",
        _lazy("rollout.commands", "deploy"),
        aws=True,
    )
    deploy.add_argument(
        "--poll-seconds",
        type=float,
        default=10.0,
        help="seconds between status checks of a stack or StackSet operation",
    )
    drift = command(
        "drift",
        "detect StackSet drift and report it per instance "
        "(exit 0 in sync, 2 drifted, 1 detection failed)",
        _lazy("rollout.commands", "drift"),
        aws=True,
    )
    drift.add_argument(
        "--poll-seconds",
        type=float,
        default=10.0,
        help="seconds between status checks of the drift detection",
    )
    imports = command(
        "import-accounts",
        "merge the organization's OUs and accounts into the config",
        _lazy("rollout.commands", "import_accounts"),
        aws=True,
    )
    imports.add_argument(
        "--dry-run", action="store_true", help="print the merged config instead of writing it"
    )
    demo = command(
        "demo",
        "run the whole flow on a simulated organization (no AWS needed)",
        _lazy("demo.run", "main"),
    )
    demo.add_argument(
        "--days",
        type=int,
        default=35,
        help="days of daily backups to simulate (the last one is the attack; default 35)",
    )
    report = command(
        "report",
        "the fleet from the security account: accounts heard from, incidents, verdicts",
        _lazy("report.cli", "main"),
        aws=True,
    )
    from report.options import add_arguments as report_arguments

    report_arguments(report)
    backtest = command(
        "backtest",
        "replay measurement events through the scoring model: verdicts, rates, plots",
        _lazy("backtest.cli", "main"),
    )
    from backtest.cli import add_arguments as backtest_arguments

    backtest_arguments(backtest)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["synth", *(argv if argv is not None else sys.argv[1:])])
    from generator.config.loader import ConfigError
    from generator.errors import UserError

    try:
        return args.run(args)
    except ConfigError as exc:
        for issue in exc.issues[:MAX_REPORTED_PROBLEMS]:
            print(issue, file=sys.stderr)
        more = len(exc.issues) - MAX_REPORTED_PROBLEMS
        if more > 0:
            print(f"... and {more} more", file=sys.stderr)
        print(f"{len(exc.issues)} problem(s) in the config; nothing was written.", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if getattr(args, "debug", False):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
