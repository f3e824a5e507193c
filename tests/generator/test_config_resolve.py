"""Override resolution: account over OU over defaults, regions the same way."""

from __future__ import annotations

from generator.config.loader import load_config
from generator.config.resolve import targets as resolved
from generator.instance_groups import instance_groups
from tests.generator.config_helpers import write

CONFIG = """\
organization:
  management_account_id: "111111111111"
  org_id: o-exampleorg1
security:
  account_id: "333333333333"
  home_region: us-east-1
deployment:
  regions: [us-east-1, eu-west-1, eu-central-1]
  targets:
    organizational_units:
      - id: ou-ab12-prod0001
        regions: [us-east-1, eu-west-1]
        overrides:
          detection: {band_width: 3, ceiling_percent: 30}
          backup: {retention_days: 90}
      - id: ou-ab12-work0002
    accounts:
      - id: "444444444444"            # own band width, inherits the OU's ceiling and regions
        ou: ou-ab12-prod0001
        overrides:
          detection: {band_width: 4}
      - id: "555555555555"            # nothing of its own: exactly its OU
        ou: ou-ab12-prod0001
      - id: "666666666666"            # own regions beat the OU's
        ou: ou-ab12-prod0001
        regions: [eu-central-1]
      - id: "777777777777"            # its OU is not a target: only its own settings
        ou: ou-ab12-othr0003
        overrides:
          backup: {retention_days: 7}
"""


def _targets(tmp_path):
    return {t.id: t for t in resolved(load_config(write(tmp_path, CONFIG)))}


def test_account_over_ou_over_defaults(tmp_path):
    targets = _targets(tmp_path)
    assert targets["444444444444"].settings == {
        "band_width": 4,
        "ceiling_percent": 30,
        "retention_days": 90,
    }
    assert targets["444444444444"].regions == ("us-east-1", "eu-west-1")


def test_account_without_settings_is_its_ou(tmp_path):
    targets = _targets(tmp_path)
    account, ou = targets["555555555555"], targets["ou-ab12-prod0001"]
    assert (account.regions, account.settings) == (ou.regions, ou.settings)


def test_own_regions_win(tmp_path):
    assert _targets(tmp_path)["666666666666"].regions == ("eu-central-1",)


def test_ou_without_regions_uses_deployment_regions(tmp_path):
    targets = _targets(tmp_path)
    assert targets["ou-ab12-work0002"].regions == ("us-east-1", "eu-west-1", "eu-central-1")
    assert targets["ou-ab12-work0002"].settings == {}


def test_a_target_runs_with_its_override_else_the_default(tmp_path):
    config = load_config(write(tmp_path, CONFIG))
    account = {t.id: t for t in resolved(config)}["444444444444"]
    assert account.value(config, "band_width") == 4
    assert account.value(config, "evaluation_periods") == config.setting("evaluation_periods") == 1


def test_account_outside_target_ous_has_only_its_own_settings(tmp_path):
    target = _targets(tmp_path)["777777777777"]
    assert target.settings == {"retention_days": 7}
    assert target.regions == ("us-east-1", "eu-west-1", "eu-central-1")


def test_targets_returns_a_fresh_list(tmp_path):
    config = load_config(write(tmp_path, CONFIG))
    first = resolved(config)
    first.clear()
    assert len(resolved(config)) == 6


def test_instance_groups_carve_out_accounts_with_own_settings(tmp_path):
    groups = instance_groups(load_config(write(tmp_path, CONFIG)))
    carved = [g for g in groups if g.account_filter_type == "DIFFERENCE"]
    assert [(g.organizational_unit_ids, g.accounts) for g in carved] == [
        (("ou-ab12-prod0001",), ("444444444444", "666666666666"))
    ]
    own = sorted(a for g in groups if g.account_filter_type == "INTERSECTION" for a in g.accounts)
    assert own == ["444444444444", "666666666666", "777777777777"]


def test_copies_do_not_keep_stale_derived_values(tmp_path):
    config = load_config(write(tmp_path, CONFIG))
    assert config.admin_account_id == "111111111111"
    resolved(config)
    copy = config.model_copy(
        update={
            "organization": config.organization.model_copy(
                update={"delegated_admin_account_id": "222222222222"}
            ),
            "deployment": config.deployment.model_copy(
                update={"targets": config.deployment.targets.model_copy(update={"accounts": []})}
            ),
        }
    )
    assert copy.admin_account_id == "222222222222"
    assert [t.id for t in resolved(copy)] == ["ou-ab12-prod0001", "ou-ab12-work0002"]


def test_the_root_as_the_only_ou_target_is_valid(tmp_path):
    text = CONFIG.replace("      - id: ou-ab12-work0002\n", "").replace(
        "ou-ab12-prod0001", "r-ab12"
    )
    targets = resolved(load_config(write(tmp_path, text)))
    assert [t.id for t in targets if t.kind == "ou"] == ["r-ab12"]


# --- exclude: true ------------------------------------------------------------------------


def _with(tmp_path, accounts: str):
    """CONFIG with more account entries appended."""
    return load_config(write(tmp_path, CONFIG + accounts))


EXCLUDE_WORK = """\
      - id: "888888888888"            # offboarded: its OU stays a target
        ou: ou-ab12-work0002
        exclude: true
"""


def test_excluded_accounts_are_not_targets(tmp_path):
    config = _with(tmp_path, EXCLUDE_WORK)
    assert "888888888888" not in {t.id for t in resolved(config)}
    assert [a.id for a in config.deployment.targets.excluded()] == ["888888888888"]
    assert "888888888888" not in {a.id for a in config.deployment.targets.deployed_accounts()}


def test_only_exclusions_carve_the_ou_and_add_no_group(tmp_path):
    groups = instance_groups(_with(tmp_path, EXCLUDE_WORK))
    work = [g for g in groups if "ou-ab12-work0002" in g.organizational_unit_ids]
    assert [(g.account_filter_type, g.accounts) for g in work] == [
        ("DIFFERENCE", ("888888888888",))
    ]
    assert [g for g in groups if "888888888888" in g.accounts] == work


def test_exclusions_and_own_settings_in_one_ou(tmp_path):
    groups = instance_groups(_with(tmp_path, EXCLUDE_WORK.replace("work0002", "prod0001")))
    prod = [g for g in groups if g.organizational_unit_ids == ("ou-ab12-prod0001",)]
    (carved,) = [g for g in prod if g.account_filter_type == "DIFFERENCE"]
    # one DIFFERENCE names both kinds of carve-out; only accounts with settings get a group
    assert carved.accounts == ("444444444444", "666666666666", "888888888888")
    own = sorted(a for g in prod if g.account_filter_type == "INTERSECTION" for a in g.accounts)
    assert own == ["444444444444", "666666666666"]


def test_exclusion_under_an_untargeted_ou_changes_no_group(tmp_path):
    before = instance_groups(load_config(write(tmp_path, CONFIG)))
    after = instance_groups(_with(tmp_path, EXCLUDE_WORK.replace("work0002", "othr0009")))
    assert after == before


def test_self_managed_excluded_account_is_in_no_group(tmp_path):
    text = (
        CONFIG.split("  targets:\n")[0]
        + "  permission_model: SELF_MANAGED\n  targets:\n    accounts:\n"
        + '      - id: "444444444444"\n      - id: "555555555555"\n        exclude: true\n'
    )
    config = load_config(write(tmp_path, text))
    assert [g.accounts for g in instance_groups(config)] == [("444444444444",)]
