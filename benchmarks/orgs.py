"""Synthetic organizations for scale measurements: N accounts in M OUs over K regions.

``python benchmarks/orgs.py --accounts 10000 --ous 200 --regions 17 > big.yaml`` writes a
valid SERVICE_MANAGED config in the same shape a security team's file would have: every
OU a target, every account listed under its OU (quoted 12-digit ids), one account in ten
with detection overrides of its own, one in twenty-five limited to fewer regions, a few
OUs with overrides. The output depends only on the arguments (no randomness), so runs
compare like with like.
"""

from __future__ import annotations

import argparse
import sys

# Commercial regions, in a stable order; 17 is the big case.
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ca-central-1",
    "sa-east-1",
    "af-south-1",
    "me-south-1",
    "eu-south-1",
)


def ou_id(index: int) -> str:
    """A valid, unique OU id for ``index``."""
    return f"ou-ab12-{index:08d}"


def account_id(index: int) -> str:
    """A valid, unique 12-digit account id (leading zeros included) for ``index``."""
    return f"{100000000000 + index:012d}"


def org_yaml(accounts: int, ous: int, regions: int) -> str:
    """The config text for ``accounts`` accounts spread over ``ous`` OUs in ``regions``."""
    if not 1 <= regions <= len(REGIONS):
        raise ValueError(f"regions must be 1-{len(REGIONS)}")
    chosen = REGIONS[:regions]
    out = [
        "# Synthetic organization written by benchmarks/orgs.py\n",
        "name: scale-test\n",
        "organization:\n",
        '  management_account_id: "999999999990"\n',
        '  delegated_admin_account_id: "999999999991"\n',
        "  org_id: o-scaletest01\n",
        "security:\n",
        '  account_id: "999999999992"\n',
        f"  home_region: {chosen[0]}\n",
        "  notification_emails: [secops@example.com]\n",
        "deployment:\n",
        "  permission_model: SERVICE_MANAGED\n",
        "  call_as: DELEGATED_ADMIN\n",
        f"  regions: [{', '.join(chosen)}]\n",
        "  targets:\n",
        "    organizational_units:\n",
    ]
    for o in range(ous):
        out.append(f"      - id: {ou_id(o)}\n        name: ou-{o}\n")
        if o % 20 == 0:
            out.append(
                "        overrides:\n          detection:\n            ceiling_percent: 30\n"
            )
    out.append("    accounts:\n")
    for a in range(accounts):
        out.append(
            f'      - id: "{account_id(a)}"\n        name: account-{a}\n'
            f"        ou: {ou_id(a % ous)}\n"
        )
        if a % 25 == 0 and regions > 1:
            out.append(f"        regions: [{', '.join(chosen[: max(1, regions // 2)])}]\n")
        if a % 10 == 0:
            out.append(
                f"        overrides:\n          detection:\n            band_width: {2 + a % 3}\n"
            )
    out.append(
        "backup:\n  schedule: cron(0 5 ? * * *)\n  retention_days: 35\n"
        "detection:\n  band_width: 2\n  ceiling_percent: 50\n"
        "tags:\n  Project: backup-anomaly-detection\n"
    )
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--ous", type=int, default=200)
    parser.add_argument("--regions", type=int, default=17)
    args = parser.parse_args(argv)
    sys.stdout.write(org_yaml(args.accounts, args.ous, args.regions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
