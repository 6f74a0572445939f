"""PartiQL handlers over an in-process data plane: refusals on leaderless tables, the
transaction size limit, and nothing written when a statement is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_handlers_support import Client, index, make_table

from quorumdb.errors import (
    DuplicateItemError,
    DynamoError,
    TransactionCanceledError,
    ValidationError,
)


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(make_table("t", hash_=("pk", "S")))
    yield c
    c.close()


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[Client]:
    c = Client(make_table("u", hash_=("pk", "S"), range_=("sk", "N"), indexes=[index("byV", ("v", "N"))]))
    c.call("ExecuteStatement", {"Statement": "INSERT INTO u VALUE {'pk': 'a', 'sk': 1, 'v': 1, 'l': [1], 'm': {'k': 'x'}}"})
    yield c
    c.close()


def stmt(c: Client, statement: str, **kw: Any) -> dict[str, Any]:
    return c.call("ExecuteStatement", {"Statement": statement, **kw})


def test_leaderless_tables_refuse_conditional_statements_and_transactions() -> None:
    c = Client(make_table("ll", hash_=("pk", "S")))
    t = dataclasses.replace(c.db.inner.table("ll"), tags={"quorumdb:replication": "leaderless"})
    c.db.table = lambda name: t  # the catalog as the control plane would record the tag
    try:
        c.call("PutItem", {"TableName": "ll", "Item": {"pk": {"S": "a"}}})
        stmt(c, "DELETE FROM ll WHERE pk = 'a'")  # an unconditional delete is fine
        for statement in (
            "INSERT INTO ll VALUE {'pk': 'b'}",
            "UPDATE ll SET v = 1 WHERE pk = 'a'",
            "DELETE FROM ll WHERE pk = 'a' AND v = 1",
        ):
            with pytest.raises(ValidationError, match="Conditional writes are not supported on table ll"):
                stmt(c, statement)
        with pytest.raises(ValidationError, match="Transactions are not supported on table ll"):
            c.call("ExecuteTransaction", {"TransactStatements": [{"Statement": "DELETE FROM ll WHERE pk = 'a'"}]})
        with pytest.raises(ValidationError, match="Transactions are not supported on table ll"):
            c.call("ExecuteTransaction", {"TransactStatements": [{"Statement": "SELECT * FROM ll WHERE pk = 'a'"}]})
    finally:
        c.close()


def test_transaction_size_limit_and_validation_before_writing(client: Client) -> None:
    big = "x" * 390_000
    statements = [
        {"Statement": "INSERT INTO t VALUE {'pk': ?, 'v': ?}", "Parameters": [{"S": f"b{i}"}, {"S": big}]}
        for i in range(11)
    ]
    before = client.db.writes
    with pytest.raises(ValidationError, match="4 MB"):
        client.call("ExecuteTransaction", {"TransactStatements": statements})
    with pytest.raises(ValidationError, match="Where clause does not contain a mandatory equality"):
        client.call("ExecuteTransaction", {"TransactStatements": [
            statements[0], {"Statement": "DELETE FROM t WHERE v = 1"}]})
    assert client.db.writes == before
    client.call("ExecuteTransaction", {"TransactStatements": statements[:10]})
    assert stmt(client, "SELECT pk FROM t WHERE pk = 'b9'")["Items"] == [{"pk": {"S": "b9"}}]


def test_insert_of_an_existing_item(client: Client) -> None:
    stmt(client, "INSERT INTO t VALUE {'pk': 'a', 'v': 1}")
    with pytest.raises(DuplicateItemError, match="Duplicate primary key exists in table"):
        stmt(client, "INSERT INTO t VALUE {'pk': 'a', 'v': 2}")
    with pytest.raises(TransactionCanceledError) as err:
        client.call("ExecuteTransaction", {"TransactStatements": [
            {"Statement": "INSERT INTO t VALUE {'pk': 'a'}"}]})
    assert err.value.reasons == [{"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}]
    assert stmt(client, "SELECT v FROM t WHERE pk = 'a'")["Items"] == [{"v": {"N": "1"}}]


_PATHS = st.sampled_from(["pk", "sk", "v", "l", "l[0]", "m.k", '"m"."k"', "m['k']", "nope"])
_VALUES = st.sampled_from(
    ["'a'", "'b'", "''", "1", "-2.5", "?", "[1]", "{'k': 1}", "<<1, 2>>", "<<'x'>>", "TRUE", "NULL"]
)
_OPS = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])


def _atom() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{} {} {}".format, _PATHS, _OPS, _VALUES),
        st.builds("{} {} {}".format, _VALUES, _OPS, _PATHS),
        st.builds("{} BETWEEN {} AND {}".format, _PATHS, _VALUES, _VALUES),
        st.builds("{} IN [{}, {}]".format, _PATHS, _VALUES, _VALUES),
        st.builds("{} IS {}".format, _PATHS, st.sampled_from(["MISSING", "NOT MISSING", "NULL"])),
        st.builds("{}({}, {})".format, st.sampled_from(["begins_with", "contains"]), _PATHS, _VALUES),
        st.builds("attribute_type({}, {})".format, _PATHS, _VALUES),
        st.builds("size({}) {} {}".format, _PATHS, _OPS, _VALUES),
    )


_CONDS = st.recursive(
    _atom(),
    lambda inner: st.one_of(
        st.builds("{} AND {}".format, inner, inner),
        st.builds("{} OR {}".format, inner, inner),
        st.builds("NOT ({})".format, inner),
    ),
    max_leaves=5,
)
_SET_VALUES = st.one_of(
    _VALUES,
    _PATHS,
    st.builds("{} + {}".format, _PATHS, _VALUES),
    st.builds("{} - {}".format, _VALUES, _PATHS),
    st.builds("list_append({}, {})".format, _PATHS, _VALUES),
    st.builds("if_not_exists({}, {})".format, _PATHS, _VALUES),
)
_STATEMENTS = st.one_of(
    st.builds(
        "SELECT {} FROM u{} WHERE {}{}".format,
        st.sampled_from(["*", "v", "pk, m.k", "l[0], l"]),
        st.sampled_from(["", '."byV"']),
        _CONDS,
        st.sampled_from(["", " ORDER BY sk DESC", " ORDER BY pk"]),
    ),
    st.builds("SELECT * FROM u WHERE pk = {} AND {}".format, _VALUES, _CONDS),
    st.builds(
        "UPDATE u SET {} = {} {} WHERE {}{}".format,
        _PATHS,
        _SET_VALUES,
        st.sampled_from(["", "REMOVE l[0]", "SET v = set_add(v, <<3>>)", "SET m.k = set_delete(m.k, <<'x'>>)"]),
        _CONDS,
        st.sampled_from(["", " RETURNING ALL OLD *", " RETURNING MODIFIED NEW *"]),
    ),
    st.builds("UPDATE u SET {} = {} WHERE pk = 'a' AND sk = 1 AND {}".format, _PATHS, _SET_VALUES, _CONDS),
    st.builds("DELETE FROM u WHERE {}".format, _CONDS),
    st.builds("DELETE FROM u WHERE pk = {} AND sk = {} AND {}".format, _VALUES, _VALUES, _CONDS),
    st.builds("INSERT INTO u VALUE {{'pk': {}, 'sk': {}, 'v': {}}}".format, _VALUES, _VALUES, _VALUES),
    st.builds("EXISTS(SELECT * FROM u WHERE pk = 'a' AND sk = 1 AND {})".format, _CONDS),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_STATEMENTS, st.sampled_from([{"N": "1"}, {"S": "a"}, {"L": [{"N": "1"}]}, {"SS": ["x"]}]))
def test_statements_fail_only_with_dynamodb_errors(
    fuzz_client: Client, text: str, param: dict[str, Any]
) -> None:
    spec: dict[str, Any] = {"Statement": text}
    if "?" in text:
        spec["Parameters"] = [param] * text.count("?")
    for op, body in (
        ("ExecuteStatement", {**spec, "Limit": 2}),
        ("BatchExecuteStatement", {"Statements": [spec]}),
        ("ExecuteTransaction", {"TransactStatements": [spec]}),
    ):
        try:
            fuzz_client.call(op, body)
        except DynamoError:
            pass
