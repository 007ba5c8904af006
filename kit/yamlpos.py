"""YAML loading that remembers where every value came from (line numbers for errors)."""
from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    pass


def load_with_lines(text: str, first_line: int = 1) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML; return the data and a map from key path to its 1-based line.

    ``first_line`` is the file line on which ``text`` starts (front matter starts at 2)."""
    node = yaml.compose(text, Loader=_Loader)
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    _walk(node, (), lines, first_line - 1)
    data = yaml.load(text, Loader=_Loader)
    return data, lines


class DuplicateKey(ValueError):
    def __init__(self, path: Path_, key: str, line: int, first: int):
        self.path, self.key, self.line, self.first = path, key, line, first
        super().__init__(f"duplicate key {key!r} (first at line {first})")


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], offset: int) -> None:
    lines[path] = node.start_mark.line + 1 + offset
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1 + offset
            if key in seen:
                raise DuplicateKey(path, key, line, seen[key])
            seen[key] = line
            lines[path + (key,)] = key_node.start_mark.line + 1 + offset
            _walk(value_node, path + (key,), lines, offset)
            lines[path + (key,)] = key_node.start_mark.line + 1 + offset
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, offset)


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path`` or of its nearest ancestor that has one."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
