"""Query and Scan handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_handlers_support import Client, index, make_table

from quorumdb.errors import ResourceNotFoundError, ValidationError


@pytest.fixture
def client() -> Iterator[Client]:
    gsi = index("gsi", ("g", "S"), ("n", "N"), index_id=1, projection="KEYS_ONLY")
    gsi_all = index("gsi_all", ("g", "S"), index_id=2)
    lsi = index("lsi", ("pk", "S"), ("n", "N"), local=True, index_id=3, projection="INCLUDE", include=("x",))
    t = make_table("t", hash_=("pk", "S"), range_=("sk", "N"), indexes=[gsi, gsi_all, lsi])
    h = make_table("h", hash_=("pk", "S"))
    c = Client(t, h)
    for p in ("a", "b"):
        for i in range(10):
            item = {"pk": {"S": p}, "sk": {"N": str(i)}, "n": {"N": str(100 - i)}, "x": {"S": f"x{i}"},
                    "y": {"N": str(i % 3)}}
            if i % 2 == 0:
                item["g"] = {"S": "even"}
            c.call("PutItem", {"TableName": "t", "Item": item})
    for i in range(30):
        c.call("PutItem", {"TableName": "h", "Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}})
    yield c
    c.close()


def q(c: Client, **kw: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"TableName": "t", "KeyConditionExpression": "pk = :p",
                           "ExpressionAttributeValues": {":p": {"S": "a"}}}
    req.update(kw)
    return c.call("Query", req)


def sks(out: dict[str, Any]) -> list[int]:
    return [int(i["sk"]["N"]) for i in out["Items"]]


def test_query_whole_partition_in_order(client: Client) -> None:
    out = q(client)
    assert sks(out) == list(range(10))
    assert out["Count"] == out["ScannedCount"] == 10
    assert "LastEvaluatedKey" not in out
    assert sks(q(client, ScanIndexForward=False)) == list(range(9, -1, -1))


def test_query_sort_conditions(client: Client) -> None:
    vals = {":p": {"S": "a"}, ":lo": {"N": "3"}, ":hi": {"N": "6"}}
    out = q(client, KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi", ExpressionAttributeValues=vals)
    assert sks(out) == [3, 4, 5, 6]
    out = q(client, KeyConditionExpression="pk = :p AND sk > :hi", ExpressionAttributeValues={":p": {"S": "a"}, ":hi": {"N": "6"}})
    assert sks(out) == [7, 8, 9]


def test_query_legacy_key_conditions(client: Client) -> None:
    out = client.call("Query", {"TableName": "t", "KeyConditions": {
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "b"}]},
        "sk": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "2"}]},
    }})
    assert sks(out) == [0, 1] and out["Items"][0]["pk"] == {"S": "b"}


def test_query_limit_pagination_and_filter_counts(client: Client) -> None:
    seen: list[int] = []
    start = None
    pages = 0
    while True:
        kw: dict[str, Any] = {"Limit": 3, "FilterExpression": "y = :z",
                              "ExpressionAttributeValues": {":p": {"S": "a"}, ":z": {"N": "0"}}}
        if start is not None:
            kw["ExclusiveStartKey"] = start
        out = q(client, **kw)
        pages += 1
        assert out["ScannedCount"] <= 3 and out["Count"] == len(out["Items"])
        seen += sks(out)
        start = out.get("LastEvaluatedKey")
        if start is None:
            break
        assert set(start) == {"pk", "sk"}
    assert seen == [0, 3, 6, 9]
    assert pages == 4  # 10 items read 3 at a time; the 4th page is not truncated


def test_query_select_count_and_projection(client: Client) -> None:
    out = q(client, Select="COUNT")
    assert out == {"Count": 10, "ScannedCount": 10}
    out = q(client, ProjectionExpression="x")
    assert out["Items"][0] == {"x": {"S": "x0"}}
    out = client.call("Query", {"TableName": "t", "KeyConditions": {
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}}, "AttributesToGet": ["sk"], "Limit": 1})
    assert out["Items"] == [{"sk": {"N": "0"}}]


def test_query_select_rules(client: Client) -> None:
    with pytest.raises(ValidationError, match="SPECIFIC_ATTRIBUTES"):
        q(client, Select="SPECIFIC_ATTRIBUTES")
    with pytest.raises(ValidationError, match="ALL_ATTRIBUTES"):
        q(client, Select="ALL_ATTRIBUTES", ProjectionExpression="x")
    with pytest.raises(ValidationError, match="ALL_PROJECTED_ATTRIBUTES"):
        q(client, Select="ALL_PROJECTED_ATTRIBUTES")
    with pytest.raises(ValidationError, match="Select type ALL_ATTRIBUTES is not supported for global secondary index gsi because its projection type is not ALL"):
        client.call("Query", {"TableName": "t", "IndexName": "gsi", "Select": "ALL_ATTRIBUTES",
                              "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "even"}}})


def test_query_gsi(client: Client) -> None:
    req = {"TableName": "t", "IndexName": "gsi", "KeyConditionExpression": "g = :g",
           "ExpressionAttributeValues": {":g": {"S": "even"}}, "Limit": 4, "ReturnConsumedCapacity": "INDEXES"}
    out = client.call("Query", req)
    assert out["Count"] == 4
    assert all(set(i) == {"pk", "sk", "g", "n"} for i in out["Items"])  # KEYS_ONLY
    ns = [int(i["n"]["N"]) for i in out["Items"]]
    assert ns == sorted(ns)
    assert set(out["LastEvaluatedKey"]) == {"pk", "sk", "g", "n"}
    cc = out["ConsumedCapacity"]
    assert cc["GlobalSecondaryIndexes"] == {"gsi": {"CapacityUnits": 0.5}} and cc["CapacityUnits"] == 0.5
    out2 = client.call("Query", {**req, "ExclusiveStartKey": out["LastEvaluatedKey"]})
    assert out2["Count"] == 4
    rest = client.call("Query", {**req, "ExclusiveStartKey": out2["LastEvaluatedKey"]})
    assert rest["Count"] == 2 and "LastEvaluatedKey" not in rest
    with pytest.raises(ValidationError, match="^Consistent reads are not supported on global secondary indexes$"):
        client.call("Query", {**req, "ConsistentRead": True})
    with pytest.raises(ValidationError, match="^The table does not have the specified index: nope$"):
        client.call("Query", {**req, "IndexName": "nope"})


def test_query_lsi_fetches_non_projected_attributes(client: Client) -> None:
    out = client.call("Query", {"TableName": "t", "IndexName": "lsi", "KeyConditionExpression": "pk = :p AND n < :n",
                                "ExpressionAttributeValues": {":p": {"S": "a"}, ":n": {"N": "93"}}})
    assert [i["n"]["N"] for i in out["Items"]] == ["91", "92"]
    assert set(out["Items"][0]) == {"pk", "sk", "n", "x"}
    out = client.call("Query", {"TableName": "t", "IndexName": "lsi", "KeyConditionExpression": "pk = :p AND n < :n",
                                "ExpressionAttributeValues": {":p": {"S": "a"}, ":n": {"N": "93"}},
                                "Select": "ALL_ATTRIBUTES", "ConsistentRead": True})
    assert set(out["Items"][0]) == {"pk", "sk", "n", "x", "y"}


def test_query_errors(client: Client) -> None:
    with pytest.raises(ValidationError, match="Either the KeyConditions or KeyConditionExpression parameter must be specified"):
        client.call("Query", {"TableName": "t"})
    with pytest.raises(ResourceNotFoundError):
        q(client, TableName="zz")
    with pytest.raises(ValidationError, match="^The provided starting key is invalid$"):
        q(client, ExclusiveStartKey={"pk": {"S": "a"}})
    with pytest.raises(ValidationError, match="The provided starting key is invalid: The provided key element does not match the schema"):
        q(client, ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"S": "1"}})
    with pytest.raises(ValidationError, match="outside query boundaries"):
        q(client, ExclusiveStartKey={"pk": {"S": "b"}, "sk": {"N": "1"}})
    with pytest.raises(ValidationError, match="does not match the range key predicate"):
        q(client, KeyConditionExpression="pk = :p AND sk > :s",
          ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"N": "5"}},
          ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"N": "1"}})
    with pytest.raises(ValidationError, match="Can not use both expression and non-expression parameters"):
        q(client, AttributesToGet=["x"], ProjectionExpression="x")


def test_query_capacity_sums_sizes(client: Client) -> None:
    out = q(client, ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert out["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 1.0}


def test_query_page_is_one_megabyte(client: Client) -> None:
    big = "z" * 300_000
    for i in range(10):
        client.call("PutItem", {"TableName": "t", "Item": {"pk": {"S": "big"}, "sk": {"N": str(i)}, "b": {"S": big}}})
    out = q(client, ExpressionAttributeValues={":p": {"S": "big"}}, FilterExpression="attribute_not_exists(b)",
            ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert out["Count"] == 0 and out["ScannedCount"] == 4  # 4 x 300 KB crosses 1 MB
    assert out["LastEvaluatedKey"] == {"pk": {"S": "big"}, "sk": {"N": "3"}}
    assert out["ConsumedCapacity"]["CapacityUnits"] == 293.0


# -- Scan ------------------------------------------------------------------------------------------


def test_scan_all_and_pages(client: Client) -> None:
    out = client.call("Scan", {"TableName": "h"})
    assert out["Count"] == 30 and "LastEvaluatedKey" not in out
    got: list[str] = []
    start = None
    while True:
        req: dict[str, Any] = {"TableName": "h", "Limit": 7}
        if start:
            req["ExclusiveStartKey"] = start
        out = client.call("Scan", req)
        got += [i["pk"]["S"] for i in out["Items"]]
        start = out.get("LastEvaluatedKey")
        if not start:
            break
    assert sorted(got) == sorted(f"k{i}" for i in range(30)) and len(got) == 30


def test_scan_segments(client: Client) -> None:
    got: list[str] = []
    for seg in range(4):
        out = client.call("Scan", {"TableName": "h", "Segment": seg, "TotalSegments": 4})
        got += [i["pk"]["S"] for i in out["Items"]]
    assert sorted(got) == sorted(f"k{i}" for i in range(30))
    with pytest.raises(ValidationError, match="Segment: 4 is not less than TotalSegments: 4"):
        client.call("Scan", {"TableName": "h", "Segment": 4, "TotalSegments": 4})
    with pytest.raises(ValidationError, match="The TotalSegments parameter is required"):
        client.call("Scan", {"TableName": "h", "Segment": 1})
    with pytest.raises(ValidationError, match="The Segment parameter is required"):
        client.call("Scan", {"TableName": "h", "TotalSegments": 2})


def test_scan_filter_legacy_and_expression(client: Client) -> None:
    out = client.call("Scan", {"TableName": "h", "ScanFilter": {"v": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "25"}]}}})
    assert out["Count"] == 5 and out["ScannedCount"] == 30
    out = client.call("Scan", {"TableName": "h", "FilterExpression": "v < :v", "ExpressionAttributeValues": {":v": {"N": "2"}},
                               "ProjectionExpression": "v"})
    assert sorted(i["v"]["N"] for i in out["Items"]) == ["0", "1"]


def test_scan_start_key_errors(client: Client) -> None:
    with pytest.raises(ValidationError, match="^The provided starting key is invalid: The provided key element does not match the schema$"):
        client.call("Scan", {"TableName": "h", "ExclusiveStartKey": {"pk": {"S": "a"}, "x": {"S": "b"}}})
    with pytest.raises(ValidationError, match="^The provided starting key is invalid$"):
        client.call("Scan", {"TableName": "t", "IndexName": "gsi_all", "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "1"}}})


def test_scan_gsi_and_capacity(client: Client) -> None:
    out = client.call("Scan", {"TableName": "t", "IndexName": "gsi_all", "ReturnConsumedCapacity": "TOTAL"})
    assert out["Count"] == 10
    assert out["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 0.5}


def test_filter_and_projection_key_rules(client: Client) -> None:
    with pytest.raises(ValidationError, match="^Filter Expression can only contain non-primary key attributes: Primary key attribute: sk$"):
        q(client, FilterExpression="sk > :z", ExpressionAttributeValues={":p": {"S": "a"}, ":z": {"N": "0"}})
    with pytest.raises(ValidationError, match="^QueryFilter can only contain non-primary key attributes: Primary key attribute: sk$"):
        client.call("Query", {"TableName": "t", "KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
            "QueryFilter": {"sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "0"}]}}})
    with pytest.raises(ValidationError, match="Key attributes must be scalars.*Key: pk"):
        client.call("Scan", {"TableName": "t", "ProjectionExpression": "pk.a"})
    with pytest.raises(ValidationError, match="Key attributes must be scalars.*IndexKey: g"):
        client.call("Scan", {"TableName": "t", "FilterExpression": "g[1] = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}})


def test_scan_start_key_must_be_in_segment(client: Client) -> None:
    first = client.call("Scan", {"TableName": "h", "Segment": 0, "TotalSegments": 2, "Limit": 1})
    lek = first["LastEvaluatedKey"]
    nxt = client.call("Scan", {"TableName": "h", "Segment": 0, "TotalSegments": 2, "ExclusiveStartKey": lek})
    assert nxt["Count"] >= 0
    with pytest.raises(ValidationError, match="Please use ExclusiveStartKey with correct Segment. TotalSegments: 2 Segment: 1"):
        client.call("Scan", {"TableName": "h", "Segment": 1, "TotalSegments": 2, "ExclusiveStartKey": lek})


def test_key_condition_error_order(client: Client) -> None:
    # Request errors (syntax, unused values, condition shapes) rank before the table lookup.
    with pytest.raises(ValidationError, match="^Invalid operator used in KeyConditionExpression: OR$"):
        q(client, TableName="missing", KeyConditionExpression="pk = :p OR pk = :p")
    with pytest.raises(ValidationError, match="unused in expressions"):
        q(client, TableName="missing", ExpressionAttributeValues={":p": {"S": "a"}, ":x": {"S": "b"}})
    with pytest.raises(ValidationError, match="^Conditions can be of length 1 or 2 only$"):
        client.call("Query", {"TableName": "missing", "KeyConditions": {
            n: {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]} for n in ("a", "b", "c")}})
    with pytest.raises(ResourceNotFoundError):
        q(client, TableName="missing", KeyConditionExpression="zz = :p")
    # Schema errors come after it.
    with pytest.raises(ValidationError, match="^Query condition missed key schema element: pk$"):
        q(client, KeyConditionExpression="zz = :p")
    with pytest.raises(ValidationError, match="Condition parameter type does not match schema type"):
        q(client, ExpressionAttributeValues={":p": {"N": "1"}})
    with pytest.raises(ValidationError, match="^Query condition missed key schema element: g$"):
        q(client, IndexName="gsi")


def test_lsi_projection_within_index_reads_only_the_index(client: Client) -> None:
    req = {"TableName": "t", "IndexName": "lsi", "KeyConditionExpression": "pk = :p",
           "ExpressionAttributeValues": {":p": {"S": "a"}}, "ReturnConsumedCapacity": "INDEXES", "ConsistentRead": True}
    out = client.call("Query", {**req, "ProjectionExpression": "x, n"})
    assert out["ConsumedCapacity"]["Table"] == {"CapacityUnits": 0.0}
    out = client.call("Query", {**req, "ProjectionExpression": "x, y"})  # y is not projected: fetched
    assert out["ConsumedCapacity"]["Table"]["CapacityUnits"] > 0
    assert out["ConsumedCapacity"]["LocalSecondaryIndexes"]["lsi"]["CapacityUnits"] > 0
    assert {"x", "y"} == set(out["Items"][0])


def test_backfilling_index_is_not_readable() -> None:
    import dataclasses

    ix = dataclasses.replace(index("late", ("g", "S")), status="CREATING", backfilling=True)
    c = Client(make_table("b", hash_=("pk", "S"), indexes=[ix]))
    t = dataclasses.replace(c.db.inner.table("b"), indexes=(ix,))
    c.db.table = lambda name: t  # as the catalog shows it mid-backfill
    try:
        with pytest.raises(ValidationError, match="^Cannot read from backfilling global secondary index: late$"):
            c.call("Scan", {"TableName": "b", "IndexName": "late"})
    finally:
        c.close()
