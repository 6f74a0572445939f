"""Key values as bytes: order-preserving, self-delimiting encodings, partition hashes, key checks.

Storage keeps items under ``prefix(table) + partition_hash(pk) + encode(pk) [+ encode(sk)]``.
The encodings here are therefore an on-disk format: once written, a byte string must keep its
meaning forever. Never change an existing rule below; a new encoding needs a new type tag or a
new key-space prefix, decided outside this module.

Scalar key encodings (``encode_value``)
=======================================
Every encoding is *order-preserving* (bytewise order of encodings equals DynamoDB's order of
values of one type) and *self-delimiting* (no encoding is a prefix of another), so the
concatenation ``encode(a1) + encode(b1)`` sorts against ``encode(a2) + encode(b2)`` exactly as
the tuple ``(a1, b1)`` against ``(a2, b2)``.

``S`` (string)
    The UTF-8 bytes with every ``0x00`` written as ``0x00 0xFF``, followed by the terminator
    ``0x00 0x01``. Order: by UTF-8 bytes, a proper prefix sorts first (``0x00 0x01`` is below
    any continuation byte and below an escaped ``0x00 0xFF``).

``B`` (binary)
    The raw (base64-decoded) bytes, escaped and terminated exactly like ``S``.

``N`` (number, DynamoDB range 1E-130 .. 9.99..E+125, at most 38 significant digits)
    Write a non-zero value as ``d1.d2d3...dn x 10^E`` with ``d1 != 0`` and ``dn != 0``
    (``E`` is the adjusted exponent, ``-130 <= E <= 125``). The digit string is padded with one
    ``0`` to an even length and cut into base-100 pairs ``p`` (``0..99``).

    - zero:      ``0x02``                                            (one byte, nothing else)
    - positive:  ``0x03``, ``E + 130`` (one byte, 0..255), each pair as ``p + 1`` (1..100),
      terminator ``0x00``
    - negative:  ``0x01``, ``125 - E`` (one byte, 0..255), each pair as ``100 - p`` (1..100),
      terminator ``0xFF``

    Negative < zero < positive by the first byte. Among positives a larger exponent is larger;
    with equal exponents the pairs compare as the digit strings do, and the terminator ``0x00``
    (below every pair byte) makes a shorter mantissa sort first. Negatives mirror all of it, so
    a larger magnitude sorts first and their terminator ``0xFF`` is above every pair byte.
    Since canonical digit strings never end in ``0``, the padding digit is unambiguous.

Partition hash (``partition_hash``)
===================================
The first 8 bytes of ``md5(type_tag + encode_value(value))``, with the type tag as ASCII
(``b"S"``, ``b"N"``, ``b"B"``). It places partitions and orders Scan, as DynamoDB's hash does.
Equal values (``1`` and ``1.0``) hash equally because the encoding is of the value.

Multi-attribute partition keys (``encode_partition``)
=====================================================
A global secondary index may have a partition key of up to four attributes ``a1..an``. Its
hash is the first 8 bytes of ``md5(tag1 + encode_value(a1) + ... + tagn + encode_value(an))``,
followed by ``encode_value(a1) + ... + encode_value(an)``. With one attribute this is exactly
the single-attribute layout above. Sort-key attributes follow in order, each self-delimiting,
so index entries sort by the sort attributes in sequence.

Primary keys (``encode_primary_key``)
=====================================
``partition_hash(hash value) + encode_value(hash value) [+ encode_value(range value)]``. The
types come from the table's key schema, so no type tag is stored.

This module never validates whole items and never touches storage; it only checks the key
attributes (``extract_key``) and turns key values into bytes and back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from quorumdb.errors import ValidationError
from quorumdb.model.numbers import MAX_ADJUSTED_EXP, MIN_ADJUSTED_EXP, canonical
from quorumdb.model.schema import KeyAttr, KeySchema
from quorumdb.model.types import AttributeValue, Item, Key

__all__ = [
    "encode_value",
    "encode_scalar",
    "encode_prefix",
    "decode_value",
    "partition_hash",
    "encode_primary_key",
    "encode_partition",
    "decode_primary_key",
    "extract_key",
    "key_value_size",
    "key_value_allowed",
    "HASH_KEY_SIZE_MAX",
    "RANGE_KEY_SIZE_MAX",
    "PARTITION_HASH_SIZE",
    "KEY_SCHEMA_MISMATCH",
]

PARTITION_HASH_SIZE = 8
HASH_KEY_SIZE_MAX = 2048
RANGE_KEY_SIZE_MAX = 1024

# --- error texts (DynamoDB's, including its typos and spacing) -------------------------------
KEY_SCHEMA_MISMATCH = "The provided key element does not match the schema"
_MISSING_KEY = "One or more parameter values were invalid: Missing the key {name} in the item"
_TYPE_MISMATCH = (
    "One or more parameter values were invalid: Type mismatch for key {name} expected: {expected} actual: {actual}"
)
_EMPTY_KEY = (
    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
    "contain an empty {kind} value. Key: {name}"
)
_HASH_TOO_BIG = (
    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
)
_RANGE_TOO_BIG = (
    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
)

# --- on-disk constants: never change ----------------------------------------------------------
_ESC = b"\x00"
_ESCAPED_ZERO = b"\x00\xff"
_BYTES_END = b"\x00\x01"
_N_NEG = 0x01
_N_ZERO = 0x02
_N_POS = 0x03
_N_POS_END = 0x00
_N_NEG_END = 0xFF
_EXP_BIAS = 130  # positive: E + 130; negative: 125 - E (== 255 - (E + 130))

_ZERO_BYTES = bytes([_N_ZERO])
_POS_PAIR = [bytes([p + 1]) for p in range(100)]
_NEG_PAIR = [bytes([100 - p]) for p in range(100)]
_TAG_BYTES = {"S": b"S", "N": b"N", "B": b"B"}

assert MIN_ADJUSTED_EXP + _EXP_BIAS == 0 and MAX_ADJUSTED_EXP + _EXP_BIAS == 255


# --- encoding ---------------------------------------------------------------------------------


def _escape(raw: bytes) -> bytes:
    return raw.replace(_ESC, _ESCAPED_ZERO) if _ESC in raw else raw


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Invalid last non-pad Base64 character dectected") from None


def _number_parts(text: str) -> tuple[bool, int, str]:
    """(negative, adjusted exponent, significant digits) of a non-zero canonical number."""
    negative = text[0] == "-"
    body = text[1:] if negative else text
    whole, _, frac = body.partition(".")
    if whole != "0":
        exp = len(whole) - 1
        digits = (whole + frac).rstrip("0")
    else:
        stripped = frac.lstrip("0")
        exp = len(stripped) - len(frac) - 1
        digits = stripped
    return negative, exp, digits


def _encode_number(text: str) -> bytes:
    text = canonical(text)
    if text == "0":
        return _ZERO_BYTES
    negative, exp, digits = _number_parts(text)
    if len(digits) % 2:
        digits += "0"
    pairs = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    if negative:
        head = bytes([_N_NEG, MAX_ADJUSTED_EXP - exp])
        return head + b"".join([_NEG_PAIR[p] for p in pairs]) + b"\xff"
    head = bytes([_N_POS, exp + _EXP_BIAS])
    return head + b"".join([_POS_PAIR[p] for p in pairs]) + b"\x00"


def encode_scalar(type_tag: str, raw: str) -> bytes:
    """Encode the payload ``raw`` of a scalar of type ``type_tag`` (``"S"``, ``"N"`` or ``"B"``)."""
    if type_tag == "S":
        return _escape(raw.encode("utf-8")) + _BYTES_END
    if type_tag == "N":
        return _encode_number(raw)
    if type_tag == "B":
        return _escape(_b64(raw)) + _BYTES_END
    raise ValueError(f"not a key type: {type_tag!r}")


def encode_value(av: AttributeValue) -> bytes:
    """Order-preserving, self-delimiting bytes of an S, N or B attribute value."""
    ((type_tag, raw),) = av.items()
    return encode_scalar(type_tag, raw)


def encode_prefix(av: AttributeValue) -> bytes:
    """Bytes that every encoding of an S or B value starting with ``av`` begins with.

    For ``begins_with`` on a sort key: the escaped payload without its terminator.
    """
    ((type_tag, raw),) = av.items()
    if type_tag == "S":
        return _escape(raw.encode("utf-8"))
    if type_tag == "B":
        return _escape(_b64(raw))
    raise ValueError(f"no prefix encoding for type {type_tag!r}")


# --- decoding ---------------------------------------------------------------------------------


def _decode_bytes(buf: bytes, offset: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    pos = offset
    while True:
        i = buf.find(_ESC, pos)
        if i < 0 or i + 1 >= len(buf):
            raise ValueError("truncated key encoding")
        marker = buf[i + 1]
        if marker == 0x01:
            parts.append(buf[pos:i])
            return b"".join(parts), i + 2
        if marker != 0xFF:
            raise ValueError(f"bad escape byte {marker:#x} at {i + 1}")
        parts.append(buf[pos : i + 1])
        pos = i + 2


def _digits_to_text(negative: bool, exp: int, digits: str) -> str:
    if exp >= 0:
        point = exp + 1
        if len(digits) <= point:
            body = digits + "0" * (point - len(digits))
        else:
            body = digits[:point] + "." + digits[point:]
    else:
        body = "0." + "0" * (-exp - 1) + digits
    return "-" + body if negative else body


def _decode_number(buf: bytes, offset: int) -> tuple[str, int]:
    sign = buf[offset]
    if sign == _N_ZERO:
        return "0", offset + 1
    if sign == _N_POS:
        negative, end = False, _N_POS_END
        exp = buf[offset + 1] - _EXP_BIAS
    elif sign == _N_NEG:
        negative, end = True, _N_NEG_END
        exp = MAX_ADJUSTED_EXP - buf[offset + 1]
    else:
        raise ValueError(f"bad number sign byte {sign:#x} at {offset}")
    stop = buf.index(end, offset + 2)
    payload = buf[offset + 2 : stop]
    if not payload or min(payload) < 1 or max(payload) > 100:
        raise ValueError(f"bad number digits at {offset + 2}")
    if negative:
        digits = "".join([f"{100 - b:02d}" for b in payload])
    else:
        digits = "".join([f"{b - 1:02d}" for b in payload])
    digits = digits.rstrip("0")
    return _digits_to_text(negative, exp, digits), stop + 1


def decode_value(buf: bytes, offset: int, type_tag: str) -> tuple[AttributeValue, int]:
    """Inverse of ``encode_value``: the value at ``offset`` and the offset just past it.

    Numbers come back canonical, binaries as base64 text. Raises ``ValueError`` on bytes that
    are not a valid encoding (corruption, never a client error).
    """
    if type_tag == "S":
        raw, end = _decode_bytes(buf, offset)
        return {"S": raw.decode("utf-8")}, end
    if type_tag == "N":
        text, end = _decode_number(buf, offset)
        return {"N": text}, end
    if type_tag == "B":
        raw, end = _decode_bytes(buf, offset)
        return {"B": base64.b64encode(raw).decode("ascii")}, end
    raise ValueError(f"not a key type: {type_tag!r}")


# --- partition hash and primary keys ----------------------------------------------------------


def _hash_encoded(type_tag: str, encoded: bytes) -> bytes:
    return hashlib.md5(_TAG_BYTES[type_tag] + encoded, usedforsecurity=False).digest()[:PARTITION_HASH_SIZE]


def partition_hash(av: AttributeValue) -> bytes:
    """8 bytes placing a partition-key value in the hash space (and ordering Scan)."""
    ((type_tag, raw),) = av.items()
    return _hash_part(type_tag, raw)[:PARTITION_HASH_SIZE]


# partition_hash + encoding of recent short partition-key values (hot keys repeat); bounded,
# emptied when full.
_HASH_PART_CACHE: dict[tuple[str, str], bytes] = {}
_HASH_PART_CACHE_MAX = 65536
_HASH_PART_CACHE_RAW_MAX = 128


def _hash_part(type_tag: str, raw: str) -> bytes:
    ck = (type_tag, raw)
    hit = _HASH_PART_CACHE.get(ck)
    if hit is not None:
        return hit
    encoded = encode_scalar(type_tag, raw)
    out = _hash_encoded(type_tag, encoded) + encoded
    if len(raw) <= _HASH_PART_CACHE_RAW_MAX:
        if len(_HASH_PART_CACHE) >= _HASH_PART_CACHE_MAX:
            _HASH_PART_CACHE.clear()
        _HASH_PART_CACHE[ck] = out
    return out


def encode_partition(attrs: Sequence[KeyAttr], values: Sequence[AttributeValue]) -> bytes:
    """``partition hash + encodings`` of a partition key of one or more attributes (``values``
    in the order of ``attrs``, each of its attribute's type)."""
    assert len(attrs) == len(values) and attrs
    if len(attrs) == 1:
        t = attrs[0].type
        return _hash_part(t, values[0][t])
    encoded = [encode_scalar(a.type, v[a.type]) for a, v in zip(attrs, values, strict=True)]
    tagged = b"".join([_TAG_BYTES[a.type] + e for a, e in zip(attrs, encoded, strict=True)])
    digest = hashlib.md5(tagged, usedforsecurity=False).digest()[:PARTITION_HASH_SIZE]
    return digest + b"".join(encoded)


def encode_primary_key(schema: KeySchema, key: Key) -> bytes:
    """``partition_hash(hash) + encode(hash) [+ encode(range)]`` for a key (or an item)."""
    h = schema.hash
    out = _hash_part(h.type, key[h.name][h.type])
    r = schema.range
    if r is not None:
        out += encode_scalar(r.type, key[r.name][r.type])
    return out


def decode_primary_key(schema: KeySchema, buf: bytes, offset: int = 0) -> tuple[Key, int]:
    """Inverse of ``encode_primary_key``: the key and the offset just past it."""
    pos = offset + PARTITION_HASH_SIZE
    hv, pos = decode_value(buf, pos, schema.hash.type)
    key: Key = {schema.hash.name: hv}
    if schema.range is not None:
        rv, pos = decode_value(buf, pos, schema.range.type)
        key[schema.range.name] = rv
    return key, pos


# --- key extraction and validation ------------------------------------------------------------


def key_value_size(type_tag: str, raw: str) -> int:
    """Size in bytes of a key payload as DynamoDB limits it (UTF-8 / decoded bytes)."""
    if type_tag == "S":
        return len(raw.encode("utf-8")) if not raw.isascii() else len(raw)
    if type_tag == "B":
        n = len(raw)
        return n // 4 * 3 - (2 if raw.endswith("==") else 1 if raw.endswith("=") else 0)
    return 0  # numbers are never too big for a key


def key_value_allowed(type_tag: str, raw: str, *, is_hash: bool) -> bool:
    """Whether a payload of the key's type may be a key value: not an empty string or binary,
    not over the size limit (2048 bytes for a partition key, 1024 for a sort key)."""
    if type_tag == "N":
        return True
    if raw == "":
        return False
    limit = HASH_KEY_SIZE_MAX if is_hash else RANGE_KEY_SIZE_MAX
    # A character is at most 4 UTF-8 bytes and base64 text is longer than its bytes.
    return len(raw) * (4 if type_tag == "S" else 1) <= limit or key_value_size(type_tag, raw) <= limit


def _key_part(item: Item, attr: KeyAttr, is_hash: bool, exact: bool) -> AttributeValue:
    name, type_tag = attr.name, attr.type
    av = item.get(name)
    if av is None:
        raise ValidationError(KEY_SCHEMA_MISMATCH if exact else _MISSING_KEY.format(name=name))
    raw = av.get(type_tag) if isinstance(av, dict) else None
    if raw is None:
        if exact:
            raise ValidationError(KEY_SCHEMA_MISMATCH)
        actual = next(iter(av), "") if isinstance(av, dict) else ""
        raise ValidationError(_TYPE_MISMATCH.format(name=name, expected=type_tag, actual=actual))
    if type_tag == "N":
        text = canonical(raw)
        return av if text == raw else {"N": text}
    if raw == "":
        raise ValidationError(_EMPTY_KEY.format(kind="string" if type_tag == "S" else "binary", name=name))
    if not key_value_allowed(type_tag, raw, is_hash=is_hash):
        raise ValidationError(_HASH_TOO_BIG if is_hash else _RANGE_TOO_BIG)
    return av


def extract_key(schema: KeySchema, item: Item, *, exact: bool) -> Key:
    """The key attributes of ``item`` per ``schema``, checked as DynamoDB checks them.

    ``exact=True`` is for a ``Key`` parameter (GetItem, DeleteItem, ...): the map must hold the
    key attributes and nothing else, and any missing or mistyped attribute is reported as
    "The provided key element does not match the schema". ``exact=False`` is for an ``Item``
    (PutItem): other attributes are allowed and missing / mistyped keys have their own messages.
    The values are expected to have passed ``values.validate_value``; numbers come back canonical.
    """
    if schema.multi_attribute:
        attrs = schema.attrs
        if exact and len(item) != len(attrs):
            raise ValidationError(KEY_SCHEMA_MISMATCH)
        n_hash = len(schema.hash_attrs)
        return {a.name: _key_part(item, a, i < n_hash, exact) for i, a in enumerate(attrs)}
    r = schema.range
    if exact and len(item) != (1 if r is None else 2):
        raise ValidationError(KEY_SCHEMA_MISMATCH)
    key: Key = {schema.hash.name: _key_part(item, schema.hash, True, exact)}
    if r is not None:
        key[r.name] = _key_part(item, r, False, exact)
    return key
