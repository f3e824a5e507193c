"""CLI of ``build.py backtest`` (arguments and entry point)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The backtest's own options (``build.py`` adds ``--config``/``--out``)."""
    parser.add_argument("--events", help="Backup Change Measured events, one JSON envelope a line")
    parser.add_argument("--verdicts", help="where to write one verdict line per measurement")


def main(args: argparse.Namespace) -> int:
    """Runs the backtest; returns the exit code."""
    raise NotImplementedError("backtest is being built")
