"""``safe_load``: PyYAML's safe loading, refusing a mapping that defines a key twice.

PyYAML (and omegaconf after it) silently keeps the last of two equal keys, so a config that sets
``data:`` twice, or ``num_frames`` twice inside one section, would lose the first setting without
a word. The check walks the composed node tree before constructing it: nodes still carry their
line numbers there, and the path from the root gives the dotted key.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"  # "<<: *anchor" merges keys; it is no key of its own


class DuplicateKeyError(yaml.YAMLError):
    """A mapping defines one key twice; the message names the dotted key and both lines."""


def safe_load(text: str, root: str = "") -> Any:
    """``yaml.safe_load(text)``, but a key defined twice in one mapping raises
    ``DuplicateKeyError``; ``root`` is the dotted key the document is the value of (overrides)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(node, root, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_unique_keys(node: yaml.Node, path: str, visited: set[int]) -> None:
    """Raises ``DuplicateKeyError`` for the first mapping under ``node`` with a repeated key."""
    if id(node) in visited:  # an alias of a node already walked (possibly recursive)
        return
    visited.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _check_unique_keys(child, f"{path}[{index}]", visited)
    if not isinstance(node, yaml.MappingNode):
        return
    marks: dict[tuple[str, Any], yaml.Mark] = {}
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        full = f"{path}.{name}" if path else str(name)
        if name is not None and key_node.tag != _MERGE_TAG:
            identity = (key_node.tag, name)  # "1" and 1 are different keys
            if identity in marks:
                where = _where(marks[identity], key_node.start_mark)
                raise DuplicateKeyError(
                    f"key {full!r} is defined twice, at {where}; each key may appear only once "
                    "in a mapping (YAML would silently keep the last)"
                )
            marks[identity] = key_node.start_mark
        _check_unique_keys(value_node, full, visited)


def _where(first: yaml.Mark, second: yaml.Mark) -> str:
    """``"lines 3 and 7"``, or ``"line 1, columns 2 and 12"`` for two keys on one line."""
    if first.line != second.line:
        return f"lines {first.line + 1} and {second.line + 1}"
    return f"line {first.line + 1}, columns {first.column + 1} and {second.column + 1}"
