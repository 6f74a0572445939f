"""Condition evaluation semantics (DynamoDB's), table-driven."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from quorumdb.expr import ExpressionContext


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ITEM: dict[str, Any] = {
    "s": {"S": "hello"},
    "n": {"N": "10"},
    "b": {"B": b64(b"\x01\x02\x03")},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b64(b"x"), b64(b"y")]},
    "l": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}]},
    "m": {"M": {"a": {"M": {"b": {"N": "5"}}}, "lst": {"L": [{"N": "7"}, {"N": "8"}]}}},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "e": {"S": ""},
}

VALUES = {
    ":hello": {"S": "hello"},
    ":he": {"S": "he"},
    ":ell": {"S": "ell"},
    ":x": {"S": "x"},
    ":a": {"S": "a"},
    ":n10": {"N": "10"},
    ":n10b": {"N": "10.0"},
    ":n9": {"N": "9"},
    ":n11": {"N": "11"},
    ":n1": {"N": "1"},
    ":n2": {"N": "2"},
    ":n3": {"N": "3"},
    ":n5": {"N": "5"},
    ":n25": {"N": "2.50"},
    ":n7": {"N": "7"},
    ":b01": {"B": b64(b"\x01")},
    ":b02": {"B": b64(b"\x02\x03")},
    ":bx": {"B": b64(b"x")},
    ":ss": {"SS": ["b", "a"]},
    ":true": {"BOOL": True},
    ":null": {"NULL": True},
    ":empty": {"S": ""},
    ":tS": {"S": "S"},
    ":tN": {"S": "N"},
    ":tSS": {"S": "SS"},
    ":tM": {"S": "M"},
    ":tNULL": {"S": "NULL"},
    ":mv": {"M": {"k": {"S": "v"}}},
}

CASES = [
    # equality, any type; numbers by value, sets unordered
    ("s = :hello", True),
    ("s = :he", False),
    ("n = :n10b", True),
    ("ss = :ss", True),
    ("t = :true", True),
    ("z = :null", True),
    ("e = :empty", True),
    ("n = :hello", False),
    ("s <> :he", True),
    ("s <> :hello", False),
    ("n <> :hello", True),
    # absent attributes
    ("absent = :n1", False),
    ("absent <> :n1", True),
    ("absent < :n1", False),
    ("absent BETWEEN :n1 AND :n2", False),
    ("absent IN (:n1)", False),
    ("NOT absent = :n1", True),
    # ordering
    ("n > :n9", True),
    ("n >= :n10", True),
    ("n < :n11", True),
    ("n <= :n9", False),
    ("s > :he", True),
    ("s < :x", True),
    ("b > :b01", True),
    ("b < :b02", True),
    ("n < :hello", False),
    ("n > :hello", False),
    ("ss > :a", False),
    # BETWEEN, IN
    ("n BETWEEN :n9 AND :n11", True),
    ("n BETWEEN :n10 AND :n10", True),
    ("n BETWEEN :n1 AND :n9", False),
    ("s BETWEEN :he AND :x", True),
    ("n IN (:n1, :n10b)", True),
    ("n IN (:n1, :n2)", False),
    ("s IN (:n1, :hello)", True),
    ("ss IN (:ss)", True),
    # nested paths
    ("m.a.b = :n5", True),
    ("m.lst[1] = :n5", False),
    ("m.lst[0] = :n7", True),
    ("m.lst[5] = :n7", False),
    ("m.a[0] = :n5", False),
    ("s.x = :n5", False),
    ("l[2].k = :a", False),
    ("attribute_exists(l[2].k)", True),
    ("attribute_exists(m.a.b)", True),
    ("attribute_exists(m.a.c)", False),
    ("attribute_not_exists(m.lst[2])", True),
    # functions
    ("attribute_exists(s)", True),
    ("attribute_exists(absent)", False),
    ("attribute_not_exists(absent)", True),
    ("attribute_not_exists(s)", False),
    ("attribute_exists(z)", True),
    ("attribute_type(s, :tS)", True),
    ("attribute_type(n, :tN)", True),
    ("attribute_type(ss, :tSS)", True),
    ("attribute_type(m, :tM)", True),
    ("attribute_type(z, :tNULL)", True),
    ("attribute_type(s, :tN)", False),
    ("attribute_type(absent, :tS)", False),
    ("begins_with(s, :he)", True),
    ("begins_with(s, :ell)", False),
    ("begins_with(s, :empty)", True),
    ("begins_with(b, :b01)", True),
    ("begins_with(b, :b02)", False),
    ("begins_with(n, :he)", False),
    ("begins_with(absent, :he)", False),
    ("contains(s, :ell)", True),
    ("contains(s, :x)", False),
    ("contains(ss, :a)", True),
    ("contains(ss, :x)", False),
    ("contains(ns, :n25)", True),
    ("contains(ns, :n3)", False),
    ("contains(bs, :bx)", True),
    ("contains(b, :b02)", True),
    ("contains(l, :a)", True),
    ("contains(l, :n1)", True),
    ("contains(l, :mv)", True),
    ("contains(l, :x)", False),
    ("contains(n, :n1)", False),
    ("contains(absent, :a)", False),
    ("size(s) = :n5", True),
    ("size(e) < :n1", True),
    ("size(b) = :n3", True),
    ("size(ss) = :n2", True),
    ("size(ns) = :n2", True),
    ("size(l) = :n3", True),
    ("size(m) = :n2", True),
    ("size(m.lst) = :n2", True),
    ("size(n) = :n2", False),
    ("size(n) <> :n2", True),
    ("size(absent) < :n10", False),
    ("size(s) > size(ss)", True),
    # logic and precedence
    ("s = :hello AND n = :n10", True),
    ("s = :hello AND n = :n9", False),
    ("s = :he OR n = :n10", True),
    ("s = :he OR n = :n9", False),
    ("NOT s = :he", True),
    ("NOT (s = :hello AND n = :n9)", True),
    ("s = :he AND n = :n9 OR t = :true", True),  # AND before OR
    ("t = :true OR s = :he AND n = :n9", True),
    ("(t = :true OR s = :he) AND n = :n9", False),
    ("NOT s = :he AND n = :n9", False),  # NOT before AND
    ("NOT (s = :he AND n = :n9)", True),
    # literal operands on both sides
    (":n1 = :n1", True),
    (":n1 < :n2", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_condition(text: str, expected: bool) -> None:
    ctx = ExpressionContext(None, VALUES)
    cond = ctx.condition(text)
    assert cond.evaluate(ITEM) is expected


def test_absent_item_is_empty() -> None:
    ctx = ExpressionContext(None, {":v": {"S": "x"}})
    assert ctx.condition("attribute_not_exists(pk)").evaluate(None)
    assert not ctx.condition("attribute_exists(pk)").evaluate(None)
    assert ctx.condition("pk <> :v").evaluate(None)


def test_names_resolve_per_request() -> None:
    text = "#k = :v"
    a = ExpressionContext({"#k": "s"}, {":v": {"S": "hello"}}).condition(text)
    b = ExpressionContext({"#k": "n"}, {":v": {"N": "10"}}).condition(text)
    assert a.evaluate(ITEM) and b.evaluate(ITEM)
    assert not a.evaluate({"s": {"S": "other"}})


def test_evaluation_does_not_mutate() -> None:
    import copy

    before = copy.deepcopy(ITEM)
    ctx = ExpressionContext(None, VALUES)
    for text, _ in CASES:
        ctx.condition(text).evaluate(ITEM)
    assert ITEM == before


def test_attribute_names() -> None:
    ctx = ExpressionContext({"#x": "x"}, VALUES)
    cond = ctx.condition("a.b = :n1 AND (size(#x) > :n2 OR c IN (d, :n1)) AND NOT attribute_exists(a)")
    assert cond.attribute_names == ("a", "x", "c", "d")
