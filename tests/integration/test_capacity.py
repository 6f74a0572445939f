"""Provisioned-capacity enforcement, black-box: boto3 against ``quorumdb serve --enforce-capacity``.

Each module starts its own servers (one enforcing, one not) with capacity time running
``TIME_SCALE`` times faster than real time, so the 300 s burst of a 5 WCU table (1,500 units)
is spent in seconds and refills at 50 units per real second. The assertions are about outcomes
(throttled or not, unprocessed or not) with wide margins, never about speed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.helpers import (
    CREDENTIALS,
    REGION,
    ServerProcess,
    TableFactory,
    against_quorumdb,
)

pytestmark = pytest.mark.skipif(not against_quorumdb(), reason="starts its own quorumdb servers")

TIME_SCALE = 10
ITEM_BYTES = 9 * 1024  # plus names: 10 WCU a put
MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)


def client(endpoint: str, retries: int = 1) -> Any:
    config = Config(retries={"max_attempts": retries, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS)


def start(tmp_path: Path, *args: str) -> ServerProcess:
    server = ServerProcess(
        data_dir=str(tmp_path), extra_args=["--in-memory", *args],
        extra_env={"QUORUMDB_CAPACITY_TIME_SCALE": str(TIME_SCALE)},
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start(tmp_path_factory.mktemp("enforcing"), "--enforce-capacity")
    try:
        assert "provisioned capacity enforced" in server.log()
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start(tmp_path_factory.mktemp("lenient"))
    try:
        assert "provisioned capacity enforced" not in server.log()
        yield server.endpoint
    finally:
        server.stop()


def provisioned_table(endpoint: str, wcu: int = 5, **kw: Any) -> tuple[TableFactory, str]:
    factory = TableFactory(client(endpoint), "cap")
    name = factory(ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": wcu}, **kw)
    return factory, name


def item(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{i}"}, "v": {"S": "x" * ITEM_BYTES}}


def hot_loop(ddb: Any, table: str, count: int) -> tuple[int, ClientError | None]:
    """Put ``count`` 10 WCU items as fast as possible: (puts that succeeded, first throttle)."""
    for i in range(count):
        try:
            ddb.put_item(TableName=table, Item=item(i))
        except ClientError as e:
            if e.response["Error"]["Code"] != "ProvisionedThroughputExceededException":
                raise
            return i, e
    return count, None


def drain(ddb: Any, table: str) -> int:
    """Spend the table's burst; returns how many puts it took."""
    n, err = hot_loop(ddb, table, 3000)
    assert err is not None, f"{n} puts of 10 WCU on a 5 WCU table were never throttled"
    return n


def test_hot_loop_is_throttled_once_the_burst_is_spent(enforcing: str) -> None:
    factory, table = provisioned_table(enforcing)
    try:
        n, err = hot_loop(client(enforcing), table, 3000)
        assert err is not None, f"{n} puts of 10 WCU on a 5 WCU table were never throttled"
        # 1,500 units of burst are 150 puts; the refill (5 puts a real second) adds a few.
        assert n >= 150
        assert err.response["Error"]["Message"] == MESSAGE
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        # The throttled put had no effect.
        got = client(enforcing).get_item(TableName=table, Key={"pk": {"S": f"k{n}"}}, ConsistentRead=True)
        assert "Item" not in got
    finally:
        factory.cleanup()


def test_standard_retry_mode_gets_through(enforcing: str) -> None:
    factory, table = provisioned_table(enforcing)
    try:
        drain(client(enforcing), table)
        patient = client(enforcing, retries=10)
        retries = 0
        for i in range(3):
            out = patient.put_item(TableName=table, Item=item(10_000 + i))
            retries += out["ResponseMetadata"]["RetryAttempts"]
        assert retries > 0  # throttled on the way, and the retries succeeded
        got = patient.get_item(TableName=table, Key={"pk": {"S": "k10002"}}, ConsistentRead=True)
        assert got["Item"]["v"]["S"] == "x" * ITEM_BYTES
    finally:
        factory.cleanup()


def test_batch_write_returns_throttled_items_as_unprocessed(enforcing: str) -> None:
    factory, table = provisioned_table(enforcing)
    ddb = client(enforcing)
    try:
        drain(ddb, table)
        time.sleep(1.0)  # about 50 units: some of the batch's 250 fit, not all
        requests = [{"PutRequest": {"Item": item(20_000 + i)}} for i in range(25)]
        out = ddb.batch_write_item(RequestItems={table: requests})
        unprocessed = out["UnprocessedItems"].get(table, [])
        assert 0 < len(unprocessed) < 25
        # Resubmitting the unprocessed part, as clients do, writes everything.
        deadline = time.monotonic() + 120
        while unprocessed:
            assert time.monotonic() < deadline, f"{len(unprocessed)} items never processed"
            time.sleep(0.5)
            try:
                out = ddb.batch_write_item(RequestItems={table: unprocessed})
            except ClientError as e:  # nothing processable at that moment: the whole call fails
                assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                continue
            unprocessed = out["UnprocessedItems"].get(table, [])
        keys = [{"pk": {"S": f"k{20_000 + i}"}} for i in range(25)]
        got = client(enforcing, retries=10).batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
        # Reads have their own bucket (5 RCU x 300 s): all 25 (3 RCU each) fit at once.
        assert len(got["Responses"][table]) == 25 and not got["UnprocessedKeys"]
    finally:
        factory.cleanup()


def test_on_demand_tables_are_not_throttled(enforcing: str) -> None:
    factory = TableFactory(client(enforcing), "cap")
    table = factory()  # PAY_PER_REQUEST
    try:
        n, err = hot_loop(client(enforcing), table, 400)
        assert err is None and n == 400
    finally:
        factory.cleanup()


def test_the_same_load_is_fine_with_enforcement_off(lenient: str) -> None:
    factory, table = provisioned_table(lenient)
    ddb = client(lenient)
    try:
        n, err = hot_loop(ddb, table, 400)  # 4,000 units: past the 1,500 of burst
        assert err is None and n == 400
        out = ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item(20_000 + i)}} for i in range(25)]})
        assert not out["UnprocessedItems"]
    finally:
        factory.cleanup()


def test_the_tag_turns_enforcement_on_for_one_table(lenient: str) -> None:
    factory, table = provisioned_table(lenient, Tags=[{"Key": "quorumdb:enforce-capacity", "Value": "true"}])
    try:
        drain(client(lenient), table)
    finally:
        factory.cleanup()


def test_a_gsi_short_of_write_capacity_throttles_the_table(enforcing: str) -> None:
    factory = TableFactory(client(enforcing), "cap")
    table = factory(
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 1000},
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 1},
        }],
    )
    ddb = client(enforcing)
    try:
        for i in range(3000):  # the GSI's 300 units of burst are 30 puts; the table's 30,000
            try:
                ddb.put_item(TableName=table, Item={**item(i), "g": {"S": "x"}})
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                assert "global secondary indexes" in e.response["Error"]["Message"]
                break
        else:
            raise AssertionError("never throttled")
        assert i >= 30
        ddb.put_item(TableName=table, Item=item(99_999))  # no GSI key: no entry, not held back
    finally:
        factory.cleanup()
