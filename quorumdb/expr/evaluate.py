"""Evaluation of resolved condition trees against an item.

A resolved tree is compiled once (per request) into nested closures, so evaluating it over
many items (a Scan's filter) does no dispatch on node types. DynamoDB's semantics: a missing
attribute makes a comparison false (``<>`` true), comparing different types is false rather
than an error, ``size`` of a type without a size yields no value. Evaluation is pure: it never
mutates the item and never raises for data it meets (type errors of literal operands were
reported when the expression was resolved).
"""

from __future__ import annotations

from collections.abc import Callable

from quorumdb.expr.ast import (
    And,
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
)
from quorumdb.model.compare import compare, decode_binary, to_decimal, type_of, values_equal
from quorumdb.model.types import AttributeValue, Item

__all__ = [
    "get_path",
    "size_of",
    "operand_value",
    "compile_condition",
    "compile_operand",
    "evaluate",
    "Predicate",
    "Getter",
]

Predicate = Callable[[Item], bool]
Getter = Callable[[Item], AttributeValue | None]


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
    """DynamoDB's size(): characters of S, bytes of B, members of sets, L and M."""
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


# -- operands -----------------------------------------------------------------------------------


def compile_operand(op: Operand) -> Getter:
    if isinstance(op, Literal):
        value = op.value
        return lambda item: value
    if isinstance(op, Path):
        path = op.resolved
        if len(path) == 1:
            name = str(path[0])
            return lambda item: item.get(name)
        return lambda item: get_path(item, path)
    if isinstance(op, Call) and op.name == "size":
        inner = compile_operand(op.args[0])

        def size(item: Item) -> AttributeValue | None:
            v = inner(item)
            return None if v is None else size_of(v)

        return size
    raise AssertionError(f"not a condition operand: {op!r}")


def operand_value(op: Operand, item: Item) -> AttributeValue | None:
    return compile_operand(op)(item)


# -- functions ----------------------------------------------------------------------------------


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


def _attribute_type(value: AttributeValue, type_name: AttributeValue) -> bool:
    return type_of(value) == type_name.get("S")


_BINARY_FUNCTIONS: dict[str, Callable[[AttributeValue, AttributeValue], bool]] = {
    "attribute_type": _attribute_type,
    "begins_with": _begins_with,
    "contains": _contains,
}


def _compile_call(node: Call) -> Predicate:
    if node.name == "attribute_exists":
        get = compile_operand(node.args[0])
        return lambda item: get(item) is not None
    if node.name == "attribute_not_exists":
        get = compile_operand(node.args[0])
        return lambda item: get(item) is None
    fn = _BINARY_FUNCTIONS[node.name]
    get_a, get_b = compile_operand(node.args[0]), compile_operand(node.args[1])

    def call(item: Item) -> bool:
        a = get_a(item)
        if a is None:
            return False
        b = get_b(item)
        return b is not None and fn(a, b)

    return call


# -- comparisons --------------------------------------------------------------------------------

_ORDER_TESTS: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _compile_compare(node: Compare) -> Predicate:
    get_l, get_r = compile_operand(node.left), compile_operand(node.right)
    if node.op == "=":

        def eq(item: Item) -> bool:
            left, right = get_l(item), get_r(item)
            return left is not None and right is not None and values_equal(left, right)

        return eq
    if node.op == "<>":

        def ne(item: Item) -> bool:
            left, right = get_l(item), get_r(item)
            return not (left is not None and right is not None and values_equal(left, right))

        return ne
    test = _ORDER_TESTS[node.op]

    def ordered(item: Item) -> bool:
        left, right = get_l(item), get_r(item)
        if left is None or right is None:
            return False
        c = compare(left, right)
        return c is not None and test(c)

    return ordered


def _compile_between(node: Between) -> Predicate:
    get_s, get_lo, get_hi = (compile_operand(x) for x in (node.subject, node.low, node.high))

    def between(item: Item) -> bool:
        subject, low, high = get_s(item), get_lo(item), get_hi(item)
        if subject is None or low is None or high is None:
            return False
        c_low = compare(subject, low)
        if c_low is None or c_low < 0:
            return False
        c_high = compare(subject, high)
        return c_high is not None and c_high <= 0

    return between


def _compile_in(node: In) -> Predicate:
    get_s = compile_operand(node.subject)
    getters = [compile_operand(o) for o in node.options]

    def in_(item: Item) -> bool:
        subject = get_s(item)
        if subject is None:
            return False
        for get in getters:
            value = get(item)
            if value is not None and values_equal(subject, value):
                return True
        return False

    return in_


def compile_condition(node: CondNode) -> Predicate:
    """A function ``item -> bool`` equivalent to the resolved condition ``node``."""
    if isinstance(node, And):
        left, right = compile_condition(node.left), compile_condition(node.right)
        return lambda item: left(item) and right(item)
    if isinstance(node, Or):
        left, right = compile_condition(node.left), compile_condition(node.right)
        return lambda item: left(item) or right(item)
    if isinstance(node, Not):
        inner = compile_condition(node.operand)
        return lambda item: not inner(item)
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, Between):
        return _compile_between(node)
    if isinstance(node, In):
        return _compile_in(node)
    if isinstance(node, Call):
        return _compile_call(node)
    raise AssertionError(f"not a condition node: {node!r}")


def evaluate(node: CondNode, item: Item) -> bool:
    """True if ``item`` satisfies the resolved condition ``node`` (compiles it first)."""
    return compile_condition(node)(item)
