"""Single-item operations through boto3: PutItem, GetItem, UpdateItem, DeleteItem, every
attribute type, number rules, size/key/nesting/set limits, ReturnValues and consumed capacity."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.helpers import TableFactory, expect_error


@pytest.fixture(scope="module")
def table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


@pytest.fixture(scope="module")
def ranged(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"), ("sk", "N"))


@pytest.fixture(scope="module")
def binary_table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "B"))


def new_key() -> str:
    return uuid.uuid4().hex


def normalize(value: Any) -> Any:
    """Make set order irrelevant when comparing attribute values."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("SS", "NS", "BS"):
                out[k] = sorted(v)
            else:
                out[k] = normalize(v)
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def test_put_get_delete(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    put = ddb.put_item(TableName=table, Item={**key, "a": {"S": "one"}})
    assert "Attributes" not in put
    assert ddb.get_item(TableName=table, Key=key)["Item"] == {**key, "a": {"S": "one"}}
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == {**key, "a": {"S": "one"}}
    ddb.put_item(TableName=table, Item={**key, "b": {"N": "2"}})
    assert ddb.get_item(TableName=table, Key=key)["Item"] == {**key, "b": {"N": "2"}}
    deleted = ddb.delete_item(TableName=table, Key=key)
    assert "Attributes" not in deleted
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    # Deleting a missing item is not an error.
    ddb.delete_item(TableName=table, Key=key)


def test_all_attribute_types_round_trip(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    item = {
        **key,
        "s": {"S": "héllo wörld ✓ 𝄞"},
        "n": {"N": "-123.456"},
        "b": {"B": b"\x00\x01\xfe\xff"},
        "ss": {"SS": ["b", "a", "ç"]},
        "ns": {"NS": ["1", "-2.5", "1e2"]},
        "bs": {"BS": [b"\x01", b"\x02\x03", b"\xff"]},
        "m": {"M": {"x": {"S": "y"}, "inner": {"M": {"deep": {"L": [{"N": "1"}, {"NULL": True}]}}}}},
        "l": {"L": [{"S": "a"}, {"BOOL": False}, {"M": {}}, {"L": []}, {"SS": ["q"]}]},
        "null": {"NULL": True},
        "t": {"BOOL": True},
        "f": {"BOOL": False},
        "empty_s": {"S": ""},
        "empty_b": {"B": b""},
        "empty_m": {"M": {}},
        "empty_l": {"L": []},
        "名前 with spaces.and.dots": {"S": "non-ASCII attribute name"},
        "#:[0]": {"N": "0"},
    }
    ddb.put_item(TableName=table, Item=item)
    got = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    expected = dict(item)
    expected["ns"] = {"NS": ["1", "-2.5", "100"]}
    assert normalize(got) == normalize(expected)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("1.50", "1.5"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("0.0", "0"),
        ("-0", "0"),
        ("00012", "12"),
        ("1E-5", "0.00001"),
        ("-1.0e2", "-100"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("-0.12345678901234567890123456789012345678", "-0.12345678901234567890123456789012345678"),
        ("1.000000000000000000000000000000000000000000000", "1"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        ("-9.9999999999999999999999999999999999999E+125", "-99999999999999999999999999999999999999" + "0" * 88),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("-1E-130", "-0." + "0" * 129 + "1"),
    ],
)
def test_numbers_canonical_and_exact(ddb: Any, table: str, given: str, canonical: str) -> None:
    key = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": given}, "ns": {"NS": [given]}})
    got = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert got["n"] == {"N": canonical}
    assert got["ns"] == {"NS": [canonical]}


# DynamoDB has answered a malformed number with either wording over the years (dynalite records
# the first); both are accepted.
NOT_A_NUMBER = (
    "The parameter cannot be converted to a numeric value",
    "A value provided cannot be converted into a number",
)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("123456789012345678901234567890123456789", "Attempting to store more than 38 significant digits in a Number"),
        ("1.23456789012345678901234567890123456789", "Attempting to store more than 38 significant digits in a Number"),
        ("1e126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("-1e126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("1e-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        ("abc", NOT_A_NUMBER),
        ("", NOT_A_NUMBER),
        ("1.2.3", NOT_A_NUMBER),
    ],
)
def test_number_errors(ddb: Any, table: str, bad: str, message: str | tuple[str, ...]) -> None:
    with expect_error("ValidationException", message):
        ddb.put_item(TableName=table, Item={"pk": {"S": "num"}, "n": {"N": bad}})
    with expect_error("ValidationException", message):
        ddb.put_item(TableName=table, Item={"pk": {"S": "num"}, "ns": {"NS": ["1", bad]}})


def test_item_size_limit(ddb: Any, table: str) -> None:
    # size = len("pk") + len(value) + len("d") + len(data); 400 KB = 409600 bytes.
    pk = "k" + new_key()[:7]
    fixed = len("pk") + len(pk) + len("d")
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "d": {"S": "x" * (409600 - fixed)}})
    got = ddb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert len(got["d"]["S"]) == 409600 - fixed
    with expect_error("ValidationException", "Item size has exceeded the maximum allowed size"):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "d": {"S": "x" * (409601 - fixed)}})
    # Sizes count UTF-8 bytes: 2-byte characters halve what fits.
    # dynalite deviates: it counts UTF-16 units.
    with expect_error("ValidationException", "Item size has exceeded the maximum allowed size"):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "d": {"S": "é" * 204800}})
    # Growing an item past the limit through UpdateItem is refused too.
    with expect_error("ValidationException", "Item size to update has exceeded the maximum allowed size"):
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET e = :e",
            ExpressionAttributeValues={":e": {"S": "y" * 10}},
        )


def test_key_size_limits(ddb: Any, ranged: str, table: str) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": "h" * 2048}})
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "h" * 2048}})
    # dynalite deviates: it counts UTF-16 units, DynamoDB counts UTF-8 bytes.
    with expect_error("ValidationException", "Size of hashkey has exceeded the maximum size limit of2048 bytes"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "é" * 1025}})
    with expect_error("ValidationException", "Size of hashkey has exceeded the maximum size limit of2048 bytes"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "h" * 2049}})
    with expect_error("ValidationException", "Size of hashkey has exceeded the maximum size limit of2048 bytes"):
        ddb.get_item(TableName=table, Key={"pk": {"S": "h" * 2049}})
    ddb.put_item(TableName=ranged, Item={"pk": {"S": "r" * 1024}, "sk": {"N": "1"}})
    ranged_s = ddb_ranged_s_table(ddb)
    try:
        ddb.put_item(TableName=ranged_s, Item={"pk": {"S": "a"}, "sk": {"S": "s" * 1024}})
        with expect_error(
            "ValidationException",
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ):
            ddb.put_item(TableName=ranged_s, Item={"pk": {"S": "a"}, "sk": {"S": "s" * 1025}})
    finally:
        ddb.delete_table(TableName=ranged_s)


def ddb_ranged_s_table(ddb: Any) -> str:
    factory = TableFactory(ddb, "it_items_rs")
    return factory(("pk", "S"), ("sk", "S"))


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for i in range(depth):
        value = {"L": [value]} if i % 2 else {"M": {"k": value}}
    return value


def test_nesting_depth_limit(ddb: Any, table: str) -> None:
    # Each M or L container is one level; DynamoDB allows 32.
    # dynalite deviates: it has no nesting limit.
    key = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item={**key, "deep": nested(32)})
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["deep"] == nested(32)
    with expect_error("ValidationException", "Nesting Levels have exceeded supported limits"):
        ddb.put_item(TableName=table, Item={**key, "deep": nested(33)})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"SS": []}, "One or more parameter values were invalid: An string set  may not be empty"),
        ({"NS": []}, "One or more parameter values were invalid: An number set  may not be empty"),
        ({"BS": []}, "One or more parameter values were invalid: Binary sets should not be empty"),
        ({"SS": ["a", "b", "a"]}, "contains duplicates"),
        ({"NS": ["1", "2", "1.0"]}, "contains duplicates"),
        ({"BS": [b"\x01", b"\x01"]}, "contains duplicates"),
        ({"NULL": False}, "One or more parameter values were invalid: Null attribute value types must have the value of true"),
        ({}, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"),
        ({"S": "a", "N": "1"}, "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
        ({"M": {"x": {"SS": []}}}, "may not be empty"),
        ({"L": [{"NS": ["1", "1"]}]}, "contains duplicates"),
    ],
)
def test_attribute_value_rules(ddb: Any, table: str, value: dict[str, Any], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.put_item(TableName=table, Item={"pk": {"S": "rules"}, "a": value})


def test_empty_strings_allowed_outside_keys(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    item = {**key, "s": {"S": ""}, "b": {"B": b""}, "m": {"M": {"e": {"S": ""}}}, "l": {"L": [{"S": ""}]}}
    ddb.put_item(TableName=table, Item=item)
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == item


def test_key_validation(ddb: Any, table: str, ranged: str, binary_table: str) -> None:
    empty = "The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
    with expect_error("ValidationException", empty):
        ddb.put_item(TableName=table, Item={"pk": {"S": ""}})
    with expect_error("ValidationException", empty):
        ddb.get_item(TableName=table, Key={"pk": {"S": ""}})
    with expect_error("ValidationException", empty):
        ddb.delete_item(TableName=table, Key={"pk": {"S": ""}})
    with expect_error(
        "ValidationException",
        "The AttributeValue for a key attribute cannot contain an empty binary value. Key: pk",
    ):
        ddb.put_item(TableName=binary_table, Item={"pk": {"B": b""}})
    with expect_error("ValidationException", "One or more parameter values were invalid: Missing the key pk in the item"):
        ddb.put_item(TableName=table, Item={"other": {"S": "x"}})
    with expect_error("ValidationException", "Missing the key sk in the item"):
        ddb.put_item(TableName=ranged, Item={"pk": {"S": "x"}})
    with expect_error(
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    ):
        ddb.put_item(TableName=table, Item={"pk": {"N": "1"}})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.get_item(TableName=table, Key={"pk": {"N": "1"}})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "extra": {"S": "b"}})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.get_item(TableName=ranged, Key={"pk": {"S": "a"}})
    with expect_error("ValidationException", "The provided key element does not match the schema"):
        ddb.delete_item(TableName=ranged, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})


def test_binary_keys(ddb: Any, binary_table: str) -> None:
    key = {"pk": {"B": b"\x00\xffkey"}}
    ddb.put_item(TableName=binary_table, Item={**key, "v": {"S": "bin"}})
    assert ddb.get_item(TableName=binary_table, Key=key)["Item"] == {**key, "v": {"S": "bin"}}


def test_number_key_identity(ddb: Any, ranged: str) -> None:
    # Sort keys are numbers: 1, 1.0 and 1e0 are the same key.
    pk = {"S": new_key()}
    ddb.put_item(TableName=ranged, Item={"pk": pk, "sk": {"N": "1.0"}, "v": {"S": "first"}})
    ddb.put_item(TableName=ranged, Item={"pk": pk, "sk": {"N": "1e0"}, "v": {"S": "second"}})
    got = ddb.get_item(TableName=ranged, Key={"pk": pk, "sk": {"N": "1"}}, ConsistentRead=True)["Item"]
    assert got == {"pk": pk, "sk": {"N": "1"}, "v": {"S": "second"}}
    items = ddb.query(
        TableName=ranged,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": pk},
    )["Items"]
    assert len(items) == 1


# --------------------------------------------------------------------------- ReturnValues


def test_put_return_values(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    first = ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in first
    second = ddb.put_item(TableName=table, Item={**key, "v": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert second["Attributes"] == {**key, "v": {"N": "1"}}
    none = ddb.put_item(TableName=table, Item={**key, "v": {"N": "3"}}, ReturnValues="NONE")
    assert "Attributes" not in none
    for bad in ("ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        with expect_error("ValidationException", "ReturnValues can only be ALL_OLD or NONE"):
            ddb.put_item(TableName=table, Item=key, ReturnValues=bad)
    with expect_error("ValidationException", "Member must satisfy enum value set"):
        ddb.put_item(TableName=table, Item=key, ReturnValues="EVERYTHING")


def test_delete_return_values(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item={**key, "v": {"S": "x"}})
    # dynalite deviates: it accepts any ReturnValues on DeleteItem.
    for bad in ("ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        with expect_error("ValidationException", "ReturnValues can only be ALL_OLD or NONE"):
            ddb.delete_item(TableName=table, Key=key, ReturnValues=bad)
    gone = ddb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    assert gone["Attributes"] == {**key, "v": {"S": "x"}}
    again = ddb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    assert "Attributes" not in again


def test_update_return_values(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item={**key, "a": {"N": "1"}, "b": {"S": "keep"}})

    def update(rv: str, value: str) -> dict[str, Any]:
        return ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET a = :v, c = :v",
            ExpressionAttributeValues={":v": {"N": value}},
            ReturnValues=rv,
        )

    assert "Attributes" not in update("NONE", "2")
    assert update("ALL_OLD", "3")["Attributes"] == {**key, "a": {"N": "2"}, "b": {"S": "keep"}, "c": {"N": "2"}}
    assert update("UPDATED_OLD", "4")["Attributes"] == {"a": {"N": "3"}, "c": {"N": "3"}}
    assert update("ALL_NEW", "5")["Attributes"] == {**key, "a": {"N": "5"}, "b": {"S": "keep"}, "c": {"N": "5"}}
    assert update("UPDATED_NEW", "6")["Attributes"] == {"a": {"N": "6"}, "c": {"N": "6"}}
    # UPDATED_OLD on attributes that did not exist returns nothing.
    fresh = {"pk": {"S": new_key()}}
    out = ddb.update_item(
        TableName=table,
        Key=fresh,
        UpdateExpression="SET z = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
        ReturnValues="UPDATED_OLD",
    )
    assert "Attributes" not in out


def test_update_creates_missing_item(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    out = ddb.update_item(TableName=table, Key=key, ReturnValues="ALL_NEW")
    assert out["Attributes"] == key
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == key


def test_return_values_on_condition_check_failure(ddb: Any, table: str) -> None:
    # dynalite deviates: it does not know ReturnValuesOnConditionCheckFailure.
    key = {"pk": {"S": new_key()}}
    item = {**key, "v": {"N": "1"}, "tag": {"SS": ["a"]}}
    ddb.put_item(TableName=table, Item=item)
    with expect_error("ConditionalCheckFailedException", "The conditional request failed") as err:
        ddb.put_item(
            TableName=table,
            Item=key,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert normalize(err.response["Item"]) == normalize(item)
    with expect_error("ConditionalCheckFailedException", "The conditional request failed") as err:
        ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET v = :two",
            ConditionExpression="v = :two",
            ExpressionAttributeValues={":two": {"N": "2"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert normalize(err.response["Item"]) == normalize(item)
    with expect_error("ConditionalCheckFailedException", "The conditional request failed") as err:
        ddb.delete_item(
            TableName=table,
            Key=key,
            ConditionExpression="v > :five",
            ExpressionAttributeValues={":five": {"N": "5"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert normalize(err.response["Item"]) == normalize(item)
    with expect_error("ConditionalCheckFailedException", "The conditional request failed") as err:
        ddb.delete_item(
            TableName=table,
            Key=key,
            ConditionExpression="v > :five",
            ExpressionAttributeValues={":five": {"N": "5"}},
            ReturnValuesOnConditionCheckFailure="NONE",
        )
    assert "Item" not in err.response
    # The item is untouched by the failed writes.
    assert normalize(ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]) == normalize(item)


# --------------------------------------------------------------------------- capacity


def sized_item(key: dict[str, Any], total_bytes: int) -> dict[str, Any]:
    """An item whose DynamoDB size is exactly ``total_bytes`` (ASCII names and values)."""
    fixed = sum(len(k) + len(v["S"]) for k, v in key.items()) + len("d")
    return {**key, "d": {"S": "x" * (total_bytes - fixed)}}


def test_get_item_capacity(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item=sized_item(key, 5 * 1024))
    strong = ddb.get_item(TableName=table, Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert strong["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 2.0}
    eventual = ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")
    assert eventual["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 1.0}
    indexes = ddb.get_item(TableName=table, Key=key, ConsistentRead=True, ReturnConsumedCapacity="INDEXES")
    assert indexes["ConsumedCapacity"]["CapacityUnits"] == 2.0
    assert indexes["ConsumedCapacity"]["Table"] == {"CapacityUnits": 2.0}
    none = ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in none
    assert "ConsumedCapacity" not in ddb.get_item(TableName=table, Key=key)
    # Exactly 4 KB is one unit; a missing item still costs the minimum.
    key4 = {"pk": {"S": new_key()}}
    ddb.put_item(TableName=table, Item=sized_item(key4, 4096))
    four = ddb.get_item(TableName=table, Key=key4, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert four["ConsumedCapacity"]["CapacityUnits"] == 1.0
    missing = ddb.get_item(
        TableName=table, Key={"pk": {"S": new_key()}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
    )
    assert missing["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_write_capacity(ddb: Any, table: str) -> None:
    key = {"pk": {"S": new_key()}}
    put = ddb.put_item(TableName=table, Item=sized_item(key, 1536), ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 2.0}
    key1 = {"pk": {"S": new_key()}}
    exact = ddb.put_item(TableName=table, Item=sized_item(key1, 1024), ReturnConsumedCapacity="TOTAL")
    assert exact["ConsumedCapacity"]["CapacityUnits"] == 1.0
    ddb.put_item(TableName=table, Item=sized_item(key, 3000))
    # A write costs the larger of the old and the new item.
    small = ddb.put_item(TableName=table, Item=key, ReturnConsumedCapacity="TOTAL")
    assert small["ConsumedCapacity"]["CapacityUnits"] == 3.0
    ddb.put_item(TableName=table, Item=sized_item(key, 2500))
    upd = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET z = :z",
        ExpressionAttributeValues={":z": {"S": "z"}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert upd["ConsumedCapacity"]["CapacityUnits"] == 3.0
    dele = ddb.delete_item(TableName=table, Key=key, ReturnConsumedCapacity="INDEXES")
    assert dele["ConsumedCapacity"]["CapacityUnits"] == 3.0
    assert dele["ConsumedCapacity"]["Table"] == {"CapacityUnits": 3.0}
    gone = ddb.delete_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")
    assert gone["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_query_and_scan_capacity_sum_then_round(ddb: Any, ranged: str) -> None:
    pk = new_key()
    # Ten items of ~910 bytes: summed ~9.1 KB -> 3 units (per-item rounding would give 10).
    for i in range(10):
        item = {"pk": {"S": pk}, "sk": {"N": str(i)}, "d": {"S": "x" * 900}}
        ddb.put_item(TableName=ranged, Item=item)
    q = ddb.query(
        TableName=ranged,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
        ConsistentRead=True,
        ReturnConsumedCapacity="TOTAL",
    )
    assert q["Count"] == 10
    assert q["ConsumedCapacity"] == {"TableName": ranged, "CapacityUnits": 3.0}
    q2 = ddb.query(
        TableName=ranged,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert q2["ConsumedCapacity"]["CapacityUnits"] == 1.5
    # A filter does not reduce what was read.
    q3 = ddb.query(
        TableName=ranged,
        KeyConditionExpression="pk = :p",
        FilterExpression="d = :nothing",
        ExpressionAttributeValues={":p": {"S": pk}, ":nothing": {"S": "nothing"}},
        ConsistentRead=True,
        ReturnConsumedCapacity="TOTAL",
    )
    assert q3["Count"] == 0 and q3["ScannedCount"] == 10
    assert q3["ConsumedCapacity"]["CapacityUnits"] == 3.0
    # dynalite deviates: it ignores ConsistentRead on Scan and charges half.
    s = ddb.scan(
        TableName=ranged,
        FilterExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
        ConsistentRead=True,
        ReturnConsumedCapacity="TOTAL",
    )
    assert s["Count"] == 10
    assert s["ConsumedCapacity"]["CapacityUnits"] >= 3.0
