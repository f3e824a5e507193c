"""``build.py report``: reads the central table with the security account's credentials.

Exit codes: 0 the report was printed (and written), 2 a bad flag or a central table that
does not exist (deploy first), 1 an AWS error or an unreachable endpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from botocore.exceptions import ClientError

from generator.config.loader import load_config
from generator.errors import UserError
from generator.naming import Names
from report.options import MAX_DAYS
from rollout.commands import aws_errors
from rollout.display import Display
from rollout.sessions import AwsSessions


@aws_errors
def main(args: argparse.Namespace) -> int:
    from report import html, text
    from report.collect import collect, rules

    if not 1 <= args.days <= MAX_DAYS:
        raise UserError(f"--days must be 1..{MAX_DAYS}, got {args.days}")
    if not 1 <= args.top <= 100:
        raise UserError(f"--top must be 1..100, got {args.top}")
    config = load_config(args.config)
    sessions = AwsSessions.from_args(args)
    account, region = config.security.account_id, config.security.home_region
    table = Names(config.name).correlator_table
    client = sessions.client("dynamodb", account, region)
    try:
        report = collect(client, table, args.days, rules(config), top=args.top)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UserError(
                f"the central table {table} does not exist in the security account "
                f"{account} ({region}): run `build.py deploy` first"
            ) from exc
        raise
    display = Display(text.console())
    text.render(report, display.console)
    if args.html:
        path = Path(args.html)
        try:
            html.write(report, path)
        except OSError as exc:
            raise UserError(f"--html {path}: cannot write it: {exc.strerror or exc}") from exc
        display.line(f"\nwrote {path}")
    return 0
