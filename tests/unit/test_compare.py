"""model.compare: DynamoDB equality and ordering of attribute values."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.model.compare import compare, values_equal


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EQUAL = [
    ({"S": "a"}, {"S": "a"}),
    ({"N": "1"}, {"N": "1"}),
    ({"N": "1.0"}, {"N": "1"}),
    ({"N": "-0"}, {"N": "0"}),
    ({"B": b64(b"x")}, {"B": b64(b"x")}),
    ({"SS": ["a", "b"]}, {"SS": ["b", "a"]}),
    ({"NS": ["1", "2.50"]}, {"NS": ["2.5", "1"]}),
    ({"BS": [b64(b"a"), b64(b"b")]}, {"BS": [b64(b"b"), b64(b"a")]}),
    ({"BOOL": True}, {"BOOL": True}),
    ({"NULL": True}, {"NULL": True}),
    ({"L": [{"N": "1"}, {"S": "x"}]}, {"L": [{"N": "1.00"}, {"S": "x"}]}),
    ({"M": {"a": {"NS": ["1", "2"]}}}, {"M": {"a": {"NS": ["2", "1"]}}}),
]

NOT_EQUAL = [
    ({"S": "a"}, {"S": "b"}),
    ({"S": "1"}, {"N": "1"}),
    ({"N": "1"}, {"N": "2"}),
    ({"SS": ["a"]}, {"SS": ["a", "b"]}),
    ({"SS": ["a"]}, {"L": [{"S": "a"}]}),
    ({"L": [{"N": "1"}, {"N": "2"}]}, {"L": [{"N": "2"}, {"N": "1"}]}),
    ({"M": {"a": {"S": "x"}}}, {"M": {"b": {"S": "x"}}}),
    ({"BOOL": True}, {"BOOL": False}),
    ({"B": b64(b"a")}, {"S": b64(b"a")}),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal(a: dict, b: dict) -> None:
    assert values_equal(a, b)
    assert values_equal(b, a)


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_not_equal(a: dict, b: dict) -> None:
    assert not values_equal(a, b)
    assert not values_equal(b, a)


ORDER = [
    ({"S": "a"}, {"S": "b"}, -1),
    ({"S": "b"}, {"S": "a"}, 1),
    ({"S": "a"}, {"S": "a"}, 0),
    # UTF-8 byte order, not UTF-16 code-unit order: U+FF61 < U+1F600 in both, but
    # U+E000 (3 bytes, 0xEE...) > U+10000 (4 bytes, 0xF0...) is false in UTF-8.
    ({"S": "\ue000"}, {"S": "\U00010000"}, -1),
    ({"S": "Z"}, {"S": "a"}, -1),
    ({"N": "10"}, {"N": "9"}, 1),
    ({"N": "-10"}, {"N": "-9"}, -1),
    ({"N": "1.5"}, {"N": "1.50"}, 0),
    ({"N": "1E+2"}, {"N": "99"}, 1),
    ({"B": b64(b"\x01")}, {"B": b64(b"\xff")}, -1),
    ({"B": b64(b"ab")}, {"B": b64(b"a")}, 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), ORDER)
def test_compare(a: dict, b: dict, expected: int) -> None:
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"S": "1"}, {"N": "1"}),
        ({"SS": ["a"]}, {"SS": ["a"]}),
        ({"BOOL": True}, {"BOOL": False}),
        ({"NULL": True}, {"NULL": True}),
        ({"L": []}, {"L": []}),
        ({"M": {}}, {"M": {}}),
    ],
)
def test_compare_unordered(a: dict, b: dict) -> None:
    assert compare(a, b) is None


@given(st.decimals(allow_nan=False, allow_infinity=False, places=5), st.decimals(allow_nan=False, allow_infinity=False, places=5))
def test_numbers_compare_like_decimals(x, y) -> None:  # type: ignore[no-untyped-def]
    a, b = {"N": str(x)}, {"N": str(y)}
    assert compare(a, b) == (x > y) - (x < y)
    assert values_equal(a, b) == (x == y)


@given(st.text(max_size=8), st.text(max_size=8))
def test_strings_compare_by_utf8(x: str, y: str) -> None:
    bx, by = x.encode(), y.encode()
    assert compare({"S": x}, {"S": y}) == (bx > by) - (bx < by)
