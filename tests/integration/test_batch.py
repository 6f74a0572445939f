"""BatchGetItem and BatchWriteItem through boto3: results, limits (100 keys, 25 writes, 16 MB),
duplicate keys, UnprocessedKeys/UnprocessedItems, projections and consumed capacity."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import TableFactory, expect_error, unique_name


@pytest.fixture(scope="module")
def t1(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


@pytest.fixture(scope="module")
def t2(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"), ("sk", "N"))


def test_batch_write_then_get_across_tables(ddb: Any, t1: str, t2: str) -> None:
    writes = {
        t1: [{"PutRequest": {"Item": {"pk": {"S": f"bw{i}"}, "n": {"N": str(i)}}}} for i in range(20)],
        t2: [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)}, "v": {"S": "x"}}}} for i in range(5)],
    }
    out = ddb.batch_write_item(RequestItems=writes)
    assert out["UnprocessedItems"] == {}
    got = ddb.batch_get_item(
        RequestItems={
            t1: {"Keys": [{"pk": {"S": f"bw{i}"}} for i in range(25)], "ConsistentRead": True},
            t2: {"Keys": [{"pk": {"S": "p"}, "sk": {"N": str(i)}} for i in range(5)]},
        }
    )
    assert got["UnprocessedKeys"] == {}
    assert sorted(int(i["n"]["N"]) for i in got["Responses"][t1]) == list(range(20))
    assert sorted(int(i["sk"]["N"]) for i in got["Responses"][t2]) == list(range(5))
    deletes = {t1: [{"DeleteRequest": {"Key": {"pk": {"S": f"bw{i}"}}}} for i in range(10)]}
    deletes[t1].append({"PutRequest": {"Item": {"pk": {"S": "bw-new"}}}})
    assert ddb.batch_write_item(RequestItems=deletes)["UnprocessedItems"] == {}
    got = ddb.batch_get_item(
        RequestItems={t1: {"Keys": [{"pk": {"S": f"bw{i}"}} for i in range(20)] + [{"pk": {"S": "bw-new"}}]}}
    )
    assert sorted(i["pk"]["S"] for i in got["Responses"][t1]) == sorted(
        [f"bw{i}" for i in range(10, 20)] + ["bw-new"]
    )


def test_batch_get_projection_and_attributes_to_get(ddb: Any, t1: str) -> None:
    ddb.put_item(TableName=t1, Item={"pk": {"S": "proj"}, "a": {"S": "1"}, "b": {"S": "2"}, "name": {"S": "n"}})
    got = ddb.batch_get_item(
        RequestItems={t1: {"Keys": [{"pk": {"S": "proj"}}], "ProjectionExpression": "a, #n",
                           "ExpressionAttributeNames": {"#n": "name"}}}
    )
    assert got["Responses"][t1] == [{"a": {"S": "1"}, "name": {"S": "n"}}]
    got = ddb.batch_get_item(RequestItems={t1: {"Keys": [{"pk": {"S": "proj"}}], "AttributesToGet": ["b"]}})
    assert got["Responses"][t1] == [{"b": {"S": "2"}}]


def test_batch_get_hundred_keys_and_limits(ddb: Any, t1: str, t2: str) -> None:
    keys = [{"pk": {"S": f"h{i}"}} for i in range(101)]
    got = ddb.batch_get_item(RequestItems={t1: {"Keys": keys[:100]}})
    assert got["Responses"][t1] == [] and got["UnprocessedKeys"] == {}
    with expect_error("ValidationException", "Member must have length less than or equal to 100"):
        ddb.batch_get_item(RequestItems={t1: {"Keys": keys}})
    with expect_error("ValidationException", "Too many items requested for the BatchGetItem call"):
        ddb.batch_get_item(
            RequestItems={t1: {"Keys": keys[:60]}, t2: {"Keys": [{"pk": {"S": "p"}, "sk": {"N": str(i)}} for i in range(41)]}}
        )
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_get_item(RequestItems={t1: {"Keys": [keys[0], keys[1], keys[0]]}})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.batch_get_item(RequestItems={t1: {"Keys": [{"pk": {"N": "1"}}]}})
    with expect_error("ValidationException", "Member must have length greater than or equal to 1"):
        ddb.batch_get_item(RequestItems={})
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.batch_get_item(RequestItems={unique_name("missing"): {"Keys": keys[:1]}})


def test_batch_write_limits(ddb: Any, t1: str) -> None:
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"w{i}"}}}} for i in range(26)]
    with expect_error("ValidationException", "Member must have length less than or equal to 25"):
        ddb.batch_write_item(RequestItems={t1: puts})
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_write_item(RequestItems={t1: [puts[0], puts[1], puts[0]]})
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_write_item(RequestItems={t1: [puts[0], {"DeleteRequest": {"Key": {"pk": {"S": "w0"}}}}]})
    with expect_error("ValidationException", "Member must have length greater than or equal to 1"):
        ddb.batch_write_item(RequestItems={})
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.batch_write_item(RequestItems={unique_name("missing"): puts[:1]})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.batch_write_item(RequestItems={t1: [{"PutRequest": {"Item": {"x": {"S": "1"}}}}]})
    with expect_error("ValidationException", "Item size has exceeded the maximum allowed size"):
        ddb.batch_write_item(RequestItems={t1: [{"PutRequest": {"Item": {"pk": {"S": "big"}, "d": {"S": "x" * 409600}}}}]})
    # Nothing of a refused batch was written.
    got = ddb.batch_get_item(RequestItems={t1: {"Keys": [{"pk": {"S": "w0"}}, {"pk": {"S": "w1"}}], "ConsistentRead": True}})
    assert got["Responses"][t1] == []


def test_batch_consumed_capacity(ddb: Any, t1: str, t2: str) -> None:
    out = ddb.batch_write_item(
        RequestItems={
            t1: [{"PutRequest": {"Item": {"pk": {"S": "cap1"}, "d": {"S": "x" * 1500}}}}],
            t2: [{"PutRequest": {"Item": {"pk": {"S": "cap"}, "sk": {"N": "1"}}}}],
        },
        ReturnConsumedCapacity="TOTAL",
    )
    caps = {c["TableName"]: c["CapacityUnits"] for c in out["ConsumedCapacity"]}
    assert caps == {t1: 2.0, t2: 1.0}
    got = ddb.batch_get_item(
        RequestItems={t1: {"Keys": [{"pk": {"S": "cap1"}}], "ConsistentRead": True}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert got["ConsumedCapacity"] == [{"TableName": t1, "CapacityUnits": 1.0}]


def test_batch_get_response_over_16_mb_returns_unprocessed_keys(ddb: Any, make_table: TableFactory) -> None:
    # The 16 MB are counted on the items read (as Query's 1 MB), so no projection is used here.
    table = make_table(("pk", "S"))
    big = "x" * 390_000
    for i in range(45):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"big{i}"}, "d": {"S": big}})
    keys = [{"pk": {"S": f"big{i}"}} for i in range(45)]
    got = ddb.batch_get_item(RequestItems={table: {"Keys": keys}})
    returned = {i["pk"]["S"] for i in got["Responses"][table]}
    unprocessed = {k["pk"]["S"] for k in got["UnprocessedKeys"].get(table, {}).get("Keys", [])}
    assert unprocessed, "a 17.5 MB response must leave keys unprocessed"
    assert len(returned) * 390_000 <= 16 * 1024 * 1024
    assert returned | unprocessed == {f"big{i}" for i in range(45)}
    assert not returned & unprocessed


def test_batch_write_of_ten_megabytes(ddb: Any, make_table: TableFactory) -> None:
    table = make_table(("pk", "S"))
    big = "y" * 390_000
    pending: dict[str, Any] = {table: [{"PutRequest": {"Item": {"pk": {"S": f"w{i}"}, "d": {"S": big}}}} for i in range(25)]}
    for _ in range(20):
        pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            break
    assert not pending
    got = ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": f"w{i}"}} for i in range(25)],
                                                   "ProjectionExpression": "pk", "ConsistentRead": True}})
    keys = {i["pk"]["S"] for i in got["Responses"][table]}
    unprocessed = {k["pk"]["S"] for k in got["UnprocessedKeys"].get(table, {}).get("Keys", [])}
    assert keys | unprocessed == {f"w{i}" for i in range(25)}
