"""The loader's handling of files and YAML: positions, aliases, failures, both parsers."""

from __future__ import annotations

import pytest
import yaml

from generator.config import yamlsource
from generator.config.loader import ConfigError, ConfigIssue, load_config
from generator.config.model import OrgConfig, PermissionModel
from generator.config.resolve import targets as resolved
from tests.generator.config_helpers import BASE, edit, issues_of, write

EXAMPLE = "config/accounts.yaml"


def test_the_example_config_loads():
    config = load_config(EXAMPLE)
    assert isinstance(config, OrgConfig)
    assert config.admin_account_id == "222222222222"
    assert config.deployment.permission_model is PermissionModel.SERVICE_MANAGED
    assert [(t.kind, t.id) for t in resolved(config)] == [
        ("ou", "ou-ab12-prod0001"),
        ("ou", "ou-ab12-work0002"),
        ("account", "444444444444"),
        ("account", "555555555555"),
    ]


def test_issue_prints_file_line_path_message():
    issue = ConfigIssue("c.yaml", 7, 3, "security.account_id", "bad")
    assert str(issue) == "c.yaml:7: security.account_id: bad"


def test_an_unquoted_id_that_is_not_octal_stays_text(tmp_path):
    # YAML 1.1 reads 0-prefixed digits as octal only when all are 0-7: this one is a string.
    path = write(tmp_path, edit(BASE, [('- id: "444444444444"', "- id: 012345678901")]))
    assert load_config(path).deployment.targets.accounts[0].id == "012345678901"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "1: (top level): the file is empty; expected a mapping with organization, "
            "security and deployment",
        ),
        (
            "# only a comment\n\n",
            "1: (top level): the file is empty; expected a mapping with "
            "organization, security and deployment",
        ),
        (
            "---\n",
            "1: (top level): the file is empty; expected a mapping with organization, "
            "security and deployment",
        ),
        (
            "\n- a\n- b\n",
            "2: (top level): expected a mapping (key: value) at the top level, got a list",
        ),
        (
            "just text\n",
            "1: (top level): expected a mapping (key: value) at the top level, "
            "got the value 'just text'",
        ),
        (
            "a: 1\n\tb: 2\n",
            "2: (top level): a tab character at column 1: YAML indents with spaces only; "
            "replace the tab with spaces",
        ),
        ("a: *nowhere\n", "1: (top level): unknown alias *nowhere (no &nowhere above)"),
        ("a: &x [1, *x]\n", "1: (top level): alias *x refers to itself (recursive anchor)"),
    ],
    ids=[
        "empty",
        "comment-only",
        "bare-document",
        "list",
        "scalar",
        "tab",
        "unknown-alias",
        "recursive-alias",
    ],
)
def test_unusable_documents(tmp_path, text, expected):
    assert issues_of(write(tmp_path, text)) == [expected]


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(i) for i in caught.value.issues] == [f"{path}:1: (file): file not found"]


def test_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert [str(i) for i in caught.value.issues] == [
        f"{tmp_path}:1: (file): is a directory, expected a YAML file"
    ]


def test_non_utf8_bytes_are_located(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("Project: backup", "Projet: caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (issue,) = caught.value.issues
    assert str(issue) == (
        f"{path}:34: (file): not UTF-8 text (byte 0xe9 at offset {BASE.index('Project') + 11})"
    )


def test_byte_order_mark_and_crlf_are_fine(tmp_path):
    path = tmp_path / "windows.yaml"
    text = edit(BASE, [("retention_days: 35", "retention_days: 0")])
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert issues_of(path) == ["29: backup.retention_days: must be at least 1, got 0"]


def test_anchors_aliases_and_merge_keys(tmp_path):
    text = edit(
        BASE,
        [
            (
                "        overrides:\n          detection:\n            ceiling_percent: 30\n",
                "        overrides: &prod\n          detection:\n            ceiling_percent: 30\n",
            ),
            (
                "        overrides:\n          detection:\n            band_width: 3\n",
                "        overrides:\n          <<: *prod\n"
                "          backup:\n            retention_days: 7\n",
            ),
        ],
    )
    account = load_config(write(tmp_path, text)).deployment.targets.accounts[0]
    assert account.overrides.detection.ceiling_percent == 30
    assert account.overrides.backup.retention_days == 7


def test_an_error_inside_an_anchor_is_reported_at_the_anchor_and_at_each_alias(tmp_path):
    text = edit(
        BASE,
        [
            ("            ceiling_percent: 30\n", "            ceiling_percent: &c 300\n"),
            ("            band_width: 3\n", "            ceiling_percent: *c\n"),
        ],
    )
    assert issues_of(write(tmp_path, text)) == [
        "19: deployment.targets.organizational_units[0].overrides.detection.ceiling_percent: "
        "must be at most 100, got 300",
        "25: deployment.targets.accounts[0].overrides.detection.ceiling_percent: "
        "must be at most 100, got 300",
    ]


def test_billion_laughs_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert [i.message for i in caught.value.issues] == [
        "aliases expand this document to more than 5,000,000 values; refusing to process it"
    ]


def test_duplicate_keys_in_list_items_report_both_lines(tmp_path):
    text = edit(
        BASE,
        [
            (
                "        ou: ou-ab12-prod0001\n",
                "        ou: ou-ab12-prod0001\n        ou: ou-ab12-prod0001\n",
            )
        ],
    )
    assert issues_of(write(tmp_path, text)) == [
        "23: deployment.targets.accounts[0].ou: duplicate key 'ou' (first at line 22); "
        "YAML would keep only the last"
    ]


def test_yaml_data_matches_pyyaml(tmp_path):
    # The event-built data must be exactly what PyYAML's own loader makes of the file.
    text = open(EXAMPLE).read() + "\nextra:\n  when: 2024-01-02\n  n: 0x1F\n  f: 1.5e3\n  o: 0o17\n"
    assert yamlsource.parse(text).data == yaml.safe_load(text)


# Cases that must read the same through libyaml and the pure-Python parser (syntax error
# wording differs between the two, so those are left out).
SAME_IN_BOTH = [
    [('management_account_id: "111111111111"', "management_account_id: 012345670123")],
    [("  retention_days: 35\n", "  retention_days: 35\n  schedule: cron(0 6 ? * * *)\n")],
    [("  regions: [us-east-1, eu-west-1]", "  regoins: [us-east-1, eu-west-1]")],
    [("  Project: backup-anomaly-detection", "  Enabled: yes")],
    [("home_region: us-east-1", "home_region: !Ref Region")],
]


@pytest.mark.parametrize("edits", SAME_IN_BOTH)
def test_pure_python_parser_gives_the_same_issues(tmp_path, monkeypatch, edits):
    path = write(tmp_path, edit(BASE, edits))
    with_libyaml = issues_of(path)
    monkeypatch.setattr(yamlsource, "_Loader", yaml.SafeLoader)
    assert issues_of(path) == with_libyaml != []


def test_libyaml_is_used_when_available():
    assert yamlsource._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
