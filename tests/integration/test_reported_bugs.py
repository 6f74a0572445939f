"""Regressions for bugs real clients found (issue 9), black-box through boto3."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.helpers import (
    ServerProcess,
    TableFactory,
    eventually,
    expect_error,
    external_endpoint,
    make_client,
    unique_name,
)

KEY_MISMATCH = "The provided key element does not match the schema"


# -- BatchGetItem with keys that cannot be keys -----------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"SS": ["a", "b"]},
        {"NS": ["1"]},
        {"L": [{"S": "a"}]},
        {"M": {"x": {"S": "a"}}},
        {"BOOL": True},
        {"NULL": True},
    ],
)
def test_batch_get_with_a_non_scalar_key_value_is_a_validation_error(
    ddb: Any, make_table: TableFactory, bad: dict[str, Any]
) -> None:
    table = make_table()
    with expect_error("ValidationException", KEY_MISMATCH):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": bad}]}})
    # The duplicate check (before the schema check) copes with such values too.
    with expect_error("ValidationException", KEY_MISMATCH):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": "ok"}}, {"pk": bad}, {"pk": {"L": []}}]}})
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": bad}, {"pk": bad}]}})


# -- expressions nested too deeply --------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "text"),
    [
        ("ConditionExpression", "NOT " * 1000 + "a = :v"),
        ("ConditionExpression", "(" * 1000 + "a = :v" + ")" * 1000),
        ("ConditionExpression", "a = :v AND (" * 300 + "a = :v" + ")" * 300),
    ],
)
def test_deeply_nested_condition_is_a_validation_error(
    ddb: Any, make_table: TableFactory, param: str, text: str
) -> None:
    table = make_table()
    with expect_error("ValidationException", f"Invalid {param}: The expression is nested too deeply"):
        ddb.put_item(
            TableName=table, Item={"pk": {"S": "k"}}, ConditionExpression=text,
            ExpressionAttributeValues={":v": {"S": "x"}},
        )
    with expect_error("ValidationException", "Invalid FilterExpression: The expression is nested too deeply"):
        ddb.scan(TableName=table, FilterExpression=text, ExpressionAttributeValues={":v": {"S": "x"}})


def test_deeply_nested_update_is_a_validation_error(ddb: Any, make_table: TableFactory) -> None:
    table = make_table()
    with expect_error("ValidationException", "Invalid UpdateExpression: The expression is nested too deeply"):
        ddb.update_item(
            TableName=table, Key={"pk": {"S": "k"}},
            UpdateExpression="SET a = " + "(" * 1000 + ":v" + ")" * 1000,
            ExpressionAttributeValues={":v": {"S": "x"}},
        )


# -- the catalog under concurrency, with several worker processes -------------------------------


@pytest.fixture(scope="module")
def workers_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private server with three worker processes sharing one LMDB environment."""
    if external_endpoint() is not None:
        pytest.skip("needs its own quorumdb process (QUORUMDB_TEST_ENDPOINT is set)")
    server = ServerProcess(
        data_dir=str(tmp_path_factory.mktemp("quorumdb-workers")), extra_args=["--workers", "3"]
    )
    try:
        yield server.start()
    finally:
        assert server.stop() == 0, server.log()


def _clients(endpoint: str, n: int) -> list[Any]:
    # One client (one connection pool) per thread: connections land on different workers.
    return [make_client(endpoint) for _ in range(n)]


def _create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


def _changes_at_once(clients: list[Any], name: str, arn: str) -> None:
    """Six control-plane changes of one table sent together, each on its own connection."""
    calls = [
        lambda c: c.update_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexUpdates=[{"Create": {
                "IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }}],
        ),
        lambda c: c.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}]),
        lambda c: c.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
        ),
        lambda c: c.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}]),
        lambda c: c.tag_resource(ResourceArn=arn, Tags=[{"Key": "c", "Value": "3"}]),
        lambda c: c.update_table(TableName=name, DeletionProtectionEnabled=False),
    ]
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> int:
        barrier.wait()
        status: int = calls[i](clients[i])["ResponseMetadata"]["HTTPStatusCode"]
        return status

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        assert list(pool.map(run, range(len(calls)))) == [200] * len(calls)


def test_concurrent_control_plane_changes_all_stick(workers_endpoint: str) -> None:
    clients = _clients(workers_endpoint, 6)
    admin = clients[0]
    for round_ in range(6):
        name = unique_name(f"cc{round_}")
        _create(admin, name)
        arn = admin.describe_table(TableName=name)["Table"]["TableArn"]
        _changes_at_once(clients, name, arn)
        for c in clients:  # whichever worker answers, every change is there
            desc = c.describe_table(TableName=name)["Table"]
            assert [ix["IndexName"] for ix in desc.get("GlobalSecondaryIndexes", [])] == ["by_g"]
            tags = {t["Key"]: t["Value"] for t in c.list_tags_of_resource(ResourceArn=arn)["Tags"]}
            assert tags == {"a": "1", "b": "2", "c": "3"}
            ttl = c.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
        admin.delete_table(TableName=name)


def test_every_worker_sees_an_acknowledged_create_table_at_once(workers_endpoint: str) -> None:
    clients = _clients(workers_endpoint, 6)
    names: list[str] = []
    try:
        for i in range(40):
            name = unique_name(f"ls{i}")
            _create(clients[i % len(clients)], name)
            names.append(name)
            for c in clients:
                assert name in c.list_tables(Limit=100, ExclusiveStartTableName=name[:-1])["TableNames"]
                assert c.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    finally:
        for name in names:
            clients[0].delete_table(TableName=name)


# -- invalid operands in conditions are ValidationExceptions, not failed conditions --------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"ConditionExpression": "n < :v", "ExpressionAttributeValues": {":v": {"L": [{"N": "1"}]}}},
            "Invalid ConditionExpression: Incorrect operand type for operator or function; "
            "operator or function: <, operand type: L",
        ),
        (
            {"ConditionExpression": "n BETWEEN :a AND :b",
             "ExpressionAttributeValues": {":a": {"M": {}}, ":b": {"M": {}}}},
            "Invalid ConditionExpression: Incorrect operand type for operator or function; "
            "operator or function: BETWEEN, operand type: M",
        ),
        (
            {"Expected": {"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"L": []}]}}},
            "One or more parameter values were invalid: ComparisonOperator LT is not valid for L AttributeValue type",
        ),
        (
            {"Expected": {"n": {"ComparisonOperator": "BEGINS_WITH", "Value": {"N": "1"}}}},
            "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
        ),
        (
            {"Expected": {"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}, {"N": "2"}]}}},
            "One or more parameter values were invalid: Invalid number of argument(s) for the GT ComparisonOperator",
        ),
    ],
)
def test_invalid_condition_operands_are_validation_errors(
    ddb: Any, make_table: TableFactory, kwargs: dict[str, Any], message: str
) -> None:
    table = make_table()
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "5"}})
    with expect_error("ValidationException", message):
        ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "n": {"N": "6"}}, **kwargs)
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})["Item"]["n"] == {"N": "5"}


def test_legacy_filters_compare_lists_and_booleans_with_eq_and_ne(ddb: Any, make_table: TableFactory) -> None:
    table = make_table(("pk", "S"), ("sk", "N"))
    items = [
        {"pk": {"S": "p"}, "sk": {"N": "1"}, "l": {"L": [{"S": "a"}]}, "b": {"BOOL": True}},
        {"pk": {"S": "p"}, "sk": {"N": "2"}, "l": {"L": [{"S": "b"}]}, "b": {"BOOL": False}},
    ]
    for item in items:
        ddb.put_item(TableName=table, Item=item)
    keys = {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}}

    def sks(**filt: Any) -> list[str]:
        out = ddb.query(TableName=table, KeyConditions=keys, QueryFilter=filt)
        return [i["sk"]["N"] for i in out["Items"]]

    assert sks(l={"ComparisonOperator": "EQ", "AttributeValueList": [{"L": [{"S": "a"}]}]}) == ["1"]
    assert sks(l={"ComparisonOperator": "NE", "AttributeValueList": [{"L": [{"S": "a"}]}]}) == ["2"]
    assert sks(b={"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": False}]}) == ["2"]
    assert sks(b={"ComparisonOperator": "NE", "AttributeValueList": [{"BOOL": False}]}) == ["1"]
    scanned = ddb.scan(TableName=table, ScanFilter={"b": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": True}]}})
    assert [i["sk"]["N"] for i in scanned["Items"]] == ["1"]


# -- a GSI added later skips items whose index key cannot be a key ------------------------------


def _wait_index_active(ddb: Any, table: str, index: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        desc = ddb.describe_table(TableName=table)["Table"]
        ix = next(i for i in desc["GlobalSecondaryIndexes"] if i["IndexName"] == index)
        if ix["IndexStatus"] == "ACTIVE":
            return ix
        assert time.monotonic() < deadline, ix
        time.sleep(0.05)


def _index_count(ddb: Any, table: str, index: str, want: int) -> int:
    ix = next(i for i in ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"] if i["IndexName"] == index)
    assert ix["ItemCount"] == want, ix
    return int(ix["ItemCount"])


def test_gsi_backfill_skips_empty_and_oversized_index_keys(ddb: Any, make_table: TableFactory) -> None:
    table = make_table()
    good = {"pk": {"S": "good"}, "g": {"S": "G"}, "r": {"S": "R"}}
    bad = [
        {"pk": {"S": "empty-hash"}, "g": {"S": ""}, "r": {"S": "R"}},
        {"pk": {"S": "empty-range"}, "g": {"S": "G"}, "r": {"S": ""}},
        {"pk": {"S": "big-hash"}, "g": {"S": "h" * 2049}, "r": {"S": "R"}},
        {"pk": {"S": "big-range"}, "g": {"S": "G"}, "r": {"S": "é" * 513}},  # 1026 UTF-8 bytes
    ]
    for item in [good, *bad]:
        ddb.put_item(TableName=table, Item=item)
    ddb.update_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by_g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }}],
    )
    _wait_index_active(ddb, table, "by_g")
    eventually(lambda: _index_count(ddb, table, "by_g", 1))  # global indexes are eventually consistent
    assert [i["pk"]["S"] for i in ddb.scan(TableName=table, IndexName="by_g")["Items"]] == ["good"]
    got = ddb.query(
        TableName=table, IndexName="by_g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "G"}}
    )
    assert [i["pk"]["S"] for i in got["Items"]] == ["good"]
    # The write path refuses such values now that they are index keys; the items stay readable.
    with expect_error("ValidationException", "cannot contain an empty string value. IndexName: by_g, IndexKey: g"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "new"}, "g": {"S": ""}})
    with expect_error("ValidationException", "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"):
        ddb.update_item(
            TableName=table, Key={"pk": {"S": "good"}}, UpdateExpression="SET r = :r",
            ExpressionAttributeValues={":r": {"S": "x" * 1025}},
        )
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "empty-hash"}})["Item"] == bad[0]
    # Updating a skipped item into a valid one indexes it; back to invalid is refused.
    ddb.update_item(
        TableName=table, Key={"pk": {"S": "empty-hash"}}, UpdateExpression="SET g = :g",
        ExpressionAttributeValues={":g": {"S": "G"}},
    )
    eventually(lambda: _index_count(ddb, table, "by_g", 2))


# -- server-side encryption is stored and described; replica updates are refused ----------------


def _kms_arn(desc: dict[str, Any]) -> str:
    sse = desc["SSEDescription"]
    assert sse["Status"] == "ENABLED" and sse["SSEType"] == "KMS", sse
    arn: str = sse["KMSMasterKeyArn"]
    return arn


def test_sse_description_is_stored_and_reported(ddb: Any, make_table: TableFactory) -> None:
    default = make_table()
    assert "SSEDescription" not in ddb.describe_table(TableName=default)["Table"]
    disabled = make_table(SSESpecification={"Enabled": False})
    assert "SSEDescription" not in ddb.describe_table(TableName=disabled)["Table"]

    managed = make_table(SSESpecification={"Enabled": True})
    arn = _kms_arn(ddb.describe_table(TableName=managed)["Table"])
    assert re.fullmatch(r"arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36}", arn)
    assert _kms_arn(ddb.describe_table(TableName=managed)["Table"]) == arn  # stable

    own = make_table(SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"})
    assert _kms_arn(ddb.describe_table(TableName=own)["Table"]).endswith(":key/1234abcd-12ab-34cd-56ef-1234567890ab")
    key_arn = "arn:aws:kms:us-east-1:111122223333:key/0000aaaa-12ab-34cd-56ef-1234567890ab"
    by_arn = make_table(SSESpecification={"Enabled": True, "KMSMasterKeyId": key_arn})
    assert _kms_arn(ddb.describe_table(TableName=by_arn)["Table"]) == key_arn

    # UpdateTable switches to a KMS key and back to the default.
    out = ddb.update_table(TableName=default, SSESpecification={"Enabled": True, "KMSMasterKeyId": key_arn})
    assert _kms_arn(out["TableDescription"]) == key_arn
    assert _kms_arn(ddb.describe_table(TableName=default)["Table"]) == key_arn
    out = ddb.update_table(TableName=default, SSESpecification={"Enabled": False})
    assert "SSEDescription" not in out["TableDescription"]
    assert "SSEDescription" not in ddb.describe_table(TableName=default)["Table"]


def test_replica_updates_are_refused(ddb: Any, make_table: TableFactory) -> None:
    table = make_table()
    with expect_error("ValidationException", "ReplicaUpdates are not supported"):
        ddb.update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    assert "Replicas" not in ddb.describe_table(TableName=table)["Table"]
