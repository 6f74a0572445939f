"""Global secondary indexes with multi-attribute keys (up to four partition-key and four
sort-key attributes), through boto3: KeySchema validation, Query rules, index maintenance on
every write path, backfill, pagination."""

from __future__ import annotations

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

GSI_KEYS = [
    {"AttributeName": "tenant", "KeyType": "HASH"},
    {"AttributeName": "region", "KeyType": "HASH"},
    {"AttributeName": "year", "KeyType": "RANGE"},
    {"AttributeName": "month", "KeyType": "RANGE"},
    {"AttributeName": "name", "KeyType": "RANGE"},
]
ATTRS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "tenant", "AttributeType": "S"},
    {"AttributeName": "region", "AttributeType": "N"},
    {"AttributeName": "year", "AttributeType": "N"},
    {"AttributeName": "month", "AttributeType": "N"},
    {"AttributeName": "name", "AttributeType": "S"},
]


def gsi(keys: list[dict[str, str]], name: str = "multi") -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": "ALL"}}


def row(i: int, tenant: str = "acme", region: int = 1) -> dict[str, Any]:
    return {
        "pk": {"S": f"p{i:03d}"},
        "tenant": {"S": tenant},
        "region": {"N": str(region)},
        "year": {"N": str(2020 + i % 3)},
        "month": {"N": str(1 + i % 12)},
        "name": {"S": f"n{i % 5}"},
        "v": {"N": str(i)},
    }


def natural(item: dict[str, Any]) -> tuple[Any, ...]:
    return (int(item["year"]["N"]), int(item["month"]["N"]), item["name"]["S"], item["pk"]["S"])


@pytest.fixture()
def table(ddb: Any, make_table: Any) -> str:
    name = make_table(("pk", "S"), AttributeDefinitions=ATTRS, GlobalSecondaryIndexes=[gsi(GSI_KEYS)])
    for i in range(40):
        ddb.put_item(TableName=name, Item=row(i))
    for i in range(40, 46):
        ddb.put_item(TableName=name, Item=row(i, region=2))
    for i in range(46, 50):
        ddb.put_item(TableName=name, Item=row(i, tenant="other"))
    sparse = row(50)
    del sparse["month"]
    ddb.put_item(TableName=name, Item=sparse)
    index_settled(ddb, name, "multi", 50)  # the item without "month" is not indexed
    return name


def query(ddb: Any, table: str, cond: str, values: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    items, _ = collect_pages(
        ddb.query,
        TableName=table,
        IndexName="multi",
        KeyConditionExpression=cond,
        ExpressionAttributeValues=values,
        **kw,
    )
    return items


HASH_COND = "tenant = :t AND #r = :r"
HASH_VALUES = {":t": {"S": "acme"}, ":r": {"N": "1"}}
NAMES = {"#r": "region", "#y": "year", "#m": "month", "#n": "name"}


def test_describe_table_reports_the_key_schema_as_given(ddb: Any, table: str) -> None:
    def check() -> dict[str, Any]:
        desc: dict[str, Any] = ddb.describe_table(TableName=table)["Table"]
        assert desc["GlobalSecondaryIndexes"][0]["ItemCount"] == 50  # the item without "month" is not indexed
        return desc

    desc = eventually(check)
    (ix,) = desc["GlobalSecondaryIndexes"]
    assert ix["KeySchema"] == GSI_KEYS
    assert ix["IndexStatus"] == "ACTIVE"
    assert sorted(d["AttributeName"] for d in desc["AttributeDefinitions"]) == sorted(a["AttributeName"] for a in ATTRS)


def test_query_by_partition_attributes_returns_sort_order(ddb: Any, table: str) -> None:
    got = query(ddb, table, HASH_COND, HASH_VALUES, ExpressionAttributeNames={"#r": "region"})
    assert [i["pk"]["S"] for i in got] == [i["pk"]["S"] for i in sorted((row(i) for i in range(40)), key=natural)]
    back = query(ddb, table, HASH_COND, HASH_VALUES, ExpressionAttributeNames={"#r": "region"}, ScanIndexForward=False)
    assert back == got[::-1]
    other = query(ddb, table, HASH_COND, {":t": {"S": "acme"}, ":r": {"N": "2"}}, ExpressionAttributeNames={"#r": "region"})
    assert sorted(i["pk"]["S"] for i in other) == [f"p{i:03d}" for i in range(40, 46)]


@pytest.mark.parametrize(
    ("cond", "values", "keep"),
    [
        ("#y = :y", {":y": {"N": "2021"}}, lambda y, m, n: y == 2021),
        ("#y = :y AND #m = :m", {":y": {"N": "2021"}, ":m": {"N": "5"}}, lambda y, m, n: y == 2021 and m == 5),
        ("#y = :y AND #m > :m", {":y": {"N": "2021"}, ":m": {"N": "4"}}, lambda y, m, n: y == 2021 and m > 4),
        ("#y = :y AND #m <= :m", {":y": {"N": "2022"}, ":m": {"N": "6"}}, lambda y, m, n: y == 2022 and m <= 6),
        ("#y = :y AND #m BETWEEN :a AND :b", {":y": {"N": "2020"}, ":a": {"N": "3"}, ":b": {"N": "9"}},
         lambda y, m, n: y == 2020 and 3 <= m <= 9),
        ("#y = :y AND #m = :m AND begins_with(#n, :n)", {":y": {"N": "2020"}, ":m": {"N": "1"}, ":n": {"S": "n"}},
         lambda y, m, n: y == 2020 and m == 1),
        ("#y = :y AND #m = :m AND #n >= :n", {":y": {"N": "2021"}, ":m": {"N": "2"}, ":n": {"S": "n2"}},
         lambda y, m, n: y == 2021 and m == 2 and n >= "n2"),
        ("#y < :y", {":y": {"N": "2021"}}, lambda y, m, n: y < 2021),
    ],
)
def test_query_sort_attributes_left_to_right(ddb: Any, table: str, cond: str, values: dict[str, Any], keep: Any) -> None:
    names = {k: v for k, v in NAMES.items() if k in cond or k == "#r"}
    got = query(ddb, table, f"{HASH_COND} AND {cond}", {**HASH_VALUES, **values}, ExpressionAttributeNames=names)
    want = [
        r for r in sorted((row(i) for i in range(40)), key=natural)
        if keep(int(r["year"]["N"]), int(r["month"]["N"]), r["name"]["S"])
    ]
    assert want, "the case selects nothing"
    assert [i["pk"]["S"] for i in got] == [r["pk"]["S"] for r in want]


def test_legacy_key_conditions(ddb: Any, table: str) -> None:
    out = ddb.query(
        TableName=table,
        IndexName="multi",
        KeyConditions={
            "tenant": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "acme"}]},
            "region": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]},
            "year": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "2020"}]},
            "month": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "10"}]},
        },
    )
    assert sorted(i["pk"]["S"] for i in out["Items"]) == sorted(
        r["pk"]["S"] for r in (row(i) for i in range(40)) if r["year"]["N"] == "2020" and int(r["month"]["N"]) >= 10
    )


def test_pagination_last_evaluated_key_has_every_key_attribute(ddb: Any, table: str) -> None:
    items, pages = collect_pages(
        ddb.query,
        TableName=table,
        IndexName="multi",
        KeyConditionExpression=HASH_COND + " AND #y = :y",
        ExpressionAttributeNames={"#r": "region", "#y": "year"},
        ExpressionAttributeValues={**HASH_VALUES, ":y": {"N": "2021"}},
        Limit=3,
    )
    assert len(pages) > 2
    lek = pages[0]["LastEvaluatedKey"]
    assert set(lek) == {"pk", "tenant", "region", "year", "month", "name"}
    want = sorted((row(i) for i in range(40) if row(i)["year"]["N"] == "2021"), key=natural)
    assert [i["pk"]["S"] for i in items] == [r["pk"]["S"] for r in want]
    scanned, scan_pages = collect_pages(ddb.scan, TableName=table, IndexName="multi", Limit=7)
    assert len(scan_pages) > 2 and set(scan_pages[0]["LastEvaluatedKey"]) == set(lek)
    assert sorted(i["pk"]["S"] for i in scanned) == [f"p{i:03d}" for i in range(50)]


def test_start_key_outside_the_condition_is_refused(ddb: Any, table: str) -> None:
    page = ddb.query(
        TableName=table, IndexName="multi", KeyConditionExpression=HASH_COND,
        ExpressionAttributeNames={"#r": "region"}, ExpressionAttributeValues=HASH_VALUES, Limit=1,
    )
    lek = page["LastEvaluatedKey"]
    with expect_error("ValidationException", "does not match the range key predicate"):
        ddb.query(
            TableName=table, IndexName="multi", KeyConditionExpression=HASH_COND + " AND #y = :y",
            ExpressionAttributeNames={"#r": "region", "#y": "year"},
            ExpressionAttributeValues={**HASH_VALUES, ":y": {"N": str(int(lek["year"]["N"]) + 1)}},
            ExclusiveStartKey=lek,
        )


@pytest.mark.parametrize(
    ("cond", "values", "message"),
    [
        ("tenant = :t", {":t": {"S": "acme"}}, "Query condition missed key schema element: region"),
        ("tenant = :t AND #r > :r", {":t": {"S": "acme"}, ":r": {"N": "1"}}, "Query key condition not supported"),
        (HASH_COND + " AND #m = :m", {**HASH_VALUES, ":m": {"N": "1"}}, "Query condition missed key schema element: year"),
        (HASH_COND + " AND #y = :y AND #n = :n", {**HASH_VALUES, ":y": {"N": "2020"}, ":n": {"S": "n1"}},
         "Query condition missed key schema element: month"),
        (HASH_COND + " AND #y > :y AND #m = :m", {**HASH_VALUES, ":y": {"N": "2020"}, ":m": {"N": "1"}},
         "sort key attribute year must use the = operator"),
        (HASH_COND + " AND #y = :y", {**HASH_VALUES, ":y": {"S": "2020"}}, "Condition parameter type does not match schema type"),
        (HASH_COND + " AND v = :y", {**HASH_VALUES, ":y": {"N": "2020"}}, "Query condition missed key schema element: year"),
    ],
)
def test_query_rule_violations(ddb: Any, table: str, cond: str, values: dict[str, Any], message: str) -> None:
    names = {k: v for k, v in NAMES.items() if k in cond}
    with expect_error("ValidationException", message):
        ddb.query(
            TableName=table, IndexName="multi", KeyConditionExpression=cond,
            ExpressionAttributeValues=values, **({"ExpressionAttributeNames": names} if names else {}),
        )


def test_every_write_path_maintains_the_index(ddb: Any, make_table: Any) -> None:
    t = make_table(("pk", "S"), AttributeDefinitions=ATTRS, GlobalSecondaryIndexes=[gsi(GSI_KEYS)])

    def indexed(*want: str) -> None:
        def check() -> None:
            items, _ = collect_pages(ddb.scan, TableName=t, IndexName="multi")
            assert sorted(i["pk"]["S"] for i in items) == list(want)

        eventually(check)

    def queried(cond: str, values: dict[str, Any], names: dict[str, str], *want: str) -> None:
        def check() -> None:
            assert [i["pk"]["S"] for i in query(ddb, t, cond, values, ExpressionAttributeNames=names)] == list(want)

        eventually(check)

    ddb.put_item(TableName=t, Item=row(1))
    partial = row(2)
    del partial["region"]
    ddb.put_item(TableName=t, Item=partial)
    indexed("p001")
    # UpdateItem adds the missing attribute: indexed now; then moves it to another partition.
    ddb.update_item(TableName=t, Key={"pk": {"S": "p002"}}, UpdateExpression="SET #r = :r",
                    ExpressionAttributeNames={"#r": "region"}, ExpressionAttributeValues={":r": {"N": "9"}})
    indexed("p001", "p002")
    queried(HASH_COND, {":t": {"S": "acme"}, ":r": {"N": "9"}}, {"#r": "region"}, "p002")
    # Removing one sort attribute takes the item out of the index.
    ddb.update_item(TableName=t, Key={"pk": {"S": "p001"}}, UpdateExpression="REMOVE #n",
                    ExpressionAttributeNames={"#n": "name"})
    indexed("p002")
    ddb.batch_write_item(RequestItems={t: [
        {"PutRequest": {"Item": row(3)}},
        {"PutRequest": {"Item": row(4)}},
        {"DeleteRequest": {"Key": {"pk": {"S": "p002"}}}},
    ]})
    indexed("p003", "p004")
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": t, "Item": row(5)}},
        {"Delete": {"TableName": t, "Key": {"pk": {"S": "p003"}}}},
        {"Update": {"TableName": t, "Key": {"pk": {"S": "p004"}}, "UpdateExpression": "SET #y = :y",
                    "ExpressionAttributeNames": {"#y": "year"}, "ExpressionAttributeValues": {":y": {"N": "1999"}}}},
    ])
    indexed("p004", "p005")
    queried(HASH_COND + " AND #y = :y", {**HASH_VALUES, ":y": {"N": "1999"}}, {"#r": "region", "#y": "year"}, "p004")
    ddb.delete_item(TableName=t, Key={"pk": {"S": "p004"}})
    indexed("p005")
    # A key attribute of the wrong type is refused, as for any index key.
    with expect_error("ValidationException", "Type mismatch for Index Key month"):
        ddb.put_item(TableName=t, Item={**row(6), "month": {"S": "June"}})


def test_update_table_backfills_a_multi_attribute_index(ddb: Any, make_table: Any) -> None:
    t = make_table(("pk", "S"))
    for i in range(60):
        ddb.put_item(TableName=t, Item=row(i, region=i % 2))
    ddb.update_table(
        TableName=t,
        AttributeDefinitions=ATTRS,
        GlobalSecondaryIndexUpdates=[{"Create": gsi(GSI_KEYS)}],
    )
    deadline = time.monotonic() + 60
    while True:
        (ix,) = ddb.describe_table(TableName=t)["Table"]["GlobalSecondaryIndexes"]
        if ix["IndexStatus"] == "ACTIVE":
            break
        assert time.monotonic() < deadline, ix
        time.sleep(0.05)
    assert ix["KeySchema"] == GSI_KEYS
    got = query(ddb, t, HASH_COND, {":t": {"S": "acme"}, ":r": {"N": "1"}}, ExpressionAttributeNames={"#r": "region"})
    want = sorted((row(i, region=i % 2) for i in range(60) if i % 2 == 1), key=natural)
    assert [i["pk"]["S"] for i in got] == [r["pk"]["S"] for r in want]


def _keys(*spec: str) -> list[dict[str, str]]:
    return [{"AttributeName": s.split(":")[0], "KeyType": s.split(":")[1]} for s in spec]


def _defs(*names: str) -> list[dict[str, str]]:
    return [{"AttributeName": "pk", "AttributeType": "S"}] + [{"AttributeName": n, "AttributeType": "S"} for n in names]


@pytest.mark.parametrize(
    ("keys", "defs", "message"),
    [
        (_keys("a:HASH", "b:HASH", "c:HASH", "d:HASH", "e:HASH"), _defs("a", "b", "c", "d", "e"),
         "exceeds the limit of 4 partition key attributes"),
        (_keys("a:HASH", "b:RANGE", "c:RANGE", "d:RANGE", "e:RANGE", "f:RANGE"), _defs("a", "b", "c", "d", "e", "f"),
         "exceeds the limit of 4 sort key attributes"),
        (_keys("a:HASH", "b:RANGE", "c:HASH"), _defs("a", "b", "c"), "must come before the RANGE key type ones"),
        (_keys("a:HASH", "b:HASH", "a:RANGE"), _defs("a", "b"), "Duplicate key attribute name in the KeySchema: a"),
        (_keys("a:RANGE", "b:HASH", "c:HASH"), _defs("a", "b", "c"), "The first KeySchemaElement is not a HASH key type"),
        (_keys("a:HASH", "b:HASH", "c:RANGE"), _defs("a", "b"), "Some index key attributes are not defined in AttributeDefinitions"),
    ],
)
def test_gsi_key_schema_validation(ddb: Any, make_table: Any, keys: list[dict[str, str]], defs: list[dict[str, str]], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.create_table(
            TableName="it_multi_bad",
            KeySchema=_keys("pk:HASH"),
            AttributeDefinitions=defs,
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[gsi(keys)],
        )
    t = make_table(("pk", "S"))
    with expect_error("ValidationException", message):
        ddb.update_table(TableName=t, AttributeDefinitions=defs, GlobalSecondaryIndexUpdates=[{"Create": gsi(keys)}])


def test_gsi_key_schema_of_more_than_eight_elements(ddb: Any) -> None:
    keys = _keys(*(f"a{i}:HASH" for i in range(4)), *(f"b{i}:RANGE" for i in range(5)))
    with expect_error("ValidationException", "Member must have length less than or equal to 8"):
        ddb.create_table(
            TableName="it_multi_bad", KeySchema=_keys("pk:HASH"),
            AttributeDefinitions=_defs(*(k["AttributeName"] for k in keys)),
            BillingMode="PAY_PER_REQUEST", GlobalSecondaryIndexes=[gsi(keys)],
        )


def test_tables_and_local_indexes_keep_single_attribute_keys(ddb: Any) -> None:
    with expect_error("ValidationException", "The second KeySchemaElement is not a RANGE key type"):
        ddb.create_table(TableName="it_multi_bad", KeySchema=_keys("pk:HASH", "a:HASH"),
                         AttributeDefinitions=_defs("a"), BillingMode="PAY_PER_REQUEST")
    with expect_error("ValidationException", "Member must have length less than or equal to 2"):
        ddb.create_table(TableName="it_multi_bad", KeySchema=_keys("pk:HASH", "a:RANGE", "b:RANGE"),
                         AttributeDefinitions=_defs("a", "b"), BillingMode="PAY_PER_REQUEST")
    with expect_error("ValidationException", "Member must have length less than or equal to 2"):
        ddb.create_table(
            TableName="it_multi_bad", KeySchema=_keys("pk:HASH", "a:RANGE"),
            AttributeDefinitions=_defs("a", "b", "c"), BillingMode="PAY_PER_REQUEST",
            LocalSecondaryIndexes=[{"IndexName": "lsi", "KeySchema": _keys("pk:HASH", "b:RANGE", "c:RANGE"),
                                    "Projection": {"ProjectionType": "ALL"}}],
        )


def test_two_partition_attributes_without_sort_key(ddb: Any, make_table: Any) -> None:
    t = make_table(("pk", "S"), AttributeDefinitions=_defs("a", "b"),
                   GlobalSecondaryIndexes=[gsi(_keys("a:HASH", "b:HASH"))])
    wait_active(ddb, t)
    for i in range(6):
        ddb.put_item(TableName=t, Item={"pk": {"S": f"p{i}"}, "a": {"S": f"a{i % 2}"}, "b": {"S": f"b{i % 3}"}})
    index_settled(ddb, t, "multi", 6)
    out = ddb.query(TableName=t, IndexName="multi", KeyConditionExpression="a = :a AND b = :b",
                    ExpressionAttributeValues={":a": {"S": "a0"}, ":b": {"S": "b0"}})
    assert [i["pk"]["S"] for i in out["Items"]] == ["p0"]
    desc = ddb.describe_table(TableName=t)["Table"]["GlobalSecondaryIndexes"][0]
    assert desc["KeySchema"] == _keys("a:HASH", "b:HASH")


def test_partiql_select_on_a_multi_attribute_index(ddb: Any, table: str) -> None:
    # Every partition-key attribute given: a Query of the partition, in index order.
    out = ddb.execute_statement(
        Statement=f'SELECT pk FROM "{table}"."multi" WHERE tenant = ? AND region = ? AND "year" = ?',
        Parameters=[{"S": "acme"}, {"N": "1"}, {"N": "2022"}],
    )
    want = sorted((row(i) for i in range(40) if row(i)["year"]["N"] == "2022"), key=natural)
    assert [i["pk"]["S"] for i in out["Items"]] == [r["pk"]["S"] for r in want]
    # Only part of the partition key: every matching entry all the same (a filtered scan).
    out = ddb.execute_statement(
        Statement=f'SELECT pk FROM "{table}"."multi" WHERE tenant = ? AND "month" = ?',
        Parameters=[{"S": "acme"}, {"N": "3"}],
    )
    want_pks = sorted(r["pk"]["S"] for r in (row(i) for i in range(40)) if r["month"]["N"] == "3")
    want_pks += sorted(r["pk"]["S"] for r in (row(i, region=2) for i in range(40, 46)) if r["month"]["N"] == "3")
    assert sorted(i["pk"]["S"] for i in out["Items"]) == sorted(want_pks)
