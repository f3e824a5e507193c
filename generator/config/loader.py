"""Load and validate ``accounts.yaml``: every problem at once, each on its own line.

``load_config`` reads the file, builds the data with the line of every key and list item
(:mod:`generator.config.yamlsource`), validates it with the pydantic model, and places
each error at the longest prefix of its path that the file has: a missing key is reported
on its parent's line, a bad list item on the item's. Issues print as
``FILE:LINE: path.to.field: message``, sorted by line. Nothing here writes anything.
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from generator.config.messages import clean_loc, dotted, expand, message, typo_of
from generator.config.model import OrgConfig
from generator.config.yamlsource import Parsed, YamlProblem, parse

FILE_PATH = "(file)"


@dataclass(frozen=True, order=True)
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
    """The config is invalid; ``issues`` lists every problem found, sorted by line."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        # Not every issue in the message: a broken large file can have millions.
        shown = "\n".join(str(i) for i in issues[:10])
        more = f"\n... and {len(issues) - 10} more" if len(issues) > 10 else ""
        super().__init__(shown + more)


# The largest config read: ten times one describing 10,000 accounts (~1 MB). A larger file
# is a mistake (a log, a dump), and parsing it would take minutes and gigabytes.
MAX_CONFIG_BYTES = 10 * 1024 * 1024


def _read(path: Path) -> str:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                [
                    ConfigIssue(
                        name,
                        1,
                        1,
                        FILE_PATH,
                        f"{size / 2**20:.1f} MB is over the {MAX_CONFIG_BYTES // 2**20} MB a "
                        "config may have; is this the right file?",
                    )
                ]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        problem = "file not found"
    except IsADirectoryError:
        problem = "is a directory, expected a YAML file"
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
    else:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError(
                [
                    ConfigIssue(
                        name,
                        line,
                        1,
                        FILE_PATH,
                        (f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"),
                    )
                ]
            ) from exc
    raise ConfigError([ConfigIssue(name, 1, 1, FILE_PATH, problem)])


def _locate(parsed: Parsed, loc: tuple) -> tuple[int, int]:
    lines = parsed.lines
    for end in range(len(loc), -1, -1):
        position = lines.get(loc[:end])
        if position is not None:
            return position
    return 1, 1


def validate(parsed: Parsed, file: str) -> tuple[OrgConfig | None, list[ConfigIssue]]:
    """Validates parsed data; returns the config (or None) and every located issue."""
    issues = [
        ConfigIssue(file, line, column, dotted(loc), text)
        for loc, line, column, text in parsed.problems
    ]
    try:
        config = OrgConfig.model_validate(parsed.data)
    except ValidationError as exc:
        config = None
        located = [
            (clean_loc(raw_loc, parsed.data), item)
            for error in exc.errors(include_url=False)
            for raw_loc, item in expand(dict(error))
        ]
        # A misspelt required key is also a missing one; the typo line says both.
        typos = {
            (*loc[:-1], typo_of(OrgConfig, loc))
            for (loc, _), item in located
            if item["type"] == "extra_forbidden"
        }
        for (loc, is_key), item in located:
            if loc in parsed.unreadable:
                continue  # "unsupported tag" already says it; "got null" would mislead
            if item["type"] == "missing" and loc in typos:
                continue
            source = None if is_key else parsed.scalars.get(loc)
            text = item["msg"] if item["type"] == "rule" else message(item, OrgConfig, loc, source)
            issues.append(ConfigIssue(file, *_locate(parsed, loc), dotted(loc), text))
    return config, sorted(set(issues))


def load_config(path: str | Path) -> OrgConfig:
    """Reads, parses and validates the config at ``path``.

    Raises:
        ConfigError: with every problem found (file, YAML syntax, validation), by line.
    """
    path = Path(path)
    text = _read(path)
    # Building 10,000 accounts allocates a few hundred thousand containers, none of them
    # in reference cycles; the cyclic collector would rescan them over and over (about a
    # third of the validation time at that size). It runs again as soon as we are done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        parsed = parse(text)
        config, issues = validate(parsed, str(path))
    except YamlProblem as exc:
        raise ConfigError(
            [ConfigIssue(str(path), exc.line, exc.column, dotted(()), exc.message)]
        ) from exc
    finally:
        if collecting:
            gc.enable()
    if issues or config is None:
        raise ConfigError(issues)
    _SOURCES[id(config)] = (str(path), parsed.lines)
    weakref.finalize(config, _SOURCES.pop, id(config), None)
    return config


# Where each key of a loaded config was written, for problems found after loading (a
# target the organization does not have): kept beside the config, never inside it.
_SOURCES: dict[int, tuple[str, dict]] = {}


def where(config: OrgConfig, loc: tuple[str | int, ...]) -> str:
    """``FILE:LINE`` of ``loc`` in the file ``config`` was loaded from (or ``config``)."""
    source = _SOURCES.get(id(config))
    if source is None:
        return "config"
    file, lines = source
    for end in range(len(loc), -1, -1):
        position = lines.get(loc[:end])
        if position is not None:
            return f"{file}:{position[0]}"
    return f"{file}:1"
