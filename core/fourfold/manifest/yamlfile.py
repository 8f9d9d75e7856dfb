"""Reading manifest YAML safely, remembering where each value came from.

The safe loader is bounded three ways: file size, alias expansion (a "billion laughs"
file expands exponentially when walked even though PyYAML shares the objects), and
nesting depth. Each value's line is recorded by its path so that validation errors can
point at ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["YamlDocument", "read_yaml", "MAX_MANIFEST_BYTES", "MAX_EXPANDED_NODES", "YamlProblem"]

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 20_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


class YamlProblem(Exception):
    def __init__(self, line: int, message: str):
        self.line = line
        self.message = message
        super().__init__(f"{line}: {message}")


@dataclass
class YamlDocument:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest known prefix of ``path`` (1 if none)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int = 0) -> int:
    if depth > MAX_DEPTH:
        raise YamlProblem(_line(node), f"nesting is deeper than {MAX_DEPTH} levels")
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


def _construct(node: yaml.Node, loader: yaml.SafeLoader, path: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, _line(node))
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        raise YamlProblem(_line(node), f"the YAML tag '{node.tag}' is not allowed in manifests")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise YamlProblem(_line(key_node), f"mapping keys must be plain values, found {type(key).__name__}")
            if key in result:
                raise YamlProblem(_line(key_node), f"key '{key}' appears twice in the same mapping")
            child = (*path, str(key))
            lines[child] = _line(key_node)
            result[key] = _construct(value_node, loader, child, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, loader, (*path, i), lines) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_yaml(path: Path) -> YamlDocument:
    """Parse one YAML document from ``path``.

    :raises YamlProblem: with the line and a message for size, syntax, aliases.
    :raises OSError: when the file cannot be read.
    """
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise YamlProblem(
            1, f"the file is {size:,} bytes; manifests are limited to {MAX_MANIFEST_BYTES:,} bytes (1 MiB)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(line, "the file is not UTF-8 text") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise YamlProblem(1, "the file is empty; a manifest starts with 'fourfold: 1'")
        expanded = _expanded_size(root, {})
        if expanded > MAX_EXPANDED_NODES:
            raise YamlProblem(
                _line(root),
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values; refusing to read it (alias bomb?)",
            )
        lines: dict[Path_, int] = {}
        data = _construct(root, loader, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
        raise YamlProblem(line, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, lines=lines)
