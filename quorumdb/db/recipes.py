"""Write recipes: a ``WriteOp`` whose mutation is code but can be described as data.

A conditional write's ``mutate`` is a closure (it evaluates a condition or an update expression
against the old item), so a router cannot ship it to a partition's leader on another node. Some
writes come from a self-contained, msgpack-able description (a PartiQL statement and its
parameters): the API layer attaches it as ``WriteOp.recipe = (kind, data)`` and registers a
builder for ``kind``; the leader rebuilds the very same mutation with ``rebuild``. Each write is
still evaluated once, by the leader, against its state, as every other write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quorumdb.db.contract import Mutator
from quorumdb.errors import ValidationError
from quorumdb.model.schema import TableDef

__all__ = ["Builder", "register", "rebuild"]

# (the table the write targets, the recipe's data) -> (the key it writes, its mutation)
Builder = Callable[[TableDef, Any], tuple[dict[str, Any], Mutator]]
_BUILDERS: dict[str, Builder] = {}


def register(kind: str, builder: Builder) -> None:
    _BUILDERS[kind] = builder


def rebuild(table: TableDef, recipe: Any, key: dict[str, Any]) -> Mutator:
    """The mutation ``recipe`` describes, for the item ``key`` of ``table`` (ValidationError if
    the recipe is unknown here or names another item)."""
    if not isinstance(recipe, list | tuple) or len(recipe) != 2 or recipe[0] not in _BUILDERS:
        raise ValidationError("Unsupported write recipe")
    built_key, mutate = _BUILDERS[recipe[0]](table, recipe[1])
    if built_key != key:
        raise ValidationError("A write recipe does not match its key")
    return mutate
