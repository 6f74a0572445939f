"""Declarative request validation, as DynamoDB does it before an operation runs.

The spec of every served operation lives in ``shapes.json`` (generated from botocore's model by
``tools/gen_shapes.py``, with DynamoDB's member order and its deviations from the model). One
walk over the request body, in DynamoDB's member order:

1. JSON type errors raise ``SerializationError`` at once, with DynamoDB's (Java-flavoured)
   texts, e.g. ``NUMBER_VALUE cannot be converted to String``.
2. Constraint violations (required members, lengths, ranges, enums, patterns) are collected
   and raised together as one ``ValidationError``:
   ``2 validation errors detected: Value null at 'tableName' failed to satisfy constraint:
   Member must not be null; ...`` (at most 10, as DynamoDB).

Like DynamoDB, JSON nulls count as absent (they are removed from the body), unknown members
are ignored, and a few scalars are coerced (``"true"`` for a boolean, 1.5 for an integer).
Attribute values are checked only for being JSON objects here; their contents belong to
``quorumdb.model.values``. But DynamoDB deserializes the whole request before it checks any
rule, so a JSON type error inside an attribute value (``{"S": 5}``) beats every
ValidationException: before one is reported, ``check_types`` walks the request again, this
time into the attribute values (only on that error path, so valid requests walk them once, in
the handler). This module never looks at tables or does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson

from quorumdb.errors import SerializationError, ValidationError
from quorumdb.model.schema import TABLE_ARN_MAX, TABLE_ARN_RE
from quorumdb.model.values import check_value_types

__all__ = ["OperationSpec", "SPECS", "STREAMS_SPECS", "spec_for", "validate", "compile_spec", "value_str", "is_table_arn"]

MAX_ERRORS = 10
JAVA_PKG = "com.amazonaws.dynamodb.v20120810."
_START_OF_STRUCT = "Start of structure or map found where not expected"
_PARAMETERIZED = (
    "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class "
    "java.lang.Class (sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and "
    "java.lang.Class are in module java.base of loader 'bootstrap')"
)

# A location is a chain of tuples built only as cheap links while walking; it is rendered
# into DynamoDB's dotted form ("keySchema.1.member.attributeName") only for an error message.
# (parent, 0, "name") a member; (parent, 1, index) a list element; (parent, 2, key) a map value.
Loc = tuple[Any, int, Any] | None


def render(loc: Loc) -> str:
    parts: list[str] = []
    while loc is not None:
        parent, kind, seg = loc
        if kind == 0:
            parts.append(seg)
        elif kind == 1:
            parts.append(f"{seg + 1}.member")
        else:
            parts.append(f"{seg}.member")
        loc = parent
    return ".".join(reversed(parts))


def value_str(v: Any) -> str:
    """A value as DynamoDB prints it in a validation message."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, list):
        return "[" + ", ".join(value_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return orjson.dumps(v).decode()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return str(v)


def _add(errors: list[str], value: Any, loc: Loc, constraint: str) -> None:
    if len(errors) < MAX_ERRORS:
        shown = "null" if value is None else "'" + value_str(value) + "'"
        errors.append(f"Value {shown} at '{render(loc)}' failed to satisfy constraint: {constraint}")


def _number_token(v: int | float) -> str:
    return "NUMBER_VALUE" if isinstance(v, int) or v.is_integer() else "DECIMAL_VALUE"


class Node:
    __slots__ = ()

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def is_table_arn(v: str) -> bool:
    """A table ARN, which DynamoDB takes wherever it takes a TableName."""
    return v.startswith("arn:") and len(v) <= TABLE_ARN_MAX and TABLE_ARN_RE.fullmatch(v) is not None


class StrNode(Node):
    __slots__ = ("enum", "enum_set", "pattern", "regex", "min", "max", "arn")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.enum: list[str] | None = spec.get("enum")
        self.enum_set = frozenset(self.enum) if self.enum else None
        self.pattern: str | None = spec.get("re")
        self.regex = re.compile(self.pattern) if self.pattern else None
        self.min: int | None = spec.get("min")
        self.max: int | None = spec.get("max")
        self.arn = bool(spec.get("arn"))  # a TableName: a table ARN is accepted too

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is not str:
            if v is True or v is False:
                raise SerializationError(f"{str(v).upper()}_VALUE cannot be converted to String")
            if isinstance(v, int | float):
                raise SerializationError(f"{_number_token(v)} cannot be converted to String")
            if isinstance(v, list):
                raise SerializationError("Unrecognized collection type class java.lang.String")
            if isinstance(v, dict):
                raise SerializationError(_START_OF_STRUCT)
            raise SerializationError("Unexpected token received from parser")
        if self.arn and is_table_arn(v):
            return v
        if self.enum_set is not None and v not in self.enum_set:
            _add(errors, v, loc, f"Member must satisfy enum value set: [{', '.join(self.enum or ())}]")
        if self.regex is not None and self.regex.fullmatch(v) is None:
            _add(errors, v, loc, f"Member must satisfy regular expression pattern: {self.pattern}")
        if self.min is not None and len(v) < self.min:
            _add(errors, v, loc, f"Member must have length greater than or equal to {self.min}")
        if self.max is not None and len(v) > self.max:
            _add(errors, v, loc, f"Member must have length less than or equal to {self.max}")
        return v


class BlobNode(Node):
    __slots__ = ()

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is str:
            return v
        if isinstance(v, list):
            raise SerializationError("Unrecognized collection type class java.nio.ByteBuffer")
        if isinstance(v, dict):
            raise SerializationError(_START_OF_STRUCT)
        raise SerializationError("only base-64-encoded strings are convertible to bytes")


class BoolNode(Node):
    __slots__ = ()

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v is True or v is False:
            return v
        if isinstance(v, str):
            up = v.upper()
            if up in ("TRUE", "1", "YES"):
                return True
            if up in ("FALSE", "0", "NO"):
                return False
            raise SerializationError("Unexpected token received from parser")
        if isinstance(v, int | float):
            raise SerializationError(f"{_number_token(v)} cannot be converted to Boolean")
        if isinstance(v, list):
            raise SerializationError("Unrecognized collection type class java.lang.Boolean")
        raise SerializationError(_START_OF_STRUCT)


class NumNode(Node):
    __slots__ = ("java", "integral", "ge", "le")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.java = {"integer": "Integer", "long": "Long", "double": "Double"}[spec["k"]]
        self.integral = spec["k"] != "double"
        self.ge: int | float | None = spec.get("ge")
        self.le: int | float | None = spec.get("le")

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v is True or v is False:
            raise SerializationError(f"{str(v).upper()}_VALUE cannot be converted to {self.java}")
        if v.__class__ is int:
            pass
        elif v.__class__ is float:
            if self.integral:
                if not math.isfinite(v):
                    raise SerializationError(f"DECIMAL_VALUE cannot be converted to {self.java}")
                v = math.floor(v)
        elif isinstance(v, str):
            raise SerializationError(f"STRING_VALUE cannot be converted to {self.java}")
        elif isinstance(v, list):
            raise SerializationError(f"Unrecognized collection type class java.lang.{self.java}")
        else:
            raise SerializationError(_START_OF_STRUCT)
        if self.ge is not None and v < self.ge:
            _add(errors, v, loc, f"Member must have value greater than or equal to {self.ge}")
        if self.le is not None and v > self.le:
            _add(errors, v, loc, f"Member must have value less than or equal to {self.le}")
        return v


class AttributeValueNode(Node):
    """An AttributeValue: only its JSON container is checked here (see the module docstring)."""

    __slots__ = ("in_collection",)

    def __init__(self, in_collection: bool) -> None:
        self.in_collection = in_collection

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is dict:
            if errors.__class__ is _TypesOnly:
                check_value_types(v, field=not self.in_collection)
            return v
        if isinstance(v, list):
            raise SerializationError(f"Unrecognized collection type class {JAVA_PKG}AttributeValue")
        if self.in_collection:
            raise SerializationError("Unexpected value type in payload")
        raise SerializationError("Unexpected field type")


class ListNode(Node):
    __slots__ = ("elem", "min", "max", "parameterized")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.elem = _compile(spec["e"], True)
        self.min: int | None = spec.get("min")
        self.max: int | None = spec.get("max")
        self.parameterized = bool(spec.get("p"))

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is not list:
            if isinstance(v, dict):
                raise SerializationError(_START_OF_STRUCT)
            raise SerializationError(_PARAMETERIZED if self.parameterized else "Unexpected field type")
        if self.min is not None and len(v) < self.min:
            _add(errors, v, loc, f"Member must have length greater than or equal to {self.min}")
        if self.max is not None and len(v) > self.max:
            _add(errors, v, loc, f"Member must have length less than or equal to {self.max}")
        check = self.elem.check
        for i, x in enumerate(v):
            if x is None:
                continue
            y = check(x, (loc, 1, i), errors)
            if y is not x:
                v[i] = y
        return v


def _min_len(n: int) -> Callable[[Any], bool]:
    return lambda x: len(x) >= n


def _max_len(n: int) -> Callable[[Any], bool]:
    return lambda x: len(x) <= n


def _matches(pattern: str) -> Callable[[Any], bool]:
    rx = re.compile(pattern)
    return lambda x: isinstance(x, str) and rx.fullmatch(x) is not None


def _length_rules(rules: list[list[Any]]) -> list[tuple[Callable[[Any], bool], str]]:
    out: list[tuple[Callable[[Any], bool], str]] = []
    for kind, arg in rules:
        if kind == "min":
            out.append((_min_len(arg), f"Member must have length greater than or equal to {arg}"))
        elif kind == "max":
            out.append((_max_len(arg), f"Member must have length less than or equal to {arg}"))
        elif kind == "re":
            out.append((_matches(arg), f"Member must satisfy regular expression pattern: {arg}"))
        else:  # pragma: no cover - the generator only writes the kinds above
            raise ValueError(kind)
    return out


class MapNode(Node):
    __slots__ = ("value", "java_value", "min", "max", "keys", "arn_keys", "values", "parameterized")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.value = _compile(spec["v"], True)
        self.java_value: str = spec["jt"]
        self.min: int | None = spec.get("min")
        self.max: int | None = spec.get("max")
        self.keys = _length_rules(spec["keys"]) if "keys" in spec else None
        self.arn_keys = bool(spec.get("arn"))  # keys are table names or table ARNs
        self.values = _length_rules(spec["values"]) if "values" in spec else None
        self.parameterized = bool(spec.get("p"))

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is not dict:
            if isinstance(v, list):
                raise SerializationError(
                    f"Unrecognized collection type java.util.Map<java.lang.String, {self.java_value}>"
                )
            raise SerializationError(_PARAMETERIZED if self.parameterized else "Unexpected field type")
        if self.min is not None and len(v) < self.min:
            _add(errors, v, loc, f"Member must have length greater than or equal to {self.min}")
        if self.max is not None and len(v) > self.max:
            _add(errors, v, loc, f"Member must have length less than or equal to {self.max}")
        if self.keys is not None:
            for k in v:
                if self.arn_keys and is_table_arn(k):
                    continue
                if not all(ok(k) for ok, _ in self.keys):
                    msgs = ", ".join(m for _, m in self.keys)
                    _add(errors, v, loc, f"Map keys must satisfy constraint: [{msgs}]")
        nulls: list[str] | None = None
        check = self.value.check
        for k, x in v.items():
            if x is None:
                nulls = [k] if nulls is None else [*nulls, k]
                continue
            y = check(x, (loc, 2, k), errors)
            if y is not x:
                v[k] = y
        if nulls:
            for k in nulls:
                del v[k]
        if self.values is not None:
            for x in v.values():
                if isinstance(x, list | dict | str) and not all(ok(x) for ok, _ in self.values):
                    msgs = ", ".join(m for _, m in self.values)
                    _add(errors, v, loc, f"Map value must satisfy constraint: [{msgs}]")
        return v


class StructNode(Node):
    __slots__ = ("cls", "members", "by_name", "required", "in_collection", "fast")

    def __init__(self, spec: dict[str, Any], in_collection: bool, *, fast: bool = False) -> None:
        self.cls: str = spec["c"]
        self.in_collection = in_collection
        # Only an operation's body takes the fast path: nested fast paths could re-walk a
        # subtree once per level on errors.
        self.fast = fast
        self.members: list[tuple[str, str, Node, bool]] = [
            (name, name[:1].lower() + name[1:], _compile(sub, False), bool(sub.get("nn")))
            for name, sub in spec["m"]
        ]
        self.by_name = {name: (lname, node) for name, lname, node, _ in self.members}
        self.required = tuple(name for name, _, _, not_null in self.members if not_null)

    def check(self, v: Any, loc: Loc, errors: list[str]) -> Any:
        if v.__class__ is not dict:
            if isinstance(v, list):
                raise SerializationError(f"Unrecognized collection type class {JAVA_PKG}{self.cls}")
            if self.in_collection:
                raise SerializationError("Unexpected value type in payload")
            raise SerializationError("Unexpected field type")
        if not self.fast:
            return self._ordered(v, loc, errors)
        # Fast path: visit only the members present (requests name few of the members a
        # structure has). Any problem at all sends us to the ordered walk below, which
        # reports errors in DynamoDB's member order.
        mark = len(errors)
        try:
            by_name = self.by_name
            for name, x in v.items():
                entry = by_name.get(name)
                if entry is None:
                    continue
                if x is None:
                    raise _Slow
                y = entry[1].check(x, (loc, 0, entry[0]), errors)
                if y is not x:
                    v[name] = y
            if len(errors) == mark:
                for name in self.required:
                    if v.get(name) is None:
                        raise _Slow
                return v
        except (_Slow, SerializationError):
            pass
        del errors[mark:]
        return self._ordered(v, loc, errors)

    def _ordered(self, v: dict[str, Any], loc: Loc, errors: list[str]) -> Any:
        get = v.get
        for name, lname, node, not_null in self.members:
            x = get(name)
            if x is None:
                if not_null:
                    _add(errors, None, (loc, 0, lname), "Member must not be null")
                if name in v:
                    del v[name]
                continue
            y = node.check(x, (loc, 0, lname), errors)
            if y is not x:
                v[name] = y
        return v


class _Slow(Exception):
    """Internal: leave StructNode's fast path."""


class _TypesOnly(list[str]):
    """The error list of a ``check_types`` walk: attribute values are walked into too."""


def _compile(spec: dict[str, Any], in_collection: bool) -> Node:
    kind = spec["k"]
    if kind == "str":
        return StrNode(spec)
    if kind == "struct":
        return StructNode(spec, in_collection)
    if kind == "list":
        return ListNode(spec)
    if kind == "map":
        return MapNode(spec)
    if kind == "av":
        return AttributeValueNode(in_collection)
    if kind in ("integer", "long", "double"):
        return NumNode(spec)
    if kind == "bool":
        return BoolNode()
    if kind == "blob":
        return BlobNode()
    raise ValueError(f"unknown spec node kind {kind!r}")


class OperationSpec:
    """The compiled spec of one operation; ``validate`` checks (and normalizes) a request body."""

    __slots__ = ("name", "body", "table_name_first")

    def __init__(self, name: str, entry: dict[str, Any]) -> None:
        self.name = name
        self.body = StructNode(entry["body"], False, fast=True)
        self.table_name_first: str | None = entry.get("tn")

    def validate(self, body: Any) -> dict[str, Any]:
        if body.__class__ is not dict:
            raise SerializationError(_START_OF_STRUCT if isinstance(body, list) else "Unexpected field type")
        errors: list[str] = []
        self.body.check(body, None, errors)
        tn = self.table_name_first
        if tn is not None:
            name = body.get(tn)
            if name is None:
                self.check_types(body)
                raise ValidationError(f"The parameter '{tn}' is required but was not present in the request")
            if (len(name) < 3 or len(name) > 255) and not is_table_arn(name):
                self.check_types(body)
                raise ValidationError(f"{tn} must be at least 3 characters long and at most 255 characters long")
        if errors:
            self.check_types(body)
            n = len(errors)
            raise ValidationError(
                f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors)
            )
        return body


    def check_types(self, body: Any) -> None:
        """Raise the first JSON type error of ``body``, attribute values included (DynamoDB's
        deserialization errors), if there is one."""
        if body.__class__ is dict:
            self.body.check(body, None, _TypesOnly())


def compile_spec(doc: dict[str, Any]) -> dict[str, OperationSpec]:
    return {name: OperationSpec(name, entry) for name, entry in doc["ops"].items()}


def _load(name: str = "shapes.json") -> dict[str, OperationSpec]:
    raw = resources.files("quorumdb.api").joinpath(name).read_bytes()
    return compile_spec(orjson.loads(raw))


SPECS: dict[str, OperationSpec] = _load()
STREAMS_SPECS: dict[str, OperationSpec] = _load("streams_shapes.json")  # the DynamoDB Streams API


def spec_for(operation: str) -> OperationSpec | None:
    return SPECS.get(operation)


def validate(operation: str, body: Any) -> dict[str, Any]:
    """Validate ``body`` for ``operation`` (a body for an operation without a spec only has to be an object)."""
    spec = SPECS.get(operation)
    if spec is None:
        if body.__class__ is not dict:
            raise SerializationError(_START_OF_STRUCT if isinstance(body, list) else "Unexpected field type")
        return body
    return spec.validate(body)
