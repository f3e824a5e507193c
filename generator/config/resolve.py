"""Resolve per-OU and per-account overrides into one setting per deployment target."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from generator.config.model import OrgConfig, ResolvedTarget


M = TypeVar("M", bound=BaseModel)


def _merge(base: M, override: M) -> M:
    """``override``'s set fields on top of ``base`` (both partial override models)."""
    # __dict__ rather than model_dump(): the values are already validated scalars, and at
    # 10,000 accounts a dump per account is a measurable share of the load time.
    changes = {k: v for k, v in override.__dict__.items() if v is not None}
    if not changes:
        return base
    return base.model_copy(update=changes)


def resolve_targets(config: OrgConfig) -> list[ResolvedTarget]:
    """Targets in config order, OUs first; an account inherits its OU's overrides.

    Excluded accounts are not targets (they get no stack instance, so no regions or
    settings); :func:`generator.instance_groups.instance_groups` reads them from
    ``deployment.targets.excluded()`` to carve them out of their OU.

    ``model_construct`` skips revalidation: every value was validated when the config was
    loaded, and at 10,000 accounts validating them again would double the resolve time.
    """
    from generator.config.model import ResolvedTarget

    default_regions = tuple(config.deployment.regions)
    ous = {ou.id: ou for ou in config.deployment.targets.organizational_units}
    resolved: list[ResolvedTarget] = []
    for ou in config.deployment.targets.organizational_units:
        resolved.append(
            ResolvedTarget.model_construct(
                kind="ou",
                id=ou.id,
                ou=ou.id,
                regions=tuple(ou.regions or default_regions),
                detection=ou.overrides.detection,
                backup=ou.overrides.backup,
            )
        )
    for account in config.deployment.targets.deployed_accounts():
        parent = ous.get(account.ou) if account.ou else None
        detection, backup = account.overrides.detection, account.overrides.backup
        regions = account.regions or (parent.regions if parent else None) or default_regions
        if parent is not None:
            detection = _merge(parent.overrides.detection, detection)
            backup = _merge(parent.overrides.backup, backup)
        resolved.append(
            ResolvedTarget.model_construct(
                kind="account",
                id=account.id,
                ou=account.ou,
                regions=tuple(regions),
                detection=detection,
                backup=backup,
            )
        )
    return resolved
