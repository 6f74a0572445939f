"""Query and Scan through boto3: sort-key order for S/N/B in both directions, every key
condition operator, filters, 1 MB pages measured before the filter, Limit, ExclusiveStartKey,
Select/Count/ScannedCount, parallel scan segments, and their errors."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.helpers import TableFactory, collect_pages, expect_error

S_KEYS = ["a", "B", "b", "aa", "A", "é", "z", "€", "𝄞", "\uff21", "\u00ff", "a\u0000", "0", " "]
N_KEYS = [
    "-1e10", "-100", "-1.5", "-1", "-0.001", "0", "1e-10", "0.5", "1", "1.5", "10", "99", "100",
    "1e10", "9.9999999999999999999999999999999999999E+125", "-9.9999999999999999999999999999999999999E+125",
    "1E-130", "-1E-130", "12345678901234567890123456789012345678",
]
B_KEYS = [b"\x00", b"\x00\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xff\x00", b"a", b"\x10\xff"]


def put_all(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        pending: dict[str, Any] = {table: batch}
        for _ in range(50):
            out = ddb.batch_write_item(RequestItems=pending)
            pending = out.get("UnprocessedItems") or {}
            if not pending:
                break
        assert not pending


@pytest.fixture(scope="module")
def s_table(ddb: Any, module_tables: TableFactory) -> str:
    name = module_tables(("pk", "S"), ("sk", "S"))
    put_all(ddb, name, [{"pk": {"S": "p"}, "sk": {"S": k}, "v": {"N": str(i)}} for i, k in enumerate(S_KEYS)])
    return name


@pytest.fixture(scope="module")
def n_table(ddb: Any, module_tables: TableFactory) -> str:
    name = module_tables(("pk", "S"), ("sk", "N"))
    put_all(ddb, name, [{"pk": {"S": "p"}, "sk": {"N": k}, "odd": {"BOOL": i % 2 == 1}, "par": {"N": str(i % 2)}} for i, k in enumerate(N_KEYS)])
    put_all(ddb, name, [{"pk": {"S": "other"}, "sk": {"N": str(i)}} for i in range(3)])
    return name


@pytest.fixture(scope="module")
def b_table(ddb: Any, module_tables: TableFactory) -> str:
    name = module_tables(("pk", "S"), ("sk", "B"))
    put_all(ddb, name, [{"pk": {"S": "p"}, "sk": {"B": k}} for k in B_KEYS])
    return name


def query_all(ddb: Any, table: str, **kwargs: Any) -> list[dict[str, Any]]:
    items, _ = collect_pages(ddb.query, TableName=table, **kwargs)
    return items


def pk_is(pk: str, **extra_values: Any) -> dict[str, Any]:
    return {
        "KeyConditionExpression": "pk = :pk" + extra_values.pop("_cond", ""),
        "ExpressionAttributeValues": {":pk": {"S": pk}, **extra_values},
    }


def canonical(n: str) -> Decimal:
    return Decimal(n)


def test_string_sort_order_is_utf8_bytes(ddb: Any, s_table: str) -> None:
    expected = sorted(S_KEYS, key=lambda s: s.encode("utf-8"))
    forward = [i["sk"]["S"] for i in query_all(ddb, s_table, **pk_is("p"))]
    assert forward == expected
    backward = [i["sk"]["S"] for i in query_all(ddb, s_table, ScanIndexForward=False, **pk_is("p"))]
    assert backward == expected[::-1]


def test_number_sort_order_is_numeric(ddb: Any, n_table: str) -> None:
    expected = sorted(Decimal(k) for k in N_KEYS)
    forward = [Decimal(i["sk"]["N"]) for i in query_all(ddb, n_table, **pk_is("p"))]
    assert forward == expected
    backward = [Decimal(i["sk"]["N"]) for i in query_all(ddb, n_table, ScanIndexForward=False, **pk_is("p"))]
    assert backward == expected[::-1]


def test_binary_sort_order_is_unsigned_bytes(ddb: Any, b_table: str) -> None:
    expected = sorted(B_KEYS)
    forward = [i["sk"]["B"] for i in query_all(ddb, b_table, **pk_is("p"))]
    assert forward == expected
    backward = [i["sk"]["B"] for i in query_all(ddb, b_table, ScanIndexForward=False, **pk_is("p"))]
    assert backward == expected[::-1]


NUM_CONDITIONS = [
    (" AND sk = :a", {":a": {"N": "1.50"}}, lambda d: d == Decimal("1.5")),
    (" AND sk < :a", {":a": {"N": "0"}}, lambda d: d < 0),
    (" AND sk <= :a", {":a": {"N": "0"}}, lambda d: d <= 0),
    (" AND sk > :a", {":a": {"N": "1"}}, lambda d: d > 1),
    (" AND sk >= :a", {":a": {"N": "1"}}, lambda d: d >= 1),
    (" AND sk BETWEEN :a AND :b", {":a": {"N": "-1.5"}, ":b": {"N": "10"}}, lambda d: Decimal("-1.5") <= d <= 10),
    (" AND sk BETWEEN :a AND :b", {":a": {"N": "2"}, ":b": {"N": "2"}}, lambda d: d == 2),
    (" AND (sk > :a)", {":a": {"N": "99"}}, lambda d: d > 99),
]


@pytest.mark.parametrize(("cond", "values", "predicate"), NUM_CONDITIONS)
@pytest.mark.parametrize("forward", [True, False])
def test_key_conditions_numbers(
    ddb: Any, n_table: str, cond: str, values: dict[str, Any], predicate: Any, forward: bool
) -> None:
    expected = sorted((Decimal(k) for k in N_KEYS if predicate(Decimal(k))), reverse=not forward)
    got = query_all(ddb, n_table, ScanIndexForward=forward, **pk_is("p", _cond=cond, **values))
    assert [Decimal(i["sk"]["N"]) for i in got] == expected


STR_CONDITIONS = [
    (" AND begins_with(sk, :a)", {":a": {"S": "a"}}, lambda s: s.startswith("a")),
    (" AND begins_with(sk, :a)", {":a": {"S": "é"}}, lambda s: s.startswith("é")),
    (" AND sk BETWEEN :a AND :b", {":a": {"S": "B"}, ":b": {"S": "b"}}, lambda s: b"B" <= s.encode() <= b"b"),
    (" AND sk > :a", {":a": {"S": "z"}}, lambda s: s.encode() > b"z"),
    (" AND sk < :a", {":a": {"S": "a"}}, lambda s: s.encode() < b"a"),
]


@pytest.mark.parametrize(("cond", "values", "predicate"), STR_CONDITIONS)
def test_key_conditions_strings(ddb: Any, s_table: str, cond: str, values: dict[str, Any], predicate: Any) -> None:
    expected = sorted((k for k in S_KEYS if predicate(k)), key=lambda s: s.encode())
    got = query_all(ddb, s_table, **pk_is("p", _cond=cond, **values))
    assert [i["sk"]["S"] for i in got] == expected


def test_legacy_key_conditions_between_and_begins_with(ddb: Any, s_table: str) -> None:
    got = query_all(ddb, s_table, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
        "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "a"}]},
    })
    assert [i["sk"]["S"] for i in got] == sorted((k for k in S_KEYS if k.startswith("a")), key=lambda s: s.encode())
    got = query_all(ddb, s_table, ScanIndexForward=False, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "B"}, {"S": "b"}]},
    })
    assert [i["sk"]["S"] for i in got] == sorted(
        (k for k in S_KEYS if b"B" <= k.encode() <= b"b"), key=lambda s: s.encode(), reverse=True
    )


def test_key_condition_binary_begins_with(ddb: Any, b_table: str) -> None:
    got = query_all(ddb, b_table, **pk_is("p", _cond=" AND begins_with(sk, :a)", **{":a": {"B": b"\x00"}}))
    assert [i["sk"]["B"] for i in got] == [b"\x00", b"\x00\x00"]
    got = query_all(ddb, b_table, **pk_is("p", _cond=" AND sk >= :a", **{":a": {"B": b"\x80"}}))
    assert [i["sk"]["B"] for i in got] == [b"\x80", b"\xff", b"\xff\x00"]


def test_query_with_names_and_legacy_key_conditions(ddb: Any, n_table: str) -> None:
    got = query_all(
        ddb, n_table, KeyConditionExpression="#p = :pk AND #s BETWEEN :a AND :b",
        ExpressionAttributeNames={"#p": "pk", "#s": "sk"},
        ExpressionAttributeValues={":pk": {"S": "other"}, ":a": {"N": "1"}, ":b": {"N": "5"}},
    )
    assert [i["sk"]["N"] for i in got] == ["1", "2"]
    legacy = query_all(
        ddb, n_table,
        KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "other"}]},
            "sk": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "1"}]},
        },
    )
    assert [i["sk"]["N"] for i in legacy] == ["1", "2"]
    assert query_all(ddb, n_table, **pk_is("nobody")) == []


def test_filter_count_and_scanned_count(ddb: Any, n_table: str) -> None:
    page = ddb.query(
        TableName=n_table, FilterExpression="odd = :t",
        **pk_is("p", **{":t": {"BOOL": True}}),
    )
    assert page["ScannedCount"] == len(N_KEYS)
    assert page["Count"] == len(N_KEYS) // 2
    assert all(i["odd"] == {"BOOL": True} for i in page["Items"])
    legacy = ddb.query(
        TableName=n_table,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
        QueryFilter={"par": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}},
    )
    assert legacy["Count"] == page["Count"] and legacy["ScannedCount"] == page["ScannedCount"]
    count = ddb.query(TableName=n_table, Select="COUNT", **pk_is("p"))
    assert count["Count"] == len(N_KEYS) and "Items" not in count
    projected = ddb.query(
        TableName=n_table, Select="SPECIFIC_ATTRIBUTES", ProjectionExpression="sk", **pk_is("other")
    )
    assert projected["Items"] == [{"sk": {"N": str(i)}} for i in range(3)]
    everything = ddb.query(TableName=n_table, Select="ALL_ATTRIBUTES", **pk_is("other"))
    assert everything["Items"][0] == {"pk": {"S": "other"}, "sk": {"N": "0"}}


def test_limit_and_exclusive_start_key(ddb: Any, n_table: str) -> None:
    ordered = sorted(Decimal(k) for k in N_KEYS)
    page = ddb.query(TableName=n_table, Limit=4, **pk_is("p"))
    assert [Decimal(i["sk"]["N"]) for i in page["Items"]] == ordered[:4]
    assert page["Count"] == 4 and page["ScannedCount"] == 4
    assert page["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": page["Items"][-1]["sk"]}
    nxt = ddb.query(TableName=n_table, Limit=4, ExclusiveStartKey=page["LastEvaluatedKey"], **pk_is("p"))
    assert [Decimal(i["sk"]["N"]) for i in nxt["Items"]] == ordered[4:8]
    back = ddb.query(
        TableName=n_table, Limit=3, ScanIndexForward=False, ExclusiveStartKey=nxt["LastEvaluatedKey"], **pk_is("p")
    )
    assert [Decimal(i["sk"]["N"]) for i in back["Items"]] == ordered[4:7][::-1]
    # Limit counts items read before the filter.
    filtered = ddb.query(
        TableName=n_table, Limit=6, FilterExpression="odd = :t", **pk_is("p", **{":t": {"BOOL": True}})
    )
    assert filtered["ScannedCount"] == 6 and filtered["Count"] <= 6
    assert "LastEvaluatedKey" in filtered
    # A page that stops exactly at Limit still carries LastEvaluatedKey; the next one is empty.
    full = ddb.query(TableName=n_table, Limit=3, **pk_is("other"))
    assert full["Count"] == 3 and "LastEvaluatedKey" in full
    last = ddb.query(TableName=n_table, Limit=3, ExclusiveStartKey=full["LastEvaluatedKey"], **pk_is("other"))
    assert last["Count"] == 0 and "LastEvaluatedKey" not in last
    paged = query_all(ddb, n_table, Limit=5, **pk_is("p"))
    assert [Decimal(i["sk"]["N"]) for i in paged] == ordered


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"KeyConditionExpression": "sk = :a", "ExpressionAttributeValues": {":a": {"N": "1"}}},
         "Query condition missed key schema element: pk"),
        ({"KeyConditionExpression": "pk = :p OR sk = :a",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "1"}}},
         "Invalid operator used in KeyConditionExpression: OR"),
        ({"KeyConditionExpression": "pk = :p AND sk <> :a",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "1"}}},
         "Invalid operator used in KeyConditionExpression: <>"),
        ({"KeyConditionExpression": "pk = :p AND val = :a",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "1"}}},
         "Query condition missed key schema element: sk"),
        ({"KeyConditionExpression": "pk > :p", "ExpressionAttributeValues": {":p": {"S": "p"}}},
         "Query key condition not supported"),
        ({"KeyConditionExpression": "pk = :p AND sk = :a",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"S": "1"}}},
         "One or more parameter values were invalid: Condition parameter type does not match schema type"),
        ({"KeyConditionExpression": "pk = :p AND sk > :a AND sk < :b",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "1"}, ":b": {"N": "5"}}},
         "KeyConditionExpressions must only contain one condition per key"),
        ({"KeyConditionExpression": "pk = :p AND attribute_exists(sk)", "ExpressionAttributeValues": {":p": {"S": "p"}}},
         "Invalid operator used in KeyConditionExpression: attribute_exists"),
        ({"KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :a",
          "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "1"}}},
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
        ({}, "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}},
          "ExclusiveStartKey": {"pk": {"S": "p"}}},
         "The provided starting key is invalid"),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}},
          "ExclusiveStartKey": {"pk": {"S": "other"}, "sk": {"N": "1"}}},
         "The provided starting key is outside query boundaries based on provided conditions"),
        ({"KeyConditionExpression": "pk = :p AND sk > :a", "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "5"}},
          "ExclusiveStartKey": {"pk": {"S": "p"}, "sk": {"N": "1"}}},
         "The provided starting key does not match the range key predicate"),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}, "Limit": 0},
         "Member must have value greater than or equal to 1"),
        # dynalite deviates: it does not check Select against the projection.
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}},
          "Select": "ALL_ATTRIBUTES", "ProjectionExpression": "sk"},
         "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}},
          "Select": "COUNT", "ProjectionExpression": "sk"},
         "Cannot specify the ProjectionExpression when choosing to get COUNT"),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}},
          "Select": "ALL_PROJECTED_ATTRIBUTES"},
         "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"),
        ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}, "Select": "ALL"},
         "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"),
    ],
)
def test_query_errors(ddb: Any, n_table: str, kwargs: dict[str, Any], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.query(TableName=n_table, **kwargs)


# --------------------------------------------------------------------------- 1 MB pages


@pytest.fixture(scope="module")
def big_table(ddb: Any, module_tables: TableFactory) -> str:
    # 150 items of ~10 KB: about 1.5 MB in one partition.
    name = module_tables(("pk", "S"), ("sk", "N"))
    put_all(ddb, name, [{"pk": {"S": "big"}, "sk": {"N": str(i)}, "d": {"S": "x" * 10_000}} for i in range(150)])
    return name


def test_query_pages_at_one_megabyte(ddb: Any, big_table: str) -> None:
    first = ddb.query(TableName=big_table, **pk_is("big"))
    assert "LastEvaluatedKey" in first
    # 1 MB / ~10 KB per item: the page holds roughly a hundred items.
    assert 95 <= first["Count"] <= 106, first["Count"]
    items, pages = collect_pages(ddb.query, TableName=big_table, **pk_is("big"))
    assert len(pages) == 2
    assert [int(i["sk"]["N"]) for i in items] == list(range(150))


def test_query_page_limit_is_measured_before_the_filter(ddb: Any, big_table: str) -> None:
    kwargs = pk_is("big", **{":no": {"S": "no match"}})
    first = ddb.query(TableName=big_table, FilterExpression="d = :no", **kwargs)
    assert first["Count"] == 0 and first["Items"] == []
    assert 95 <= first["ScannedCount"] <= 106
    assert "LastEvaluatedKey" in first
    _, pages = collect_pages(ddb.query, TableName=big_table, FilterExpression="d = :no", **kwargs)
    assert sum(p["ScannedCount"] for p in pages) == 150
    assert sum(p["Count"] for p in pages) == 0


def test_scan_pages_at_one_megabyte(ddb: Any, big_table: str) -> None:
    first = ddb.scan(TableName=big_table, FilterExpression="d = :no", ExpressionAttributeValues={":no": {"S": "no"}})
    assert first["Count"] == 0
    assert 95 <= first["ScannedCount"] <= 106
    assert "LastEvaluatedKey" in first
    items, pages = collect_pages(ddb.scan, TableName=big_table)
    assert len(pages) == 2
    assert sorted(int(i["sk"]["N"]) for i in items) == list(range(150))


# --------------------------------------------------------------------------- Scan


@pytest.fixture(scope="module")
def scan_table(ddb: Any, module_tables: TableFactory) -> str:
    name = module_tables(("pk", "S"))
    put_all(ddb, name, [{"pk": {"S": f"k{i:03d}"}, "n": {"N": str(i)}, "tag": {"S": "even" if i % 2 == 0 else "odd"}}
                        for i in range(200)])
    return name


def test_scan_everything_once(ddb: Any, scan_table: str) -> None:
    items, _ = collect_pages(ddb.scan, TableName=scan_table, Limit=17)
    keys = [i["pk"]["S"] for i in items]
    assert len(keys) == 200 and set(keys) == {f"k{i:03d}" for i in range(200)}
    page = ddb.scan(TableName=scan_table, Limit=17)
    assert page["Count"] == 17 and page["ScannedCount"] == 17
    assert set(page["LastEvaluatedKey"]) == {"pk"}


def test_scan_filters_and_select(ddb: Any, scan_table: str) -> None:
    items, pages = collect_pages(
        ddb.scan, TableName=scan_table, FilterExpression="tag = :t AND n < :m",
        ExpressionAttributeValues={":t": {"S": "even"}, ":m": {"N": "50"}},
    )
    assert sorted(int(i["n"]["N"]) for i in items) == list(range(0, 50, 2))
    assert sum(p["ScannedCount"] for p in pages) == 200
    legacy, _ = collect_pages(
        ddb.scan, TableName=scan_table,
        ScanFilter={"tag": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "even"}]},
                    "n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "50"}]}},
    )
    assert sorted(int(i["n"]["N"]) for i in legacy) == list(range(0, 50, 2))
    # dynalite deviates: it ends an OR at the first condition that fails.
    either, _ = collect_pages(
        ddb.scan, TableName=scan_table, ConditionalOperator="OR",
        ScanFilter={"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "2"}]},
                    "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k199"}]}},
    )
    assert sorted(i["pk"]["S"] for i in either) == ["k000", "k001", "k199"]
    count = ddb.scan(TableName=scan_table, Select="COUNT", FilterExpression="tag = :t",
                     ExpressionAttributeValues={":t": {"S": "odd"}})
    assert count["Count"] == 100 and count["ScannedCount"] == 200 and "Items" not in count
    projected, _ = collect_pages(ddb.scan, TableName=scan_table, ProjectionExpression="n")
    assert all(set(i) == {"n"} for i in projected)
    legacy_projected, _ = collect_pages(ddb.scan, TableName=scan_table, AttributesToGet=["tag"])
    assert all(set(i) == {"tag"} for i in legacy_projected)


@pytest.mark.parametrize("total", [1, 3, 4, 7])
def test_parallel_scan_segments_partition_the_table(ddb: Any, scan_table: str, total: int) -> None:
    seen: list[str] = []
    for segment in range(total):
        items, _ = collect_pages(ddb.scan, TableName=scan_table, Segment=segment, TotalSegments=total, Limit=30)
        seen.extend(i["pk"]["S"] for i in items)
    assert len(seen) == 200
    assert set(seen) == {f"k{i:03d}" for i in range(200)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"Segment": 4, "TotalSegments": 4},
         "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
         "Segment: 4 is not less than TotalSegments: 4"),
        ({"Segment": 1}, "The TotalSegments parameter is required but was not present in the request when "
                         "Segment parameter is present"),
        ({"TotalSegments": 2}, "The Segment parameter is required but was not present in the request when "
                               "parameter TotalSegments is present"),
        # dynalite deviates: it has no upper bound on TotalSegments.
        ({"Segment": 0, "TotalSegments": 1000001}, "Member must have value less than or equal to 1000000"),
        ({"Segment": -1, "TotalSegments": 2}, "Member must have value greater than or equal to 0"),
        ({"Limit": 0}, "Member must have value greater than or equal to 1"),
        ({"ExclusiveStartKey": {"nope": {"S": "x"}}}, "The provided starting key is invalid"),
        ({"FilterExpression": "n = :v"},
         "An expression attribute value used in expression is not defined; attribute value: :v"),
    ],
)
def test_scan_errors(ddb: Any, scan_table: str, kwargs: dict[str, Any], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.scan(TableName=scan_table, **kwargs)


def test_consistent_read_scan_sees_latest_write(ddb: Any, scan_table: str) -> None:
    key = {"pk": {"S": "zz-" + uuid.uuid4().hex}}
    ddb.put_item(TableName=scan_table, Item={**key, "n": {"N": "-1"}, "tag": {"S": "new"}})
    try:
        items, _ = collect_pages(
            ddb.scan, TableName=scan_table, ConsistentRead=True, FilterExpression="tag = :t",
            ExpressionAttributeValues={":t": {"S": "new"}},
        )
        assert [i["pk"] for i in items] == [key["pk"]]
    finally:
        ddb.delete_item(TableName=scan_table, Key=key)


# --------------------------------------------------------------------------- key encoding edges


def test_composite_keys_never_collide(ddb: Any, make_table: TableFactory) -> None:
    table = make_table(("pk", "S"), ("sk", "S"))
    pairs = [("a", "bc"), ("ab", "c"), ("a\u0000", "x"), ("a", "\u0000x"), ("a", ""), ("", "a")]
    for pk, sk in pairs:
        if pk == "" or sk == "":
            with expect_error("ValidationException", "The AttributeValue for a key attribute cannot contain an empty string value"):
                ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}})
            continue
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, "tag": {"S": f"{pk!r}/{sk!r}"}})
    got = query_all(ddb, table, **pk_is("a"))
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in got] == [("a", "\u0000x"), ("a", "bc")]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in query_all(ddb, table, **pk_is("ab"))] == [("ab", "c")]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in query_all(ddb, table, **pk_is("a\u0000"))] == [("a\u0000", "x")]
    items, _ = collect_pages(ddb.scan, TableName=table)
    assert len(items) == 4


def test_number_composite_keys_and_canonical_hash_keys(ddb: Any, make_table: TableFactory) -> None:
    table = make_table(("pk", "N"), ("sk", "N"))
    ddb.put_item(TableName=table, Item={"pk": {"N": "1"}, "sk": {"N": "23"}})
    ddb.put_item(TableName=table, Item={"pk": {"N": "12"}, "sk": {"N": "3"}})
    ddb.put_item(TableName=table, Item={"pk": {"N": "10.0"}, "sk": {"N": "-0.50"}, "v": {"S": "first"}})
    # The same numbers written differently address the same item.
    got = ddb.get_item(TableName=table, Key={"pk": {"N": "1e1"}, "sk": {"N": "-5E-1"}}, ConsistentRead=True)["Item"]
    assert got == {"pk": {"N": "10"}, "sk": {"N": "-0.5"}, "v": {"S": "first"}}
    q = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"N": "0010"}})
    assert q["Items"] == [got]
    q = ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"N": "1"}})
    assert [i["sk"]["N"] for i in q["Items"]] == ["23"]


def test_unicode_is_not_normalized(ddb: Any, make_table: TableFactory) -> None:
    table = make_table(("pk", "S"))
    ddb.put_item(TableName=table, Item={"pk": {"S": "\u00e9"}, "form": {"S": "composed"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "e\u0301"}, "form": {"S": "decomposed"}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "\u00e9"}})["Item"]["form"] == {"S": "composed"}
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "e\u0301"}})["Item"]["form"] == {"S": "decomposed"}


def test_begins_with_at_the_top_of_the_byte_range(ddb: Any, b_table: str, make_table: TableFactory) -> None:
    got = query_all(ddb, b_table, **pk_is("p", _cond=" AND begins_with(sk, :a)", **{":a": {"B": b"\xff"}}))
    assert [i["sk"]["B"] for i in got] == [b"\xff", b"\xff\x00"]
    got = query_all(ddb, b_table, **pk_is("p", _cond=" AND begins_with(sk, :a)", **{":a": {"B": b"\xff\xff"}}))
    assert got == []
    table = make_table(("pk", "S"), ("sk", "S"))
    keys = ["\U0010ffff", "\U0010ffffa", "\U0010fffe", "\uffff", "\uffffz", "ÿ", "ÿÿ", "z"]
    for k in keys:
        ddb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": k}})
    for prefix in ("\U0010ffff", "\uffff", "ÿ", "z"):
        got = query_all(ddb, table, **pk_is("p", _cond=" AND begins_with(sk, :a)", **{":a": {"S": prefix}}))
        assert [i["sk"]["S"] for i in got] == sorted((k for k in keys if k.startswith(prefix)), key=lambda s: s.encode())
