"""Legacy parameters: Expected, QueryFilter/ScanFilter, AttributeUpdates."""

from __future__ import annotations

from typing import Any

import pytest

from quorumdb.errors import ValidationError
from quorumdb.expr.legacy import (
    attribute_updates,
    expected,
    expected_condition,
    filter_condition,
    filter_conditions,
)

ITEM: dict[str, Any] = {
    "s": {"S": "hello"},
    "n": {"N": "10"},
    "ss": {"SS": ["a", "b"]},
    "l": {"L": [{"S": "a"}]},
    "b": {"BOOL": True},
    "m": {"M": {"k": {"N": "1"}}},
}


def cond(op: str, *values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ComparisonOperator": op}
    if values:
        out["AttributeValueList"] = list(values)
    return out


FILTERS = [
    ({"s": cond("EQ", {"S": "hello"})}, True),
    ({"s": cond("NE", {"S": "hello"})}, False),
    ({"absent": cond("NE", {"S": "hello"})}, True),
    ({"n": cond("LT", {"N": "11"})}, True),
    ({"n": cond("LE", {"N": "9"})}, False),
    ({"n": cond("GT", {"N": "9"})}, True),
    ({"n": cond("GE", {"N": "10.0"})}, True),
    ({"n": cond("NOT_NULL")}, True),
    ({"n": cond("NULL")}, False),
    ({"absent": cond("NULL")}, True),
    ({"s": cond("CONTAINS", {"S": "ell"})}, True),
    ({"ss": cond("CONTAINS", {"S": "a"})}, True),
    ({"l": cond("CONTAINS", {"S": "a"})}, True),
    ({"ss": cond("NOT_CONTAINS", {"S": "a"})}, False),
    ({"ss": cond("NOT_CONTAINS", {"S": "z"})}, True),
    ({"s": cond("BEGINS_WITH", {"S": "he"})}, True),
    ({"n": cond("IN", {"N": "1"}, {"N": "10"})}, True),
    ({"n": cond("IN", {"N": "1"}, {"N": "2"})}, False),
    ({"n": cond("BETWEEN", {"N": "1"}, {"N": "10"})}, True),
    ({"s": cond("EQ", {"S": "hello"}), "n": cond("EQ", {"N": "1"})}, False),
    ({}, True),
    # EQ and NE compare values of every type outside key conditions.
    ({"l": cond("EQ", {"L": [{"S": "a"}]})}, True),
    ({"l": cond("NE", {"L": [{"S": "a"}]})}, False),
    ({"b": cond("EQ", {"BOOL": True})}, True),
    ({"b": cond("NE", {"BOOL": False})}, True),
    ({"m": cond("EQ", {"M": {"k": {"N": "1"}}})}, True),
    ({"s": cond("EQ", {"NULL": True})}, False),
]


@pytest.mark.parametrize(("conditions", "result"), FILTERS)
def test_filter(conditions: dict[str, Any], result: bool) -> None:
    assert filter_condition(conditions, None).evaluate(ITEM) is result
    assert filter_conditions(conditions, "AND", "ScanFilter").evaluate(ITEM) is result


def test_filter_or() -> None:
    conditions = {"s": cond("EQ", {"S": "nope"}), "n": cond("EQ", {"N": "10"})}
    assert filter_condition(conditions, "OR").evaluate(ITEM)
    assert not filter_condition(conditions, "AND").evaluate(ITEM)


FILTER_ERRORS = [
    ({"n": cond("EQ")}, "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"n": cond("NULL", {"N": "1"})}, "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator"),
    ({"n": cond("BETWEEN", {"N": "1"})}, "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
    ({"n": cond("IN")}, "One or more parameter values were invalid: Invalid number of argument(s) for the IN ComparisonOperator"),
    ({"n": cond("IN", {"N": "1"}, {"S": "1"})}, "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type"),
    ({"n": cond("LT", {"SS": ["a"]})}, "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type"),
    ({"n": cond("BEGINS_WITH", {"N": "1"})}, "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
    ({"n": cond("CONTAINS", {"BOOL": True})}, "One or more parameter values were invalid: ComparisonOperator CONTAINS is not valid for BOOL AttributeValue type"),
    ({"n": cond("BETWEEN", {"N": "5"}, {"N": "1"})}, "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
    ({"n": cond("EQ", {"SS": []})}, "One or more parameter values were invalid: An string set  may not be empty"),
]


@pytest.mark.parametrize(("conditions", "message"), FILTER_ERRORS)
def test_filter_errors(conditions: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        filter_condition(conditions, None)
    assert exc.value.message == message


EXPECTED = [
    ({"s": {"Value": {"S": "hello"}}}, True),
    ({"s": {"Value": {"S": "nope"}}}, False),
    ({"s": {"Value": {"S": "hello"}, "Exists": True}}, True),
    ({"absent": {"Exists": False}}, True),
    ({"s": {"Exists": False}}, False),
    ({"n": {"ComparisonOperator": "GT", "Value": {"N": "5"}}}, True),
    ({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "50"}]}}, False),
    ({"n": {"ComparisonOperator": "NOT_NULL"}}, True),
    ({"s": {"Value": {"S": "hello"}}, "absent": {"Exists": False}}, True),
]


@pytest.mark.parametrize(("exp", "result"), EXPECTED)
def test_expected(exp: dict[str, Any], result: bool) -> None:
    assert expected_condition(exp, None).evaluate(ITEM) is result
    assert expected(exp, "AND").evaluate(ITEM) is result


def test_expected_against_missing_item() -> None:
    assert expected_condition({"pk": {"Exists": False}}, None).evaluate(None)
    assert not expected_condition({"pk": {"Value": {"S": "x"}}}, None).evaluate(None)


def test_expected_or() -> None:
    exp = {"s": {"Value": {"S": "nope"}}, "n": {"Value": {"N": "10"}}}
    assert expected_condition(exp, "OR").evaluate(ITEM)
    assert not expected_condition(exp, "AND").evaluate(ITEM)


P = "One or more parameter values were invalid: "
EXPECTED_ERRORS = [
    ({"a": {"Value": {"S": "x"}, "AttributeValueList": [{"S": "x"}], "ComparisonOperator": "EQ"}}, P + "Value and AttributeValueList cannot be used together for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "Exists": True, "Value": {"S": "x"}}}, P + "Exists and ComparisonOperator cannot be used together for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ"}}, P + "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"),
    ({"a": {"ComparisonOperator": "BETWEEN", "Value": {"N": "1"}}}, P + "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
    ({"a": {"AttributeValueList": [{"S": "x"}]}}, P + "AttributeValueList can only be used with a ComparisonOperator for Attribute: a"),
    ({"a": {}}, P + "Value must be provided when Exists is null for Attribute: a"),
    ({"a": {"Exists": True}}, P + "Value must be provided when Exists is true for Attribute: a"),
    ({"a": {"Exists": False, "Value": {"S": "x"}}}, P + "Value cannot be used when Exists is false for Attribute: a"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "3"}, {"N": "1"}]}}, "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
    # Values of types the operator does not take, as in QueryFilter / ScanFilter.
    ({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"L": []}]}}, P + "ComparisonOperator LT is not valid for L AttributeValue type"),
    ({"a": {"ComparisonOperator": "GE", "Value": {"BOOL": True}}}, P + "ComparisonOperator GE is not valid for BOOL AttributeValue type"),
    ({"a": {"ComparisonOperator": "BEGINS_WITH", "Value": {"N": "1"}}}, P + "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
    ({"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"M": {}}]}}, P + "ComparisonOperator IN is not valid for M AttributeValue type"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"SS": ["a"]}, {"SS": ["b"]}]}}, P + "ComparisonOperator BETWEEN is not valid for SS AttributeValue type"),
    ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}, {"N": "2"}]}}, P + "Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"S": "2"}]}}, P + "AttributeValues inside AttributeValueList must be of same type"),
]


def test_expected_eq_and_ne_take_every_type() -> None:
    assert expected_condition({"l": {"ComparisonOperator": "EQ", "Value": {"L": [{"S": "a"}]}}}, None).evaluate(ITEM)
    assert expected_condition({"b": {"ComparisonOperator": "NE", "AttributeValueList": [{"BOOL": False}]}}, None).evaluate(ITEM)


@pytest.mark.parametrize(("exp", "message"), EXPECTED_ERRORS)
def test_expected_errors(exp: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        expected_condition(exp, None)
    assert exc.value.message == message


UPDATES = [
    ({"a": {"Value": {"S": "x"}}}, {**ITEM, "a": {"S": "x"}}),
    ({"s": {"Action": "PUT", "Value": {"N": "1"}}}, {**ITEM, "s": {"N": "1"}}),
    ({"s": {"Action": "DELETE"}}, {k: v for k, v in ITEM.items() if k != "s"}),
    ({"absent": {"Action": "DELETE"}}, ITEM),
    ({"n": {"Action": "ADD", "Value": {"N": "-3"}}}, {**ITEM, "n": {"N": "7"}}),
    ({"c": {"Action": "ADD", "Value": {"N": "3"}}}, {**ITEM, "c": {"N": "3"}}),
    ({"ss": {"Action": "ADD", "Value": {"SS": ["c"]}}}, {**ITEM, "ss": {"SS": ["a", "b", "c"]}}),
    ({"l": {"Action": "ADD", "Value": {"L": [{"N": "1"}]}}}, {**ITEM, "l": {"L": [{"S": "a"}, {"N": "1"}]}}),
    ({"ss": {"Action": "DELETE", "Value": {"SS": ["a"]}}}, {**ITEM, "ss": {"SS": ["b"]}}),
    ({"ss": {"Action": "DELETE", "Value": {"SS": ["a", "b"]}}}, {k: v for k, v in ITEM.items() if k != "ss"}),
]


@pytest.mark.parametrize(("updates", "result"), UPDATES)
def test_attribute_updates(updates: dict[str, Any], result: dict[str, Any]) -> None:
    assert attribute_updates(updates).apply(ITEM) == result


UPDATE_ERRORS = [
    ({"a": {"Action": "PUT"}}, P + "Only DELETE action is allowed when no attribute value is specified"),
    ({"a": {"Action": "DELETE", "Value": {"S": "x"}}}, P + "DELETE action with value is not supported for the type S"),
    ({"a": {"Action": "ADD", "Value": {"S": "x"}}}, P + "ADD action is not supported for the type S"),
    ({"a": {"Action": "ADD", "Value": {"M": {}}}}, P + "ADD action is not supported for the type M"),
]


@pytest.mark.parametrize(("updates", "message"), UPDATE_ERRORS)
def test_attribute_update_errors(updates: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        attribute_updates(updates)
    assert exc.value.message == message


@pytest.mark.parametrize(
    "updates",
    [
        {"s": {"Action": "ADD", "Value": {"N": "1"}}},
        {"ss": {"Action": "ADD", "Value": {"NS": ["1"]}}},
        {"s": {"Action": "DELETE", "Value": {"SS": ["a"]}}},
    ],
)
def test_attribute_update_type_mismatch(updates: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as exc:
        attribute_updates(updates).apply(ITEM)
    assert exc.value.message == "Type mismatch for attribute to update"
