"""KeyConditionExpression and legacy KeyConditions: conversion and DynamoDB's Query rules."""

from __future__ import annotations

from typing import Any

import pytest

from quorumdb.db.contract import SortKeyRange
from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext, KeyCondition
from quorumdb.expr.legacy import key_conditions
from quorumdb.model.schema import KeyAttr, KeySchema

HASH_RANGE = KeySchema(hash=KeyAttr(name="pk", type="S"), range=KeyAttr(name="sk", type="N"))
HASH_ONLY = KeySchema(hash=KeyAttr(name="pk", type="S"))

VALUES: dict[str, Any] = {
    ":p": {"S": "p"},
    ":n1": {"N": "1"},
    ":n2": {"N": "2"},
    ":s": {"S": "s"},
    ":b": {"BOOL": True},
}


def key(text: str, schema: KeySchema = HASH_RANGE, names: dict | None = None) -> KeyCondition:
    used = {k: v for k, v in VALUES.items() if k in text}
    ctx = ExpressionContext(names, used or None)
    kc = ctx.key_condition(text, schema)
    ctx.check_unused()
    return kc


OK = [
    ("pk = :p", HASH_RANGE, None),
    ("pk = :p", HASH_ONLY, None),
    (":p = pk", HASH_ONLY, None),
    ("pk = :p AND sk = :n1", HASH_RANGE, SortKeyRange(op="EQ", values=({"N": "1"},))),
    ("sk < :n1 AND pk = :p", HASH_RANGE, SortKeyRange(op="LT", values=({"N": "1"},))),
    ("pk = :p AND sk <= :n1", HASH_RANGE, SortKeyRange(op="LE", values=({"N": "1"},))),
    ("pk = :p AND sk > :n1", HASH_RANGE, SortKeyRange(op="GT", values=({"N": "1"},))),
    ("pk = :p AND sk >= :n1", HASH_RANGE, SortKeyRange(op="GE", values=({"N": "1"},))),
    ("pk = :p AND :n1 < sk", HASH_RANGE, SortKeyRange(op="GT", values=({"N": "1"},))),
    ("pk = :p AND :n1 >= sk", HASH_RANGE, SortKeyRange(op="LE", values=({"N": "1"},))),
    ("pk = :p AND sk BETWEEN :n1 AND :n2", HASH_RANGE, SortKeyRange(op="BETWEEN", values=({"N": "1"}, {"N": "2"}))),
    ("(pk = :p) AND (sk BETWEEN :n1 AND :n2)", HASH_RANGE, SortKeyRange(op="BETWEEN", values=({"N": "1"}, {"N": "2"}))),
]


@pytest.mark.parametrize(("text", "schema", "sort"), OK)
def test_key_conditions(text: str, schema: KeySchema, sort: SortKeyRange | None) -> None:
    kc = key(text, schema)
    assert kc.hash_name == "pk"
    assert kc.hash_value == {"S": "p"}
    assert kc.sort == sort
    assert kc.sort_name == (None if sort is None else "sk")


def test_begins_with_on_string_sort_key() -> None:
    schema = KeySchema(hash=KeyAttr(name="pk", type="S"), range=KeyAttr(name="sk", type="S"))
    kc = key("pk = :p AND begins_with(sk, :s)", schema)
    assert kc.sort == SortKeyRange(op="BEGINS_WITH", values=({"S": "s"},))


def test_names_in_key_condition() -> None:
    kc = key("#h = :p AND #r > :n1", names={"#h": "pk", "#r": "sk"})
    assert kc.sort == SortKeyRange(op="GT", values=({"N": "1"},))


ERRORS = [
    ("pk = :p OR sk = :n1", HASH_RANGE, "Invalid operator used in KeyConditionExpression: OR"),
    ("NOT pk = :p", HASH_RANGE, "Invalid operator used in KeyConditionExpression: NOT"),
    ("pk IN (:p)", HASH_RANGE, "Invalid operator used in KeyConditionExpression: IN"),
    ("pk <> :p", HASH_RANGE, "Invalid operator used in KeyConditionExpression: <>"),
    ("pk = :p AND attribute_exists(sk)", HASH_RANGE, "Invalid operator used in KeyConditionExpression: attribute_exists"),
    ("pk = :p AND contains(sk, :n1)", HASH_RANGE, "Invalid operator used in KeyConditionExpression: contains"),
    ("pk = :p AND size(sk) = :n1", HASH_RANGE, "KeyConditionExpressions cannot contain nested operations"),
    ("pk = :p AND begins_with(:s, sk)", HASH_RANGE, "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"),
    ("pk = :p AND :n1 BETWEEN sk AND :n2", HASH_RANGE, "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"),
    ("pk = sk", HASH_RANGE, "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
    ("pk.x = :p", HASH_RANGE, "KeyConditionExpressions cannot have conditions on nested attributes"),
    (":p = :p", HASH_RANGE, "Invalid condition in KeyConditionExpression: No key attribute specified"),
    ("pk = :p AND pk = :p", HASH_RANGE, "KeyConditionExpressions must only contain one condition per key"),
    ("pk = :p AND sk = :n1 AND x = :n1", HASH_RANGE, "Conditions can be of length 1 or 2 only"),
    ("sk = :n1", HASH_RANGE, "Query condition missed key schema element: pk"),
    ("x = :p", HASH_RANGE, "Query condition missed key schema element: pk"),
    ("pk = :p AND x = :n1", HASH_RANGE, "Query condition missed key schema element: sk"),
    ("pk = :p AND sk = :n1", HASH_ONLY, "Query key condition not supported"),
    ("pk < :p", HASH_RANGE, "Query key condition not supported"),
    ("begins_with(pk, :p)", HASH_RANGE, "Query key condition not supported"),
    ("pk = :n1", HASH_RANGE, "One or more parameter values were invalid: Condition parameter type does not match schema type"),
    ("pk = :p AND sk = :s", HASH_RANGE, "One or more parameter values were invalid: Condition parameter type does not match schema type"),
    ("pk = :p AND begins_with(sk, :n1)", HASH_RANGE, "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
    ("pk = :b", HASH_RANGE, "One or more parameter values were invalid: ComparisonOperator EQ is not valid for BOOL AttributeValue type"),
    ("pk = :p AND sk BETWEEN :n2 AND :n1", HASH_RANGE, "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}"),
    ("pk = :p AND", HASH_RANGE, 'Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "AND"'),
    ("name = :p", HASH_RANGE, "Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
]


@pytest.mark.parametrize(("text", "schema", "message"), ERRORS)
def test_key_condition_errors(text: str, schema: KeySchema, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        key(text, schema)
    assert exc.value.message == message


def test_legacy_key_conditions() -> None:
    kc = key_conditions(
        {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
            "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "02"}]},
        },
        HASH_RANGE,
    )
    assert kc.hash_value == {"S": "p"}
    assert kc.sort == SortKeyRange(op="BETWEEN", values=({"N": "1"}, {"N": "2"}))


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"pk": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "p"}]}}, "Attempted conditional constraint is not an indexable operation"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"N": "1"}]}}, "Attempted conditional constraint is not an indexable operation"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": []}}, "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        ({"pk": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "p"}]}}, "Query key condition not supported"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "3"}, {"N": "1"}]}}, "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "3"}, {"S": "1"}]}}, "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"N": "3"}]}}, "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
        ({}, "Conditions can be of length 1 or 2 only"),
    ],
)
def test_legacy_key_condition_errors(conditions: dict, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        key_conditions(conditions, HASH_RANGE)
    assert exc.value.message == message


def test_key_condition_errors_rank_below_unused_placeholders() -> None:
    ctx = ExpressionContext(None, {":p": {"S": "p"}, ":extra": {"S": "x"}})
    ctx.key_condition("x = :p", HASH_RANGE)
    with pytest.raises(ValidationError) as exc:
        ctx.check_unused()
    assert exc.value.message == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:extra}"
    ctx = ExpressionContext(None, {":p": {"S": "p"}})
    ctx.key_condition("x = :p", HASH_RANGE)
    with pytest.raises(ValidationError) as exc:
        ctx.check_unused()
    assert exc.value.message == "Query condition missed key schema element: pk"
