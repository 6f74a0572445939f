"""Table-level operations through boto3: create, describe, list, update, delete, waiters, tags,
limits, endpoints and time to live (including the background expirer really deleting items)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from tests.integration.helpers import (
    TableFactory,
    expect_error,
    key_schema,
    unique_name,
    wait_active,
    wait_gone,
)

FAST_WAITER = {"Delay": 1, "MaxAttempts": 30}


def test_create_describe_delete_round_trip(ddb: Any) -> None:
    name = unique_name("cp")
    created = ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S"), ("sk", "N"))
    )["TableDescription"]
    try:
        assert created["TableName"] == name
        assert created["TableStatus"] in ("CREATING", "ACTIVE")
        desc = wait_active(ddb, name)
        assert desc["TableName"] == name
        assert desc["TableStatus"] == "ACTIVE"
        assert desc["TableArn"].startswith("arn:aws:dynamodb:")
        assert desc["TableArn"].endswith(":table/" + name)
        assert isinstance(desc["TableId"], str) and len(desc["TableId"]) >= 16
        assert desc["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert sorted(desc["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ]
        assert isinstance(desc["CreationDateTime"], datetime.datetime)
        age = datetime.datetime.now(datetime.UTC) - desc["CreationDateTime"]
        assert abs(age.total_seconds()) < 600
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
        assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 0
        assert desc["ItemCount"] == 0
        assert desc["TableSizeBytes"] == 0
        assert name in collect_table_names(ddb)
    finally:
        deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableName"] == name
    assert deleted["TableStatus"] in ("DELETING", "ACTIVE")
    wait_gone(ddb, name)
    assert name not in collect_table_names(ddb)
    with expect_error("ResourceNotFoundException", f"Table: {name} not found"):
        ddb.describe_table(TableName=name)


def test_provisioned_table_description(make_table: TableFactory, ddb: Any) -> None:
    name = make_table(ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 3})
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    # DynamoDB omits BillingModeSummary for tables created without BillingMode; if present
    # it must say PROVISIONED.
    if "BillingModeSummary" in desc:
        assert desc["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_item_count_and_size_are_numbers(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"S": "x" * 100}})
    desc = ddb.describe_table(TableName=name)["Table"]
    # DynamoDB refreshes these about every six hours, so only their type is certain.
    assert isinstance(desc["ItemCount"], int) and desc["ItemCount"] >= 0
    assert isinstance(desc["TableSizeBytes"], int) and desc["TableSizeBytes"] >= 0


def test_waiters(ddb: Any) -> None:
    name = unique_name("cpw")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("id", "N")))
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=FAST_WAITER)
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=FAST_WAITER)


def test_resource_table_waiters_and_attributes(ddb_resource: Any) -> None:
    name = unique_name("cpr")
    table = ddb_resource.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S"))
    )
    table.meta.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=FAST_WAITER)
    table.reload()
    assert table.table_status == "ACTIVE"
    assert table.key_schema == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table.item_count == 0
    table.delete()
    table.meta.client.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=FAST_WAITER)


def test_create_existing_table_is_resource_in_use(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    # dynalite deviates: its message is empty; DynamoDB says "Table already exists: <name>".
    with expect_error("ResourceInUseException", f"Table already exists: {name}"):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "other", "AttributeType": "S"}]},
            "Some index key attributes are not defined in AttributeDefinitions. "
            "Keys: [pk], AttributeDefinitions: [other]",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "x", "AttributeType": "S"}]},
            "Number of attributes in KeySchema does not exactly match number of attributes "
            "defined in AttributeDefinitions",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "RANGE"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]},
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "pk", "KeyType": "RANGE"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "x", "AttributeType": "S"}]},
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "sk", "KeyType": "RANGE"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]},
            "Invalid KeySchema: Some index key attribute have no definition",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "BOOL"}]},
            "Member must satisfy enum value set: [B, N, S]",
        ),
    ],
)
def test_create_table_validation(ddb: Any, args: dict[str, Any], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.create_table(TableName=unique_name("cpv"), BillingMode="PAY_PER_REQUEST", **args)


def test_create_table_billing_validation(ddb: Any) -> None:
    schema = key_schema(("pk", "S"))
    with expect_error(
        "ValidationException",
        "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is "
        "PAY_PER_REQUEST",
    ):
        ddb.create_table(
            TableName=unique_name("cpv"),
            BillingMode="PAY_PER_REQUEST",
            ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            **schema,
        )
    with expect_error(
        "ValidationException",
        "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is "
        "PROVISIONED",
    ):
        ddb.create_table(TableName=unique_name("cpv"), **schema)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "TableName must be at least 3 characters long and at most 255 characters long"),
        ("x" * 256, "TableName must be at least 3 characters long and at most 255 characters long"),
        ("bad name!", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
    ],
)
def test_table_name_rules(ddb: Any, name: str, message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    with expect_error("ValidationException", message):
        ddb.describe_table(TableName=name)


def test_missing_table_errors(ddb: Any) -> None:
    name = unique_name("missing")
    with expect_error("ResourceNotFoundException", f"Requested resource not found: Table: {name} not found"):
        ddb.describe_table(TableName=name)
    with expect_error("ResourceNotFoundException", f"Requested resource not found: Table: {name} not found"):
        ddb.delete_table(TableName=name)
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.scan(TableName=name)


def collect_table_names(ddb: Any, limit: int | None = None) -> list[str]:
    names: list[str] = []
    args: dict[str, Any] = {}
    if limit is not None:
        args["Limit"] = limit
    for _ in range(1000):
        page = ddb.list_tables(**args)
        names.extend(page["TableNames"])
        if limit is not None:
            assert len(page["TableNames"]) <= limit
        last = page.get("LastEvaluatedTableName")
        if not last:
            return names
        assert last == page["TableNames"][-1]
        args["ExclusiveStartTableName"] = last
    raise AssertionError("ListTables did not end")


def test_list_tables_paging(make_table: TableFactory, ddb: Any) -> None:
    mine = sorted(make_table() for _ in range(3))
    everything = collect_table_names(ddb)
    assert everything == sorted(everything)
    assert len(everything) == len(set(everything))
    assert set(mine) <= set(everything)
    paged = collect_table_names(ddb, limit=2)
    assert paged == everything
    page = ddb.list_tables(ExclusiveStartTableName=mine[0], Limit=1)
    assert page["TableNames"] == [n for n in everything if n > mine[0]][:1]
    assert page["LastEvaluatedTableName"] == page["TableNames"][0]
    with expect_error("ValidationException", "Member must have value greater than or equal to 1"):
        ddb.list_tables(Limit=0)
    with expect_error("ValidationException", "Member must have value less than or equal to 100"):
        ddb.list_tables(Limit=101)


def test_update_table_billing_and_throughput(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    desc = ddb.update_table(
        TableName=name,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )["TableDescription"]
    assert desc["TableName"] == name
    desc = wait_active(ddb, name)
    assert desc["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 5

    ddb.update_table(
        TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 7}
    )
    desc = wait_active(ddb, name)
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 10
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 7

    with expect_error("ValidationException", "The provisioned throughput for the table will not change"):
        ddb.update_table(
            TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 7}
        )

    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    desc = wait_active(ddb, name)
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_update_table_errors(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    with expect_error("ValidationException", "At least one of ProvisionedThroughput, BillingMode"):
        ddb.update_table(TableName=name)
    with expect_error(
        "ValidationException", "ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
    ):
        ddb.update_table(TableName=name, BillingMode="PROVISIONED")
    missing = unique_name("missing")
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.update_table(
            TableName=missing, ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
        )


def test_tags(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []
    ddb.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "team", "Value": "db"}, {"Key": "env", "Value": "test"}]
    )
    tags = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted(tags, key=lambda t: t["Key"]) == [
        {"Key": "env", "Value": "test"},
        {"Key": "team", "Value": "db"},
    ]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "storage"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "storage"}]
    missing_arn = arn.rsplit("/", 1)[0] + "/" + unique_name("missing")
    # "ResourcArn" is DynamoDB's own spelling.
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.list_tags_of_resource(ResourceArn=missing_arn)
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.tag_resource(ResourceArn=missing_arn, Tags=[{"Key": "a", "Value": "b"}])
    with expect_error("ValidationException", "Atleast one Tag needs to be provided as Input."):
        ddb.tag_resource(ResourceArn=arn, Tags=[])


# dynalite deviates: it ignores Tags in CreateTable.
def test_create_table_with_tags(ddb: Any, make_table: TableFactory) -> None:
    name = make_table(Tags=[{"Key": "owner", "Value": "blackbox"}])
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "blackbox"}]


# dynalite deviates: it has no DescribeLimits, DescribeEndpoints or UpdateTimeToLive (it answers
# UnknownOperationException), and no TTL expirer.


def test_describe_limits(ddb: Any) -> None:
    limits = ddb.describe_limits()
    for field in (
        "AccountMaxReadCapacityUnits",
        "AccountMaxWriteCapacityUnits",
        "TableMaxReadCapacityUnits",
        "TableMaxWriteCapacityUnits",
    ):
        assert isinstance(limits[field], int) and limits[field] > 0
    assert limits["TableMaxReadCapacityUnits"] <= limits["AccountMaxReadCapacityUnits"]


def test_describe_endpoints(ddb: Any) -> None:
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert endpoints
    assert isinstance(endpoints[0]["Address"], str) and endpoints[0]["Address"]
    assert isinstance(endpoints[0]["CachePeriodInMinutes"], int)


def test_time_to_live_settings(make_table: TableFactory, ddb: Any) -> None:
    name = make_table()
    desc = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert desc["TimeToLiveStatus"] == "DISABLED"
    spec = ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )["TimeToLiveSpecification"]
    assert spec == {"Enabled": True, "AttributeName": "expires"}
    desc = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert desc["TimeToLiveStatus"] in ("ENABLING", "ENABLED")
    assert desc["AttributeName"] == "expires"
    with expect_error("ValidationException", "TimeToLive is already enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
        )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires"}
    )
    desc = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert desc["TimeToLiveStatus"] in ("DISABLING", "DISABLED")
    missing = unique_name("missing")
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.describe_time_to_live(TableName=missing)
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.update_time_to_live(
            TableName=missing, TimeToLiveSpecification={"Enabled": True, "AttributeName": "e"}
        )


def test_time_to_live_expirer_deletes_expired_items(make_table: TableFactory, ddb: Any) -> None:
    # The shared server runs with QUORUMDB_TTL_INTERVAL_SECONDS=1; DynamoDB itself may take
    # up to a few days, so this bound is QuorumDB's, not DynamoDB's.
    name = make_table()
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    now = int(time.time())
    items = {
        "expired": {"N": str(now - 60)},
        "expired_decimal": {"N": f"{now - 30}.5"},
        "future": {"N": str(now + 3600)},
        "not_a_number": {"S": str(now - 60)},
        "number_set": {"NS": [str(now - 60)]},
        # DynamoDB ignores expiry times more than five years in the past.
        "ancient": {"N": str(now - 6 * 365 * 24 * 3600)},
        "no_attribute": None,
    }
    for pk, expires in items.items():
        item: dict[str, Any] = {"pk": {"S": pk}, "v": {"S": "x"}}
        if expires is not None:
            item["expires"] = expires
        ddb.put_item(TableName=name, Item=item)

    deadline = time.monotonic() + 30
    remaining: set[str] = set(items)
    while time.monotonic() < deadline:
        remaining = {i["pk"]["S"] for i in ddb.scan(TableName=name, ConsistentRead=True)["Items"]}
        if not remaining & {"expired", "expired_decimal"}:
            break
        time.sleep(0.5)
    assert remaining == {"future", "not_a_number", "number_set", "ancient", "no_attribute"}


def test_recreated_table_starts_empty(ddb: Any) -> None:
    name = unique_name("cpre")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    first = wait_active(ddb, name)
    for i in range(30):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"old{i}"}})
    arn = first["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "old", "Value": "yes"}])
    ddb.delete_table(TableName=name)
    wait_gone(ddb, name)
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S"), ("sk", "N")))
    try:
        second = wait_active(ddb, name)
        assert second["TableId"] != first["TableId"]
        assert len(second["KeySchema"]) == 2
        assert ddb.scan(TableName=name, ConsistentRead=True)["Items"] == []
        assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "old1"}, "sk": {"N": "0"}})
        assert ddb.list_tags_of_resource(ResourceArn=second["TableArn"])["Tags"] == []
        assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    finally:
        ddb.delete_table(TableName=name)
