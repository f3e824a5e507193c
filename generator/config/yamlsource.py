"""YAML text to plain data plus the line of every key and list item.

libyaml (``CSafeLoader``, when PyYAML was built with it; else the pure-Python parser)
produces the event stream, and one loop here builds the data from it, recording
``path -> (line, column)`` for each mapping key and sequence item, the source text of
every plain scalar YAML turned into something other than a string (so a message can say
"you wrote 0123..., YAML read an octal number"), and duplicate keys with both lines
instead of keeping the last silently, as PyYAML does.

Why events and not ``yaml.compose``: at 10,000 accounts composing the node tree spends
most of its time in PyYAML's generic Python resolver, called once per scalar; building
from events with a resolver specialised to what a config holds is several times faster
(see ``benchmarks/config_scale.py``). Keys are never resolved: they are kept as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

try:  # libyaml: the parser in C
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_MERGE_KEY = "<<"
_SCALARS = SafeConstructor.yaml_constructors
_CONSTRUCTOR = SafeConstructor()
# PyYAML's YAML 1.1 implicit types (int, float, bool, null, timestamp...) by first
# character, exactly as its Resolver uses them: `yes` is a boolean, `0123` octal.
_IMPLICIT = Resolver.yaml_implicit_resolvers

# A few anchors nested in each other ("billion laughs") expand exponentially; validating
# the expansion would take forever, so a document larger than this once expanded is refused.
MAX_EXPANDED_VALUES = 5_000_000


class YamlProblem(Exception):
    """The text is not a YAML document we can use; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str):
        self.line, self.column, self.message = line, column, message
        super().__init__(f"{line}:{column}: {message}")


@dataclass
class Parsed:
    """The constructed data with its source positions and the problems found on the way."""

    data: object
    lines: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    scalars: dict[Loc, str] = field(default_factory=dict)
    problems: list[tuple[Loc, int, int, str]] = field(default_factory=list)
    unreadable: set[Loc] = field(default_factory=set)
    """Values replaced by None because YAML could not construct them (already reported)."""


_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as line breaks


def _position(mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _clamped(text: str, line: int, column: int) -> tuple[int, int]:
    # At the end of the input libyaml reports the line after the last one, which an
    # editor may not even show: name the last line of the file instead.
    breaks = _BREAKS.findall(text)
    last = len(breaks) + 1
    if breaks and text.endswith(breaks[-1]):
        last -= 1  # a final line break ends the last line; it does not start another
    last = max(1, last)
    return (last, 1) if line > last else (line, column)


def _resolve(value: str) -> str:
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("is_map", "value", "path", "key", "start", "anchor", "merges", "mark")

    def __init__(self, is_map: bool, path: Loc, start: int, anchor, mark):
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.path = path
        self.key: object = None  # mapping: the key whose value comes next (or _SKIP)
        self.start = start  # expanded count when the frame opened
        self.anchor = anchor
        self.merges: list[dict] = []
        self.mark = mark


_PENDING = object()  # an anchor whose collection is still open
_SKIP = object()  # the key of a value to build and drop (after a bad key)


def _build(events, parsed: Parsed) -> object:
    lines, scalars, problems = parsed.lines, parsed.scalars, parsed.problems
    anchors: dict[str, object] = {}
    stack: list[_Frame] = []
    expanded = 0
    skip = 0  # depth inside a collection used as a key, which is dropped
    root: object = None
    documents = 0

    def problem(path: Loc, mark, message: str) -> None:
        problems.append((path, mark.line + 1, mark.column + 1, message))

    for event in events:
        cls = event.__class__
        if skip:
            if cls is MappingStartEvent or cls is SequenceStartEvent:
                skip += 1
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                skip -= 1
            continue

        top = stack[-1] if stack else None
        # --- a mapping key ------------------------------------------------------------
        if top is not None and top.is_map and top.key is None and cls is not MappingEndEvent:
            mark = event.start_mark
            if cls is ScalarEvent:
                key = event.value
                if key == _MERGE_KEY and event.implicit[0] and event.tag is None:
                    top.key = _MERGE_KEY
                    continue
                key_path = (*top.path, key)
                if key in top.value:
                    first = lines[key_path][0]
                    problem(
                        key_path,
                        mark,
                        f"duplicate key {key!r} (first at line {first}); "
                        "YAML would keep only the last",
                    )
                lines[key_path] = (mark.line + 1, mark.column + 1)
                top.key = key
                continue
            problem(top.path, mark, "a key must be plain text, not a list, mapping or alias")
            top.key = _SKIP
            if cls is MappingStartEvent or cls is SequenceStartEvent:
                skip = 1
            continue

        # --- a value: where it goes -----------------------------------------------------
        if (
            cls is ScalarEvent
            or cls is MappingStartEvent
            or cls is SequenceStartEvent
            or cls is AliasEvent
        ):
            if top is None:
                path: Loc = ()
                if cls is not AliasEvent:
                    lines[()] = _position(event.start_mark)
            elif top.is_map:
                path = (*top.path, top.key) if isinstance(top.key, str) else top.path
            else:
                path = (*top.path, len(top.value))
                mark = event.start_mark
                lines[path] = (mark.line + 1, mark.column + 1)

            if cls is ScalarEvent:
                expanded += 1
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _resolve(event.value) if event.implicit[0] else _STR
                if tag == _STR:
                    value: object = event.value
                else:
                    value = _scalar(event, tag, path, problem)
                    if value is None and tag != _NULL:
                        parsed.unreadable.add(path)
                    if event.implicit[0] and not event.style:
                        scalars[path] = event.value
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
            elif cls is AliasEvent:
                found = anchors.get(event.anchor)
                if found is None:
                    raise YamlProblem(
                        *_position(event.start_mark),
                        f"unknown alias *{event.anchor} (no &{event.anchor} above)",
                    )
                if found is _PENDING:
                    raise YamlProblem(
                        *_position(event.start_mark),
                        f"alias *{event.anchor} refers to itself (recursive anchor)",
                    )
                value, size = cast(tuple[object, int], found)
                expanded += size
                if expanded > MAX_EXPANDED_VALUES:
                    raise YamlProblem(
                        *_position(event.start_mark),
                        (
                            f"aliases expand this document to more than {MAX_EXPANDED_VALUES:,} "
                            "values; refusing to process it"
                        ),
                    )
            else:
                is_map = cls is MappingStartEvent
                tag = event.tag
                if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
                    problem(
                        path,
                        event.start_mark,
                        f"unsupported YAML tag {tag!r}; write a "
                        f"plain {'mapping' if is_map else 'list'}",
                    )
                if event.anchor is not None:
                    anchors[event.anchor] = _PENDING
                stack.append(_Frame(is_map, path, expanded, event.anchor, event.start_mark))
                continue
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            frame = stack.pop()
            value = frame.value
            if frame.merges:
                # `<<: *defaults`: keys written here win, then earlier merges over later.
                combined: dict[Any, Any] = {}
                for source in reversed(frame.merges):
                    combined.update(source)
                combined.update(cast(dict[Any, Any], value))
                value = combined
            expanded += 1
            if frame.anchor is not None:
                anchors[frame.anchor] = (value, expanded - frame.start)
            top = stack[-1] if stack else None
        elif cls is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise YamlProblem(
                    *_position(event.start_mark),
                    ("a second YAML document (---) starts here; the config is one document"),
                )
            continue
        else:
            continue  # stream and document ends

        # --- attach the finished value ----------------------------------------------------
        if top is None:
            root = value
        elif top.is_map:
            key = top.key
            top.key = None
            if key is _MERGE_KEY:
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(s, dict) for s in sources):
                    problem(
                        top.path,
                        top.mark,
                        "'<<' merges only mappings (an alias like *defaults, or a list of them)",
                    )
                top.merges.extend(s for s in sources if isinstance(s, dict))
            elif key is not _SKIP:
                top.value[key] = value
        else:
            top.value.append(value)
    return root


def _scalar(event: ScalarEvent, tag: str, path: Loc, problem) -> object:
    construct = _SCALARS.get(tag)
    if construct is None or tag in (_MAP, _SEQ):
        problem(path, event.start_mark, f"unsupported YAML tag {tag!r}; write a plain value")
        return None
    try:
        return construct(
            _CONSTRUCTOR,
            # libyaml's events carry its own Mark type, which the stubs do not know.
            ScalarNode(
                tag,
                event.value,
                cast(Any, event.start_mark),
                cast(Any, event.end_mark),
                event.style,
            ),
        )
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        problem(
            path,
            event.start_mark,
            f"cannot read {event.value!r} as {tag.rsplit(':', 1)[-1]}: {exc}",
        )
        return None


def _tab_near(text: str, line: int) -> int | None:
    """The column of a tab in the indentation or the separators of ``line``, if any."""
    lines = _BREAKS.split(text)
    if not 1 <= line <= len(lines):
        return None
    row = lines[line - 1]
    code = row.split("#", 1)[0]
    if "\t" not in code:
        return None
    # A tab inside a quoted value is data, not layout.
    if code.count('"') or code.count("'"):
        head = code.split('"', 1)[0].split("'", 1)[0]
        if "\t" not in head:
            return None
    return code.index("\t") + 1


def parse(text: str) -> Parsed:
    """Parses ``text``; raises :class:`YamlProblem` for text that is not a usable mapping.

    Problems that do not stop construction (duplicate keys, unsupported tags) are
    returned in ``Parsed.problems`` so they are reported together with validation errors.
    """
    parsed = Parsed(data=None)
    loader = _Loader(text)
    try:
        root = _build(_events(loader), parsed)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _clamped(text, *_position(mark)) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = (
            f" ({exc.context} at line {exc.context_mark.line + 1})"
            if (exc.context and exc.problem and exc.context_mark)
            else ""
        )
        tab = _tab_near(text, line)
        if tab is not None:
            # libyaml's words for a tab ("cannot start any token") never say "tab".
            raise YamlProblem(
                line,
                tab,
                f"a tab character at column {tab}: YAML indents with spaces only; replace the "
                "tab with spaces",
            ) from exc
        raise YamlProblem(line, column, f"YAML syntax error: {problem}{context}") from exc
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = len(_BREAKS.findall(before)) + 1
        column = len(_BREAKS.split(before)[-1]) + 1
        raise YamlProblem(
            line, column, f"character {exc.character!r} is not allowed in YAML"
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML's errors above carry marks
        raise YamlProblem(1, 1, f"YAML error: {exc}") from exc
    finally:
        loader.dispose()
    if root is None:
        raise YamlProblem(
            1, 1, "the file is empty; expected a mapping with organization, security and deployment"
        )
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else f"the value {root!r}"
        line, column = parsed.lines.get((), (1, 1))
        raise YamlProblem(
            line, column, f"expected a mapping (key: value) at the top level, got {kind}"
        )
    parsed.data = root
    return parsed


def _events(loader):
    while loader.check_event():
        yield loader.get_event()
