"""Scoring and backtest tests: pure functions and the backtest CLI, no AWS (moto for the
CloudWatch reader only)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: a test that takes a few seconds")
