"""Single-item and batch item handlers: PutItem, GetItem, UpdateItem, DeleteItem,
BatchGetItem, BatchWriteItem.

Each handler validates the whole request first (DynamoDB's messages and precedence), then
reads or writes through the data plane. Writes are pure mutators (``old -> new``) evaluated
by the data plane, which may call them more than once: they never have side effects, and
results are taken from the returned ``WriteResult``.

Handlers never touch a storage engine, never format HTTP errors, and never write before
every check has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from quorumdb.api import capacity
from quorumdb.api.common import (
    INVALID,
    MAX_ITEM_BYTES,
    check_duplicate_names,
    check_expression_params,
    check_index_keys,
    check_key_paths,
    check_update_index_types,
    item_collection_metrics,
    key_fingerprint,
    parse_expressions,
    refuse_if_leaderless,
    table_of,
    updated_attributes,
    validate_item_for_table,
)
from quorumdb.api.registry import RequestContext, operation
from quorumdb.api.throttle import Throttle, item_position, meter
from quorumdb.db.contract import StoredItem, WriteOp, WriteResult
from quorumdb.errors import (
    ConditionalCheckFailedError,
    ProvisionedThroughputExceededError,
    RequestLimitExceededError,
    ThrottlingError,
    ValidationError,
)
from quorumdb.expr.ast import DeleteAction, RemoveAction
from quorumdb.model.keys import extract_key
from quorumdb.model.schema import TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import Item, Key
from quorumdb.model.values import validate_item

__all__ = [
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "batch_get_item",
    "batch_write_item",
    "conditional_mutator",
    "update_mutator",
    "write_capacity",
    "metered_write",
    "metered_get",
    "settle_write",
]

_COND_EXPR = ("ConditionExpression",)
_COND_LEGACY = ("Expected",)
_ITEM_TOO_BIG = "Item size has exceeded the maximum allowed size"
_UPDATE_TOO_BIG = "Item size to update has exceeded the maximum allowed size"
_DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
BATCH_GET_KEYS_MAX = 100
BATCH_WRITE_REQUESTS_MAX = 25
BATCH_GET_RESPONSE_BYTES_MAX = 16 * 1024 * 1024
_RETRYABLE = (ProvisionedThroughputExceededError, ThrottlingError, RequestLimitExceededError)


# -- mutators (pure) ---------------------------------------------------------------------------


def conditional_mutator(
    condition: Any, new_item: Item | None, return_old_on_fail: bool
) -> Callable[[Item | None], Item | None]:
    """``old -> new_item`` if ``condition`` holds for ``old`` (Put and Delete)."""
    if condition is None:
        return lambda old: new_item

    def mutate(old: Item | None) -> Item | None:
        if not condition.evaluate(old):
            raise ConditionalCheckFailedError(item=old if return_old_on_fail else None)
        return new_item

    return mutate


def update_mutator(
    table: TableDef, key: Key, condition: Any, update: Any, return_old_on_fail: bool
) -> Callable[[Item | None], Item | None]:
    """``old -> old with the update applied`` (or a new item made of ``key``)."""
    has_indexes = bool(table.indexes)
    # An update that only removes never creates a missing item (DynamoDB's rule); one with
    # no actions at all creates the bare key.
    only_removes = (
        update is not None
        and bool(update.actions)
        and all(isinstance(a, (RemoveAction, DeleteAction)) for a in update.actions)
    )

    def mutate(old: Item | None) -> Item | None:
        if condition is not None and not condition.evaluate(old):
            raise ConditionalCheckFailedError(item=old if return_old_on_fail else None)
        if old is None and only_removes:
            return None
        base = old if old is not None else dict(key)
        if update is None:
            return base
        new: Item = update.apply(base)
        if has_indexes:
            check_index_keys(table, new)
        if item_size(new) > MAX_ITEM_BYTES:
            raise ValidationError(_UPDATE_TOO_BIG)
        return new

    return mutate


# -- helpers -----------------------------------------------------------------------------------


def write_capacity(table: TableDef, mode: str | None, res: WriteResult) -> dict[str, Any] | None:
    units = capacity.write_units(res.old_size, res.new_size)
    if table.indexes:
        local, glob = capacity.index_units(table, res.old, res.new, res.index_writes)
        return capacity.consumed(table.name, mode, units, local=local, glob=glob)
    return capacity.consumed(table.name, mode, units)


async def metered_write(
    ctx: RequestContext, table: TableDef, op: WriteOp, pre_units: float, item: Item | None
) -> WriteResult:
    """``ctx.db.write(op)`` under capacity enforcement: ``pre_units`` (the cost known before the
    write) are taken first, or the write is throttled without effect; the rest of the cost
    (old item larger, index maintenance) is charged afterwards."""
    cap = meter(ctx.capacity, table)
    if cap is None:
        return await ctx.db.write(op)
    pos = item_position(table.key_schema, op.key)
    assert pos is not None
    err = cap.admit_write(table, pos, pre_units, item)
    if err is not None:
        raise err
    res = await ctx.db.write(op)  # a failed condition keeps what was taken: it consumed capacity
    settle_write(cap, table, pos, pre_units, res)
    return res


async def metered_get(ctx: RequestContext, table: TableDef, key: Key, consistent: bool) -> StoredItem | None:
    """``ctx.db.get`` under capacity enforcement: the item's size is known only once read, so
    the minimum is taken up front (or the read is throttled) and the rest charged afterwards."""
    cap = meter(ctx.capacity, table)
    if cap is None:
        return await ctx.db.get(table, key, consistent=consistent)
    pos = item_position(table.key_schema, key)
    assert pos is not None
    pre = capacity.read_units(0, consistent=consistent)
    err = cap.admit_read(table, None, pos, pre)
    if err is not None:
        raise err
    stored = await ctx.db.get(table, key, consistent=consistent)
    if stored is not None:
        cap.settle_read(table, None, pos, capacity.read_units(stored.size, consistent=consistent) - pre)
    return stored


def settle_write(cap: Throttle, table: TableDef, pos: int, pre_units: float, res: WriteResult) -> None:
    units = capacity.write_units(res.old_size, res.new_size)
    if table.indexes:
        local, glob = capacity.index_units(table, res.old, res.new, res.index_writes)
        cap.settle_write(table, pos, units - pre_units + sum(local.values()), glob, res.old, res.new)
    else:
        cap.settle_write(table, pos, units - pre_units, {}, res.old, res.new)


def _finish_write(
    table: TableDef, key: Key, req: dict[str, Any], res: WriteResult, attributes: Item | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attributes:
        out["Attributes"] = attributes
    mode = capacity.wants_capacity(req)
    if mode is not None:
        out["ConsumedCapacity"] = write_capacity(table, mode, res)
    icm = item_collection_metrics(table, key, req, res.collection_size)
    if icm is not None:
        out["ItemCollectionMetrics"] = icm
    return out


def _check_return_values_put_delete(req: dict[str, Any]) -> bool:
    rv = req.get("ReturnValues")
    if rv is None or rv == "NONE":
        return False
    if rv != "ALL_OLD":
        raise ValidationError("ReturnValues can only be ALL_OLD or NONE")
    return True


# -- PutItem -----------------------------------------------------------------------------------


@operation("PutItem")
async def put_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    check_expression_params(req, _COND_EXPR, _COND_LEGACY)
    item = validate_item(req["Item"])
    want_old = _check_return_values_put_delete(req)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ValidationError(_ITEM_TOO_BIG)
    parsed = parse_expressions(req, legacy_expected=True)
    table = table_of(ctx.db, req["TableName"])
    key = validate_item_for_table(table, item)
    if parsed.condition is not None:
        refuse_if_leaderless(table, "Conditional writes")
    fail_old = req.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    op = WriteOp(table=table, key=key, mutate=conditional_mutator(parsed.condition, item, fail_old))
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        res = await metered_write(ctx, table, op, capacity.write_units(0, size), item)
    else:
        res = await ctx.db.write(op)
    return _finish_write(table, key, req, res, res.old if want_old else None)


# -- DeleteItem --------------------------------------------------------------------------------


@operation("DeleteItem")
async def delete_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    check_expression_params(req, _COND_EXPR, _COND_LEGACY)
    key_in = validate_item(req["Key"])
    want_old = _check_return_values_put_delete(req)
    parsed = parse_expressions(req, legacy_expected=True)
    table = table_of(ctx.db, req["TableName"])
    key = extract_key(table.key_schema, key_in, exact=True)
    if parsed.condition is not None:
        refuse_if_leaderless(table, "Conditional writes")
    fail_old = req.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    op = WriteOp(table=table, key=key, mutate=conditional_mutator(parsed.condition, None, fail_old))
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        # The size of the item deleted is known only afterwards: 1 unit up front.
        res = await metered_write(ctx, table, op, capacity.write_units(0, 0), None)
    else:
        res = await ctx.db.write(op)
    return _finish_write(table, key, req, res, res.old if want_old else None)


# -- UpdateItem --------------------------------------------------------------------------------


def _check_attribute_updates(updates: dict[str, Any] | None) -> None:
    if not updates:
        return
    for name, upd in updates.items():
        value = upd.get("Value")
        action = upd.get("Action") or "PUT"
        if value is not None:
            validate_item({name: value})
        if value is None and action != "DELETE":
            raise ValidationError(
                INVALID + "Only DELETE action is allowed when no attribute value is specified"
            )
        if value is not None and action == "DELETE":
            t = next(iter(value))
            if t not in ("SS", "NS", "BS"):
                raise ValidationError(
                    INVALID + f"DELETE action with value is not supported for the type {t}"
                )
        if value is not None and action == "ADD":
            t = next(iter(value))
            if t not in ("L", "SS", "NS", "BS", "N"):
                raise ValidationError(INVALID + f"ADD action is not supported for the type {t}")


@operation("UpdateItem")
async def update_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    check_expression_params(
        req, ("UpdateExpression", "ConditionExpression"), ("AttributeUpdates", "Expected")
    )
    key_in = validate_item(req["Key"])
    _check_attribute_updates(req.get("AttributeUpdates"))
    parsed = parse_expressions(req, legacy_expected=True, legacy_updates=True)
    rv = req.get("ReturnValues") or "NONE"
    table = table_of(ctx.db, req["TableName"])
    key = extract_key(table.key_schema, key_in, exact=True)
    if parsed.condition is not None:
        refuse_if_leaderless(table, "Conditional writes")
    update = parsed.update
    if update is not None:
        update.check_keys(table.key_schema)
        if table.indexes:
            check_update_index_types(table, update)
            check_key_paths(table, update.updated_paths)
    fail_old = req.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    op = WriteOp(table=table, key=key, mutate=update_mutator(table, key, parsed.condition, update, fail_old))
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        # The updated item's size is known only afterwards: 1 unit up front.
        res = await metered_write(ctx, table, op, capacity.write_units(0, 0), None)
    else:
        res = await ctx.db.write(op)
    attributes: Item | None
    if rv == "NONE":
        attributes = None
    elif rv == "ALL_NEW":
        attributes = res.new
    elif rv == "ALL_OLD":
        attributes = res.old
    elif rv == "UPDATED_NEW":
        attributes = updated_attributes(res.new, update) if update is not None else None
    else:  # UPDATED_OLD
        attributes = updated_attributes(res.old, update) if update is not None else None
    return _finish_write(table, key, req, res, attributes)


# -- GetItem -----------------------------------------------------------------------------------


@operation("GetItem")
async def get_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    attrs = req.get("AttributesToGet")
    projecting = (
        attrs is not None
        or req.get("ProjectionExpression") is not None
        or req.get("ExpressionAttributeNames") is not None
        or req.get("ExpressionAttributeValues") is not None
    )
    if projecting:
        check_expression_params(req, ("ProjectionExpression",), ("AttributesToGet",))
    key_in = validate_item(req["Key"])
    projection = None
    if projecting:
        check_duplicate_names(attrs)
        projection = parse_expressions(req).projection
    table = table_of(ctx.db, req["TableName"])
    key = extract_key(table.key_schema, key_in, exact=True)
    if projection is not None:
        check_key_paths(table, projection.paths)
    consistent = bool(req.get("ConsistentRead"))
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        stored = await metered_get(ctx, table, key, consistent)
    else:
        stored = await ctx.db.get(table, key, consistent=consistent)
    mode = capacity.wants_capacity(req)
    cc = None
    if mode is not None:
        units = capacity.read_units(stored.size if stored is not None else 0, consistent=consistent)
        cc = capacity.consumed(table.name, mode, units)
    if projection is None:
        # Fast path: splice the stored JSON bytes into the response.
        if stored is None:
            return b"{}" if cc is None else b'{"ConsumedCapacity":' + orjson.dumps(cc) + b"}"
        if cc is None:
            return b'{"Item":' + stored.raw + b"}"
        return b'{"Item":' + stored.raw + b',"ConsumedCapacity":' + orjson.dumps(cc) + b"}"
    out: dict[str, Any] = {}
    if stored is not None:
        out["Item"] = projection.apply(stored.item)
    if cc is not None:
        out["ConsumedCapacity"] = cc
    return out


# -- BatchGetItem ------------------------------------------------------------------------------


@operation("BatchGetItem")
async def batch_get_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    request_items: dict[str, dict[str, Any]] = req["RequestItems"]
    plans: list[tuple[str, dict[str, Any], Any, list[Item]]] = []
    total = 0
    for name, spec in request_items.items():
        check_expression_params(spec, ("ProjectionExpression",), ("AttributesToGet",))
        check_duplicate_names(spec.get("AttributesToGet"))
        projection = parse_expressions(spec).projection
        seen: set[tuple[Any, ...]] = set()
        keys: list[Item] = []
        for k in spec["Keys"]:
            kv = validate_item(k)
            fp = key_fingerprint(kv)
            if fp in seen:
                raise ValidationError(_DUPLICATE_KEYS)
            seen.add(fp)
            keys.append(kv)
            total += 1
            if total > BATCH_GET_KEYS_MAX:
                raise ValidationError("Too many items requested for the BatchGetItem call")
        plans.append((name, spec, projection, keys))

    # Responses and UnprocessedKeys are keyed as the request named the table (name or ARN).
    resolved: list[tuple[str, TableDef, dict[str, Any], Any, list[Key]]] = []
    for name, spec, projection, keys in plans:
        table = table_of(ctx.db, name)
        schema = table.key_schema
        resolved.append((name, table, spec, projection, [extract_key(schema, k, exact=True) for k in keys]))
        if projection is not None:
            check_key_paths(table, projection.paths)

    mode = capacity.wants_capacity(req)
    responses: dict[str, list[Item]] = {}
    unprocessed: dict[str, dict[str, Any]] = {}
    cap_entries: list[tuple[str, float, dict[str, float], dict[str, float]]] = []
    size_total = 0
    full = False
    read = 0
    throttled: ProvisionedThroughputExceededError | None = None
    for name, table, spec, projection, keys in resolved:
        consistent = bool(spec.get("ConsistentRead"))
        items = responses.setdefault(name, [])
        units = 0.0
        cap = meter(ctx.capacity, table)
        pre = capacity.read_units(0, consistent=consistent)
        for key in keys:
            if full:
                _unprocessed_key(unprocessed, name, spec, key)
                continue
            pos = 0
            if cap is not None:  # a throttled key is returned unprocessed, not an error
                pos = item_position(table.key_schema, key) or 0
                err = cap.admit_read(table, None, pos, pre)
                if err is not None:
                    throttled = throttled or err
                    _unprocessed_key(unprocessed, name, spec, key)
                    continue
            read += 1
            stored = await ctx.db.get(table, key, consistent=consistent)
            if stored is None:
                units += capacity.read_units(0, consistent=consistent)
                continue
            size = stored.size
            if size_total + size > BATCH_GET_RESPONSE_BYTES_MAX:
                full = True
                _unprocessed_key(unprocessed, name, spec, key)
                continue
            size_total += size
            item_units = capacity.read_units(size, consistent=consistent)
            units += item_units
            if cap is not None:
                cap.settle_read(table, None, pos, item_units - pre)
            item = stored.item
            items.append(projection.apply(item) if projection is not None else item)
        if mode is not None:
            cap_entries.append((table.name, units, {}, {}))
    if throttled is not None and read == 0:
        raise throttled  # nothing could be read: DynamoDB fails the whole call
    out: dict[str, Any] = {"Responses": responses, "UnprocessedKeys": unprocessed}
    if mode is not None:
        out["ConsumedCapacity"] = capacity.merge_by_table(mode, cap_entries)
    return out


_KEEP_IN_UNPROCESSED = (
    "AttributesToGet",
    "ConsistentRead",
    "ProjectionExpression",
    "ExpressionAttributeNames",
)


def _unprocessed_key(
    unprocessed: dict[str, dict[str, Any]], name: str, spec: dict[str, Any], key: Key
) -> None:
    entry = unprocessed.get(name)
    if entry is None:
        entry = {"Keys": []}
        for p in _KEEP_IN_UNPROCESSED:
            if spec.get(p) is not None:
                entry[p] = spec[p]
        unprocessed[name] = entry
    entry["Keys"].append(key)


# -- BatchWriteItem ----------------------------------------------------------------------------


_ONE_TYPE = (
    "Supplied AttributeValue has more than one datatypes set, "
    "must contain exactly one of the supported datatypes"
)


@operation("BatchWriteItem")
async def batch_write_item(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    request_items: dict[str, list[dict[str, Any]]] = req["RequestItems"]
    # 1. Values, sizes and counts, before looking at any table.
    staged: list[tuple[str, list[tuple[bool, Item, dict[str, Any]]]]] = []
    count = 0
    for name, requests in request_items.items():
        reqs: list[tuple[bool, Item, dict[str, Any]]] = []
        for wr in requests:
            put = wr.get("PutRequest")
            delete = wr.get("DeleteRequest")
            if (put is None) == (delete is None):
                raise ValidationError(_ONE_TYPE)
            if put is not None:
                item = validate_item(put["Item"])
                if item_size(item) > MAX_ITEM_BYTES:
                    raise ValidationError(_ITEM_TOO_BIG)
                reqs.append((True, item, wr))
            else:
                assert delete is not None
                reqs.append((False, validate_item(delete["Key"]), wr))
            count += 1
        staged.append((name, reqs))
    if count > BATCH_WRITE_REQUESTS_MAX:
        raise ValidationError(
            "Too many items requested for the BatchWriteItem call"
        )
    # 2. Tables, keys, duplicates.
    ops: list[WriteOp] = []
    origins: list[tuple[str, TableDef, dict[str, Any]]] = []  # (name as requested, table, request)
    new_items: list[Item | None] = []  # the validated item of each put (None: a delete)
    for name, reqs in staged:
        table = table_of(ctx.db, name)
        seen: set[tuple[Any, ...]] = set()
        for is_put, data, wr in reqs:
            try:
                if is_put:
                    key = validate_item_for_table(table, data)
                else:
                    key = extract_key(table.key_schema, data, exact=True)
            except ValidationError as e:
                if "Missing the key" in e.message or "Type mismatch for key" in e.message:
                    raise ValidationError("The provided key element does not match the schema") from None
                raise
            fp = key_fingerprint(key)
            if fp in seen:
                raise ValidationError(_DUPLICATE_KEYS)
            seen.add(fp)
            new_item = data if is_put else None
            ops.append(WriteOp(table=table, key=key, mutate=_constant(new_item), constant=True))
            origins.append((name, table, wr))
            new_items.append(new_item)
    # 3. Capacity (when enforced): a throttled request is returned unprocessed, not written.
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    pre_units: list[tuple[Throttle, int, float] | None] | None = None
    cap = ctx.capacity
    if cap is not None and (cap.on or any(t.tags for _, t, _ in origins)):
        ops, origins, pre_units = _admit_batch_writes(cap, ops, origins, new_items, unprocessed)
    # 4. Write.
    results = await ctx.db.write_many(ops)
    mode = capacity.wants_capacity(req)
    cap_entries: list[tuple[str, float, dict[str, float], dict[str, float]]] = []
    metrics: dict[str, list[dict[str, Any]]] = {}
    for i, ((name, table, wr), op, res) in enumerate(zip(origins, ops, results, strict=True)):
        if isinstance(res, BaseException):
            if isinstance(res, _RETRYABLE):
                unprocessed.setdefault(name, []).append(wr)
                continue
            raise res
        if pre_units is not None and (taken := pre_units[i]) is not None:
            settle_write(taken[0], table, taken[1], taken[2], res)
        if mode is not None:
            units = capacity.write_units(res.old_size, res.new_size)
            local, glob = capacity.index_units(table, res.old, res.new, res.index_writes)
            cap_entries.append((table.name, units, local, glob))
        icm = item_collection_metrics(table, op.key, req, res.collection_size)
        if icm is not None:
            metrics.setdefault(table.name, []).append(icm)
    out: dict[str, Any] = {"UnprocessedItems": unprocessed}
    if mode is not None:
        out["ConsumedCapacity"] = capacity.merge_by_table(mode, cap_entries)
    if req.get("ReturnItemCollectionMetrics") == "SIZE":
        out["ItemCollectionMetrics"] = metrics
    return out


def _admit_batch_writes(
    throttle: Throttle,
    ops: list[WriteOp],
    origins: list[tuple[str, TableDef, dict[str, Any]]],
    new_items: list[Item | None],
    unprocessed: dict[str, list[dict[str, Any]]],
) -> tuple[list[WriteOp], list[tuple[str, TableDef, dict[str, Any]]], list[tuple[Throttle, int, float] | None]]:
    """The writes that may run now, their origins and what each took (None: not metered);
    the others go to ``unprocessed``. Raises when none may run (DynamoDB's rule)."""
    kept: list[WriteOp] = []
    kept_origins: list[tuple[str, TableDef, dict[str, Any]]] = []
    taken: list[tuple[Throttle, int, float] | None] = []
    throttled: ProvisionedThroughputExceededError | None = None
    for op, origin, item in zip(ops, origins, new_items, strict=True):
        name, table, wr = origin
        cap = meter(throttle, table)
        if cap is None:
            taken.append(None)
        else:
            # A put's size is known now; a delete's only afterwards (1 unit up front).
            pre = capacity.write_units(0, item_size(item) if item is not None else 0)
            pos = item_position(table.key_schema, op.key)
            assert pos is not None
            err = cap.admit_write(table, pos, pre, item)
            if err is not None:
                throttled = throttled or err
                unprocessed.setdefault(name, []).append(wr)
                continue
            taken.append((cap, pos, pre))
        kept.append(op)
        kept_origins.append(origin)
    if throttled is not None and not kept:
        raise throttled
    return kept, kept_origins, taken


def _constant(item: Item | None) -> Callable[[Item | None], Item | None]:
    return lambda old: item
