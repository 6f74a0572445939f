"""The resolved condition a request evaluates (ConditionExpression, FilterExpression, Expected,
QueryFilter, ScanFilter all become one of these).

A ``Condition`` is an immutable value that may be evaluated any number of times, from any
thread; it never mutates the item it looks at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quorumdb.expr.ast import And, Arith, Between, Call, Compare, CondNode, In, Not, Or, Path
from quorumdb.expr.evaluate import Predicate, compile_condition
from quorumdb.model.types import Item

__all__ = ["Condition"]

_EMPTY: Item = {}


@dataclass(frozen=True, slots=True)
class Condition:
    node: CondNode | None  # None: no condition at all (always true)
    _predicate: Predicate | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.node is not None:
            object.__setattr__(self, "_predicate", compile_condition(self.node))

    def evaluate(self, item: Item | None) -> bool:
        """True if ``item`` (None: no item) satisfies the condition."""
        predicate = self._predicate
        if predicate is None:
            return True
        return predicate(item if item is not None else _EMPTY)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Top-level attributes the condition reads, in order of first use."""
        seen: dict[str, None] = {}
        if self.node is not None:
            _collect(self.node, seen)
        return tuple(seen)


    @property
    def nested_heads(self) -> tuple[str, ...]:
        """Top-level attributes the condition reads below (``a.b``, ``a[0]``)."""
        seen: dict[str, None] = {}
        if self.node is not None:
            _collect(self.node, seen, nested_only=True)
        return tuple(seen)


def _collect(node: Any, seen: dict[str, None], nested_only: bool = False) -> None:
    if isinstance(node, Path):
        if not nested_only or len(node.elements) > 1:
            seen.setdefault(str(node.elements[0]), None)
    elif isinstance(node, And | Or | Compare | Arith):
        _collect(node.left, seen, nested_only)
        _collect(node.right, seen, nested_only)
    elif isinstance(node, Not):
        _collect(node.operand, seen, nested_only)
    elif isinstance(node, Between):
        for x in (node.subject, node.low, node.high):
            _collect(x, seen, nested_only)
    elif isinstance(node, In):
        for x in (node.subject, *node.options):
            _collect(x, seen, nested_only)
    elif isinstance(node, Call):
        for x in node.args:
            _collect(x, seen, nested_only)
