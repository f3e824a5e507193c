"""Config sections built from the settings contract (``backup_anomaly.contract``).

Every contract entry with a ``config`` path becomes a field of its section's pydantic model
(``detection``, ``detection.detector``, ``backup``) with the contract's type, bounds,
default and description; an overridable entry also becomes an optional field of the same
section's override model (``overrides.detection``...). Adding a setting to the contract
adds it here, to the JSON Schema, to the line-aware error messages and to the overrides,
with nothing to write in this package.

Section models are generated, so type checkers see them as :class:`Section`, whose
attributes are ``Any``; code that needs a value by name uses :func:`value` or the typed
resolved targets in :mod:`generator.config.resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from backup_anomaly import contract
from backup_anomaly.contract import Kind, Setting
from correlator import contract as correlator_contract
from generator.config.fields import Float, Int, Schedule
from generator.config.rules import duplicates, raise_problems


def configured() -> tuple[Setting, ...]:
    """Every contract entry the config sets: the detector's, then the correlator's."""
    return (*contract.configured(), *correlator_contract.configured())


def setting(name: str) -> Setting:
    """The entry called ``name`` in either contract.

    Raises:
        KeyError: there is none.
    """
    if name in contract.BY_NAME:
        return contract.BY_NAME[name]
    return correlator_contract.BY_NAME[name]


class Section(BaseModel):
    """Base of every generated section: frozen, unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )

    if TYPE_CHECKING:
        # Generated fields are invisible to type checkers: they read them as Any.
        def __getattr__(self, name: str) -> Any: ...


def _pattern(setting: Setting):
    compiled = re.compile(setting.pattern or ".*")

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {setting.what or setting.name}")
        return value

    return check


def _multiple(setting: Setting):
    def check(value: int | None) -> int | None:
        if value is not None and setting.multiple_of and value % setting.multiple_of:
            why = f" ({setting.what})" if setting.what else ""
            raise ValueError(f"must be a multiple of {setting.multiple_of}{why}, got {value}")
        return value

    return check


def _unique(setting: Setting):
    def check(value: list | None) -> list | None:
        if value is not None:
            raise_problems(duplicates([str(v) for v in value], setting.what or setting.name))
        return value

    return check


def annotation(setting: Setting, choices: Mapping[str, type[StrEnum]]) -> Any:
    """The pydantic type of a setting's config field, constraints included."""
    if setting.kind is Kind.INT:
        return Annotated[Int, AfterValidator(_multiple(setting))]
    if setting.kind is Kind.FLOAT:
        return Float
    if setting.kind is Kind.BOOL:
        return bool
    if setting.kind is Kind.CRON:
        return Schedule
    if setting.kind is Kind.CHOICES:
        enum = choices.get(setting.name) or StrEnum(
            setting.name.title().replace("_", ""), {c: c for c in setting.choices}
        )
        items = list[enum]  # type: ignore[valid-type]
        return Annotated[items, Field(min_length=1), AfterValidator(_unique(setting))]
    schema: dict[str, Any] = {"type": "string"}
    if setting.pattern:
        schema["pattern"] = f"^{setting.pattern}$"
    return Annotated[str, AfterValidator(_pattern(setting)), WithJsonSchema(schema)]


def bounds(setting: Setting) -> dict[str, Any]:
    """The ``Field`` bounds of a number setting (on the field itself, where pydantic puts
    them in the JSON Schema as ``minimum``/``maximum``)."""
    found: dict[str, Any] = {}
    if setting.kind in (Kind.INT, Kind.FLOAT):
        if setting.minimum is not None:
            found["ge"] = setting.minimum
        if setting.maximum is not None:
            found["le"] = setting.maximum
    return found


def _default(setting: Setting, choices: Mapping[str, type[StrEnum]]) -> Any:
    if setting.kind is Kind.CHOICES:
        enum = choices.get(setting.name)
        values = setting.default if isinstance(setting.default, tuple | list) else ()
        return [enum(v) for v in values] if enum else list(values)
    return setting.default


def entries(section: str, *, overridable: bool = False) -> list[Setting]:
    """The contract entries of ``section`` (only the overridable ones when asked)."""
    return [s for s in configured() if s.section == section and (s.overridable or not overridable)]


def _children(section: str) -> list[str]:
    prefix = section + "."
    found = {s.section for s in configured() if (s.section or "").startswith(prefix)}
    return sorted({name[len(prefix) :].split(".")[0] for name in found if name})


def section_model(
    name: str,
    section: str,
    *,
    overrides: bool = False,
    base: type[BaseModel] = Section,
    choices: Mapping[str, type[StrEnum]] | None = None,
) -> type[Section]:
    """The pydantic model of one config section, generated from the contract.

    Args:
        name: the class name (shown in the JSON Schema).
        section: dotted section path (``detection``).
        overrides: build the override model: overridable entries only, all optional.
        base: a hand-written model whose fields (not from the contract) the section adds to.
        choices: enums to use for ``CHOICES`` settings, by setting name.
    """
    choices = choices or {}
    fields: dict[str, Any] = {}
    for setting in entries(section, overridable=overrides):
        kind = annotation(setting, choices)
        if overrides:
            fields[setting.name] = (
                kind | None,
                Field(default=None, description=setting.description, **bounds(setting)),
            )
        else:
            fields[setting.name] = (
                kind,
                Field(
                    default=_default(setting, choices),
                    description=setting.description,
                    **bounds(setting),
                ),
            )
    for child in _children(section):
        path = f"{section}.{child}"
        if overrides and not any(
            s.overridable for s in configured() if (s.section or "").startswith(path)
        ):
            continue
        model = section_model(
            name + child.title().replace("_", ""), path, overrides=overrides, choices=choices
        )
        fields[child] = (model, Field(default_factory=model))
    model = create_model(name, __base__=cast(Any, base), **fields)
    return cast(type[Section], model)


def overridden(overrides: BaseModel) -> dict[str, object]:
    """The settings an ``overrides`` model sets, by contract name (unset ones left out)."""
    found: dict[str, object] = {}
    for setting in configured():
        if not setting.overridable or setting.section is None:
            continue
        parts = setting.config.split(".") if setting.config else []
        node: Any = getattr(overrides, parts[0], None)
        for part in parts[1:-1]:
            node = getattr(node, part, None)
        found_value = getattr(node, parts[-1], None) if node is not None else None
        if found_value is not None:
            found[setting.name] = found_value
    return found


def value(root: BaseModel, setting: Setting) -> Any:
    """The value ``root`` (the whole config) gives ``setting`` (its default when unset)."""
    if setting.config is None:
        raise ValueError(f"{setting.name} is not set in the config")
    node: Any = root
    for part in setting.config.split("."):
        node = getattr(node, part)
    return node
