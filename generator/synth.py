"""Synthesis: every template, the Lambda zip and ``manifest.json``, written atomically.

Everything is built in a temporary folder beside the output folder and swapped in only when
complete, so a failure (an invalid config, a template that does not build) leaves the
previous output untouched and never a half-written one. Output is byte-identical for the
same config and sources: JSON with sorted keys, no timestamps.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from troposphere import Template

from generator.config.model import OrgConfig, PermissionModel
from generator.config.resolve import targets as resolved_targets
from generator.errors import UserError
from generator.layout import layout
from generator.naming import Names
from generator.package import DEFAULT_SOURCE, LambdaPackage, build_lambda_zip
from generator.templates import artifacts, central, member, stackset, stackset_roles

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

# CloudFormation limits (StackSet bodies and stacks alike).
INLINE_TEMPLATE_BYTES = 51_200
S3_TEMPLATE_BYTES = 1_000_000
MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote; the deploy code consumes these fields."""

    out_dir: Path
    templates: dict[str, Path]
    lambda_package: LambdaPackage
    member_template_sha256: str
    member_template_key: str
    manifest_path: Path


def render(template: Template) -> str:
    """Stable JSON of ``template`` (sorted keys, one-space indent, final newline)."""
    return template.to_json(indent=1, sort_keys=True) + "\n"


def build_templates(config: OrgConfig, lambda_key: str) -> dict[str, str]:
    """Every template for ``config`` rendered to JSON, by name (pure, no I/O)."""
    rendered = {
        "central": render(central.build(config, lambda_key)),
        "member": render(member.build(config)),
        "artifacts": render(artifacts.build(config)),
    }
    member_key = Names.member_template_key(_sha256(rendered["member"].encode()))
    # Never a template that fails at deploy time (see stackset.unexpressible).
    if not stackset.unexpressible(config):
        rendered["stackset"] = render(
            stackset.build(config, member_template_key=member_key, lambda_key=lambda_key)
        )
    if config.deployment.permission_model is PermissionModel.SELF_MANAGED:
        rendered["stackset-roles"] = render(stackset_roles.build(config))
    return dict(sorted(rendered.items()))


def template_stats(body: str) -> dict:
    """Size and counts of one rendered template, against CloudFormation's limits."""
    data = json.loads(body)
    size = len(body.encode())
    return {
        "bytes": size,
        "resources": len(data.get("Resources", {})),
        "parameters": len(data.get("Parameters", {})),
        "outputs": len(data.get("Outputs", {})),
        "fits_inline": size <= INLINE_TEMPLATE_BYTES,
        "fits_s3": size <= S3_TEMPLATE_BYTES,
    }


def limit_problems(name: str, stats: dict) -> list[str]:
    """Hard limits a template breaks (an inline-size overrun is not one: use S3)."""
    problems = []
    if not stats["fits_s3"]:
        problems.append(f"{name}: {stats['bytes']} bytes, over the 1 MB limit of S3 templates")
    for what, limit in (
        ("resources", MAX_RESOURCES),
        ("parameters", MAX_PARAMETERS),
        ("outputs", MAX_OUTPUTS),
    ):
        if stats[what] > limit:
            problems.append(f"{name}: {stats[what]} {what}, over the limit of {limit}")
    return problems


def target_count(config: OrgConfig) -> dict:
    """Stack instances (accounts x regions) the config targets, as far as it knows.

    Accounts listed in the config are counted exactly. Under SERVICE_MANAGED an OU target
    also deploys to every account of the OU, which the config does not list, so the count
    is then a lower bound.
    """
    accounts = {t.id: t for t in resolved_targets(config) if t.kind == "account"}
    ous = [t for t in resolved_targets(config) if t.kind == "ou"]
    service_managed = config.deployment.permission_model is PermissionModel.SERVICE_MANAGED
    instances = sum(len(t.regions) for t in accounts.values())
    exact = not (service_managed and ous)
    regions = sorted({r for t in resolved_targets(config) for r in t.regions})
    result = {
        "accounts": len(accounts),
        "organizational_units": len(ous) if service_managed else 0,
        "regions": regions,
        "stack_instances": instances,
        "exact": exact,
    }
    if not exact:
        result["note"] = (
            "lower bound: OU targets also deploy to accounts of those OUs that the config "
            "does not list"
        )
    return result


def manifest(
    config: OrgConfig,
    rendered: dict[str, str],
    package: LambdaPackage,
    member_key: str,
    root: Path,
) -> dict:
    """The manifest: every artifact with its sha256, the buckets and the target count."""
    names = Names(config.name)
    where = layout(config)
    admin = where.admin_account
    entries = []
    for name, body in rendered.items():
        data = body.encode()
        entry = {
            "name": name,
            "kind": "template",
            "path": f"{name}.json",
            "sha256": _sha256(data),
            **template_stats(body),
        }
        if name == "member":
            entry["key"] = member_key
        entries.append(entry)
    entries.append(
        {
            "name": "detector",
            "kind": "lambda-zip",
            "path": package.path.relative_to(root).as_posix(),
            "sha256": package.sha256,
            "bytes": package.size,
            "key": package.key,
        }
    )
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": config.name,
        "permission_model": config.deployment.permission_model.value,
        "backup_mode": config.backup.mode.value,
        "stacks": {
            "central": {
                "stack_name": names.central_stack,
                "account": config.security.account_id,
                "region": config.security.home_region,
                "template": "central",
            },
            "artifacts": {
                "stack_name": names.artifacts_stack,
                "account": admin,
                "regions": list(where.artifact_regions),
                "template": "artifacts",
            },
            "stackset": {
                **(
                    {"omitted": stackset.unexpressible(config)}
                    if "stackset" not in rendered
                    else {}
                ),
                "stack_name": names.stackset_stack,
                "stackset_name": names.stackset,
                "account": admin,
                "region": config.security.home_region,
                "template": "stackset",
            },
            **_roles_stack(config, names),
        },
        "artifact_buckets": {
            region: where.artifact_bucket(region) for region in where.artifact_regions
        },
        "artifacts": sorted(entries, key=lambda e: e["name"]),
        "targets": target_count(config),
    }


def _roles_stack(config: OrgConfig, names: Names) -> dict:
    """The StackSet roles stack (SELF_MANAGED): admin account plus every target account."""
    placed = layout(config).stacks_of("stackset-roles")
    if not placed:
        return {}
    return {
        "stackset-roles": {
            "stack_name": names.stackset_roles_stack,
            "accounts": sorted(s.account for s in placed),
            "region": config.security.home_region,
            "template": "stackset-roles",
        }
    }


def synthesize(
    config: OrgConfig, out_dir: Path, lambda_source: Path = DEFAULT_SOURCE
) -> SynthResult:
    """Writes every template, the Lambda zip and manifest.json to ``out_dir`` atomically.

    Args:
        config: a validated organization config.
        out_dir: the output folder; replaced as a whole when synthesis succeeds.
        lambda_source: the detector sources (default: the repository's ``lambda/``).
    """
    out_dir = Path(out_dir).resolve()
    _check_replaceable(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        # The folder the user named, not the temporary one beside it they never typed.
        raise UserError(
            f"--out {out_dir}: cannot create it ({exc.strerror or exc}); choose a folder "
            "you can write to"
        ) from exc
    try:
        package = build_lambda_zip(staging, lambda_source)
        rendered = build_templates(config, package.key)
        member_sha = _sha256(rendered["member"].encode())
        member_key = Names.member_template_key(member_sha)
        for name, body in rendered.items():
            (staging / f"{name}.json").write_text(body, encoding="utf-8")
        document = manifest(config, rendered, package, member_key, staging)
        (staging / MANIFEST).write_text(
            json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        staging.chmod(0o755)  # mkdtemp makes it private; the output is not secret
        _swap_in(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(
            f"--out {out_dir}: cannot write there ({exc.strerror or exc}); nothing was changed"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SynthResult(
        out_dir=out_dir,
        templates={name: out_dir / f"{name}.json" for name in rendered},
        lambda_package=LambdaPackage(
            path=out_dir / package.key, sha256=package.sha256, key=package.key, size=package.size
        ),
        member_template_sha256=member_sha,
        member_template_key=member_key,
        manifest_path=out_dir / MANIFEST,
    )


def _check_replaceable(out_dir: Path) -> None:
    """Refuses to replace anything but an empty folder or a previous synth output."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise UserError(
            f"--out {out_dir} is not empty and holds no {MANIFEST} from a previous build; "
            "refusing to replace it (choose an empty or new folder)"
        )


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replaces ``out_dir`` with ``staging`` (two renames on the same file system)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{staging.name.rsplit('-', 1)[-1]}")
        out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        if old is not None:
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
