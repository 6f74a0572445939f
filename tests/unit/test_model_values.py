"""Attribute value and item validation: DynamoDB's rules, messages and precedence."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.errors import SerializationError, ValidationError
from quorumdb.model.numbers import canonical
from quorumdb.model.values import (
    EXPRESSION_VALUES_ERROR,
    MAX_NESTING_DEPTH,
    check_item_types,
    check_value_types,
    validate_attribute_map,
    validate_item,
    validate_key_value,
    validate_value,
)


def verr(av: Any) -> str:
    with pytest.raises(ValidationError) as info:
        validate_value(av)
    return info.value.message


def serr(av: Any) -> str:
    with pytest.raises(SerializationError) as info:
        validate_value(av)
    return info.value.message


def item_verr(item: Any) -> str:
    with pytest.raises(ValidationError) as info:
        validate_item(item)
    return info.value.message


def item_serr(item: Any) -> str:
    with pytest.raises(SerializationError) as info:
        validate_item(item)
    return info.value.message


# --- valid values -----------------------------------------------------------------------------

VALID = [
    {"S": "x"},
    {"S": ""},
    {"N": "1.5"},
    {"N": "-0.001"},
    {"B": ""},
    {"B": "AAEC"},
    {"BOOL": True},
    {"BOOL": False},
    {"NULL": True},
    {"SS": ["a", "b", ""]},
    {"NS": ["1", "2"]},
    {"BS": ["AA==", "AQ=="]},
    {"M": {}},
    {"L": []},
    {"M": {"a": {"L": [{"S": "x"}, {"M": {"": {"NULL": True}}}]}}},
]


@pytest.mark.parametrize("av", VALID)
def test_valid_canonical_values_come_back_identical(av: dict) -> None:
    before = copy.deepcopy(av)
    assert validate_value(av) is av
    assert av == before
    check_value_types(av)


def test_item_without_changes_is_returned_as_is() -> None:
    item = {"pk": {"S": "a"}, "n": {"N": "12"}, "m": {"M": {"x": {"NS": ["1", "2"]}}}}
    assert validate_item(item) is item


def test_numbers_are_canonicalized_without_mutating_input() -> None:
    item: dict[str, Any] = {
        "a": {"N": "1.50"},
        "b": {"S": "same"},
        "c": {"NS": ["1E2", "7"]},
        "d": {"M": {"x": {"N": "+0"}, "y": {"S": "y"}}},
        "e": {"L": [{"S": "z"}, {"N": "010"}]},
    }
    before = copy.deepcopy(item)
    out = validate_item(item)
    assert out == {
        "a": {"N": "1.5"},
        "b": {"S": "same"},
        "c": {"NS": ["100", "7"]},
        "d": {"M": {"x": {"N": "0"}, "y": {"S": "y"}}},
        "e": {"L": [{"S": "z"}, {"N": "10"}]},
    }
    assert item == before
    assert out["b"] is item["b"]  # unchanged members are shared, not copied
    assert out["d"]["M"]["y"] is item["d"]["M"]["y"]
    assert list(out) == list(item)


def test_string_booleans_convert_as_dynamodb_does() -> None:
    assert validate_value({"BOOL": "true"}) == {"BOOL": True}
    assert validate_value({"BOOL": "No"}) == {"BOOL": False}
    assert validate_value({"BOOL": "1"}) == {"BOOL": True}
    assert validate_value({"NULL": "YES"}) == {"NULL": True}
    assert serr({"BOOL": "maybe"}) == "Unexpected token received from parser"


def test_unknown_members_and_nulls_are_ignored() -> None:
    assert validate_value({"S": "x", "FOO": 1}) == {"S": "x"}
    assert validate_value({"S": None, "N": "01"}) == {"N": "1"}


def test_validate_key_value() -> None:
    assert validate_key_value({"N": "2.0"}) == {"N": "2"}


# --- rule errors ------------------------------------------------------------------------------


def test_exactly_one_type() -> None:
    assert verr({}) == (
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )
    assert verr({"FOO": "x"}) == verr({})
    assert verr({"S": None}) == verr({})
    assert verr({"S": "a", "N": "1"}) == (
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
    )


def test_rule_of_a_member_beats_more_than_one_type() -> None:
    # DynamoDB checks each member's own rules before counting types.
    assert "Null attribute" in verr({"S": "a", "NULL": False})
    assert "set  may not be empty" in verr({"SS": [], "S": "a"})


def test_null_must_be_true() -> None:
    msg = "One or more parameter values were invalid: Null attribute value types must have the value of true"
    assert verr({"NULL": False}) == msg
    assert verr({"NULL": "false"}) == msg


def test_empty_sets() -> None:
    assert verr({"SS": []}) == "One or more parameter values were invalid: An string set  may not be empty"
    assert verr({"NS": []}) == "One or more parameter values were invalid: An number set  may not be empty"
    assert verr({"BS": []}) == "One or more parameter values were invalid: Binary sets should not be empty"


def test_duplicates_in_sets() -> None:
    assert verr({"SS": ["a", "b", "a"]}) == (
        "One or more parameter values were invalid: Input collection [a, b, a] contains duplicates."
    )
    assert verr({"NS": ["1", "1.0"]}) == "Input collection contains duplicates"
    assert verr({"NS": ["10", "1E1"]}) == "Input collection contains duplicates"
    assert verr({"BS": ["AA==", "AA=="]}) == (
        "One or more parameter values were invalid: Input collection [AA==, AA==]of type BS contains duplicates."
    )


def test_number_errors() -> None:
    assert verr({"N": "abc"}) == "A value provided cannot be converted into a number"
    assert verr({"N": ""}) == "A value provided cannot be converted into a number"
    assert verr({"NS": ["1", "x"]}) == "A value provided cannot be converted into a number"
    assert verr({"N": "1E126"}).startswith("Number overflow.")
    assert verr({"N": "1E-131"}).startswith("Number underflow.")
    assert verr({"N": "1" * 39}) == "Attempting to store more than 38 significant digits in a Number"


def nest(levels: int) -> dict:
    av: dict = {"S": "leaf"}
    for i in range(levels):
        av = {"M": {"a": av}} if i % 2 else {"L": [av]}
    return av


def test_nesting_depth() -> None:
    assert validate_value(nest(MAX_NESTING_DEPTH)) == nest(MAX_NESTING_DEPTH)
    assert verr(nest(MAX_NESTING_DEPTH + 1)) == "Nesting Levels have exceeded supported limits"
    assert validate_value(nest(1), depth=MAX_NESTING_DEPTH - 1)
    with pytest.raises(ValidationError):
        validate_value(nest(1), depth=MAX_NESTING_DEPTH)


def test_rules_apply_inside_documents() -> None:
    assert "Null attribute" in verr({"M": {"a": {"L": [{"NULL": False}]}}})
    assert "empty" in verr({"L": [{}]})
    assert "empty" in verr({"L": [None]})


def test_empty_attribute_name() -> None:
    assert "attribute name" in item_verr({"": {"S": "x"}})
    # Names inside maps may be empty.
    assert validate_item({"a": {"M": {"": {"S": "x"}}}})


def test_first_broken_attribute_is_reported() -> None:
    item = {"a": {"S": "ok"}, "b": {"NULL": False}, "c": {"SS": []}}
    assert "Null attribute" in item_verr(item)


# --- shape (serialization) errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("av", "message"),
    [
        ({"S": 5}, "NUMBER_VALUE cannot be converted to String"),
        ({"S": 1.5}, "DECIMAL_VALUE cannot be converted to String"),
        ({"S": True}, "TRUE_VALUE cannot be converted to String"),
        ({"N": False}, "FALSE_VALUE cannot be converted to String"),
        ({"S": ["a"]}, "Unrecognized collection type class java.lang.String"),
        ({"S": {"a": 1}}, "Start of structure or map found where not expected"),
        ({"BOOL": 1}, "NUMBER_VALUE cannot be converted to Boolean"),
        ({"NULL": []}, "Unrecognized collection type class java.lang.Boolean"),
        ({"BOOL": {}}, "Start of structure or map found where not expected"),
        ({"B": 5}, "only base-64-encoded strings are convertible to bytes"),
        ({"B": []}, "Unrecognized collection type class java.nio.ByteBuffer"),
        ({"B": "abc"}, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ({"B": "AB=="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "A==="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "AA*="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "\u00e9\u00e9\u00e9\u00e9"}, "Invalid last non-pad Base64 character dectected"),
        ({"SS": "a"}, "Unexpected field type"),
        ({"SS": {}}, "Start of structure or map found where not expected"),
        ({"SS": [1]}, "NUMBER_VALUE cannot be converted to String"),
        ({"BS": ["x"]}, "Base64 encoded length is expected a multiple of 4 bytes but found: 1"),
        ({"L": {}}, "Start of structure or map found where not expected"),
        ({"L": "x"}, "Unexpected field type"),
        ({"L": [1]}, "Unexpected value type in payload"),
        ({"L": [[]]}, "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
        ({"M": []}, "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"),
        ({"M": 3}, "Unexpected field type"),
        ({"M": {"a": "x"}}, "Unexpected value type in payload"),
        ("x", "Unexpected value type in payload"),
        ([], "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
    ],
)
def test_shape_errors(av: Any, message: str) -> None:
    assert serr(av) == message
    with pytest.raises(SerializationError):
        check_value_types(av)


def test_field_struct_shape_error() -> None:
    with pytest.raises(SerializationError) as info:
        validate_value("x", field=True)
    assert info.value.message == "Unexpected field type"


def test_item_shape_errors() -> None:
    assert item_serr([]) == (
        "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
    )
    assert item_serr("x") == "Unexpected field type"
    assert item_serr({"a": 1}) == "Unexpected value type in payload"
    with pytest.raises(SerializationError):
        check_item_types({"a": {"S": "x"}, "b": {"M": []}})
    check_item_types({"a": {"SS": []}, "b": {"NULL": False}})  # rules are not shapes


def test_shape_error_anywhere_beats_rule_error() -> None:
    # DynamoDB deserializes the whole request before checking rules.
    assert item_serr({"a": {"SS": []}, "b": {"S": 5}}) == "NUMBER_VALUE cannot be converted to String"
    assert serr({"L": [{"NULL": False}, {"B": "!!!!"}]}) == "Invalid last non-pad Base64 character dectected"
    assert serr({"S": "a", "N": "1", "B": 1}) == "only base-64-encoded strings are convertible to bytes"


def test_shape_errors_win_over_nesting_and_names() -> None:
    deep = nest(MAX_NESTING_DEPTH + 3)
    assert item_serr({"": {"S": "x"}, "d": deep, "z": {"S": 1}}) == "NUMBER_VALUE cannot be converted to String"


# --- attribute maps ---------------------------------------------------------------------------


def test_expression_values_message() -> None:
    with pytest.raises(ValidationError) as info:
        validate_attribute_map({":a": {"S": "x"}, ":b": {"SS": []}}, error_format=EXPRESSION_VALUES_ERROR)
    assert info.value.message == (
        "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: "
        "An string set  may not be empty for key :b"
    )


def test_attribute_map_canonicalizes() -> None:
    values = {":n": {"N": "5.0"}, ":s": {"S": "x"}}
    assert validate_attribute_map(values) == {":n": {"N": "5"}, ":s": {"S": "x"}}
    same = {":s": {"S": "x"}}
    assert validate_attribute_map(same) is same


# --- properties -------------------------------------------------------------------------------

number_texts = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(min_value=-(10**12), max_value=10**12, places=6).map(str),
    st.builds(lambda m, e: f"{m}E{e}", st.integers(-999, 999), st.integers(-100, 100)),
)
scalars = st.one_of(
    st.text(max_size=5).map(lambda s: {"S": s}),
    number_texts.map(lambda n: {"N": n}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sampled_from(["", "AA==", "AAEC", "/+8="]).map(lambda b: {"B": b}),
    st.lists(st.text(max_size=3), min_size=1, max_size=4, unique=True).map(lambda x: {"SS": x}),
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=4, unique=True).map(
        lambda x: {"NS": [f"{i}.0" for i in x]}
    ),
)
values = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3).map(lambda x: {"L": x}),
        st.dictionaries(st.text(max_size=3), kids, max_size=3).map(lambda x: {"M": x}),
    ),
    max_leaves=12,
)


def numbers_in(av: dict) -> list[str]:
    ((tag, v),) = av.items()
    if tag == "N":
        return [v]
    if tag == "NS":
        return list(v)
    if tag == "L":
        return [n for x in v for n in numbers_in(x)]
    if tag == "M":
        return [n for x in v.values() for n in numbers_in(x)]
    return []


@given(values)
def test_validation_is_idempotent_and_preserves_numbers(av: dict) -> None:
    before = copy.deepcopy(av)
    out = validate_value(av)
    assert av == before
    assert validate_value(out) is out
    assert [Decimal(n) for n in numbers_in(out)] == [Decimal(n) for n in numbers_in(av)]
    assert all(canonical(n) == n for n in numbers_in(out))


@given(st.dictionaries(st.text(min_size=1, max_size=4), values, max_size=4))
def test_item_validation_is_idempotent(item: dict) -> None:
    out = validate_item(item)
    assert validate_item(out) is out
    check_item_types(item)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "x", "AA==", "true", "no", "1e400", "-0.0"]),
)
tag_keys = st.sampled_from(["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL", "X", ""])
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(tag_keys, kids, max_size=2),
    ),
    max_leaves=10,
)


@given(json_values)
def test_any_json_gives_a_value_or_a_dynamodb_error(raw: Any) -> None:
    from quorumdb.model.size import value_size

    before = copy.deepcopy(raw)
    try:
        out = validate_value(raw)
    except (SerializationError, ValidationError):
        assert raw == before
        return
    assert raw == before
    assert validate_value(out) is out
    assert value_size(out) >= 0


@given(st.dictionaries(st.text(max_size=2), json_values, max_size=3))
def test_any_json_item_gives_an_item_or_a_dynamodb_error(raw: Any) -> None:
    try:
        out = validate_item(raw)
    except (SerializationError, ValidationError):
        return
    assert validate_item(out) is out
