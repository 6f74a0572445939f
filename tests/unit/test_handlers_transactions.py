"""TransactWriteItems and TransactGetItems handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_handlers_support import Client, index, make_table

from quorumdb.errors import (
    IdempotentParameterMismatchError,
    ResourceNotFoundError,
    TransactionCanceledError,
    ValidationError,
)


@pytest.fixture
def client() -> Iterator[Client]:
    t = make_table("t", hash_=("pk", "S"))
    u = make_table("u", hash_=("pk", "S"), range_=("sk", "N"), indexes=[index("gsi", ("g", "S"))])
    c = Client(t, u)
    c.call("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}})
    yield c
    c.close()


def K(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def get(c: Client, pk: str, table: str = "t") -> dict[str, Any] | None:
    return c.call("GetItem", {"TableName": table, "Key": K(pk)}).get("Item")


def tw(c: Client, *items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return c.call("TransactWriteItems", {"TransactItems": list(items), **kw})


def test_all_actions_commit_together(client: Client) -> None:
    out = tw(
        client,
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"S": "x"}}}},
        {"Update": {"TableName": "t", "Key": K("a"), "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": K("zz"), "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": "u", "Item": {"pk": {"S": "q"}, "sk": {"N": "1"}}}},
        ReturnConsumedCapacity="INDEXES",
    )
    assert get(client, "b") == {"pk": {"S": "b"}, "v": {"S": "x"}}
    assert get(client, "a") == {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert out["ConsumedCapacity"] == [
        {"TableName": "t", "CapacityUnits": 6.0, "WriteCapacityUnits": 6.0,
         "Table": {"CapacityUnits": 6.0, "WriteCapacityUnits": 6.0}},
        {"TableName": "u", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0,
         "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}},
    ]
    tw(client, {"Delete": {"TableName": "t", "Key": K("b")}})
    assert get(client, "b") is None


def test_failed_condition_cancels_everything(client: Client) -> None:
    with pytest.raises(TransactionCanceledError) as ei:
        tw(
            client,
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "c"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": K("a"), "ConditionExpression": "n = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        )
    reasons = ei.value.reasons
    assert reasons[0] == {"Code": "None"}
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Item"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert get(client, "c") is None


def test_validation_before_any_write(client: Client) -> None:
    db = client.db
    before = db.writes
    with pytest.raises(ValidationError, match="^Transaction request cannot include multiple operations on one item$"):
        tw(client, {"Put": {"TableName": "t", "Item": K("x")}}, {"Delete": {"TableName": "t", "Key": K("x")}})
    with pytest.raises(ValidationError, match="Type mismatch for Index Key g"):
        tw(client, {"Put": {"TableName": "t", "Item": K("x")}},
           {"Put": {"TableName": "u", "Item": {"pk": {"S": "q"}, "sk": {"N": "1"}, "g": {"N": "1"}}}})
    with pytest.raises(ValidationError, match="Cannot update attribute pk"):
        tw(client, {"Update": {"TableName": "t", "Key": K("a"), "UpdateExpression": "SET pk = :v",
                               "ExpressionAttributeValues": {":v": {"S": "x"}}}})
    with pytest.raises(ValidationError, match="The provided key element does not match the schema"):
        tw(client, {"Delete": {"TableName": "u", "Key": K("a")}})
    with pytest.raises(ResourceNotFoundError):
        tw(client, {"Put": {"TableName": "t", "Item": K("x")}}, {"Put": {"TableName": "nope", "Item": K("x")}})
    with pytest.raises(ValidationError, match="only contain one of"):
        tw(client, {"Put": {"TableName": "t", "Item": K("x")}, "Delete": {"TableName": "t", "Key": K("y")}})
    assert db.writes == before


def test_client_request_token_idempotency(client: Client) -> None:
    action = {"Update": {"TableName": "t", "Key": K("a"), "UpdateExpression": "SET n = n + :one",
                         "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    first = tw(client, action, ClientRequestToken="tok1", ReturnConsumedCapacity="TOTAL")
    assert first["ConsumedCapacity"] == [{"TableName": "t", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}]
    again = tw(client, action, ClientRequestToken="tok1", ReturnConsumedCapacity="TOTAL")  # not applied twice
    assert again["ConsumedCapacity"] == [{"TableName": "t", "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}]
    assert get(client, "a") == {"pk": {"S": "a"}, "n": {"N": "2"}}
    with pytest.raises(IdempotentParameterMismatchError):
        tw(client, {"Delete": {"TableName": "t", "Key": K("a")}}, ClientRequestToken="tok1")
    tw(client, action, ClientRequestToken="tok2")
    assert get(client, "a") == {"pk": {"S": "a"}, "n": {"N": "3"}}


def test_transact_get(client: Client) -> None:
    client.call("PutItem", {"TableName": "u", "Item": {"pk": {"S": "q"}, "sk": {"N": "1"}, "x": {"S": "y"}, "z": {"S": "w"}}})
    out = client.call("TransactGetItems", {"TransactItems": [
        {"Get": {"TableName": "t", "Key": K("a")}},
        {"Get": {"TableName": "t", "Key": K("missing")}},
        {"Get": {"TableName": "u", "Key": {"pk": {"S": "q"}, "sk": {"N": "1"}}, "ProjectionExpression": "#x",
                 "ExpressionAttributeNames": {"#x": "x"}}},
    ], "ReturnConsumedCapacity": "TOTAL"})
    assert out["Responses"] == [{"Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}, {}, {"Item": {"x": {"S": "y"}}}]
    assert out["ConsumedCapacity"] == [
        {"TableName": "t", "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0},
        {"TableName": "u", "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0},
    ]
    with pytest.raises(ValidationError, match="multiple operations on one item"):
        client.call("TransactGetItems", {"TransactItems": [
            {"Get": {"TableName": "t", "Key": K("a")}}, {"Get": {"TableName": "t", "Key": K("a")}}]})


def test_leaderless_tables_refuse_conditions_and_transactions() -> None:
    import dataclasses

    c = Client(make_table("ll", hash_=("pk", "S")))
    t = dataclasses.replace(c.db.inner.table("ll"), tags={"quorumdb:replication": "leaderless"})
    c.db.table = lambda name: t  # the catalog as the control plane would record the tag
    try:
        c.call("PutItem", {"TableName": "ll", "Item": K("a")})  # plain writes are fine
        c.call("UpdateItem", {"TableName": "ll", "Key": K("a"), "UpdateExpression": "ADD n :one",
                              "ExpressionAttributeValues": {":one": {"N": "1"}}})
        with pytest.raises(ValidationError, match="Conditional writes are not supported on table ll"):
            c.call("PutItem", {"TableName": "ll", "Item": K("a"), "ConditionExpression": "attribute_exists(pk)"})
        with pytest.raises(ValidationError, match="Conditional writes are not supported"):
            c.call("DeleteItem", {"TableName": "ll", "Key": K("a"), "Expected": {"pk": {"Exists": True, "Value": {"S": "a"}}}})
        with pytest.raises(ValidationError, match="Transactions are not supported on table ll"):
            tw(c, {"Put": {"TableName": "ll", "Item": K("b")}})
        with pytest.raises(ValidationError, match="Transactions are not supported"):
            c.call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "ll", "Key": K("a")}}]})
    finally:
        c.close()


def test_transaction_size_limit(client: Client) -> None:
    big = {"S": "x" * 390_000}
    items = [{"Put": {"TableName": "t", "Item": {"pk": {"S": f"b{i}"}, "v": big}}} for i in range(11)]
    before = client.db.writes
    with pytest.raises(ValidationError, match="4 MB"):
        tw(client, *items)
    assert client.db.writes == before
    tw(client, *items[:10])
    assert get(client, "b9") is not None
