"""A table ARN in place of a TableName, through boto3: every item operation, Query/Scan, the
Batch* RequestItems keys, transactions and the table operations, and the errors naming the
table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import expect_error, unique_name

MISSING_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/it_arn_missing_table"


@pytest.fixture()
def arn_table(ddb: Any, make_table: Any) -> tuple[str, str]:
    name = make_table(("pk", "S"), ("sk", "N"))
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert arn.endswith(":table/" + name)
    return name, arn


def test_item_operations_take_the_arn(ddb: Any, arn_table: tuple[str, str]) -> None:
    name, arn = arn_table
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    ddb.put_item(TableName=arn, Item={**key, "v": {"N": "1"}})
    assert ddb.get_item(TableName=name, Key=key)["Item"]["v"] == {"N": "1"}  # the same table
    out = ddb.update_item(TableName=arn, Key=key, UpdateExpression="ADD v :one",
                          ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
                          ReturnConsumedCapacity="TOTAL")
    assert out["Attributes"] == {"v": {"N": "2"}}
    assert out["ConsumedCapacity"]["TableName"] == name
    assert ddb.get_item(TableName=arn, Key=key)["Item"]["v"] == {"N": "2"}
    ddb.put_item(TableName=arn, Item={"pk": {"S": "a"}, "sk": {"N": "2"}})
    q = ddb.query(TableName=arn, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}})
    assert [i["sk"]["N"] for i in q["Items"]] == ["1", "2"]
    assert ddb.scan(TableName=arn)["Count"] == 2
    ddb.delete_item(TableName=arn, Key=key)
    assert "Item" not in ddb.get_item(TableName=name, Key=key)


def test_batch_and_transactions_take_the_arn(ddb: Any, arn_table: tuple[str, str]) -> None:
    name, arn = arn_table
    out = ddb.batch_write_item(RequestItems={arn: [
        {"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": str(i)}}}} for i in range(3)
    ]})
    assert out["UnprocessedItems"] == {}
    got = ddb.batch_get_item(RequestItems={arn: {"Keys": [{"pk": {"S": "b"}, "sk": {"N": str(i)}} for i in range(3)]}})
    # Responses are keyed as the request named the table.
    assert list(got["Responses"]) == [arn]
    assert sorted(i["sk"]["N"] for i in got["Responses"][arn]) == ["0", "1", "2"]
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": arn, "Item": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
        {"Delete": {"TableName": arn, "Key": {"pk": {"S": "b"}, "sk": {"N": "0"}}}},
    ])
    tg = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": arn, "Key": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
        {"Get": {"TableName": name, "Key": {"pk": {"S": "b"}, "sk": {"N": "0"}}}},
    ])
    assert tg["Responses"][0]["Item"] == {"pk": {"S": "t"}, "sk": {"N": "1"}}
    assert tg["Responses"][1] == {}


def test_table_operations_take_the_arn(ddb: Any) -> None:
    name = unique_name("it_arn")
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    created = ddb.create_table(
        TableName=arn, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )["TableDescription"]
    assert created["TableName"] == name and created["TableArn"] == arn
    try:
        assert ddb.describe_table(TableName=arn)["Table"]["TableName"] == name
        ddb.get_waiter("table_exists").wait(TableName=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        out = ddb.update_table(TableName=arn, DeletionProtectionEnabled=False)["TableDescription"]
        assert out["TableName"] == name
        ddb.update_time_to_live(TableName=arn, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
        ttl = ddb.describe_time_to_live(TableName=arn)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    finally:
        deleted = ddb.delete_table(TableName=arn)["TableDescription"]
    assert deleted["TableName"] == name
    ddb.get_waiter("table_not_exists").wait(TableName=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_errors_name_the_table_as_given(ddb: Any) -> None:
    with expect_error("ResourceNotFoundException", f"Requested resource not found: Table: {MISSING_ARN} not found"):
        ddb.describe_table(TableName=MISSING_ARN)
    with expect_error("ResourceNotFoundException", f"Table: {MISSING_ARN} not found"):
        ddb.delete_table(TableName=MISSING_ARN)
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.get_item(TableName=MISSING_ARN, Key={"pk": {"S": "a"}})
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        ddb.batch_get_item(RequestItems={MISSING_ARN: {"Keys": [{"pk": {"S": "a"}}]}})


@pytest.mark.parametrize(
    "bad",
    [
        "arn:aws:dynamodb:us-east-1:000000000000:table/",  # no name
        "arn:aws:dynamodb:us-east-1:000000000000:table/ab",  # a name too short
        "arn:aws:dynamodb:us-east-1:000000000000:index/abc",  # not a table
        "arn:aws:s3:::bucket",
    ],
)
def test_what_is_not_a_table_arn_is_a_bad_table_name(ddb: Any, bad: str) -> None:
    with expect_error("ValidationException", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"):
        ddb.get_item(TableName=bad, Key={"pk": {"S": "a"}})
    with expect_error("ValidationException", "Map keys must satisfy constraint"):
        ddb.batch_write_item(RequestItems={bad: [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]})
    with expect_error("ValidationException", "Member must satisfy regular expression pattern"):
        ddb.describe_table(TableName=bad)


def test_a_table_arn_is_at_most_1024_characters(ddb: Any) -> None:
    long_arn = "arn:aws:dynamodb:us-east-1:000000000000:table/" + "x" * 1000
    with expect_error("ValidationException"):
        ddb.get_item(TableName=long_arn, Key={"pk": {"S": "a"}})
