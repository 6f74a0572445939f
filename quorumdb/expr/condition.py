"""The resolved condition a request evaluates (ConditionExpression, FilterExpression, Expected,
QueryFilter, ScanFilter all become one of these).

A ``Condition`` is an immutable value that may be evaluated any number of times, from any
thread; it never mutates the item it looks at.
"""

from __future__ import annotations

from dataclasses import dataclass

from quorumdb.expr.ast import CondNode
from quorumdb.expr.evaluate import evaluate
from quorumdb.model.types import Item

__all__ = ["Condition"]


@dataclass(frozen=True, slots=True)
class Condition:
    node: CondNode | None  # None: no condition at all (always true)

    def evaluate(self, item: Item | None) -> bool:
        """True if ``item`` (None: no item) satisfies the condition."""
        if self.node is None:
            return True
        return evaluate(self.node, item if item is not None else {})
