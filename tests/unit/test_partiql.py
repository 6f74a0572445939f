"""The PartiQL package: lexer and parser (trees and errors with positions), binding to the
expression language, and what a WHERE clause says about a key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.expr import Condition
from quorumdb.expr import ast as ex
from quorumdb.model.schema import KeyAttr
from quorumdb.model.types import SortKeyRange
from quorumdb.partiql import PartiQLSyntaxError, Pos, bind, keys, parse
from quorumdb.partiql.ast import (
    And,
    Arith,
    Between,
    Compare,
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
    Or,
    Param,
    RemoveClause,
    Scalar,
    Select,
    SetClause,
    SetValue,
    Update,
)
from quorumdb.partiql.lexer import Kind, tokenize


def P(*elements: str | int) -> ex.Path:
    return ex.Path(tuple(elements))


def strip_pos(node: Any) -> Any:
    """The tree with every position replaced by (0, 0), to compare shapes."""
    if isinstance(node, Pos):
        return Pos(0, 0)
    if isinstance(node, tuple):
        return tuple(strip_pos(x) for x in node)
    if hasattr(node, "__dataclass_fields__") and not isinstance(node, ex.Path):
        return type(node)(**{f: strip_pos(getattr(node, f)) for f in node.__dataclass_fields__})
    return node


Z = Pos(0, 0)


def S(text: str) -> Scalar:
    return Scalar("S", text, Z)


def N(text: str) -> Scalar:
    return Scalar("N", text, Z)


# -- lexer ---------------------------------------------------------------------------------------


def test_tokens_with_positions() -> None:
    toks = tokenize("SELECT \"a\"\"b\" -- note\n  FROM 'it''s' <<1.5e3>> ?")
    assert [(t.kind, t.text, t.pos.line, t.pos.column) for t in toks] == [
        (Kind.WORD, "SELECT", 1, 1),
        (Kind.QUOTED, 'a"b', 1, 8),
        (Kind.WORD, "FROM", 2, 3),
        (Kind.STRING, "it's", 2, 8),
        (Kind.PUNCT, "<<", 2, 16),
        (Kind.NUMBER, "1.5e3", 2, 18),
        (Kind.PUNCT, ">>", 2, 23),
        (Kind.PARAM, "?", 2, 26),
        (Kind.EOF, "", 2, 27),
    ]


# -- parser: trees ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree", "params"),
    [
        (
            'SELECT * FROM "Music" WHERE Artist = ? AND Song >= \'B\'',
            Select(
                table="Music",
                index=None,
                projection=None,
                where=And(Compare("=", P("Artist"), Param(0, Z)), Compare(">=", P("Song"), S("B"))),
            ),
            1,
        ),
        (
            'select a, b.c[2], "x-y"[0]. d from t."ix" where a between -1 and +2 '
            "or not b in [1, 'x'] and c is not missing order by a desc;",
            Select(
                table="t",
                index="ix",
                projection=(P("a"), P("b", "c", 2), P("x-y", 0, "d")),
                where=Or(
                    Between(P("a"), N("-1"), N("2")),
                    And(Not(In(P("b"), (N("1"), S("x")))), IsMissing(P("c"), True)),
                ),
                order_by=P("a"),
                descending=True,
            ),
            0,
        ),
        (
            "SELECT * FROM t WHERE a NOT BETWEEN 1 AND 2 AND b NOT IN (?, ?) AND m['k'] IS NULL "
            "AND (size(s) > 1 OR begins_with(s, 'p')) AND x != y",
            Select(
                table="t",
                index=None,
                projection=None,
                where=And(
                    And(
                        And(
                            And(
                                Not(Between(P("a"), N("1"), N("2"))),
                                Not(In(P("b"), (Param(0, Z), Param(1, Z)))),
                            ),
                            IsNull(P("m", "k"), False),
                        ),
                        Or(
                            Compare(">", Func("size", (P("s"),), Z), N("1")),
                            Func("begins_with", (P("s"), S("p")), Z),
                        ),
                    ),
                    Compare("<>", P("x"), P("y")),
                ),
            ),
            2,
        ),
        (
            "INSERT INTO t VALUE {'k': 'v', 'n': 1e2, 's': <<1, 2>>, 'l': [true, FALSE, NULL], "
            "'m': {}, 'p': ?}",
            Insert(
                table="t",
                value=MapValue(
                    (
                        ("k", S("v")),
                        ("n", N("1e2")),
                        ("s", SetValue((N("1"), N("2")), Z)),
                        (
                            "l",
                            ListValue(
                                (Scalar("BOOL", "true", Z), Scalar("BOOL", "false", Z), Scalar("NULL", "null", Z)),
                                Z,
                            ),
                        ),
                        ("m", MapValue((), Z)),
                        ("p", Param(0, Z)),
                    ),
                    Z,
                ),
            ),
            1,
        ),
        (
            "UPDATE t SET a = a + 1, b = list_append(b, [1]) SET c = set_add(c, <<'x'>>) "
            "REMOVE d.e[2], f WHERE pk = 'k' RETURNING MODIFIED OLD *",
            Update(
                table="t",
                clauses=(
                    SetClause(P("a"), Arith("+", P("a"), N("1"))),
                    SetClause(P("b"), Func("list_append", (P("b"), ListValue((N("1"),), Z)), Z)),
                    SetClause(P("c"), Func("set_add", (P("c"), SetValue((S("x"),), Z)), Z)),
                    RemoveClause(P("d", "e", 2)),
                    RemoveClause(P("f")),
                ),
                where=Compare("=", P("pk"), S("k")),
                returning="MODIFIED OLD",
            ),
            0,
        ),
        (
            "DELETE FROM t WHERE pk = 'k' RETURNING ALL OLD *",
            Delete(table="t", where=Compare("=", P("pk"), S("k")), returning="ALL OLD"),
            0,
        ),
        (
            "EXISTS (SELECT * FROM t WHERE pk = 'k')",
            Exists(
                select=Select(table="t", index=None, projection=None, where=Compare("=", P("pk"), S("k")))
            ),
            0,
        ),
    ],
)
def test_parse_trees(text: str, tree: Any, params: int) -> None:
    parsed = parse(text)
    assert strip_pos(parsed.statement) == tree
    assert parsed.param_count == params


def test_parse_is_cached_by_text() -> None:
    text = "SELECT * FROM t WHERE a = 1"
    assert parse(text) is parse(text)


# -- parser: errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "detail", "line", "column"),
    [
        ("SELECT * FRM t", "Expected FROM, found 'FRM'", 1, 10),
        ("SELECT FROM t", "Expected '*' or a document path, found 'FROM'", 1, 8),
        ("SELECT * FROM t WHERE", "Expected a value, found end of statement", 1, 22),
        ("SELECT * FROM t WHERE a = 'x", "Unterminated string", 1, 27),
        ("SELECT * FROM t WHERE a @ 1", "Unexpected character '@'", 1, 25),
        ("SELECT *\nFROM t\n  WHERE a = 1 1", "Expected end of statement, found '1'", 3, 15),
        ("UPDATE t WHERE a = 1", "Expected SET or REMOVE, found 'WHERE'", 1, 10),
        ("SELECT * FROM t WHERE foo(a)", "Unknown function 'foo'", 1, 23),
        ("SELECT * FROM t WHERE size(a, b) > 1", "Function 'size' takes 1 arguments, not 2", 1, 23),
        ("SELECT * FROM t WHERE a", "Expected a comparison operator, BETWEEN, IN or IS, found end of statement", 1, 24),
        ("SELECT * FROM t WHERE 1 IS MISSING", "Expected a document path before IS, found '1'", 1, 23),
        ("SELECT * FROM select", "Expected a table name, found 'select'", 1, 15),
        ("INSERT INTO t VALUE {k: 1}", "Expected a 'string' key, found 'k'", 1, 22),
        ("INSERT INTO t VALUE <<>>", "A set can not be empty", 1, 21),
        ("DELETE FROM t WHERE a = 1 RETURNING ALL NEW *", "Expected OLD, found 'NEW'", 1, 41),
        ("DROP TABLE t", "Expected SELECT, INSERT, UPDATE, DELETE or EXISTS, found 'DROP'", 1, 1),
        ('SELECT * FROM "t', "Unterminated quoted identifier", 1, 15),
    ],
)
def test_parse_errors_have_positions(text: str, detail: str, line: int, column: int) -> None:
    with pytest.raises(PartiQLSyntaxError) as err:
        parse(text)
    assert err.value.detail == detail
    assert err.value.pos == Pos(line, column)
    assert str(err.value) == f"{detail} at line {line}, column {column}"


# -- binding ------------------------------------------------------------------------------------------


def test_bind_values() -> None:
    stmt = parse("INSERT INTO t VALUE {'n': -0.50, 's': <<'a', ?>>, 'l': [?, {'x': null}]}")
    params = bind.bind_parameters(stmt.param_count, [{"S": "b"}, {"N": "007"}])
    assert isinstance(stmt.statement, Insert)
    assert bind.bind_value(stmt.statement.value, params) == {
        "M": {
            "n": {"N": "-0.5"},
            "s": {"SS": ["a", "b"]},
            "l": {"L": [{"N": "7"}, {"M": {"x": {"NULL": True}}}]},
        }
    }


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        ("SELECT * FROM t WHERE a = ?", [], bind.PARAMETER_COUNT_MISMATCH),
        ("SELECT * FROM t WHERE a = 1", [{"S": "x"}], bind.PARAMETER_COUNT_MISMATCH),
        ("INSERT INTO t VALUE {'s': <<1, 'a'>>}", [], "A set must contain elements of one of the types"),
        ("INSERT INTO t VALUE {'s': <<'a', 'a'>>}", [], "contains duplicates"),
        ("INSERT INTO t VALUE {'k': 1, 'k': 2}", [], "Duplicate key in map literal: 'k'"),
        ("INSERT INTO t VALUE {'n': 1e200}", [], "Number overflow"),
        ("INSERT INTO t VALUE {'n': ?}", [{"N": "x"}], "cannot be converted into a number"),
    ],
)
def test_bind_errors(text: str, params: list[Any], message: str) -> None:
    parsed = parse(text)
    with pytest.raises(ValidationError) as err:
        bound = bind.bind_parameters(parsed.param_count, params)
        assert isinstance(parsed.statement, Insert)
        bind.bind_value(parsed.statement.value, bound)
    assert message in err.value.message


def where_of(text: str, *params: Any) -> ex.CondNode:
    parsed = parse(text)
    assert isinstance(parsed.statement, Select) and parsed.statement.where is not None
    return bind.condition(parsed.statement.where, bind.bind_parameters(parsed.param_count, list(params)))


ITEM = {
    "a": {"N": "3"},
    "s": {"S": "prefix-1"},
    "tags": {"SS": ["x", "y"]},
    "doc": {"M": {"list": {"L": [{"N": "1"}, {"S": "two"}]}, "nothing": {"NULL": True}}},
}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("a = 3", True),
        ("a <> 3", False),
        ("a BETWEEN 1 AND 3", True),
        ("a IN [1, 2]", False),
        ("a NOT IN [1, 2]", True),
        ("begins_with(s, 'prefix')", True),
        ("contains(tags, 'y') AND size(tags) = 2", True),
        ("attribute_type(doc, 'M')", True),
        ("doc.list[1] = 'two' AND doc['list'][0] < 2", True),
        ("doc.nothing IS NULL AND doc.list IS NOT NULL", True),
        ("missing_attr IS MISSING", True),
        ("missing_attr IS NOT MISSING OR NOT a > 2", False),
        ("3 = a", True),
    ],
)
def test_conditions_evaluate_through_the_expression_language(where: str, expected: bool) -> None:
    node = where_of(f"SELECT * FROM t WHERE {where}")
    assert Condition(node).evaluate(ITEM) is expected


def test_condition_checks_come_from_the_expression_resolver() -> None:
    with pytest.raises(ValidationError) as err:
        where_of("SELECT * FROM t WHERE a BETWEEN 5 AND 1")
    assert "The BETWEEN operator requires upper bound to be greater than or equal to lower bound" in err.value.message


def test_update_clauses_become_update_actions() -> None:
    parsed = parse(
        "UPDATE t SET n = n + ?, l = list_append(l, [2]) SET s = set_add(s, <<'z'>>), "
        "d = set_delete(d, <<1>>) REMOVE gone WHERE pk = 'k'"
    )
    assert isinstance(parsed.statement, Update)
    update = bind.update(parsed.statement.clauses, [{"N": "2"}])
    old = {"n": {"N": "1"}, "l": {"L": [{"N": "1"}]}, "s": {"SS": ["y"]}, "d": {"NS": ["1", "2"]}, "gone": {"S": "x"}}
    assert update.apply(old) == {
        "n": {"N": "3"},
        "l": {"L": [{"N": "1"}, {"N": "2"}]},
        "s": {"SS": ["y", "z"]},
        "d": {"NS": ["2"]},
    }


def test_set_functions_must_target_the_attribute_set() -> None:
    parsed = parse("UPDATE t SET s = set_add(other, <<'z'>>) WHERE pk = 'k'")
    assert isinstance(parsed.statement, Update)
    with pytest.raises(ValidationError) as err:
        bind.update(parsed.statement.clauses, [])
    assert "set_add must be applied to the attribute being set" in err.value.message


def test_update_checks_come_from_the_expression_resolver() -> None:
    parsed = parse("UPDATE t SET a = 1 SET a.b = 2 WHERE pk = 'k'")
    assert isinstance(parsed.statement, Update)
    with pytest.raises(ValidationError) as err:
        bind.update(parsed.statement.clauses, [])
    assert "Two document paths overlap with each other" in err.value.message


# -- keys ---------------------------------------------------------------------------------------------

PK = KeyAttr(name="pk", type="S")
SK = KeyAttr(name="sk", type="N")


def test_key_equalities_and_sort_range() -> None:
    parts = keys.conjuncts(where_of("SELECT * FROM t WHERE x = 1 AND 'a' = pk AND sk > 5 AND pk = 'b'"))
    assert len(parts) == 4
    equal = keys.key_equalities(parts, (PK, SK), typed=True)
    assert equal == {"pk": (1, {"S": "a"})}
    assert keys.sort_range(parts, SK) == SortKeyRange(op="GT", values=({"N": "5"},))
    flipped = keys.conjuncts(where_of("SELECT * FROM t WHERE pk = 'a' AND 5 >= sk"))
    assert keys.sort_range(flipped, SK) == SortKeyRange(op="LE", values=({"N": "5"},))
    between = keys.conjuncts(where_of("SELECT * FROM t WHERE sk BETWEEN 1 AND 2"))
    assert keys.sort_range(between, SK) == SortKeyRange(op="BETWEEN", values=({"N": "1"}, {"N": "2"}))
    prefix = keys.conjuncts(where_of("SELECT * FROM t WHERE begins_with(pk, 'ab')"))
    assert keys.sort_range(prefix, PK) == SortKeyRange(op="BEGINS_WITH", values=({"S": "ab"},))


def test_key_equalities_typed_and_untyped() -> None:
    parts = keys.conjuncts(where_of("SELECT * FROM t WHERE pk = 1 AND sk = 2"))
    assert keys.key_equalities(parts, (PK, SK), typed=True) == {"sk": (1, {"N": "2"})}
    assert keys.key_equalities(parts, (PK, SK), typed=False) == {
        "pk": (0, {"N": "1"}),
        "sk": (1, {"N": "2"}),
    }
    # An equality under OR says nothing about the key.
    ored = keys.conjuncts(where_of("SELECT * FROM t WHERE pk = 'a' OR sk = 2"))
    assert keys.key_equalities(ored, (PK, SK), typed=False) == {}
    assert keys.conjoin([]) is None


# -- robustness ---------------------------------------------------------------------------------------

_PIECES = [
    "SELECT", "INSERT", "INTO", "VALUE", "UPDATE", "SET", "REMOVE", "DELETE", "FROM", "WHERE",
    "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "MISSING", "NULL", "TRUE", "EXISTS", "ORDER",
    "BY", "DESC", "RETURNING", "ALL", "OLD", "NEW", "*", "t", "a", "b", '"q"', "'s'", "1",
    "-2.5", "?", "=", "<>", "<", ">=", "(", ")", "[", "]", "{", "}", "<<", ">>", ",", ".", ":",
    "+", "-", "size", "begins_with", "contains", "attribute_type", "list_append", "set_add",
    "set_delete", "if_not_exists", "'S'", "[0]",
]  # fmt: skip


def _exercise(text: str) -> None:
    try:
        parsed = parse(text)
    except PartiQLSyntaxError:
        return
    params = bind.bind_parameters(parsed.param_count, [{"N": "1"}] * parsed.param_count)
    stmt = parsed.statement
    if isinstance(stmt, Exists):
        stmt = stmt.select
    if isinstance(stmt, Insert):
        bind.bind_value(stmt.value, params)
        return
    if isinstance(stmt, Update):
        bind.update(stmt.clauses, params)
    if stmt.where is not None:
        Condition(bind.condition(stmt.where, params)).evaluate(ITEM)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=25))
def test_any_statement_fails_only_with_dynamodb_errors(pieces: list[str]) -> None:
    for prefix in ("", "SELECT * FROM t WHERE ", "UPDATE t SET a = ", "INSERT INTO t VALUE "):
        try:
            _exercise(prefix + " ".join(pieces))
        except ValidationError:
            pass


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM t WHERE begins_with(a, 'x') = true",
        "SELECT * FROM t WHERE contains(begins_with(a, 'x'), 1)",
        "SELECT * FROM t WHERE a IN [contains(a, 'b')]",
    ],
)
def test_condition_functions_are_not_values(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        where_of(text)
    assert "The function is not allowed to be used this way in an expression" in err.value.message


def test_deep_nesting_is_a_syntax_error() -> None:
    with pytest.raises(PartiQLSyntaxError) as err:
        parse("SELECT * FROM t WHERE " + "(" * 5000 + "a = 1" + ")" * 5000)
    assert err.value.detail == "Statement is nested too deeply"
    with pytest.raises(PartiQLSyntaxError):
        parse("INSERT INTO t VALUE " + "[" * 5000 + "]" * 5000)
