"""DynamoDB numbers: canonical text, range and precision, exact arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.model.numbers import (
    MAX_DIGITS,
    NOT_A_NUMBER,
    OVERFLOW,
    TOO_PRECISE,
    UNDERFLOW,
    add,
    canonical,
    format_decimal,
    sub,
    to_decimal,
)


def err(text: str) -> str:
    with pytest.raises(ValidationError) as info:
        canonical(text)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0", "0"),
        ("-0", "0"),
        ("0.000", "0"),
        ("+0e5", "0"),
        ("1", "1"),
        ("01", "1"),
        ("1.50", "1.5"),
        ("-1.50", "-1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1e2", "100"),
        ("1E+2", "100"),
        ("12.5e-3", "0.0125"),
        ("-1E-130", "-0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("0.00012345678901234567890123456789012345678", "0.00012345678901234567890123456789012345678"),
        ("1" + "0" * 60, "1" + "0" * 60),
    ],
)
def test_canonical_examples(text: str, want: str) -> None:
    assert canonical(text) == want


def test_not_numbers() -> None:
    for text in ["", "abc", "1.2.3", "1e", "e5", "--1", "1 ", " 1", "NaN", "Infinity", "0x10", "1_000"]:
        assert err(text) == NOT_A_NUMBER, text


def test_range_and_precision() -> None:
    assert err("1E126") == OVERFLOW
    assert err("-1E126") == OVERFLOW
    assert err("1E-131") == UNDERFLOW
    assert err("1e999999999999999999") == OVERFLOW
    assert err("1e-999999999999999999") == UNDERFLOW
    assert err("1" * 39) == TOO_PRECISE
    assert err("1.00000000000000000000000000000000000001") == TOO_PRECISE
    # Out of range beats too precise.
    assert err("1" * 39 + "E+200") == OVERFLOW
    # Trailing and leading zeros are not significant.
    assert canonical("1" * 38 + "000") == "1" * 38 + "000"
    assert canonical("0.000" + "1" * 38) == "0.000" + "1" * 38


def test_long_inputs_are_not_rounded() -> None:
    # Regression: a 400-digit parsing context once rounded this to "1".
    assert err("1." + "0" * 450 + "1") == TOO_PRECISE
    assert canonical("1." + "0" * 450) == "1"


@st.composite
def numbers(draw: st.DrawFn) -> str:
    ndigits = draw(st.integers(1, MAX_DIGITS))
    coeff = draw(st.integers(0, 10**ndigits - 1))
    adjusted = draw(st.integers(-130, 125))
    exp = adjusted - (ndigits - 1)
    sign = draw(st.sampled_from(["", "-", "+"]))
    style = draw(st.integers(0, 2))
    if style == 0:
        return f"{sign}{coeff}E{exp}"
    if style == 1:
        return f"{sign}{coeff}e{exp:+d}"
    return sign + str(Decimal(coeff).scaleb(exp))


@given(numbers())
def test_canonical_is_idempotent_and_exact(text: str) -> None:
    try:
        c = canonical(text)
    except ValidationError as e:
        # Only coefficients whose leading zeros pushed them out of range may fail.
        assert e.message == UNDERFLOW
        return
    assert canonical(c) == c
    assert Decimal(c) == Decimal(text)
    assert to_decimal(c) == Decimal(text)
    assert "e" not in c.lower()
    assert c == "0" or not c.lstrip("-").startswith("00")
    if "." in c:
        assert not c.endswith("0")
    assert c != "-0"


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30))
def test_format_decimal_matches_canonical(d: Decimal) -> None:
    try:
        c = canonical(str(d))
    except ValidationError:
        return
    assert format_decimal(d) == c


def test_arithmetic() -> None:
    assert add("1", "2") == "3"
    assert add("0.1", "0.2") == "0.3"
    assert sub("1", "1") == "0"
    assert sub("-1.5", "1.5") == "-3"
    assert add("99999999999999999999999999999999999999", "1") == "1" + "0" * 38
    with pytest.raises(ValidationError) as info:
        add("1E+125", "1E-130")
    assert info.value.message == TOO_PRECISE
    with pytest.raises(ValidationError) as info:
        add("9E+125", "9E+125")
    assert info.value.message == OVERFLOW


@given(st.integers(-(10**37), 10**37), st.integers(-(10**37), 10**37))
def test_integer_arithmetic_is_exact(a: int, b: int) -> None:
    assert add(str(a), str(b)) == str(a + b)
    assert sub(str(a), str(b)) == str(a - b)
