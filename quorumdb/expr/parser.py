"""Recursive-descent parsers for condition, update and projection expressions.

Each parser turns text into an unresolved syntax tree (``quorumdb.expr.ast``) plus the first
*static* error, i.e. one that depends on the text alone (redundant parentheses, unknown or
misused functions, reserved words, repeated update sections). Errors that depend on the
request's placeholders are found later by ``resolve``, which keeps DynamoDB's precedence.
Results are cached by text in bounded LRU caches, so a parser must never look at a request.

Grammar (DynamoDB's, case-insensitive keywords)::

    condition  := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | primary
    primary    := "(" or ")" | comparison
    comparison := operand comparator operand
                | operand "BETWEEN" operand "AND" operand
                | operand "IN" "(" operand ("," operand)* ")"
                | call
    operand    := "(" operand ")" | call | :value | path
    call       := name "(" operand ("," operand)* ")"
    path       := (name | #name) ("." (name | #name) | "[" digits "]")*

    update     := section+
    section    := "SET" set ("," set)* | "REMOVE" path ("," path)*
                | "ADD" path :value ("," path :value)* | "DELETE" path :value (...)*
    set        := path "=" ("(" value ")" | value)
    value      := uoperand (("+" | "-") uoperand)?
    uoperand   := "(" uoperand ")" | call | :value | path

    projection := path ("," path)*
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from quorumdb.expr.ast import (
    Action,
    AddAction,
    Arith,
    Between,
    Call,
    Compare,
    CondNode,
    DeleteAction,
    In,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Placeholder,
    RemoveAction,
    SetAction,
    ValueRef,
)
from quorumdb.expr.ast import And as AndNode
from quorumdb.expr.lexer import Kind, Token, syntax_message, tokenize
from quorumdb.expr.reserved import is_reserved

__all__ = [
    "ParsedCondition",
    "ParsedUpdate",
    "ParsedProjection",
    "parse_condition",
    "parse_update",
    "parse_projection",
    "CONDITION_FUNCTIONS",
    "UPDATE_FUNCTIONS",
    "MAX_IN_OPERANDS",
    "MAX_NESTING_DEPTH",
    "CACHE_SIZE",
]

CACHE_SIZE = 4096
MAX_IN_OPERANDS = 100
# Parentheses, NOTs and function calls nested in one another, at most. The parser, resolver
# and evaluator recurse once per level; this keeps every expression that fits in 4 KB far
# from Python's recursion limit.
MAX_NESTING_DEPTH = 100
TOO_DEEP = f"The expression is nested too deeply; maximum nesting depth: {MAX_NESTING_DEPTH}"

# Function name -> number of operands.
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}

COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_CONDITION_KEYWORDS = frozenset({"and", "or", "not", "between", "in"})
_UPDATE_KEYWORDS = frozenset({"set", "remove", "add", "delete"})

_CONDITION_ORDER = ("parens", "unknownFunction", "misusedFunction", "reserved", "inLimit")
_UPDATE_ORDER = ("reserved", "unknownFunction", "section")
_PROJECTION_ORDER = ("reserved",)

REDUNDANT_PARENS = "The expression has redundant parentheses;"


@dataclass(frozen=True, slots=True)
class ParsedCondition:
    tree: CondNode | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    actions: tuple[Action, ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class ParsedProjection:
    paths: tuple[Path, ...]
    error: str | None


class _Fail(Exception):
    """A grammar alternative did not match (the furthest position is kept by the parser)."""


class _TooDeep(Exception):
    """Nesting beyond ``MAX_NESTING_DEPTH``: the whole expression is refused."""


@dataclass(frozen=True, slots=True)
class _Group:
    """A parenthesized node, kept only while parsing to spot redundant parentheses."""

    inner: object


def _unwrap(node: object) -> object:
    while isinstance(node, _Group):
        node = node.inner
    return node


class _Parser:
    def __init__(self, text: str, keywords: frozenset[str]) -> None:
        self.text = text
        self.toks: tuple[Token, ...] = tokenize(text)
        self.pos = 0
        self.furthest = 0
        self.keywords = keywords
        self.errors: dict[str, str] = {}
        self.depth = 0  # nesting levels open at ``pos`` (restored where the parser backtracks)

    # -- token helpers -------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        i = min(self.pos + k, len(self.toks) - 1)
        return self.toks[i]

    def fail(self) -> NoReturn:
        if self.pos > self.furthest:
            self.furthest = self.pos
        raise _Fail

    def is_op(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind is Kind.OP and t.text == text

    def expect_op(self, text: str) -> None:
        if not self.is_op(text):
            self.fail()
        self.pos += 1

    def is_kw(self, word: str) -> bool:
        t = self.peek()
        return t.kind is Kind.NAME and t.text.lower() == word

    def at_end(self) -> bool:
        return self.peek().kind is Kind.EOF

    def nest(self) -> None:
        """Enter one nesting level (leave it with ``self.depth -= 1``)."""
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise _TooDeep

    def note(self, category: str, message: str) -> None:
        self.errors.setdefault(category, message)

    def syntax_error(self) -> str:
        return syntax_message(self.text, self.toks, min(self.furthest, len(self.toks) - 1))

    def first_error(self, order: tuple[str, ...]) -> str | None:
        for category in order:
            if category in self.errors:
                return self.errors[category]
        return None

    # -- paths -----------------------------------------------------------------------------
    def path_name(self) -> PathElement:
        t = self.peek()
        if t.kind is Kind.NAME and t.text.lower() not in self.keywords:
            self.pos += 1
            if is_reserved(t.text):
                self.note("reserved", f"Attribute name is a reserved keyword; reserved keyword: {t.text}")
            return t.text
        if t.kind is Kind.NAME_REF:
            self.pos += 1
            return Placeholder(t.text)
        self.fail()

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while True:
            if self.is_op("["):
                self.pos += 1
                t = self.peek()
                if t.kind is not Kind.NUMBER:
                    self.fail()
                self.pos += 1
                self.expect_op("]")
                elements.append(int(t.text))
            elif self.is_op("."):
                self.pos += 1
                elements.append(self.path_name())
            else:
                return Path(tuple(elements))

    def is_call(self) -> bool:
        t = self.peek()
        return t.kind is Kind.NAME and t.text.lower() not in self.keywords and self.is_op("(", 1)

    # -- condition grammar -----------------------------------------------------------------
    def condition(self) -> CondNode:
        node = self.or_expr()
        if not self.at_end():
            self.fail()
        return self.cond(node)

    def cond(self, node: object) -> CondNode:
        """A node used as a condition: a bare size() is not one."""
        inner = _unwrap(node)
        if isinstance(inner, Call) and inner.name == "size":
            self.note("misusedFunction", _misused("size"))
        return inner  # type: ignore[return-value]

    def or_expr(self) -> object:
        left = self.and_expr()
        while self.is_kw("or"):
            self.pos += 1
            right = self.and_expr()
            left = Or(self.cond(left), self.cond(right))
        return left

    def and_expr(self) -> object:
        left = self.not_expr()
        while self.is_kw("and"):
            self.pos += 1
            right = self.not_expr()
            left = AndNode(self.cond(left), self.cond(right))
        return left

    def not_expr(self) -> object:
        if self.is_kw("not"):
            self.pos += 1
            self.nest()
            node = Not(self.cond(self.not_expr()))
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> object:
        if self.is_op("("):
            save, saved_errors, depth = self.pos, dict(self.errors), self.depth
            try:
                self.pos += 1
                self.nest()
                inner = self.or_expr()
                self.expect_op(")")
            except _Fail:
                self.pos, self.errors, self.depth = save, saved_errors, depth
            else:
                self.depth -= 1
                if isinstance(inner, _Group):
                    self.note("parens", REDUNDANT_PARENS)
                return _Group(inner)
        return self.comparison()

    def arg(self, node: object) -> Operand:
        """An operand of a comparator, BETWEEN, IN or condition function."""
        inner = _unwrap(node)
        if isinstance(inner, Call) and inner.name != "size":
            self.note("misusedFunction", _misused(inner.name))
        return inner  # type: ignore[return-value]

    def comparison(self) -> object:
        left = self.operand()
        t = self.peek()
        if t.kind is Kind.OP and t.text in COMPARATORS:
            self.pos += 1
            right = self.operand()
            return Compare(t.text, self.arg(left), self.arg(right))
        if self.is_kw("between"):
            self.pos += 1
            low = self.operand()
            if not self.is_kw("and"):
                self.fail()
            self.pos += 1
            high = self.operand()
            return Between(self.arg(left), self.arg(low), self.arg(high))
        if self.is_kw("in"):
            self.pos += 1
            self.expect_op("(")
            options = [self.operand()]
            while self.is_op(","):
                self.pos += 1
                options.append(self.operand())
            self.expect_op(")")
            if len(options) > MAX_IN_OPERANDS:
                self.note(
                    "inLimit",
                    f"The IN operator is provided with too many operands; number of operands: {len(options)}",
                )
            return In(self.arg(left), tuple(self.arg(o) for o in options))
        if isinstance(left, Call):
            return left
        self.fail()

    def operand(self) -> object:
        t = self.peek()
        if t.kind is Kind.OP and t.text == "(":
            self.pos += 1
            self.nest()
            inner = self.operand()
            self.expect_op(")")
            self.depth -= 1
            if isinstance(inner, _Group):
                self.note("parens", REDUNDANT_PARENS)
            return _Group(inner)
        if self.is_call():
            return self.call(CONDITION_FUNCTIONS, self.operand, condition=True)
        if t.kind is Kind.VALUE_REF:
            self.pos += 1
            return ValueRef(t.text)
        if t.kind is Kind.NAME or t.kind is Kind.NAME_REF:
            return self.path()
        self.fail()

    def call(self, functions: dict[str, int], parse_operand: Callable[[], object], *, condition: bool) -> Call:
        name = self.peek().text
        self.pos += 2
        self.nest()
        raw = [parse_operand()]
        while self.is_op(","):
            self.pos += 1
            raw.append(parse_operand())
        self.expect_op(")")
        self.depth -= 1
        if condition:
            args = tuple(self.arg(a) for a in raw)
        else:
            args = tuple(_unwrap(a) for a in raw)  # type: ignore[misc]
        if name not in functions:
            self.note("unknownFunction", f"Invalid function name; function: {name}")
        return Call(name, args)

    # -- update grammar --------------------------------------------------------------------
    def update(self) -> tuple[Action, ...]:
        actions: list[Action] = []
        seen: set[str] = set()
        if self.at_end():
            self.fail()
        while not self.at_end():
            t = self.peek()
            if t.kind is not Kind.NAME or t.text.lower() not in _UPDATE_KEYWORDS:
                self.fail()
            section = t.text.upper()
            self.pos += 1
            if section in seen:
                self.note(
                    "section",
                    f'The "{section}" section can only be used once in an update expression;',
                )
            seen.add(section)
            actions.append(self.update_action(section))
            while self.is_op(","):
                self.pos += 1
                actions.append(self.update_action(section))
        return tuple(actions)

    def update_action(self, section: str) -> Action:
        path = self.path()
        if section == "SET":
            self.expect_op("=")
            return SetAction(path, self.set_value())
        if section == "REMOVE":
            return RemoveAction(path)
        t = self.peek()
        if t.kind is not Kind.VALUE_REF:
            self.fail()
        self.pos += 1
        if section == "ADD":
            return AddAction(path, ValueRef(t.text))
        return DeleteAction(path, ValueRef(t.text))

    def set_value(self) -> Operand:
        if self.is_op("("):
            save, saved_errors, depth = self.pos, dict(self.errors), self.depth
            try:
                self.pos += 1
                self.nest()
                value = self.arith()
                self.expect_op(")")
                self.depth -= 1
                return value
            except _Fail:
                self.pos, self.errors, self.depth = save, saved_errors, depth
        return self.arith()

    def arith(self) -> Operand:
        left = self.uoperand()
        t = self.peek()
        if t.kind is Kind.OP and t.text in ("+", "-"):
            self.pos += 1
            right = self.uoperand()
            return Arith(t.text, left, right)
        return left

    def uoperand(self) -> Operand:
        t = self.peek()
        if t.kind is Kind.OP and t.text == "(":
            self.pos += 1
            self.nest()
            inner = self.uoperand()
            self.expect_op(")")
            self.depth -= 1
            return inner
        if self.is_call():
            return self.call(UPDATE_FUNCTIONS, self.uoperand, condition=False)
        if t.kind is Kind.VALUE_REF:
            self.pos += 1
            return ValueRef(t.text)
        if t.kind is Kind.NAME or t.kind is Kind.NAME_REF:
            return self.path()
        self.fail()

    # -- projection grammar ----------------------------------------------------------------
    def projection(self) -> tuple[Path, ...]:
        paths = [self.path()]
        while self.is_op(","):
            self.pos += 1
            paths.append(self.path())
        if not self.at_end():
            self.fail()
        return tuple(paths)


def _misused(name: str) -> str:
    return f"The function is not allowed to be used this way in an expression; function: {name}"


@lru_cache(maxsize=CACHE_SIZE)
def parse_condition(text: str) -> ParsedCondition:
    """Parse a Condition/Filter/KeyCondition expression (without the ``Invalid X:`` prefix)."""
    p = _Parser(text, _CONDITION_KEYWORDS)
    try:
        tree = p.condition()
    except _Fail:
        return ParsedCondition(None, p.syntax_error())
    except _TooDeep:
        return ParsedCondition(None, TOO_DEEP)
    return ParsedCondition(tree, p.first_error(_CONDITION_ORDER))


@lru_cache(maxsize=CACHE_SIZE)
def parse_update(text: str) -> ParsedUpdate:
    p = _Parser(text, _UPDATE_KEYWORDS)
    try:
        actions = p.update()
    except _Fail:
        return ParsedUpdate((), p.syntax_error())
    except _TooDeep:
        return ParsedUpdate((), TOO_DEEP)
    return ParsedUpdate(actions, p.first_error(_UPDATE_ORDER))


@lru_cache(maxsize=CACHE_SIZE)
def parse_projection(text: str) -> ParsedProjection:
    p = _Parser(text, frozenset())
    try:
        paths = p.projection()
    except _Fail:
        return ParsedProjection((), p.syntax_error())
    return ParsedProjection(paths, p.first_error(_PROJECTION_ORDER))
