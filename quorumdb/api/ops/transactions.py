"""TransactWriteItems and TransactGetItems handlers.

Every action is validated before anything is written (same checks as the single-item
operations, plus the transaction rules: at most 100 actions, 4 MB, one action per item).
Writes go through ``DataPlane.transact_write`` (all or nothing; it raises
TransactionCanceledError with one reason per action); reads through ``transact_get`` (one
snapshot). Capacity is counted double, as DynamoDB counts transactional operations.

ClientRequestToken idempotency lives in the data plane: this module computes the request's
fingerprint (its parameters, without those that only shape the response) and passes it with the
token to ``transact_write``, which checks and records both in the same atomic commit as the
items — so a retry on another worker process or after a restart is not applied twice. A replay
(``WriteResult.replayed``) is answered without writing, reporting read capacity as DynamoDB does.
Never keep idempotency state in this process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from quorumdb.api import capacity
from quorumdb.api.common import (
    MAX_ITEM_BYTES,
    check_expression_params,
    check_key_paths,
    check_update_index_types,
    item_collection_metrics,
    key_fingerprint,
    parse_expressions,
    refuse_if_leaderless,
    table_of,
    validate_item_for_table,
)
from quorumdb.api.ops.items import conditional_mutator, update_mutator
from quorumdb.api.registry import RequestContext, operation
from quorumdb.api.throttle import (
    admit_transact_gets,
    admit_transact_writes,
    settle_transact_gets,
    settle_transact_writes,
)
from quorumdb.db import recipes
from quorumdb.db.contract import StoredItem, WriteOp, WriteResult
from quorumdb.errors import ConditionalCheckFailedError, ValidationError
from quorumdb.model.keys import extract_key
from quorumdb.model.schema import TableDef, table_name_of
from quorumdb.model.size import item_size
from quorumdb.model.types import Item, Key
from quorumdb.model.values import validate_item

__all__ = [
    "transact_write_items",
    "transact_get_items",
    "request_fingerprint",
    "check_only",
    "transact_write_response",
    "transact_get_response",
    "TRANSACT_BYTES_MAX",
]

TRANSACT_ITEMS_MAX = 100  # enforced by the spec (shapes.json), before a handler runs
TRANSACT_BYTES_MAX = 4 * 1024 * 1024
_MULTIPLE_OPS = "Transaction request cannot include multiple operations on one item"
_ONE_ACTION = "TransactItems can only contain one of Check, Put, Update or Delete"
_TOO_BIG = "Transaction request cannot be larger than 4 MB"


# -- idempotency -----------------------------------------------------------------------------------


# What a response asks for, not what the request does: a retry may change these freely.
_NOT_FINGERPRINTED = frozenset(
    {"ClientRequestToken", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}
)


def request_fingerprint(req: dict[str, Any]) -> bytes:
    body = {k: v for k, v in req.items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()


# -- TransactWriteItems ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Planned:
    kind: str
    spec: dict[str, Any]
    item: Item | None
    key_in: Item | None
    parsed: Any


def _plan_action(action: dict[str, Any]) -> _Planned:
    present = [k for k in ("ConditionCheck", "Put", "Delete", "Update") if action.get(k) is not None]
    if len(present) != 1:
        raise ValidationError(_ONE_ACTION)
    kind = present[0]
    spec = action[kind]
    if kind == "Put":
        check_expression_params(spec, ("ConditionExpression",), ())
        item = validate_item(spec["Item"])
        if item_size(item) > MAX_ITEM_BYTES:
            raise ValidationError("Item size has exceeded the maximum allowed size")
        return _Planned(kind=kind, spec=spec, item=item, key_in=None, parsed=parse_expressions(spec))
    key_in = validate_item(spec["Key"])
    if kind == "Update":
        check_expression_params(spec, ("UpdateExpression", "ConditionExpression"), ())
    else:
        check_expression_params(spec, ("ConditionExpression",), ())
    return _Planned(kind=kind, spec=spec, item=None, key_in=key_in, parsed=parse_expressions(spec))


@operation("TransactWriteItems")
async def transact_write_items(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    actions: list[dict[str, Any]] = req["TransactItems"]
    assert len(actions) <= TRANSACT_ITEMS_MAX, "the spec caps TransactItems"
    planned = [_plan_action(a) for a in actions]
    tables: dict[str, TableDef] = {}
    ops: list[WriteOp] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    total_bytes = 0
    for action, p in zip(actions, planned, strict=True):
        name = p.spec["TableName"]
        table = tables.get(name)
        if table is None:
            table = tables[name] = table_of(ctx.db, name)
            refuse_if_leaderless(table, "Transactions")
        key, mutate = _mutation(table, p)
        total_bytes += item_size(p.item) if p.item is not None else item_size(key)
        ident = (name, key_fingerprint(key))
        if ident in seen:
            raise ValidationError(_MULTIPLE_OPS)
        seen.add(ident)
        # The action travels as a recipe: a cluster rebuilds it on the leader of its partition.
        ops.append(WriteOp(table=table, key=key, mutate=mutate, recipe=(_RECIPE, action), action=p.kind))
    if total_bytes > TRANSACT_BYTES_MAX:
        raise ValidationError(_TOO_BIG)

    # Provisioned capacity (when enforced): all actions admitted, or the call is cancelled.
    taken = admit_transact_writes(ctx.capacity, [(op.table, op.key, p.item) for op, p in zip(ops, planned, strict=True)])
    token: str | None = req.get("ClientRequestToken")
    if token is None:
        results = await ctx.db.transact_write(ops)
    else:
        results = await ctx.db.transact_write(ops, token=token, fingerprint=request_fingerprint(req))
    if taken is not None:
        settle_transact_writes(taken, results)
    return transact_write_response(req, ops, [p.kind for p in planned], results)


def _mutation(table: TableDef, p: _Planned) -> tuple[Key, Any]:
    """The key and the pure mutation of one planned action on ``table``."""
    fail_old = p.spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    cond = p.parsed.condition
    if p.kind == "Put":
        assert p.item is not None
        key = validate_item_for_table(table, p.item)
        return key, conditional_mutator(cond, p.item, fail_old)
    assert p.key_in is not None
    key = extract_key(table.key_schema, p.key_in, exact=True)
    if p.kind == "Delete":
        return key, conditional_mutator(cond, None, fail_old)
    if p.kind == "Update":
        update = p.parsed.update
        update.check_keys(table.key_schema)
        if table.indexes:
            check_update_index_types(table, update)
            check_key_paths(table, update.updated_paths)
        return key, update_mutator(table, key, cond, update, fail_old)
    return key, check_only(cond, fail_old)


_RECIPE = "transact"


def _rebuild(table: TableDef, action: Any) -> tuple[Key, Any]:
    """A TransactWriteItems action rebuilt from its request JSON (``quorumdb.db.recipes``)."""
    p = _plan_action(action)
    if table_name_of(str(p.spec.get("TableName"))) != table.name:  # a name or the table's ARN
        raise ValidationError("A write recipe names another table")
    return _mutation(table, p)


recipes.register(_RECIPE, _rebuild)


def transact_write_response(
    req: dict[str, Any], ops: list[WriteOp], kinds: list[str], results: list[WriteResult]
) -> dict[str, Any]:
    """The body answering a committed (or replayed) write transaction: ConsumedCapacity and
    ItemCollectionMetrics as asked. ``kinds`` name each op ("ConditionCheck" writes nothing)."""
    if results and results[0].replayed:
        return _replayed(req, ops, kinds, results)

    out: dict[str, Any] = {}
    mode = capacity.wants_capacity(req)
    if mode is not None:
        entries: list[tuple[str, float, dict[str, float], dict[str, float]]] = []
        for op, res in zip(ops, results, strict=True):
            units = capacity.write_units(res.old_size, res.new_size, transactional=True)
            local, glob = capacity.index_units(
                op.table, res.old, res.new, res.index_writes, transactional=True
            )
            entries.append((op.table.name, units, local, glob))
        out["ConsumedCapacity"] = capacity.merge_by_table(mode, entries, kind="write")
    _add_metrics(req, ops, kinds, results, out)
    return out


def _add_metrics(
    req: dict[str, Any],
    ops: list[WriteOp],
    kinds: list[str],
    results: list[WriteResult],
    out: dict[str, Any],
) -> None:
    """One ItemCollectionMetrics entry per item collection written (ConditionChecks write none)."""
    if req.get("ReturnItemCollectionMetrics") == "SIZE":
        metrics: dict[str, list[dict[str, Any]]] = {}
        seen: set[tuple[str, tuple[Any, ...]]] = set()
        for op, kind, res in zip(ops, kinds, results, strict=True):
            if kind == "ConditionCheck":
                continue
            icm = item_collection_metrics(op.table, op.key, req, res.collection_size)
            if icm is None:
                continue
            ident = (op.table.name, key_fingerprint(icm["ItemCollectionKey"]))
            if ident in seen:
                continue
            seen.add(ident)
            metrics.setdefault(op.table.name, []).append(icm)
        out["ItemCollectionMetrics"] = metrics


def _replayed(
    req: dict[str, Any], ops: list[WriteOp], kinds: list[str], results: list[WriteResult]
) -> dict[str, Any]:
    """The answer to a retry of a completed transaction: nothing is written again; the
    capacity reported is that of reading the items (DynamoDB's documented behaviour)."""
    out: dict[str, Any] = {}
    mode = capacity.wants_capacity(req)
    if mode is not None:
        entries: list[tuple[str, float, dict[str, float], dict[str, float]]] = [
            (op.table.name, capacity.read_units(res.new_size, consistent=True, transactional=True), {}, {})
            for op, res in zip(ops, results, strict=True)
        ]
        out["ConsumedCapacity"] = capacity.merge_by_table(mode, entries, kind="read")
    _add_metrics(req, ops, kinds, results, out)
    return out


def check_only(condition: Any, return_old_on_fail: bool) -> Any:
    def mutate(old: Item | None) -> Item | None:
        if not condition.evaluate(old):
            raise ConditionalCheckFailedError(item=old if return_old_on_fail else None)
        return old

    return mutate


# -- TransactGetItems ------------------------------------------------------------------------------


@operation("TransactGetItems")
async def transact_get_items(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    actions: list[dict[str, Any]] = req["TransactItems"]
    assert len(actions) <= TRANSACT_ITEMS_MAX, "the spec caps TransactItems"
    staged: list[tuple[dict[str, Any], Item, Any]] = []
    for a in actions:
        get = a.get("Get")
        if get is None:
            raise ValidationError(_ONE_ACTION)
        check_expression_params(get, ("ProjectionExpression",), ())
        key_in = validate_item(get["Key"])
        staged.append((get, key_in, parse_expressions(get).projection))
    tables: dict[str, TableDef] = {}
    keys: list[tuple[TableDef, Key]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for get, key_in, _ in staged:
        name = get["TableName"]
        table = tables.get(name)
        if table is None:
            table = tables[name] = table_of(ctx.db, name)
            refuse_if_leaderless(table, "Transactions")
        key = extract_key(table.key_schema, key_in, exact=True)
        ident = (name, key_fingerprint(key))
        if ident in seen:
            raise ValidationError(_MULTIPLE_OPS)
        seen.add(ident)
        keys.append((table, key))
    taken = admit_transact_gets(ctx.capacity, keys)
    found = await ctx.db.transact_get(keys)
    if taken is not None:
        settle_transact_gets(taken, found)
    shapes = [_identity if projection is None else projection.apply for _, _, projection in staged]
    return transact_get_response(req, keys, found, shapes)


def _identity(item: Item) -> Item:
    return item


def transact_get_response(
    req: dict[str, Any],
    keys: list[tuple[TableDef, Key]],
    found: list[StoredItem | None],
    shapes: list[Callable[[Item], Item | None]],
) -> dict[str, Any]:
    """The body answering a read transaction: one response per key, ``{"Item": shape(item)}``
    (``{}`` when absent or when ``shape`` returns None), and the transactional read capacity."""
    responses: list[dict[str, Any]] = []
    entries: list[tuple[str, float, dict[str, float], dict[str, float]]] = []
    for (table, _), shape, stored in zip(keys, shapes, found, strict=True):
        item = None if stored is None else shape(stored.item)
        responses.append({} if item is None else {"Item": item})
        size = 0 if stored is None else stored.size
        entries.append((table.name, capacity.read_units(size, consistent=True, transactional=True), {}, {}))
    out: dict[str, Any] = {"Responses": responses}
    mode = capacity.wants_capacity(req)
    if mode is not None:
        out["ConsumedCapacity"] = capacity.merge_by_table(mode, entries, kind="read")
    return out
