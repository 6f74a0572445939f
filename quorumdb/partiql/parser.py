"""Recursive-descent parser of DynamoDB's PartiQL subset: text -> typed statement tree.

Grammar (keywords case-insensitive; a name is a word that is not a keyword, or "quoted")::

    statement  := (select | insert | update | delete | exists) [";"]
    select     := SELECT ("*" | path ("," path)*) FROM name ["." name]
                  [WHERE cond] [ORDER BY path [ASC | DESC]]
    insert     := INSERT INTO name VALUE value
    update     := UPDATE name clause+ [WHERE cond] [RETURNING (ALL | MODIFIED) (OLD | NEW) "*"]
    clause     := SET path "=" setvalue ("," path "=" setvalue)* | REMOVE path ("," path)*
    setvalue   := operand (("+" | "-") operand)?
    delete     := DELETE FROM name [WHERE cond] [RETURNING ALL OLD "*"]
    exists     := EXISTS "(" select ")"
    cond       := and (OR and)*
    and        := not (AND not)*
    not        := NOT not | "(" cond ")" | predicate
    predicate  := operand ( ("=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") operand
                          | [NOT] BETWEEN operand AND operand
                          | [NOT] IN ("[" | "(") operand ("," operand)* ("]" | ")")
                          | IS [NOT] (MISSING | NULL) )
                | function                                  (a boolean function)
    operand    := function | value | path
    function   := word "(" [operand ("," operand)*] ")"
    path       := name ("." name | "[" digits "]" | "[" 'string' "]")*
    value      := "?" | 'string' | ["-" | "+"] number | TRUE | FALSE | NULL
                | "[" [value ("," value)*] "]" | "{" ['string' ":" value ("," ...)*] "}"
                | "<<" value ("," value)* ">>"

``parse`` returns the statement and its number of ``?`` parameters (numbered in order of
appearance), or raises ``PartiQLSyntaxError`` with the position of the offending token.
Results are cached by text, so the parser never looks at a request or a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from quorumdb.expr.ast import Path
from quorumdb.partiql.ast import (
    And,
    Arith,
    Between,
    Clause,
    Compare,
    Cond,
    Delete,
    Exists,
    Func,
    In,
    Insert,
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
    Select,
    SetClause,
    SetValue,
    Statement,
    Update,
    Value,
)
from quorumdb.partiql.lexer import Kind, PartiQLSyntaxError, Token, tokenize

__all__ = ["Parsed", "parse", "KEYWORDS", "CONDITION_FUNCTIONS", "SET_FUNCTIONS"]

KEYWORDS = frozenset(
    {
        "all", "and", "asc", "between", "by", "delete", "desc", "exists", "false", "from", "in",
        "insert", "into", "is", "missing", "modified", "new", "not", "null", "old", "or", "order",
        "remove", "returning", "select", "set", "true", "update", "value", "where",
    }
)  # fmt: skip
# Function name -> number of arguments.
CONDITION_FUNCTIONS = {"attribute_type": 2, "begins_with": 2, "contains": 2, "size": 1}
SET_FUNCTIONS = {"list_append": 2, "set_add": 2, "set_delete": 2, "if_not_exists": 2}
_COMPARATORS = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})
# Parentheses, NOTs and nested values deeper than this are refused (the parser recurses).
MAX_NESTING = 100


@dataclass(frozen=True, slots=True)
class Parsed:
    statement: Statement
    param_count: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.params = 0
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise PartiQLSyntaxError("Statement is nested too deeply", self.peek().pos)

    # -- tokens ----------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.toks[self.i]
        if t.kind is not Kind.EOF:
            self.i += 1
        return t

    def error(self, expected: str, tok: Token | None = None) -> NoReturn:
        t = tok or self.peek()
        raise PartiQLSyntaxError(f"Expected {expected}, found {t.describe()}", t.pos)

    def is_kw(self, word: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind is Kind.WORD and t.text.lower() == word

    def accept_kw(self, word: str) -> bool:
        if self.is_kw(word):
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            self.error(word.upper())

    def is_punct(self, p: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind is Kind.PUNCT and t.text == p

    def accept_punct(self, p: str) -> bool:
        if self.is_punct(p):
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            self.error(f"'{p}'")

    # -- statements ------------------------------------------------------------------------
    def statement(self) -> Statement:
        t = self.peek()
        word = t.text.lower() if t.kind is Kind.WORD else ""
        out: Statement
        if word == "select":
            out = self.select()
        elif word == "insert":
            out = self.insert()
        elif word == "update":
            out = self.update()
        elif word == "delete":
            out = self.delete()
        elif word == "exists":
            self.i += 1
            self.expect_punct("(")
            out = Exists(select=self.select())
            self.expect_punct(")")
        else:
            self.error("SELECT, INSERT, UPDATE, DELETE or EXISTS")
        self.accept_punct(";")
        if self.peek().kind is not Kind.EOF:
            self.error("end of statement")
        return out

    def name(self, what: str = "a name") -> str:
        t = self.peek()
        if t.kind is Kind.QUOTED or (t.kind is Kind.WORD and t.text.lower() not in KEYWORDS):
            self.i += 1
            return t.text
        self.error(what)

    def select(self) -> Select:
        self.expect_kw("select")
        projection: tuple[Path, ...] | None = None
        if not self.accept_punct("*"):
            t = self.peek()
            if t.kind is not Kind.QUOTED and (t.kind is not Kind.WORD or t.text.lower() in KEYWORDS):
                self.error("'*' or a document path")
            paths = [self.path()]
            while self.accept_punct(","):
                paths.append(self.path())
            projection = tuple(paths)
        self.expect_kw("from")
        table = self.name("a table name")
        index = self.name("an index name") if self.accept_punct(".") else None
        where = self.cond() if self.accept_kw("where") else None
        order_by, descending = None, False
        if self.accept_kw("order"):
            self.expect_kw("by")
            order_by = self.path()
            if self.accept_kw("desc"):
                descending = True
            else:
                self.accept_kw("asc")
        return Select(
            table=table,
            index=index,
            projection=projection,
            where=where,
            order_by=order_by,
            descending=descending,
        )

    def insert(self) -> Insert:
        self.expect_kw("insert")
        self.expect_kw("into")
        table = self.name("a table name")
        self.expect_kw("value")
        return Insert(table=table, value=self.value())

    def update(self) -> Update:
        self.expect_kw("update")
        table = self.name("a table name")
        clauses: list[Clause] = []
        while True:
            if self.accept_kw("set"):
                clauses.append(self.set_clause())
                while self.accept_punct(","):
                    clauses.append(self.set_clause())
            elif self.accept_kw("remove"):
                clauses.append(RemoveClause(self.path()))
                while self.accept_punct(","):
                    clauses.append(RemoveClause(self.path()))
            elif not clauses:
                self.error("SET or REMOVE")
            else:
                break
        where = self.cond() if self.accept_kw("where") else None
        returning = None
        if self.accept_kw("returning"):
            if self.accept_kw("all"):
                which = "ALL"
            elif self.accept_kw("modified"):
                which = "MODIFIED"
            else:
                self.error("ALL or MODIFIED")
            if self.accept_kw("old"):
                returning = which + " OLD"
            else:
                self.expect_kw("new")
                returning = which + " NEW"
            self.expect_punct("*")
        return Update(table=table, clauses=tuple(clauses), where=where, returning=returning)

    def set_clause(self) -> SetClause:
        path = self.path()
        self.expect_punct("=")
        left = self.operand(SET_FUNCTIONS)
        t = self.peek()
        if t.kind is Kind.PUNCT and t.text in ("+", "-"):
            self.i += 1
            return SetClause(path, Arith(t.text, left, self.operand(SET_FUNCTIONS)))
        return SetClause(path, left)

    def delete(self) -> Delete:
        self.expect_kw("delete")
        self.expect_kw("from")
        table = self.name("a table name")
        where = self.cond() if self.accept_kw("where") else None
        returning = None
        if self.accept_kw("returning"):
            self.expect_kw("all")
            self.expect_kw("old")
            self.expect_punct("*")
            returning = "ALL OLD"
        return Delete(table=table, where=where, returning=returning)

    # -- conditions ------------------------------------------------------------------------
    def cond(self) -> Cond:
        left = self.and_cond()
        while self.accept_kw("or"):
            left = Or(left, self.and_cond())
        return left

    def and_cond(self) -> Cond:
        left = self.not_cond()
        while self.accept_kw("and"):
            left = And(left, self.not_cond())
        return left

    def not_cond(self) -> Cond:
        self.enter()
        if self.accept_kw("not"):
            out: Cond = Not(self.not_cond())
        elif self.accept_punct("("):
            out = self.cond()
            self.expect_punct(")")
        else:
            out = self.predicate()
        self.depth -= 1
        return out

    def predicate(self) -> Cond:
        start = self.peek()
        left = self.operand(CONDITION_FUNCTIONS)
        t = self.peek()
        if t.kind is Kind.PUNCT and t.text in _COMPARATORS:
            self.i += 1
            op = "<>" if t.text == "!=" else t.text
            return Compare(op, left, self.operand(CONDITION_FUNCTIONS))
        negated = self.is_kw("not") and (self.is_kw("between", 1) or self.is_kw("in", 1))
        if negated:
            self.i += 1
        if self.accept_kw("between"):
            low = self.operand(CONDITION_FUNCTIONS)
            self.expect_kw("and")
            high = self.operand(CONDITION_FUNCTIONS)
            out: Cond = Between(left, low, high)
            return Not(out) if negated else out
        if self.accept_kw("in"):
            out = In(left, self.in_list())
            return Not(out) if negated else out
        if self.accept_kw("is"):
            if not isinstance(left, Path):
                self.error("a document path before IS", start)
            is_not = self.accept_kw("not")
            if self.accept_kw("missing"):
                return IsMissing(left, is_not)
            if self.accept_kw("null"):
                return IsNull(left, is_not)
            self.error("MISSING or NULL")
        if isinstance(left, Func) and left.name != "size":
            return left
        self.error("a comparison operator, BETWEEN, IN or IS")

    def in_list(self) -> tuple[Operand, ...]:
        if self.accept_punct("["):
            close = "]"
        elif self.accept_punct("("):
            close = ")"
        else:
            self.error("'[' or '('")
        options = [self.operand(CONDITION_FUNCTIONS)]
        while self.accept_punct(","):
            options.append(self.operand(CONDITION_FUNCTIONS))
        self.expect_punct(close)
        return tuple(options)

    # -- operands, paths and values ------------------------------------------------------------
    def operand(self, functions: dict[str, int]) -> Operand:
        t = self.peek()
        if t.kind is Kind.WORD and self.is_punct("(", 1) and t.text.lower() not in KEYWORDS:
            return self.function(functions)
        if t.kind is Kind.WORD and t.text.lower() not in ("true", "false", "null"):
            return self.path()
        if t.kind is Kind.QUOTED:
            return self.path()
        return self.value()

    def function(self, functions: dict[str, int]) -> Func:
        self.enter()
        t = self.take()
        name = t.text.lower()
        if name not in functions:
            raise PartiQLSyntaxError(f"Unknown function '{t.text}'", t.pos)
        self.expect_punct("(")
        args: list[Operand] = []
        if not self.is_punct(")"):
            args.append(self.operand(functions))
            while self.accept_punct(","):
                args.append(self.operand(functions))
        self.expect_punct(")")
        if len(args) != functions[name]:
            raise PartiQLSyntaxError(
                f"Function '{name}' takes {functions[name]} arguments, not {len(args)}", t.pos
            )
        self.depth -= 1
        return Func(name, tuple(args), t.pos)

    def path(self) -> Path:
        elements: list[str | int] = [self.name("a document path")]
        while True:
            if self.accept_punct("."):
                elements.append(self.name("a name after '.'"))
            elif self.is_punct("["):
                self.i += 1
                t = self.peek()
                if t.kind is Kind.NUMBER and t.text.isdigit():
                    elements.append(int(t.text))
                elif t.kind is Kind.STRING:
                    elements.append(t.text)
                else:
                    self.error("a list index or a 'key'")
                self.i += 1
                self.expect_punct("]")
            else:
                return Path(tuple(elements))

    def value(self) -> Value:
        self.enter()
        out = self.value_inner()
        self.depth -= 1
        return out

    def value_inner(self) -> Value:
        t = self.take()
        if t.kind is Kind.PARAM:
            self.params += 1
            return Param(self.params - 1, t.pos)
        if t.kind is Kind.STRING:
            return Scalar("S", t.text, t.pos)
        if t.kind is Kind.NUMBER:
            return Scalar("N", t.text, t.pos)
        if t.kind is Kind.PUNCT and t.text in ("-", "+") and self.peek().kind is Kind.NUMBER:
            number = self.take()
            return Scalar("N", ("-" if t.text == "-" else "") + number.text, t.pos)
        if t.kind is Kind.WORD:
            word = t.text.lower()
            if word in ("true", "false"):
                return Scalar("BOOL", word, t.pos)
            if word == "null":
                return Scalar("NULL", word, t.pos)
        if t.kind is Kind.PUNCT:
            if t.text == "[":
                return ListValue(self.values("]"), t.pos)
            if t.text == "<<":
                items = self.values(">>")
                if not items:
                    raise PartiQLSyntaxError("A set can not be empty", t.pos)
                return SetValue(items, t.pos)
            if t.text == "{":
                return self.map_value(t)
        self.error("a value", t)

    def values(self, close: str) -> tuple[Value, ...]:
        items: list[Value] = []
        if self.accept_punct(close):
            return ()
        items.append(self.value())
        while self.accept_punct(","):
            items.append(self.value())
        self.expect_punct(close)
        return tuple(items)

    def map_value(self, start: Token) -> MapValue:
        entries: list[tuple[str, Value]] = []
        if not self.accept_punct("}"):
            while True:
                k = self.peek()
                if k.kind is not Kind.STRING:
                    self.error("a 'string' key")
                self.i += 1
                self.expect_punct(":")
                entries.append((k.text, self.value()))
                if self.accept_punct("}"):
                    break
                self.expect_punct(",")
        return MapValue(tuple(entries), start.pos)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Parsed | PartiQLSyntaxError:
    p = _Parser(text)
    try:
        statement = p.statement()
    except PartiQLSyntaxError as e:
        return e
    return Parsed(statement, p.params)


def parse(text: str) -> Parsed:
    """The statement in ``text``; raises ``PartiQLSyntaxError`` (with a position) if malformed."""
    out = _parse_cached(text)
    if isinstance(out, PartiQLSyntaxError):
        raise out
    return out
