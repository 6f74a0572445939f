"""Backups and point-in-time recovery: CreateBackup, DescribeBackup, ListBackups, DeleteBackup,
RestoreTableFromBackup, UpdateContinuousBackups, DescribeContinuousBackups and
RestoreTableToPointInTime.

A backup is a copy of one snapshot of the table's items, kept in the store (it outlives its
table); a point-in-time restore rebuilds the table as of any instant of its recovery window
from the undo log the data plane keeps while PITR is enabled. A restore creates a new table
with the source's key schema and indexes (or the request's overrides), its items and index
entries; it is CREATING (RestoreInProgress) until every item is in, and ACTIVE when the
operation returns. Tags, TTL, streams, PITR and deletion protection are not restored, as in
DynamoDB.

Handlers here never touch storage and never format HTTP errors.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from quorumdb.api.ops.control import (
    INVALID,
    PAY_PER_REQUEST,
    PROVISIONED,
    _check_bounds,
    _check_defined,
    _check_gsi,
    _check_key_elements,
    _check_projection,
    _index_def,
    _names,
    _throughput,
    describe_table,
)
from quorumdb.api.registry import RequestContext, operation
from quorumdb.db.backups import INVALID_RESTORE_TIME, PITR_UNAVAILABLE
from quorumdb.errors import (
    BackupInUseError,
    BackupNotFoundError,
    ContinuousBackupsUnavailableError,
    InvalidRestoreTimeError,
    PointInTimeRecoveryUnavailableError,
    ResourceInUseError,
    ResourceNotFoundError,
    TableAlreadyExistsError,
    TableInUseError,
    TableNotFoundError,
    ValidationError,
)
from quorumdb.model.backups import AVAILABLE, DELETED, BackupDef, backup_id_of
from quorumdb.model.schema import IndexDef, RestoreInfo, TableDef, Throughput

__all__ = ["restorable_window", "LATEST_RESTORABLE_LAG_S"]

LATEST_RESTORABLE_LAG_S = 5.0  # DynamoDB's LatestRestorableDateTime is about 5 s before now
_TABLE_ARN = re.compile(r"arn:aws:dynamodb:[^:]*:[^:]*:table/([^/]+)")


def _table_name(name_or_arn: str) -> str:
    m = _TABLE_ARN.fullmatch(name_or_arn)
    return name_or_arn if m is None else m.group(1)


def _source_table(ctx: RequestContext, name_or_arn: str) -> TableDef:
    name = _table_name(name_or_arn)
    try:
        return ctx.db.table(name)
    except ResourceNotFoundError:
        raise TableNotFoundError(f"Table not found: {name}") from None


def _backup(ctx: RequestContext, arn: str) -> BackupDef:
    b = ctx.db.backup(arn)
    if b is None:
        raise BackupNotFoundError(f"Backup not found: {arn}")
    return b


# -- describing ---------------------------------------------------------------------------


def _details(b: BackupDef, status: str | None = None) -> dict[str, Any]:
    return {
        "BackupArn": b.arn,
        "BackupName": b.name,
        "BackupSizeBytes": b.size_bytes,
        "BackupStatus": status or b.status,
        "BackupType": "USER",
        "BackupCreationDateTime": b.created_at,
    }


def _summary(b: BackupDef) -> dict[str, Any]:
    t = b.table
    return {
        "TableName": t.name,
        "TableId": t.uuid,
        "TableArn": t.arn,
        "BackupArn": b.arn,
        "BackupName": b.name,
        "BackupCreationDateTime": b.created_at,
        "BackupStatus": b.status,
        "BackupType": "USER",
        "BackupSizeBytes": b.size_bytes,
    }


def _capacity(tp: Throughput) -> dict[str, int]:
    return {"ReadCapacityUnits": tp.read_units, "WriteCapacityUnits": tp.write_units}


def _index_features(ix: IndexDef) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": ix.projection}
    if ix.projection == "INCLUDE" and ix.non_key_attributes:
        projection["NonKeyAttributes"] = list(ix.non_key_attributes)
    out: dict[str, Any] = {"IndexName": ix.name, "KeySchema": ix.key_schema.to_wire(), "Projection": projection}
    if not ix.local:
        out["ProvisionedThroughput"] = _capacity(ix.throughput)
    return out


def _description(b: BackupDef, status: str | None = None) -> dict[str, Any]:
    t = b.table
    features: dict[str, Any] = {}
    if t.local_indexes:
        features["LocalSecondaryIndexes"] = [_index_features(ix) for ix in t.local_indexes]
    if t.global_indexes:
        features["GlobalSecondaryIndexes"] = [_index_features(ix) for ix in t.global_indexes]
    if t.stream_spec:
        features["StreamDescription"] = dict(t.stream_spec)
    if t.ttl_enabled and t.ttl_attribute:
        features["TimeToLiveDescription"] = {"TimeToLiveStatus": "ENABLED", "AttributeName": t.ttl_attribute}
    return {
        "BackupDetails": _details(b, status),
        "SourceTableDetails": {
            "TableName": t.name,
            "TableId": t.uuid,
            "TableArn": t.arn,
            "TableSizeBytes": b.size_bytes,
            "KeySchema": t.key_schema.to_wire(),
            "TableCreationDateTime": t.created_at,
            "ProvisionedThroughput": _capacity(t.throughput),
            "ItemCount": b.item_count,
            "BillingMode": t.billing_mode,
        },
        "SourceTableFeatureDetails": features,
    }


# -- on-demand backups ------------------------------------------------------------------------


@operation("CreateBackup")
async def create_backup(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _source_table(ctx, req["TableName"])
    if table.status_at(ctx.now()) not in ("ACTIVE", "UPDATING"):  # the stored status may be over
        raise TableInUseError(f"Table is being restored: {table.name}")
    try:
        b = await ctx.db.create_backup(table, req["BackupName"])
    except ResourceNotFoundError:
        raise TableNotFoundError(f"Table not found: {table.name}") from None
    return {"BackupDetails": _details(b)}


@operation("DescribeBackup")
async def describe_backup(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return {"BackupDescription": _description(_backup(ctx, req["BackupArn"]))}


@operation("DeleteBackup")
async def delete_backup(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    b = await ctx.db.delete_backup(req["BackupArn"])
    return {"BackupDescription": _description(b, DELETED)}


@operation("ListBackups")
async def list_backups(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if (req.get("BackupType") or "USER") not in ("USER", "ALL"):
        return {"BackupSummaries": []}  # every backup here is a USER backup
    found = ctx.db.backups()
    name = req.get("TableName")
    if name is not None:
        name = _table_name(name)
        found = [b for b in found if b.table.name == name]
    lower = req.get("TimeRangeLowerBound")
    if lower is not None:
        found = [b for b in found if b.created_at >= lower]  # inclusive
    upper = req.get("TimeRangeUpperBound")
    if upper is not None:
        found = [b for b in found if b.created_at < upper]  # exclusive
    start = req.get("ExclusiveStartBackupArn")
    if start is not None:
        ids = backup_id_of(start)
        if ids is None:
            raise ValidationError(f"Invalid ExclusiveStartBackupArn: {start}")
        found = [b for b in found if b.backup_id > ids[1]]
    out: dict[str, Any] = {}
    limit = req.get("Limit")
    if limit is not None and len(found) > limit:
        found = found[:limit]
        out["LastEvaluatedBackupArn"] = found[-1].arn
    out["BackupSummaries"] = [_summary(b) for b in found]
    return out


# -- restores -------------------------------------------------------------------------------


def _override_indexes(
    specs: list[dict[str, Any]], *, local: bool, src: TableDef, billing: str
) -> list[IndexDef]:
    defined = list(src.attribute_definitions)
    out: list[IndexDef] = []
    for spec in specs:
        if local:
            keys = _names(spec["KeySchema"])
            _check_defined(keys, defined)
            _check_key_elements(spec["KeySchema"])
            if len(keys) != 2 or keys[0] != src.key_schema.hash.name:
                raise ValidationError(
                    INVALID + "Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                    f"{spec['IndexName']}"
                )
            _check_projection(spec["IndexName"], spec["Projection"])
        else:
            _check_gsi(spec, defined, billing)
        if any(ix.name == spec["IndexName"] for ix in out):
            raise ValidationError(INVALID + f"Duplicate index name: {spec['IndexName']}")
        out.append(_index_def(spec, 0, local=local, types=src.attribute_definitions))
    return out


def _restored_def(ctx: RequestContext, src: TableDef, req: dict[str, Any], restore: RestoreInfo) -> TableDef:
    """The target table: the source's schema and indexes, with the request's overrides."""
    billing = req.get("BillingModeOverride") or src.billing_mode
    pt = req.get("ProvisionedThroughputOverride")
    if billing == PAY_PER_REQUEST:
        if pt is not None:
            raise ValidationError(
                INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
            )
        throughput = Throughput()
    elif pt is not None:
        _check_bounds(pt)
        throughput = _throughput(pt)
    elif src.billing_mode == PROVISIONED:
        throughput = Throughput(read_units=src.throughput.read_units, write_units=src.throughput.write_units)
    else:
        raise ValidationError(
            INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
        )
    gsi_specs = req.get("GlobalSecondaryIndexOverride")
    lsi_specs = req.get("LocalSecondaryIndexOverride")
    if gsi_specs is not None:
        gsis = _override_indexes(gsi_specs, local=False, src=src, billing=billing)
    else:
        gsis = [_restored_gsi(ix, billing, throughput) for ix in src.global_indexes]
    if lsi_specs is not None:
        lsis = _override_indexes(lsi_specs, local=True, src=src, billing=billing)
    else:
        lsis = list(src.local_indexes)
    indexes = tuple(
        dataclasses.replace(ix, index_id=i, status="ACTIVE", backfilling=False) for i, ix in enumerate(lsis + gsis)
    )
    used = set(src.key_schema.names)
    for ix in indexes:
        used.update(ix.key_schema.names)
    return TableDef(
        name=req["TargetTableName"],
        table_id=0,
        uuid=str(uuid.uuid4()),
        key_schema=src.key_schema,
        attribute_definitions={n: t for n, t in src.attribute_definitions.items() if n in used},
        created_at=ctx.now(),
        billing_mode=billing,
        throughput=throughput,
        indexes=indexes,
        status="CREATING",
        table_class=src.table_class,
        restore=restore,
    )


def _restored_gsi(ix: IndexDef, billing: str, table_throughput: Throughput) -> IndexDef:
    if billing == PAY_PER_REQUEST:
        tp = Throughput()
    elif ix.throughput.read_units and ix.throughput.write_units:
        tp = Throughput(read_units=ix.throughput.read_units, write_units=ix.throughput.write_units)
    else:
        tp = table_throughput  # the source was on demand: the index gets the table's capacity
    return dataclasses.replace(ix, throughput=tp)


def _restored(ctx: RequestContext, t: TableDef, req: dict[str, Any]) -> dict[str, Any]:
    out = describe_table(ctx, t)
    sse = req.get("SSESpecificationOverride")
    if sse and sse.get("Enabled"):
        out["SSEDescription"] = {"Status": "ENABLED", "SSEType": sse.get("SSEType") or "KMS"}
    return {"TableDescription": out}


def _check_target_free(ctx: RequestContext, name: str) -> None:
    if name in ctx.db.table_names():
        raise TableAlreadyExistsError(f"Table already exists: {name}")


@operation("RestoreTableFromBackup")
async def restore_table_from_backup(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    arn = req["BackupArn"]
    target = req["TargetTableName"]
    _check_target_free(ctx, target)
    b = _backup(ctx, arn)
    if b.status != AVAILABLE:
        raise BackupInUseError(f"Backup is being created: {arn}")
    restore = RestoreInfo(source_table_arn=b.table.arn, source_backup_arn=arn, restore_time=b.created_at)
    tdef = _restored_def(ctx, b.table, req, restore)
    try:
        t = await ctx.db.restore_backup(arn, tdef)
    except ResourceInUseError:
        raise TableAlreadyExistsError(f"Table already exists: {target}") from None
    return _restored(ctx, t, req)


# -- point-in-time recovery -------------------------------------------------------------------


def restorable_window(table: TableDef, now: float) -> tuple[float, float] | None:
    """(EarliestRestorableDateTime, LatestRestorableDateTime) of a table; None without PITR."""
    if table.pitr_since is None:
        return None
    return max(table.pitr_since, now - table.pitr_days * 86400.0), now - LATEST_RESTORABLE_LAG_S


def _continuous(table: TableDef, now: float) -> dict[str, Any]:
    window = restorable_window(table, now)
    pitr: dict[str, Any]
    if window is None:
        pitr = {"PointInTimeRecoveryStatus": "DISABLED"}
    else:
        pitr = {
            "PointInTimeRecoveryStatus": "ENABLED",
            "RecoveryPeriodInDays": table.pitr_days,
            "EarliestRestorableDateTime": window[0],
            "LatestRestorableDateTime": window[1],
        }
    return {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": pitr}


@operation("DescribeContinuousBackups")
async def describe_continuous_backups(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _source_table(ctx, req["TableName"])
    return {"ContinuousBackupsDescription": _continuous(table, ctx.now())}


@operation("UpdateContinuousBackups")
async def update_continuous_backups(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    spec = req["PointInTimeRecoverySpecification"]
    enabled = bool(spec["PointInTimeRecoveryEnabled"])
    days = spec.get("RecoveryPeriodInDays")
    if days is not None and not enabled:
        raise ValidationError(
            "RecoveryPeriodInDays can only be specified when PointInTimeRecoveryEnabled is set to true"
        )
    table = _source_table(ctx, req["TableName"])
    if table.status_at(ctx.now()) not in ("ACTIVE", "UPDATING"):
        raise ContinuousBackupsUnavailableError(f"Backups are being enabled for the table: {table.name}. Please retry later")
    try:
        t = await ctx.db.set_point_in_time_recovery(table, enabled, days)
    except ResourceNotFoundError:
        raise TableNotFoundError(f"Table not found: {table.name}") from None
    return {"ContinuousBackupsDescription": _continuous(t, ctx.now())}


@operation("RestoreTableToPointInTime")
async def restore_table_to_point_in_time(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    source_name = req.get("SourceTableName")
    source_arn = req.get("SourceTableArn")
    if source_name is None and source_arn is None:
        raise ValidationError("Either SourceTableArn or SourceTableName must be specified")
    if source_name is not None and source_arn is not None:
        raise ValidationError("Only one of SourceTableArn or SourceTableName can be specified")
    at = req.get("RestoreDateTime")
    latest = bool(req.get("UseLatestRestorableTime"))
    if latest and at is not None:
        raise ValidationError("Only one of RestoreDateTime or UseLatestRestorableTime can be specified")
    if not latest and at is None:
        raise ValidationError("Either RestoreDateTime or UseLatestRestorableTime must be specified")
    source = _source_table(ctx, source_name if source_name is not None else source_arn)  # type: ignore[arg-type]
    target = req["TargetTableName"]
    _check_target_free(ctx, target)
    window = restorable_window(source, ctx.now())
    if window is None:
        raise PointInTimeRecoveryUnavailableError(PITR_UNAVAILABLE.format(source.name))
    if latest:
        at = window[1]
    assert at is not None
    if not window[0] <= at <= window[1]:
        raise InvalidRestoreTimeError(INVALID_RESTORE_TIME)
    tdef = _restored_def(ctx, source, req, RestoreInfo(source_table_arn=source.arn, restore_time=at))
    try:
        t = await ctx.db.restore_to_time(source, at, tdef)
    except ResourceInUseError:
        raise TableAlreadyExistsError(f"Table already exists: {target}") from None
    except ResourceNotFoundError:
        raise TableNotFoundError(f"Table not found: {source.name}") from None
    return _restored(ctx, t, req)
