"""Placeholder resolution and the checks that depend on a request's names and values.

``resolve_*`` take an unresolved (cached, shared) tree and a ``Scope`` (the request's
ExpressionAttributeNames/Values, which records what was used) and return a new resolved tree,
or raise ``ExprError`` with DynamoDB's message (without the ``Invalid X:`` prefix), choosing
among several problems in DynamoDB's order of precedence. Nothing here evaluates items.
"""

from __future__ import annotations

from typing import Any, Protocol

from quorumdb.expr.ast import (
    Action,
    AddAction,
    And,
    Arith,
    Between,
    Call,
    Compare,
    CondNode,
    DeleteAction,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Placeholder,
    RemoveAction,
    SetAction,
    ValueRef,
    path_str,
)
from quorumdb.expr.parser import CONDITION_FUNCTIONS
from quorumdb.model.compare import compare, type_of
from quorumdb.model.types import AttributeValue

__all__ = ["ExprError", "Scope", "resolve_condition", "resolve_update", "resolve_projection"]

VALID_TYPE_NAMES = ("S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M")


class ExprError(Exception):
    """A problem with one expression; the caller adds ``Invalid <Param>: ``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Scope(Protocol):
    def lookup_name(self, placeholder: str) -> str | None: ...

    def lookup_value(self, placeholder: str) -> AttributeValue | None: ...


def _name_error(name: str) -> str:
    return (
        "An expression attribute name used in the document path is not defined; "
        f"attribute name: {name}"
    )


def _value_error(name: str) -> str:
    return f"An expression attribute value used in expression is not defined; attribute value: {name}"


def _operand_type_error(fn: str, type_name: str) -> str:
    return (
        "Incorrect operand type for operator or function; "
        f"operator or function: {fn}, operand type: {type_name}"
    )


def _av_text(av: AttributeValue) -> str:
    tag = type_of(av)
    v = av[tag]
    if isinstance(v, list):
        text = ",".join(str(x) for x in v)
    elif isinstance(v, bool):
        text = "true" if v else "false"
    else:
        text = str(v)
    return f"{{{tag}:{text}}}"


class _Resolver:
    """Resolution state for one expression: the first error of each category."""

    def __init__(self, scope: Scope, *, split_name_value: bool = False) -> None:
        self.scope = scope
        self.errors: dict[str, str] = {}
        # Update expressions rank undefined names above undefined values; the others report
        # whichever undefined placeholder comes first.
        self.name_category = "attrName" if split_name_value else "attrNameVal"
        self.value_category = "attrVal" if split_name_value else "attrNameVal"

    def note(self, category: str, message: str) -> None:
        self.errors.setdefault(category, message)

    def raise_first(self, order: tuple[str, ...]) -> None:
        for category in order:
            if category in self.errors:
                raise ExprError(self.errors[category])

    def path(self, path: Path) -> Path:
        if not any(isinstance(e, Placeholder) for e in path.elements):
            return path
        out: list[PathElement] = []
        for e in path.elements:
            if isinstance(e, Placeholder):
                name = None if self.name_category in self.errors else self.scope.lookup_name(e.name)
                if name is None:
                    self.note(self.name_category, _name_error(e.name))
                    out.append(e.name)
                else:
                    out.append(name)
            else:
                out.append(e)
        return Path(tuple(out))

    def value(self, ref: ValueRef) -> Literal:
        value = None if self.value_category in self.errors else self.scope.lookup_value(ref.name)
        if value is None:
            self.note(self.value_category, _value_error(ref.name))
            return Literal({"NULL": True})
        return Literal(value)


# -- conditions ---------------------------------------------------------------------------------

_CONDITION_ORDER = ("attrNameVal", "operand", "distinct", "function")


def _static_type(op: Operand) -> str | None:
    """The type DynamoDB knows before reading the item: a literal's, or N for size()."""
    if isinstance(op, Literal):
        return type_of(op.value)
    if isinstance(op, Call):
        if op.name == "size":
            return "N"
        if op.name in ("begins_with", "attribute_type", "contains"):
            return "BOOL"
    return None


class _ConditionResolver(_Resolver):
    def condition(self, node: CondNode) -> CondNode:
        if isinstance(node, And):
            return And(self.condition(node.left), self.condition(node.right))
        if isinstance(node, Or):
            return Or(self.condition(node.left), self.condition(node.right))
        if isinstance(node, Not):
            return Not(self.condition(node.operand))
        out = self.atomic(node)
        # DynamoDB settles on the first simple condition that has any problem.
        self.raise_first(_CONDITION_ORDER)
        return out

    def atomic(self, node: CondNode) -> CondNode:
        if isinstance(node, Compare):
            left, right = self.operand(node.left), self.operand(node.right)
            self.check_distinct(node.op, (left, right))
            if node.op not in ("=", "<>"):
                self.check_ordered(node.op, (left, right))
            return Compare(node.op, left, right)
        if isinstance(node, Between):
            subject, low, high = (self.operand(x) for x in (node.subject, node.low, node.high))
            self.check_ordered("BETWEEN", (subject, low, high))
            self.check_between(low, high)
            return Between(subject, low, high)
        if isinstance(node, In):
            subject = self.operand(node.subject)
            return In(subject, tuple(self.operand(x) for x in node.options))
        if isinstance(node, Call):
            return self.call(node)
        raise AssertionError(f"unexpected condition node {node!r}")

    def operand(self, op: Operand) -> Operand:
        if isinstance(op, Path):
            return self.path(op)
        if isinstance(op, ValueRef):
            return self.value(op)
        if isinstance(op, Call):
            return self.call(op)
        return op

    def call(self, node: Call) -> Call:
        args = tuple(self.operand(a) for a in node.args)
        self.check_function(node.name, args)
        return Call(node.name, args)

    def check_distinct(self, name: str, args: tuple[Operand, ...]) -> None:
        if len(args) != 2:
            return
        a, b = args
        if isinstance(a, Path) and isinstance(b, Path) and a.elements == b.elements:
            self.note(
                "distinct",
                "The first operand must be distinct from the remaining operands for this operator "
                f"or function; operator: {name}, first operand: {path_str(a.elements)}",
            )

    def check_ordered(self, name: str, args: tuple[Operand, ...]) -> None:
        """Operands of <, <=, >, >= and BETWEEN must be able to be ordered: S, N or B."""
        if "function" in self.errors:
            return
        for a in args:
            t = _static_type(a)
            if t is not None and t not in ("S", "N", "B"):
                self.note("function", _operand_type_error(name, t))
                return

    def check_between(self, low: Operand, high: Operand) -> None:
        if "function" in self.errors:
            return
        if not isinstance(low, Literal) or not isinstance(high, Literal):
            return
        t1, t2 = type_of(low.value), type_of(high.value)
        bounds = (
            f"lower bound operand: AttributeValue: {_av_text(low.value)}, "
            f"upper bound operand: AttributeValue: {_av_text(high.value)}"
        )
        if t1 != t2:
            self.note(
                "function",
                f"The BETWEEN operator requires same data type for lower and upper bounds; {bounds}",
            )
        elif (compare(low.value, high.value) or 0) > 0:
            self.note(
                "function",
                "The BETWEEN operator requires upper bound to be greater than or equal to lower "
                f"bound; {bounds}",
            )

    def check_function(self, name: str, args: tuple[Operand, ...]) -> None:
        arity = CONDITION_FUNCTIONS.get(name)
        if arity is None:
            return  # reported statically as an unknown function
        if "operand" in self.errors:
            return
        if arity != len(args):
            self.note(
                "operand",
                "Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}",
            )
            return
        self.check_distinct(name, args)
        if "function" in self.errors:
            return
        if name in ("attribute_exists", "attribute_not_exists"):
            if not isinstance(args[0], Path):
                self.note(
                    "function",
                    f"Operator or function requires a document path; operator or function: {name}",
                )
        elif name == "begins_with":
            for a in args:
                t = _static_type(a)
                if t is not None and t not in ("S", "B"):
                    self.note("function", _operand_type_error(name, t))
                    return
        elif name == "attribute_type":
            t = _static_type(args[1])
            if t != "S":
                self.note(
                    "function", _operand_type_error(name, t or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")
                )
                return
            assert isinstance(args[1], Literal)
            type_name = args[1].value["S"]
            if type_name not in VALID_TYPE_NAMES:
                self.note(
                    "function",
                    f"Invalid attribute type name found; type: {type_name}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                )
        elif name == "size":
            t = _static_type(args[0])
            if t in ("N", "BOOL", "NULL"):
                self.note("function", _operand_type_error(name, t))


def resolve_condition(tree: CondNode, scope: Scope) -> CondNode:
    return _ConditionResolver(scope).condition(tree)


# -- updates ------------------------------------------------------------------------------------

_UPDATE_ORDER = ("attrName", "attrVal", "pathOverlap", "pathConflict", "operand", "function")
_OPERAND_TYPE_NAMES = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
    "L": "LIST",
    "M": "MAP",
}


def check_paths(resolver: _Resolver, paths: list[tuple[Any, ...]], path: tuple[Any, ...]) -> None:
    """Record overlap/conflict of ``path`` with earlier paths, then remember it."""
    if "pathOverlap" in resolver.errors:
        return
    for other in paths:
        for a, b in zip(other, path, strict=False):
            if isinstance(a, int) != isinstance(b, int):
                resolver.note(
                    "pathConflict",
                    "Two document paths conflict with each other; must remove or rewrite one of "
                    f"these paths; path one: {path_str(other)}, path two: {path_str(path)}",
                )
                break
            if a != b:
                break
        else:
            resolver.note(
                "pathOverlap",
                "Two document paths overlap with each other; must remove or rewrite one of these "
                f"paths; path one: {path_str(other)}, path two: {path_str(path)}",
            )
            return
    paths.append(path)


class _UpdateResolver(_Resolver):
    def __init__(self, scope: Scope) -> None:
        super().__init__(scope, split_name_value=True)
        self.paths: list[tuple[Any, ...]] = []

    def action(self, action: Action) -> Action:
        path = self.path(action.path)
        out: Action
        if isinstance(action, SetAction):
            out = SetAction(path, self.operand(action.value))
        elif isinstance(action, RemoveAction):
            out = RemoveAction(path)
        else:
            value = self.operand(action.value)
            operator = "ADD" if isinstance(action, AddAction) else "DELETE"
            if "operand" not in self.errors and isinstance(value, Literal) and "attrVal" not in self.errors:
                t = type_of(value.value)
                mapped = _OPERAND_TYPE_NAMES.get(t)
                if mapped is not None and not (operator == "ADD" and t == "N"):
                    self.note(
                        "operand",
                        "Incorrect operand type for operator or function; "
                        f"operator: {operator}, operand type: {mapped}",
                    )
            if isinstance(action, AddAction):
                out = AddAction(path, value, action.legacy)
            else:
                out = DeleteAction(path, value)
        check_paths(self, self.paths, path.elements)
        return out

    def operand(self, op: Operand) -> Operand:
        if isinstance(op, Path):
            return self.path(op)
        if isinstance(op, ValueRef):
            return self.value(op)
        if isinstance(op, Arith):
            left, right = self.operand(op.left), self.operand(op.right)
            self.check_function(op.op, (left, right))
            return Arith(op.op, left, right)
        if isinstance(op, Call):
            args = tuple(self.operand(a) for a in op.args)
            self.check_function(op.name, args)
            return Call(op.name, args)
        return op

    def check_function(self, name: str, args: tuple[Operand, ...]) -> None:
        if "function" in self.errors:
            return
        if len(args) != 2:
            self.note(
                "function",
                "Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}",
            )
            return
        if name == "if_not_exists":
            if not isinstance(args[0], Path):
                self.note(
                    "function",
                    f"Operator or function requires a document path; operator or function: {name}",
                )
            return
        wanted = "L" if name == "list_append" else "N"
        for a in args:
            if isinstance(a, Literal):
                t = type_of(a.value)
                if t != wanted:
                    self.note("function", _operand_type_error(name, t))
                    return


def resolve_update(actions: tuple[Action, ...], scope: Scope) -> tuple[Action, ...]:
    r = _UpdateResolver(scope)
    out = tuple(r.action(a) for a in actions)
    r.raise_first(_UPDATE_ORDER)
    return out


# -- projections --------------------------------------------------------------------------------

_PROJECTION_ORDER = ("attrNameVal", "pathOverlap", "pathConflict")


def resolve_projection(paths: tuple[Path, ...], scope: Scope) -> tuple[Path, ...]:
    r = _Resolver(scope)
    out = tuple(r.path(p) for p in paths)
    seen: list[tuple[Any, ...]] = []
    for p in out:
        check_paths(r, seen, p.elements)
    r.raise_first(_PROJECTION_ORDER)
    return out
