"""DynamoDB's legacy (pre-expression) parameters, converted to the same objects expressions give.

``Expected`` + ``ConditionalOperator`` and ``QueryFilter``/``ScanFilter`` become a
``Condition``; ``AttributeUpdates`` an ``Update``; ``AttributesToGet`` a ``Projection``;
``KeyConditions`` a ``KeyCondition``. Each is validated with DynamoDB's messages first.
Legacy attribute names are literal: no placeholders, no reserved-word checks. Nothing here
evaluates items or keeps state.
"""

from __future__ import annotations

from typing import Any

from quorumdb.errors import ValidationError
from quorumdb.expr.ast import (
    Action,
    AddAction,
    And,
    Between,
    Call,
    Compare,
    CondNode,
    DeleteAction,
    In,
    Literal,
    Not,
    Or,
    Path,
    RemoveAction,
    SetAction,
)
from quorumdb.expr.condition import Condition
from quorumdb.expr.keycond import (
    KeyCondition,
    key_condition_from_conditions,
    validate_conditions,
)
from quorumdb.expr.projection import Projection
from quorumdb.expr.update import Update
from quorumdb.model.compare import type_of
from quorumdb.model.schema import KeySchema
from quorumdb.model.types import AttributeValue
from quorumdb.model.values import validate_value

__all__ = [
    "expected_condition",
    "filter_condition",
    "attribute_updates",
    "attributes_to_get",
    "key_conditions",
    "expected",
    "filter_conditions",
]

_INVALID = "One or more parameter values were invalid: "
_COMPARATORS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}


def _node(name: str, op: str, values: list[AttributeValue]) -> CondNode:
    path = Path((name,))
    lits = [Literal(v) for v in values]
    if op in _COMPARATORS:
        return Compare(_COMPARATORS[op], path, lits[0])
    if op == "NULL":
        return Call("attribute_not_exists", (path,))
    if op == "NOT_NULL":
        return Call("attribute_exists", (path,))
    if op == "CONTAINS":
        return Call("contains", (path, lits[0]))
    if op == "NOT_CONTAINS":
        return Not(Call("contains", (path, lits[0])))
    if op == "BEGINS_WITH":
        return Call("begins_with", (path, lits[0]))
    if op == "IN":
        return In(path, tuple(lits))
    if op == "BETWEEN":
        return Between(path, lits[0], lits[1])
    raise ValidationError(f"{_INVALID}Unsupported ComparisonOperator: {op}")


def _combine(nodes: list[CondNode], conditional_operator: str | None) -> Condition:
    if not nodes:
        return Condition(None)
    combined = nodes[0]
    for n in nodes[1:]:
        combined = Or(combined, n) if conditional_operator == "OR" else And(combined, n)
    return Condition(combined)


def _value_list(condition: dict[str, Any]) -> list[AttributeValue]:
    return [validate_value(v) for v in condition.get("AttributeValueList") or []]


def expected_condition(expected: dict[str, Any], conditional_operator: str | None) -> Condition:
    """``Expected`` (with ``ConditionalOperator``) of PutItem/UpdateItem/DeleteItem."""
    nodes: list[CondNode] = []
    for name, cond in expected.items():
        if "AttributeValueList" in cond and "Value" in cond:
            raise ValidationError(
                f"{_INVALID}Value and AttributeValueList cannot be used together for Attribute: {name}"
            )
        if "ComparisonOperator" in cond:
            op = cond["ComparisonOperator"]
            if "Exists" in cond:
                raise ValidationError(
                    f"{_INVALID}Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )
            if op not in ("NULL", "NOT_NULL") and "AttributeValueList" not in cond and "Value" not in cond:
                raise ValidationError(
                    f"{_INVALID}Value or AttributeValueList must be used with ComparisonOperator: "
                    f"{op} for Attribute: {name}"
                )
            if "AttributeValueList" in cond:
                values = _value_list(cond)
            elif cond.get("Value") is not None:
                values = [validate_value(cond["Value"], field=True)]
            else:
                values = []
            count = len(values)
            if op in ("EQ", "NE", "LE", "LT", "GE", "GT", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH"):
                valid = count == 1
            elif op in ("NULL", "NOT_NULL"):
                valid = count == 0
            elif op == "IN":
                valid = count > 0
            elif op == "BETWEEN":
                valid = count == 2
            else:
                valid = False
            if not valid:
                raise ValidationError(
                    f"{_INVALID}Invalid number of argument(s) for the {op} ComparisonOperator"
                )
            # Same type, types the operator takes, BETWEEN's bounds.
            validate_conditions({name: (op, values)}, keys=False)
            nodes.append(_node(name, op, values))
        elif "AttributeValueList" in cond:
            raise ValidationError(
                f"{_INVALID}AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )
        else:
            exists_given = cond.get("Exists")
            exists = exists_given is None or bool(exists_given)
            value = cond.get("Value")
            if exists and value is None:
                shown = "null" if exists_given is None else str(exists_given).lower()
                raise ValidationError(
                    f"{_INVALID}Value must be provided when Exists is {shown} for Attribute: {name}"
                )
            if not exists and value is not None:
                raise ValidationError(
                    f"{_INVALID}Value cannot be used when Exists is false for Attribute: {name}"
                )
            if exists:
                nodes.append(_node(name, "EQ", [validate_value(value, field=True)]))
            else:
                nodes.append(_node(name, "NULL", []))
    return _combine(nodes, conditional_operator)


def _conditions(conditions: dict[str, Any], *, keys: bool) -> dict[str, tuple[str, list[AttributeValue]]]:
    out: dict[str, tuple[str, list[AttributeValue]]] = {}
    for name, cond in conditions.items():
        out[name] = (cond.get("ComparisonOperator", ""), _value_list(cond))
    validate_conditions(out, keys=keys)
    return out


def filter_condition(conditions: dict[str, Any], conditional_operator: str | None) -> Condition:
    """``QueryFilter`` or ``ScanFilter`` (with ``ConditionalOperator``)."""
    conds = _conditions(conditions, keys=False)
    return _combine([_node(name, op, values) for name, (op, values) in conds.items()], conditional_operator)


def key_conditions(conditions: dict[str, Any], schema: KeySchema) -> KeyCondition:
    """``KeyConditions`` of a Query, checked against the table's or index's key schema."""
    return key_condition_from_conditions(_conditions(conditions, keys=True), schema)


def attribute_updates(updates: dict[str, Any]) -> Update:
    """``AttributeUpdates`` of UpdateItem (Action PUT, ADD or DELETE; PUT by default)."""
    actions: list[Action] = []
    for name, update in updates.items():
        raw = update.get("Value")
        value = validate_value(raw, field=True) if raw is not None else None
        action = update.get("Action") or "PUT"
        if value is None and action != "DELETE":
            raise ValidationError(
                f"{_INVALID}Only DELETE action is allowed when no attribute value is specified"
            )
        path = Path((name,))
        if value is None:
            actions.append(RemoveAction(path))
            continue
        tag = type_of(value)
        if action == "DELETE":
            if tag not in ("SS", "NS", "BS"):
                raise ValidationError(
                    f"{_INVALID}DELETE action with value is not supported for the type {tag}"
                )
            actions.append(DeleteAction(path, Literal(value), legacy=True))
        elif action == "ADD":
            if tag not in ("L", "SS", "NS", "BS", "N"):
                raise ValidationError(f"{_INVALID}ADD action is not supported for the type {tag}")
            actions.append(AddAction(path, Literal(value), legacy=True))
        else:
            actions.append(SetAction(path, Literal(value)))
    return Update(tuple(actions))


def attributes_to_get(names: list[str]) -> Projection:
    """``AttributesToGet``: top-level attribute names, no duplicates."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(f"{_INVALID}Duplicate value in attribute name: {name}")
        seen.add(name)
    return Projection(tuple((name,) for name in names))


# Aliases under the names the API layer first coded against.
expected = expected_condition


def filter_conditions(
    conditions: dict[str, Any], conditional_operator: str | None, param: str = "QueryFilter"
) -> Condition:
    """``filter_condition`` taking the parameter name (QueryFilter / ScanFilter) too."""
    return filter_condition(conditions, conditional_operator)
