"""Backups and point-in-time recovery through boto3 and the AWS CLI: CreateBackup, DescribeBackup,
ListBackups (filters, pages), DeleteBackup, RestoreTableFromBackup (with overrides),
Update/DescribeContinuousBackups, RestoreTableToPointInTime; restores are exact snapshots while
writes go on, and backups survive a server restart."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    TableFactory,
    aws_cli,
    expect_error,
    key_schema,
    make_client,
    unique_name,
)

BACKUP_ARN = re.compile(r"arn:aws:dynamodb:[a-z0-9-]+:\d{12}:table/(.+)/backup/\d{14}-[0-9a-f]{8}")
LATEST_LAG_S = 5.0  # LatestRestorableDateTime is now - 5 s


def aws(endpoint: str, tmp_path: Path, *args: str) -> Any:
    return aws_cli(endpoint, tmp_path, "dynamodb", *args)


@pytest.fixture()
def restored(ddb: Any) -> Iterator[list[str]]:
    """Names of restored tables to delete after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            ddb.delete_table(TableName=name)
        except Exception:
            pass


@pytest.fixture()
def backups(ddb: Any) -> Iterator[list[str]]:
    """Backup ARNs to delete after the test."""
    arns: list[str] = []
    yield arns
    for arn in arns:
        try:
            ddb.delete_backup(BackupArn=arn)
        except Exception:
            pass


def indexed_table(make_table: TableFactory) -> str:
    return make_table(
        ("pk", "S"),
        ("sk", "N"),
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
        LocalSecondaryIndexes=[
            {"IndexName": "pk_g", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                {"AttributeName": "g", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
        ],
    )


def item(pk: str, sk: int, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    for k, v in extra.items():
        out[k] = {"N": str(v)} if isinstance(v, int) else {"S": v}
    return out


def scan_all(ddb: Any, name: str, **kwargs: Any) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    args: dict[str, Any] = {"TableName": name, **kwargs}
    while True:
        page = ddb.scan(**args)
        for it in page["Items"]:
            out[(it["pk"]["S"], it["sk"]["N"])] = it
        if "LastEvaluatedKey" not in page:
            return out
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_restorable(ddb: Any, name: str, at: float) -> None:
    """Wait until ``at`` is inside the table's restorable window (Latest = now - 5 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        d = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if d["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"].timestamp() >= at:
            return
        time.sleep(0.2)
    raise AssertionError("the restore time never became restorable")


# --------------------------------------------------------------------------- on-demand backups


def test_backup_lifecycle(ddb: Any, make_table: TableFactory, backups: list[str]) -> None:
    name = indexed_table(make_table)
    for i in range(10):
        ddb.put_item(TableName=name, Item=item("a", i, g=f"g{i % 3}"))
    before = time.time()
    details = ddb.create_backup(TableName=name, BackupName="nightly.1")["BackupDetails"]
    backups.append(details["BackupArn"])
    m = BACKUP_ARN.fullmatch(details["BackupArn"])
    assert m is not None and m.group(1) == name, details["BackupArn"]
    assert details["BackupName"] == "nightly.1"
    assert details["BackupStatus"] == "AVAILABLE" and details["BackupType"] == "USER"
    assert details["BackupSizeBytes"] > 0
    assert before - 1 <= details["BackupCreationDateTime"].timestamp() <= time.time() + 1
    # The ARN's id starts with the creation time in milliseconds.
    ms = int(details["BackupArn"].rsplit("/", 1)[1].split("-")[0])
    assert ms == int(details["BackupCreationDateTime"].timestamp() * 1000)

    desc = ddb.describe_backup(BackupArn=details["BackupArn"])["BackupDescription"]
    assert desc["BackupDetails"]["BackupArn"] == details["BackupArn"]
    src = desc["SourceTableDetails"]
    table = ddb.describe_table(TableName=name)["Table"]
    assert src["TableName"] == name and src["TableId"] == table["TableId"] and src["TableArn"] == table["TableArn"]
    assert src["ItemCount"] == 10 and src["TableSizeBytes"] == details["BackupSizeBytes"]
    assert src["KeySchema"] == table["KeySchema"] and src["BillingMode"] == "PAY_PER_REQUEST"
    features = desc["SourceTableFeatureDetails"]
    assert [ix["IndexName"] for ix in features["GlobalSecondaryIndexes"]] == ["by_g"]
    assert [ix["IndexName"] for ix in features["LocalSecondaryIndexes"]] == ["pk_g"]

    listed = ddb.list_backups(TableName=name)["BackupSummaries"]
    assert [b["BackupArn"] for b in listed] == [details["BackupArn"]]
    assert listed[0]["TableName"] == name and listed[0]["BackupSizeBytes"] == details["BackupSizeBytes"]

    deleted = ddb.delete_backup(BackupArn=details["BackupArn"])["BackupDescription"]
    assert deleted["BackupDetails"]["BackupStatus"] == "DELETED"
    with expect_error("BackupNotFoundException", f"Backup not found: {details['BackupArn']}"):
        ddb.describe_backup(BackupArn=details["BackupArn"])
    with expect_error("BackupNotFoundException", "Backup not found"):
        ddb.delete_backup(BackupArn=details["BackupArn"])
    assert ddb.list_backups(TableName=name)["BackupSummaries"] == []


def test_restore_from_backup_is_the_table_at_backup_time(
    ddb: Any, make_table: TableFactory, backups: list[str], restored: list[str]
) -> None:
    name = indexed_table(make_table)
    for i in range(30):
        ddb.put_item(TableName=name, Item=item("a" if i % 2 else "b", i, g=f"g{i % 4}", v=i))
    expected = scan_all(ddb, name)
    arn = ddb.create_backup(TableName=name, BackupName="before-changes")["BackupDetails"]["BackupArn"]
    backups.append(arn)
    ddb.put_item(TableName=name, Item=item("c", 99, g="g0"))
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
    ddb.update_item(TableName=name, Key={"pk": {"S": "b"}, "sk": {"N": "0"}}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"N": "1000"}})

    target = unique_name("restored")
    restored.append(target)
    desc = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)["TableDescription"]
    assert desc["TableName"] == target and desc["TableStatus"] == "ACTIVE"
    assert desc["RestoreSummary"]["SourceBackupArn"] == arn
    assert desc["RestoreSummary"]["SourceTableArn"] == ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert desc["RestoreSummary"]["RestoreInProgress"] is False
    assert desc["ItemCount"] == 30
    assert desc["KeySchema"] == key_schema(("pk", "S"), ("sk", "N"))["KeySchema"]
    assert {ix["IndexName"] for ix in desc["GlobalSecondaryIndexes"]} == {"by_g"}
    assert {ix["IndexName"] for ix in desc["LocalSecondaryIndexes"]} == {"pk_g"}
    assert scan_all(ddb, target) == expected
    # Index entries were rebuilt: the GSI and LSI answer like the source did at backup time.
    by_g = ddb.query(TableName=target, IndexName="by_g", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": {"S": "g1"}})["Items"]
    assert sorted(int(i["sk"]["N"]) for i in by_g) == [i for i in range(30) if i % 4 == 1]
    lsi = ddb.query(TableName=target, IndexName="pk_g", KeyConditionExpression="pk = :p AND g = :g",
                    ExpressionAttributeValues={":p": {"S": "a"}, ":g": {"S": "g1"}})["Items"]
    assert sorted(int(i["sk"]["N"]) for i in lsi) == [i for i in range(30) if i % 4 == 1 and i % 2]
    assert scan_all(ddb, target, IndexName="by_g") == expected
    restored_desc = ddb.describe_table(TableName=target)["Table"]
    assert restored_desc["GlobalSecondaryIndexes"][0]["ItemCount"] == 30
    assert restored_desc["RestoreSummary"]["RestoreDateTime"] == ddb.describe_backup(
        BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupCreationDateTime"]
    # The restored table is an ordinary table; the source is untouched.
    ddb.put_item(TableName=target, Item=item("z", 1))
    assert len(scan_all(ddb, target)) == 31
    assert ("c", "99") in scan_all(ddb, name)


def test_backups_outlive_their_table(ddb: Any, make_table: TableFactory, backups: list[str], restored: list[str]) -> None:
    name = make_table(("pk", "S"), ("sk", "N"))
    ddb.put_item(TableName=name, Item=item("a", 1, x="kept"))
    arn = ddb.create_backup(TableName=name, BackupName="last")["BackupDetails"]["BackupArn"]
    backups.append(arn)
    ddb.delete_table(TableName=name)
    assert ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    assert [b["BackupArn"] for b in ddb.list_backups(TableName=name)["BackupSummaries"]] == [arn]
    restored.append(name)
    ddb.restore_table_from_backup(TargetTableName=name, BackupArn=arn)  # under the old name
    assert scan_all(ddb, name)[("a", "1")]["x"] == {"S": "kept"}


def test_restore_overrides(ddb: Any, make_table: TableFactory, backups: list[str], restored: list[str]) -> None:
    name = indexed_table(make_table)
    for i in range(5):
        ddb.put_item(TableName=name, Item=item("a", i, g=f"g{i}"))
    arn = ddb.create_backup(TableName=name, BackupName="overrides")["BackupDetails"]["BackupArn"]
    backups.append(arn)

    bare = unique_name("bare")
    restored.append(bare)
    desc = ddb.restore_table_from_backup(
        TargetTableName=bare, BackupArn=arn, GlobalSecondaryIndexOverride=[], LocalSecondaryIndexOverride=[],
        BillingModeOverride="PROVISIONED",
        ProvisionedThroughputOverride={"ReadCapacityUnits": 7, "WriteCapacityUnits": 3},
        SSESpecificationOverride={"Enabled": True, "SSEType": "KMS"},
    )["TableDescription"]
    assert "GlobalSecondaryIndexes" not in desc and "LocalSecondaryIndexes" not in desc
    assert desc["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    assert desc["SSEDescription"]["Status"] == "ENABLED"
    assert [d["AttributeName"] for d in desc["AttributeDefinitions"]] == ["pk", "sk"]
    assert len(scan_all(ddb, bare)) == 5
    with expect_error("ValidationException"):
        ddb.query(TableName=bare, IndexName="by_g", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "g1"}})

    keys_only = unique_name("keysonly")
    restored.append(keys_only)
    desc = ddb.restore_table_from_backup(
        TargetTableName=keys_only, BackupArn=arn,
        GlobalSecondaryIndexOverride=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                       "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    )["TableDescription"]
    assert desc["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    got = ddb.query(TableName=keys_only, IndexName="by_g", KeyConditionExpression="g = :g",
                    ExpressionAttributeValues={":g": {"S": "g2"}})["Items"]
    assert got == [{"pk": {"S": "a"}, "sk": {"N": "2"}, "g": {"S": "g2"}}]

    with expect_error("ValidationException", "Some index key attributes are not defined in AttributeDefinitions"):
        ddb.restore_table_from_backup(
            TargetTableName=unique_name("bad"), BackupArn=arn,
            GlobalSecondaryIndexOverride=[{"IndexName": "by_h", "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                                           "Projection": {"ProjectionType": "ALL"}}],
        )


def test_backup_and_restore_errors(ddb: Any, make_table: TableFactory, backups: list[str], restored: list[str]) -> None:
    missing = unique_name("missing")
    with expect_error("TableNotFoundException", f"Table not found: {missing}"):
        ddb.create_backup(TableName=missing, BackupName="nope")
    name = make_table()
    arn = ddb.create_backup(TableName=name, BackupName="errors")["BackupDetails"]["BackupArn"]
    backups.append(arn)
    with expect_error("TableAlreadyExistsException", f"Table already exists: {name}"):
        ddb.restore_table_from_backup(TargetTableName=name, BackupArn=arn)
    unknown = arn.rsplit("/", 1)[0] + "/01000000000000-0badf00d"
    with expect_error("BackupNotFoundException", f"Backup not found: {unknown}"):
        ddb.restore_table_from_backup(TargetTableName=unique_name("never"), BackupArn=unknown)
    with expect_error("BackupNotFoundException", f"Backup not found: {unknown}"):
        ddb.describe_backup(BackupArn=unknown)
    with expect_error("ValidationException", "backupName"):
        ddb.create_backup(TableName=name, BackupName="has space")
    # A table ARN works wherever a table name does.
    table_arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    by_arn = ddb.create_backup(TableName=table_arn, BackupName="by-arn")["BackupDetails"]["BackupArn"]
    backups.append(by_arn)
    assert BACKUP_ARN.fullmatch(by_arn) is not None


def test_list_backups_filters_and_pages(ddb: Any, make_table: TableFactory, backups: list[str]) -> None:
    first, second = make_table(), make_table()
    arns = []
    times = []
    for i in range(5):
        d = ddb.create_backup(TableName=first, BackupName=f"page{i}")["BackupDetails"]
        arns.append(d["BackupArn"])
        times.append(d["BackupCreationDateTime"])
        time.sleep(0.005)  # distinct creation times, for the time-range bounds below
    other = ddb.create_backup(TableName=second, BackupName="other")["BackupDetails"]["BackupArn"]
    backups.extend(arns + [other])

    assert [b["BackupArn"] for b in ddb.list_backups(TableName=first)["BackupSummaries"]] == arns
    table_arn = ddb.describe_table(TableName=second)["Table"]["TableArn"]
    assert [b["BackupArn"] for b in ddb.list_backups(TableName=table_arn)["BackupSummaries"]] == [other]
    everything = [b["BackupArn"] for b in ddb.list_backups()["BackupSummaries"]]
    assert set(arns + [other]) <= set(everything)

    pages: list[list[str]] = []
    args: dict[str, Any] = {"TableName": first, "Limit": 2}
    while True:
        page = ddb.list_backups(**args)
        pages.append([b["BackupArn"] for b in page["BackupSummaries"]])
        if "LastEvaluatedBackupArn" not in page:
            break
        assert page["LastEvaluatedBackupArn"] == pages[-1][-1]
        args["ExclusiveStartBackupArn"] = page["LastEvaluatedBackupArn"]
    assert pages == [arns[0:2], arns[2:4], arns[4:]]
    paginated = [b["BackupArn"] for p in ddb.get_paginator("list_backups").paginate(
        TableName=first, PaginationConfig={"PageSize": 3}) for b in p["BackupSummaries"]]
    assert paginated == arns

    # Lower bound inclusive, upper bound exclusive.
    within = ddb.list_backups(TableName=first, TimeRangeLowerBound=times[1], TimeRangeUpperBound=times[3])
    assert [b["BackupArn"] for b in within["BackupSummaries"]] == arns[1:3]
    assert ddb.list_backups(TableName=first, BackupType="SYSTEM")["BackupSummaries"] == []
    assert [b["BackupArn"] for b in ddb.list_backups(TableName=first, BackupType="ALL")["BackupSummaries"]] == arns
    with expect_error("ValidationException", "limit"):
        ddb.list_backups(Limit=101)


# --------------------------------------------------------------------------- point-in-time recovery


def test_continuous_backups_settings(ddb: Any, make_table: TableFactory) -> None:
    name = make_table()
    d = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert d == {"ContinuousBackupsStatus": "ENABLED",
                 "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
    before = time.time()
    d = ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )["ContinuousBackupsDescription"]
    pitr = d["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED" and pitr["RecoveryPeriodInDays"] == 35
    enabled_at = pitr["EarliestRestorableDateTime"].timestamp()
    assert before - 1 <= enabled_at <= time.time() + 1
    latest = pitr["LatestRestorableDateTime"].timestamp()
    assert abs(latest - (time.time() - LATEST_LAG_S)) < 2
    d = ddb.update_continuous_backups(
        TableName=name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7},
    )["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert d["RecoveryPeriodInDays"] == 7
    assert d["EarliestRestorableDateTime"].timestamp() == enabled_at  # still since it was enabled
    described = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert described["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 7
    with expect_error("ValidationException", "recoveryPeriodInDays"):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 36},
        )
    d = ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )["ContinuousBackupsDescription"]
    assert d["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
    missing = unique_name("missing")
    with expect_error("TableNotFoundException", f"Table not found: {missing}"):
        ddb.describe_continuous_backups(TableName=missing)
    with expect_error("TableNotFoundException", f"Table not found: {missing}"):
        ddb.update_continuous_backups(TableName=missing,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def test_point_in_time_errors(ddb: Any, make_table: TableFactory) -> None:
    name = make_table()
    with expect_error("PointInTimeRecoveryUnavailableException",
                      f"Point in time recovery is not enabled for table '{name}'"):
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=unique_name("t"),
                                           UseLatestRestorableTime=True)
    missing = unique_name("missing")
    with expect_error("TableNotFoundException", f"Table not found: {missing}"):
        ddb.restore_table_to_point_in_time(SourceTableName=missing, TargetTableName=unique_name("t"),
                                           UseLatestRestorableTime=True)
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    with expect_error("InvalidRestoreTimeException"):
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=unique_name("t"),
                                           RestoreDateTime=time.time() - 3600)  # before PITR was enabled
    with expect_error("InvalidRestoreTimeException"):
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=unique_name("t"),
                                           RestoreDateTime=time.time() + 60)  # in the future
    with expect_error("TableAlreadyExistsException", f"Table already exists: {name}"):
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=name,
                                           UseLatestRestorableTime=True)
    with expect_error("ValidationException"):
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=unique_name("t"),
                                           UseLatestRestorableTime=True, RestoreDateTime=time.time())


def test_point_in_time_restore_is_exact_while_writes_go_on(
    ddb: Any, make_table: TableFactory, restored: list[str]
) -> None:
    """A writer applies a known sequence of changes with a pause between them; a restore to any
    instant in a pause holds exactly the changes acknowledged before it. A second writer keeps
    writing while the restores run."""
    name = make_table(("pk", "S"), ("sk", "N"))
    for i in range(20):
        ddb.put_item(TableName=name, Item=item("base", i, v=0))
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    time.sleep(0.05)

    state = scan_all(ddb, name)
    snapshots: list[tuple[float, dict[tuple[str, str], dict[str, Any]]]] = []
    for step in range(8):
        if step % 3 == 0:
            ddb.delete_item(TableName=name, Key={"pk": {"S": "base"}, "sk": {"N": str(step)}})
            state.pop(("base", str(step)))
        elif step % 3 == 1:
            ddb.update_item(TableName=name, Key={"pk": {"S": "base"}, "sk": {"N": str(10 + step)}},
                            UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": str(step)}})
            state[("base", str(10 + step))] = item("base", 10 + step, v=step)
        else:
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": name, "Item": item("new", step, v=step)}},
                {"Delete": {"TableName": name, "Key": {"pk": {"S": "base"}, "sk": {"N": str(19 - step)}}}},
            ])
            state[("new", str(step))] = item("new", step, v=step)
            state.pop(("base", str(19 - step)), None)
        acked = time.time()
        time.sleep(0.06)
        snapshots.append((acked + 0.03, dict(state)))  # the middle of the pause after this change
        time.sleep(0.01)

    stop = threading.Event()
    noise_errors: list[BaseException] = []

    def noise() -> None:
        client = make_client(ddb.meta.endpoint_url)
        n = 0
        try:
            while not stop.is_set() and n < 2000:
                client.put_item(TableName=name, Item=item("noise", n % 50, v=n))
                n += 1
        except BaseException as e:  # reported below
            noise_errors.append(e)

    writer = threading.Thread(target=noise)
    writer.start()
    try:
        wait_restorable(ddb, name, snapshots[-1][0])
        for at, expected in snapshots[::2] + [snapshots[-1]]:
            target = unique_name("pitr")
            restored.append(target)
            desc = ddb.restore_table_to_point_in_time(
                SourceTableName=name, TargetTableName=target, RestoreDateTime=at
            )["TableDescription"]
            assert desc["RestoreSummary"]["SourceTableArn"].endswith("/" + name)
            assert "SourceBackupArn" not in desc["RestoreSummary"]
            assert abs(desc["RestoreSummary"]["RestoreDateTime"].timestamp() - at) < 0.001
            assert scan_all(ddb, target) == expected
            assert desc["ItemCount"] == len(expected)
    finally:
        stop.set()
        writer.join()
    assert not noise_errors, noise_errors


def test_backup_is_a_consistent_cut_of_concurrent_transactions(
    ddb: Any, make_table: TableFactory, backups: list[str], restored: list[str]
) -> None:
    """A writer sets three counters to the same value in each transaction; every backup taken
    meanwhile (the copy spans several chunks) shows them equal."""
    name = make_table(("pk", "S"), ("sk", "N"))
    with_filler = [{"PutRequest": {"Item": item("filler", i, pad="x" * 50)}} for i in range(1100)]
    for start in range(0, len(with_filler), 25):
        ddb.batch_write_item(RequestItems={name: with_filler[start:start + 25]})
    counters = [("c", 0), ("m", 500), ("z", 1000)]  # spread over the key space

    stop = threading.Event()
    errors: list[BaseException] = []
    done = [0]

    def writer() -> None:
        client = make_client(ddb.meta.endpoint_url)
        n = 0
        try:
            while not stop.is_set() and n < 5000:
                n += 1
                client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": name, "Item": item(pk, sk, n=n)}} for pk, sk in counters
                ])
                done[0] = n
        except BaseException as e:  # reported below
            errors.append(e)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    try:
        for i in range(3):
            while done[0] == 0 and thread.is_alive():
                time.sleep(0.01)
            if errors:
                raise errors[0]  # the writer could not even start: report why, do not wait forever
            arn = ddb.create_backup(TableName=name, BackupName=f"cut{i}")["BackupDetails"]["BackupArn"]
            backups.append(arn)
            target = unique_name("cut")
            restored.append(target)
            ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
            got = scan_all(ddb, target)
            values = {got[(pk, str(sk))]["n"]["N"] for pk, sk in counters}
            assert len(values) == 1, values
            assert len(got) == 1103
            seen.append(int(values.pop()))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen == sorted(seen) and seen[-1] > 0


# --------------------------------------------------------------------------- durability and the CLI


def test_backups_and_pitr_survive_a_restart(own_server_factory: Any, tmp_path: Path) -> None:
    server = own_server_factory(tmp_path / "data")
    ddb = make_client(server.endpoint)
    ddb.create_table(TableName="durable", BillingMode="PAY_PER_REQUEST", **key_schema(("pk", "S"), ("sk", "N")))
    for i in range(50):
        ddb.put_item(TableName="durable", Item=item("a", i, v=i))
    arn = ddb.create_backup(TableName="durable", BackupName="keep")["BackupDetails"]["BackupArn"]
    ddb.update_continuous_backups(TableName="durable",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    time.sleep(0.05)
    ddb.delete_item(TableName="durable", Key={"pk": {"S": "a"}, "sk": {"N": "7"}})
    deleted_at = time.time()
    time.sleep(0.05)
    ddb.put_item(TableName="durable", Item=item("b", 1))
    pitr = ddb.describe_continuous_backups(TableName="durable")["ContinuousBackupsDescription"]
    assert server.stop() == 0

    server = own_server_factory(tmp_path / "data")
    ddb = make_client(server.endpoint)
    desc = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
    assert desc["BackupDetails"]["BackupStatus"] == "AVAILABLE" and desc["SourceTableDetails"]["ItemCount"] == 50
    again = ddb.describe_continuous_backups(TableName="durable")["ContinuousBackupsDescription"]
    assert again["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"] == \
        pitr["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"]
    ddb.restore_table_from_backup(TargetTableName="from_backup", BackupArn=arn)
    assert len(scan_all(ddb, "from_backup")) == 50
    wait_restorable(ddb, "durable", deleted_at)
    ddb.restore_table_to_point_in_time(SourceTableName="durable", TargetTableName="from_pitr", RestoreDateTime=deleted_at)
    got = scan_all(ddb, "from_pitr")
    assert len(got) == 49 and ("a", "7") not in got and ("b", "1") not in got


def test_aws_cli_backups(endpoint: str, ddb: Any, make_table: TableFactory, tmp_path: Path,
                         backups: list[str], restored: list[str]) -> None:
    """Also: the table has a stream, so every write runs both change hooks (stream record and
    PITR undo record); restored tables do not inherit the stream."""
    name = make_table(("pk", "S"), ("sk", "N"),
                      StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    for i in range(3):
        ddb.put_item(TableName=name, Item=item("a", i))
    created = aws(endpoint, tmp_path, "create-backup", "--table-name", name, "--backup-name", "cli")
    arn = created["BackupDetails"]["BackupArn"]
    backups.append(arn)
    assert BACKUP_ARN.fullmatch(arn) and created["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    listed = aws(endpoint, tmp_path, "list-backups", "--table-name", name)
    assert [b["BackupArn"] for b in listed["BackupSummaries"]] == [arn]
    target = unique_name("cli")
    restored.append(target)
    out = aws(endpoint, tmp_path, "restore-table-from-backup", "--target-table-name", target, "--backup-arn", arn)
    assert out["TableDescription"]["RestoreSummary"]["SourceBackupArn"] == arn
    assert len(scan_all(ddb, target)) == 3

    out = aws(endpoint, tmp_path, "update-continuous-backups", "--table-name", name,
              "--point-in-time-recovery-specification", "PointInTimeRecoveryEnabled=true")
    assert out["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    time.sleep(0.05)
    ddb.put_item(TableName=name, Item=item("later", 1))
    wait_restorable(ddb, name, time.time())
    pitr_target = unique_name("clipitr")
    restored.append(pitr_target)
    out = aws(endpoint, tmp_path, "restore-table-to-point-in-time", "--source-table-name", name,
              "--target-table-name", pitr_target, "--use-latest-restorable-time")
    assert "RestoreSummary" in out["TableDescription"]
    assert set(scan_all(ddb, pitr_target)) == {("a", "0"), ("a", "1"), ("a", "2"), ("later", "1")}
    described = aws(endpoint, tmp_path, "describe-continuous-backups", "--table-name", name)
    assert described["ContinuousBackupsDescription"]["ContinuousBackupsStatus"] == "ENABLED"
    deleted = aws(endpoint, tmp_path, "delete-backup", "--backup-arn", arn)
    assert deleted["BackupDescription"]["BackupDetails"]["BackupStatus"] == "DELETED"

    for t in (target, pitr_target):
        assert "LatestStreamArn" not in ddb.describe_table(TableName=t)["Table"]
    streams = make_client(endpoint, "dynamodbstreams")
    stream = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [
        ("INSERT", "a"), ("INSERT", "a"), ("INSERT", "a"), ("INSERT", "later")]
