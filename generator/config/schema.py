"""JSON Schema of ``accounts.yaml`` for editors (completion, hover text, red squiggles).

Generated from the pydantic model, so it cannot drift from what the loader accepts;
descriptions come from the attribute docstrings in :mod:`generator.config.model`. The
schema covers shapes, patterns and ranges; cross-field rules (duplicates, the management
account as a target...) are only in ``build.py validate``.
"""

from __future__ import annotations

from generator.config.model import OrgConfig

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict:
    """The config's JSON Schema (draft 2020-12) as a dict, ready for ``json.dumps``."""
    schema = OrgConfig.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Backup anomaly detection: organization config (config/accounts.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
