"""What a bound WHERE clause says about a table's (or index's) key: the key equalities among its
top-level conjuncts, a sort-key range usable by a Query, and the conjuncts left over.

Statements are translated with these: a write needs an equality on every key attribute (the
rest of its WHERE becomes its condition); a SELECT with an equality on the partition key
becomes a Query (with a full key and no index, a single-item read), otherwise a Scan. The whole
WHERE still filters what a Query or Scan reads, so narrowing the read is only an optimization.
Pure functions over resolved ``quorumdb.expr`` trees.
"""

from __future__ import annotations

from collections.abc import Iterable

from quorumdb.expr.ast import And, Between, Call, Compare, CondNode, Literal, Path
from quorumdb.model.schema import KeyAttr
from quorumdb.model.types import AttributeValue, SortKeyRange

__all__ = ["conjuncts", "key_equalities", "sort_range", "conjoin"]

_SORT_OPS = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
_FLIPPED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def conjuncts(node: CondNode | None) -> list[CondNode]:
    """The top-level AND operands of ``node``, left to right."""
    if node is None:
        return []
    if isinstance(node, And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def conjoin(nodes: Iterable[CondNode]) -> CondNode | None:
    """``a AND b AND ...`` (None for no operands)."""
    out: CondNode | None = None
    for n in nodes:
        out = n if out is None else And(out, n)
    return out


def _attribute(op: object) -> str | None:
    if isinstance(op, Path) and len(op.elements) == 1 and isinstance(op.elements[0], str):
        return op.elements[0]
    return None


def _comparison(node: CondNode) -> tuple[str, str, AttributeValue] | None:
    """``(attribute, op, value)`` for ``attr op literal`` or ``literal op attr`` (flipped)."""
    if not isinstance(node, Compare) or node.op not in _FLIPPED:
        return None
    name = _attribute(node.left)
    if name is not None and isinstance(node.right, Literal):
        return name, node.op, node.right.value
    name = _attribute(node.right)
    if name is not None and isinstance(node.left, Literal):
        return name, _FLIPPED[node.op], node.left.value
    return None


def _usable(attr: KeyAttr, value: AttributeValue) -> bool:
    raw = value.get(attr.type)
    return raw is not None and raw != ""


def key_equalities(
    parts: list[CondNode], attrs: Iterable[KeyAttr], *, typed: bool
) -> dict[str, tuple[int, AttributeValue]]:
    """For each key attribute with an ``attr = literal`` conjunct: (conjunct index, value).

    With ``typed``, only values of the attribute's key type count (a Query cannot look up any
    other; such an equality matches nothing and stays a filter)."""
    wanted = {a.name: a for a in attrs}
    out: dict[str, tuple[int, AttributeValue]] = {}
    for i, node in enumerate(parts):
        c = _comparison(node)
        if c is None or c[1] != "=" or c[0] not in wanted or c[0] in out:
            continue
        if typed and not _usable(wanted[c[0]], c[2]):
            continue
        out[c[0]] = (i, c[2])
    return out


def sort_range(parts: list[CondNode], attr: KeyAttr) -> SortKeyRange | None:
    """The first conjunct a Query can use as its sort-key condition on ``attr``."""
    for node in parts:
        c = _comparison(node)
        if c is not None:
            if c[0] == attr.name and _usable(attr, c[2]):
                return SortKeyRange(op=_SORT_OPS[c[1]], values=(c[2],))
            continue
        if isinstance(node, Between) and _attribute(node.subject) == attr.name:
            low, high = node.low, node.high
            if (
                isinstance(low, Literal)
                and isinstance(high, Literal)
                and _usable(attr, low.value)
                and _usable(attr, high.value)
            ):
                return SortKeyRange(op="BETWEEN", values=(low.value, high.value))
        if (
            isinstance(node, Call)
            and node.name == "begins_with"
            and attr.type != "N"
            and _attribute(node.args[0]) == attr.name
        ):
            prefix = node.args[1]
            if isinstance(prefix, Literal) and _usable(attr, prefix.value):
                return SortKeyRange(op="BEGINS_WITH", values=(prefix.value,))
    return None
