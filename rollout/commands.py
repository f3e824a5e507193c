"""CLI entry points of the rollout commands; ``build.py`` routes here.

Exit codes: 0 success (``plan``/``drift``: nothing to change, in sync); 2 invalid input or,
for ``plan --detailed-exitcode`` changes pending and for ``drift`` drifted instances; 1 a
failed deployment (an operation failed or an instance is not CURRENT).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from generator.config.loader import load_config
from generator.errors import UserError
from rollout.display import Display
from rollout.sessions import AwsSessions


def aws_errors(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """An AWS error ends the command with its code and message (exit 1), not a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except NoCredentialsError as exc:
            raise UserError(
                "no AWS credentials found: configure the standard chain or pass --profile"
            ) from exc
        except (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError) as exc:
            profile = getattr(args, "profile", None) or os.environ.get("AWS_PROFILE") or "NAME"
            raise UserError(
                f"the AWS SSO session is not logged in or has expired: run "
                f"`aws sso login --profile {profile}`, then try again"
            ) from exc
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            where = getattr(exc, "kwargs", {}).get("endpoint_url") or str(exc)
            print(
                f"cannot reach AWS at {where}: check the network, a proxy, or --endpoint-url "
                f"({type(exc).__name__})",
                file=sys.stderr,
            )
            return 1
        except ClientError as exc:
            error = exc.response.get("Error", {})
            print(
                f"AWS error in {exc.operation_name}: {error.get('Code')}: "
                f"{error.get('Message', exc)}",
                file=sys.stderr,
            )
            return 1

    return run


def _setup(args: argparse.Namespace):
    config = load_config(args.config)
    return config, AwsSessions.from_args(args), Display()


@aws_errors
def package(args: argparse.Namespace) -> int:
    """Builds the zip and member template and uploads them to every region's bucket."""
    from rollout.artifacts import build, upload

    config, sessions, display = _setup(args)
    built = build(config, Path(args.out))
    upload(sessions, config, built, display)
    return 0


@aws_errors
def plan(args: argparse.Namespace) -> int:
    """Prints what deploy would change and the estimated monthly cost."""
    from rollout.artifacts import build
    from rollout.cost import estimate, render_cost
    from rollout.plan import make_plan
    from rollout.render import render

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
    if the_plan.target_errors:
        print(
            f"{len(the_plan.target_errors)} target(s) the organization does not hold (above): "
            "fix the config, or mark one may_be_absent: true if it is expected",
            file=sys.stderr,
        )
        return 2
    if args.detailed_exitcode and the_plan.has_changes:
        return 2
    return 0


@aws_errors
def deploy(args: argparse.Namespace) -> int:
    """Deploys and exits 1 if any operation failed or any instance is not CURRENT."""
    from rollout.artifacts import build
    from rollout.deploy import deploy as run_deploy

    config, sessions, display = _setup(args)
    built = build(config, Path(args.out))
    result = run_deploy(config, sessions, built, display, poll_seconds=args.poll_seconds)
    return 0 if result.ok else 1


@aws_errors
def drift(args: argparse.Namespace) -> int:
    """Detects StackSet drift: 0 in sync, 2 drifted, 1 detection failed."""
    from rollout.drift import detect

    config, sessions, display = _setup(args)
    return detect(config, sessions, display, poll_seconds=args.poll_seconds).exit_code


@aws_errors
def import_accounts(args: argparse.Namespace) -> int:
    """Merges the organization's accounts into the config file."""
    from rollout.onboarding import import_accounts as run_import

    config, sessions, display = _setup(args)
    run_import(Path(args.config), config, sessions, display, dry_run=args.dry_run)
    return 0
