"""Table and index statuses through boto3: CREATING -> ACTIVE, UPDATING, DELETING, index
CREATING (Backfilling) and DELETING, with the default delay (0: over at once, but the
CreateTable / UpdateTable / DeleteTable answers still say CREATING / UPDATING / DELETING, as
DynamoDB's do) and with ``--table-status-delay-ms`` (waiters, refusals while a transition
lasts, several worker processes).

A check that a status is still transitional only holds while the delay has not passed since
the request was sent; ``Transition.fresh`` tells whether it has, so a slow machine skips such a
check instead of failing it (no timing assertion)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.helpers import (
    expect_error,
    key_schema,
    make_client,
    unique_name,
    wait_active,
)

DELAY_MS = 1500
WAITER = {"Delay": 1, "MaxAttempts": 30}
DELETE_FIELDS = {
    "TableName", "TableStatus", "ProvisionedThroughput", "TableSizeBytes", "ItemCount", "TableArn", "TableId",
    "BillingModeSummary", "DeletionProtectionEnabled", "TableClassSummary",
}


@dataclass
class Transition:
    started: float

    @classmethod
    def now(cls) -> Transition:
        return cls(time.monotonic())

    @property
    def fresh(self) -> bool:
        """The status delay has surely not passed yet (with a margin for the request)."""
        return time.monotonic() - self.started < DELAY_MS / 1000 * 0.8


def status(client: Any, name: str) -> str:
    return str(client.describe_table(TableName=name)["Table"]["TableStatus"])


# --- the default: no delay ----------------------------------------------------------------------


def test_responses_say_the_transition_and_describe_is_settled(ddb: Any) -> None:
    name = unique_name("st")
    created = ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )["TableDescription"]
    assert created["TableStatus"] == "CREATING"
    assert created["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "g": {"S": "x"}, "v": {"S": "y" * 10}})
    updated = ddb.update_table(TableName=name, DeletionProtectionEnabled=False)["TableDescription"]
    assert updated["TableStatus"] == "UPDATING"
    assert status(ddb, name) == "ACTIVE"
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    assert set(deleted) <= DELETE_FIELDS
    for f in ("TableName", "TableArn", "TableId", "ItemCount", "TableSizeBytes", "ProvisionedThroughput"):
        assert f in deleted, f
    assert deleted["TableName"] == name and deleted["ItemCount"] == 1 and deleted["TableSizeBytes"] > 0
    assert deleted["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    for f in ("KeySchema", "AttributeDefinitions", "CreationDateTime", "GlobalSecondaryIndexes"):
        assert f not in deleted, f
    with expect_error("ResourceNotFoundException", f"Table: {name} not found"):
        ddb.describe_table(TableName=name)


# --- with a delay ----------------------------------------------------------------------------------


@pytest.fixture()
def slow(own_server_factory: Any) -> Any:
    """A client of a server whose transitions last DELAY_MS (set by the serve option)."""
    server = own_server_factory(extra_args=("--table-status-delay-ms", str(DELAY_MS)))
    return make_client(server.endpoint)


def test_create_table_is_creating_until_the_delay_is_over(slow: Any) -> None:
    name = unique_name("st")
    t = Transition.now()
    out = slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    assert out["TableDescription"]["TableStatus"] == "CREATING"
    states = [status(slow, name)]
    listed = name in slow.list_tables()["TableNames"]
    refusals: list[str] = []
    for call in (
        lambda: slow.put_item(TableName=name, Item={"pk": {"S": "a"}}),
        lambda: slow.update_table(TableName=name, DeletionProtectionEnabled=True),
        lambda: slow.delete_table(TableName=name),
    ):
        try:
            call()
            refusals.append("none")
        except slow.exceptions.ClientError as exc:
            refusals.append(exc.response["Error"]["Code"] + ": " + exc.response["Error"]["Message"])
    if t.fresh:
        assert states == ["CREATING"]
        assert listed
        assert refusals[0].startswith("ResourceNotFoundException: Requested resource not found")
        assert refusals[1] == (
            f"ResourceInUseException: Attempt to change a resource which is still in use: Table is being created: {name}"
        )
        assert refusals[2] == refusals[1]
    slow.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAITER)
    assert status(slow, name) == "ACTIVE"
    slow.put_item(TableName=name, Item={"pk": {"S": "a"}})
    assert slow.get_item(TableName=name, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}
    # Nothing else takes the stored CREATING for the status once it is over.
    backup = slow.create_backup(TableName=name, BackupName="after_creating")["BackupDetails"]
    assert backup["BackupStatus"] in ("CREATING", "AVAILABLE")


def test_update_table_is_updating_and_items_keep_working(slow: Any) -> None:
    name = unique_name("st")
    slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    wait_active(slow, name)
    t = Transition.now()
    out = slow.update_table(TableName=name, DeletionProtectionEnabled=True)["TableDescription"]
    assert out["TableStatus"] == "UPDATING" and out["DeletionProtectionEnabled"] is True
    seen = status(slow, name)
    slow.put_item(TableName=name, Item={"pk": {"S": "during"}})  # an UPDATING table serves items
    if t.fresh:
        assert seen == "UPDATING"
        with expect_error("ResourceInUseException", f"Table is being updated: {name}"):
            slow.update_table(TableName=name, DeletionProtectionEnabled=False)
    wait_active(slow, name)
    slow.update_table(TableName=name, DeletionProtectionEnabled=False)
    assert slow.get_item(TableName=name, Key={"pk": {"S": "during"}})["Item"] == {"pk": {"S": "during"}}


def test_index_creating_then_active_and_deleting_then_gone(slow: Any) -> None:
    name = unique_name("st")
    slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    wait_active(slow, name)
    for i in range(20):
        slow.put_item(TableName=name, Item={"pk": {"S": f"p{i}"}, "g": {"S": f"g{i % 3}"}})
    create = {"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
              "Projection": {"ProjectionType": "ALL"}}
    t = Transition.now()
    out = slow.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": create}],
    )["TableDescription"]
    (ix,) = out["GlobalSecondaryIndexes"]
    assert ix["IndexStatus"] == "CREATING" and ix["Backfilling"] is True
    (ix,) = slow.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    if t.fresh:
        assert ix["IndexStatus"] == "CREATING" and isinstance(ix["Backfilling"], bool)
    deadline = time.monotonic() + 60
    while ix["IndexStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, ix
        time.sleep(0.1)
        (ix,) = slow.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    assert "Backfilling" not in ix
    wait_active(slow, name)
    got = slow.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": {"S": "g0"}})
    assert got["Count"] == 7

    t = Transition.now()
    out = slow.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byg"}}])
    (ix,) = out["TableDescription"]["GlobalSecondaryIndexes"]
    assert ix["IndexName"] == "byg" and ix["IndexStatus"] == "DELETING"
    described = slow.describe_table(TableName=name)["Table"]
    if t.fresh:
        assert [i["IndexStatus"] for i in described["GlobalSecondaryIndexes"]] == ["DELETING"]
    with expect_error("ValidationException", "The table does not have the specified index: byg"):
        slow.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                   ExpressionAttributeValues={":g": {"S": "g0"}})
    deadline = time.monotonic() + 60
    while "GlobalSecondaryIndexes" in slow.describe_table(TableName=name)["Table"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_delete_table_is_deleting_then_gone(slow: Any) -> None:
    name = unique_name("st")
    slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    wait_active(slow, name)
    slow.put_item(TableName=name, Item={"pk": {"S": "old"}})
    t = Transition.now()
    out = slow.delete_table(TableName=name)["TableDescription"]
    assert out["TableStatus"] == "DELETING" and out["ItemCount"] == 1
    seen = status(slow, name)
    again = slow.delete_table(TableName=name)["TableDescription"]  # no error while DELETING
    errors: dict[str, str] = {}
    for label, call in (
        ("get", lambda: slow.get_item(TableName=name, Key={"pk": {"S": "old"}})),
        ("update", lambda: slow.update_table(TableName=name, DeletionProtectionEnabled=True)),
        ("create", lambda: slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))),
    ):
        try:
            call()
            errors[label] = "none"
        except slow.exceptions.ClientError as exc:
            errors[label] = exc.response["Error"]["Code"] + ": " + exc.response["Error"]["Message"]
    listed = name in slow.list_tables()["TableNames"]
    if t.fresh:
        assert seen == "DELETING"
        assert again["TableStatus"] == "DELETING"
        assert errors["get"] == "ResourceNotFoundException: Requested resource not found"
        assert errors["update"] == (
            f"ResourceInUseException: Attempt to change a resource which is still in use: Table is being deleted: {name}"
        )
        assert errors["create"] == f"ResourceInUseException: Table already exists: {name}"
        assert listed
    slow.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=WAITER)
    assert name not in slow.list_tables()["TableNames"]
    # The name is free again, and the new table has none of the old items.
    slow.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    slow.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAITER)
    assert slow.scan(TableName=name)["Count"] == 0


def test_status_is_shared_by_worker_processes(own_server_factory: Any) -> None:
    server = own_server_factory(QUORUMDB_TABLE_STATUS_DELAY_MS=str(DELAY_MS), extra_args=("--workers", "2"))
    creator = make_client(server.endpoint)
    name = unique_name("st")
    t = Transition.now()
    creator.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    # Fresh clients open new connections, which the kernel spreads over both workers.
    seen = [status(make_client(server.endpoint), name) for _ in range(8)]
    if t.fresh:
        assert seen == ["CREATING"] * 8
    wait_active(creator, name)
    settled = [status(make_client(server.endpoint), name) for _ in range(8)]
    assert settled == ["ACTIVE"] * 8
    t = Transition.now()
    creator.delete_table(TableName=name)
    seen = [status(make_client(server.endpoint), name) for _ in range(8)]
    if t.fresh:
        assert seen == ["DELETING"] * 8
    for _ in range(8):
        make_client(server.endpoint).get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=WAITER)
