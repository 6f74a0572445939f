"""Expression parsing and resolution: valid inputs, and DynamoDB's exact error messages and
error precedence for invalid ones."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext
from quorumdb.expr.ast import And, Between, Call, Compare, In, Not, Or, Path, Placeholder, ValueRef
from quorumdb.expr.lexer import Kind, tokenize
from quorumdb.expr.parser import parse_condition, parse_projection, parse_update
from quorumdb.expr.reserved import RESERVED_WORDS, is_reserved

N1 = {"N": "1"}
N2 = {"N": "2"}
S = {"S": "x"}


def run(kind: str, text: str, names: dict | None = None, values: dict | None = None) -> Any:
    ctx = ExpressionContext(names, values)
    out: Any
    if kind == "cond":
        out = ctx.condition(text)
    elif kind == "filter":
        out = ctx.condition(text, "FilterExpression")
    elif kind == "update":
        out = ctx.update(text)
    else:
        out = ctx.projection(text)
    ctx.check_unused()
    return out


def error_of(kind: str, text: str, names: dict | None = None, values: dict | None = None) -> str:
    with pytest.raises(ValidationError) as exc:
        run(kind, text, names, values)
    return exc.value.message


# -- lexer ---------------------------------------------------------------------------------------


def test_tokens() -> None:
    toks = tokenize("a.b[12] <> :v AND #n>=x")
    assert [(t.kind, t.text) for t in toks] == [
        (Kind.NAME, "a"),
        (Kind.OP, "."),
        (Kind.NAME, "b"),
        (Kind.OP, "["),
        (Kind.NUMBER, "12"),
        (Kind.OP, "]"),
        (Kind.OP, "<>"),
        (Kind.VALUE_REF, ":v"),
        (Kind.NAME, "AND"),
        (Kind.NAME_REF, "#n"),
        (Kind.OP, ">="),
        (Kind.NAME, "x"),
        (Kind.EOF, "<EOF>"),
    ]


def test_unknown_characters_become_tokens() -> None:
    toks = tokenize("a-b @ # :")
    assert [(t.kind, t.text) for t in toks][:6] == [
        (Kind.NAME, "a"),
        (Kind.OP, "-"),
        (Kind.NAME, "b"),
        (Kind.UNKNOWN, "@"),
        (Kind.UNKNOWN, "#"),
        (Kind.UNKNOWN, ":"),
    ]


def test_reserved_words_complete() -> None:
    assert len(RESERVED_WORDS) == 573
    for word in ("name", "Size", "STATUS", "data", "count", "year", "zone", "abort", "user"):
        assert is_reserved(word)
    for word in ("pk", "sk", "foo", "attribute_exists", "begins_with"):
        assert not is_reserved(word)


# -- trees ---------------------------------------------------------------------------------------


def test_precedence_and_binds_tighter_than_or() -> None:
    tree = parse_condition("a = :a OR b = :b AND c = :c").tree
    assert isinstance(tree, Or)
    assert isinstance(tree.right, And)


def test_precedence_not_binds_tighter_than_and() -> None:
    tree = parse_condition("NOT a = :a AND b = :b").tree
    assert isinstance(tree, And)
    assert isinstance(tree.left, Not)


def test_parentheses_override_precedence() -> None:
    tree = parse_condition("(a = :a OR b = :b) AND c = :c").tree
    assert isinstance(tree, And)
    assert isinstance(tree.left, Or)


def test_keywords_are_case_insensitive() -> None:
    tree = parse_condition("a between :a and :b or not b in (:c)").tree
    assert isinstance(tree, Or)
    assert isinstance(tree.left, Between)
    assert isinstance(tree.right, Not) and isinstance(tree.right.operand, In)


def test_paths_and_functions() -> None:
    tree = parse_condition("size(a.#b[3].c) > :v").tree
    assert tree == Compare(
        ">", Call("size", (Path(("a", Placeholder("#b"), 3, "c")),)), ValueRef(":v")
    )


def test_whitespace_inside_paths_is_allowed() -> None:
    assert parse_condition("a . b [ 1 ] = :v").error is None


def test_update_tree() -> None:
    parsed = parse_update("set a = :a, b = if_not_exists(b, :z) + :i remove c[1], d.e add f :g delete h :s")
    assert parsed.error is None
    assert [type(a).__name__ for a in parsed.actions] == [
        "SetAction",
        "SetAction",
        "RemoveAction",
        "RemoveAction",
        "AddAction",
        "DeleteAction",
    ]


def test_parse_cache_returns_same_tree() -> None:
    assert parse_condition("a = :cached") is parse_condition("a = :cached")
    assert parse_projection("a, b") is parse_projection("a, b")


# -- error messages -------------------------------------------------------------------------------

CASES: list[tuple[str, str, dict | None, dict | None, str]] = [
    # syntax
    ("cond", "a x", None, None, 'Invalid ConditionExpression: Syntax error; token: "x", near: "a x"'),
    ("cond", "a =", None, None, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "="'),
    ("cond", "a = :v AND", None, {":v": N1}, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"'),
    ("cond", "a-b = :v", None, {":v": N1}, 'Invalid ConditionExpression: Syntax error; token: "-", near: "a-b"'),
    ("cond", "a = :v,", None, {":v": N1}, 'Invalid ConditionExpression: Syntax error; token: ",", near: ":v,"'),
    ("cond", "a == :v", None, {":v": N1}, 'Invalid ConditionExpression: Syntax error; token: "=", near: "== :v"'),
    ("cond", "a IN ()", None, None, 'Invalid ConditionExpression: Syntax error; token: ")", near: "()"'),
    ("cond", "f()", None, None, 'Invalid ConditionExpression: Syntax error; token: ")", near: "()"'),
    ("cond", "a BETWEEN :a", None, {":a": N1}, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":a"'),
    ("cond", "   ", None, None, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ""'),
    ("filter", "a x", None, None, 'Invalid FilterExpression: Syntax error; token: "x", near: "a x"'),
    ("update", "SET a = :a, SET b = :b", None, {":a": N1, ":b": N1}, 'Invalid UpdateExpression: Syntax error; token: "SET", near: ", SET b"'),
    ("update", "SET a", None, None, 'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "a"'),
    ("update", "ADD a b", None, None, 'Invalid UpdateExpression: Syntax error; token: "b", near: "a b"'),
    ("update", "a = :v", None, {":v": N1}, 'Invalid UpdateExpression: Syntax error; token: "a", near: "a ="'),
    ("update", "SET a = :v + :w + :x", None, None, 'Invalid UpdateExpression: Syntax error; token: "+", near: ":w + :x"'),
    ("proj", "a,", None, None, 'Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: ","'),
    ("proj", "user-id", None, None, 'Invalid ProjectionExpression: Syntax error; token: "-", near: "user-id"'),
    ("proj", "a[x]", None, None, 'Invalid ProjectionExpression: Syntax error; token: "x", near: "[x]"'),
    # empty
    ("cond", "", None, None, "Invalid ConditionExpression: The expression can not be empty;"),
    ("update", "", None, None, "Invalid UpdateExpression: The expression can not be empty;"),
    ("proj", "", None, None, "Invalid ProjectionExpression: The expression can not be empty;"),
    # static errors and their order
    ("cond", "((a = :v))", None, {":v": N1}, "Invalid ConditionExpression: The expression has redundant parentheses;"),
    ("cond", "((a)) = :v", None, {":v": N1}, "Invalid ConditionExpression: The expression has redundant parentheses;"),
    ("cond", "foo(a)", None, None, "Invalid ConditionExpression: Invalid function name; function: foo"),
    ("cond", "ATTRIBUTE_EXISTS(a)", None, None, "Invalid ConditionExpression: Invalid function name; function: ATTRIBUTE_EXISTS"),
    ("cond", "size(a)", None, None, "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"),
    ("cond", "size(a) AND b = :v", None, {":v": N1}, "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"),
    ("cond", "attribute_exists(a) = :v", None, {":v": N1}, "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"),
    ("cond", "begins_with(contains(a, :v), :v)", None, {":v": S}, "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: contains"),
    ("cond", "name = :v", None, {":v": N1}, "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
    ("cond", "a.Size = :v", None, {":v": N1}, "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Size"),
    ("cond", "name = :v AND foo(b)", None, None, "Invalid ConditionExpression: Invalid function name; function: foo"),
    ("cond", "((name = :v))", None, None, "Invalid ConditionExpression: The expression has redundant parentheses;"),
    ("update", "SET name = :v", None, {":v": N1}, "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name"),
    ("update", "SET a = foo(b)", None, None, "Invalid UpdateExpression: Invalid function name; function: foo"),
    ("update", "SET a = size(b)", None, None, "Invalid UpdateExpression: Invalid function name; function: size"),
    ("update", "SET a = :a SET b = :b", None, {":a": N1, ":b": N1}, 'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;'),
    ("update", "remove a ADD b :v REMOVE c", None, {":v": N1}, 'Invalid UpdateExpression: The "REMOVE" section can only be used once in an update expression;'),
    ("update", "SET year = foo(b)", None, None, "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: year"),
    ("proj", "a, name", None, None, "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
    # placeholders
    ("cond", "#a = :v", None, {":v": N1}, "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #a"),
    ("cond", "a = :v", None, None, "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v"),
    ("cond", "a = :v AND #b = :w", {"#c": "c"}, None, "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v"),
    ("update", "SET a = :v, #b = :w", None, None, "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #b"),
    ("proj", "#a, b", None, None, "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #a"),
    ("cond", "a = :v", {"#a": "a"}, {":v": N1}, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a}"),
    ("cond", "a = :v", {"#a": "a", "#b": "b"}, {":v": N1}, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"),
    ("cond", "a = :v", None, {":v": N1, ":w": N1}, "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"),
    # operand counts, distinctness, operand types
    ("cond", "attribute_exists(a, b)", None, None, "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"),
    ("cond", "begins_with(a)", None, None, "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"),
    ("cond", "size(a, b) = :v", None, {":v": N1}, "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"),
    ("cond", "a = a", None, None, "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]"),
    ("cond", "a.b[1] < #x.b[1]", {"#x": "a"}, None, "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: <, first operand: [a, b, [1]]"),
    ("cond", "contains(a, a)", None, None, "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a]"),
    ("cond", "attribute_exists(:v)", None, {":v": N1}, "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"),
    ("cond", "attribute_not_exists(size(a))", None, None, "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_not_exists"),
    ("cond", "begins_with(a, :v)", None, {":v": N1}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
    ("cond", "begins_with(size(a), :v)", None, {":v": S}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
    ("cond", "attribute_type(a, :v)", None, {":v": N1}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"),
    ("cond", "attribute_type(a, b)", None, None, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}"),
    ("cond", "attribute_type(a, :v)", None, {":v": {"S": "XX"}}, "Invalid ConditionExpression: Invalid attribute type name found; type: XX, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"),
    ("cond", "size(:v) = :w", None, {":v": N1, ":w": N1}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N"),
    ("cond", "size(:v) = :w", None, {":v": {"BOOL": True}, ":w": N1}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: BOOL"),
    ("cond", "a BETWEEN :a AND :b", None, {":a": N2, ":b": N1}, "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}"),
    ("cond", "a BETWEEN :a AND :b", None, {":a": N1, ":b": S}, "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:x}"),
    # <, <=, >, >= and BETWEEN order S, N and B only: other literal types are refused.
    ("cond", "a < :v", None, {":v": {"L": [N1]}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: L"),
    ("cond", ":v >= a", None, {":v": {"M": {}}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >=, operand type: M"),
    ("cond", "a <= :v", None, {":v": {"SS": ["x"]}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <=, operand type: SS"),
    ("cond", "size(a) > :v", None, {":v": {"BOOL": True}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >, operand type: BOOL"),
    ("cond", "a > :v", None, {":v": {"NULL": True}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >, operand type: NULL"),
    ("cond", "a BETWEEN :v AND :v", None, {":v": {"L": []}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L"),
    ("cond", "a BETWEEN :a AND :v", None, {":a": N1, ":v": {"NS": ["1"]}}, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: NS"),
    ("cond", "a = :v AND b = b", None, None, "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v"),
    ("cond", "a = a AND b = :v", None, None, "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]"),
    # update checks
    ("update", "SET a = :v, a = :w", None, {":v": N1, ":w": N1}, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
    ("update", "SET a = :v REMOVE a.b", None, {":v": N1}, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
    ("update", "SET #x.b = :v REMOVE a", {"#x": "a"}, {":v": N1}, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"),
    ("update", "SET a.b = :v, a[1] = :v", None, {":v": N1}, "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]"),
    ("update", "ADD a :v", None, {":v": S}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
    ("update", "ADD a :v", None, {":v": {"L": []}}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST"),
    ("update", "DELETE a :v", None, {":v": N1}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"),
    ("update", "DELETE a :v", None, {":v": {"M": {}}}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: MAP"),
    ("update", "SET a = :v + :w", None, {":v": N1, ":w": S}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"),
    ("update", "SET a = b - :w", None, {":w": {"SS": ["x"]}}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: -, operand type: SS"),
    ("update", "SET a = list_append(:v, b)", None, {":v": N1}, "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: N"),
    ("update", "SET a = list_append(b)", None, None, "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1"),
    ("update", "SET a = if_not_exists(:v, b)", None, {":v": N1}, "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"),
    ("update", "SET a = :v, a = :v ADD b :s", None, {":v": N1, ":s": S}, "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
    ("update", "SET a = :v ADD b :s", None, None, "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v"),
    ("update", "SET #a = :v", None, None, "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #a"),
    # projection checks
    ("proj", "a, a", None, None, "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
    ("proj", "a.b, a", None, None, "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"),
    ("proj", "a[0], a.b", None, None, "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]"),
]


@pytest.mark.parametrize(("kind", "text", "names", "values", "message"), CASES)
def test_error_messages(kind: str, text: str, names: dict | None, values: dict | None, message: str) -> None:
    assert error_of(kind, text, names, values) == message


VALID: list[tuple[str, str, dict | None, dict | None]] = [
    ("cond", "a = :v", None, {":v": N1}),
    ("cond", "(a = :v)", None, {":v": N1}),
    ("cond", "(a) = :v", None, {":v": N1}),
    ("cond", "((a = :v) AND b = :v)", None, {":v": N1}),
    ("cond", "NOT (a = :v)", None, {":v": N1}),
    ("cond", "NOT NOT a = :v", None, {":v": N1}),
    ("cond", "#n = :v", {"#n": "name"}, {":v": N1}),
    ("cond", "a.b[0].c <> :v", None, {":v": N1}),
    ("cond", "a IN (:v, :w, b)", None, {":v": N1, ":w": N2}),
    ("cond", "size(a) BETWEEN :v AND :w", None, {":v": N1, ":w": N2}),
    ("cond", "attribute_type(a, :t) OR contains(a, :v)", None, {":t": {"S": "SS"}, ":v": S}),
    ("cond", "begins_with(a, :v) and attribute_not_exists(b) or attribute_exists(c)", None, {":v": S}),
    ("cond", ":v = :v", None, {":v": N1}),
    ("cond", "a = :v\n\tAND\r\nb = :v", None, {":v": N1}),
    ("update", "SET a = :v", None, {":v": N1}),
    ("update", "SET a = (b + :v)", None, {":v": N1}),
    ("update", "SET a = if_not_exists(a, :v) + :v", None, {":v": N1}),
    ("update", "SET a = list_append(if_not_exists(a, :e), :l)", None, {":e": {"L": []}, ":l": {"L": [S]}}),
    ("update", "SET a[1] = :v, a[2] = :v", None, {":v": N1}),
    ("update", "REMOVE a.b, a.c ADD d :v DELETE e :s", None, {":v": N1, ":s": {"SS": ["x"]}}),
    ("update", "set a=:v", None, {":v": N1}),
    ("proj", "a, b.c, d[1][2], #x.y", {"#x": "name"}, None),
    ("proj", "a.b, a.c, a.d[1]", None, None),
]


@pytest.mark.parametrize(("kind", "text", "names", "values"), VALID)
def test_valid_expressions(kind: str, text: str, names: dict | None, values: dict | None) -> None:
    run(kind, text, names, values)


def test_in_operand_limit() -> None:
    values = {f":v{i}": {"N": str(i)} for i in range(101)}
    text = "a IN (" + ", ".join(values) + ")"
    msg = error_of("cond", text, None, values)
    assert msg == (
        "Invalid ConditionExpression: The IN operator is provided with too many operands; "
        "number of operands: 101"
    )
    values.pop(":v100")
    run("cond", "a IN (" + ", ".join(values) + ")", None, values)


def test_expression_size_limit() -> None:
    text = "a = :v AND " * 400 + "b = :v"
    msg = error_of("cond", text, None, {":v": N1})
    assert msg.startswith("Invalid ConditionExpression: Expression size has exceeded the maximum allowed size")


def test_update_operator_limit() -> None:
    text = "SET " + ", ".join(f"a{i} = :v" for i in range(301))
    msg = error_of("update", text, None, {":v": N1})
    assert "too many operators" in msg


@pytest.mark.parametrize(
    ("names", "values", "message"),
    [
        ({}, None, "ExpressionAttributeNames must not be empty"),
        (None, {}, "ExpressionAttributeValues must not be empty"),
        ({"a": "a"}, None, 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'),
        ({"#a-b": "a"}, None, 'ExpressionAttributeNames contains invalid key: Syntax error; key: "#a-b"'),
        (None, {"v": N1}, 'ExpressionAttributeValues contains invalid key: Syntax error; key: "v"'),
        (
            None,
            {":v": {"SS": []}},
            "ExpressionAttributeValues contains invalid value: One or more parameter values were "
            "invalid: An string set  may not be empty for key :v",
        ),
    ],
)
def test_placeholder_maps(names: dict | None, values: dict | None, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ExpressionContext(names, values)
    assert exc.value.message == message


def test_values_are_canonicalized() -> None:
    ctx = ExpressionContext(None, {":v": {"N": "01.50"}})
    cond = ctx.condition("a = :v")
    assert cond.evaluate({"a": {"N": "1.5"}})


def test_names_and_values_shared_across_expressions() -> None:
    ctx = ExpressionContext({"#a": "a", "#b": "b"}, {":v": N1, ":w": N2})
    ctx.update("SET #a = :v")
    ctx.condition("#b = :w")
    ctx.check_unused()


# -- robustness --------------------------------------------------------------------------------------

FRAGMENTS = [
    "a", "b", "#n", ":v", ":w", "(", ")", "[1]", ".", ",", "=", "<>", "<", ">=", "+", "-",
    "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE", "size", "contains",
    "attribute_exists", "begins_with", "if_not_exists", "list_append", "name", " ", "@", "#", ":",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12), st.sampled_from(["cond", "update", "proj"]))
def test_random_text_only_raises_validation_errors(parts: list[str], kind: str) -> None:
    text = " ".join(parts)
    ctx = ExpressionContext({"#n": "n"}, {":v": {"N": "1"}, ":w": {"SS": ["x"]}})
    try:
        if kind == "cond":
            cond = ctx.condition(text)
            cond.evaluate({"a": {"N": "1"}, "b": {"L": [{"S": "x"}, {"N": "1"}]}, "n": {"SS": ["x"]}})
        elif kind == "update":
            upd = ctx.update(text)
            upd.apply({"a": {"N": "1"}, "b": {"L": [{"S": "x"}, {"N": "1"}]}, "n": {"SS": ["x"]}})
        else:
            ctx.projection(text).apply({"a": {"N": "1"}})
    except ValidationError as e:
        assert e.message


# -- nesting depth -----------------------------------------------------------------------------


DEEP = 1000  # fits in 4 KB, far past Python's recursion limit if parsed naively


@pytest.mark.parametrize(
    ("kind", "text", "param"),
    [
        ("cond", "NOT " * DEEP + "a = :v", "ConditionExpression"),
        ("cond", "(" * DEEP + "a = :v" + ")" * DEEP, "ConditionExpression"),
        ("filter", "(" * DEEP + "a" + ")" * DEEP + " = :v", "FilterExpression"),
        ("cond", "a = :v AND (" * 300 + "a = :v" + ")" * 300, "ConditionExpression"),
        ("cond", "size(" * 600 + "a" + ")" * 600 + " = :v", "ConditionExpression"),
        ("update", "SET a = " + "list_append(" * 200 + ":v" + ",:v)" * 200, "UpdateExpression"),
        ("update", "SET a = " + "(" * DEEP + ":v" + ")" * DEEP, "UpdateExpression"),
    ],
)
def test_deep_nesting_is_a_validation_error_naming_the_parameter(kind: str, text: str, param: str) -> None:
    assert error_of(kind, text, values={":v": {"L": []}}) == (
        f"Invalid {param}: The expression is nested too deeply; maximum nesting depth: 100"
    )


def test_nesting_up_to_the_limit_is_accepted() -> None:
    run("cond", "NOT " * 100 + "a = :v", values={":v": S})
    run("cond", "a = :v AND (" * 99 + "a = :v" + ")" * 99, values={":v": S})
    # A long flat chain is no nesting at all.
    run("cond", " OR ".join(["a<:v"] * 500), values={":v": S})
