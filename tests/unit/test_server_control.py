"""Control-plane operations through the dispatcher, over a catalog-only fake data plane."""

from __future__ import annotations

from typing import Any

import pytest
from test_server_fakes import CatalogDataPlane, call, error_of

INVALID = "One or more parameter values were invalid: "


def attr(name: str, typ: str = "S") -> dict[str, str]:
    return {"AttributeName": name, "AttributeType": typ}


def key(name: str, kind: str = "HASH") -> dict[str, str]:
    return {"AttributeName": name, "KeyType": kind}


def ondemand(name: str = "tbl", **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [attr("h"), attr("r", "N")],
        "KeySchema": [key("h"), key("r", "RANGE")],
        "BillingMode": "PAY_PER_REQUEST",
    }
    req.update(extra)
    return req


def gsi(name: str, hash_name: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"IndexName": name, "KeySchema": [key(hash_name)], "Projection": {"ProjectionType": "ALL"}}
    out.update(extra)
    return out


def lsi(name: str, range_name: str, projection: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [key("h"), key(range_name, "RANGE")],
        "Projection": projection or {"ProjectionType": "KEYS_ONLY"},
    }


@pytest.fixture
def dp() -> CatalogDataPlane:
    return CatalogDataPlane()


# -- CreateTable / DescribeTable --------------------------------------------------------------


def test_create_and_describe(dp: CatalogDataPlane) -> None:
    req = ondemand(
        AttributeDefinitions=[attr("h"), attr("r", "N"), attr("g"), attr("l", "B")],
        LocalSecondaryIndexes=[lsi("byL", "l", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]})],
        GlobalSecondaryIndexes=[gsi("byG", "g")],
        Tags=[{"Key": "team", "Value": "db"}],
        DeletionProtectionEnabled=True,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        TableClass="STANDARD_INFREQUENT_ACCESS",
    )
    out = call(dp, "CreateTable", req)["TableDescription"]
    assert out["TableStatus"] == "CREATING"  # CreateTable answers CREATING, as DynamoDB does
    assert out["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/tbl"
    assert out["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert out["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
    assert out["KeySchema"] == [key("h"), key("r", "RANGE")]
    assert out["CreationDateTime"] == 1_700_000_000.0
    assert out["DeletionProtectionEnabled"] is True
    assert out["TableClassSummary"] == {"TableClass": "STANDARD_INFREQUENT_ACCESS"}
    assert out["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    (lsi_out,) = out["LocalSecondaryIndexes"]
    assert lsi_out["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}
    assert lsi_out["IndexArn"].endswith("/index/byL")
    assert "IndexStatus" not in lsi_out
    (gsi_out,) = out["GlobalSecondaryIndexes"]
    assert gsi_out["IndexStatus"] == "CREATING" and "Backfilling" not in gsi_out  # not added to a table
    assert gsi_out["ItemCount"] == 0 and gsi_out["IndexSizeBytes"] == 0
    described = call(dp, "DescribeTable", {"TableName": "tbl"})["Table"]
    assert described["TableId"] == out["TableId"]
    # With no status delay (the default) the table and its indexes are ACTIVE at once.
    assert described["TableStatus"] == "ACTIVE"
    assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert dp.tables["tbl"].tags == {"team": "db"}


def test_create_provisioned(dp: CatalogDataPlane) -> None:
    req = ondemand(BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7})
    out = call(dp, "CreateTable", req)["TableDescription"]
    assert out["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert out["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert error_of(dp, "CreateTable", req) == ("ResourceInUseException", "Table already exists: tbl")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"BillingMode": None},
            INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        ),
        (
            {"ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}},
            INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        ),
        (
            {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 10**13, "WriteCapacityUnits": 1}},
            "Given value 10000000000000 for ReadCapacityUnits is out of bounds",
        ),
        ({"AttributeDefinitions": [attr("h")]}, "Invalid KeySchema: Some index key attribute have no definition"),
        (
            {"AttributeDefinitions": [attr("h"), attr("x")]},
            INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            "Keys: [h, r], AttributeDefinitions: [h, x]",
        ),
        (
            {"KeySchema": [key("h"), key("h", "RANGE")]},
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ),
        ({"KeySchema": [key("r", "RANGE"), key("h")]}, "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
        ({"KeySchema": [key("h"), key("r")]}, "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"),
        (
            {"AttributeDefinitions": [attr("h"), attr("r", "N"), attr("z")]},
            INVALID + "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ),
        (
            {"AttributeDefinitions": [attr("h"), attr("r", "N"), attr("g"), attr("unused")],
             "GlobalSecondaryIndexes": [gsi("byG", "g")]},
            INVALID + "Some AttributeDefinitions are not used. AttributeDefinitions: [h, r, g, unused], keys used: [h, r, g]",
        ),
    ],
)
def test_create_table_validation(dp: CatalogDataPlane, changes: dict[str, Any], message: str) -> None:
    req = ondemand()
    for k, v in changes.items():
        if v is None:
            req.pop(k)
        else:
            req[k] = v
    assert error_of(dp, "CreateTable", req) == ("ValidationException", message)
    assert dp.tables == {}


def test_local_secondary_index_rules(dp: CatalogDataPlane) -> None:
    defs = [attr("h"), attr("r", "N"), attr("l")]
    hash_only = ondemand(AttributeDefinitions=[attr("h"), attr("l")], KeySchema=[key("h")], LocalSecondaryIndexes=[lsi("ix1", "l")])
    assert error_of(dp, "CreateTable", hash_only)[1] == (
        INVALID + "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
    )
    wrong_hash = ondemand(
        AttributeDefinitions=defs,
        LocalSecondaryIndexes=[{"IndexName": "ix1", "KeySchema": [key("l"), key("r", "RANGE")], "Projection": {"ProjectionType": "ALL"}}],
    )
    assert error_of(dp, "CreateTable", wrong_hash)[1] == (
        INVALID + "Index KeySchema does not have the same leading hash key as table KeySchema for index: ix1. "
        "index hash key: l, table hash key: h"
    )
    no_range = ondemand(
        AttributeDefinitions=defs,
        LocalSecondaryIndexes=[{"IndexName": "ix1", "KeySchema": [key("h")], "Projection": {"ProjectionType": "ALL"}}],
    )
    assert error_of(dp, "CreateTable", no_range)[1] == INVALID + "Index KeySchema does not have a range key for index: ix1"
    six = ondemand(AttributeDefinitions=defs, LocalSecondaryIndexes=[lsi(f"ix{i}", "l") for i in range(6)])
    assert error_of(dp, "CreateTable", six)[1] == INVALID + "Number of LocalSecondaryIndexes exceeds per-table limit of 5"
    dup = ondemand(AttributeDefinitions=defs, LocalSecondaryIndexes=[lsi("ix1", "l"), lsi("ix1", "l")])
    assert error_of(dp, "CreateTable", dup)[1] == INVALID + "Duplicate index name: ix1"
    bad_projection = ondemand(
        AttributeDefinitions=defs, LocalSecondaryIndexes=[lsi("ix1", "l", {"ProjectionType": "ALL", "NonKeyAttributes": ["a"]})]
    )
    assert error_of(dp, "CreateTable", bad_projection)[1] == INVALID + "ProjectionType is ALL, but NonKeyAttributes is specified"
    empty = ondemand(AttributeDefinitions=defs, LocalSecondaryIndexes=[])
    assert error_of(dp, "CreateTable", empty)[1] == INVALID + "List of LocalSecondaryIndexes is empty"


def test_global_secondary_index_rules(dp: CatalogDataPlane) -> None:
    defs = [attr("h"), attr("r", "N"), attr("g")]
    many = ondemand(AttributeDefinitions=defs, GlobalSecondaryIndexes=[gsi(f"gx{i:02d}", "g") for i in range(21)])
    assert error_of(dp, "CreateTable", many)[1] == INVALID + "GlobalSecondaryIndex count exceeds the per-table limit of 20"
    with_pt = ondemand(
        AttributeDefinitions=defs,
        GlobalSecondaryIndexes=[gsi("gx1", "g", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})],
    )
    assert error_of(dp, "CreateTable", with_pt)[1] == (
        INVALID + "ProvisionedThroughput should not be specified for index: gx1 when BillingMode is PAY_PER_REQUEST"
    )
    projected = ondemand(
        AttributeDefinitions=defs,
        GlobalSecondaryIndexes=[
            gsi(f"gx{i}", "g", Projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": [f"a{j}" for j in range(20)]})
            for i in range(6)
        ],
    )
    assert "exceeds the limit of 100" in error_of(dp, "CreateTable", projected)[1]


# -- ListTables / DeleteTable -----------------------------------------------------------------


def test_list_tables_pages(dp: CatalogDataPlane) -> None:
    for n in ("ccc", "aaa", "bbb", "ddd"):
        call(dp, "CreateTable", ondemand(n))
    assert call(dp, "ListTables", {}) == {"TableNames": ["aaa", "bbb", "ccc", "ddd"]}
    assert call(dp, "ListTables", {"Limit": 2}) == {"TableNames": ["aaa", "bbb"], "LastEvaluatedTableName": "bbb"}
    assert call(dp, "ListTables", {"Limit": 2, "ExclusiveStartTableName": "bbb"}) == {"TableNames": ["ccc", "ddd"]}


def test_delete_table(dp: CatalogDataPlane) -> None:
    call(dp, "CreateTable", ondemand("gone", DeletionProtectionEnabled=True))
    typ, msg = error_of(dp, "DeleteTable", {"TableName": "gone"})
    assert typ == "ValidationException" and "protected against deletion" in msg
    call(dp, "UpdateTable", {"TableName": "gone", "DeletionProtectionEnabled": False})
    out = call(dp, "DeleteTable", {"TableName": "gone"})
    assert out["TableDescription"]["TableStatus"] == "DELETING"
    assert error_of(dp, "DescribeTable", {"TableName": "gone"}) == (
        "ResourceNotFoundException",
        "Requested resource not found: Table: gone not found",
    )


# -- UpdateTable ----------------------------------------------------------------------------


def provisioned(dp: CatalogDataPlane) -> None:
    call(
        dp,
        "CreateTable",
        ondemand(BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}),
    )


def test_update_throughput(dp: CatalogDataPlane) -> None:
    provisioned(dp)
    same = {"TableName": "tbl", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
    typ, msg = error_of(dp, "UpdateTable", same)
    assert msg.startswith("The provisioned throughput for the table will not change. The requested value equals the current value.")
    out = call(dp, "UpdateTable", {"TableName": "tbl", "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 2}})
    pt = out["TableDescription"]["ProvisionedThroughput"]
    assert pt["ReadCapacityUnits"] == 10 and pt["WriteCapacityUnits"] == 2
    assert pt["NumberOfDecreasesToday"] == 1
    assert pt["LastIncreaseDateTime"] == pt["LastDecreaseDateTime"] == 1_700_000_000.0


def test_update_needs_something(dp: CatalogDataPlane) -> None:
    provisioned(dp)
    assert error_of(dp, "UpdateTable", {"TableName": "tbl"})[1].startswith("At least one of ProvisionedThroughput")
    assert error_of(dp, "UpdateTable", {"TableName": "tbl", "BillingMode": "PROVISIONED"})[1] == (
        INVALID + "ProvisionedThroughput must be specified when BillingMode is PROVISIONED"
    )
    assert error_of(dp, "UpdateTable", {"TableName": "nope", "BillingMode": "PAY_PER_REQUEST"})[0] == "ResourceNotFoundException"


def test_switch_billing_mode(dp: CatalogDataPlane) -> None:
    provisioned(dp)
    out = call(dp, "UpdateTable", {"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST"})["TableDescription"]
    assert out["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert out["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    bad = {"TableName": "tbl", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}
    assert "Neither ReadCapacityUnits nor WriteCapacityUnits" in error_of(dp, "UpdateTable", bad)[1]


def test_create_and_delete_global_index(dp: CatalogDataPlane) -> None:
    call(dp, "CreateTable", ondemand())
    create = {
        "TableName": "tbl",
        "AttributeDefinitions": [attr("g", "N")],
        "GlobalSecondaryIndexUpdates": [{"Create": gsi("byG", "g")}],
    }
    out = call(dp, "UpdateTable", create)["TableDescription"]
    (ix,) = out["GlobalSecondaryIndexes"]
    assert ix["IndexStatus"] == "CREATING" and ix["Backfilling"] is True
    assert {"AttributeName": "g", "AttributeType": "N"} in out["AttributeDefinitions"]
    stored = dp.tables["tbl"].index("byG")
    assert stored is not None and stored.backfilling and stored.index_id == 1 and not stored.local
    assert error_of(dp, "UpdateTable", create)[1] == INVALID + "Index already exists: byG"
    undefined = {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Create": gsi("byZ", "z")}]}
    assert "Some index key attributes are not defined" in error_of(dp, "UpdateTable", undefined)[1]
    two = {
        "TableName": "tbl",
        "AttributeDefinitions": [attr("a"), attr("b")],
        "GlobalSecondaryIndexUpdates": [{"Create": gsi("byA", "a")}, {"Create": gsi("byB", "b")}],
    }
    assert error_of(dp, "UpdateTable", two)[0] == "LimitExceededException"
    dup = {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byG"}}, {"Delete": {"IndexName": "byG"}}]}
    assert "Only one global secondary index update per index" in error_of(dp, "UpdateTable", dup)[1]
    out = call(dp, "UpdateTable", {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byG"}}]})
    assert "GlobalSecondaryIndexes" not in out["TableDescription"]
    assert [a["AttributeName"] for a in out["TableDescription"]["AttributeDefinitions"]] == ["h", "r"]
    missing = {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byG"}}]}
    assert error_of(dp, "UpdateTable", missing)[0] == "ResourceNotFoundException"


# -- tags, TTL, limits, endpoints -----------------------------------------------------------------


ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/tbl"


def test_tags(dp: CatalogDataPlane) -> None:
    call(dp, "CreateTable", ondemand())
    assert call(dp, "TagResource", {"ResourceArn": ARN, "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}) == {}
    assert call(dp, "ListTagsOfResource", {"ResourceArn": ARN}) == {
        "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    }
    call(dp, "UntagResource", {"ResourceArn": ARN, "TagKeys": ["a"]})
    assert call(dp, "ListTagsOfResource", {"ResourceArn": ARN}) == {"Tags": [{"Key": "b", "Value": "2"}]}
    assert error_of(dp, "TagResource", {"Tags": []}) == ("ValidationException", "Invalid TableArn")
    assert error_of(dp, "TagResource", {"ResourceArn": "nope", "Tags": []})[0] == "AccessDeniedException"
    assert error_of(dp, "TagResource", {"ResourceArn": ARN}) == (
        "ValidationException",
        "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
    )
    assert error_of(dp, "TagResource", {"ResourceArn": ARN, "Tags": []})[1] == "Atleast one Tag needs to be provided as Input."
    assert error_of(dp, "UntagResource", {"ResourceArn": ARN, "TagKeys": []})[1] == (
        "Atleast one Tag Key needs to be provided as Input."
    )
    other = "arn:aws:dynamodb:us-east-1:000000000000:table/other"
    assert error_of(dp, "ListTagsOfResource", {"ResourceArn": other}) == (
        "ResourceNotFoundException",
        f"Requested resource not found: ResourcArn: {other} not found",
    )
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert "limit of 50" in error_of(dp, "TagResource", {"ResourceArn": ARN, "Tags": too_many})[1]
    long_key = {"ResourceArn": ARN, "Tags": [{"Key": "k" * 129, "Value": "v"}]}
    assert error_of(dp, "TagResource", long_key)[1].endswith("Member must have length less than or equal to 128")


def test_time_to_live(dp: CatalogDataPlane) -> None:
    call(dp, "CreateTable", ondemand())
    assert call(dp, "DescribeTimeToLive", {"TableName": "tbl"}) == {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    on = {"TableName": "tbl", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"}}
    assert call(dp, "UpdateTimeToLive", on) == {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"}}
    assert call(dp, "DescribeTimeToLive", {"TableName": "tbl"}) == {
        "TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    }
    assert error_of(dp, "UpdateTimeToLive", on) == ("ValidationException", "TimeToLive is already enabled")
    off_other = {"TableName": "tbl", "TimeToLiveSpecification": {"Enabled": False, "AttributeName": "other"}}
    assert "different AttributeName" in error_of(dp, "UpdateTimeToLive", off_other)[1]
    off = {"TableName": "tbl", "TimeToLiveSpecification": {"Enabled": False, "AttributeName": "exp"}}
    call(dp, "UpdateTimeToLive", off)
    assert dp.tables["tbl"].ttl_enabled is False
    assert error_of(dp, "UpdateTimeToLive", off) == ("ValidationException", "TimeToLive is already disabled")
    assert error_of(dp, "UpdateTimeToLive", {"TableName": "tbl"})[1] == (
        "1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_limits_and_endpoints(dp: CatalogDataPlane) -> None:
    assert call(dp, "DescribeLimits", {}) == {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }
    (endpoint,) = call(dp, "DescribeEndpoints", {})["Endpoints"]
    assert endpoint["CachePeriodInMinutes"] == 1440 and ":" in endpoint["Address"]


# -- the dispatcher's error boundary -----------------------------------------------------------


class BrokenDataPlane(CatalogDataPlane):
    def table_names(self) -> list[str]:
        raise RuntimeError("disk on fire")


def test_unexpected_errors_are_internal_server_errors_logged_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = call(BrokenDataPlane(), "ListTables", {})
    assert out["__status"] == 500
    assert out["__error"] == ("InternalServerError", "Internal server error")
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "test-request" in record.getMessage()
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])


def test_unknown_operation_and_bad_json_through_the_dispatcher(dp: CatalogDataPlane) -> None:
    import asyncio

    from quorumdb.api.dispatch import Dispatcher

    d = Dispatcher(dp)
    status, body = asyncio.run(d.handle(b"DynamoDB_20120810.Nope", b"{}", "r1"))
    assert status == 400 and b"UnknownOperationException" in body
    status, body = asyncio.run(d.handle(None, b"{}", "r2"))
    assert status == 400 and b"UnknownOperationException" in body
    status, body = asyncio.run(d.handle(b"DynamoDB_20120810.ListTables", b"{oops", "r3"))
    assert status == 400 and b"SerializationException" in body
    status, body = asyncio.run(d.handle(b"DynamoDB_20120810.ListTables", b"", "r4"))
    assert status == 400 and b"SerializationException" in body
