"""Local and global secondary indexes, black-box through boto3 against a real server process."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from tests.integration.helpers import (
    collect_pages,
    eventually,
    expect_error,
    index_settled,
    wait_active,
)

ATTRS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
    {"AttributeName": "lsk", "AttributeType": "S"},
    {"AttributeName": "gpk", "AttributeType": "S"},
    {"AttributeName": "gsk", "AttributeType": "N"},
]
KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def indexed_table(make_table: Any) -> str:
    return make_table(
        ("pk", "S"),
        ("sk", "N"),
        AttributeDefinitions=ATTRS,
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_lsk",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "lsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "g_all",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "g_keys",
                "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "g_incl",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["color"]},
            },
        ],
    )


def put(ddb: Any, table: str, pk: str, sk: int, **attrs: Any) -> None:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    for name, value in attrs.items():
        item[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    ddb.put_item(TableName=table, Item=item)


def test_describe_table_index_descriptions(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    put(ddb, table, "a", 1, lsk="x", gpk="g1", gsk=5, color="red")
    put(ddb, table, "a", 2, lsk="y", color="blue")  # sparse for every GSI

    def check() -> dict[str, Any]:
        desc: dict[str, Any] = ddb.describe_table(TableName=table)["Table"]
        assert all(ix["ItemCount"] == 1 for ix in desc["GlobalSecondaryIndexes"]), desc["GlobalSecondaryIndexes"]
        return desc

    desc = eventually(check)  # global indexes are eventually consistent
    lsis = {ix["IndexName"]: ix for ix in desc["LocalSecondaryIndexes"]}
    gsis = {ix["IndexName"]: ix for ix in desc["GlobalSecondaryIndexes"]}
    assert set(lsis) == {"by_lsk"}
    assert set(gsis) == {"g_all", "g_keys", "g_incl"}
    lsi = lsis["by_lsk"]
    assert lsi["IndexArn"] == desc["TableArn"] + "/index/by_lsk"
    assert lsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert lsi["KeySchema"][1] == {"AttributeName": "lsk", "KeyType": "RANGE"}
    assert lsi["ItemCount"] == 2
    assert lsi["IndexSizeBytes"] > 0
    for name, gsi in gsis.items():
        assert gsi["IndexStatus"] == "ACTIVE"
        assert gsi["IndexArn"] == desc["TableArn"] + "/index/" + name
        assert gsi["ItemCount"] == 1, name
        assert gsi["IndexSizeBytes"] > 0
        assert "ProvisionedThroughput" in gsi
    assert gsis["g_incl"]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["color"]}
    # The KEYS_ONLY entry is smaller than the ALL entry of the same item.
    assert gsis["g_keys"]["IndexSizeBytes"] < gsis["g_all"]["IndexSizeBytes"]


def test_gsi_query_order_and_projections(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    for i in range(10):
        put(ddb, table, f"p{i}", i, lsk=f"l{i}", gpk="g", gsk=100 - i, color=f"c{i}", size=i)
    for ix in ("g_all", "g_keys", "g_incl"):
        index_settled(ddb, table, ix, 10)
    out = ddb.query(
        TableName=table,
        IndexName="g_all",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
    )
    assert out["Count"] == 10
    assert [int(it["gsk"]["N"]) for it in out["Items"]] == sorted(100 - i for i in range(10))
    assert out["Items"][0]["color"] == {"S": "c9"}  # ALL projection
    rev = ddb.query(
        TableName=table,
        IndexName="g_all",
        KeyConditionExpression="gpk = :g AND gsk BETWEEN :a AND :b",
        ExpressionAttributeValues={":g": {"S": "g"}, ":a": {"N": "93"}, ":b": {"N": "95"}},
        ScanIndexForward=False,
    )
    assert [it["gsk"]["N"] for it in rev["Items"]] == ["95", "94", "93"]
    keys_only = ddb.query(
        TableName=table,
        IndexName="g_keys",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
    )
    assert keys_only["Count"] == 10
    for it in keys_only["Items"]:
        assert set(it) == {"pk", "sk", "gpk"}
    incl = ddb.query(
        TableName=table,
        IndexName="g_incl",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
        Select="ALL_PROJECTED_ATTRIBUTES",
    )
    for it in incl["Items"]:
        assert set(it) == {"pk", "sk", "gpk", "gsk", "color"}
    with expect_error("ValidationException", "Select type ALL_ATTRIBUTES is not supported"):
        ddb.query(
            TableName=table,
            IndexName="g_keys",
            KeyConditionExpression="gpk = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
            Select="ALL_ATTRIBUTES",
        )


def test_lsi_query_and_fetch_all_attributes(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    for i, lval in enumerate(["m", "c", "x", "a"]):
        put(ddb, table, "same", i, lsk=lval, color=f"c{i}")
    put(ddb, table, "same", 9)  # no lsk: not in the LSI
    out = ddb.query(
        TableName=table,
        IndexName="by_lsk",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "same"}},
        ConsistentRead=True,  # allowed on an LSI
    )
    assert [it["lsk"]["S"] for it in out["Items"]] == ["a", "c", "m", "x"]
    assert all(set(it) == {"pk", "sk", "lsk"} for it in out["Items"])
    full = ddb.query(
        TableName=table,
        IndexName="by_lsk",
        KeyConditionExpression="pk = :p AND begins_with(lsk, :c)",
        ExpressionAttributeValues={":p": {"S": "same"}, ":c": {"S": "c"}},
        Select="ALL_ATTRIBUTES",  # an LSI fetches the rest from the table
    )
    assert full["Count"] == 1
    assert full["Items"][0]["color"] == {"S": "c1"}


def test_gsi_consistent_read_refused_and_unknown_index(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    with expect_error("ValidationException", "Consistent reads are not supported on global secondary indexes"):
        ddb.query(
            TableName=table,
            IndexName="g_all",
            KeyConditionExpression="gpk = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
            ConsistentRead=True,
        )
    with expect_error("ValidationException", "Consistent reads are not supported on global secondary indexes"):
        ddb.scan(TableName=table, IndexName="g_all", ConsistentRead=True)
    with expect_error("ValidationException", "The table does not have the specified index: nope"):
        ddb.query(
            TableName=table,
            IndexName="nope",
            KeyConditionExpression="gpk = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
        )


def test_index_pagination_carries_index_and_table_key(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    # Many items share one GSI key value: the table key must break ties.
    for i in range(25):
        put(ddb, table, f"p{i % 7}", i, gpk="hot", gsk=i % 3)
    index_settled(ddb, table, "g_all", 25)
    index_settled(ddb, table, "g_keys", 25)
    items, pages = collect_pages(
        ddb.query,
        TableName=table,
        IndexName="g_all",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "hot"}},
        Limit=4,
    )
    assert len(items) == 25
    assert len({(it["pk"]["S"], it["sk"]["N"]) for it in items}) == 25
    assert [int(it["gsk"]["N"]) for it in items] == sorted(int(it["gsk"]["N"]) for it in items)
    lek = pages[0]["LastEvaluatedKey"]
    assert set(lek) == {"pk", "sk", "gpk", "gsk"}
    scanned, scan_pages = collect_pages(ddb.scan, TableName=table, IndexName="g_keys", Limit=6)
    assert len(scanned) == 25
    assert set(scan_pages[0]["LastEvaluatedKey"]) == {"pk", "sk", "gpk"}


def test_sparse_index_and_moves(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    put(ddb, table, "a", 1, gpk="g1", gsk=1)
    put(ddb, table, "b", 1, color="none")  # not indexed
    index_settled(ddb, table, "g_all", 1)
    # Move the item to another GSI key: the old entry disappears.
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
        UpdateExpression="SET gpk = :n",
        ExpressionAttributeValues={":n": {"S": "g2"}},
    )
    q = lambda v, ix="g_all": ddb.query(  # noqa: E731
        TableName=table,
        IndexName=ix,
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": v}},
    )["Count"]

    def moved() -> None:
        assert (q("g1"), q("g2")) == (0, 1)

    eventually(moved)  # global indexes are eventually consistent
    # Removing the index key attribute takes it out of the index.
    ddb.update_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="REMOVE gsk")

    def removed() -> None:
        assert (q("g2"), q("g2", "g_keys")) == (0, 1)

    eventually(removed)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
    index_settled(ddb, table, "g_keys", 0)


def test_index_key_type_validated_on_write(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    with expect_error("ValidationException", "Type mismatch for Index Key"):
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "gsk": {"S": "not a number"}},
        )
    with expect_error("ValidationException"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "gpk": {"S": ""}})
    put(ddb, table, "a", 2, gpk="ok")
    with expect_error("ValidationException", "Type mismatch for Index Key"):
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": "a"}, "sk": {"N": "2"}},
            UpdateExpression="SET gpk = :v",
            ExpressionAttributeValues={":v": {"N": "5"}},
        )
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "1"}}).get("Item") is None
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "2"}})["Item"]["gpk"] == {"S": "ok"}


def test_index_limits(ddb: Any, make_table: Any) -> None:
    lsi = lambda i: {  # noqa: E731
        "IndexName": f"lsi{i}",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lsk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    with expect_error("ValidationException", "LocalSecondaryIndexes exceeds per-table limit of 5"):
        make_table(("pk", "S"), ("sk", "N"), AttributeDefinitions=ATTRS[:3],
                   LocalSecondaryIndexes=[lsi(i) for i in range(6)])
    gsi = lambda i: {  # noqa: E731
        "IndexName": f"gsi{i}",
        "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    with expect_error("ValidationException", "GlobalSecondaryIndex count exceeds the per-table limit of 20"):
        make_table(("pk", "S"), ("sk", "N"),
                   AttributeDefinitions=[ATTRS[0], ATTRS[1], ATTRS[3]],
                   GlobalSecondaryIndexes=[gsi(i) for i in range(21)])
    many = [f"a{i}" for i in range(101)]
    with expect_error("ValidationException", "100"):
        make_table(("pk", "S"), ("sk", "N"),
                   AttributeDefinitions=[ATTRS[0], ATTRS[1], ATTRS[3]],
                   GlobalSecondaryIndexes=[{**gsi(0), "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": many}}])


def test_consumed_capacity_indexes(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    out = ddb.put_item(
        TableName=table,
        Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "gpk": {"S": "g"}, "gsk": {"N": "1"}, "lsk": {"S": "l"}},
        ReturnConsumedCapacity="INDEXES",
    )
    cc = out["ConsumedCapacity"]
    assert cc["Table"]["CapacityUnits"] == 1.0
    assert cc["GlobalSecondaryIndexes"] == {
        "g_all": {"CapacityUnits": 1.0},
        "g_keys": {"CapacityUnits": 1.0},
        "g_incl": {"CapacityUnits": 1.0},
    }
    assert cc["LocalSecondaryIndexes"] == {"by_lsk": {"CapacityUnits": 1.0}}
    assert cc["CapacityUnits"] == 5.0
    # Changing a GSI key costs a delete of the old entry and a put of the new one.
    out = ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
        UpdateExpression="SET gpk = :n",
        ExpressionAttributeValues={":n": {"S": "h"}},
        ReturnConsumedCapacity="INDEXES",
    )
    gsis = out["ConsumedCapacity"]["GlobalSecondaryIndexes"]
    assert gsis["g_all"]["CapacityUnits"] == 2.0
    assert gsis["g_keys"]["CapacityUnits"] == 2.0
    total = ddb.put_item(
        TableName=table,
        Item={"pk": {"S": "b"}, "sk": {"N": "1"}},
        ReturnConsumedCapacity="TOTAL",
    )["ConsumedCapacity"]
    assert total == {"TableName": table, "CapacityUnits": 1.0}
    q = ddb.query(
        TableName=table,
        IndexName="g_all",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "h"}},
        ReturnConsumedCapacity="INDEXES",
    )["ConsumedCapacity"]
    assert q["CapacityUnits"] == 0.5
    assert q["GlobalSecondaryIndexes"] == {"g_all": {"CapacityUnits": 0.5}}


def test_item_collection_metrics(ddb: Any, make_table: Any) -> None:
    table = indexed_table(make_table)
    out = ddb.put_item(
        TableName=table,
        Item={"pk": {"S": "coll"}, "sk": {"N": "1"}, "lsk": {"S": "x"}},
        ReturnItemCollectionMetrics="SIZE",
    )
    m = out["ItemCollectionMetrics"]
    assert m["ItemCollectionKey"] == {"pk": {"S": "coll"}}
    assert len(m["SizeEstimateRangeGB"]) == 2
    assert m["SizeEstimateRangeGB"][0] <= m["SizeEstimateRangeGB"][1]


def test_update_table_creates_and_deletes_gsi_with_backfill(ddb: Any, make_table: Any) -> None:
    table = make_table(("pk", "S"), ("sk", "N"))
    n = 3000
    with ddb_batch(ddb, table) as batch:
        for i in range(n):
            item = {"pk": {"S": f"p{i % 97}"}, "sk": {"N": str(i)}, "cat": {"S": f"c{i % 13}"}}
            if i % 10 == 0:
                del item["cat"]  # sparse
            batch.append(item)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        rng = random.Random(7)
        i = n
        try:
            while not stop.is_set():
                ddb.put_item(
                    TableName=table,
                    Item={"pk": {"S": f"p{rng.randrange(97)}"}, "sk": {"N": str(i)}, "cat": {"S": f"c{i % 13}"}},
                )
                if i % 3 == 0:
                    victim = rng.randrange(n)
                    ddb.delete_item(TableName=table, Key={"pk": {"S": f"p{victim % 97}"}, "sk": {"N": str(victim)}})
                written.append(i)
                i += 1
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    ddb.update_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "cat", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by_cat",
                    "KeySchema": [
                        {"AttributeName": "cat", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    first = ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"][0]
    assert first["IndexName"] == "by_cat"
    assert first["IndexStatus"] in ("CREATING", "ACTIVE")
    if first["IndexStatus"] == "CREATING":
        assert first["Backfilling"] is True
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            gsi = ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"][0]
            if gsi["IndexStatus"] == "ACTIVE":
                break
            assert time.monotonic() < deadline, gsi
            time.sleep(0.05)
        time.sleep(0.3)  # let writes continue against the finished index too
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert written, "writers made no progress during the backfill"
    table_items, _ = collect_pages(ddb.scan, TableName=table, ConsistentRead=True)
    expected = {(it["pk"]["S"], it["sk"]["N"]) for it in table_items if "cat" in it}
    by_key = {(it["pk"]["S"], it["sk"]["N"]): it for it in table_items}

    def index_equals_table() -> None:  # the writes made after the backfill settle eventually
        index_items, _ = collect_pages(ddb.scan, TableName=table, IndexName="by_cat")
        got = [(it["pk"]["S"], it["sk"]["N"]) for it in index_items]
        assert len(got) == len(set(got)), "an item is in the index twice"
        assert set(got) == expected
        for it in index_items:
            assert it == by_key[(it["pk"]["S"], it["sk"]["N"])]
        desc = wait_active(ddb, table)
        assert desc["GlobalSecondaryIndexes"][0]["ItemCount"] == len(expected)

    eventually(index_equals_table)
    # Delete the index.
    ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_cat"}}])
    deadline = time.monotonic() + 30
    while ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with expect_error("ValidationException", "The table does not have the specified index"):
        ddb.query(
            TableName=table,
            IndexName="by_cat",
            KeyConditionExpression="cat = :c",
            ExpressionAttributeValues={":c": {"S": "c1"}},
        )


class ddb_batch:  # noqa: N801 - used as a context manager like a function
    """Collect items and write them with BatchWriteItem, retrying unprocessed ones."""

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb, self.table, self.items = ddb, table, []  # type: ignore[var-annotated]

    def __enter__(self) -> list[dict[str, Any]]:
        return self.items

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        for i in range(0, len(self.items), 25):
            pending: dict[str, Any] = {self.table: [{"PutRequest": {"Item": it}} for it in self.items[i:i + 25]]}
            while pending:
                pending = self.ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


@pytest.mark.parametrize("projection", ["KEYS_ONLY", "ALL"])
def test_gsi_on_hash_only_table(ddb: Any, make_table: Any, projection: str) -> None:
    table = make_table(
        ("id", "N"),
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}, {"AttributeName": "email", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_email",
            "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": projection},
        }],
    )
    for i in range(5):
        ddb.put_item(TableName=table, Item={"id": {"N": str(i)}, "email": {"S": f"u{i}@x"}, "name": {"S": f"n{i}"}})
    index_settled(ddb, table, "by_email", 5)
    out = ddb.query(
        TableName=table,
        IndexName="by_email",
        KeyConditionExpression="email = :e",
        ExpressionAttributeValues={":e": {"S": "u3@x"}},
    )
    assert out["Count"] == 1
    expected = {"id": {"N": "3"}, "email": {"S": "u3@x"}}
    if projection == "ALL":
        expected["name"] = {"S": "n3"}
    assert out["Items"][0] == expected
