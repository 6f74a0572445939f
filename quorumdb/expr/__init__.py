"""DynamoDB's expression language: parse -> typed AST (cached by text) -> resolve placeholders
against one request's ExpressionAttributeNames/Values -> evaluate or apply to items.

``ExpressionContext`` is the entry point: one per request, shared by all of its expressions,
so that ``check_unused`` can report names and values no expression used. Call the expression
methods in DynamoDB's order (update, condition, key condition, filter, projection) and then
``check_unused`` to get DynamoDB's error precedence. Nothing in this package does I/O or keeps
per-request state outside an ``ExpressionContext``.

Resolution is memoized per process: a request whose expression text, names and values repeat
an earlier successful one gets the same (immutable) resolved object back, with the same
placeholders marked used, without re-validating or re-resolving. Only successes are cached, so
errors and their precedence are computed afresh every time.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from quorumdb.errors import ValidationError
from quorumdb.expr.ast import Arith, Call, SetAction
from quorumdb.expr.condition import Condition
from quorumdb.expr.keycond import (
    KeyCondition,
    check_key_paths,
    conditions_from_expression,
    key_condition_from_conditions,
)
from quorumdb.expr.parser import parse_condition, parse_projection, parse_update
from quorumdb.expr.projection import Projection, project_paths
from quorumdb.expr.resolve import ExprError, resolve_condition, resolve_projection, resolve_update
from quorumdb.expr.update import Update
from quorumdb.model.schema import KeySchema
from quorumdb.model.types import AttributeValue
from quorumdb.model.values import EXPRESSION_VALUES_ERROR, validate_attribute_map

__all__ = [
    "ExpressionContext",
    "Condition",
    "Update",
    "Projection",
    "KeyCondition",
    "project_paths",
    "check_key_paths",
    "MAX_EXPRESSION_BYTES",
    "MAX_UPDATE_OPERATORS",
]

MAX_EXPRESSION_BYTES = 4096
MAX_UPDATE_OPERATORS = 300

_NAME_KEY = re.compile(r"#[0-9A-Za-z_]+")
_VALUE_KEY = re.compile(r":[0-9A-Za-z_]+")

# Memo of validated placeholder maps and of resolved expressions (see the module docstring).
# Bounded: emptied when full. Keys of requests with large values are not cached.
_CACHE_MAX = 4096
_VALUES_KEY_MAX = 2048
_SCOPES: dict[Any, tuple[dict[str, str], dict[str, AttributeValue]]] = {}
_RESOLVED: dict[Any, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {}


def _scope_key(names: dict[str, str] | None, values: dict[str, Any] | None) -> Any:
    """A hashable identity of (names, values) as sent, or None when not worth caching."""
    try:
        nk = None if names is None else tuple(names.items())
        hash(nk)
        if values is None:
            return (nk, None)
        vk = orjson.dumps(values)
        if len(vk) > _VALUES_KEY_MAX:
            return None
        return (nk, vk)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def _count_operators(node: Any) -> int:
    if isinstance(node, Arith):
        return 1 + _count_operators(node.left) + _count_operators(node.right)
    if isinstance(node, Call):
        return 1 + sum(_count_operators(a) for a in node.args)
    return 0


class ExpressionContext:
    """One request's placeholders, and the expressions resolved against them."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        key = self._key = _scope_key(names, values)
        hit = None if key is None else _SCOPES.get(key)
        if hit is not None:
            self._names, self._values = hit
        else:
            self._names, self._values = self._validate(names, values)
            if key is not None:
                _remember(_SCOPES, key, (self._names, self._values))
        self._unused_names: dict[str, None] = dict.fromkeys(self._names)
        self._unused_values: dict[str, None] = dict.fromkeys(self._values)
        # A key condition's own errors rank below unused placeholders (DynamoDB checks them
        # after every expression of the request was parsed), so they wait for check_unused.
        self._deferred: ValidationError | None = None
        # Placeholders looked up while resolving the current expression (for the memo).
        self._used_names: list[str] = []
        self._used_values: list[str] = []

    @staticmethod
    def _validate(
        names: dict[str, str] | None, values: dict[str, Any] | None
    ) -> tuple[dict[str, str], dict[str, AttributeValue]]:
        if names is not None:
            if not names:
                raise ValidationError("ExpressionAttributeNames must not be empty")
            for key in names:
                if not _NAME_KEY.fullmatch(key):
                    raise ValidationError(
                        f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"'
                    )
        if values is not None:
            if not values:
                raise ValidationError("ExpressionAttributeValues must not be empty")
            for key in values:
                if not _VALUE_KEY.fullmatch(key):
                    raise ValidationError(
                        f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"'
                    )
            values = validate_attribute_map(values, error_format=EXPRESSION_VALUES_ERROR)
        return names or {}, values or {}

    # -- Scope (used by resolve) -------------------------------------------------------------
    def lookup_name(self, placeholder: str) -> str | None:
        name = self._names.get(placeholder)
        if name:
            self._unused_names.pop(placeholder, None)
            self._used_names.append(placeholder)
            return name
        return None

    def lookup_value(self, placeholder: str) -> AttributeValue | None:
        value = self._values.get(placeholder)
        if value is not None:
            self._unused_values.pop(placeholder, None)
            self._used_values.append(placeholder)
        return value

    # -- memo ----------------------------------------------------------------------------------
    def _cached(self, memo_key: Any) -> Any:
        """The memoized result for ``memo_key`` (marking its placeholders used), or None."""
        hit = _RESOLVED.get(memo_key)
        if hit is None:
            self._used_names = []
            self._used_values = []
            return None
        result, used_names, used_values = hit
        for n in used_names:
            self._unused_names.pop(n, None)
        for v in used_values:
            self._unused_values.pop(v, None)
        return result

    def _store(self, memo_key: Any, result: Any) -> None:
        _remember(_RESOLVED, memo_key, (result, tuple(self._used_names), tuple(self._used_values)))

    # -- expressions -------------------------------------------------------------------------
    @staticmethod
    def _precheck(text: str, param: str) -> None:
        if text == "":
            raise ValidationError(f"Invalid {param}: The expression can not be empty;")
        size = len(text.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:
            raise ValidationError(
                f"Invalid {param}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {size}"
            )

    def condition(self, text: str, param: str = "ConditionExpression") -> Condition:
        """A ConditionExpression or FilterExpression (``param`` names it in errors)."""
        memo_key = None if self._key is None else ("c", text, param, self._key)
        if memo_key is not None:
            hit: Condition | None = self._cached(memo_key)
            if hit is not None:
                return hit
        self._precheck(text, param)
        parsed = parse_condition(text)
        if parsed.error is not None or parsed.tree is None:
            raise ValidationError(f"Invalid {param}: {parsed.error}")
        try:
            out = Condition(resolve_condition(parsed.tree, self))
        except ExprError as e:
            raise ValidationError(f"Invalid {param}: {e.message}") from None
        if memo_key is not None:
            self._store(memo_key, out)
        return out

    def update(self, text: str) -> Update:
        param = "UpdateExpression"
        memo_key = None if self._key is None else ("u", text, self._key)
        if memo_key is not None:
            hit: Update | None = self._cached(memo_key)
            if hit is not None:
                return hit
        self._precheck(text, param)
        parsed = parse_update(text)
        if parsed.error is not None:
            raise ValidationError(f"Invalid {param}: {parsed.error}")
        operators = sum(
            1 + (_count_operators(a.value) if isinstance(a, SetAction) else 0)
            for a in parsed.actions
        )
        if operators > MAX_UPDATE_OPERATORS:
            raise ValidationError(
                f"Invalid {param}: The expression contains too many operators; "
                f"operator count: {operators}, maximum: {MAX_UPDATE_OPERATORS}"
            )
        try:
            out = Update(resolve_update(parsed.actions, self))
        except ExprError as e:
            raise ValidationError(f"Invalid {param}: {e.message}") from None
        if memo_key is not None:
            self._store(memo_key, out)
        return out

    def projection(self, text: str) -> Projection:
        param = "ProjectionExpression"
        memo_key = None if self._key is None else ("p", text, self._key)
        if memo_key is not None:
            hit: Projection | None = self._cached(memo_key)
            if hit is not None:
                return hit
        self._precheck(text, param)
        parsed = parse_projection(text)
        if parsed.error is not None:
            raise ValidationError(f"Invalid {param}: {parsed.error}")
        try:
            out = Projection.of(resolve_projection(parsed.paths, self))
        except ExprError as e:
            raise ValidationError(f"Invalid {param}: {e.message}") from None
        if memo_key is not None:
            self._store(memo_key, out)
        return out

    def key_condition(self, text: str, schema: KeySchema) -> KeyCondition:
        """A KeyConditionExpression checked against ``schema`` (the table's or the index's).

        Syntax and placeholder errors raise here. Errors of the key condition's shape (wrong
        operators, missing key attributes, types) are raised by ``check_unused``, after the
        unused-placeholder errors, as DynamoDB orders them; the caller must call it before
        using the result.
        """
        condition = self.condition(text, "KeyConditionExpression")
        assert condition.node is not None
        try:
            conds = conditions_from_expression(condition.node)
            return key_condition_from_conditions(conds, schema)
        except ValidationError as e:
            if self._deferred is None:
                self._deferred = e
            return KeyCondition(hash_names=(schema.hash.name,), hash_values=({"NULL": True},))

    def check_unused(self) -> None:
        """Raise if a supplied name or value was used by no expression of the request."""
        if self._unused_names:
            raise ValidationError(
                "Value provided in ExpressionAttributeNames unused in expressions: "
                "keys: {" + ", ".join(self._unused_names) + "}"
            )
        if self._unused_values:
            raise ValidationError(
                "Value provided in ExpressionAttributeValues unused in expressions: "
                "keys: {" + ", ".join(self._unused_values) + "}"
            )
        if self._deferred is not None:
            raise self._deferred
