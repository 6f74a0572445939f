"""Control-plane operations: tables, indexes, tags, time to live, limits and endpoints.

Each handler finishes DynamoDB's semantic validation (after the declarative spec in
``quorumdb.api.spec`` has checked types and constraints), then changes the catalog through the
data plane (``create_table``/``update_table``/``delete_table``) and describes the result in
DynamoDB's shapes. Changes apply at once; the CREATING / UPDATING / DELETING statuses DynamoDB
shows meanwhile are reported until a stored deadline (``quorumdb.api.lifecycle``), and a global
secondary index added by UpdateTable stays CREATING (Backfilling) until the data plane has
backfilled it. A table ARN is accepted wherever a TableName is.

Handlers here never touch items or storage engines, and never format HTTP errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import uuid
from collections.abc import Coroutine
from typing import Any

from quorumdb.api.lifecycle import in_use_error, status_deadline
from quorumdb.api.registry import Handler, RequestContext, operation
from quorumdb.db.contract import TableChangedError
from quorumdb.errors import (
    AccessDeniedError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
    ValidationError,
)
from quorumdb.model.schema import (
    ACCOUNT,
    GONE,
    MAX_KEY_ATTRIBUTES,
    REGION,
    IndexDef,
    KeyAttr,
    KeySchema,
    RestoreInfo,
    TableDef,
    Throughput,
    table_name_of,
)
from quorumdb.model.types import ScalarType

__all__ = [
    "describe_table",
    "set_endpoint_address",
    "MAX_LSI",
    "MAX_GSI",
    "MAX_PROJECTED_ATTRIBUTES",
    "MAX_TAGS",
]

INVALID = "One or more parameter values were invalid: "
MAX_LSI = 5
MAX_GSI = 20
MAX_PROJECTED_ATTRIBUTES = 100
MAX_TAGS = 50
MAX_CAPACITY_UNITS = 1_000_000_000_000
PAY_PER_REQUEST = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"

_ARN_SHAPE = re.compile(r".+:.+:.+:.+:.+:.+/.+")
_TABLE_ARN = re.compile(r"arn:aws:dynamodb:.+:\d+:table/([^/]{2}[^/]+)")

_endpoint_address = "localhost:8000"

log = logging.getLogger(__name__)


def set_endpoint_address(address: str) -> None:
    """The ``host:port`` DescribeEndpoints reports (set by the server once it listens)."""
    global _endpoint_address
    _endpoint_address = address


# -- changing a definition ------------------------------------------------------------------

_CHANGE_ATTEMPTS_MAX = 64


def _on_current_definition(handler: Handler) -> Handler:
    """Run a handler that reads a table definition and stores a changed copy again whenever
    another change replaced the definition first (``update_table`` is a compare-and-swap), so
    it recomputes from the current one and concurrent changes never undo each other. Handlers
    so wrapped must have no effect before their ``update_table``."""

    @functools.wraps(handler)
    async def run(ctx: RequestContext, req: dict[str, Any]) -> Any:
        for _ in range(_CHANGE_ATTEMPTS_MAX - 1):
            try:
                return await handler(ctx, req)
            except TableChangedError:
                continue
        return await handler(ctx, req)

    return run


# -- describing ---------------------------------------------------------------------------


def _projection(ix: IndexDef) -> dict[str, Any]:
    out: dict[str, Any] = {"ProjectionType": ix.projection}
    if ix.projection == "INCLUDE" and ix.non_key_attributes:
        out["NonKeyAttributes"] = list(ix.non_key_attributes)
    return out


def _describe_index(
    ctx: RequestContext, table: TableDef, ix: IndexDef, now: float, table_status: str
) -> dict[str, Any]:
    items, size = (0, 0) if ix.status == "DELETING" else ctx.db.index_stats(table, ix)
    out: dict[str, Any] = {
        "IndexName": ix.name,
        "KeySchema": ix.key_schema.to_wire(),
        "Projection": _projection(ix),
    }
    if not ix.local:
        # The indexes of a table being created are being created too.
        status = "CREATING" if table_status == "CREATING" else ix.status_at(now)
        out["IndexStatus"] = status
        if status == "CREATING" and table_status != "CREATING":  # an index added by UpdateTable
            out["Backfilling"] = ix.backfilling
        out["ProvisionedThroughput"] = ix.throughput.to_wire()
    out["IndexSizeBytes"] = size
    out["ItemCount"] = items
    out["IndexArn"] = f"{table.arn}/index/{ix.name}"
    return out


def describe_table(ctx: RequestContext, table: TableDef, *, status: str | None = None) -> dict[str, Any]:
    """The TableDescription DynamoDB returns for ``table`` (in ``status``, else its status now)."""
    now = ctx.now()
    table_status = status or table.status_at(now)
    items, size = ctx.db.table_stats(table)
    out: dict[str, Any] = {
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in table.attribute_definitions.items()
        ],
        "TableName": table.name,
        "KeySchema": table.key_schema.to_wire(),
        "TableStatus": table_status,
        "CreationDateTime": table.created_at,
        "ProvisionedThroughput": table.throughput.to_wire(),
        "TableSizeBytes": size,
        "ItemCount": items,
        "TableArn": table.arn,
        "TableId": table.uuid,
        "BillingModeSummary": {"BillingMode": table.billing_mode},
    }
    if table.billing_mode == PAY_PER_REQUEST:
        out["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = table.created_at
    lsis = [_describe_index(ctx, table, ix, now, table_status) for ix in table.local_indexes]
    if lsis:
        out["LocalSecondaryIndexes"] = lsis
    gsis = [_describe_index(ctx, table, ix, now, table_status) for ix in table.global_indexes]
    gsis += [_describe_index(ctx, table, ix, now, table_status) for ix in _deleting_indexes(table, now)]
    if gsis:
        out["GlobalSecondaryIndexes"] = gsis
    if table.stream_spec:
        out["StreamSpecification"] = dict(table.stream_spec)
    if table.stream_label is not None:
        out["LatestStreamLabel"] = table.stream_label
        out["LatestStreamArn"] = table.stream_arn
    out["TableClassSummary"] = {"TableClass": table.table_class}
    out["DeletionProtectionEnabled"] = table.deletion_protection
    if table.sse is not None:
        out["SSEDescription"] = dict(table.sse)
    if table.restore is not None:
        out["RestoreSummary"] = _restore_summary(table.restore)
    return out


def _restore_summary(r: RestoreInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.source_backup_arn is not None:
        out["SourceBackupArn"] = r.source_backup_arn
    out["SourceTableArn"] = r.source_table_arn
    out["RestoreDateTime"] = r.restore_time
    out["RestoreInProgress"] = r.in_progress
    return out


def _deleting_indexes(table: TableDef, now: float) -> tuple[IndexDef, ...]:
    """Deleted global indexes still reported as DELETING at ``now``."""
    return tuple(ix for ix in table.deleting_indexes if ix.status_until is not None and now < ix.status_until)


def _deleted_description(ctx: RequestContext, table: TableDef) -> dict[str, Any]:
    """DeleteTable's TableDescription: DynamoDB's short form (no key schema, attribute
    definitions, creation time nor indexes), in TableStatus DELETING."""
    full = describe_table(ctx, table, status="DELETING")
    return {k: full[k] for k in _DELETED_FIELDS if k in full}


_DELETED_FIELDS = (
    "TableName",
    "TableStatus",
    "ProvisionedThroughput",
    "TableSizeBytes",
    "ItemCount",
    "TableArn",
    "TableId",
    "BillingModeSummary",
    "StreamSpecification",
    "LatestStreamLabel",
    "LatestStreamArn",
    "SSEDescription",
    "TableClassSummary",
    "DeletionProtectionEnabled",
)


def _not_found(name: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"Requested resource not found: Table: {name} not found")


def _stream_spec(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The StreamSpecification a table keeps: None unless it enables a stream."""
    if not spec or not spec.get("StreamEnabled"):
        return None
    view = spec.get("StreamViewType")
    if view is None:
        raise ValidationError(INVALID + "StreamViewType must be specified when StreamEnabled is true")
    return {"StreamEnabled": True, "StreamViewType": view}


def _table(ctx: RequestContext, name: str) -> TableDef:
    """The table a control-plane request names (by name or table ARN); ResourceNotFoundError
    names it as given. A DELETING table past its deadline is gone."""
    try:
        table = ctx.db.table(table_name_of(name))
    except ResourceNotFoundError:
        raise _not_found(name) from None
    if _gone(table, ctx.now()):
        _spawn(_drop_deleted(ctx.db, table))
        raise _not_found(name)
    return table


def _gone(table: TableDef, now: float) -> bool:
    """A deleted table whose DELETING status is over: its definition only waits to be dropped."""
    return table.status_until is not None and table.status_at(now) == GONE


def _changeable(ctx: RequestContext, name: str) -> TableDef:
    """``_table`` for a change (UpdateTable, DeleteTable): ResourceInUseError unless ACTIVE
    (a table being restored is CREATING until its items are in)."""
    table = _table(ctx, name)
    status = table.status_at(ctx.now())
    if status != "ACTIVE":
        raise in_use_error(table.name, status)
    return table


# Background drops of deleted tables whose DELETING status is over (referenced until done).
_BACKGROUND: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def _drop_deleted(db: Any, table: TableDef, delay_s: float = 0.0) -> None:
    """Remove a DELETING table's definition and data once its status delay is over (unless
    another process did, or the name now belongs to a new table)."""
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    try:
        current = db.table(table.name)
        if current.uuid == table.uuid and current.status == "DELETING":
            await db.delete_table(table.name)
    except ResourceNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - a later lookup or CreateTable drops it again
        log.warning("dropping deleted table %s failed", table.name, exc_info=True)


# -- CreateTable ----------------------------------------------------------------------------


def _names(elements: list[dict[str, Any]], key: str = "AttributeName") -> list[str]:
    return [e.get(key) for e in elements]  # type: ignore[misc]


def _check_key_elements(ks: list[dict[str, Any]]) -> None:
    if len(ks) == 2 and ks[0]["AttributeName"] == ks[1]["AttributeName"]:
        raise ValidationError("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    if ks[0]["KeyType"] != "HASH":
        raise ValidationError("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(ks) == 2 and ks[1]["KeyType"] != "RANGE":
        raise ValidationError("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def _check_defined(keys: list[str], defns: list[str]) -> None:
    if any(k not in defns for k in keys):
        raise ValidationError(
            INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(keys)}], AttributeDefinitions: [{', '.join(defns)}]"
        )


def _check_projection(name: str, projection: dict[str, Any]) -> None:
    ptype = projection.get("ProjectionType")
    if ptype is None:
        raise ValidationError(INVALID + "Unknown ProjectionType: null")
    if projection.get("NonKeyAttributes") is not None and ptype != "INCLUDE":
        raise ValidationError(INVALID + f"ProjectionType is {ptype}, but NonKeyAttributes is specified")
    if ptype == "INCLUDE" and not projection.get("NonKeyAttributes"):
        raise ValidationError(INVALID + f"NonKeyAttributes must be specified for INCLUDE projection in index: {name}")


def _throughput(pt: dict[str, Any] | None) -> Throughput:
    if not pt:
        return Throughput()
    return Throughput(read_units=int(pt["ReadCapacityUnits"]), write_units=int(pt["WriteCapacityUnits"]))


def _check_bounds(pt: dict[str, Any]) -> None:
    for unit in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if pt.get(unit) is not None and pt[unit] > MAX_CAPACITY_UNITS:
            raise ValidationError(f"Given value {pt[unit]} for {unit} is out of bounds")


def _key_schema(ks: list[dict[str, Any]], types: dict[str, ScalarType]) -> KeySchema:
    hashes = [KeyAttr(name=e["AttributeName"], type=types[e["AttributeName"]]) for e in ks if e["KeyType"] == "HASH"]
    ranges = [KeyAttr(name=e["AttributeName"], type=types[e["AttributeName"]]) for e in ks if e["KeyType"] == "RANGE"]
    return KeySchema(
        hash=hashes[0],
        range=ranges[0] if ranges else None,
        extra_hash=tuple(hashes[1:]),
        extra_range=tuple(ranges[1:]),
    )


def _check_gsi_key_elements(ks: list[dict[str, Any]]) -> None:
    """A global secondary index's KeySchema: one to four partition-key (HASH) attributes, then
    up to four sort-key (RANGE) attributes, each named once (multi-attribute keys)."""
    if len(ks) == 1 or (len(ks) == 2 and ks[1]["KeyType"] != "HASH"):
        _check_key_elements(ks)
        return
    if ks[0]["KeyType"] != "HASH":
        raise ValidationError("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    seen: set[str] = set()
    in_range = False
    for e in ks:
        kind = e["KeyType"]
        if kind not in ("HASH", "RANGE"):
            raise ValidationError(f"Invalid KeySchema: Invalid KeyType {kind} for key attribute {e['AttributeName']}")
        if kind == "HASH" and in_range:
            raise ValidationError(
                "Invalid KeySchema: All HASH key type KeySchemaElements must come before the RANGE key type ones"
            )
        in_range = kind == "RANGE"
        if e["AttributeName"] in seen:
            raise ValidationError(f"Invalid KeySchema: Duplicate key attribute name in the KeySchema: {e['AttributeName']}")
        seen.add(e["AttributeName"])
    for kind, label in (("HASH", "partition"), ("RANGE", "sort")):
        count = sum(1 for e in ks if e["KeyType"] == kind)
        if count > MAX_KEY_ATTRIBUTES:
            raise ValidationError(
                f"Invalid KeySchema: The number of {kind} key type KeySchemaElements ({count}) exceeds the limit of "
                f"{MAX_KEY_ATTRIBUTES} {label} key attributes"
            )


def _index_def(
    spec: dict[str, Any], index_id: int, *, local: bool, types: dict[str, ScalarType], status: str = "ACTIVE",
    backfilling: bool = False,
) -> IndexDef:
    projection = spec["Projection"]
    return IndexDef(
        name=spec["IndexName"],
        index_id=index_id,
        local=local,
        key_schema=_key_schema(spec["KeySchema"], types),
        projection=projection["ProjectionType"],
        non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
        status=status,
        backfilling=backfilling,
        throughput=Throughput() if local else _throughput(spec.get("ProvisionedThroughput")),
    )


def _check_gsi(spec: dict[str, Any], defined: list[str], billing: str) -> None:
    """The checks of one new global secondary index, in DynamoDB's order: the same in
    CreateTable and in UpdateTable's Create (``billing`` is the mode the table will have)."""
    ix_name = spec["IndexName"]
    _check_defined(_names(spec["KeySchema"]), defined)
    _check_gsi_key_elements(spec["KeySchema"])
    _check_projection(ix_name, spec["Projection"])
    pt = spec.get("ProvisionedThroughput")
    if billing == PAY_PER_REQUEST and pt is not None:
        raise ValidationError(
            INVALID + f"ProvisionedThroughput should not be specified for index: {ix_name} when BillingMode is PAY_PER_REQUEST"
        )
    if billing == PROVISIONED and pt is None:
        raise ValidationError(INVALID + f"ProvisionedThroughput must be specified for index: {ix_name}")
    if pt is not None:
        _check_bounds(pt)


def _projected_count(specs: list[dict[str, Any]]) -> int:
    return sum(len(s["Projection"].get("NonKeyAttributes") or ()) for s in specs)


def _sse_description(spec: dict[str, Any] | None) -> dict[str, str] | None:
    """The SSEDescription an SSESpecification gives: encryption with a KMS key (the AWS
    managed key unless KMSMasterKeyId names one) when Enabled, else None (the default: an
    AWS owned key, which DescribeTable does not describe)."""
    if not spec or not spec.get("Enabled"):
        return None
    sse_type = spec.get("SSEType") or "KMS"
    if sse_type != "KMS":
        raise ValidationError(INVALID + f"Unsupported SSEType: {sse_type}. The only supported value is: KMS")
    key = spec.get("KMSMasterKeyId")
    prefix = f"arn:aws:kms:{REGION}:{ACCOUNT}:"
    if not key:
        arn = prefix + f"key/{uuid.uuid4()}"  # this table's stand-in for alias/aws/dynamodb
    elif key.startswith("arn:"):
        arn = key
    elif key.startswith("alias/"):
        arn = prefix + key
    else:
        arn = prefix + f"key/{key}"
    return {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": arn}


def _check_tags(tags: list[dict[str, Any]]) -> dict[str, str]:
    out = {t["Key"]: t["Value"] for t in tags}
    if len(out) > MAX_TAGS:
        raise ValidationError(f"One or more parameter values were invalid: The number of tags exceeds the limit of {MAX_TAGS}")
    return out


@operation("CreateTable")
async def create_table(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name: str = table_name_of(req["TableName"])
    billing = req.get("BillingMode") or PROVISIONED
    pt = req.get("ProvisionedThroughput")
    if billing == PAY_PER_REQUEST:
        if pt is not None:
            raise ValidationError(
                INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
            )
    else:
        if not pt or not pt.get("ReadCapacityUnits") or not pt.get("WriteCapacityUnits"):
            raise ValidationError(
                INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
            )
        _check_bounds(pt)

    attr_defs: list[dict[str, Any]] = req["AttributeDefinitions"]
    key_schema: list[dict[str, Any]] = req["KeySchema"]
    defns = _names(attr_defs)
    keys = _names(key_schema)
    if len(keys) > len(defns):
        raise ValidationError("Invalid KeySchema: Some index key attribute have no definition")
    _check_defined(keys, defns)
    _check_key_elements(key_schema)
    lsis: list[dict[str, Any]] | None = req.get("LocalSecondaryIndexes")
    gsis: list[dict[str, Any]] | None = req.get("GlobalSecondaryIndexes")
    if lsis is None and gsis is None and len(key_schema) != len(attr_defs):
        raise ValidationError(
            INVALID + "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions"
        )

    index_names: set[str] = set()
    if lsis is not None:
        table_hash = keys[0]
        if not lsis:
            raise ValidationError(INVALID + "List of LocalSecondaryIndexes is empty")
        if len(key_schema) != 2:
            raise ValidationError(
                INVALID + "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
            )
        for ix in lsis:
            ix_name = ix["IndexName"]
            ix_keys = _names(ix["KeySchema"])
            _check_defined(ix_keys, defns)
            _check_key_elements(ix["KeySchema"])
            if len(ix_keys) != 2:
                raise ValidationError(INVALID + f"Index KeySchema does not have a range key for index: {ix_name}")
            if ix_keys[0] != table_hash:
                raise ValidationError(
                    INVALID + "Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                    f"{ix_name}. index hash key: {ix_keys[0]}, table hash key: {table_hash}"
                )
            _check_projection(ix_name, ix["Projection"])
            if ix_name in index_names:
                raise ValidationError(INVALID + f"Duplicate index name: {ix_name}")
            index_names.add(ix_name)
        if len(lsis) > MAX_LSI:
            raise ValidationError(INVALID + f"Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LSI}")

    if gsis is not None:
        if not gsis:
            raise ValidationError(INVALID + "List of GlobalSecondaryIndexes is empty")
        for ix in gsis:
            ix_name = ix["IndexName"]
            _check_gsi(ix, defns, billing)
            if ix_name in index_names:
                raise ValidationError(INVALID + f"Duplicate index name: {ix_name}")
            index_names.add(ix_name)
        if len(gsis) > MAX_GSI:
            raise ValidationError(INVALID + f"GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSI}")

    all_indexes = (lsis or []) + (gsis or [])
    projected = _projected_count(all_indexes)
    if projected > MAX_PROJECTED_ATTRIBUTES:
        raise ValidationError(
            INVALID + f"The number of projected non-key attributes across all secondary indexes ({projected}) "
            f"exceeds the limit of {MAX_PROJECTED_ATTRIBUTES}"
        )
    if len(set(defns)) != len(defns):
        dup = next(d for i, d in enumerate(defns) if d in defns[:i])
        raise ValidationError(INVALID + f"Duplicate AttributeName in AttributeDefinitions: {dup}")
    used: list[str] = []
    for k in keys + [k for ix in all_indexes for k in _names(ix["KeySchema"])]:
        if k not in used:
            used.append(k)
    if len(used) != len(defns):
        raise ValidationError(
            INVALID + "Some AttributeDefinitions are not used. "
            f"AttributeDefinitions: [{', '.join(defns)}], keys used: [{', '.join(used)}]"
        )

    tags = _check_tags(req.get("Tags") or [])
    types: dict[str, ScalarType] = {d["AttributeName"]: d["AttributeType"] for d in attr_defs}
    indexes = tuple(
        [_index_def(ix, i + 1, local=True, types=types) for i, ix in enumerate(lsis or [])]
        + [_index_def(ix, len(lsis or []) + i + 1, local=False, types=types) for i, ix in enumerate(gsis or [])]
    )
    stream = _stream_spec(req.get("StreamSpecification"))
    now = ctx.now()
    until = status_deadline(now)
    if until is not None:
        indexes = tuple(dataclasses.replace(ix, status_until=until) if not ix.local else ix for ix in indexes)
    table = TableDef(
        name=name,
        table_id=0,
        uuid=str(uuid.uuid4()),
        key_schema=_key_schema(key_schema, types),
        attribute_definitions=types,
        created_at=now,
        billing_mode=billing,
        throughput=_throughput(pt) if billing == PROVISIONED else Throughput(),
        indexes=indexes,
        status="ACTIVE" if until is None else "CREATING",
        status_until=until,
        tags=tags,
        deletion_protection=bool(req.get("DeletionProtectionEnabled", False)),
        table_class=req.get("TableClass") or "STANDARD",
        stream_spec=stream,
        sse=_sse_description(req.get("SSESpecification")),
    )
    if name in ctx.db.table_names():
        await _drop_if_gone(ctx, name)
        if name in ctx.db.table_names():
            raise ResourceInUseError(f"Table already exists: {name}")
    created = await ctx.db.create_table(table)
    return {"TableDescription": describe_table(ctx, created, status="CREATING")}


# -- DescribeTable / DeleteTable / ListTables -------------------------------------------------


def _listed(ctx: RequestContext, name: str, now: float) -> bool:
    try:
        return not _gone(ctx.db.table(name), now)
    except ResourceNotFoundError:
        return False


async def _drop_if_gone(ctx: RequestContext, name: str) -> None:
    """Drop the definition of a deleted table whose DELETING status is over, if any."""
    try:
        table = ctx.db.table(name)
    except ResourceNotFoundError:
        return
    if _gone(table, ctx.now()):
        await _drop_deleted(ctx.db, table)


@operation("DescribeTable")
async def describe_table_op(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return {"Table": describe_table(ctx, _table(ctx, req["TableName"]))}


@operation("DeleteTable")
async def delete_table(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _table(ctx, req["TableName"])
    now = ctx.now()
    status = table.status_at(now)
    if status == "DELETING":  # DynamoDB: no error for a table already being deleted
        return {"TableDescription": _deleted_description(ctx, table)}
    if status != "ACTIVE":
        raise in_use_error(table.name, status)
    if table.deletion_protection:
        raise ValidationError(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        )
    await ctx.db.settle_stats(table)  # the answer counts every write acknowledged before it
    out = _deleted_description(ctx, table)
    until = status_deadline(now)
    try:
        if until is not None:
            # Reported DELETING until the deadline (item requests find no table meanwhile),
            # then dropped; a lookup after the deadline drops it too if this process cannot.
            deleting = dataclasses.replace(table, status="DELETING", status_until=until)
            await ctx.db.update_table(deleting)
            _spawn(_drop_deleted(ctx.db, deleting, until - now))
        else:
            await ctx.db.delete_table(table.name)
    except ResourceNotFoundError:
        raise _not_found(req["TableName"]) from None
    return {"TableDescription": out}


@operation("ListTables")
async def list_tables(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    now = ctx.now()
    names = [n for n in ctx.db.table_names() if _listed(ctx, n, now)]
    start = req.get("ExclusiveStartTableName")
    if start is not None:
        names = [n for n in names if n > start]
    limit = req.get("Limit") or 100
    out: dict[str, Any] = {}
    if len(names) > limit:
        names = names[:limit]
        out["LastEvaluatedTableName"] = names[-1]
    out["TableNames"] = names
    return out


# -- UpdateTable -----------------------------------------------------------------------------


def _changed_throughput(current: Throughput, pt: dict[str, Any], now: float) -> Throughput:
    read, write = int(pt["ReadCapacityUnits"]), int(pt["WriteCapacityUnits"])
    if read == current.read_units and write == current.write_units:
        raise ValidationError(
            "The provisioned throughput for the table will not change. The requested value equals the current value. "
            f"Current ReadCapacityUnits provisioned for the table: {current.read_units}. Requested ReadCapacityUnits: {read}. "
            f"Current WriteCapacityUnits provisioned for the table: {current.write_units}. Requested WriteCapacityUnits: {write}. "
            "Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
        )
    up = read > current.read_units or write > current.write_units
    down = read < current.read_units or write < current.write_units
    return dataclasses.replace(
        current,
        read_units=read,
        write_units=write,
        last_increase=now if up else current.last_increase,
        last_decrease=now if down else current.last_decrease,
        decreases_today=current.decreases_today + (1 if down else 0),
    )


_UPDATE_FIELDS = (
    "ProvisionedThroughput",
    "BillingMode",
    "StreamSpecification",
    "SSESpecification",
    "ReplicaUpdates",
    "TableClass",
    "DeletionProtectionEnabled",
    "OnDemandThroughput",
    "WarmThroughput",
)


_NO_REPLICAS = (
    "ReplicaUpdates are not supported: QuorumDB has no replicas in other regions "
    f"(global tables); this endpoint serves region {REGION} only"
)


@operation("UpdateTable")
@_on_current_definition
async def update_table(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    gsi_updates: list[dict[str, Any]] = req.get("GlobalSecondaryIndexUpdates") or []
    if not gsi_updates and all(req.get(f) is None for f in _UPDATE_FIELDS):
        raise ValidationError(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates "
            "or SSESpecification or ReplicaUpdates is required"
        )
    if req.get("ReplicaUpdates") is not None:
        raise ValidationError(_NO_REPLICAS)
    sse = _sse_description(req.get("SSESpecification"))
    pt = req.get("ProvisionedThroughput")
    if req.get("BillingMode") == PROVISIONED and pt is None:
        raise ValidationError(INVALID + "ProvisionedThroughput must be specified when BillingMode is PROVISIONED")
    if pt is not None:
        _check_bounds(pt)
    seen: set[str] = set()
    for u in gsi_updates:
        action = u.get("Update") or u.get("Create") or u.get("Delete")
        if action is None:
            raise ValidationError(
                INVALID + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
                "GlobalSecondaryIndexUpdate.Delete must not be null"
            )
        ix_name = action["IndexName"]
        if ix_name in seen:
            raise ValidationError(
                INVALID + f"Only one global secondary index update per index is allowed simultaneously. Index: {ix_name}"
            )
        seen.add(ix_name)

    table = _changeable(ctx, req["TableName"])
    now = ctx.now()
    until = status_deadline(now)
    billing = req.get("BillingMode") or table.billing_mode
    if pt is not None and billing == PAY_PER_REQUEST:
        raise ValidationError(
            INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
        )
    if sum(1 for u in gsi_updates if u.get("Create") or u.get("Delete")) > 1:
        raise LimitExceededError(
            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
        )

    throughput = table.throughput
    if billing == PAY_PER_REQUEST:
        throughput = Throughput(decreases_today=throughput.decreases_today)
    elif pt is not None:
        if table.billing_mode == PAY_PER_REQUEST:
            throughput = _throughput(pt)
        else:
            throughput = _changed_throughput(throughput, pt, now)

    types: dict[str, ScalarType] = dict(table.attribute_definitions)
    for d in req.get("AttributeDefinitions") or []:
        known = types.get(d["AttributeName"])
        if known is not None and known != d["AttributeType"]:
            raise ValidationError(
                INVALID + f"Cannot change the type of attribute {d['AttributeName']} from {known} to {d['AttributeType']}"
            )
        types[d["AttributeName"]] = d["AttributeType"]

    indexes = list(table.indexes)
    deleting = list(_deleting_indexes(table, now))
    updated_pt: set[str] = set()
    for u in gsi_updates:
        if u.get("Update"):
            upd = u["Update"]
            pos = next((i for i, ix in enumerate(indexes) if ix.name == upd["IndexName"] and not ix.local), None)
            if pos is None:
                raise ResourceNotFoundError(f"Requested resource not found: Index: {upd['IndexName']} not found")
            if upd.get("ProvisionedThroughput") is not None:
                if billing == PAY_PER_REQUEST:
                    raise ValidationError(
                        INVALID + f"ProvisionedThroughput should not be specified for index: {upd['IndexName']} "
                        "when BillingMode is PAY_PER_REQUEST"
                    )
                ix_pt = upd["ProvisionedThroughput"]
                if ix_pt["ReadCapacityUnits"] > MAX_CAPACITY_UNITS or ix_pt["WriteCapacityUnits"] > MAX_CAPACITY_UNITS:
                    raise ValidationError(
                        "This operation cannot be performed with given input values. Please contact DynamoDB service "
                        "team for more info: Action Blocked: IndexUpdate"
                    )
                current = indexes[pos].throughput
                new_pt = (
                    _throughput(ix_pt) if table.billing_mode == PAY_PER_REQUEST else _changed_throughput(current, ix_pt, now)
                )
                indexes[pos] = dataclasses.replace(indexes[pos], throughput=new_pt)
                updated_pt.add(upd["IndexName"])
        elif u.get("Delete"):
            ix_name = u["Delete"]["IndexName"]
            pos = next((i for i, ix in enumerate(indexes) if ix.name == ix_name and not ix.local), None)
            if pos is None:
                raise ResourceNotFoundError(f"Requested resource not found: Index: {ix_name} not found")
            if until is not None:
                deleting.append(dataclasses.replace(indexes[pos], status="DELETING", backfilling=False, status_until=until))
            del indexes[pos]
        else:
            create = u["Create"]
            ix_name = create["IndexName"]
            if any(ix.name == ix_name for ix in indexes):
                raise ValidationError(INVALID + f"Index already exists: {ix_name}")
            _check_gsi(create, list(types), billing)
            if sum(1 for ix in indexes if not ix.local) >= MAX_GSI:
                raise LimitExceededError(
                    f"Subscriber limit exceeded: The number of global secondary indexes exceeds the per-table limit of {MAX_GSI}"
                )
            projected = sum(len(ix.non_key_attributes) for ix in indexes) + _projected_count([create])
            if projected > MAX_PROJECTED_ATTRIBUTES:
                raise ValidationError(
                    INVALID + f"The number of projected non-key attributes across all secondary indexes ({projected}) "
                    f"exceeds the limit of {MAX_PROJECTED_ATTRIBUTES}"
                )
            next_id = max((ix.index_id for ix in table.indexes), default=0) + 1
            created = _index_def(create, next_id, local=False, types=types, status="CREATING", backfilling=True)
            indexes.append(dataclasses.replace(created, status_until=until))
            deleting = [ix for ix in deleting if ix.name != ix_name]

    if billing == PAY_PER_REQUEST:
        indexes = [ix if ix.local else dataclasses.replace(ix, throughput=Throughput()) for ix in indexes]
    elif table.billing_mode == PAY_PER_REQUEST:
        missing = [ix.name for ix in indexes if not ix.local and ix.status != "CREATING" and ix.name not in updated_pt]
        if missing:
            raise ValidationError(INVALID + f"ProvisionedThroughput must be specified for index: {','.join(missing)}")

    # Attribute definitions list exactly the key attributes of the table and its indexes.
    used = set(table.key_schema.names)
    for ix in indexes:
        used.update(ix.key_schema.names)
    types = {n: t for n, t in types.items() if n in used}

    changes: dict[str, Any] = {
        "billing_mode": billing,
        "throughput": throughput,
        "indexes": tuple(indexes),
        "attribute_definitions": types,
        "status": "ACTIVE" if until is None else "UPDATING",
        "status_until": until,
        "deleting_indexes": tuple(deleting),
    }
    stream = req.get("StreamSpecification")
    if stream is not None:
        spec = _stream_spec(stream)
        if spec is not None and table.stream_spec is not None:
            raise ValidationError(f"Table already has an enabled stream: TableName: {table.name}")
        if spec is None and table.stream_spec is None:
            raise ValidationError(f"Table does not have an enabled stream: TableName: {table.name}")
        changes["stream_spec"] = spec  # the data plane opens or closes the stream
    if req.get("TableClass") is not None:
        changes["table_class"] = req["TableClass"]
    if req.get("DeletionProtectionEnabled") is not None:
        changes["deletion_protection"] = bool(req["DeletionProtectionEnabled"])
    if req.get("SSESpecification") is not None:
        changes["sse"] = sse
    updated = await ctx.db.update_table(dataclasses.replace(table, **changes))
    return {"TableDescription": describe_table(ctx, updated, status="UPDATING")}


# -- limits and endpoints ---------------------------------------------------------------------


@operation("DescribeLimits")
async def describe_limits(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }


@operation("DescribeEndpoints")
async def describe_endpoints(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return {"Endpoints": [{"Address": _endpoint_address, "CachePeriodInMinutes": 1440}]}


# -- tags -----------------------------------------------------------------------------------


def _tagged_table(ctx: RequestContext, req: dict[str, Any], action: str, member: str | None) -> TableDef:
    arn = req.get("ResourceArn")
    if arn is None:
        raise ValidationError("Invalid TableArn")
    if not _ARN_SHAPE.fullmatch(arn):
        raise AccessDeniedError(
            f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: dynamodb:{action} on resource: {arn or '*'}"
        )
    if member is not None and req.get(member) is None:
        lname = member[0].lower() + member[1:]
        raise ValidationError(
            f"1 validation error detected: Value null at '{lname}' failed to satisfy constraint: Member must not be null"
        )
    m = _TABLE_ARN.fullmatch(arn)
    if m is None:
        raise ValidationError(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    if member is not None and not req[member]:
        raise ValidationError(
            "Atleast one Tag needs to be provided as Input."
            if member == "Tags"
            else "Atleast one Tag Key needs to be provided as Input."
        )
    try:
        table = ctx.db.table(m.group(1))
        if _gone(table, ctx.now()):
            raise ResourceNotFoundError("deleted")
        return table
    except ResourceNotFoundError:
        if action == "UntagResource":
            raise ResourceNotFoundError("Requested resource not found") from None
        raise ResourceNotFoundError(f"Requested resource not found: ResourcArn: {arn} not found") from None


@operation("TagResource")
@_on_current_definition
async def tag_resource(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _tagged_table(ctx, req, "TagResource", "Tags")
    tags = dict(table.tags)
    tags.update(_check_tags(req["Tags"]))
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"One or more parameter values were invalid: The number of tags exceeds the limit of {MAX_TAGS}")
    await ctx.db.update_table(dataclasses.replace(table, tags=tags))
    return {}


@operation("UntagResource")
@_on_current_definition
async def untag_resource(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _tagged_table(ctx, req, "UntagResource", "TagKeys")
    drop = set(req["TagKeys"])
    tags = {k: v for k, v in table.tags.items() if k not in drop}
    if tags != table.tags:
        await ctx.db.update_table(dataclasses.replace(table, tags=tags))
    return {}


@operation("ListTagsOfResource")
async def list_tags_of_resource(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _tagged_table(ctx, req, "ListTagsOfResource", None)
    return {"Tags": [{"Key": k, "Value": v} for k, v in table.tags.items()]}


# -- time to live ------------------------------------------------------------------------------


@operation("DescribeTimeToLive")
async def describe_time_to_live(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _table(ctx, req["TableName"])
    if table.ttl_enabled and table.ttl_attribute:
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}}
    return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}


@operation("UpdateTimeToLive")
@_on_current_definition
async def update_time_to_live(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    table = _table(ctx, req["TableName"])
    spec = req["TimeToLiveSpecification"]
    enabled = bool(spec["Enabled"])
    attr: str = spec["AttributeName"]
    if enabled:
        if table.ttl_enabled:
            raise ValidationError("TimeToLive is already enabled")
        new = dataclasses.replace(table, ttl_enabled=True, ttl_attribute=attr)
    else:
        if not table.ttl_enabled:
            raise ValidationError("TimeToLive is already disabled")
        if table.ttl_attribute != attr:
            raise ValidationError(
                f"TimeToLive is active on a different AttributeName: current AttributeName is {table.ttl_attribute}"
            )
        new = dataclasses.replace(table, ttl_enabled=False)
    await ctx.db.update_table(new)
    return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}
