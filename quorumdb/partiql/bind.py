"""Binding a parsed statement to one request: values become AttributeValues, ``?`` become the
request's Parameters, and conditions and SET/REMOVE clauses become the expression language's
resolved trees (``quorumdb.expr``), checked by its resolver, so that they are evaluated and
applied by the same code as ConditionExpression and UpdateExpression.

Everything here is pure and raises ``ValidationError`` with DynamoDB's messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quorumdb.errors import ValidationError
from quorumdb.expr import Update
from quorumdb.expr import ast as ex
from quorumdb.expr.resolve import ExprError, resolve_condition, resolve_update
from quorumdb.model.numbers import canonical
from quorumdb.model.types import AttributeValue
from quorumdb.model.values import validate_value
from quorumdb.partiql.ast import (
    And,
    Arith,
    Between,
    Clause,
    Compare,
    Cond,
    Func,
    In,
    IsMissing,
    IsNull,
    ListValue,
    MapValue,
    Not,
    Operand,
    Or,
    Param,
    RemoveClause,
    Scalar,
    SetValue,
    Value,
)

__all__ = [
    "PARAMETER_COUNT_MISMATCH",
    "bind_parameters",
    "bind_value",
    "condition",
    "update",
    "NO_PLACEHOLDERS",
]

PARAMETER_COUNT_MISMATCH = "Number of parameters in request and statement doesn't match."
_SET_TAGS = {"S": "SS", "N": "NS", "B": "BS"}


def bind_parameters(param_count: int, parameters: Sequence[Any] | None) -> list[AttributeValue]:
    """The request's Parameters, validated, for a statement with ``param_count`` ``?``."""
    given = list(parameters or ())
    if len(given) != param_count:
        raise ValidationError(PARAMETER_COUNT_MISMATCH)
    return [validate_value(p) for p in given]


def bind_value(v: Value, params: Sequence[AttributeValue]) -> AttributeValue:
    """The AttributeValue a value literal (or parameter) stands for."""
    if isinstance(v, Param):
        return params[v.index]
    if isinstance(v, Scalar):
        if v.tag == "S":
            return {"S": v.text}
        if v.tag == "N":
            return {"N": canonical(v.text)}
        if v.tag == "BOOL":
            return {"BOOL": v.text == "true"}
        return {"NULL": True}
    if isinstance(v, ListValue):
        return {"L": [bind_value(x, params) for x in v.items]}
    if isinstance(v, MapValue):
        members: dict[str, AttributeValue] = {}
        for k, x in v.entries:
            if k in members:
                raise ValidationError(f"Duplicate key in map literal: '{k}'")
            members[k] = bind_value(x, params)
        return {"M": members}
    assert isinstance(v, SetValue)
    elements = [bind_value(x, params) for x in v.items]
    tags = {next(iter(e)) for e in elements}
    if len(tags) != 1 or next(iter(tags)) not in _SET_TAGS:
        raise ValidationError(
            "A set must contain elements of one of the types string, number or binary"
        )
    (tag,) = tags
    return validate_value({_SET_TAGS[tag]: [e[tag] for e in elements]})


# -- conditions ---------------------------------------------------------------------------------


class _NoPlaceholders:
    """The scope of a bound statement: it has no ``#name`` or ``:value`` placeholders."""

    def lookup_name(self, placeholder: str) -> str | None:
        return None

    def lookup_value(self, placeholder: str) -> AttributeValue | None:
        return None


NO_PLACEHOLDERS = _NoPlaceholders()


def _operand(op: Operand, params: Sequence[AttributeValue]) -> ex.Operand:
    if isinstance(op, ex.Path):
        return op
    if isinstance(op, Func):
        return ex.Call(op.name, tuple(_operand(a, params) for a in op.args))
    if isinstance(op, Arith):
        return ex.Arith(op.op, _operand(op.left, params), _operand(op.right, params))
    return ex.Literal(bind_value(op, params))


def _argument(op: Operand, params: Sequence[AttributeValue]) -> ex.Operand:
    """An operand of a comparison or condition function: of the functions, only size() has
    a value (the others are conditions)."""
    if isinstance(op, Func):
        if op.name != "size":
            raise ValidationError(
                "The function is not allowed to be used this way in an expression; "
                f"function: {op.name}"
            )
        return ex.Call(op.name, tuple(_argument(a, params) for a in op.args))
    return _operand(op, params)


def _cond(c: Cond, params: Sequence[AttributeValue]) -> ex.CondNode:
    if isinstance(c, And):
        return ex.And(_cond(c.left, params), _cond(c.right, params))
    if isinstance(c, Or):
        return ex.Or(_cond(c.left, params), _cond(c.right, params))
    if isinstance(c, Not):
        return ex.Not(_cond(c.operand, params))
    if isinstance(c, Compare):
        return ex.Compare(c.op, _argument(c.left, params), _argument(c.right, params))
    if isinstance(c, Between):
        return ex.Between(*(_argument(x, params) for x in (c.subject, c.low, c.high)))
    if isinstance(c, In):
        return ex.In(_argument(c.subject, params), tuple(_argument(o, params) for o in c.options))
    if isinstance(c, IsMissing):
        return ex.Call("attribute_exists" if c.negated else "attribute_not_exists", (c.path,))
    if isinstance(c, IsNull):
        is_null = ex.Call("attribute_type", (c.path, ex.Literal({"S": "NULL"})))
        return ex.Not(is_null) if c.negated else is_null
    assert isinstance(c, Func) and c.name != "size"
    return ex.Call(c.name, tuple(_argument(a, params) for a in c.args))


def condition(c: Cond, params: Sequence[AttributeValue]) -> ex.CondNode:
    """A WHERE clause as a resolved condition tree of the expression language."""
    try:
        return resolve_condition(_cond(c, params), NO_PLACEHOLDERS)
    except ExprError as e:
        raise ValidationError(e.message) from None


# -- updates ------------------------------------------------------------------------------------


def _action(clause: Clause, params: Sequence[AttributeValue]) -> ex.Action:
    if isinstance(clause, RemoveClause):
        return ex.RemoveAction(clause.path)
    value = clause.value
    if isinstance(value, Func) and value.name in ("set_add", "set_delete"):
        target, operand = value.args
        if target != clause.path:
            raise ValidationError(
                f"{value.name} must be applied to the attribute being set: "
                f"SET a = {value.name}(a, <<...>>)"
            )
        literal = _operand(operand, params)
        if value.name == "set_add":
            return ex.AddAction(clause.path, literal)
        return ex.DeleteAction(clause.path, literal)
    return ex.SetAction(clause.path, _operand(value, params))


def update(clauses: Sequence[Clause], params: Sequence[AttributeValue]) -> Update:
    """SET/REMOVE clauses as a resolved update of the expression language."""
    try:
        return Update(resolve_update(tuple(_action(c, params) for c in clauses), NO_PLACEHOLDERS))
    except ExprError as e:
        raise ValidationError(e.message) from None
