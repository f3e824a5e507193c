"""The report's options, apart from its code so that ``build.py --help`` stays instant."""

from __future__ import annotations

import argparse

MAX_DAYS = 90  # the central table keeps history_days (180 by default); a page stays readable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's own options (``build.py`` adds ``--config``, the AWS options...)."""
    parser.add_argument(
        "--days", type=int, default=14, help=f"period of the per-day tables (1..{MAX_DAYS})"
    )
    parser.add_argument(
        "--top", type=int, default=10, help="how many of the most rewritten volumes to list"
    )
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
