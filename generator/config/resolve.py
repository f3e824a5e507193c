"""Resolve per-OU and per-account overrides into one set of settings per deployment target.

The more specific wins: an account's own override over its OU's, its OU's over the
defaults. A target keeps only the settings its layers set (``overrides``); every other
setting is the config's default, read through :meth:`ResolvedTarget.value`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from generator.config.model import OrgConfig


@dataclass(frozen=True)
class ResolvedTarget:
    """One OU or account with the regions and overridden settings that apply to it.

    Attributes:
        kind: ``ou`` or ``account``.
        id: the OU (or root) id, or the account id.
        ou: the OU the target is reached through (its own id for an OU).
        regions: where it gets stack instances.
        overrides: contract name -> value, for each setting its layers set, sorted by name.
    """

    kind: Literal["ou", "account"]
    id: str
    ou: str | None
    regions: tuple[str, ...]
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def settings(self) -> Mapping[str, Any]:
        """The overridden settings, by contract name."""
        return dict(self.overrides)

    def value(self, config: OrgConfig, name: str) -> Any:
        """The value the target runs with: its override, else the config's."""
        own = dict(self.overrides)
        return own[name] if name in own else config.setting(name)


def _frozen(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


def resolve_targets(config: OrgConfig) -> list[ResolvedTarget]:
    """Targets in config order, OUs first; an account inherits its OU's overrides.

    Excluded accounts are not targets (they get no stack instance, so no regions or
    settings); :func:`generator.instance_groups.instance_groups` reads them from
    ``deployment.targets.excluded()`` to carve them out of their OU.
    """
    default_regions = tuple(config.deployment.regions)
    ous = {ou.id: ou for ou in config.deployment.targets.organizational_units}
    resolved: list[ResolvedTarget] = []
    for ou in config.deployment.targets.organizational_units:
        resolved.append(
            ResolvedTarget(
                "ou",
                ou.id,
                ou.id,
                tuple(ou.regions or default_regions),
                _frozen(ou.overrides.values()),
            )
        )
    for account in config.deployment.targets.deployed_accounts():
        parent = ous.get(account.ou) if account.ou else None
        regions = account.regions or (parent.regions if parent else None) or default_regions
        values = parent.overrides.values() if parent is not None else {}
        values.update(account.overrides.values())
        resolved.append(
            ResolvedTarget("account", account.id, account.ou, tuple(regions), _frozen(values))
        )
    return resolved


_RESOLVED: dict[int, tuple[ResolvedTarget, ...]] = {}


def targets(config: OrgConfig) -> list[ResolvedTarget]:
    """Every deployment target with its regions and resolved overrides (cached).

    Excluded accounts are left out: they are carve-outs, not targets.
    """
    # Cached per deployment section (the only input), outside the model so that equality
    # and model_copy() are untouched; the entry goes when the section does.
    key = id(config.deployment)
    found = _RESOLVED.get(key)
    if found is None:
        found = _RESOLVED[key] = tuple(resolve_targets(config))
        weakref.finalize(config.deployment, _RESOLVED.pop, key, None)
    return list(found)
