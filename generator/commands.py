"""The generator's CLI commands: ``synth``, ``validate`` and ``schema``.

Each takes the parsed arguments (``.config``, ``.out``, ``.debug``) and returns the exit
code; ``build.main`` turns ConfigError and UserError into exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from generator.config.loader import load_config
from generator.config.model import OrgConfig
from generator.config.resolve import targets as resolved_targets


def synth(args: argparse.Namespace) -> int:
    """Writes every template, the Lambda zip and manifest.json to ``--out``."""
    from generator.synth import MANIFEST as MANIFEST_NAME
    from generator.synth import synthesize

    config = load_config(args.config)
    result = synthesize(config, Path(args.out))
    document = json.loads(result.manifest_path.read_text())
    rows = [(a["path"], a["bytes"], a["sha256"][:12]) for a in document["artifacts"]]
    rows.append((MANIFEST_NAME, result.manifest_path.stat().st_size, ""))
    width = max(len(path) for path, _, _ in rows)
    for path, size, digest in rows:
        print(f"{path:<{width}}  {size:>9} bytes  {digest}".rstrip())
    for reason in document["stacks"]["stackset"].get("omitted", []):
        print(f"stackset.json not written: {reason}")
    targets = document["targets"]
    bound = "" if targets["exact"] else " at least"
    print(
        f"targets:{bound} {targets['stack_instances']} stack instances "
        f"({targets['accounts']} listed accounts, {len(targets['regions'])} regions)"
    )
    print(f"wrote {result.out_dir}")
    return 0


def lint_regions(config: OrgConfig) -> list[str]:
    """Regions to lint against: where any template of this config is deployed."""
    regions = set(config.deployment.regions) | {config.security.home_region}
    regions.update(r for t in resolved_targets(config) for r in t.regions)
    return sorted(regions)


def lint(paths: dict[str, Path], regions: list[str]) -> list[str]:
    """cfn-lint findings (errors and warnings) for each template, one line each."""
    from cfnlint.api import ManualArgs, lint_file

    findings = []
    for name, path in sorted(paths.items()):
        for match in lint_file(path, ManualArgs(regions=regions)):
            level = match.rule.severity
            if level in ("error", "warning"):
                findings.append(
                    f"{name}.json:{match.linenumber}: {match.rule.id} {level}: {match.message}"
                )
    return findings


def validate(args: argparse.Namespace) -> int:
    """Validates the config, then cfn-lints every template and checks CloudFormation limits.

    Nothing is written to ``--out``: templates are synthesized into a temporary folder.
    Exit 0 when all is well, 2 when the config breaks a hard limit, 1 when cfn-lint finds a
    problem in a generated template (a generator bug).
    """
    from generator.synth import limit_problems, synthesize, template_stats

    config = load_config(args.config)
    print(f"{args.config}: valid")
    from generator.templates.stackset import unexpressible

    for reason in unexpressible(config):
        print(f"note: stackset.json will not be written: {reason}")
    with tempfile.TemporaryDirectory(prefix="backup-anomaly-validate-") as tmp:
        result = synthesize(config, Path(tmp) / "out")
        problems: list[str] = []
        for name, path in sorted(result.templates.items()):
            stats = template_stats(path.read_text())
            where = "inline" if stats["fits_inline"] else "S3 only"
            print(
                f"{name}: {stats['bytes']} bytes ({where}), {stats['resources']} resources, "
                f"{stats['parameters']} parameters"
            )
            problems += limit_problems(name, stats)
        findings = lint(result.templates, lint_regions(config))
    for line in problems + findings:
        print(line, file=sys.stderr)
    if findings:
        print(f"cfn-lint: {len(findings)} finding(s) in generated templates", file=sys.stderr)
        return 1
    if problems:
        return 2
    print(f"cfn-lint: {len(result.templates)} templates clean")
    return 0


def schema(args: argparse.Namespace) -> int:
    """Prints the JSON Schema of the config (for editor completion)."""
    try:
        from generator.config.schema import json_schema
    except ImportError:  # the config package's own schema module is optional
        from generator.config.model import OrgConfig

        def json_schema() -> dict:
            return OrgConfig.model_json_schema()

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0
