"""The typed syntax tree of DynamoDB expressions (frozen values, safe to cache and share).

The parser builds these from text; ``resolve`` substitutes placeholders and returns the same
node types with every ``Placeholder`` path element replaced by a plain name and every
``ValueRef`` replaced by a ``Literal``. Evaluation only ever sees resolved trees.
Nodes never hold mutable state and never refer to a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "Placeholder",
    "PathElement",
    "Path",
    "ValueRef",
    "Literal",
    "Call",
    "Arith",
    "Operand",
    "Compare",
    "Between",
    "In",
    "And",
    "Or",
    "Not",
    "CondNode",
    "SetAction",
    "RemoveAction",
    "AddAction",
    "DeleteAction",
    "Action",
    "path_str",
]


@dataclass(frozen=True, slots=True)
class Placeholder:
    """An ``#name`` in a document path, before resolution."""

    name: str


PathElement: TypeAlias = str | int | Placeholder


@dataclass(frozen=True, slots=True)
class Path:
    """A document path: attribute names (str) and list indexes (int)."""

    elements: tuple[PathElement, ...]

    @property
    def resolved(self) -> tuple[str | int, ...]:
        """The elements of a resolved path (resolution replaced every Placeholder)."""
        return self.elements  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ValueRef:
    """A ``:value`` placeholder, before resolution."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    """An attribute value taken from ExpressionAttributeValues (or a legacy parameter)."""

    value: dict[str, Any]

    def __hash__(self) -> int:  # values are dicts; identity is good enough for caching
        return id(self)


@dataclass(frozen=True, slots=True)
class Call:
    """A function call: ``size(a)``, ``begins_with(a, :v)``, ``if_not_exists(a, :v)``..."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """``a + b`` or ``a - b`` in an update's SET value."""

    op: str
    left: Operand
    right: Operand


Operand: TypeAlias = Path | ValueRef | Literal | Call | Arith


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=
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
class And:
    left: CondNode
    right: CondNode


@dataclass(frozen=True, slots=True)
class Or:
    left: CondNode
    right: CondNode


@dataclass(frozen=True, slots=True)
class Not:
    operand: CondNode


CondNode: TypeAlias = Compare | Between | In | And | Or | Not | Call


@dataclass(frozen=True, slots=True)
class SetAction:
    path: Path
    value: Operand


@dataclass(frozen=True, slots=True)
class RemoveAction:
    path: Path


@dataclass(frozen=True, slots=True)
class AddAction:
    """ADD: number addition or set union. ``legacy`` allows AttributeUpdates' list append."""

    path: Path
    value: Operand
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class DeleteAction:
    """DELETE: set difference. ``legacy`` selects AttributeUpdates' error message."""

    path: Path
    value: Operand
    legacy: bool = False


Action: TypeAlias = SetAction | RemoveAction | AddAction | DeleteAction


def path_str(path: tuple[PathElement, ...]) -> str:
    """DynamoDB's rendering of a path in messages: ``[a, b, [1]]``."""
    parts = []
    for e in path:
        if isinstance(e, int):
            parts.append(f"[{e}]")
        elif isinstance(e, Placeholder):
            parts.append(e.name)
        else:
            parts.append(e)
    return "[" + ", ".join(parts) + "]"
