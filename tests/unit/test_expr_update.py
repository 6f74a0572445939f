"""UpdateExpression semantics: every action, edge cases, runtime errors, purity."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext, check_key_paths
from quorumdb.expr.update import BAD_OPERAND_TYPE, INVALID_PATH, MISSING_ATTRIBUTE
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


VALUES: dict[str, Any] = {
    ":one": {"N": "1"},
    ":two": {"N": "2"},
    ":big": {"N": "12345678901234567890123456789012345678"},
    ":frac": {"N": "0.1"},
    ":s": {"S": "x"},
    ":ss": {"SS": ["b", "c"]},
    ":ss_a": {"SS": ["a"]},
    ":ns": {"NS": ["1", "3"]},
    ":bs": {"BS": [b64(b"q")]},
    ":l": {"L": [{"S": "z"}]},
    ":empty_l": {"L": []},
    ":m": {"M": {"k": {"S": "v"}}},
}

ITEM: dict[str, Any] = {
    "pk": {"S": "key"},
    "n": {"N": "5"},
    "s": {"S": "str"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b64(b"p"), b64(b"q")]},
    "l": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}]},
    "m": {"M": {"a": {"N": "1"}, "inr": {"M": {"x": {"S": "y"}}}, "lst": {"L": [{"S": "e0"}]}}},
}


def apply(text: str, item: dict[str, Any] | None = None, names: dict | None = None) -> dict[str, Any]:
    ctx = ExpressionContext(names, VALUES)
    upd = ctx.update(text)
    return upd.apply(copy.deepcopy(ITEM) if item is None else item)


def changed(text: str, names: dict | None = None) -> dict[str, Any]:
    """Attributes that differ from ITEM after the update (None where removed)."""
    out = apply(text, names=names)
    diff: dict[str, Any] = {k: v for k, v in out.items() if ITEM.get(k) != v}
    diff.update({k: None for k in ITEM if k not in out})
    return diff


CASES: list[tuple[str, dict[str, Any]]] = [
    # SET
    ("SET a = :one", {"a": {"N": "1"}}),
    ("SET n = :s", {"n": {"S": "x"}}),
    ("SET n = n + :one", {"n": {"N": "6"}}),
    ("SET n = n - :two", {"n": {"N": "3"}}),
    ("SET n = :two - n", {"n": {"N": "-3"}}),
    ("SET a = :one + :two", {"a": {"N": "3"}}),
    ("SET a = :frac + :frac", {"a": {"N": "0.2"}}),
    ("SET a = :big - :big", {"a": {"N": "0"}}),
    ("SET a = s", {"a": {"S": "str"}}),
    ("SET a = m.inr.x", {"a": {"S": "y"}}),
    ("SET a = l[2]", {"a": {"N": "2"}}),
    ("SET a = if_not_exists(a, :one)", {"a": {"N": "1"}}),
    ("SET n = if_not_exists(n, :one)", {}),
    ("SET c = if_not_exists(c, :one) + :two", {"c": {"N": "3"}}),
    ("SET l = list_append(l, :l)", {"l": {"L": ITEM["l"]["L"] + [{"S": "z"}]}}),
    ("SET l = list_append(:l, l)", {"l": {"L": [{"S": "z"}] + ITEM["l"]["L"]}}),
    ("SET a = list_append(if_not_exists(a, :empty_l), :l)", {"a": {"L": [{"S": "z"}]}}),
    ("SET m.a = :two", {"m": {"M": {**ITEM["m"]["M"], "a": {"N": "2"}}}}),
    ("SET m.fresh = :two", {"m": {"M": {**ITEM["m"]["M"], "fresh": {"N": "2"}}}}),
    ("SET m.inr.x = :s", {"m": {"M": {**ITEM["m"]["M"], "inr": {"M": {"x": {"S": "x"}}}}}}),
    ("SET l[1] = :s", {"l": {"L": [{"N": "0"}, {"S": "x"}, {"N": "2"}, {"N": "3"}]}}),
    ("SET l[10] = :s", {"l": {"L": ITEM["l"]["L"] + [{"S": "x"}]}}),
    ("SET m.lst[0] = :s", {"m": {"M": {**ITEM["m"]["M"], "lst": {"L": [{"S": "x"}]}}}}),
    ("SET a = :m, b = :l", {"a": VALUES[":m"], "b": VALUES[":l"]}),
    ("SET #x = :one", {"weird name": {"N": "1"}}),
    # REMOVE
    ("REMOVE s", {"s": None}),
    ("REMOVE absent", {}),
    ("REMOVE m.absent, m.inr.absent", {}),
    ("REMOVE m.a", {"m": {"M": {k: v for k, v in ITEM["m"]["M"].items() if k != "a"}}}),
    ("REMOVE l[1]", {"l": {"L": [{"N": "0"}, {"N": "2"}, {"N": "3"}]}}),
    ("REMOVE l[1], l[2]", {"l": {"L": [{"N": "0"}, {"N": "3"}]}}),
    ("REMOVE l[2], l[0]", {"l": {"L": [{"N": "1"}, {"N": "3"}]}}),
    ("REMOVE l[9]", {}),
    ("REMOVE m.lst[4]", {}),
    ("REMOVE s, n", {"s": None, "n": None}),
    # ADD
    ("ADD n :one", {"n": {"N": "6"}}),
    ("ADD c :two", {"c": {"N": "2"}}),
    ("ADD ss :ss", {"ss": {"SS": ["a", "b", "c"]}}),
    ("ADD ns :ns", {"ns": {"NS": ["1", "2", "3"]}}),
    ("ADD bs :bs", {}),
    ("ADD newset :ss", {"newset": {"SS": ["b", "c"]}}),
    ("ADD m.cnt :one", {"m": {"M": {**ITEM["m"]["M"], "cnt": {"N": "1"}}}}),
    # DELETE
    ("DELETE ss :ss_a", {"ss": {"SS": ["b"]}}),
    ("DELETE ss :ss", {"ss": {"SS": ["a"]}}),
    ("DELETE ns :ns", {"ns": {"NS": ["2"]}}),
    ("DELETE bs :bs", {"bs": {"BS": [b64(b"p")]}}),
    ("DELETE absent :ss", {}),
    # mixed
    ("SET a = :one REMOVE s ADD n :one DELETE ss :ss_a", {"a": {"N": "1"}, "s": None, "n": {"N": "6"}, "ss": {"SS": ["b"]}}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_update(text: str, expected: dict[str, Any]) -> None:
    names = {"#x": "weird name"} if "#x" in text else None
    assert changed(text, names) == expected


def test_set_swap_reads_old_values() -> None:
    out = apply("SET a = b, b = a", item={"a": {"S": "A"}, "b": {"S": "B"}})
    assert out == {"a": {"S": "B"}, "b": {"S": "A"}}


def test_delete_last_element_removes_attribute() -> None:
    out = apply("DELETE ss :ss_a", item={"ss": {"SS": ["a"]}})
    assert out == {}


def test_multiple_appends_past_end() -> None:
    out = apply("SET l[7] = :one, l[9] = :two", item={"l": {"L": [{"S": "x"}]}})
    assert out == {"l": {"L": [{"S": "x"}, {"N": "1"}, {"N": "2"}]}}


def test_appends_past_end_go_in_index_order_not_action_order() -> None:
    # Indexes refer to the list as it was: c[4] and c[2] are both past the end of [1, 3].
    item = {"c": {"L": [{"N": "1"}, {"N": "3"}]}}
    out = apply("SET c[4] = :s, c[2] = :two", item=copy.deepcopy(item))
    assert out == {"c": {"L": [{"N": "1"}, {"N": "3"}, {"N": "2"}, {"S": "x"}]}}
    out = apply("SET c[4] = :s, c[2] = :two ADD c[6] :one", item=copy.deepcopy(item))
    assert out == {"c": {"L": [{"N": "1"}, {"N": "3"}, {"N": "2"}, {"S": "x"}, {"N": "1"}]}}
    # An element replaced in place and appends mixed; nested lists are ordered on their own.
    out = apply("SET c[9] = :s, c[0] = :two, c[5] = :one", item=copy.deepcopy(item))
    assert out == {"c": {"L": [{"N": "2"}, {"N": "3"}, {"N": "1"}, {"S": "x"}]}}
    nested = {"m": {"M": {"l": {"L": []}}}}
    out = apply("SET m.l[3] = :s, m.l[1] = :one", item=nested)
    assert out == {"m": {"M": {"l": {"L": [{"N": "1"}, {"S": "x"}]}}}}


def test_remove_past_the_original_end_does_not_remove_an_appended_element() -> None:
    item = {"c": {"L": [{"N": "1"}]}}
    assert apply("SET c[5] = :s REMOVE c[1]", item=item) == {"c": {"L": [{"N": "1"}, {"S": "x"}]}}
    assert apply("SET c[5] = :s REMOVE c[0]", item=item) == {"c": {"L": [{"S": "x"}]}}


def test_apply_to_empty_item() -> None:
    assert apply("SET a = :one ADD c :ss REMOVE x", item={}) == {"a": {"N": "1"}, "c": VALUES[":ss"]}


ERRORS = [
    ("SET a = absent", MISSING_ATTRIBUTE),
    ("SET a = m.absent", MISSING_ATTRIBUTE),
    ("SET a = absent + :one", MISSING_ATTRIBUTE),
    ("SET a = list_append(absent, :l)", MISSING_ATTRIBUTE),
    ("SET a = s + :one", BAD_OPERAND_TYPE),
    ("SET a = n - s", BAD_OPERAND_TYPE),
    ("SET a = list_append(n, :l)", BAD_OPERAND_TYPE),
    ("SET a = list_append(l, m)", BAD_OPERAND_TYPE),
    ("SET absent.x = :one", INVALID_PATH),
    ("SET s.x = :one", INVALID_PATH),
    ("SET m[0] = :one", INVALID_PATH),
    ("SET l.x = :one", INVALID_PATH),
    ("SET l[9].x = :one", INVALID_PATH),
    ("SET m.absent.x = :one", INVALID_PATH),
    ("REMOVE s.x", INVALID_PATH),
    ("REMOVE absent.x", INVALID_PATH),
    ("REMOVE absent[3]", INVALID_PATH),
    ("REMOVE m.absent.x", INVALID_PATH),
    ("REMOVE l[9].x", INVALID_PATH),
    ("DELETE m.absent.x :ss", INVALID_PATH),
    ("DELETE s.x :ss", INVALID_PATH),
    ("REMOVE m[1]", INVALID_PATH),
    ("ADD s :one", BAD_OPERAND_TYPE),
    ("ADD ss :ns", BAD_OPERAND_TYPE),
    ("ADD n :ss", BAD_OPERAND_TYPE),
    ("ADD absent.x :one", INVALID_PATH),
    ("DELETE ss :ns", BAD_OPERAND_TYPE),
    ("DELETE s :ss", BAD_OPERAND_TYPE),
    ("SET a = :big + :frac", "Attempting to store more than 38 significant digits in a Number"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_runtime_errors(text: str, message: str) -> None:
    item = copy.deepcopy(ITEM)
    with pytest.raises(ValidationError) as exc:
        apply(text, item=item)
    assert exc.value.message == message
    assert item == ITEM


def test_updated_paths_and_projection() -> None:
    ctx = ExpressionContext({"#i": "inr"}, VALUES)
    upd = ctx.update("SET m.#i.x = :s, a = :one REMOVE s ADD n :one")
    assert upd.updated_paths == (("m", "inr", "x"), ("a",), ("s",), ("n",))
    new = upd.apply(ITEM)
    assert upd.project_updated(new) == {
        "m": {"M": {"inr": {"M": {"x": {"S": "x"}}}}},
        "a": {"N": "1"},
        "n": {"N": "6"},
    }
    assert upd.project_updated(ITEM) == {
        "m": {"M": {"inr": {"M": {"x": {"S": "y"}}}}},
        "s": {"S": "str"},
        "n": {"N": "5"},
    }


SCHEMA = KeySchema(hash=KeyAttr(name="pk", type="S"), range=KeyAttr(name="sk", type="N"))


@pytest.mark.parametrize(
    ("text", "attr"),
    [("SET pk = :s", "pk"), ("REMOVE sk", "sk"), ("ADD sk :one", "sk"), ("SET pk.x = :s", "pk")],
)
def test_check_keys(text: str, attr: str) -> None:
    upd = ExpressionContext(None, VALUES).update(text)
    with pytest.raises(ValidationError) as exc:
        upd.check_keys(SCHEMA)
    assert exc.value.message == (
        f"One or more parameter values were invalid: Cannot update attribute {attr}. "
        "This attribute is part of the key"
    )


def test_check_keys_allows_other_attributes() -> None:
    ExpressionContext(None, VALUES).update("SET a = :s REMOVE b").check_keys(SCHEMA)


# -- purity property -------------------------------------------------------------------------------

scalar = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=3)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-50, 50)),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda d: {"M": d}, st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    ),
    max_leaves=8,
)
items = st.dictionaries(st.sampled_from(["a", "b", "c", "n", "l"]), value, max_size=5)
UPDATES = [
    "SET a = :one",
    "SET a.b = :s",
    "SET l[1] = :s, b = :m",
    "SET a[0].b = :one",
    "REMOVE a, b.c",
    "REMOVE l[0], l[2]",
    "REMOVE a.b[1]",
    "ADD n :one",
    "ADD c :ss",
    "DELETE c :ss_a",
    "SET a = list_append(if_not_exists(a, :empty_l), :l)",
    "SET n = if_not_exists(n, :one) + :two",
    "SET a.a.a = :one REMOVE b",
]


@settings(max_examples=150, deadline=None)
@given(items, st.sampled_from(UPDATES))
def test_apply_never_mutates_input(item: dict[str, Any], text: str) -> None:
    before = copy.deepcopy(item)
    upd = ExpressionContext(None, VALUES).update(text)
    try:
        out = upd.apply(item)
    except ValidationError:
        out = None
    assert item == before
    if out is not None:
        # Untouched attributes are shared, touched ones replaced, never edited in place.
        for name in item:
            if name not in {p[0] for p in upd.updated_paths}:
                assert out[name] is item[name]


# -- table checks ------------------------------------------------------------------------------------

TABLE = TableDef(
    name="t",
    table_id=1,
    uuid="u",
    key_schema=SCHEMA,
    attribute_definitions={"pk": "S", "sk": "N", "g": "S", "gs": "N", "ls": "B"},
    created_at=0.0,
    indexes=(
        IndexDef(name="gsi", index_id=1, local=False, key_schema=KeySchema(hash=KeyAttr(name="g", type="S"), range=KeyAttr(name="gs", type="N"))),
        IndexDef(name="lsi", index_id=2, local=True, key_schema=KeySchema(hash=KeyAttr(name="pk", type="S"), range=KeyAttr(name="ls", type="B"))),
    ),
)

TABLE_ERRORS = [
    ("SET pk = :s", "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"),
    ("SET g = :one", "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi"),
    ("SET gs = :s", "One or more parameter values were invalid: Type mismatch for Index Key gs Expected: N Actual: S IndexName: gsi"),
    ("SET gs = list_append(a, :l)", "One or more parameter values were invalid: Type mismatch for Index Key gs Expected: N Actual: L IndexName: gsi"),
    ("SET g = if_not_exists(g, :one)", "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi"),
    ("SET g = a + :one", "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi"),
    ("ADD ls :ss", "One or more parameter values were invalid: Type mismatch for Index Key ls Expected: B Actual: SS IndexName: lsi"),
    ("SET g.x = :s", "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: IndexKey: g"),
    ("REMOVE ls[0]", "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: IndexKey: ls"),
]


@pytest.mark.parametrize(("text", "message"), TABLE_ERRORS)
def test_check_table(text: str, message: str) -> None:
    upd = ExpressionContext(None, VALUES).update(text)
    with pytest.raises(ValidationError) as exc:
        upd.check_table(TABLE)
    assert exc.value.message == message


def test_check_table_accepts_valid_updates() -> None:
    ExpressionContext(None, VALUES).update("SET g = :s, gs = gs + :one, a.b = :s REMOVE ls").check_table(TABLE)


def test_key_paths_in_conditions_and_projections() -> None:
    ctx = ExpressionContext(None, VALUES)
    cond = ctx.condition("sk.x = :one AND a.b = :one AND pk = :s")
    assert cond.nested_heads == ("sk", "a")
    with pytest.raises(ValidationError) as exc:
        check_key_paths(cond.nested_heads, TABLE)
    assert exc.value.message == "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: sk"
    proj = ExpressionContext(None, None).projection("a, gs[1], b.c")
    assert proj.nested_heads == ("gs", "b")
    with pytest.raises(ValidationError) as exc:
        check_key_paths(proj.nested_heads, TABLE)
    assert exc.value.message.endswith("IndexKey: gs")
    check_key_paths(("a", "b"), TABLE)
