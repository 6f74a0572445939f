"""PartiQL handlers over an in-process data plane: refusals on leaderless tables, the
transaction size limit, and nothing written when a statement is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from test_handlers_support import Client, make_table

from quorumdb.errors import DuplicateItemError, TransactionCanceledError, ValidationError


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(make_table("t", hash_=("pk", "S")))
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
