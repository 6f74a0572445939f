"""Backup and PITR handlers over the in-memory data plane: a table being restored is CREATING and
refuses reads, writes and changes; request validation of the restores; the restorable window."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from test_handlers_support import Client, make_table

from quorumdb.api.ops.backups import restorable_window
from quorumdb.db import backups
from quorumdb.errors import (
    BackupInUseError,
    ContinuousBackupsUnavailableError,
    ResourceInUseError,
    ResourceNotFoundError,
    TableInUseError,
    ValidationError,
)
from quorumdb.model.schema import RestoreInfo

DAY = 86400.0


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(make_table("src", range_=("sk", "N")))
    yield c
    c.close()


def test_a_table_being_restored_is_creating_and_refuses_changes(client: Client) -> None:
    client.call("PutItem", {"TableName": "src", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}}})
    arn = client.call("CreateBackup", {"TableName": "src", "BackupName": "base"})["BackupDetails"]["BackupArn"]
    inner = client.db.inner
    src = inner.table("src")
    half = dataclasses.replace(
        src, name="half", table_id=0, status="CREATING",
        restore=RestoreInfo(source_table_arn=src.arn, source_backup_arn=arn, restore_time=1.0,
                            in_progress=True, owner=inner._owner),
    )
    client.loop.run_until_complete(inner.committer.submit(lambda b: backups.begin_restore(b, half, arn)))
    inner._catalog = inner._load_catalog()
    client.db.writes = 0

    desc = client.call("DescribeTable", {"TableName": "half"})["Table"]
    assert desc["TableStatus"] == "CREATING"
    assert desc["RestoreSummary"] == {"SourceBackupArn": arn, "SourceTableArn": src.arn,
                                      "RestoreDateTime": 1.0, "RestoreInProgress": True}
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    with pytest.raises(ResourceNotFoundError):
        client.call("PutItem", {"TableName": "half", "Item": key})
    with pytest.raises(ResourceNotFoundError):
        client.call("GetItem", {"TableName": "half", "Key": key})
    with pytest.raises(ResourceInUseError, match="Table is being created: half"):
        client.call("DeleteTable", {"TableName": "half"})
    with pytest.raises(ResourceInUseError):
        client.call("UpdateTable", {"TableName": "half", "BillingMode": "PAY_PER_REQUEST"})
    with pytest.raises(TableInUseError):
        client.call("CreateBackup", {"TableName": "half", "BackupName": "nope"})
    with pytest.raises(ContinuousBackupsUnavailableError):
        client.call("UpdateContinuousBackups", {
            "TableName": "half", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})
    with pytest.raises(BackupInUseError):
        client.call("DeleteBackup", {"BackupArn": arn})  # a restore is reading it
    assert client.db.writes == 0


def test_restore_request_validation(client: Client) -> None:
    arn = client.call("CreateBackup", {"TableName": "src", "BackupName": "base"})["BackupDetails"]["BackupArn"]
    with pytest.raises(ValidationError, match="SourceTableArn or SourceTableName"):
        client.call("RestoreTableToPointInTime", {"TargetTableName": "t2", "UseLatestRestorableTime": True})
    with pytest.raises(ValidationError, match="RestoreDateTime or UseLatestRestorableTime"):
        client.call("RestoreTableToPointInTime", {"SourceTableName": "src", "TargetTableName": "t2"})
    # The source is PROVISIONED with zero units here; PAY_PER_REQUEST refuses capacity.
    with pytest.raises(ValidationError, match="PAY_PER_REQUEST"):
        client.call("RestoreTableFromBackup", {
            "TargetTableName": "t2", "BackupArn": arn, "BillingModeOverride": "PAY_PER_REQUEST",
            "ProvisionedThroughputOverride": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}})
    with pytest.raises(ValidationError, match="Index KeySchema does not have the same leading hash key"):
        client.call("RestoreTableFromBackup", {
            "TargetTableName": "t2", "BackupArn": arn,
            "LocalSecondaryIndexOverride": [{
                "IndexName": "lsi", "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}, {"AttributeName": "pk", "KeyType": "RANGE"}],
            }]})
    with pytest.raises(ValidationError, match="RecoveryPeriodInDays"):
        client.call("UpdateContinuousBackups", {"TableName": "src", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": False, "RecoveryPeriodInDays": 3}})
    assert "t2" not in client.db.table_names()


def test_restorable_window() -> None:
    t = make_table("w")
    assert restorable_window(t, 1000.0) is None
    on = dataclasses.replace(t, pitr_since=100.0)
    assert restorable_window(on, 1000.0) == (100.0, 995.0)  # since enabled, until now - 5 s
    later = 100.0 + 40 * DAY
    assert restorable_window(on, later) == (later - 35 * DAY, later - 5.0)  # 35 days back at most
    week = dataclasses.replace(on, pitr_days=7)
    assert restorable_window(week, later) == (later - 7 * DAY, later - 5.0)
