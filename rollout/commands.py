"""CLI entry points of the rollout commands; ``build.py`` routes here.

Exit codes: 0 success (``plan``/``drift``: nothing to change, in sync); 2 invalid input or,
for ``plan --detailed-exitcode`` changes pending and for ``drift`` drifted instances; 1 a
failed deployment (an operation failed or an instance is not CURRENT).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from generator.config.loader import load_config
from rollout.display import Display
from rollout.sessions import AwsSessions


def _setup(args: argparse.Namespace):
    config = load_config(args.config)
    return config, AwsSessions.from_args(args), Display()


def package(args: argparse.Namespace) -> int:
    """Builds the zip and member template and uploads them to every region's bucket."""
    from rollout.artifacts import build, upload

    config, sessions, display = _setup(args)
    built = build(config, Path(args.out))
    upload(sessions, config, built, display)
    return 0


def plan(args: argparse.Namespace) -> int:
    """Prints what deploy would change and the estimated monthly cost."""
    from rollout.artifacts import build
    from rollout.cost import estimate, render_cost
    from rollout.deploy import make_plan
    from rollout.plan import render

    config, sessions, display = _setup(args)
    built = build(config, Path(args.out))
    the_plan = make_plan(config, sessions, built)
    render(the_plan, display)
    render_cost(
        estimate(
            the_plan,
            json.loads(built.body("member")),
            json.loads(built.body("central")),
            args.volumes,
        ),
        display,
    )
    if args.detailed_exitcode and the_plan.has_changes:
        return 2
    return 0


def deploy(args: argparse.Namespace) -> int:
    """Deploys and exits 1 if any operation failed or any instance is not CURRENT."""
    from rollout.artifacts import build
    from rollout.deploy import deploy as run_deploy

    config, sessions, display = _setup(args)
    built = build(config, Path(args.out))
    result = run_deploy(config, sessions, built, display, poll_seconds=args.poll_seconds)
    return 0 if result.ok else 1


def drift(args: argparse.Namespace) -> int:
    """Detects StackSet drift: 0 in sync, 2 drifted, 1 detection failed."""
    from rollout.drift import detect

    config, sessions, display = _setup(args)
    return detect(config, sessions, display, poll_seconds=args.poll_seconds).exit_code


def import_accounts(args: argparse.Namespace) -> int:
    """Merges the organization's accounts into the config file."""
    from rollout.onboarding import import_accounts as run_import

    config, sessions, display = _setup(args)
    run_import(Path(args.config), config, sessions, display, dry_run=args.dry_run)
    return 0


def demo(args: argparse.Namespace) -> int:
    """Runs the whole flow on a simulated organization."""
    from rollout.demo.run import run

    return run(Path(args.config), Path(args.out), Display(), days=args.days)
