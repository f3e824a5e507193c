"""Shared pieces of the config tests: a small valid config and a runner that returns issues.

``BASE`` is valid; each invalid case in ``test_config_invalid.py`` is BASE with a few
textual edits, so the expected line numbers can be read off the numbered listing below.
"""

from __future__ import annotations

from pathlib import Path

from generator.config.loader import ConfigError, load_config

BASE = """\
name: backup-anomaly
organization:
  management_account_id: "111111111111"
  delegated_admin_account_id: "222222222222"
  org_id: o-exampleorg1
security:
  account_id: "333333333333"
  home_region: us-east-1
  notification_emails: [secops@example.com]
deployment:
  permission_model: SERVICE_MANAGED
  call_as: DELEGATED_ADMIN
  regions: [us-east-1, eu-west-1]
  targets:
    organizational_units:
      - id: ou-ab12-prod0001
        overrides:
          detection:
            ceiling_percent: 30
    accounts:
      - id: "444444444444"
        ou: ou-ab12-prod0001
        overrides:
          detection:
            band_width: 3
backup:
  mode: create
  schedule: cron(0 5 ? * * *)
  retention_days: 35
detection:
  alarm_period_seconds: 86400
  evaluation_periods: 1
tags:
  Project: backup-anomaly-detection
"""
#  1 name                       13 regions              25 band_width
#  2 organization               14 targets              26 backup
#  3 management_account_id      15 organizational_units 27 mode
#  4 delegated_admin_account_id 16 - id (OU)            28 schedule
#  5 org_id                     17 overrides            29 retention_days
#  6 security                   18 detection            30 detection
#  7 account_id                 19 ceiling_percent      31 alarm_period_seconds
#  8 home_region                20 accounts             32 evaluation_periods
#  9 notification_emails        21 - id (account)       33 tags
# 10 deployment                 22 ou                   34 Project
# 11 permission_model           23 overrides
# 12 call_as                    24 detection


def edit(text: str, edits: list[tuple[str, str]]) -> str:
    """``text`` with each ``(old, new)`` applied once; fails loudly if ``old`` is absent."""
    for old, new in edits:
        if text.count(old) != 1:
            raise AssertionError(f"edit target must occur exactly once: {old!r}")
        text = text.replace(old, new)
    return text


def issues_of(path: Path) -> list[str]:
    """The loader's issues for ``path`` without the file prefix, or [] when it is valid."""
    try:
        load_config(path)
    except ConfigError as exc:
        prefix = f"{path}:"
        lines = [str(issue) for issue in exc.issues]
        assert all(line.startswith(prefix) for line in lines), lines
        return [line[len(prefix) :] for line in lines]
    return []


def write(tmp_path: Path, text: str, name: str = "accounts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
