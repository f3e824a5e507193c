# ruff: noqa: E501 - the table holds whole messages, one per line, as the user sees them
"""Invalid configs: each case is the valid BASE with a few edits, and the exact issues.

Every expected issue is ``LINE: path: message`` (the loader prints ``FILE:`` in front);
line numbers refer to the edited text, whose BASE lines are listed in config_helpers.
The actual output is written to ``tmp_path/actual.txt`` so a failure can be diffed.
"""

from __future__ import annotations

import re

import pytest

import build
from tests.generator.config_helpers import BASE, edit, issues_of, write

# BASE turned SELF_MANAGED: no call_as, no OU target, the account without its OU.
SELF_MANAGED = [
    (
        "  permission_model: SERVICE_MANAGED\n  call_as: DELEGATED_ADMIN\n",
        "  permission_model: SELF_MANAGED\n",
    ),
    (
        "    organizational_units:\n      - id: ou-ab12-prod0001\n        overrides:\n"
        "          detection:\n            ceiling_percent: 30\n",
        "",
    ),
    ("        ou: ou-ab12-prod0001\n", ""),
]


def case(name: str, edits: list[tuple[str, str]], expected: list[str]):
    return pytest.param(edits, expected, id=name)


# The per-volume CloudWatch alarms are off by default; the period rule applies where they are on.
ALARMS_ON = ("  evaluation_periods: 1\n", "  evaluation_periods: 1\n  cloudwatch_alarms: true\n")

CASES = [
    case(
        "account-id-octal",
        [('management_account_id: "111111111111"', "management_account_id: 012345670123")],
        [
            '3: organization.management_account_id: account id 012345670123 is unquoted, so YAML read it as the octal number 1402433619; quote it: "012345670123"'
        ],
    ),
    case(
        "account-id-lost-zero",
        [('  account_id: "333333333333"', "  account_id: 12345678901")],
        [
            '7: security.account_id: account id 12345678901 is unquoted, so YAML read it as a number with 11 digits; quote it with all 12 digits, leading zeros included ("012345678901" if zeros were lost)'
        ],
    ),
    case(
        "account-id-unquoted",
        [('- id: "444444444444"', "- id: 444444444444")],
        [
            '21: deployment.targets.accounts[0].id: account id 444444444444 is unquoted, so YAML read it as a number; quote it: "444444444444"'
        ],
    ),
    case(
        "account-id-short",
        [('delegated_admin_account_id: "222222222222"', 'delegated_admin_account_id: "22222"')],
        [
            "4: organization.delegated_admin_account_id: account id '22222' must be exactly 12 digits"
        ],
    ),
    case(
        "account-id-list",
        [('  account_id: "333333333333"', '  account_id: ["333333333333"]')],
        ["7: security.account_id: expected text, got a list"],
    ),
    case(
        "duplicate-account",
        [
            (
                "            band_width: 3\n",
                '            band_width: 3\n      - id: "555555555555"\n        ou: ou-ab12-prod0001\n      - id: "444444444444"\n        ou: ou-ab12-prod0001\n',
            )
        ],
        [
            "28: deployment.targets.accounts[2].id: duplicate account '444444444444' (already at [0])"
        ],
    ),
    case(
        "duplicate-ou",
        [
            (
                "            ceiling_percent: 30\n",
                "            ceiling_percent: 30\n      - id: ou-ab12-prod0001\n",
            )
        ],
        [
            "20: deployment.targets.organizational_units[1].id: duplicate OU 'ou-ab12-prod0001' (already at [0])"
        ],
    ),
    case(
        "duplicate-region",
        [("regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-1, us-east-1]")],
        ["13: deployment.regions[2]: duplicate region 'us-east-1' (already at [0])"],
    ),
    case(
        "duplicate-email",
        [
            (
                "notification_emails: [secops@example.com]",
                "notification_emails:\n    - secops@example.com\n    - SecOps@Example.com",
            )
        ],
        [
            "11: security.notification_emails[1]: duplicate email 'SecOps@Example.com' (already at [0])"
        ],
    ),
    case(
        "unknown-region",
        [("regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-7]")],
        [
            "13: deployment.regions[1]: unknown region 'eu-west-7' (did you mean 'eu-west-3'?); expected a region botocore knows, such as 'us-east-1'"
        ],
    ),
    case(
        "home-region-unknown",
        [("home_region: us-east-1", "home_region: useast1")],
        [
            "8: security.home_region: unknown region 'useast1' (did you mean 'us-east-1'?); expected a region botocore knows, such as 'us-east-1'"
        ],
    ),
    case(
        "bad-ou-id",
        [("      - id: ou-ab12-prod0001", "      - id: ou-AB12")],
        [
            "16: deployment.targets.organizational_units[0].id: 'ou-AB12' is not an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
        ],
    ),
    case(
        "bad-account-ou",
        [("        ou: ou-ab12-prod0001", "        ou: prod")],
        [
            "22: deployment.targets.accounts[0].ou: 'prod' is not an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
        ],
    ),
    case(
        "bad-org-id",
        [("org_id: o-exampleorg1", "org_id: o-short")],
        [
            "5: organization.org_id: 'o-short' is not a valid organization id (o- and 10-32 lowercase letters or digits)"
        ],
    ),
    case(
        "ou-targets-without-org-id",
        [("  org_id: o-exampleorg1\n", "")],
        [
            "2: organization: org_id is required when deployment targets include OUs: the central bus and the artifact buckets admit the organization by its id, and an OU's accounts are not listed in the config"
        ],
    ),
    case(
        "bad-email",
        [("[secops@example.com]", "[secops@example]")],
        ["9: security.notification_emails[0]: 'secops@example' is not a valid email address"],
    ),
    case(
        "cron-five-fields",
        [("cron(0 5 ? * * *)", "cron(0 5 * * ?)")],
        [
            "28: backup.schedule: AWS cron takes 6 fields (minutes hours day-of-month month day-of-week year), got 5"
        ],
    ),
    case(
        "rate-expression",
        [("cron(0 5 ? * * *)", "rate(1 day)")],
        [
            "28: backup.schedule: AWS Backup takes cron(...) schedules, not rate(...): cron(0 5 ? * * *) runs daily at 05:00 UTC"
        ],
    ),
    case(
        "cron-sub-hourly",
        [("cron(0 5 ? * * *)", "cron(0/15 * ? * * *)")],
        [
            "28: backup.schedule: minutes must be a single number 0-59 (got '0/15'): AWS Backup starts jobs at least 60 minutes apart"
        ],
    ),
    case(
        "cron-both-days",
        [("cron(0 5 ? * * *)", "cron(0 5 * * * *)")],
        ["28: backup.schedule: exactly one of day-of-month and day-of-week must be '?'"],
    ),
    case(
        "cron-hour-range",
        [("cron(0 5 ? * * *)", "cron(0 24 ? * * *)")],
        ["28: backup.schedule: hours must be 0-23 (got 24)"],
    ),
    case(
        "cron-bad-month",
        [("cron(0 5 ? * * *)", "cron(0 5 ? JANUARY * *)")],
        ["28: backup.schedule: month has 'JANUARY', expected 1-12 or a name like JAN"],
    ),
    case(
        "regions-of-two-partitions",
        [("regions: [us-east-1, eu-west-1]", "regions: [us-east-1, us-gov-west-1]")],
        [
            "13: deployment.regions[1]: region 'us-gov-west-1' is in partition aws-us-gov, but "
            "'us-east-1' (regions[0]) is in aws; a StackSet cannot span partitions: give each "
            "partition a config of its own"
        ],
    ),
    case(
        "retention-zero",
        [("retention_days: 35", "retention_days: 0")],
        ["29: backup.retention_days: must be at least 1, got 0"],
    ),
    case(
        "band-width-range",
        [("band_width: 3", "band_width: 11")],
        [
            "25: deployment.targets.accounts[0].overrides.detection.band_width: must be at most 10, got 11"
        ],
    ),
    case(
        "ceiling-range",
        [("ceiling_percent: 30", "ceiling_percent: 150")],
        [
            "19: deployment.targets.organizational_units[0].overrides.detection.ceiling_percent: must be at most 100, got 150"
        ],
    ),
    case(
        "unknown-key-typo",
        [("  regions: [us-east-1, eu-west-1]", "  regoins: [us-east-1, eu-west-1]")],
        ["13: deployment.regoins: unknown key 'regoins' (did you mean 'regions'?)"],
    ),
    case(
        "misspelt-section",
        [("security:\n", "securty:\n")],
        ["6: securty: unknown key 'securty' (did you mean 'security'?)"],
    ),
    case(
        "unknown-key-far",
        [("tags:\n", "colour: blue\ntags:\n")],
        [
            "33: colour: unknown key 'colour'; expected one of: backup, correlation, deployment, detection, encryption, name, organization, schema_version, security, tags"
        ],
    ),
    case(
        "unknown-nested-typo",
        [("            band_width: 3", "            bandwidth: 3")],
        [
            "25: deployment.targets.accounts[0].overrides.detection.bandwidth: unknown key 'bandwidth' (did you mean 'band_width'?)"
        ],
    ),
    case(
        "management-service-managed",
        [('- id: "444444444444"', '- id: "111111111111"')],
        [
            "21: deployment.targets.accounts[0].id: is the management account: SERVICE_MANAGED StackSets never deploy there; remove it"
        ],
    ),
    case(
        "management-self-managed",
        [*SELF_MANAGED, ('- id: "444444444444"', '- id: "111111111111"')],
        [
            "15: deployment.targets.accounts[0].id: is the management account, which should run no workloads; remove it, or set deployment.include_management_account: true if you mean it"
        ],
    ),
    case(
        "include-management-service-managed",
        [("  targets:\n", "  include_management_account: true\n  targets:\n")],
        [
            "14: deployment.include_management_account: SERVICE_MANAGED StackSets never deploy to the management account; use SELF_MANAGED to include it"
        ],
    ),
    case(
        "self-managed-ous",
        [
            (
                "  permission_model: SERVICE_MANAGED\n  call_as: DELEGATED_ADMIN\n",
                "  permission_model: SELF_MANAGED\n",
            )
        ],
        [
            "14: deployment.targets.organizational_units: SELF_MANAGED StackSets target accounts, not OUs: list the accounts, or use permission_model: SERVICE_MANAGED"
        ],
    ),
    case(
        "self-managed-delegated-call",
        [
            ("  permission_model: SERVICE_MANAGED\n", "  permission_model: SELF_MANAGED\n"),
            (
                "    organizational_units:\n      - id: ou-ab12-prod0001\n        overrides:\n          detection:\n            ceiling_percent: 30\n",
                "",
            ),
            ("        ou: ou-ab12-prod0001\n", ""),
        ],
        [
            "12: deployment.call_as: DELEGATED_ADMIN applies only to SERVICE_MANAGED StackSets; use SELF"
        ],
    ),
    case(
        "self-managed-auto-deployment",
        [*SELF_MANAGED, ("  targets:\n", "  auto_deployment:\n    enabled: true\n  targets:\n")],
        ["13: deployment.auto_deployment: applies only to SERVICE_MANAGED StackSets; remove it"],
    ),
    case(
        "account-without-ou",
        [("        ou: ou-ab12-prod0001\n", "")],
        [
            "21: deployment.targets.accounts[0].ou: required under SERVICE_MANAGED: the id of the account's OU (or root), through which StackSets reach a single account"
        ],
    ),
    case(
        "excluded-with-overrides",
        [
            (
                "        ou: ou-ab12-prod0001\n",
                "        ou: ou-ab12-prod0001\n        exclude: true\n",
            )
        ],
        [
            "24: deployment.targets.accounts[0].overrides: has no effect on an excluded account (exclude: true means no stack instance); remove it, or remove exclude to deploy the account with it"
        ],
    ),
    case(
        "excluded-with-regions",
        [
            (
                "        ou: ou-ab12-prod0001\n        overrides:\n          detection:\n            band_width: 3\n",
                "        ou: ou-ab12-prod0001\n        regions: [us-east-1]\n        exclude: true\n",
            )
        ],
        [
            "23: deployment.targets.accounts[0].regions: has no effect on an excluded account (exclude: true means no stack instance); remove it, or remove exclude to deploy the account with it"
        ],
    ),
    case(
        "excluded-without-ou",
        [
            (
                "        ou: ou-ab12-prod0001\n        overrides:\n          detection:\n            band_width: 3\n",
                "        exclude: true\n",
            )
        ],
        [
            "21: deployment.targets.accounts[0].ou: required under SERVICE_MANAGED: the id of the targeted OU (or root) the account is excluded from"
        ],
    ),
    case(
        "excluded-not-a-boolean",
        [
            (
                "        ou: ou-ab12-prod0001\n        overrides:\n          detection:\n            band_width: 3\n",
                '        ou: ou-ab12-prod0001\n        exclude: "sometimes"\n',
            )
        ],
        [
            "23: deployment.targets.accounts[0].exclude: expected true or false, got the text 'sometimes'"
        ],
    ),
    case(
        "self-managed-every-account-excluded",
        [
            *SELF_MANAGED,
            (
                "        overrides:\n          detection:\n            band_width: 3\n",
                "        exclude: true\n",
            ),
        ],
        [
            "13: deployment.targets: no targets: every listed account is excluded; list at least one organizational unit or account to deploy to"
        ],
    ),
    case(
        "management-excluded-self-managed",
        [
            *SELF_MANAGED,
            ('- id: "444444444444"', '- id: "111111111111"'),
            (
                "        overrides:\n          detection:\n            band_width: 3\n",
                '        exclude: true\n      - id: "444444444444"\n',
            ),
        ],
        [
            "15: deployment.targets.accounts[0].id: is the management account, which gets a stack instance only when it is listed without exclude; there is nothing to exclude, remove it"
        ],
    ),
    case(
        "delegated-call-without-admin",
        [('  delegated_admin_account_id: "222222222222"\n', "")],
        [
            "11: deployment.call_as: DELEGATED_ADMIN needs organization.delegated_admin_account_id (the account registered as StackSets delegated administrator)"
        ],
    ),
    case(
        "admin-calls-as-self",
        [("  call_as: DELEGATED_ADMIN\n", "  call_as: SELF\n")],
        [
            "12: deployment.call_as: must be DELEGATED_ADMIN: the StackSet is administered from the delegated admin account 222222222222"
        ],
    ),
    case(
        "admin-is-management",
        [
            (
                'delegated_admin_account_id: "222222222222"',
                'delegated_admin_account_id: "111111111111"',
            )
        ],
        [
            "4: organization.delegated_admin_account_id: is the management account; leave it out to administer from there"
        ],
    ),
    case(
        "region-order",
        [
            (
                "  targets:\n",
                "  operation_preferences:\n    region_order: [eu-west-1, us-west-2]\n  targets:\n",
            )
        ],
        [
            "15: deployment.operation_preferences.region_order[1]: region 'us-west-2' is not in deployment.regions"
        ],
    ),
    case(
        "target-regions-subset",
        [
            (
                "        ou: ou-ab12-prod0001\n",
                "        ou: ou-ab12-prod0001\n        regions: [us-east-1, ap-south-1]\n",
            )
        ],
        [
            "23: deployment.targets.accounts[0].regions[1]: region 'ap-south-1' is not in deployment.regions; add it there first (artifact buckets are created only in those)"
        ],
    ),
    case(
        "target-regions-empty",
        [("        ou: ou-ab12-prod0001\n", "        ou: ou-ab12-prod0001\n        regions: []\n")],
        ["23: deployment.targets.accounts[0].regions: must have at least 1 item, got 0"],
    ),
    case(
        "no-targets",
        [
            (
                '    organizational_units:\n      - id: ou-ab12-prod0001\n        overrides:\n          detection:\n            ceiling_percent: 30\n    accounts:\n      - id: "444444444444"\n        ou: ou-ab12-prod0001\n        overrides:\n          detection:\n            band_width: 3\n',
                "    organizational_units: []\n",
            )
        ],
        ["14: deployment.targets: no targets: list at least one organizational unit or account"],
    ),
    case(
        "root-and-ou",
        [
            (
                "            ceiling_percent: 30\n",
                "            ceiling_percent: 30\n      - id: r-ab12\n",
            )
        ],
        [
            "16: deployment.targets.organizational_units[0].id: the root r-ab12 (organizational_units[1]) already covers every OU; target OUs instead of the root to give them settings of their own"
        ],
    ),
    case(
        "too-many-tags",
        [("  Project: backup-anomaly-detection\n", "".join(f"  T{i}: v\n" for i in range(41)))],
        ["33: tags: must have at most 40 keys, got 41"],
    ),
    case(
        "tag-aws-prefix",
        [("  Project: backup-anomaly-detection", "  aws:project: x")],
        ["34: tags['aws:project']: tag key 'aws:project': the 'aws:' prefix is reserved for AWS"],
    ),
    case(
        "tag-value-bad",
        [("  Project: backup-anomaly-detection", "  Project: 'a;b'")],
        [
            "34: tags.Project: tag value 'a;b' must be 0-256 letters, digits, spaces or _ . : / = + - @"
        ],
    ),
    case(
        "tag-value-boolean",
        [("  Project: backup-anomaly-detection", "  Enabled: yes")],
        ['34: tags.Enabled: expected text, but YAML read yes as a boolean; quote it: "yes"'],
    ),
    case(
        "tag-value-date",
        [("  Project: backup-anomaly-detection", "  Since: 2024-01-01")],
        [
            '34: tags.Since: expected text, but YAML read 2024-01-01 as a date; quote it: "2024-01-01"'
        ],
    ),
    case(
        "ou-as-number",
        [("        ou: ou-ab12-prod0001\n", "        ou: 5\n")],
        [
            '22: deployment.targets.accounts[0].ou: expected text, but YAML read 5 as a number; quote it: "5"'
        ],
    ),
    case(
        "tag-key-long",
        [
            (
                "  Project: backup-anomaly-detection",
                "  kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: v",
            )
        ],
        [
            "34: tags.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: tag key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' must be 1-128 letters, digits, spaces or _ . : / = + - @"
        ],
    ),
    case(
        "period-vs-schedule",
        [("alarm_period_seconds: 86400", "alarm_period_seconds: 3600"), ALARMS_ON],
        [
            "31: detection.alarm_period_seconds: alarm period 3600 s does not match the backup schedule cron(0 5 ? * * *), which runs every 86400 s; set alarm_period_seconds to 86400 (one measurement per period)"
        ],
    ),
    case(
        "override-schedule-vs-period",
        [
            (
                "            band_width: 3\n",
                "            band_width: 3\n          backup:\n            schedule: cron(0 0/12 ? * * *)\n",
            ),
            ALARMS_ON,
        ],
        [
            "27: deployment.targets.accounts[0].overrides.backup.schedule: alarm period 86400 s does not match the backup schedule cron(0 0/12 ? * * *), which runs every 43200 s; set alarm_period_seconds to 43200 (one measurement per period)"
        ],
    ),
    case(
        "override-period-vs-schedule",
        [("            ceiling_percent: 30", "            alarm_period_seconds: 7200"), ALARMS_ON],
        [
            "19: deployment.targets.organizational_units[0].overrides.detection.alarm_period_seconds: alarm period 7200 s does not match the backup schedule cron(0 5 ? * * *), which runs every 86400 s; set alarm_period_seconds to 86400 (one measurement per period)"
        ],
    ),
    case(
        "override-alarms-on-vs-schedule",
        [
            ("  alarm_period_seconds: 86400", "  alarm_period_seconds: 7200"),
            ("            band_width: 3", "            cloudwatch_alarms: true"),
        ],
        [
            "25: deployment.targets.accounts[0].overrides.detection.cloudwatch_alarms: alarm period 7200 s does not match the backup schedule cron(0 5 ? * * *), which runs every 86400 s; set alarm_period_seconds to 86400 (one measurement per period)"
        ],
    ),
    case(
        "score-thresholds-out-of-order",
        [
            (
                "  evaluation_periods: 1\n",
                "  evaluation_periods: 1\n  verdicts:\n    high_score: 7\n",
            )
        ],
        [
            "34: detection.verdicts.high_score: score thresholds must increase from low to critical: low_score 2, medium_score 3, high_score 7, critical_score 6"
        ],
    ),
    case(
        "override-score-thresholds-out-of-order",
        [("            band_width: 3", "            verdicts:\n              medium_score: 1.5")],
        [
            "26: deployment.targets.accounts[0].overrides.detection.verdicts.medium_score: score thresholds must increase from low to critical: low_score 2, medium_score 1.5, high_score 4, critical_score 6"
        ],
    ),
    case(
        "content-samples-over-max",
        [
            (
                "  evaluation_periods: 1\n",
                "  evaluation_periods: 1\n  detector:\n    content_samples: 300\n",
            )
        ],
        [
            "34: detection.detector.content_samples: 300 exceeds content_samples_max (256), the sample taken when the size is already unusual"
        ],
    ),
    case(
        "alarm-period-hours",
        [("alarm_period_seconds: 86400", "alarm_period_seconds: 5400")],
        [
            "31: detection.alarm_period_seconds: must be a multiple of 3600 (whole hours: backups run at most hourly), got 5400"
        ],
    ),
    case(
        "existing-in-create-mode",
        [
            (
                "  retention_days: 35\n",
                "  retention_days: 35\n  existing:\n    vault_names: [Default]\n",
            )
        ],
        [
            "30: backup.existing: applies only to mode: existing; remove it or set backup.mode: existing"
        ],
    ),
    case(
        "create-settings-in-existing-mode",
        [("mode: create", "mode: existing")],
        [
            "28: backup.schedule: applies only to mode: create (mode existing creates no backup plan)",
            "29: backup.retention_days: applies only to mode: create (mode existing creates no backup plan)",
        ],
    ),
    case(
        "backup-override-in-existing-mode",
        [
            (
                "mode: create\n  schedule: cron(0 5 ? * * *)\n  retention_days: 35\n",
                "mode: existing\n",
            ),
            (
                "            band_width: 3\n",
                "            band_width: 3\n          backup:\n            retention_days: 7\n",
            ),
        ],
        [
            "26: deployment.targets.accounts[0].overrides.backup: applies only to backup.mode: create (mode existing creates no backup plan)"
        ],
    ),
    case(
        "duplicate-yaml-key",
        [("  retention_days: 35\n", "  retention_days: 35\n  schedule: cron(0 6 ? * * *)\n")],
        [
            "30: backup.schedule: duplicate key 'schedule' (first at line 28); YAML would keep only the last"
        ],
    ),
    case(
        "yaml-syntax",
        [("  call_as: DELEGATED_ADMIN\n", "  call_as: [DELEGATED_ADMIN\n")],
        [
            "13: (top level): YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 12)"
        ],
    ),
    case(
        "yaml-bad-indent",
        [("  home_region: us-east-1\n", "  home_region: us-east-1\n   extra: x\n")],
        ["9: (top level): YAML syntax error: mapping values are not allowed in this context"],
    ),
    case(
        "missing-section",
        [
            (
                'security:\n  account_id: "333333333333"\n  home_region: us-east-1\n  notification_emails: [secops@example.com]\n',
                "",
            )
        ],
        ["1: security: required key is missing"],
    ),
    case(
        "missing-key",
        [("  home_region: us-east-1\n", "")],
        ["6: security.home_region: required key is missing"],
    ),
    case(
        "regions-not-list",
        [("regions: [us-east-1, eu-west-1]", "regions: us-east-1")],
        ["13: deployment.regions: expected a list, got the text 'us-east-1'"],
    ),
    case(
        "enum-typo",
        [("permission_model: SERVICE_MANAGED", "permission_model: SERVICE")],
        [
            "11: deployment.permission_model: expected one of SERVICE_MANAGED, SELF_MANAGED, got the text 'SERVICE' (did you mean 'SERVICE_MANAGED'?)"
        ],
    ),
    case(
        "bool-for-number",
        [("evaluation_periods: 1", "evaluation_periods: yes")],
        ["32: detection.evaluation_periods: expected a number, got the boolean yes"],
    ),
    case(
        "text-for-number",
        [("retention_days: 35", "retention_days: thirty")],
        ["29: backup.retention_days: expected a whole number, got the text 'thirty'"],
    ),
    case(
        "partition",
        [("home_region: us-east-1", "home_region: cn-north-1")],
        [
            "8: security.home_region: 'cn-north-1' is in partition aws-cn but deployment.regions are in aws; EventBridge cannot forward alerts across partitions"
        ],
    ),
    case(
        "tolerance-both",
        [
            (
                "  targets:\n",
                "  operation_preferences:\n    failure_tolerance_count: 1\n    failure_tolerance_percentage: 10\n  targets:\n",
            )
        ],
        [
            "14: deployment.operation_preferences: set either failure_tolerance_count or failure_tolerance_percentage, not both"
        ],
    ),
    case(
        "strict-concurrency",
        [
            (
                "  targets:\n",
                "  operation_preferences:\n    failure_tolerance_count: 1\n    max_concurrent_count: 5\n  targets:\n",
            )
        ],
        [
            "16: deployment.operation_preferences.max_concurrent_count: may be at most failure_tolerance_count + 1 (2) under STRICT_FAILURE_TOLERANCE; raise failure_tolerance_count or use SOFT_FAILURE_TOLERANCE"
        ],
    ),
    case(
        "name-too-long",
        [("name: backup-anomaly", "name: backup-anomaly-detection-production-east1")],
        ["1: name: must be at most 40 characters, got 41"],
    ),
    case(
        "name-uppercase",
        [("name: backup-anomaly", "name: Backup_Anomaly")],
        [
            "1: name: 'Backup_Anomaly' is not a valid name: it prefixes S3 bucket names, so use lowercase letters, digits and inner hyphens, starting with a letter"
        ],
    ),
    case(
        "two-documents",
        [("tags:\n", "---\ntags:\n")],
        ["33: (top level): a second YAML document (---) starts here; the config is one document"],
    ),
    case(
        "unsupported-tag",
        [("home_region: us-east-1", "home_region: !Ref Region")],
        ["8: security.home_region: unsupported YAML tag '!Ref'; write a plain value"],
    ),
    case(
        "schema-version",
        [("tags:\n", "schema_version: 2\ntags:\n")],
        ["33: schema_version: expected one of 1, got the number 2"],
    ),
    case(
        "section-not-mapping",
        [
            (
                "detection:\n  alarm_period_seconds: 86400\n  evaluation_periods: 1\n",
                "detection: strict\n",
            )
        ],
        ["30: detection: expected a mapping (key: value), got the text 'strict'"],
    ),
    case(
        "null-section",
        [("detection:\n  alarm_period_seconds: 86400\n  evaluation_periods: 1\n", "detection:\n")],
        ["30: detection: expected a mapping (key: value), got nothing (null)"],
    ),
    case(
        "many-at-once",
        [
            ("org_id: o-exampleorg1", "org_id: exampleorg"),
            ("home_region: us-east-1", "home_region: us-east-9"),
            ("retention_days: 35", "retention_days: -1"),
            (
                "  Project: backup-anomaly-detection",
                "  Project: backup-anomaly-detection\n  aws:x: y",
            ),
        ],
        [
            "5: organization.org_id: 'exampleorg' is not a valid organization id (o- and 10-32 lowercase letters or digits)",
            "8: security.home_region: unknown region 'us-east-9' (did you mean 'us-east-2'?); expected a region botocore knows, such as 'us-east-1'",
            "29: backup.retention_days: must be at least 1, got -1",
            "35: tags['aws:x']: tag key 'aws:x': the 'aws:' prefix is reserved for AWS",
        ],
    ),
]


def test_base_is_valid(tmp_path):
    assert issues_of(write(tmp_path, BASE)) == []


def test_there_are_at_least_30_distinct_invalid_configs():
    texts = {edit(BASE, p.values[0]) for p in CASES}
    assert len(texts) == len(CASES) >= 30


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_invalid_config(tmp_path, edits, expected):
    text = edit(BASE, edits)
    actual = issues_of(write(tmp_path, text))
    (tmp_path / "actual.txt").write_text("\n".join(actual) + "\n")
    assert actual == expected


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_issue_line_shows_the_key(tmp_path, edits, expected):
    """The reported line is the one that holds the key named last in the path."""
    source = edit(BASE, edits).splitlines()
    checked = 0
    for issue in expected:
        line, path, message = issue.split(": ", 2)
        last = re.search(r"(?:^|\.)([A-Za-z_][\w-]*)$|\['([^']+)'\]$", path)
        if last is None or message.startswith("required"):
            continue  # a list item, the top level, or a key that is absent by definition
        key = last.group(1) or last.group(2)
        assert f"{key}:" in source[int(line) - 1], (issue, source[int(line) - 1])
        checked += 1
    assert checked or all(
        "[" in i.split(": ")[1][-4:] or "required" in i or "(top level)" in i for i in expected
    )


def test_issues_are_sorted_by_line(tmp_path):
    many = [p for p in CASES if p.id == "many-at-once"][0]
    actual = issues_of(write(tmp_path, edit(BASE, many.values[0])))
    numbers = [int(issue.split(":", 1)[0]) for issue in actual]
    assert numbers == sorted(numbers) and len(numbers) == 4


@pytest.mark.parametrize(
    "name", ["account-id-octal", "no-targets", "yaml-syntax", "many-at-once", "empty-file"]
)
def test_cli_validate_exits_2_with_the_issues(tmp_path, capsys, name):
    if name == "empty-file":
        path, expected = (
            write(tmp_path, ""),
            [
                "1: (top level): the file is empty; expected a mapping with organization, security and deployment"
            ],
        )
    else:
        param = [p for p in CASES if p.id == name][0]
        path, expected = write(tmp_path, edit(BASE, param.values[0])), param.values[1]
    out = tmp_path / "out"
    code = build.main(["validate", "--config", str(path), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err == [f"{path}:{line}" for line in expected] + [
        f"{len(expected)} problem(s) in the config; nothing was written."
    ]
    assert not out.exists()


def test_cli_synth_writes_nothing_on_invalid_config(tmp_path, capsys):
    path = write(tmp_path, edit(BASE, [("home_region: us-east-1", "home_region: mars-1")]))
    out = tmp_path / "dist"
    assert build.main(["synth", "--config", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{path}:8: security.home_region: unknown region 'mars-1'; expected a region botocore knows, such as 'us-east-1'"
    )
    assert not out.exists()
