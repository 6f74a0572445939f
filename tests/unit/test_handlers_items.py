"""PutItem / GetItem / UpdateItem / DeleteItem / BatchGetItem / BatchWriteItem handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_handlers_support import Client, index, make_table

from quorumdb.errors import (
    ConditionalCheckFailedError,
    ResourceNotFoundError,
    ValidationError,
)


@pytest.fixture
def client() -> Iterator[Client]:
    t = make_table("t", hash_=("pk", "S"), range_=("sk", "N"))
    gsi = index("gsi", ("g", "S"), index_id=1)
    lsi = index("lsi", ("pk", "S"), ("l", "N"), local=True, index_id=2)
    t2 = make_table("t2", hash_=("pk", "S"), indexes=[gsi])
    t3 = make_table("t3", hash_=("pk", "S"), range_=("sk", "S"), indexes=[lsi])
    c = Client(t, t2, t3)
    yield c
    c.close()


def put(c: Client, item: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return c.call("PutItem", {"TableName": kw.pop("table", "t"), "Item": item, **kw})


def k(pk: str = "a", sk: str = "1") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": sk}}


# -- PutItem / GetItem ---------------------------------------------------------------------------


def test_put_then_get_roundtrip_and_canonical_numbers(client: Client) -> None:
    assert put(client, {**k(sk="1.0"), "n": {"N": "0012.50"}, "s": {"S": "x"}}) == {}
    got = client.call("GetItem", {"TableName": "t", "Key": k(sk="1")})
    assert got == {"Item": {**k(), "n": {"N": "12.5"}, "s": {"S": "x"}}}


def test_get_missing_item_is_empty(client: Client) -> None:
    assert client.call("GetItem", {"TableName": "t", "Key": k("zz")}) == {}


def test_get_with_consumed_capacity(client: Client) -> None:
    put(client, {**k(), "big": {"S": "x" * 5000}})
    got = client.call(
        "GetItem", {"TableName": "t", "Key": k(), "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": True}
    )
    assert got["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 2.0}
    got = client.call("GetItem", {"TableName": "t", "Key": k(), "ReturnConsumedCapacity": "INDEXES"})
    assert got["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}
    assert got["Item"]["big"]["S"] == "x" * 5000
    missing = client.call("GetItem", {"TableName": "t", "Key": k("no"), "ReturnConsumedCapacity": "TOTAL"})
    assert missing == {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}


def test_get_projection_expression_and_attributes_to_get(client: Client) -> None:
    put(client, {**k(), "a": {"M": {"b": {"S": "1"}, "c": {"S": "2"}}}, "d": {"S": "3"}})
    got = client.call(
        "GetItem",
        {"TableName": "t", "Key": k(), "ProjectionExpression": "#a.b, d", "ExpressionAttributeNames": {"#a": "a"}},
    )
    assert got == {"Item": {"a": {"M": {"b": {"S": "1"}}}, "d": {"S": "3"}}}
    got = client.call("GetItem", {"TableName": "t", "Key": k(), "AttributesToGet": ["d", "zz"]})
    assert got == {"Item": {"d": {"S": "3"}}}


def test_get_errors(client: Client) -> None:
    with pytest.raises(ResourceNotFoundError, match="Requested resource not found"):
        client.call("GetItem", {"TableName": "nope", "Key": k()})
    with pytest.raises(ValidationError, match="The provided key element does not match the schema"):
        client.call("GetItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}})
    with pytest.raises(ValidationError, match="The provided key element does not match the schema"):
        client.call("GetItem", {"TableName": "t", "Key": {**k(), "x": {"S": "1"}}})
    with pytest.raises(ValidationError, match="Duplicate value in attribute name: a"):
        client.call("GetItem", {"TableName": "t", "Key": k(), "AttributesToGet": ["a", "a"]})
    with pytest.raises(ValidationError, match="Can not use both expression and non-expression parameters"):
        client.call("GetItem", {"TableName": "t", "Key": k(), "AttributesToGet": ["a"], "ProjectionExpression": "a"})
    with pytest.raises(ValidationError, match="ExpressionAttributeNames can only be specified when using expressions"):
        client.call("GetItem", {"TableName": "t", "Key": k(), "ExpressionAttributeNames": {"#a": "a"}})


def test_put_return_values(client: Client) -> None:
    assert put(client, {**k(), "v": {"S": "1"}}, ReturnValues="ALL_OLD") == {}
    assert put(client, {**k(), "v": {"S": "2"}}, ReturnValues="ALL_OLD") == {"Attributes": {**k(), "v": {"S": "1"}}}
    with pytest.raises(ValidationError, match="^ReturnValues can only be ALL_OLD or NONE$"):
        put(client, k(), ReturnValues="ALL_NEW")


def test_put_validation_precedence(client: Client) -> None:
    with pytest.raises(ValidationError, match="Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"):
        put(client, k(), ConditionExpression="attribute_exists(pk)", Expected={"pk": {"Exists": False}})
    with pytest.raises(ValidationError, match="Item size has exceeded the maximum allowed size"):
        put(client, {**k(), "x": {"S": "x" * 410_000}})
    with pytest.raises(ValidationError, match="Missing the key sk in the item"):
        put(client, {"pk": {"S": "a"}})
    with pytest.raises(ValidationError, match="Type mismatch for key sk expected: N actual: S"):
        put(client, {"pk": {"S": "a"}, "sk": {"S": "1"}})
    with pytest.raises(ResourceNotFoundError):
        put(client, k(), table="missing")


def test_put_index_key_type_mismatch(client: Client) -> None:
    with pytest.raises(
        ValidationError,
        match="^One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi$",
    ):
        put(client, {"pk": {"S": "a"}, "g": {"N": "1"}}, table="t2")
    with pytest.raises(ValidationError, match="secondary index key"):
        put(client, {"pk": {"S": "a"}, "g": {"S": ""}}, table="t2")
    assert put(client, {"pk": {"S": "a"}, "g": {"S": "x"}}, table="t2") == {}


def test_put_condition_expression_and_return_on_failure(client: Client) -> None:
    put(client, {**k(), "v": {"N": "1"}})
    with pytest.raises(ConditionalCheckFailedError) as ei:
        put(client, k(), ConditionExpression="attribute_not_exists(pk)")
    assert ei.value.item is None
    with pytest.raises(ConditionalCheckFailedError) as ei:
        put(
            client,
            k(),
            ConditionExpression="v = :two",
            ExpressionAttributeValues={":two": {"N": "2"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert ei.value.item == {**k(), "v": {"N": "1"}}
    assert put(client, {**k(), "v": {"N": "3"}}, ConditionExpression="v = :one",
               ExpressionAttributeValues={":one": {"N": "1"}}) == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k()})["Item"]["v"] == {"N": "3"}


def test_put_expected_legacy(client: Client) -> None:
    put(client, k(), Expected={"pk": {"Exists": False}})
    with pytest.raises(ConditionalCheckFailedError):
        put(client, k(), Expected={"pk": {"Exists": False}})
    put(client, {**k(), "v": {"S": "x"}}, Expected={"pk": {"Value": {"S": "a"}}})


def test_unused_expression_values_refused(client: Client) -> None:
    with pytest.raises(ValidationError, match="unused in expressions"):
        put(client, k(), ConditionExpression="attribute_not_exists(pk)", ExpressionAttributeValues={":x": {"S": "1"}})
    with pytest.raises(ValidationError, match="ExpressionAttributeValues can only be specified when using expressions"):
        put(client, k(), ExpressionAttributeValues={":x": {"S": "1"}})


def test_put_write_capacity(client: Client) -> None:
    out = put(client, {**k(), "x": {"S": "x" * 2000}}, ReturnConsumedCapacity="TOTAL")
    assert out == {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 2.0}}
    out = put(client, k(), ReturnConsumedCapacity="INDEXES")  # the old item was bigger
    assert out == {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 2.0}}}


def test_item_collection_metrics_for_lsi_tables(client: Client) -> None:
    out = client.call("PutItem", {"TableName": "t3", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}},
                                  "ReturnItemCollectionMetrics": "SIZE"})
    assert out["ItemCollectionMetrics"]["ItemCollectionKey"] == {"pk": {"S": "a"}}
    assert put(client, k(), ReturnItemCollectionMetrics="SIZE") == {}


# -- DeleteItem ----------------------------------------------------------------------------------


def test_delete(client: Client) -> None:
    put(client, {**k(), "v": {"S": "1"}})
    with pytest.raises(ConditionalCheckFailedError):
        client.call("DeleteItem", {"TableName": "t", "Key": k(), "ConditionExpression": "attribute_not_exists(v)"})
    out = client.call("DeleteItem", {"TableName": "t", "Key": k(), "ReturnValues": "ALL_OLD"})
    assert out == {"Attributes": {**k(), "v": {"S": "1"}}}
    assert client.call("DeleteItem", {"TableName": "t", "Key": k(), "ReturnValues": "ALL_OLD"}) == {}
    with pytest.raises(ValidationError, match="ReturnValues can only be ALL_OLD or NONE"):
        client.call("DeleteItem", {"TableName": "t", "Key": k(), "ReturnValues": "UPDATED_NEW"})
    out = client.call("DeleteItem", {"TableName": "t", "Key": k(), "ReturnConsumedCapacity": "TOTAL"})
    assert out == {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}


# -- UpdateItem ----------------------------------------------------------------------------------


def upd(c: Client, expr: str, values: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"TableName": "t", "Key": kw.pop("key", k()), "UpdateExpression": expr, **kw}
    if values is not None:
        req["ExpressionAttributeValues"] = values
    return c.call("UpdateItem", req)


def test_update_creates_missing_item_and_returns_values(client: Client) -> None:
    out = upd(client, "SET v = :v", {":v": {"N": "1"}}, ReturnValues="ALL_NEW")
    assert out == {"Attributes": {**k(), "v": {"N": "1"}}}
    out = upd(client, "SET v = v + :v, w = :w", {":v": {"N": "2"}, ":w": {"S": "x"}}, ReturnValues="UPDATED_NEW")
    assert out == {"Attributes": {"v": {"N": "3"}, "w": {"S": "x"}}}
    out = upd(client, "REMOVE w", ReturnValues="UPDATED_OLD")
    assert out == {"Attributes": {"w": {"S": "x"}}}
    out = upd(client, "SET z = :z", {":z": {"S": "q"}}, ReturnValues="ALL_OLD")
    assert out == {"Attributes": {**k(), "v": {"N": "3"}}}
    assert upd(client, "SET z = :z", {":z": {"S": "r"}}) == {}


def test_update_condition_failure_writes_nothing(client: Client) -> None:
    with pytest.raises(ConditionalCheckFailedError):
        upd(client, "SET v = :v", {":v": {"N": "1"}}, ConditionExpression="attribute_exists(pk)")
    assert client.call("GetItem", {"TableName": "t", "Key": k()}) == {}


def test_update_key_attribute_refused(client: Client) -> None:
    with pytest.raises(ValidationError, match="Cannot update attribute sk. This attribute is part of the key"):
        upd(client, "SET sk = :v", {":v": {"N": "1"}})


def test_update_index_key_type_checked(client: Client) -> None:
    with pytest.raises(ValidationError, match="Index Key|secondary index key"):
        client.call("UpdateItem", {"TableName": "t2", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET g = :v",
                                   "ExpressionAttributeValues": {":v": {"N": "1"}}})
    assert client.call("GetItem", {"TableName": "t2", "Key": {"pk": {"S": "a"}}}) == {}


def test_update_too_big(client: Client) -> None:
    put(client, {**k(), "a": {"S": "x" * 300_000}})
    with pytest.raises(ValidationError, match="Item size to update has exceeded the maximum allowed size"):
        upd(client, "SET b = a", ReturnValues="NONE")


def test_update_attribute_updates_legacy(client: Client) -> None:
    out = client.call("UpdateItem", {
        "TableName": "t", "Key": k(),
        "AttributeUpdates": {"n": {"Action": "ADD", "Value": {"N": "5"}}, "s": {"Value": {"SS": ["a"]}}},
        "ReturnValues": "ALL_NEW",
    })
    assert out["Attributes"]["n"] == {"N": "5"} and out["Attributes"]["s"] == {"SS": ["a"]}
    with pytest.raises(ValidationError, match="Only DELETE action is allowed when no attribute value is specified"):
        client.call("UpdateItem", {"TableName": "t", "Key": k(), "AttributeUpdates": {"n": {"Action": "PUT"}}})
    with pytest.raises(ValidationError, match="ADD action is not supported for the type S"):
        client.call("UpdateItem", {"TableName": "t", "Key": k(),
                                   "AttributeUpdates": {"n": {"Action": "ADD", "Value": {"S": "x"}}}})
    with pytest.raises(ValidationError, match=r"Non-expression parameters: \{AttributeUpdates\} Expression parameters: \{UpdateExpression\}"):
        client.call("UpdateItem", {"TableName": "t", "Key": k(), "UpdateExpression": "REMOVE a",
                                   "AttributeUpdates": {"n": {"Action": "DELETE"}}})


def test_update_without_update_creates_key_only_item(client: Client) -> None:
    assert client.call("UpdateItem", {"TableName": "t", "Key": k("new")}) == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k("new")}) == {"Item": k("new")}
    assert client.call("UpdateItem", {"TableName": "t", "Key": k("new2"), "AttributeUpdates": {}}) == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k("new2")}) == {"Item": k("new2")}


def test_update_capacity(client: Client) -> None:
    out = upd(client, "SET v = :v", {":v": {"S": "x" * 1500}}, ReturnConsumedCapacity="TOTAL")
    assert out == {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 2.0}}


# -- BatchGetItem --------------------------------------------------------------------------------


def test_batch_get(client: Client) -> None:
    for i in range(5):
        put(client, {**k(str(i)), "v": {"N": str(i)}})
    out = client.call("BatchGetItem", {
        "RequestItems": {"t": {"Keys": [k(str(i)) for i in range(7)], "ProjectionExpression": "v"}},
        "ReturnConsumedCapacity": "TOTAL",
    })
    assert sorted(int(i["v"]["N"]) for i in out["Responses"]["t"]) == [0, 1, 2, 3, 4]
    assert out["UnprocessedKeys"] == {}
    assert out["ConsumedCapacity"] == [{"TableName": "t", "CapacityUnits": 3.5}]


def test_batch_get_errors(client: Client) -> None:
    with pytest.raises(ValidationError, match="^Provided list of item keys contains duplicates$"):
        client.call("BatchGetItem", {"RequestItems": {"t": {"Keys": [k(), k(sk="1.0")]}}})
    with pytest.raises(ValidationError, match="Too many items requested for the BatchGetItem call"):
        client.call("BatchGetItem", {"RequestItems": {
            "t": {"Keys": [k(str(i)) for i in range(60)]}, "t2": {"Keys": [{"pk": {"S": str(i)}} for i in range(41)]}}})
    with pytest.raises(ResourceNotFoundError):
        client.call("BatchGetItem", {"RequestItems": {"nope": {"Keys": [k()]}}})
    with pytest.raises(ValidationError, match="The provided key element does not match the schema"):
        client.call("BatchGetItem", {"RequestItems": {"t": {"Keys": [{"pk": {"S": "a"}}]}}})


def test_batch_get_response_limit_returns_unprocessed(client: Client) -> None:
    big = "x" * 390_000
    for i in range(45):
        put(client, {**k(str(i)), "b": {"S": big}})
    out = client.call("BatchGetItem", {"RequestItems": {"t": {"Keys": [k(str(i)) for i in range(45)], "ConsistentRead": True}}})
    got = len(out["Responses"]["t"])
    assert got < 45
    un = out["UnprocessedKeys"]["t"]
    assert len(un["Keys"]) == 45 - got and un["ConsistentRead"] is True


# -- BatchWriteItem ------------------------------------------------------------------------------


def test_batch_write(client: Client) -> None:
    put(client, k("gone"))
    out = client.call("BatchWriteItem", {
        "RequestItems": {
            "t": [{"PutRequest": {"Item": {**k(str(i)), "v": {"N": "1"}}}} for i in range(3)]
            + [{"DeleteRequest": {"Key": k("gone")}}],
            "t2": [{"PutRequest": {"Item": {"pk": {"S": "x"}}}}],
        },
        "ReturnConsumedCapacity": "TOTAL",
    })
    assert out["UnprocessedItems"] == {}
    assert out["ConsumedCapacity"] == [
        {"TableName": "t", "CapacityUnits": 4.0},
        {"TableName": "t2", "CapacityUnits": 1.0},
    ]
    assert client.call("GetItem", {"TableName": "t", "Key": k("gone")}) == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k("2")})["Item"]["v"] == {"N": "1"}


def test_batch_write_validates_everything_before_writing(client: Client) -> None:
    db = client.db
    cases = [
        ({"t": [{"PutRequest": {"Item": k()}}, {"DeleteRequest": {"Key": k()}}]},
         "^Provided list of item keys contains duplicates$"),
        ({"t": [{"PutRequest": {"Item": k()}}, {"PutRequest": {"Item": {"pk": {"S": "a"}}}}]},
         "^The provided key element does not match the schema$"),
        ({"t": [{"PutRequest": {"Item": k()}}], "t2": [{"PutRequest": {"Item": {"pk": {"S": "a"}, "g": {"N": "1"}}}}]},
         "Type mismatch for Index Key g"),
        ({"t": [{"PutRequest": {"Item": {**k(), "x": {"S": "x" * 410_000}}}}]},
         "Item size has exceeded the maximum allowed size"),
        ({"t": [{"PutRequest": {"Item": k(str(i))}} for i in range(20)],
          "t2": [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(6)]},
         "Too many items requested for the BatchWriteItem call"),
        ({"t": [{}]}, "Supplied AttributeValue has more than one datatypes set"),
    ]
    for items, msg in cases:
        with pytest.raises(ValidationError, match=msg):
            client.call("BatchWriteItem", {"RequestItems": items})
    with pytest.raises(ResourceNotFoundError):
        client.call("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": k()}}], "zz": [{"PutRequest": {"Item": k()}}]}})
    assert db.writes == 0


def test_update_index_key_type_refused_before_reading(client: Client) -> None:
    before = client.db.writes
    with pytest.raises(ValidationError, match="^One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi$"):
        client.call("UpdateItem", {"TableName": "t2", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET g = :v",
                                   "ExpressionAttributeValues": {":v": {"N": "1"}}})
    assert client.db.writes == before


def test_put_capacity_counts_index_writes(client: Client) -> None:
    item = {"pk": {"S": "a"}, "g": {"S": "x"}}
    out = put(client, item, table="t2", ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == {"TableName": "t2", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 1.0},
                                       "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 1.0}}}
    out = put(client, {**item, "g": {"S": "y"}}, table="t2", ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": "t2", "CapacityUnits": 3.0}  # index key moved: 2 writes


def test_update_that_only_removes_does_not_create(client: Client) -> None:
    assert upd(client, "REMOVE a, b", key=k("ghost"), ReturnValues="ALL_NEW") == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k("ghost")}) == {}
    out = client.call("UpdateItem", {"TableName": "t", "Key": k("ghost"),
                                     "AttributeUpdates": {"s": {"Action": "DELETE", "Value": {"SS": ["x"]}}}})
    assert out == {}
    assert client.call("GetItem", {"TableName": "t", "Key": k("ghost")}) == {}
    # On an existing item the removal applies.
    put(client, {**k("real"), "a": {"S": "1"}})
    assert upd(client, "REMOVE a", key=k("real"), ReturnValues="ALL_NEW") == {"Attributes": k("real")}


def test_get_projection_of_nested_key_path_refused(client: Client) -> None:
    with pytest.raises(ValidationError, match="Key attributes must be scalars; list random access '\\[\\]' and map lookup '.' are not allowed: Key: pk"):
        client.call("GetItem", {"TableName": "t", "Key": k(), "ProjectionExpression": "pk.x"})
    with pytest.raises(ValidationError, match="are not allowed: IndexKey: g"):
        client.call("BatchGetItem", {"RequestItems": {"t2": {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "g[0]"}}})


def test_index_key_size_limits(client: Client) -> None:
    with pytest.raises(ValidationError, match="Size of hashkey has exceeded the maximum size limit of2048 bytes"):
        put(client, {"pk": {"S": "a"}, "g": {"S": "é" * 1025}}, table="t2")
    assert put(client, {"pk": {"S": "a"}, "g": {"S": "é" * 1024}}, table="t2") == {}
    c = Client(make_table("r", hash_=("pk", "S"), indexes=[index("byr", ("h", "S"), ("r", "S"))]))
    try:
        with pytest.raises(ValidationError, match="Aggregated size of all range keys has exceeded the size limit of 1024 bytes"):
            c.call("UpdateItem", {"TableName": "r", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET r = :v",
                                  "ExpressionAttributeValues": {":v": {"S": "x" * 1025}}})
        assert c.call("GetItem", {"TableName": "r", "Key": {"pk": {"S": "a"}}}) == {}
    finally:
        c.close()


def test_batch_write_throttled_requests_come_back_unprocessed(client: Client) -> None:
    from quorumdb.errors import ProvisionedThroughputExceededError

    inner = client.db.inner

    async def throttle_odd(ops: Any) -> list[Any]:
        done = await inner.write_many([op for i, op in enumerate(ops) if i % 2 == 0])
        return [done[i // 2] if i % 2 == 0 else ProvisionedThroughputExceededError("slow down") for i in range(len(ops))]

    client.db.write_many = throttle_odd
    reqs = [{"PutRequest": {"Item": k(str(i))}} for i in range(4)]
    out = client.call("BatchWriteItem", {"RequestItems": {"t": reqs}})
    assert out["UnprocessedItems"] == {"t": [reqs[1], reqs[3]]}
    assert client.call("GetItem", {"TableName": "t", "Key": k("0")}) == {"Item": k("0")}
    assert client.call("GetItem", {"TableName": "t", "Key": k("1")}) == {}


def test_update_condition_failure_returns_old_item_when_asked(client: Client) -> None:
    put(client, {**k(), "v": {"N": "1"}})
    with pytest.raises(ConditionalCheckFailedError) as ei:
        upd(client, "SET v = :v", {":v": {"N": "2"}, ":x": {"N": "5"}}, ConditionExpression="v = :x",
            ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert ei.value.item == {**k(), "v": {"N": "1"}}
    with pytest.raises(ConditionalCheckFailedError) as ei:
        client.call("DeleteItem", {"TableName": "t", "Key": k(), "Expected": {"v": {"Value": {"N": "9"}}},
                                   "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    assert ei.value.item == {**k(), "v": {"N": "1"}}
