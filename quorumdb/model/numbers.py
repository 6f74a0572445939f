"""DynamoDB numbers: exact decimals of at most 38 significant digits, never floats.

A number travels as a string. ``canonical`` parses and validates it and returns DynamoDB's
canonical text (no exponent, no leading or trailing zeros, no ``-0``). ``to_decimal`` gives an
exact ``Decimal`` for comparison and arithmetic; ``add``/``sub`` do arithmetic as DynamoDB does.
Nothing here uses binary floating point.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation

from quorumdb.errors import ValidationError

__all__ = ["canonical", "to_decimal", "add", "sub", "MAX_DIGITS", "format_decimal"]

MAX_DIGITS = 38
MAX_ADJUSTED_EXP = 125  # 9.99...E+125
MIN_ADJUSTED_EXP = -130  # 1E-130

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ARITH = Context(prec=MAX_DIGITS, Emax=999_999, Emin=-999_999, traps=[Inexact, InvalidOperation])

_cache: dict[str, str] = {}
_CACHE_MAX = 65536

NOT_A_NUMBER = "A value provided cannot be converted into a number"
TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"


def _check(d: Decimal) -> None:
    """Raise if ``d`` is outside DynamoDB's precision or range."""
    if not d:
        return
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    # Significant digits: strip leading and trailing zeros of the coefficient.
    # Range before precision, as DynamoDB reports them.
    adjusted = d.adjusted()
    if adjusted > MAX_ADJUSTED_EXP:
        raise ValidationError(OVERFLOW)
    if adjusted < MIN_ADJUSTED_EXP:
        raise ValidationError(UNDERFLOW)
    text = "".join(map(str, digits)).strip("0")
    if len(text) > MAX_DIGITS:
        raise ValidationError(TOO_PRECISE)


def format_decimal(d: Decimal) -> str:
    """Plain-notation canonical text of an already validated decimal."""
    if not d:
        return "0"
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    coeff = "".join(map(str, digits)).lstrip("0")
    # Drop trailing zeros into the exponent.
    stripped = coeff.rstrip("0")
    exp += len(coeff) - len(stripped)
    coeff = stripped
    if exp >= 0:
        body = coeff + "0" * exp
    else:
        point = len(coeff) + exp
        if point > 0:
            body = coeff[:point] + "." + coeff[point:]
        else:
            body = "0." + "0" * (-point) + coeff
    return ("-" + body) if sign else body


def _parse(text: str) -> Decimal:
    if not isinstance(text, str) or not _NUMBER_RE.fullmatch(text):
        raise ValidationError(NOT_A_NUMBER)
    # The Decimal constructor is exact whatever its length (a context would round, and a
    # 400-digit context once accepted 1.000...0001 as 1); exponents are unbounded integers.
    return Decimal(text)


def _plain_integer(text: str) -> bool:
    """True for an integer already in canonical form: ``0``, or ASCII digits without a leading
    zero (optionally after ``-``), at most 38 digits (so in range and precision)."""
    digits = text[1:] if text[:1] == "-" else text
    return (
        0 < len(digits) <= MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and (digits[0] != "0" or text == "0")
    )


def canonical(text: str) -> str:
    """Validate a DynamoDB number string and return its canonical form."""
    if type(text) is str and _plain_integer(text):
        return text
    hit = _cache.get(text)
    if hit is not None:
        return hit
    d = _parse(text)
    _check(d)
    out = format_decimal(d)
    if len(_cache) < _CACHE_MAX:
        _cache[text] = out
    return out


def to_decimal(text: str) -> Decimal:
    """Exact value of a number string (already canonical or at least valid)."""
    return _parse(text)


def _arith(result_fn: str, a: str, b: str) -> str:
    da, db = _parse(a), _parse(b)
    _check(da)
    _check(db)
    try:
        r = getattr(_ARITH, result_fn)(da, db)
    except Inexact:
        raise ValidationError(TOO_PRECISE) from None
    _check(r)
    return format_decimal(r)


def _int_result(n: int) -> str | None:
    """``n`` as canonical text when it has at most 38 digits (else None: the general path
    decides between rounding errors and trailing zeros)."""
    text = str(n)
    return text if len(text) - (n < 0) <= MAX_DIGITS else None


def add(a: str, b: str) -> str:
    """a + b, exact, as DynamoDB's SET a + b and ADD compute it."""
    if type(a) is str and type(b) is str and _plain_integer(a) and _plain_integer(b):
        out = _int_result(int(a) + int(b))
        if out is not None:
            return out
    return _arith("add", a, b)


def sub(a: str, b: str) -> str:
    """a - b, exact."""
    if type(a) is str and type(b) is str and _plain_integer(a) and _plain_integer(b):
        out = _int_result(int(a) - int(b))
        if out is not None:
            return out
    return _arith("subtract", a, b)
