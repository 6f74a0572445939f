"""Validation of attribute values and items as DynamoDB validates them, on every write.

``validate_value`` / ``validate_item`` check one JSON-decoded value or item and return it with
canonical numbers (``model.numbers.canonical``) and string booleans converted, as DynamoDB's
deserializer does. When nothing needs changing they return the very object they were given,
so the common case costs one walk and no copies.

Two kinds of error, with DynamoDB's precedence:

- ``SerializationError``: the JSON shape is wrong (``{"S": 5}``, ``{"M": []}``, bad base64,
  an item that is not an object). DynamoDB finds these while deserializing the whole request,
  before any rule is checked, so a ``SerializationError`` anywhere in a value or item wins
  over a ``ValidationError`` anywhere in it: when a rule fails we re-walk the input for shape
  errors before reporting the rule.
- ``ValidationError``: a DynamoDB rule is broken (no type or several types set, empty or
  duplicate sets, ``NULL`` not true, bad numbers, nesting deeper than 32 levels).

``check_value_types`` / ``check_item_types`` run only the shape checks, for request layers that
deserialize a whole request before validating any of it.

Key attributes have further rules (no empty strings, size limits); those live in
``model.keys.extract_key``. This module never looks at a table schema and never mutates its input.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from quorumdb.errors import SerializationError, ValidationError
from quorumdb.model.numbers import canonical
from quorumdb.model.types import TYPE_TAGS, AttributeValue, Item

__all__ = [
    "validate_value",
    "validate_key_value",
    "validate_item",
    "validate_attribute_map",
    "check_value_types",
    "check_item_types",
    "MAX_NESTING_DEPTH",
    "EXPRESSION_VALUES_ERROR",
]

MAX_NESTING_DEPTH = 32

# --- DynamoDB's texts (typos and double spaces included) --------------------------------------
EMPTY_VALUE = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
MANY_TYPES = (
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
)
NULL_NOT_TRUE = "One or more parameter values were invalid: Null attribute value types must have the value of true"
EMPTY_SS = "One or more parameter values were invalid: An string set  may not be empty"
EMPTY_NS = "One or more parameter values were invalid: An number set  may not be empty"
EMPTY_BS = "One or more parameter values were invalid: Binary sets should not be empty"
DUP_SS = "One or more parameter values were invalid: Input collection {items} contains duplicates."
DUP_NS = "Input collection contains duplicates"
DUP_BS = "One or more parameter values were invalid: Input collection {items}of type BS contains duplicates."
TOO_DEEP = "Nesting Levels have exceeded supported limits"
# Not checked by dynalite; wording chosen to match DynamoDB's other parameter errors.
EMPTY_NAME = "One or more parameter values are not valid. The attribute name cannot be empty"
NAME_TOO_LONG = "One or more parameter values were invalid: Attribute name is too large, must be less than 65536 bytes"
NAME_BYTES_MAX = 65535
EXPRESSION_VALUES_ERROR = "ExpressionAttributeValues contains invalid value: {msg} for key {key}"

_AV_CLASS = "com.amazonaws.dynamodb.v20120810.AttributeValue"
_MAP_OF_AV = f"java.util.Map<java.lang.String, {_AV_CLASS}>"
_SER_STRUCT = "Start of structure or map found where not expected"
_SER_FIELD = "Unexpected field type"
_SER_VALUE = "Unexpected value type in payload"
_SER_BAD_B64 = "Invalid last non-pad Base64 character dectected"
_SER_B64_LEN = "Base64 encoded length is expected a multiple of 4 bytes but found: {n}"
_SER_NOT_BYTES = "only base-64-encoded strings are convertible to bytes"


class _Rule(Exception):
    """Internal: a broken rule, raised deep in the walk and re-raised as ValidationError."""


# --- shape checks -----------------------------------------------------------------------------


def _token(v: Any) -> str:
    if v is True:
        return "TRUE_VALUE"
    if v is False:
        return "FALSE_VALUE"
    return "NUMBER_VALUE" if type(v) is int else "DECIMAL_VALUE"


def _not_string(v: Any, java: str = "String") -> SerializationError:
    if type(v) is list:
        return SerializationError(f"Unrecognized collection type class java.lang.{java}")
    if type(v) is dict:
        return SerializationError(_SER_STRUCT)
    if v is None:
        return SerializationError(_SER_FIELD)
    return SerializationError(f"{_token(v)} cannot be converted to {java}")


def _check_string(v: Any) -> str:
    if type(v) is not str:
        raise _not_string(v)
    return v


def _check_blob(v: Any) -> str:
    if type(v) is not str:
        if type(v) is list:
            raise SerializationError("Unrecognized collection type class java.nio.ByteBuffer")
        if type(v) is dict:
            raise SerializationError(_SER_STRUCT)
        raise SerializationError(_SER_NOT_BYTES if v is not None else _SER_FIELD)
    if len(v) % 4:
        raise SerializationError(_SER_B64_LEN.format(n=len(v)))
    if v:
        # DynamoDB accepts only canonical base64: decoding and re-encoding must give it back.
        try:
            ok = binascii.b2a_base64(binascii.a2b_base64(v, strict_mode=True), newline=False) == v.encode("ascii")
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise SerializationError(_SER_BAD_B64)
    return v


_TRUE_WORDS = frozenset({"TRUE", "1", "YES"})
_FALSE_WORDS = frozenset({"FALSE", "0", "NO"})


def _check_boolean(v: Any) -> bool:
    if v is True or v is False:
        return bool(v)
    if type(v) is str:
        word = v.upper()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise SerializationError("Unexpected token received from parser")
    raise _not_string(v, "Boolean")


def _check_list(v: Any) -> list[Any]:
    if type(v) is not list:
        raise SerializationError(_SER_STRUCT if type(v) is dict else _SER_FIELD)
    return v


def _check_map(v: Any) -> dict[str, Any]:
    if type(v) is not dict:
        if type(v) is list:
            raise SerializationError(f"Unrecognized collection type {_MAP_OF_AV}")
        raise SerializationError(_SER_FIELD)
    return v


def _bad_struct(av: Any, field: bool) -> SerializationError:
    if type(av) is list:
        return SerializationError(f"Unrecognized collection type class {_AV_CLASS}")
    return SerializationError(_SER_FIELD if field else _SER_VALUE)


# --- per-type walkers: (av, payload, depth, rules) -> canonical av ----------------------------
# With rules=False they only check shapes (and return av unchanged).

_Walker = Callable[[AttributeValue, Any, int, bool], AttributeValue]


def _w_s(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    if type(v) is not str:
        raise _not_string(v)
    return av


def _w_n(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    if type(v) is not str:
        raise _not_string(v)
    if not rules:
        return av
    c = _canonical(v)
    return av if c == v else {"N": c}


def _canonical(text: str) -> str:
    try:
        return canonical(text)
    except ValidationError as e:
        raise _Rule(e.message) from None


def _w_b(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    _check_blob(v)
    return av


def _w_bool(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    b = _check_boolean(v)
    return av if b is v else {"BOOL": b}


def _w_null(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    b = _check_boolean(v)
    if rules and not b:
        raise _Rule(NULL_NOT_TRUE)
    return av if v is True else {"NULL": True}


def _items_text(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _w_ss(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    for x in _check_list(v):
        _check_string(x)
    if rules:
        if not v:
            raise _Rule(EMPTY_SS)
        if len(set(v)) != len(v):
            raise _Rule(DUP_SS.format(items=_items_text(v)))
    return av


def _w_ns(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    for x in _check_list(v):
        _check_string(x)
    if not rules:
        return av
    if not v:
        raise _Rule(EMPTY_NS)
    canon = [_canonical(x) for x in v]
    if len(set(canon)) != len(canon):
        raise _Rule(DUP_NS)
    return av if canon == v else {"NS": canon}


def _w_bs(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    for x in _check_list(v):
        _check_blob(x)
    if rules:
        if not v:
            raise _Rule(EMPTY_BS)
        if len(set(v)) != len(v):
            raise _Rule(DUP_BS.format(items=_items_text(v)))
    return av


def _w_m(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    _check_map(v)
    if rules and depth >= MAX_NESTING_DEPTH:
        raise _Rule(TOO_DEEP)
    out: dict[str, Any] | None = None
    for name, child in v.items():
        c = _walk(child, depth + 1, rules, False)
        if c is not child:
            if out is None:
                out = dict(v)
            out[name] = c
    return av if out is None else {"M": out}


def _w_l(av: AttributeValue, v: Any, depth: int, rules: bool) -> AttributeValue:
    _check_list(v)
    if rules and depth >= MAX_NESTING_DEPTH:
        raise _Rule(TOO_DEEP)
    out: list[Any] | None = None
    for i, child in enumerate(v):
        c = _walk(child, depth + 1, rules, False)
        if c is not child:
            if out is None:
                out = list(v)
            out[i] = c
    return av if out is None else {"L": out}


_WALKERS: dict[str, _Walker] = {
    "S": _w_s,
    "N": _w_n,
    "B": _w_b,
    "BOOL": _w_bool,
    "NULL": _w_null,
    "SS": _w_ss,
    "NS": _w_ns,
    "BS": _w_bs,
    "M": _w_m,
    "L": _w_l,
}
assert frozenset(_WALKERS) == TYPE_TAGS


def _walk(av: Any, depth: int, rules: bool, field: bool) -> Any:
    if type(av) is not dict:
        if av is None:
            # A JSON null where a value belongs deserializes to an empty AttributeValue.
            if rules:
                raise _Rule(EMPTY_VALUE)
            return av
        raise _bad_struct(av, field)
    if len(av) == 1:
        # Fast paths for the commonest values, by dict lookup.
        v = av.get("S")
        if type(v) is str:
            return av
        v = av.get("N")
        if type(v) is str and rules:
            c = _canonical(v)
            return av if c == v else {"N": c}
        for tag, v in av.items():
            walker = _WALKERS.get(tag)
            if walker is not None and v is not None:
                return walker(av, v, depth, rules)
    return _walk_general(av, depth, rules)


def _walk_general(av: dict[str, Any], depth: int, rules: bool) -> AttributeValue:
    # Unknown members and nulls are dropped by DynamoDB's deserializer, as if absent.
    present = [(t, v) for t, v in av.items() if v is not None and t in _WALKERS]
    for t, v in present:
        _WALKERS[t]({t: v}, v, depth, False)
    if not rules:
        return av
    if not present:
        raise _Rule(EMPTY_VALUE)
    out: AttributeValue = {}
    for t, v in present:
        out = _WALKERS[t]({t: v}, v, depth, True)
    if len(present) > 1:
        raise _Rule(MANY_TYPES)
    return out


# --- public surface ---------------------------------------------------------------------------


def check_value_types(av: Any, *, field: bool = False) -> None:
    """Raise ``SerializationError`` if ``av`` is not shaped like an AttributeValue.

    ``field=True`` for values that are structure fields rather than map/list members (the
    legacy ``Expected.Value``); only the error text differs.
    """
    _walk(av, 0, False, field)


def check_item_types(item: Any) -> None:
    """Raise ``SerializationError`` if ``item`` is not shaped like a map of AttributeValues."""
    for av in _check_map(item).values():
        _walk(av, 0, False, False)


def validate_value(av: Any, *, depth: int = 0, field: bool = False) -> AttributeValue:
    """Validate one AttributeValue; return it canonical (the same object if already so).

    ``depth`` is the nesting level of ``av`` itself (0 for a top-level attribute).
    """
    try:
        return _walk(av, depth, True, field)
    except _Rule as rule:
        _walk(av, depth, False, field)  # a shape error anywhere takes precedence
        raise ValidationError(str(rule)) from None


def validate_key_value(av: Any) -> AttributeValue:
    """Validate a value given for a key attribute (key-only rules: ``keys.extract_key``)."""
    return validate_value(av)


def validate_attribute_map(
    values: Any, *, error_format: str | None = None, check_names: bool = False
) -> dict[str, AttributeValue]:
    """Validate a map of name -> AttributeValue (an Item, a Key, ExpressionAttributeValues).

    Returns it with canonical values, the same object when nothing changed. Members are
    checked in order and the first broken rule is reported; with ``error_format`` (e.g.
    ``EXPRESSION_VALUES_ERROR``) its message is rendered with ``msg`` and ``key``.
    ``check_names`` rejects empty attribute names.
    """
    m = _check_map(values)
    out: dict[str, AttributeValue] | None = None
    try:
        for name, av in m.items():
            if check_names:
                if not name:
                    raise _Rule(EMPTY_NAME)
                # Cheap length test first: a str of n characters has at most 4n UTF-8 bytes.
                if len(name) > NAME_BYTES_MAX // 4 and len(name.encode()) > NAME_BYTES_MAX:
                    raise _Rule(NAME_TOO_LONG)
            try:
                c = _walk(av, 0, True, False)
            except _Rule as rule:
                if error_format is None:
                    raise
                raise _Rule(error_format.format(msg=rule, key=name)) from None
            if c is not av:
                if out is None:
                    out = dict(m)
                out[name] = c
    except _Rule as rule:
        check_item_types(m)  # a shape error anywhere takes precedence
        raise ValidationError(str(rule)) from None
    return m if out is None else out


def validate_item(item: Any) -> Item:
    """Validate an Item parameter; return it with canonical values (the same object if unchanged)."""
    return validate_attribute_map(item, check_names=True)
