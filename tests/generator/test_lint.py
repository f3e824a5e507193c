"""cfn-lint (zero errors and warnings) and checkov (zero failed checks) on every template.

Every template of every config variant is linted. checkov runs once, over one folder that
holds all of them, from its own virtual environment (it pins versions that fight moto and
cfn-lint). Skips are allowed only in a resource's Metadata, each with a reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from generator.commands import lint_regions
from tests.generator import template_helpers as h

CASES = [(variant, name) for variant in h.VARIANTS for name in sorted(h.synth(variant).templates)]


@pytest.mark.parametrize(("variant", "name"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_cfn_lint_finds_no_error_or_warning(variant, name):
    path = h.synth(variant).templates[name]
    matches = lint_file(path, ManualArgs(regions=lint_regions(h.config(variant))))
    findings = [
        f"{m.rule.id} {m.rule.severity} line {m.linenumber}: {m.message}"
        for m in matches
        if m.rule.severity in ("error", "warning")
    ]
    assert findings == []


def _checkov() -> str | None:
    candidates = [
        os.environ.get("CHECKOV"),
        str(h.REPO / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory) -> dict:
    checkov = _checkov()
    if checkov is None:
        pytest.skip(
            "checkov not found: set CHECKOV, or create .venv-checkov (the CI script installs it)"
        )
    folder = tmp_path_factory.mktemp("checkov")
    for variant, name in CASES:
        shutil.copy(h.synth(variant).templates[name], folder / f"{variant}-{name}.json")
    proc = subprocess.run(
        [
            checkov,
            "--directory",
            str(folder),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--skip-download",  # no network: never ask the platform for guidelines
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.stdout.strip(), f"checkov printed nothing (rc {proc.returncode}): {proc.stderr}"
    report = json.loads(proc.stdout)
    return {"report": report, "returncode": proc.returncode, "files": len(CASES)}


def test_checkov_reports_no_failed_check(checkov_report):
    report = checkov_report["report"]
    failed = [
        f"{c['check_id']} {c['resource']} ({Path(c['file_path']).name}): {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    assert checkov_report["returncode"] == 0


def test_checkov_skips_are_declared_in_metadata_with_a_reason():
    for variant, name, tpl in h.all_templates():
        for logical_id, res in tpl["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV_"), (variant, name, logical_id)
                assert len(skip["comment"]) > 40, (variant, name, logical_id, skip)
