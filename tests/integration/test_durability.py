"""Durability of a real ``quorumdb serve`` process on its own data directory: every write
acknowledged with HTTP 200 survives kill -9 (also with writes in flight), and a SIGTERM
shutdown exits 0 and keeps the data. Skipped when QUORUMDB_TEST_ENDPOINT is set."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tests.integration.helpers import key_schema, make_client, wait_active


def create_table(client: Any, name: str) -> None:
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    wait_active(client, name)


def scan_all(client: Any, name: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    args: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    while True:
        page = client.scan(**args)
        for item in page["Items"]:
            items[item["pk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_kill9_keeps_every_acknowledged_write(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    client = make_client(server.endpoint)
    create_table(client, "durable")
    expected: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def put(i: int) -> None:
        item = {"pk": {"S": f"k{i:04d}"}, "n": {"N": str(i)}, "payload": {"S": "p" * (i % 500)}}
        client.put_item(TableName="durable", Item=item)
        with lock:
            expected[item["pk"]["S"]] = item

    def bump(i: int) -> None:
        out = client.update_item(
            TableName="durable", Key={"pk": {"S": f"k{i:04d}"}}, UpdateExpression="ADD n :one SET tag = :t",
            ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"SS": ["x", "y"]}}, ReturnValues="ALL_NEW",
        )
        with lock:
            expected[f"k{i:04d}"] = out["Attributes"]

    def remove(i: int) -> None:
        client.delete_item(TableName="durable", Key={"pk": {"S": f"k{i:04d}"}})
        with lock:
            expected.pop(f"k{i:04d}", None)

    # Concurrent requests so that a group commit acknowledges several writes at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(300)))
        list(pool.map(bump, range(0, 300, 3)))
        list(pool.map(remove, range(1, 300, 7)))
    last = {"pk": {"S": "last"}, "v": {"S": "acknowledged just before the crash"}}
    client.put_item(TableName="durable", Item=last)
    expected["last"] = last
    server.kill()

    restarted = own_server_factory(data_dir)
    client2 = make_client(restarted.endpoint)
    assert client2.describe_table(TableName="durable")["Table"]["TableStatus"] == "ACTIVE"
    found = scan_all(client2, "durable")
    assert set(found) == set(expected)
    for key, item in expected.items():
        got = dict(found[key])
        want = dict(item)
        if "tag" in want:
            assert sorted(got.pop("tag")["SS"]) == sorted(want.pop("tag")["SS"])
        assert got == want, key


def test_kill9_with_writes_in_flight(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    client = make_client(server.endpoint)
    create_table(client, "inflight")
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def writer(worker: int) -> None:
        seq = 0
        while not stop.is_set():
            pk = f"w{worker}-{seq:06d}"
            seq += 1
            try:
                client.put_item(TableName="inflight", Item={"pk": {"S": pk}, "w": {"N": str(worker)}})
            except (ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, OSError):
                return
            with lock:
                acked.add(pk)
                if len(acked) >= 400:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(6)]
    for t in threads:
        t.start()
    enough.wait(timeout=60)
    server.kill()  # while the writers are still sending
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with lock:
        acknowledged = set(acked)
    assert len(acknowledged) >= 400

    restarted = own_server_factory(data_dir)
    found = scan_all(make_client(restarted.endpoint), "inflight")
    missing = acknowledged - set(found)
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"


def test_sigterm_shutdown_is_clean_and_keeps_data(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    client = make_client(server.endpoint)
    client.create_table(
        TableName="kept", ProvisionedThroughput={"ReadCapacityUnits": 4, "WriteCapacityUnits": 2},
        **key_schema(("pk", "S"), ("sk", "N")),
    )
    wait_active(client, "kept")
    items = [{"pk": {"S": "a"}, "sk": {"N": str(i)}, "v": {"N": f"{i}.5"}} for i in range(50)]
    for item in items:
        client.put_item(TableName="kept", Item=item)
    before = client.describe_table(TableName="kept")["Table"]
    client.tag_resource(ResourceArn=before["TableArn"], Tags=[{"Key": "team", "Value": "db"}])
    client.update_time_to_live(TableName="kept", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    assert server.stop() == 0, server.log()

    restarted = own_server_factory(data_dir)
    client2 = make_client(restarted.endpoint)
    after = client2.describe_table(TableName="kept")["Table"]
    for field in ("TableArn", "TableId", "KeySchema", "CreationDateTime", "TableStatus"):
        assert after[field] == before[field], field
    assert after["ProvisionedThroughput"]["ReadCapacityUnits"] == 4
    got = client2.query(
        TableName="kept", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}},
        ConsistentRead=True,
    )["Items"]
    assert got == items
    assert client2.list_tags_of_resource(ResourceArn=after["TableArn"])["Tags"] == [{"Key": "team", "Value": "db"}]
    ttl = client2.describe_time_to_live(TableName="kept")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLING", "ENABLED") and ttl["AttributeName"] == "exp"
    assert restarted.stop() == 0, restarted.log()


def test_kill9_keeps_acknowledged_table_changes(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    client = make_client(server.endpoint)
    create_table(client, "doomed")
    for i in range(50):
        client.put_item(TableName="doomed", Item={"pk": {"S": f"d{i}"}})
    create_table(client, "survivor")
    client.put_item(TableName="survivor", Item={"pk": {"S": "s"}, "v": {"N": "1"}})
    client.update_table(TableName="survivor", BillingMode="PROVISIONED",
                        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    client.delete_table(TableName="doomed")
    client.create_table(TableName="fresh", BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S")))
    server.kill()

    restarted = own_server_factory(data_dir)
    client2 = make_client(restarted.endpoint)
    names = client2.list_tables()["TableNames"]
    assert "survivor" in names and "fresh" in names
    if "doomed" in names:  # an acknowledged delete may still be finishing, never undone
        assert client2.describe_table(TableName="doomed")["Table"]["TableStatus"] == "DELETING"
    wait_active(client2, "fresh")
    desc = wait_active(client2, "survivor")
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    assert scan_all(client2, "survivor") == {"s": {"pk": {"S": "s"}, "v": {"N": "1"}}}
    # Re-creating the deleted table never brings its old items back.
    for _ in range(300):
        if "doomed" not in client2.list_tables()["TableNames"]:
            break
        time.sleep(0.1)
    create_table(client2, "doomed")
    assert scan_all(client2, "doomed") == {}
