"""The JSON Schema for editors agrees with the loader on the example and on typos."""

from __future__ import annotations

import json

import jsonschema
import yaml

from generator.config.regions import known_regions
from generator.config.schema import json_schema


def _validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_example_config_matches_the_schema():
    data = yaml.safe_load(open("config/accounts.yaml"))
    assert list(_validator().iter_errors(data)) == []


def test_schema_rejects_a_typo_and_a_missing_section():
    data = yaml.safe_load(open("config/accounts.yaml"))
    data["deployment"]["regoins"] = data["deployment"].pop("regions")
    del data["security"]
    messages = sorted(e.message for e in _validator().iter_errors(data))
    assert messages == [
        "'regions' is a required property",
        "'security' is a required property",
        "Additional properties are not allowed ('regoins' was unexpected)",
    ]


def test_regions_are_botocore_regions_and_descriptions_are_there():
    schema = json_schema()
    regions = schema["$defs"]["Deployment"]["properties"]["regions"]
    assert set(regions["items"]["enum"]) == known_regions()
    assert regions["description"].startswith("Every region a member stack")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(schema)  # serializable as is
