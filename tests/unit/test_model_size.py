"""DynamoDB item size rules."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.model.size import (
    ITEM_SIZE_MAX,
    ITEM_TOO_BIG,
    UPDATED_ITEM_TOO_BIG,
    check_item_size,
    item_size,
    number_size,
    value_size,
)

# Lengths of DynamoDB's number serialization, as produced by dynalite's port of it (numToBuffer).
NUMBER_SIZES = [
    ("0", 1),
    ("1", 2),
    ("-1", 3),
    ("12", 2),
    ("-12", 3),
    ("1.2", 3),
    ("120", 3),
    ("0.01", 2),
    ("0.001", 2),
    ("-0.001", 3),
    ("99", 2),
    ("100", 2),
    ("101", 3),
    ("1E+125", 2),
    ("-1E-130", 3),
    ("12345678901234567890123456789012345678", 20),
    ("-12345678901234567890123456789012345678", 21),
    ("-1.2345678901234567890123456789012345678", 21),
    ("1.2345678901234567890123456789012345678", 21),
    ("-123.45", 5),
]


@pytest.mark.parametrize(("text", "size"), NUMBER_SIZES)
def test_number_sizes(text: str, size: int) -> None:
    assert number_size(text) == size
    assert value_size({"N": text}) == size


def test_number_size_of_non_canonical_text() -> None:
    assert number_size("1.20") == number_size("1.2") == 3
    assert number_size("00012") == 2


@given(st.integers(-(10**38) + 1, 10**38 - 1))
def test_number_size_is_about_one_byte_per_two_digits(n: int) -> None:
    digits = len(str(abs(n)).rstrip("0")) if n else 0
    size = number_size(str(n))
    if n == 0:
        assert size == 1
    else:
        low = (digits + 1) // 2 + 1
        assert low <= size <= low + 2


def test_scalar_sizes() -> None:
    assert value_size({"S": ""}) == 0
    assert value_size({"S": "abc"}) == 3
    assert value_size({"S": "\u00e9"}) == 2
    assert value_size({"S": "\U0001f600"}) == 4
    assert value_size({"B": ""}) == 0
    assert value_size({"B": "AA=="}) == 1
    assert value_size({"B": "AAA="}) == 2
    assert value_size({"B": "AAAA"}) == 3
    assert value_size({"NULL": True}) == 1
    assert value_size({"BOOL": False}) == 1


@given(st.binary(max_size=64))
def test_binary_size_is_decoded_length(b: bytes) -> None:
    assert value_size({"B": base64.b64encode(b).decode()}) == len(b)


def test_set_sizes() -> None:
    assert value_size({"SS": ["a", "bc", "\u00e9"]}) == 5
    assert value_size({"NS": ["1", "-1", "1.2"]}) == 2 + 3 + 3
    assert value_size({"BS": ["AA==", "AAAA"]}) == 4


def test_document_sizes() -> None:
    assert value_size({"M": {}}) == 3
    assert value_size({"L": []}) == 3
    assert value_size({"M": {"ab": {"S": "x"}}}) == 3 + 1 + 2 + 1
    assert value_size({"L": [{"S": "x"}, {"N": "1"}]}) == 3 + (1 + 1) + (1 + 2)
    nested = {"M": {"l": {"L": [{"M": {}}, {"NULL": True}]}}}
    assert value_size(nested) == 3 + 1 + 1 + (3 + (1 + 3) + (1 + 1))


def test_item_size_counts_names_in_utf8() -> None:
    assert item_size({}) == 0
    assert item_size({"a": {"S": "abc"}}) == 4
    assert item_size({"\u00e9t\u00e9": {"N": "12"}, "b": {"BOOL": True}}) == 5 + 2 + 1 + 1


def test_check_item_size_boundary() -> None:
    exact = {"a": {"S": "x" * (ITEM_SIZE_MAX - 1)}}
    assert check_item_size(exact) == ITEM_SIZE_MAX
    over = {"a": {"S": "x" * ITEM_SIZE_MAX}}
    with pytest.raises(ValidationError) as info:
        check_item_size(over)
    assert info.value.message == ITEM_TOO_BIG == "Item size has exceeded the maximum allowed size"
    with pytest.raises(ValidationError) as info:
        check_item_size(over, message=UPDATED_ITEM_TOO_BIG)
    assert info.value.message == "Item size to update has exceeded the maximum allowed size"


def test_unknown_type_is_a_bug() -> None:
    with pytest.raises(ValueError):
        value_size({"X": 1})
    with pytest.raises(ValueError):
        value_size({})
