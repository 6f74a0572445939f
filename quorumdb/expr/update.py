"""Applying a resolved UpdateExpression (or legacy AttributeUpdates) to an item.

``Update.apply`` is pure: it never mutates the item it is given and copies containers only
along the paths it changes, so the caller's old item stays valid (a replicated leader may call
it more than once). Operand values are read from the item as it was before the update.
It raises ``ValidationError`` with DynamoDB's messages for paths or types that do not fit the
item; it never checks the item's size or key (the caller does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quorumdb.errors import ValidationError
from quorumdb.expr.ast import (
    Action,
    AddAction,
    Arith,
    Call,
    DeleteAction,
    Literal,
    Operand,
    Path,
    RemoveAction,
    SetAction,
)
from quorumdb.expr.evaluate import get_path
from quorumdb.expr.projection import project_paths
from quorumdb.model import numbers
from quorumdb.model.compare import decode_binary, type_of
from quorumdb.model.schema import KeySchema, TableDef
from quorumdb.model.types import AttributeValue, Item

__all__ = [
    "Update",
    "INVALID_PATH",
    "BAD_OPERAND_TYPE",
    "MISSING_ATTRIBUTE",
    "LEGACY_TYPE_MISMATCH",
]

INVALID_PATH = "The document path provided in the update expression is invalid for update"
BAD_OPERAND_TYPE = "An operand in the update expression has an incorrect data type"
MISSING_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"
LEGACY_TYPE_MISMATCH = "Type mismatch for attribute to update"

_SETS = ("SS", "NS", "BS")


def _set_key(tag: str, element: str) -> object:
    if tag == "NS":
        return numbers.to_decimal(element)
    if tag == "BS":
        return decode_binary(element)
    return element


def _union(tag: str, old: list[str], new: list[str]) -> list[str]:
    seen = {_set_key(tag, x) for x in old}
    out = list(old)
    for x in new:
        k = _set_key(tag, x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def _difference(tag: str, old: list[str], remove: list[str]) -> list[str]:
    gone = {_set_key(tag, x) for x in remove}
    return [x for x in old if _set_key(tag, x) not in gone]


# -- copy-on-write path edits -------------------------------------------------------------------


def _assign(container: AttributeValue, rest: tuple[Any, ...], value: AttributeValue) -> AttributeValue:
    """A copy of ``container`` with ``value`` at ``rest`` (appending past a list's end)."""
    element = rest[0]
    if isinstance(element, int):
        items = container.get("L")
        if items is None:
            raise ValidationError(INVALID_PATH)
        new_items = list(items)
        if len(rest) == 1:
            if element >= len(new_items):
                new_items.append(value)
            else:
                new_items[element] = value
        else:
            if element >= len(new_items):
                raise ValidationError(INVALID_PATH)
            new_items[element] = _assign(new_items[element], rest[1:], value)
        return {"L": new_items}
    members = container.get("M")
    if members is None:
        raise ValidationError(INVALID_PATH)
    new_members = dict(members)
    if len(rest) == 1:
        new_members[element] = value
    else:
        child = new_members.get(element)
        if child is None:
            raise ValidationError(INVALID_PATH)
        new_members[element] = _assign(child, rest[1:], value)
    return {"M": new_members}


def _put(item: Item, path: tuple[Any, ...], value: AttributeValue) -> None:
    """Set ``path`` in ``item`` (a private shallow copy) to ``value``."""
    head = path[0]
    if len(path) == 1:
        item[head] = value
        return
    current = item.get(head)
    if current is None:
        raise ValidationError(INVALID_PATH)
    item[head] = _assign(current, path[1:], value)


def _without(container: AttributeValue, rest: tuple[Any, ...]) -> AttributeValue | None:
    """A copy of ``container`` without ``rest``; None when the last element is not there.
    Every container above the last element must exist and have the right type."""
    element = rest[0]
    last = len(rest) == 1
    if isinstance(element, int):
        items = container.get("L")
        if items is None:
            raise ValidationError(INVALID_PATH)
        if element >= len(items):
            if last:
                return None
            raise ValidationError(INVALID_PATH)
        new_items = list(items)
        if last:
            del new_items[element]
        else:
            child = _without(new_items[element], rest[1:])
            if child is None:
                return None
            new_items[element] = child
        return {"L": new_items}
    members = container.get("M")
    if members is None:
        raise ValidationError(INVALID_PATH)
    if element not in members:
        if last:
            return None
        raise ValidationError(INVALID_PATH)
    new_members = dict(members)
    if last:
        del new_members[element]
    else:
        child = _without(new_members[element], rest[1:])
        if child is None:
            return None
        new_members[element] = child
    return {"M": new_members}


def _drop(item: Item, path: tuple[Any, ...]) -> None:
    """Remove ``path`` from ``item`` (a private shallow copy); a missing last element is fine."""
    head = path[0]
    if len(path) == 1:
        item.pop(head, None)
        return
    current = item.get(head)
    if current is None:
        raise ValidationError(INVALID_PATH)
    changed = _without(current, path[1:])
    if changed is not None:
        item[head] = changed


def _check_parent(item: Item, path: tuple[Any, ...]) -> None:
    """The container holding ``path``'s last element must exist with the right type."""
    if len(path) == 1:
        return
    parent = get_path(item, path[:-1])
    if parent is None or ("L" if isinstance(path[-1], int) else "M") not in parent:
        raise ValidationError(INVALID_PATH)


def _past_end(item: Item, path: tuple[Any, ...]) -> bool:
    """Whether ``path`` names an element past the end of a list ``item`` has."""
    last = path[-1]
    if len(path) == 1 or not isinstance(last, int):
        return False
    parent = get_path(item, path[:-1])
    items = None if parent is None else parent.get("L")
    return items is not None and last >= len(items)


def _path_order(path: tuple[Any, ...]) -> tuple[Any, ...]:
    # Paths ordered by parent, then list index: appends go in ascending index order, and
    # removes run in reverse, so removing a[1] does not shift a[2] before it is removed.
    return tuple((1, e) if isinstance(e, int) else (0, e) for e in path)


# -- values -------------------------------------------------------------------------------------


def _static_type(op: Operand) -> str | None:
    if isinstance(op, Literal):
        return type_of(op.value)
    if isinstance(op, Arith):
        return "N"
    if isinstance(op, Call):
        if op.name == "list_append":
            return "L"
        if op.name == "if_not_exists":
            return _static_type(op.args[1])
    return None


def _value(op: Operand, old: Item) -> AttributeValue:
    if isinstance(op, Literal):
        return op.value
    if isinstance(op, Path):
        found = get_path(old, op.resolved)
        if found is None:
            raise ValidationError(MISSING_ATTRIBUTE)
        return found
    if isinstance(op, Arith):
        left, right = _value(op.left, old), _value(op.right, old)
        if "N" not in left or "N" not in right:
            raise ValidationError(BAD_OPERAND_TYPE)
        fn = numbers.add if op.op == "+" else numbers.sub
        return {"N": fn(left["N"], right["N"])}
    if isinstance(op, Call):
        if op.name == "if_not_exists":
            target = op.args[0]
            assert isinstance(target, Path)
            found = get_path(old, target.resolved)
            return found if found is not None else _value(op.args[1], old)
        if op.name == "list_append":
            first, second = _value(op.args[0], old), _value(op.args[1], old)
            if "L" not in first or "L" not in second:
                raise ValidationError(BAD_OPERAND_TYPE)
            return {"L": list(first["L"]) + list(second["L"])}
    raise AssertionError(f"unexpected update operand {op!r}")


@dataclass(frozen=True, slots=True)
class Update:
    """A resolved update: actions in expression order (paths never overlap)."""

    actions: tuple[Action, ...]

    @property
    def updated_paths(self) -> tuple[tuple[str | int, ...], ...]:
        """Every document path the update sets, adds to, deletes from or removes."""
        return tuple(a.path.resolved for a in self.actions)

    def project_updated(self, item: Item) -> Item:
        """Just the updated paths of ``item`` (ReturnValues UPDATED_OLD / UPDATED_NEW)."""
        return project_paths(item, self.updated_paths)

    def check_keys(self, schema: KeySchema) -> None:
        """Refuse updates of key attributes (including paths below them)."""
        keys = schema.names
        for a in self.actions:
            head = a.path.resolved[0]
            if head in keys:
                raise ValidationError(
                    "One or more parameter values were invalid: "
                    f"Cannot update attribute {head}. This attribute is part of the key"
                )

    @property
    def nested_heads(self) -> tuple[str, ...]:
        """Top-level attributes whose insides the update targets (``a.b``, ``a[0]``)."""
        seen: dict[str, None] = {}
        for a in self.actions:
            p = a.path.resolved
            if len(p) > 1:
                seen.setdefault(str(p[0]), None)
        return tuple(seen)

    def top_level_types(self) -> dict[str, str]:
        """Types known before reading the item of top-level attributes the update writes
        (SET to a literal or typed function, ADD/DELETE of a literal), as DynamoDB infers them."""
        out: dict[str, str] = {}
        for a in self.actions:
            p = a.path.resolved
            if len(p) != 1 or str(p[0]) in out or isinstance(a, RemoveAction):
                continue
            t = _static_type(a.value)
            if t is not None:
                out[str(p[0])] = t
        return out

    def check_table(self, table: TableDef) -> None:
        """DynamoDB's checks of an update against the table: key attributes untouched, index
        key attributes given values of their type, no paths below key attributes."""
        from quorumdb.expr.keycond import check_key_paths, index_key_attributes

        self.check_keys(table.key_schema)
        types = self.top_level_types()
        for name, expected, index in index_key_attributes(table):
            actual = types.get(name)
            if actual is not None and actual != expected:
                raise ValidationError(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {expected} Actual: {actual} IndexName: {index}"
                )
        check_key_paths(self.nested_heads, table)

    def apply(self, item: Item) -> Item:
        """The item after the update; ``item`` itself is left untouched.

        List indexes refer to the item as it was: elements set past a list's end are appended
        after the other actions, in ascending index order (as DynamoDB does), and a REMOVE past
        the original end removes nothing (not an element appended by this update)."""
        new: Item = dict(item)
        removes: list[tuple[Any, ...]] = []
        appends: list[Action] = []
        for action in self.actions:
            path = action.path.resolved
            if isinstance(action, RemoveAction):
                if not _past_end(item, path):
                    removes.append(path)
            elif _past_end(item, path):
                appends.append(action)
            else:
                self._apply_one(new, action, item)
        for action in sorted(appends, key=lambda a: _path_order(a.path.resolved)):
            self._apply_one(new, action, item)
        for path in sorted(removes, key=_path_order, reverse=True):
            _drop(new, path)
        return new

    def _apply_one(self, new: Item, action: Action, old: Item) -> None:
        path = action.path.resolved
        if isinstance(action, SetAction):
            _put(new, path, _value(action.value, old))
        elif isinstance(action, AddAction):
            self._add(new, path, _value(action.value, old), action.legacy)
        else:
            assert isinstance(action, DeleteAction)
            self._delete(new, path, _value(action.value, old), action)

    @staticmethod
    def _add(new: Item, path: tuple[Any, ...], value: AttributeValue, legacy: bool) -> None:
        error = LEGACY_TYPE_MISMATCH if legacy else BAD_OPERAND_TYPE
        tag = type_of(value)
        current = get_path(new, path)
        if current is None:
            if tag != "N" and tag not in _SETS and not (legacy and tag == "L"):
                raise ValidationError(error)
            _put(new, path, value)
            return
        current_tag = type_of(current)
        if current_tag != tag:
            raise ValidationError(error)
        if tag == "N":
            _put(new, path, {"N": numbers.add(current["N"], value["N"])})
        elif tag in _SETS:
            _put(new, path, {tag: _union(tag, current[tag], value[tag])})
        elif legacy and tag == "L":
            _put(new, path, {"L": list(current["L"]) + list(value["L"])})
        else:
            raise ValidationError(error)

    @staticmethod
    def _delete(new: Item, path: tuple[Any, ...], value: AttributeValue, action: DeleteAction) -> None:
        tag = type_of(value)
        current = get_path(new, path)
        if current is None:
            _check_parent(new, path)
            return
        if type_of(current) != tag or tag not in _SETS:
            raise ValidationError(LEGACY_TYPE_MISMATCH if action.legacy else BAD_OPERAND_TYPE)
        remaining = _difference(tag, current[tag], value[tag])
        if remaining:
            _put(new, path, {tag: remaining})
        else:
            _drop(new, path)
