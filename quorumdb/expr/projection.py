"""Projections: picking document paths out of an item (ProjectionExpression, AttributesToGet,
ReturnValues UPDATED_OLD/UPDATED_NEW).

The result keeps the nested structure of the picked paths; elements picked from one list are
compacted in index order, as DynamoDB returns them. Projection never mutates its input; the
picked values themselves are shared with the input item, not copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from quorumdb.expr.ast import Path
from quorumdb.expr.evaluate import get_path
from quorumdb.model.types import AttributeValue, Item

__all__ = ["Projection", "project_paths"]


class _Node:
    """A container being built: a map (str keys) or a list (int keys, compacted later)."""

    __slots__ = ("is_list", "children")

    def __init__(self, is_list: bool) -> None:
        self.is_list = is_list
        self.children: dict[Any, _Node | AttributeValue] = {}

    def render(self) -> AttributeValue:
        if self.is_list:
            return {"L": [_render(self.children[k]) for k in sorted(self.children)]}
        return {"M": {k: _render(v) for k, v in self.children.items()}}


def _render(node: _Node | AttributeValue) -> AttributeValue:
    return node.render() if isinstance(node, _Node) else node


def project_paths(item: Item, paths: Iterable[tuple[str | int, ...]]) -> Item:
    """The parts of ``item`` at ``paths`` (missing paths are skipped)."""
    root: dict[str, _Node | AttributeValue] = {}
    for path in paths:
        value = get_path(item, path)
        if value is None:
            continue
        head = path[0]
        assert isinstance(head, str)
        if len(path) == 1:
            root[head] = value
            continue
        container: Any = root
        for i, element in enumerate(path[:-1]):
            nxt = path[i + 1]
            children = container if isinstance(container, dict) else container.children
            child = children.get(element)
            if not isinstance(child, _Node):
                child = _Node(isinstance(nxt, int))
                children[element] = child
            container = child
        container.children[path[-1]] = value
    return {k: _render(v) for k, v in root.items()}


@dataclass(frozen=True, slots=True)
class Projection:
    """A resolved projection: the document paths to keep."""

    paths: tuple[tuple[str | int, ...], ...]

    @staticmethod
    def of(paths: Iterable[Path]) -> Projection:
        return Projection(tuple(p.resolved for p in paths))

    @property
    def top_level_names(self) -> tuple[str, ...]:
        """Top-level attributes the projection reads (for index projection checks)."""
        seen: dict[str, None] = {}
        for p in self.paths:
            seen.setdefault(str(p[0]), None)
        return tuple(seen)

    @property
    def nested_heads(self) -> tuple[str, ...]:
        """Top-level attributes the projection reaches below (``a.b``, ``a[0]``)."""
        seen: dict[str, None] = {}
        for p in self.paths:
            if len(p) > 1:
                seen.setdefault(str(p[0]), None)
        return tuple(seen)

    def apply(self, item: Item) -> Item:
        return project_paths(item, self.paths)
