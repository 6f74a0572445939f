"""Real clients against the server: the boto3 resource API (Python types, batch_writer,
paginators), the AWS CLI as a subprocess, and PynamoDB models."""

from __future__ import annotations

import contextlib
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, Key

from tests.integration.helpers import (
    CREDENTIALS,
    REGION,
    TableFactory,
    aws_cli,
    expect_error,
    unique_name,
    wait_gone,
)

# --------------------------------------------------------------------------- boto3 resource


def test_resource_api_python_types(ddb_resource: Any, make_table: TableFactory) -> None:
    table = ddb_resource.Table(make_table(("pk", "S"), ("sk", "N")))
    item = {
        "pk": "user#1",
        "sk": Decimal("1"),
        "name": "Zoë",
        "score": Decimal("12345678901234567890.123456789012345678"),
        "tags": {"a", "b"},
        "nums": {Decimal("1"), Decimal("2.5")},
        "blob": b"\x00\x01",
        "doc": {"nested": [1, "two", {"three": True}], "nothing": None},
        "flag": False,
        "empty": "",
    }
    table.put_item(Item=item)
    got = table.get_item(Key={"pk": "user#1", "sk": 1}, ConsistentRead=True)["Item"]
    assert got["score"] == Decimal("12345678901234567890.123456789012345678")
    assert got["tags"] == {"a", "b"} and got["nums"] == {Decimal("1"), Decimal("2.5")}
    assert got["blob"].value == b"\x00\x01"
    assert got["doc"] == {"nested": [Decimal(1), "two", {"three": True}], "nothing": None}
    assert got["flag"] is False and got["empty"] == "" and got["name"] == "Zoë"

    with table.batch_writer() as batch:
        for i in range(2, 60):
            batch.put_item(Item={"pk": "user#1", "sk": i, "even": i % 2 == 0})
    resp = table.query(
        KeyConditionExpression=Key("pk").eq("user#1") & Key("sk").between(10, 19),
        FilterExpression=Attr("even").eq(True),
        ScanIndexForward=False,
    )
    assert [int(i["sk"]) for i in resp["Items"]] == [18, 16, 14, 12, 10]
    updated = table.update_item(
        Key={"pk": "user#1", "sk": 1},
        UpdateExpression="SET score = score + :d ADD tags :t REMOVE flag",
        ExpressionAttributeValues={":d": Decimal("0.000000000000000001"), ":t": {"c"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated["score"] == Decimal("12345678901234567890.123456789012345679")
    assert updated["tags"] == {"a", "b", "c"} and "flag" not in updated
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        table.put_item(Item={"pk": "user#1", "sk": 1}, ConditionExpression=Attr("pk").not_exists())
    paginator = table.meta.client.get_paginator("scan")
    seen = [
        item
        for page in paginator.paginate(TableName=table.name, PaginationConfig={"PageSize": 7})
        for item in page["Items"]
    ]
    assert len(seen) == 59
    table.delete_item(Key={"pk": "user#1", "sk": 1})
    assert "Item" not in table.get_item(Key={"pk": "user#1", "sk": 1}, ConsistentRead=True)


# --------------------------------------------------------------------------- AWS CLI


def aws(endpoint: str, tmp_path: Path, *args: str) -> Any:
    return aws_cli(endpoint, tmp_path, "dynamodb", *args)


def test_aws_cli(endpoint: str, ddb: Any, tmp_path: Path) -> None:
    name = unique_name("cli")
    created = aws(
        endpoint, tmp_path, "create-table", "--table-name", name,
        "--attribute-definitions", "AttributeName=pk,AttributeType=S", "AttributeName=sk,AttributeType=N",
        "--key-schema", "AttributeName=pk,KeyType=HASH", "AttributeName=sk,KeyType=RANGE",
        "--billing-mode", "PAY_PER_REQUEST",
    )
    try:
        assert created["TableDescription"]["TableName"] == name
        for _ in range(300):
            if aws(endpoint, tmp_path, "describe-table", "--table-name", name)["Table"]["TableStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
        for sk in (3, 1, 2):
            item = {"pk": {"S": "cli"}, "sk": {"N": str(sk)}, "msg": {"S": f"hello {sk}"}, "n": {"N": "1.50"}}
            aws(endpoint, tmp_path, "put-item", "--table-name", name, "--item", json.dumps(item))
        got = aws(endpoint, tmp_path, "get-item", "--table-name", name,
                  "--key", json.dumps({"pk": {"S": "cli"}, "sk": {"N": "2"}}), "--consistent-read")
        assert got == {"Item": {"pk": {"S": "cli"}, "sk": {"N": "2"}, "msg": {"S": "hello 2"}, "n": {"N": "1.5"}}}
        queried = aws(
            endpoint, tmp_path, "query", "--table-name", name,
            "--key-condition-expression", "pk = :p AND sk >= :s",
            "--expression-attribute-values", json.dumps({":p": {"S": "cli"}, ":s": {"N": "2"}}),
            "--no-scan-index-forward",
        )
        assert [i["sk"]["N"] for i in queried["Items"]] == ["3", "2"]
        assert queried["Count"] == 2
        scanned = aws(endpoint, tmp_path, "scan", "--table-name", name)
        assert scanned["Count"] == 3 and sorted(i["sk"]["N"] for i in scanned["Items"]) == ["1", "2", "3"]
        listed = aws(endpoint, tmp_path, "list-tables")
        assert name in listed["TableNames"]
    finally:
        aws(endpoint, tmp_path, "delete-table", "--table-name", name)
    wait_gone(ddb, name)


def test_aws_cli_reports_errors(endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="ResourceNotFoundException"):
        aws(endpoint, tmp_path, "describe-table", "--table-name", unique_name("missing"))


# --------------------------------------------------------------------------- PynamoDB


def test_pynamodb_model(endpoint: str) -> None:
    from pynamodb.attributes import (
        BooleanAttribute,
        ListAttribute,
        MapAttribute,
        NumberAttribute,
        UnicodeAttribute,
        UnicodeSetAttribute,
    )
    from pynamodb.exceptions import DeleteError, PutError, TableError, UpdateError
    from pynamodb.models import Model

    class Address(MapAttribute[str, Any]):
        city = UnicodeAttribute()
        zip_code = UnicodeAttribute(null=True)

    class Thing(Model):
        class Meta:
            table_name = unique_name("pynamo")
            host = endpoint
            region = REGION
            aws_access_key_id = CREDENTIALS["aws_access_key_id"]
            aws_secret_access_key = CREDENTIALS["aws_secret_access_key"]
            max_retry_attempts = 0

        owner = UnicodeAttribute(hash_key=True)
        seq = NumberAttribute(range_key=True)
        title = UnicodeAttribute(null=True)
        hits = NumberAttribute(default=0)
        tags = UnicodeSetAttribute(null=True)
        done = BooleanAttribute(default=False)
        notes = ListAttribute(null=True)  # type: ignore[var-annotated]
        address = Address(null=True)

    Thing.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    try:
        assert Thing.exists()
        for i in range(5):
            Thing(owner="ann", seq=i, title=f"t{i}", tags={"x"}, notes=["a", 1], address=Address(city="Oslo")).save()
        got = Thing.get("ann", 3, consistent_read=True)
        assert got.title == "t3" and got.tags == {"x"} and got.notes == ["a", 1]
        assert got.address is not None and got.address.city == "Oslo"
        assert [t.seq for t in Thing.query("ann", Thing.seq > 1)] == [2, 3, 4]
        assert [t.seq for t in Thing.query("ann", Thing.seq.between(1, 3), scan_index_forward=False)] == [3, 2, 1]
        assert Thing.count("ann", Thing.seq < 2) == 2
        assert len(list(Thing.scan(Thing.title.startswith("t")))) == 5

        got.update(actions=[Thing.hits.add(5), Thing.tags.add({"y"}), Thing.title.set("new"), Thing.notes.remove(),
                            Thing.done.set(True)])
        fresh = Thing.get("ann", 3, consistent_read=True)
        assert fresh.hits == 5 and fresh.tags == {"x", "y"} and fresh.title == "new"
        assert fresh.notes is None and fresh.done is True

        with pytest.raises(PutError) as put_err:
            Thing(owner="ann", seq=3).save(condition=Thing.owner.does_not_exist())
        assert put_err.value.cause_response_code == "ConditionalCheckFailedException"
        with pytest.raises(UpdateError) as upd_err:
            fresh.update(actions=[Thing.hits.add(1)], condition=Thing.hits == 100)
        assert upd_err.value.cause_response_code == "ConditionalCheckFailedException"
        with pytest.raises(DeleteError):
            fresh.delete(condition=Thing.done == False)  # noqa: E712 (PynamoDB condition syntax)

        with Thing.batch_write() as batch:
            for i in range(5, 30):
                batch.save(Thing(owner="bob", seq=i))
        assert Thing.count("bob") == 25
        fetched = list(Thing.batch_get([("bob", i) for i in range(5, 30)]))
        assert sorted(t.seq for t in fetched) == list(range(5, 30))

        fresh.delete()
        with pytest.raises(Thing.DoesNotExist):
            Thing.get("ann", 3, consistent_read=True)
    finally:
        with contextlib.suppress(TableError):
            Thing.delete_table()
