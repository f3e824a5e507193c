"""YAML text to plain data plus the line of every key and list item.

The node tree is composed by libyaml (``CSafeLoader``) when PyYAML was built with it, else
by the pure-Python loader; the data is then constructed here in one walk that records
``path -> (line, column)`` for each mapping key and sequence item, notes the source text of
every plain scalar YAML turned into something other than a string (so messages can say
"you wrote 0123..., YAML read an octal number"), and reports duplicate keys with both
lines instead of keeping the last one silently, as PyYAML does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml: several times faster to compose, which matters at 10,000 accounts
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALARS = SafeConstructor.yaml_constructors
_CONSTRUCTOR = SafeConstructor()

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


def _position(mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def compose(text: str) -> Node | None:
    """The single document's node tree (``None`` for an empty document)."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _position(mark) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if (
            exc.context and exc.problem and exc.context_mark) else ""
        raise YamlProblem(line, column, f"YAML syntax error: {problem}{context}") from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlProblem(
            line, column, f"character {exc.character!r} is not allowed in YAML"
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error above has a mark
        raise YamlProblem(1, 1, f"YAML error: {exc}") from exc
    finally:
        loader.dispose()


class _Builder:
    def __init__(self) -> None:
        self.parsed = Parsed(data=None)
        self.lines = self.parsed.lines
        self.done: dict[int, tuple[object, int]] = {}  # id(node) -> (value, expanded size)
        self.active: set[int] = set()
        self.expanded = 0

    def problem(self, path: Loc, node: Node, message: str) -> None:
        self.parsed.problems.append((path, *_position(node.start_mark), message))

    def build(self, node: Node, path: Loc) -> object:
        if isinstance(node, ScalarNode):
            self.expanded += 1
            if node.tag == _STR:
                return node.value
            return self.scalar(node, path)
        key = id(node)
        if key in self.done:
            # An alias: share the value built at the anchor. Its inner lines stay those of
            # the anchor; errors inside it are placed at the alias, the longest known prefix.
            value, size = self.done[key]
            self.expanded += size
            if self.expanded > MAX_EXPANDED_VALUES:
                raise YamlProblem(*_position(node.start_mark), (
                    f"aliases expand this document to more than {MAX_EXPANDED_VALUES:,} "
                    "values; refusing to process it"))
            return value
        if key in self.active:
            raise YamlProblem(*_position(node.start_mark), "an alias refers to itself "
                                                           "(recursive anchor)")
        self.active.add(key)
        before = self.expanded
        if isinstance(node, MappingNode):
            value = self.mapping(node, path)
        else:
            value = self.sequence(node, path)
        self.active.discard(key)
        self.expanded += 1
        self.done[key] = (value, self.expanded - before)
        return value

    def scalar(self, node: ScalarNode, path: Loc) -> object:
        construct = _SCALARS.get(node.tag)
        if construct is None or node.tag in (_MAP, _SEQ):
            self.problem(path, node, f"unsupported YAML tag {node.tag!r}; write plain values")
            return None
        try:
            value = construct(_CONSTRUCTOR, node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.problem(path, node, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}"
                                     f": {exc}")
            return None
        if not node.style:  # plain: None from the pure loader, '' from libyaml
            self.parsed.scalars[path] = node.value
        return value

    def sequence(self, node: SequenceNode, path: Loc) -> list:
        if node.tag != _SEQ:
            self.problem(path, node, f"unsupported YAML tag {node.tag!r}; write a plain list")
        lines = self.lines
        out = []
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            lines[item_path] = (item.start_mark.line + 1, item.start_mark.column + 1)
            out.append(self.build(item, item_path))
        return out

    def mapping(self, node: MappingNode, path: Loc) -> dict:
        if node.tag != _MAP:
            self.problem(path, node, f"unsupported YAML tag {node.tag!r}; write a plain mapping")
        lines = self.lines
        out: dict = {}
        first_line: dict[str, int] = {}
        merged: list[dict] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(path, key_node, "a key must be plain text, not a list or mapping")
                continue
            if key_node.tag == _MERGE:
                merged.extend(self.merge(value_node, path))
                continue
            # Keys are kept as written: `2024:` is the key "2024", `yes:` the key "yes".
            name = key_node.value
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            key_path = (*path, name)
            if name in first_line:
                self.problem(key_path, key_node, (
                    f"duplicate key {name!r} (first at line {first_line[name]}); "
                    "YAML would keep only the last"))
            else:
                first_line[name] = line
            lines[key_path] = (line, column)
            out[name] = self.build(value_node, key_path)
        if merged:
            # `<<: *defaults`: keys written here win over merged ones, earlier merges over later.
            combined: dict = {}
            for source in reversed(merged):
                combined.update(source)
            combined.update(out)
            out = combined
        return out

    def merge(self, node: Node, path: Loc) -> list[dict]:
        if isinstance(node, SequenceNode):
            sources = [self.build(item, path) for item in node.value]
        else:
            sources = [self.build(node, path)]
        good = [s for s in sources if isinstance(s, dict)]
        if len(good) != len(sources):
            self.problem(path, node, "'<<' merges only mappings (an alias like *defaults)")
        return good


def parse(text: str) -> Parsed:
    """Composes and constructs ``text``; raises :class:`YamlProblem` for unusable input.

    Problems that do not stop construction (duplicate keys, unsupported tags) are
    returned in ``Parsed.problems`` so they are reported together with validation errors.
    """
    try:
        root = compose(text)
    except RecursionError as exc:
        raise YamlProblem(1, 1, "the document is nested too deeply") from exc
    if root is None or (isinstance(root, ScalarNode) and root.tag.endswith(":null")):
        raise YamlProblem(1, 1, "the file is empty; expected a mapping with organization, "
                                "security and deployment")
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else f"the text {root.value!r}"
        raise YamlProblem(*_position(root.start_mark), (
            f"expected a mapping (key: value) at the top level, got {kind}"))
    builder = _Builder()
    builder.lines[()] = _position(root.start_mark)
    try:
        builder.parsed.data = builder.build(root, ())
    except RecursionError as exc:
        raise YamlProblem(1, 1, "the document is nested too deeply") from exc
    return builder.parsed
