"""Equality and ordering of DynamoDB attribute values, as conditions and key ranges see them.

``values_equal`` is DynamoDB's ``=``: same type and same value, sets unordered, numbers (also
inside NS) by numeric value, maps and lists deeply. ``compare`` is the order of ``<``/``BETWEEN``
and of sort keys: S by UTF-8 bytes, B by unsigned bytes, N by value; other or mixed types have
no order (``None``). Nothing here raises for a type mismatch and nothing uses floats.
"""

from __future__ import annotations

import base64
from decimal import Decimal

from quorumdb.model.types import AttributeValue

__all__ = ["values_equal", "compare", "type_of", "decode_binary", "number_value"]


def type_of(av: AttributeValue) -> str:
    """The type tag of a (valid, single-key) attribute value."""
    for tag in av:
        return tag
    raise ValueError("empty attribute value")


def decode_binary(text: str | bytes) -> bytes:
    """Bytes of a B value (base64 text on the wire; raw bytes tolerated)."""
    if isinstance(text, bytes | bytearray):
        return bytes(text)
    return base64.b64decode(text)


def to_decimal(text: str) -> Decimal:
    """Exact value of a validated number string (the constructor is exact at any precision)."""
    return Decimal(text)


def number_value(text: str) -> Decimal:
    return Decimal(text)


def _set_key(tag: str, element: str) -> object:
    if tag == "NS":
        return to_decimal(element)
    if tag == "BS":
        return decode_binary(element)
    return element


def values_equal(a: AttributeValue, b: AttributeValue) -> bool:
    """DynamoDB equality of two attribute values."""
    ta, tb = type_of(a), type_of(b)
    if ta != tb:
        return False
    va, vb = a[ta], b[tb]
    if ta == "S" or ta == "BOOL" or ta == "NULL":
        return bool(va == vb)
    if ta == "N":
        return va == vb or to_decimal(va) == to_decimal(vb)
    if ta == "B":
        return va == vb or decode_binary(va) == decode_binary(vb)
    if ta in ("SS", "NS", "BS"):
        if len(va) != len(vb):
            return False
        return {_set_key(ta, x) for x in va} == {_set_key(ta, x) for x in vb}
    if ta == "L":
        return len(va) == len(vb) and all(values_equal(x, y) for x, y in zip(va, vb, strict=True))
    if ta == "M":
        if va.keys() != vb.keys():
            return False
        return all(values_equal(va[k], vb[k]) for k in va)
    return False


def _cmp(x: object, y: object) -> int:
    return (x > y) - (x < y)  # type: ignore[operator]


def compare(a: AttributeValue, b: AttributeValue) -> int | None:
    """-1, 0 or 1 for ordered types (S, N, B) of the same type; None otherwise."""
    ta, tb = type_of(a), type_of(b)
    if ta != tb:
        return None
    va, vb = a[ta], b[tb]
    if ta == "S":
        if va == vb:
            return 0
        return _cmp(va.encode("utf-8"), vb.encode("utf-8"))
    if ta == "N":
        if va == vb:
            return 0
        return _cmp(to_decimal(va), to_decimal(vb))
    if ta == "B":
        return _cmp(decode_binary(va), decode_binary(vb))
    return None
