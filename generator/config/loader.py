"""Load and validate ``accounts.yaml`` (placeholder: line-aware version to follow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from generator.config.model import OrgConfig


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the config file, located for the user."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class ConfigError(Exception):
    """The config is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def load_config(path: str | Path) -> OrgConfig:
    """Reads, parses and validates the config at ``path``; raises :class:`ConfigError`."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    try:
        return OrgConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                ConfigIssue(str(path), 1, 1, ".".join(map(str, e["loc"])), e["msg"])
                for e in exc.errors()
            ]
        ) from exc
