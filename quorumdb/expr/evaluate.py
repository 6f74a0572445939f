"""Evaluation of resolved condition trees against an item.

DynamoDB's semantics: a missing attribute makes a comparison false (``<>`` true), comparing
different types is false rather than an error, ``size`` of a type without a size yields no
value. Evaluation is pure: it never mutates the item and never raises for data it meets
(all type errors of literal operands were reported when the expression was resolved).
"""

from __future__ import annotations

from quorumdb.expr.ast import (
    And,
    Arith,
    Between,
    Call,
    Compare,
    CondNode,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    ValueRef,
)
from quorumdb.model.compare import compare, decode_binary, type_of, values_equal
from quorumdb.model.numbers import to_decimal
from quorumdb.model.types import AttributeValue, Item

__all__ = ["get_path", "operand_value", "evaluate", "size_of"]


def get_path(item: Item, path: tuple[str | int, ...]) -> AttributeValue | None:
    """The value at a resolved document path, or None if any step is missing or mistyped."""
    cur = item.get(path[0])  # type: ignore[arg-type]
    for element in path[1:]:
        if cur is None:
            return None
        if isinstance(element, int):
            items = cur.get("L")
            if items is None or element >= len(items):
                return None
            cur = items[element]
        else:
            members = cur.get("M")
            if members is None:
                return None
            cur = members.get(element)
    return cur


def size_of(av: AttributeValue) -> AttributeValue | None:
    tag = type_of(av)
    value = av[tag]
    if tag == "S":
        n = len(value)
    elif tag == "B":
        n = len(decode_binary(value))
    elif tag in ("SS", "NS", "BS", "L", "M"):
        n = len(value)
    else:
        return None
    return {"N": str(n)}


def operand_value(op: Operand, item: Item) -> AttributeValue | None:
    if isinstance(op, Path):
        return get_path(item, op.resolved)
    if isinstance(op, Literal):
        return op.value
    if isinstance(op, Call) and op.name == "size":
        inner = operand_value(op.args[0], item)
        return None if inner is None else size_of(inner)
    assert not isinstance(op, ValueRef | Arith), "unresolved or update-only operand"
    return None


def _ordered(op: str, left: AttributeValue, right: AttributeValue) -> bool:
    c = compare(left, right)
    if c is None:
        return False
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0
    if op == ">":
        return c > 0
    return c >= 0


def _begins_with(value: AttributeValue, prefix: AttributeValue) -> bool:
    tv, tp = type_of(value), type_of(prefix)
    if tv != tp:
        return False
    if tv == "S":
        return bool(value["S"].startswith(prefix["S"]))
    if tv == "B":
        return decode_binary(value["B"]).startswith(decode_binary(prefix["B"]))
    return False


def _contains(container: AttributeValue, member: AttributeValue) -> bool:
    tc, tm = type_of(container), type_of(member)
    c = container[tc]
    if tc == "S":
        return tm == "S" and member["S"] in c
    if tc == "B":
        return tm == "B" and decode_binary(member["B"]) in decode_binary(c)
    if tc == "SS":
        return tm == "S" and member["S"] in c
    if tc == "NS":
        if tm != "N":
            return False
        target = to_decimal(member["N"])
        return any(to_decimal(x) == target for x in c)
    if tc == "BS":
        if tm != "B":
            return False
        target_b = decode_binary(member["B"])
        return any(decode_binary(x) == target_b for x in c)
    if tc == "L":
        return any(values_equal(x, member) for x in c)
    return False


def _call(node: Call, item: Item) -> bool:
    name = node.name
    if name == "attribute_exists":
        return operand_value(node.args[0], item) is not None
    if name == "attribute_not_exists":
        return operand_value(node.args[0], item) is None
    a = operand_value(node.args[0], item)
    b = operand_value(node.args[1], item) if len(node.args) > 1 else None
    if a is None or b is None:
        return False
    if name == "attribute_type":
        return type_of(a) == b.get("S")
    if name == "begins_with":
        return _begins_with(a, b)
    if name == "contains":
        return _contains(a, b)
    return False


def evaluate(node: CondNode, item: Item) -> bool:
    """True if ``item`` satisfies the resolved condition ``node``."""
    if isinstance(node, And):
        return evaluate(node.left, item) and evaluate(node.right, item)
    if isinstance(node, Or):
        return evaluate(node.left, item) or evaluate(node.right, item)
    if isinstance(node, Not):
        return not evaluate(node.operand, item)
    if isinstance(node, Compare):
        left = operand_value(node.left, item)
        right = operand_value(node.right, item)
        if node.op == "=":
            return left is not None and right is not None and values_equal(left, right)
        if node.op == "<>":
            return not (left is not None and right is not None and values_equal(left, right))
        if left is None or right is None:
            return False
        return _ordered(node.op, left, right)
    if isinstance(node, Between):
        subject = operand_value(node.subject, item)
        low = operand_value(node.low, item)
        high = operand_value(node.high, item)
        if subject is None or low is None or high is None:
            return False
        c_low, c_high = compare(subject, low), compare(subject, high)
        return c_low is not None and c_high is not None and c_low >= 0 and c_high <= 0
    if isinstance(node, In):
        subject = operand_value(node.subject, item)
        if subject is None:
            return False
        for option in node.options:
            value = operand_value(option, item)
            if value is not None and values_equal(subject, value):
                return True
        return False
    if isinstance(node, Call):
        return _call(node, item)
    raise AssertionError(f"not a condition node: {node!r}")
