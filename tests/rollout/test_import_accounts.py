"""import-accounts: new accounts appended with `ou:`, everything else kept, leavers reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.config.loader import load_config
from generator.errors import UserError
from rollout.onboarding import NewAccount, import_accounts, merge_accounts
from tests.rollout.conftest import CallRecorder, org_sessions

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "accounts.yaml"


def test_import_merges_new_accounts_and_keeps_everything_else(aws, tmp_path, display):
    path = tmp_path / "accounts.yaml"
    original = EXAMPLE.read_text()
    path.write_text(original)
    config = load_config(path)
    # 777777777777 joins Production; 888888888888 sits in a child OU of Workloads.
    sessions = org_sessions(config, CallRecorder(), {"ou-ab12-prod0001": ["777777777777"]})
    org = sessions.base.client("organizations")
    child = org.create_organizational_unit(ParentId="ou-ab12-work0002", Name="Batch")
    child_id = child["OrganizationalUnit"]["Id"]
    created = org.create_account(Email="b@example.com", AccountName="batch: nightly")
    new_id = created["CreateAccountStatus"]["AccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    org.move_account(AccountId=new_id, SourceParentId=root, DestinationParentId=child_id)
    sandbox = org.create_organizational_unit(ParentId=root, Name="Sandbox")["OrganizationalUnit"]
    lab = org.create_account(Email="l@example.com", AccountName="lab")["CreateAccountStatus"]
    org.move_account(
        AccountId=lab["AccountId"], SourceParentId=root, DestinationParentId=sandbox["Id"]
    )
    # 555555555555 leaves the organization.
    org.remove_account_from_organization(AccountId="555555555555")

    plan = import_accounts(path, config, sessions, display)

    merged = path.read_text()
    # Everything the user wrote is still there, byte for byte, in the same order.
    assert _without_added(merged) == original
    added = {a.id: a for a in plan.added}
    assert added["777777777777"].ou == "ou-ab12-prod0001"
    # the nested account is listed under the targeted ancestor, its own OU noted
    assert added[new_id].ou == "ou-ab12-work0002"
    assert f"in OU Batch ({child_id})" in merged
    assert 'name: "batch: nightly"' in merged
    assert "111111111111" not in {a.id for a in plan.added}  # management account skipped
    # the example's excluded account is in the organization: it is listed, so not re-added
    assert "666666666666" not in added
    assert added[lab["AccountId"]].ou == sandbox["Id"]  # an untargeted OU: the account alone
    assert plan.untargeted_ous == [(sandbox["Id"], "Sandbox", 1)]
    assert plan.left == ["555555555555"]
    assert "555555555555" in merged  # reported, not removed
    reloaded = load_config(path)
    ids = [a.id for a in reloaded.deployment.targets.accounts]
    assert ids[:2] == ["444444444444", "555555555555"] and "777777777777" in ids
    assert [a.id for a in reloaded.deployment.targets.excluded()] == ["666666666666"]
    assert "555555555555 is in the config but not an active member" in display.console.export_text()

    # A second import finds nothing new and leaves the file alone.
    again = import_accounts(path, load_config(path), sessions, display)
    assert again.added == [] and path.read_text() == merged


def _without_added(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "added by `build.py import-accounts`" in line)
    end = start + 1
    while end < len(lines) and (
        lines[end].startswith("      ") or lines[end].lstrip().startswith("- id")
    ):
        end += 1
    return "".join(lines[:start] + lines[end:])


def test_merge_into_absent_and_empty_lists():
    new = [NewAccount("999999999999", "new", "ou-ab12-prod0001")]
    absent = "deployment:\n  targets:\n    organizational_units:\n      - id: ou-ab12-prod0001\n"
    merged = yaml.safe_load(merge_accounts(absent, new))
    assert merged["deployment"]["targets"]["accounts"] == [
        {"id": "999999999999", "name": "new", "ou": "ou-ab12-prod0001"}
    ]
    empty = "deployment:\n  targets:\n    accounts: []   # none yet\n  regions: [us-east-1]\n"
    out = merge_accounts(empty, new)
    assert "# none yet" in out
    data = yaml.safe_load(out)
    assert data["deployment"]["targets"]["accounts"][0]["id"] == "999999999999"
    assert data["deployment"]["regions"] == ["us-east-1"]


def test_flow_list_is_refused_with_advice():
    text = 'deployment:\n  targets:\n    accounts: [{id: "444444444444"}]\n'
    with pytest.raises(UserError, match="block list"):
        merge_accounts(text, [NewAccount("999999999999", "n", "r-abcd")])


def test_unmergeable_file_is_left_unchanged(aws, tmp_path, display):
    text = EXAMPLE.read_text()
    # the same accounts, written as a flow list: valid YAML, but no safe place to insert
    flow = text.replace(
        "    accounts:\n",
        '    accounts: [{id: "444444444444", ou: ou-ab12-prod0001}]\n    _old:\n',
        1,
    )
    path = tmp_path / "accounts.yaml"
    path.write_text(flow)
    config = load_config(EXAMPLE)
    sessions = org_sessions(config, CallRecorder(), {"ou-ab12-prod0001": ["777777777777"]})
    with pytest.raises(UserError, match="block list"):
        import_accounts(path, config, sessions, display)
    assert path.read_text() == flow
