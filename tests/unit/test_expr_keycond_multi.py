"""Key conditions against a multi-attribute index key: every partition attribute by equality,
sort attributes left to right, a range condition only on the last one given."""

from __future__ import annotations

import re
from typing import Any

import pytest

from quorumdb.db.contract import SortKeyRange
from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext, KeyCondition
from quorumdb.expr.legacy import key_conditions
from quorumdb.model.schema import KeyAttr, KeySchema

MULTI = KeySchema(
    hash=KeyAttr(name="a", type="S"),
    extra_hash=(KeyAttr(name="b", type="N"),),
    range=KeyAttr(name="x", type="N"),
    extra_range=(KeyAttr(name="y", type="S"), KeyAttr(name="z", type="N")),
)
VALUES: dict[str, Any] = {":a": {"S": "A"}, ":b": {"N": "2"}, ":x": {"N": "5"}, ":x2": {"N": "9"},
                          ":y": {"S": "Y"}, ":z": {"N": "1"}, ":s": {"S": "s"}}


def key(text: str) -> KeyCondition:
    ctx = ExpressionContext(None, {k: VALUES[k] for k in re.findall(r":\w+", text)})
    kc = ctx.key_condition(text, MULTI)
    ctx.check_unused()
    return kc


@pytest.mark.parametrize(
    ("text", "sort_name", "sort"),
    [
        ("a = :a AND b = :b", None, None),
        ("b = :b AND a = :a AND x > :x", "x", SortKeyRange(op="GT", values=({"N": "5"},))),
        ("a = :a AND b = :b AND x BETWEEN :x AND :x2", "x", SortKeyRange(op="BETWEEN", values=({"N": "5"}, {"N": "9"}))),
        ("a = :a AND b = :b AND x = :x AND begins_with(y, :s)", "y",
         SortKeyRange(op="BEGINS_WITH", values=({"S": "s"},), prefix=({"N": "5"},))),
        ("a = :a AND b = :b AND x = :x AND y = :y AND z <= :z", "z",
         SortKeyRange(op="LE", values=({"N": "1"},), prefix=({"N": "5"}, {"S": "Y"}))),
    ],
)
def test_multi_attribute_key_conditions(text: str, sort_name: str | None, sort: SortKeyRange | None) -> None:
    kc = key(text)
    assert kc.hash_names == ("a", "b")
    assert kc.hash_values == ({"S": "A"}, {"N": "2"})
    assert kc.sort_name == sort_name
    assert kc.sort == sort


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = :a", "Query condition missed key schema element: b"),
        ("a = :a AND x = :x", "Query condition missed key schema element: b"),
        ("a = :a AND b > :b", "Query key condition not supported"),
        ("a = :a AND b = :b AND y = :y", "Query condition missed key schema element: x: sort key attributes must be specified in order"),
        ("a = :a AND b = :b AND x = :x AND z = :z", "Query condition missed key schema element: y"),
        ("a = :a AND b = :b AND x > :x AND y = :y", "sort key attribute x must use the = operator"),
        ("a = :a AND b = :b AND x = :y", "Condition parameter type does not match schema type"),
        ("a = :a AND b = :b AND q = :x", "Query condition missed key schema element: x"),
    ],
)
def test_multi_attribute_key_condition_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        key(text)
    assert message in exc.value.message


def test_legacy_key_conditions_on_a_multi_attribute_key() -> None:
    kc = key_conditions(
        {
            "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "A"}]},
            "b": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "02"}]},
            "x": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "5"}]},
        },
        MULTI,
    )
    assert kc.hash_values == ({"S": "A"}, {"N": "2"})
    assert kc.sort == SortKeyRange(op="GE", values=({"N": "5"},))
    with pytest.raises(ValidationError, match="not an indexable operation"):
        key_conditions(
            {
                "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "A"}]},
                "b": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "2"}]},
            },
            MULTI,
        )
