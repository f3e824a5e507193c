"""Property-based tests of the loader: round trips, and nothing but ConfigError escapes."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.config.loader import ConfigError, load_config
from generator.config.resolve import targets as resolved
from tests.generator.config_helpers import BASE

YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any 12-digit id but the management account's (a target there is an error of its own).
account_ids = st.integers(min_value=0, max_value=10**12 - 2).map(lambda n: f"{n:012d}")
accounts = st.lists(
    st.fixed_dictionaries(
        {"id": account_ids},
        optional={
            "regions": st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True),
            "band_width": st.integers(min_value=1, max_value=20).map(lambda n: n / 2),
        },
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda a: a["id"],
)


def _load(text: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text)
        return load_config(path)


@SETTINGS
@given(accounts)
def test_valid_accounts_round_trip(listed):
    data = {
        "organization": {"management_account_id": "999999999999"},
        "security": {"account_id": "999999999998", "home_region": "us-east-1"},
        "deployment": {
            "permission_model": "SELF_MANAGED",
            "regions": REGIONS,
            "targets": {
                "accounts": [
                    {
                        "id": a["id"],
                        **({"regions": a["regions"]} if "regions" in a else {}),
                        **(
                            {"overrides": {"detection": {"band_width": a["band_width"]}}}
                            if "band_width" in a
                            else {}
                        ),
                    }
                    for a in listed
                ]
            },
        },
    }
    targets = resolved(_load(yaml.safe_dump(data)))
    assert [(t.id, t.regions, t.settings.get("band_width")) for t in targets] == [
        (a["id"], tuple(a.get("regions", REGIONS)), a.get("band_width")) for a in listed
    ]


def _assert_located(text: str) -> None:
    try:
        _load(text)
    except ConfigError as exc:
        assert exc.issues
        last = len(YAML_BREAKS.findall(text)) + 1
        for issue in exc.issues:
            assert 1 <= issue.line <= last, issue
            assert issue.path and issue.message, issue


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text):
    _assert_located(text)


BASE_LINES = BASE.splitlines()


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(BASE_LINES), st.integers(-2, 2)), max_size=40))
def test_shuffled_config_lines_give_a_config_or_a_config_error(picked):
    # Lines of a real config, reordered and re-indented: YAML-shaped nonsense.
    _assert_located(
        "\n".join(" " * max(0, 2 * d) + line.strip() if d else line for line, d in picked) + "\n"
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


ALL_PATHS = [p for p in _paths(yaml.safe_load(BASE)) if p]


@SETTINGS
@given(st.sampled_from(ALL_PATHS), values)
def test_any_value_anywhere_gives_a_config_or_a_config_error(path, value):
    data = yaml.safe_load(BASE)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    _assert_located(yaml.safe_dump(data))
