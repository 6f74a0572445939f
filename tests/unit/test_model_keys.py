"""Key encoding order, self-delimitation, round trips, partition hashes and key validation."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.model.keys import (
    KEY_SCHEMA_MISMATCH,
    PARTITION_HASH_SIZE,
    decode_primary_key,
    decode_value,
    encode_prefix,
    encode_primary_key,
    encode_value,
    extract_key,
    key_value_allowed,
    partition_hash,
)
from quorumdb.model.numbers import canonical
from quorumdb.model.schema import KeyAttr, KeySchema

# --- strategies -------------------------------------------------------------------------------


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Canonical DynamoDB numbers across the whole range and precision."""
    if draw(st.integers(0, 20)) == 0:
        return "0"
    ndigits = draw(st.integers(1, 38))
    coeff = draw(st.integers(10 ** (ndigits - 1), 10**ndigits - 1))
    adjusted = draw(
        st.one_of(st.integers(-130, 125), st.integers(-3, 3), st.sampled_from([-130, 125]))
    )
    exp = adjusted - (ndigits - 1)
    sign = draw(st.booleans())
    d = Decimal(f"{'-' if sign else ''}{coeff}E{exp}")
    return canonical(str(d))


texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x00", "\x01", "\xff", "a", "b", "\u00e9", "\U0001f600"]),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)
blobs = st.binary(max_size=12).map(lambda b: bytes(b))
small_blobs = st.lists(st.sampled_from([0, 1, 2, 0xFE, 0xFF]), max_size=6).map(bytes)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def enc_s(s: str) -> bytes:
    return encode_value({"S": s})


def enc_b(b: bytes) -> bytes:
    return encode_value({"B": b64(b)})


def enc_n(n: str) -> bytes:
    return encode_value({"N": n})


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def cmp(a: object, b: object) -> int:
    return sign((a > b) - (a < b))  # type: ignore[operator]


# --- order ------------------------------------------------------------------------------------


@given(numbers(), numbers())
def test_number_order_matches_decimal_order(a: str, b: str) -> None:
    assert cmp(enc_n(a), enc_n(b)) == cmp(Decimal(a), Decimal(b))


@given(texts, texts)
def test_string_order_is_utf8_byte_order(a: str, b: str) -> None:
    assert cmp(enc_s(a), enc_s(b)) == cmp(a.encode(), b.encode())


@given(st.one_of(blobs, small_blobs), st.one_of(blobs, small_blobs))
def test_binary_order_is_unsigned_byte_order(a: bytes, b: bytes) -> None:
    assert cmp(enc_b(a), enc_b(b)) == cmp(a, b)


@given(texts, numbers(), texts, numbers())
def test_concatenation_sorts_as_tuple_s_n(s1: str, n1: str, s2: str, n2: str) -> None:
    left = enc_s(s1) + enc_n(n1)
    right = enc_s(s2) + enc_n(n2)
    assert cmp(left, right) == cmp((s1.encode(), Decimal(n1)), (s2.encode(), Decimal(n2)))


@given(numbers(), small_blobs, numbers(), small_blobs)
def test_concatenation_sorts_as_tuple_n_b(n1: str, b1: bytes, n2: str, b2: bytes) -> None:
    left = enc_n(n1) + enc_b(b1)
    right = enc_n(n2) + enc_b(b2)
    assert cmp(left, right) == cmp((Decimal(n1), b1), (Decimal(n2), b2))


@given(small_blobs, small_blobs, small_blobs, small_blobs)
def test_concatenation_sorts_as_tuple_b_b(a1: bytes, b1: bytes, a2: bytes, b2: bytes) -> None:
    assert cmp(enc_b(a1) + enc_b(b1), enc_b(a2) + enc_b(b2)) == cmp((a1, b1), (a2, b2))


@given(st.lists(numbers(), min_size=2, max_size=8))
def test_sorting_many_numbers(ns: list[str]) -> None:
    by_bytes = [Decimal(n) for n in sorted(ns, key=enc_n)]
    assert by_bytes == sorted(Decimal(n) for n in ns)


def test_number_order_examples() -> None:
    ordered = [
        "-9.9999999999999999999999999999999999999E+125",
        "-1E+125",
        "-100",
        "-12",
        "-10",
        "-1.23",
        "-1.2",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.05",
        "0.5",
        "1",
        "1.2",
        "1.2000000000000000000000000000000000001",
        "1.23",
        "10",
        "12",
        "100",
        "9.9999999999999999999999999999999999999E+125",
    ]
    encoded = [enc_n(canonical(n)) for n in ordered]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)


def test_proper_prefix_sorts_first() -> None:
    assert enc_s("ab") < enc_s("ab\x00") < enc_s("ab\x00\x00") < enc_s("ab\x01") < enc_s("abc")
    assert enc_b(b"") < enc_b(b"\x00") < enc_b(b"\x00\x00") < enc_b(b"\x01")


# --- round trips and self-delimitation ------------------------------------------------------


@given(numbers(), st.binary(max_size=4))
def test_number_round_trip(n: str, tail: bytes) -> None:
    e = enc_n(n)
    av, end = decode_value(e + tail, 0, "N")
    assert av == {"N": n}
    assert end == len(e)


@given(texts, st.binary(max_size=4))
def test_string_round_trip(s: str, tail: bytes) -> None:
    e = b"xy" + enc_s(s)
    av, end = decode_value(e + tail, 2, "S")
    assert av == {"S": s}
    assert end == len(e)


@given(blobs, st.binary(max_size=4))
def test_binary_round_trip(b: bytes, tail: bytes) -> None:
    e = enc_b(b)
    av, end = decode_value(e + tail, 0, "B")
    assert av == {"B": b64(b)}
    assert end == len(e)


@given(st.lists(st.one_of(texts.map(lambda s: ("S", s)), numbers().map(lambda n: ("N", n))), max_size=5))
def test_concatenations_decode_back(parts: list[tuple[str, str]]) -> None:
    buf = b"".join(encode_value({t: v}) for t, v in parts)
    pos = 0
    for t, v in parts:
        av, pos = decode_value(buf, pos, t)
        assert av == {t: v}
    assert pos == len(buf)


def test_numbers_decode_canonical() -> None:
    for text, want in [("1.50", "1.5"), ("1E2", "100"), ("-0.0", "0"), ("+007", "7"), ("5e-3", "0.005")]:
        assert decode_value(enc_n(text), 0, "N")[0] == {"N": want}


def test_equal_numbers_encode_equal() -> None:
    assert enc_n("1") == enc_n("1.0") == enc_n("10E-1")
    assert enc_n("0") == enc_n("-0") == b"\x02"


def test_golden_encodings() -> None:
    # The on-disk format: these bytes must never change.
    assert enc_n("1.5") == b"\x03\x82\x10\x00"
    assert enc_n("-1.5") == b"\x01\x7d\x55\xff"
    assert enc_n("120") == b"\x03\x84\x0d\x00"
    assert enc_s("a\x00") == b"a\x00\xff\x00\x01"
    assert enc_b(b"\x00\x01") == b"\x00\xff\x01\x00\x01"
    assert partition_hash({"S": "x"}).hex() == "904afbbaf6c989f9"


def test_decode_rejects_corruption() -> None:
    with pytest.raises(ValueError):
        decode_value(b"abc", 0, "S")
    with pytest.raises(ValueError):
        decode_value(b"a\x00\x05", 0, "S")
    with pytest.raises(ValueError):
        decode_value(b"\x07", 0, "N")
    with pytest.raises(ValueError):
        decode_value(b"\x03\x82\x10", 0, "N")
    with pytest.raises(ValueError):
        decode_value(b"\x03\x82\x65\x00", 0, "N")
    with pytest.raises(ValueError):
        decode_value(b"\x03\x82\x00", 0, "N")
    with pytest.raises(ValueError):
        decode_value(b"x", 0, "SS")


@given(texts, texts)
def test_prefix_encoding_matches_startswith(s: str, p: str) -> None:
    assert enc_s(s).startswith(encode_prefix({"S": p})) == s.startswith(p)


@given(small_blobs, small_blobs)
def test_binary_prefix_encoding_matches_startswith(b: bytes, p: bytes) -> None:
    assert enc_b(b).startswith(encode_prefix({"B": b64(p)})) == b.startswith(p)


# --- partition hash and primary keys ----------------------------------------------------------


def test_partition_hash_shape_and_type_separation() -> None:
    h = partition_hash({"S": "1"})
    assert len(h) == PARTITION_HASH_SIZE
    assert h != partition_hash({"N": "1"})
    assert partition_hash({"N": "1"}) == partition_hash({"N": "1.000"})
    assert partition_hash({"B": b64(b"1")}) != h


SCHEMA_H = KeySchema(hash=KeyAttr(name="pk", type="S"))
SCHEMA_HR = KeySchema(hash=KeyAttr(name="pk", type="N"), range=KeyAttr(name="sk", type="B"))


@given(texts.filter(bool))
def test_primary_key_round_trip_hash_only(s: str) -> None:
    key = {"pk": {"S": s}}
    buf = encode_primary_key(SCHEMA_H, key)
    assert buf[:PARTITION_HASH_SIZE] == partition_hash({"S": s})
    assert decode_primary_key(SCHEMA_H, b"pre" + buf, 3) == (key, len(buf) + 3)


@given(numbers(), blobs.filter(bool))
def test_primary_key_round_trip_hash_range(n: str, b: bytes) -> None:
    key = {"pk": {"N": n}, "sk": {"B": b64(b)}}
    buf = encode_primary_key(SCHEMA_HR, key)
    assert decode_primary_key(SCHEMA_HR, buf) == (key, len(buf))


@given(small_blobs, small_blobs)
def test_primary_keys_of_one_partition_sort_by_range(a: bytes, b: bytes) -> None:
    ka = encode_primary_key(SCHEMA_HR, {"pk": {"N": "7"}, "sk": {"B": b64(a)}})
    kb = encode_primary_key(SCHEMA_HR, {"pk": {"N": "7"}, "sk": {"B": b64(b)}})
    assert cmp(ka, kb) == cmp(a, b)


def test_encode_primary_key_ignores_other_attributes() -> None:
    item = {"pk": {"S": "a"}, "x": {"N": "1"}}
    assert encode_primary_key(SCHEMA_H, item) == encode_primary_key(SCHEMA_H, {"pk": {"S": "a"}})


# --- extract_key ------------------------------------------------------------------------------

SCHEMA_SS = KeySchema(hash=KeyAttr(name="h", type="S"), range=KeyAttr(name="r", type="S"))


def msg(schema: KeySchema, item: dict, exact: bool) -> str:
    with pytest.raises(ValidationError) as info:
        extract_key(schema, item, exact=exact)
    return info.value.message


def test_extract_key_item_ok_and_canonical() -> None:
    item = {"pk": {"N": "1.50"}, "sk": {"B": "AA=="}, "other": {"S": "x"}}
    assert extract_key(SCHEMA_HR, item, exact=False) == {"pk": {"N": "1.5"}, "sk": {"B": "AA=="}}
    item2 = {"h": {"S": "a"}, "r": {"S": "b"}}
    assert extract_key(SCHEMA_SS, item2, exact=True) == item2


def test_extract_key_exact_errors() -> None:
    assert msg(SCHEMA_SS, {"h": {"S": "a"}}, True) == KEY_SCHEMA_MISMATCH
    assert msg(SCHEMA_SS, {"h": {"S": "a"}, "r": {"S": "b"}, "x": {"S": "c"}}, True) == KEY_SCHEMA_MISMATCH
    assert msg(SCHEMA_SS, {"h": {"S": "a"}, "x": {"S": "c"}}, True) == KEY_SCHEMA_MISMATCH
    assert msg(SCHEMA_SS, {"h": {"N": "1"}, "r": {"S": "b"}}, True) == KEY_SCHEMA_MISMATCH
    assert msg(SCHEMA_H, {}, True) == KEY_SCHEMA_MISMATCH
    assert msg(SCHEMA_SS, {"h": {"S": ""}, "r": {"S": "b"}}, True) == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: h"
    )


def test_extract_key_item_errors() -> None:
    assert msg(SCHEMA_SS, {"r": {"S": "b"}}, False) == (
        "One or more parameter values were invalid: Missing the key h in the item"
    )
    assert msg(SCHEMA_SS, {"h": {"S": "a"}}, False) == (
        "One or more parameter values were invalid: Missing the key r in the item"
    )
    assert msg(SCHEMA_SS, {"h": {"N": "1"}, "r": {"S": "b"}}, False) == (
        "One or more parameter values were invalid: Type mismatch for key h expected: S actual: N"
    )
    assert msg(SCHEMA_HR, {"pk": {"N": "1"}, "sk": {"B": ""}}, False) == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty binary value. Key: sk"
    )
    # Hash before range: the hash key's problem is reported first.
    assert "Key: h" in msg(SCHEMA_SS, {"h": {"S": ""}, "r": {"N": "1"}}, False)


def test_extract_key_size_limits() -> None:
    ok = {"h": {"S": "a" * 2048}, "r": {"S": "b" * 1024}}
    assert extract_key(SCHEMA_SS, ok, exact=True) == ok
    assert msg(SCHEMA_SS, {"h": {"S": "a" * 2049}, "r": {"S": "b"}}, False) == (
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
    )
    assert msg(SCHEMA_SS, {"h": {"S": "a"}, "r": {"S": "b" * 1025}}, True) == (
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    )
    # UTF-8 bytes count, not characters.
    assert "hashkey" in msg(SCHEMA_SS, {"h": {"S": "\u00e9" * 1025}, "r": {"S": "b"}}, False)
    assert extract_key(SCHEMA_SS, {"h": {"S": "\u00e9" * 1024}, "r": {"S": "b"}}, exact=False)
    # Binary limits count decoded bytes.
    assert extract_key(SCHEMA_HR, {"pk": {"N": "1"}, "sk": {"B": b64(b"x" * 1024)}}, exact=True)
    assert "range keys" in msg(SCHEMA_HR, {"pk": {"N": "1"}, "sk": {"B": b64(b"x" * 1025)}}, True)


@settings(max_examples=50)
@given(st.integers(1020, 1030))
def test_binary_key_size_boundary(n: int) -> None:
    key = {"pk": {"N": "1"}, "sk": {"B": b64(b"z" * n)}}
    if n <= 1024:
        assert extract_key(SCHEMA_HR, key, exact=True) == key
    else:
        with pytest.raises(ValidationError):
            extract_key(SCHEMA_HR, key, exact=True)


def test_key_value_allowed() -> None:
    assert key_value_allowed("S", "x", is_hash=True) and key_value_allowed("N", "0", is_hash=False)
    assert not key_value_allowed("S", "", is_hash=True)
    assert not key_value_allowed("B", "", is_hash=False)
    assert key_value_allowed("S", "h" * 2048, is_hash=True) and not key_value_allowed("S", "h" * 2049, is_hash=True)
    assert key_value_allowed("S", "é" * 512, is_hash=False) and not key_value_allowed("S", "é" * 513, is_hash=False)
    assert key_value_allowed("B", base64.b64encode(b"b" * 1024).decode(), is_hash=False)
    assert not key_value_allowed("B", base64.b64encode(b"b" * 1025).decode(), is_hash=False)
