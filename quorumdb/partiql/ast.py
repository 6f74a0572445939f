"""The typed syntax tree of a PartiQL statement (frozen values, cached per statement text).

Document paths are ``quorumdb.expr.ast.Path`` values already (names and list indexes), so a
statement's conditions and updates translate to the expression language node for node. Values
are kept unevaluated: a literal's text becomes an AttributeValue, and a ``?`` its parameter,
only when the statement is bound to a request (``quorumdb.partiql.bind``). Nodes never refer to
a request or a table definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from quorumdb.expr.ast import Path
from quorumdb.partiql.lexer import Pos

__all__ = [
    "Param",
    "Scalar",
    "ListValue",
    "MapValue",
    "SetValue",
    "Value",
    "Func",
    "Arith",
    "Operand",
    "Compare",
    "Between",
    "In",
    "IsMissing",
    "IsNull",
    "And",
    "Or",
    "Not",
    "Cond",
    "SetClause",
    "RemoveClause",
    "Clause",
    "Select",
    "Insert",
    "Update",
    "Delete",
    "Exists",
    "Statement",
]


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """A ``?``: the ``index``-th (from 0) of the request's Parameters."""

    index: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class Scalar:
    """A string, number, boolean or null literal: ``tag`` is S, N, BOOL or NULL."""

    tag: str
    text: str  # the string, the number as written, "true"/"false", "null"
    pos: Pos


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Value, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class MapValue:
    entries: tuple[tuple[str, Value], ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class SetValue:
    """``<<...>>``: a string, number or binary set."""

    items: tuple[Value, ...]
    pos: Pos


Value: TypeAlias = Param | Scalar | ListValue | MapValue | SetValue


# -- operands and conditions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Func:
    """A function call; ``name`` is lower case."""

    name: str
    args: tuple[Operand, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Arith:
    """``a + b`` / ``a - b`` (SET values only)."""

    op: str
    left: Operand
    right: Operand


Operand: TypeAlias = Path | Value | Func | Arith


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=  ("!=" is read as "<>")
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    subject: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    subject: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class IsMissing:
    """``path IS MISSING`` (``negated``: ``IS NOT MISSING``)."""

    path: Path
    negated: bool


@dataclass(frozen=True, slots=True)
class IsNull:
    """``path IS NULL``: the attribute holds the NULL type (``negated``: ``IS NOT NULL``)."""

    path: Path
    negated: bool


@dataclass(frozen=True, slots=True)
class And:
    left: Cond
    right: Cond


@dataclass(frozen=True, slots=True)
class Or:
    left: Cond
    right: Cond


@dataclass(frozen=True, slots=True)
class Not:
    operand: Cond


Cond: TypeAlias = Compare | Between | In | IsMissing | IsNull | And | Or | Not | Func


# -- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetClause:
    path: Path
    value: Operand


@dataclass(frozen=True, slots=True)
class RemoveClause:
    path: Path


Clause: TypeAlias = SetClause | RemoveClause


@dataclass(frozen=True, slots=True, kw_only=True)
class Select:
    table: str
    index: str | None
    projection: tuple[Path, ...] | None  # None: *
    where: Cond | None
    order_by: Path | None = None
    descending: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Insert:
    table: str
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    table: str
    clauses: tuple[Clause, ...]
    where: Cond | None
    returning: str | None  # "ALL OLD", "MODIFIED OLD", "ALL NEW", "MODIFIED NEW"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    table: str
    where: Cond | None
    returning: str | None  # "ALL OLD"


@dataclass(frozen=True, slots=True, kw_only=True)
class Exists:
    """``EXISTS(SELECT ...)``: a condition check, allowed in ExecuteTransaction only."""

    select: Select


Statement: TypeAlias = Select | Insert | Update | Delete | Exists
