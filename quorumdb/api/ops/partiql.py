"""PartiQL handlers: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction.

A statement is parsed (``quorumdb.partiql``, cached by text), bound to the request's
Parameters and translated to the operations that exist already:

- SELECT with an equality on every key attribute of the table: one item read (GetItem);
  with an equality on the partition key (of the table or of the index named in FROM): a Query,
  narrowed by a sort-key condition when there is one; otherwise a Scan. The whole WHERE clause
  filters what is read; Limit counts items read, as Query and Scan do, and NextToken carries
  the last key read (tied to the statement and its parameters).
- INSERT: a put that fails with DuplicateItemException if the key exists.
- UPDATE / DELETE / EXISTS need an equality on every key attribute; the rest of WHERE is their
  condition (an UPDATE also requires the item to exist), so they are UpdateItem / DeleteItem /
  ConditionCheck with a condition expression.

Batches and transactions go through ``write_many`` / ``transact_write`` / ``get`` /
``transact_get`` like BatchWriteItem and the Transact* operations, with the same capacity
accounting. Nothing here parses text itself or evaluates conditions itself.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from quorumdb.api import capacity
from quorumdb.api.common import (
    MAX_ITEM_BYTES,
    check_key_paths,
    check_update_index_types,
    key_fingerprint,
    refuse_if_leaderless,
    table_of,
    updated_attributes,
    validate_item_for_table,
)
from quorumdb.api.ops.items import (
    conditional_mutator,
    metered_get,
    metered_write,
    settle_write,
    update_mutator,
    write_capacity,
)
from quorumdb.api.ops.reads import (
    admit_page,
    check_start_key,
    read_page,
    resolve_index,
    settle_page,
)
from quorumdb.api.ops.transactions import (
    TRANSACT_BYTES_MAX,
    check_only,
    request_fingerprint,
    transact_get_response,
    transact_write_response,
)
from quorumdb.api.registry import RequestContext, operation
from quorumdb.api.throttle import (
    Throttle,
    admit_transact_gets,
    admit_transact_writes,
    hash_position,
    item_position,
    meter,
    settle_transact_gets,
    settle_transact_writes,
)
from quorumdb.db import recipes
from quorumdb.db.contract import Mutator, WriteOp, WriteResult
from quorumdb.errors import DuplicateItemError, DynamoError, ValidationError
from quorumdb.expr import Condition, Projection, Update
from quorumdb.expr.ast import Call, CondNode, Path
from quorumdb.expr.resolve import ExprError, resolve_projection
from quorumdb.model.keys import extract_key
from quorumdb.model.schema import IndexDef, KeySchema, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import AttributeValue, Item, Key, SortKeyRange
from quorumdb.model.values import validate_item
from quorumdb.partiql import PartiQLSyntaxError, bind, keys, parse
from quorumdb.partiql.ast import Delete, Exists, Insert, Select, Statement
from quorumdb.partiql.ast import Update as UpdateStmt

__all__ = [
    "execute_statement",
    "batch_execute_statement",
    "execute_transaction",
    "NOT_WELL_FORMED",
    "MISSING_KEY_EQUALITY",
]

NOT_WELL_FORMED = "Statement wasn't well formed, can't be processed: "
MISSING_KEY_EQUALITY = "Where clause does not contain a mandatory equality on all key attributes"
BATCH_SELECT_NEEDS_KEY = (
    "Select statements within BatchExecuteStatement must specify the primary key in the where clause."
)
TRANSACTION_SELECT_NEEDS_KEY = (
    "Select statements within ExecuteTransaction must specify the primary key in the where clause."
)
MIXED_BATCH = "Batch requests must contain either all read statements or all write statements"
MIXED_TRANSACTION = "Transactions must contain either all read statements or all write statements"
EXISTS_ONLY_IN_TRANSACTIONS = "EXISTS statements are only supported in ExecuteTransaction"
ORDER_BY_WITHOUT_WHERE = "Must have WHERE clause in the statement when using ORDER BY clause."
ORDER_BY_NEEDS_QUERY = (
    "ORDER BY is supported only with an equality condition on the partition key, on a key attribute"
)
INSERT_NEEDS_MAP = "Unsupported value for INSERT: the value must be a map of attributes"
BAD_NEXT_TOKEN = "Invalid NextToken"
_ITEM_TOO_BIG = "Item size has exceeded the maximum allowed size"
_TRANSACTION_TOO_BIG = "Transaction request cannot be larger than 4 MB"
_MULTIPLE_OPS = "Transaction request cannot include multiple operations on one item"
_DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
# A BatchStatementError's Code is the error type without "Exception", with these exceptions.
_BATCH_CODES = {"ValidationException": "ValidationError", "ThrottlingException": "ThrottlingError"}


# -- statements ----------------------------------------------------------------------------------


def _bind(spec: dict[str, Any]) -> tuple[Statement, list[AttributeValue]]:
    """The statement of ``spec`` parsed, and its Parameters checked against it."""
    try:
        parsed = parse(spec["Statement"])
    except PartiQLSyntaxError as e:
        raise ValidationError(NOT_WELL_FORMED + str(e)) from None
    return parsed.statement, bind.bind_parameters(parsed.param_count, spec.get("Parameters"))


def _where(statement: Select | UpdateStmt | Delete, params: list[AttributeValue]) -> CondNode | None:
    return None if statement.where is None else bind.condition(statement.where, params)


# -- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ReadPlan:
    table: TableDef
    index: IndexDef | None
    key: Key | None  # every table key attribute is given: a single-item read
    # The partition key is given: a Query (one value per attribute of a multi-attribute key).
    hash_value: AttributeValue | tuple[AttributeValue, ...] | None
    sort: SortKeyRange | None
    forward: bool
    filter: Condition | None  # the whole WHERE clause
    projection: Projection | None


def _projection(paths: tuple[Path, ...] | None) -> Projection | None:
    if paths is None:
        return None
    try:
        return Projection.of(resolve_projection(paths, bind.NO_PLACEHOLDERS))
    except ExprError as e:
        raise ValidationError(e.message) from None


def _plan_read(
    db: Any, sel: Select, params: list[AttributeValue], consistent: bool
) -> _ReadPlan:
    where = _where(sel, params)
    projection = _projection(sel.projection)
    table = table_of(db, sel.table)
    index = None if sel.index is None else resolve_index(table, {"IndexName": sel.index}, consistent)
    if projection is not None:
        check_key_paths(table, projection.paths)
    schema = index.key_schema if index is not None else table.key_schema
    parts = keys.conjuncts(where)
    equal = keys.key_equalities(parts, schema.attrs, typed=True)
    key: Key | None = None
    hash_value: AttributeValue | tuple[AttributeValue, ...] | None = None
    sort: SortKeyRange | None = None
    if index is None and len(equal) == len(schema.names):
        key = {n: equal[n][1] for n in schema.names}
    elif schema.multi_attribute:
        # A multi-attribute index key: a Query of the partition when every partition-key
        # attribute is given (the WHERE clause filters the rest), else a Scan.
        if all(a.name in equal for a in schema.hash_attrs):
            hash_value = tuple(equal[a.name][1] for a in schema.hash_attrs)
    elif schema.hash.name in equal:
        hash_value = equal[schema.hash.name][1]
        if schema.range is not None:
            sort = keys.sort_range(parts, schema.range)
    if sel.order_by is not None:
        if where is None:
            raise ValidationError(ORDER_BY_WITHOUT_WHERE)
        on_key = sel.order_by.elements in [(n,) for n in schema.names]
        if (key is None and hash_value is None) or not on_key:
            raise ValidationError(ORDER_BY_NEEDS_QUERY)
    return _ReadPlan(
        table=table,
        index=index,
        key=key,
        hash_value=hash_value,
        sort=sort,
        forward=not sel.descending,
        filter=None if where is None else Condition(where),
        projection=projection,
    )


def _shape(plan: _ReadPlan) -> Callable[[Item], Item | None]:
    """The item as the statement returns it (None when WHERE filters it out)."""
    filt, projection = plan.filter, plan.projection

    def shape(item: Item) -> Item | None:
        if filt is not None and not filt.evaluate(item):
            return None
        return projection.apply(item) if projection is not None else item

    return shape


def _token_digest(req: dict[str, Any]) -> str:
    body = orjson.dumps([req["Statement"], req.get("Parameters")], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()[:32]


def _next_token(req: dict[str, Any], last_key: Key) -> str:
    body = orjson.dumps({"d": _token_digest(req), "k": last_key})
    return base64.urlsafe_b64encode(body).decode()


def _start_key(req: dict[str, Any], token: str, plan: _ReadPlan) -> Key:
    """The key a NextToken resumes after; it must come from the same statement and parameters."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(body, dict) or body.get("d") != _token_digest(req):
            raise ValueError(token)
        return check_start_key(
            plan.table, plan.index, validate_item(body["k"]), is_query=plan.hash_value is not None
        )
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError, DynamoError):
        raise ValidationError(BAD_NEXT_TOKEN) from None


async def _select(ctx: RequestContext, req: dict[str, Any], sel: Select, params: list[AttributeValue]) -> dict[str, Any] | bytes:
    consistent = bool(req.get("ConsistentRead"))
    plan = _plan_read(ctx.db, sel, params, consistent)
    table, index = plan.table, plan.index
    mode = capacity.wants_capacity(req)
    cap = ctx.capacity
    metered = cap is not None and (cap.on or bool(table.tags))
    if plan.key is not None:
        if metered:
            stored = await metered_get(ctx, table, plan.key, consistent)
        else:
            stored = await ctx.db.get(table, plan.key, consistent=consistent)
        item = None if stored is None else _shape(plan)(stored.item)
        out: dict[str, Any] = {"Items": [] if item is None else [item]}
        if mode is not None:
            size = 0 if stored is None else stored.size
            units = capacity.read_units(size, consistent=consistent)
            out["ConsumedCapacity"] = capacity.consumed(table.name, mode, units)
        return out

    token = req.get("NextToken")
    start = None if token is None else _start_key(req, token, plan)
    limit: int | None = req.get("Limit")
    taken = None
    if metered:
        if plan.hash_value is not None:
            hv = plan.hash_value
            pos = hash_position(hv if isinstance(hv, tuple) else (hv,))
        else:  # a Scan page is charged to the partition it starts in
            pos = (item_position((index or table).key_schema, start) if start is not None else None) or 0
        taken = admit_page(ctx, table, index, pos, consistent)
    if plan.hash_value is not None:
        it = await ctx.db.query(
            table,
            index,
            plan.hash_value,
            plan.sort,
            forward=plan.forward,
            exclusive_start=start,
            consistent=consistent,
            limit=limit,
        )
    else:
        it = await ctx.db.scan(
            table, index, exclusive_start=start, consistent=consistent, limit=limit
        )
    if plan.projection is not None:
        select = "SPECIFIC_ATTRIBUTES"
    else:
        select = "ALL_ATTRIBUTES" if index is None else "ALL_PROJECTED_ATTRIBUTES"
    page = await read_page(
        ctx,
        table,
        index,
        it,
        select=select,
        filt=plan.filter,
        projection=plan.projection,
        consistent=consistent,
        limit=limit,
        mode=mode,
    )
    if taken is not None:
        settle_page(taken, table, index, page, consistent)
    extra: dict[str, Any] = {}
    if page.last_key is not None:
        extra["NextToken"] = _next_token(req, page.last_key)
        extra["LastEvaluatedKey"] = page.last_key
    if page.capacity is not None:
        extra["ConsumedCapacity"] = page.capacity
    if page.raws is None:
        return {"Items": page.items, **extra}
    parts = [b'{"Items":[', b",".join(page.raws), b"]"]
    for name, value in extra.items():
        parts += [b',"', name.encode(), b'":', orjson.dumps(value)]
    parts.append(b"}")
    return b"".join(parts)


# -- writes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _WritePlan:
    kind: str  # Put, Update, Delete, ConditionCheck (as in TransactWriteItems)
    op: WriteOp
    update: Update | None
    returning: str | None
    size: int  # bytes the statement sends (the 4 MB transaction limit)


def _insert_mutator(item: Item) -> Mutator:
    def mutate(old: Item | None) -> Item | None:
        if old is not None:
            raise DuplicateItemError()
        return item

    return mutate


def _write_key(table: TableDef, where: CondNode | None) -> tuple[Key, list[CondNode]]:
    """The key a write's WHERE clause names, and its other conjuncts (the write's condition)."""
    schema = table.key_schema
    parts = keys.conjuncts(where)
    equal = keys.key_equalities(parts, schema.attrs, typed=False)
    if len(equal) != len(schema.names):
        raise ValidationError(MISSING_KEY_EQUALITY)
    key = extract_key(schema, {n: v for n, (_, v) in equal.items()}, exact=True)
    used = {i for i, _ in equal.values()}
    return key, [p for i, p in enumerate(parts) if i not in used]


def _exists(schema: KeySchema) -> CondNode:
    return Call("attribute_exists", (Path((schema.hash.name,)),))


def _plan_insert(db: Any, statement: Insert, params: list[AttributeValue], what: str) -> _WritePlan:
    value = bind.bind_value(statement.value, params)
    if "M" not in value:
        raise ValidationError(INSERT_NEEDS_MAP)
    item = validate_item(value["M"])
    if item_size(item) > MAX_ITEM_BYTES:
        raise ValidationError(_ITEM_TOO_BIG)
    table = table_of(db, statement.table)
    key = validate_item_for_table(table, item)
    refuse_if_leaderless(table, what)
    op = WriteOp(table=table, key=key, mutate=_insert_mutator(item))
    return _WritePlan(kind="Put", op=op, update=None, returning=None, size=item_size(item))


def _plan_write(
    db: Any, statement: Statement, params: list[AttributeValue], fail_old: bool, what: str
) -> _WritePlan:
    """A write statement as one item write; ``what`` names the feature refused on leaderless
    tables ("Conditional writes" or "Transactions")."""
    if isinstance(statement, Insert):
        return _plan_insert(db, statement, params, what)
    target = statement.select if isinstance(statement, Exists) else statement
    assert isinstance(target, (Select, UpdateStmt, Delete))
    where = _where(target, params)
    update = bind.update(statement.clauses, params) if isinstance(statement, UpdateStmt) else None
    table = table_of(db, target.table)
    if isinstance(target, Select) and target.index is not None:
        raise ValidationError(MISSING_KEY_EQUALITY)  # a condition check reads the table
    key, rest = _write_key(table, where)
    must_exist = Condition(keys.conjoin([_exists(table.key_schema), *rest]))
    returning = None
    if isinstance(statement, UpdateStmt):
        assert update is not None
        update.check_keys(table.key_schema)
        if table.indexes:
            check_update_index_types(table, update)
            check_key_paths(table, update.updated_paths)
        refuse_if_leaderless(table, what)
        # UPDATE changes an existing item only: a missing one fails its condition.
        mutate = update_mutator(table, key, must_exist, update, fail_old)
        kind, returning = "Update", statement.returning
    elif isinstance(statement, Delete):
        node = keys.conjoin(rest)
        if node is not None:
            refuse_if_leaderless(table, what)
        mutate = conditional_mutator(None if node is None else Condition(node), None, fail_old)
        kind, returning = "Delete", statement.returning
    else:
        refuse_if_leaderless(table, what)
        mutate = check_only(must_exist, fail_old)
        kind = "ConditionCheck"
    op = WriteOp(table=table, key=key, mutate=mutate)
    return _WritePlan(kind=kind, op=op, update=update, returning=returning, size=item_size(key))


_RECIPE = "partiql"


class _OneTable:
    """The catalog a rebuilt statement resolves its table in: the one the router chose."""

    def __init__(self, table: TableDef) -> None:
        self._table = table

    def table(self, name: str) -> TableDef:
        if name != self._table.name:
            raise ValidationError("A write recipe names another table")
        return self._table


def _rebuild(table: TableDef, data: Any) -> tuple[Key, Mutator]:
    """A BatchExecuteStatement write, rebuilt on the partition's leader from its statement."""
    text, params, fail_old = data
    statement, bound = _bind({"Statement": text, "Parameters": params or None})
    plan = _plan_write(_OneTable(table), statement, bound, bool(fail_old), "Conditional writes")
    return plan.op.key, plan.op.mutate


recipes.register(_RECIPE, _rebuild)


def _returned(plan: _WritePlan, res: WriteResult) -> Item | None:
    r = plan.returning
    if r == "ALL OLD":
        return res.old
    if r == "ALL NEW":
        return res.new
    if plan.update is None or r is None:
        return None
    return updated_attributes(res.old if r == "MODIFIED OLD" else res.new, plan.update)


# -- ExecuteStatement ----------------------------------------------------------------------------


@operation("ExecuteStatement")
async def execute_statement(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    statement, params = _bind(req)
    if isinstance(statement, Select):
        return await _select(ctx, req, statement, params)
    if isinstance(statement, Exists):
        raise ValidationError(EXISTS_ONLY_IN_TRANSACTIONS)
    fail_old = req.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    plan = _plan_write(ctx.db, statement, params, fail_old, "Conditional writes")
    cap = ctx.capacity
    if cap is not None and (cap.on or plan.op.table.tags):
        # An INSERT's size is known now; the others' only afterwards (1 unit up front).
        pre = capacity.write_units(0, plan.size if plan.kind == "Put" else 0)
        res = await metered_write(ctx, plan.op.table, plan.op, pre, None)
    else:
        res = await ctx.db.write(plan.op)
    returned = _returned(plan, res)
    out: dict[str, Any] = {"Items": [returned] if returned else []}
    mode = capacity.wants_capacity(req)
    if mode is not None:
        out["ConsumedCapacity"] = write_capacity(plan.op.table, mode, res)
    return out


# -- BatchExecuteStatement -----------------------------------------------------------------------


def _batch_error(e: DynamoError) -> dict[str, Any]:
    error: dict[str, Any] = {
        "Code": _BATCH_CODES.get(e.type_name, e.type_name.removesuffix("Exception")),
        "Message": e.message,
    }
    item = getattr(e, "item", None)
    if item is not None:
        error["Item"] = item
    return {"Error": error}


_CapacityEntries = list[tuple[str, float, dict[str, float], dict[str, float]]]


async def _batch_reads(
    ctx: RequestContext,
    specs: list[dict[str, Any]],
    bound: list[tuple[int, Statement, list[AttributeValue]]],
    responses: list[dict[str, Any]],
    entries: _CapacityEntries,
) -> None:
    planned: list[tuple[int, _ReadPlan, Key, bool]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for i, statement, params in bound:
        assert isinstance(statement, Select)
        consistent = bool(specs[i].get("ConsistentRead"))
        try:
            plan = _plan_read(ctx.db, statement, params, consistent)
            if plan.key is None:
                raise ValidationError(BATCH_SELECT_NEEDS_KEY)
        except DynamoError as e:
            responses[i] = _batch_error(e)
            continue
        ident = (plan.table.name, key_fingerprint(plan.key))
        if ident in seen:
            raise ValidationError(_DUPLICATE_KEYS)
        seen.add(ident)
        planned.append((i, plan, plan.key, consistent))
    cap = ctx.capacity
    for i, plan, key, consistent in planned:
        try:  # a throttled statement answers its own error (ProvisionedThroughputExceeded)
            if cap is not None and (cap.on or plan.table.tags):
                stored = await metered_get(ctx, plan.table, key, consistent)
            else:
                stored = await ctx.db.get(plan.table, key, consistent=consistent)
        except DynamoError as e:
            responses[i] = {**_batch_error(e), "TableName": plan.table.name}
            continue
        out: dict[str, Any] = {"TableName": plan.table.name}
        item = None if stored is None else _shape(plan)(stored.item)
        if item is not None:
            out["Item"] = item
        responses[i] = out
        size = 0 if stored is None else stored.size
        entries.append((plan.table.name, capacity.read_units(size, consistent=consistent), {}, {}))


async def _batch_writes(
    ctx: RequestContext,
    specs: list[dict[str, Any]],
    bound: list[tuple[int, Statement, list[AttributeValue]]],
    responses: list[dict[str, Any]],
    entries: _CapacityEntries,
) -> None:
    planned: list[tuple[int, _WritePlan]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for i, statement, params in bound:
        fail_old = specs[i].get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        try:
            if isinstance(statement, Exists):
                raise ValidationError(EXISTS_ONLY_IN_TRANSACTIONS)
            plan = _plan_write(ctx.db, statement, params, fail_old, "Conditional writes")
        except DynamoError as e:
            responses[i] = _batch_error(e)
            continue
        ident = (plan.op.table.name, key_fingerprint(plan.op.key))
        if ident in seen:
            raise ValidationError(_DUPLICATE_KEYS)
        seen.add(ident)
        # Each statement stands alone: a cluster router may ship it to its partition's leader.
        recipe = (_RECIPE, [specs[i]["Statement"], specs[i].get("Parameters") or [], fail_old])
        planned.append((i, dataclasses.replace(plan, op=dataclasses.replace(plan.op, recipe=recipe))))
    taken: list[tuple[Throttle, int, float] | None] = [None] * len(planned)
    cap = ctx.capacity
    if cap is not None and (cap.on or any(p.op.table.tags for _, p in planned)):
        planned, taken = _admit_batch_writes(cap, planned, responses)
    results = await ctx.db.write_many([p.op for _, p in planned])
    for (i, plan), res, t in zip(planned, results, taken, strict=True):
        table = plan.op.table
        if isinstance(res, DynamoError):
            responses[i] = {**_batch_error(res), "TableName": table.name}
            continue
        if isinstance(res, BaseException):
            raise res
        if t is not None:
            settle_write(t[0], table, t[1], t[2], res)
        responses[i] = {"TableName": table.name}
        units = capacity.write_units(res.old_size, res.new_size)
        local, glob = capacity.index_units(table, res.old, res.new, res.index_writes)
        entries.append((table.name, units, local, glob))


def _admit_batch_writes(
    throttle: Throttle, planned: list[tuple[int, _WritePlan]], responses: list[dict[str, Any]]
) -> tuple[list[tuple[int, _WritePlan]], list[tuple[Throttle, int, float] | None]]:
    """The statements that may run now and what each took; a throttled one answers its error."""
    kept: list[tuple[int, _WritePlan]] = []
    taken: list[tuple[Throttle, int, float] | None] = []
    for i, plan in planned:
        table = plan.op.table
        cap = meter(throttle, table)
        if cap is None:
            taken.append(None)
        else:
            pre = capacity.write_units(0, plan.size if plan.kind == "Put" else 0)
            pos = item_position(table.key_schema, plan.op.key)
            assert pos is not None
            err = cap.admit_write(table, pos, pre, None)
            if err is not None:
                responses[i] = {**_batch_error(err), "TableName": table.name}
                continue
            taken.append((cap, pos, pre))
        kept.append((i, plan))
    return kept, taken


@operation("BatchExecuteStatement")
async def batch_execute_statement(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    specs: list[dict[str, Any]] = req["Statements"]
    responses: list[dict[str, Any]] = [{} for _ in specs]
    bound: list[tuple[int, Statement, list[AttributeValue]]] = []
    for i, spec in enumerate(specs):
        try:
            statement, params = _bind(spec)
        except DynamoError as e:
            responses[i] = _batch_error(e)
            continue
        bound.append((i, statement, params))
    reads = {isinstance(s, Select) for _, s, _ in bound}
    if len(reads) > 1:
        raise ValidationError(MIXED_BATCH)
    entries: _CapacityEntries = []
    if reads == {True}:
        await _batch_reads(ctx, specs, bound, responses, entries)
    else:
        await _batch_writes(ctx, specs, bound, responses, entries)
    body: dict[str, Any] = {"Responses": responses}
    mode = capacity.wants_capacity(req)
    if mode is not None:
        body["ConsumedCapacity"] = capacity.merge_by_table(mode, entries)
    return body


# -- ExecuteTransaction --------------------------------------------------------------------------


@operation("ExecuteTransaction")
async def execute_transaction(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    specs: list[dict[str, Any]] = req["TransactStatements"]
    bound = [_bind(spec) for spec in specs]
    reads = {isinstance(s, Select) for s, _ in bound}
    if len(reads) > 1:
        raise ValidationError(MIXED_TRANSACTION)
    seen: set[tuple[str, tuple[Any, ...]]] = set()

    def once(table: TableDef, key: Key) -> None:
        ident = (table.name, key_fingerprint(key))
        if ident in seen:
            raise ValidationError(_MULTIPLE_OPS)
        seen.add(ident)

    if reads == {True}:
        keys_: list[tuple[TableDef, Key]] = []
        shapes: list[Callable[[Item], Item | None]] = []
        for statement, params in bound:
            assert isinstance(statement, Select)
            read = _plan_read(ctx.db, statement, params, True)
            if read.key is None:
                raise ValidationError(TRANSACTION_SELECT_NEEDS_KEY)
            refuse_if_leaderless(read.table, "Transactions")
            once(read.table, read.key)
            keys_.append((read.table, read.key))
            shapes.append(_shape(read))
        taken_reads = admit_transact_gets(ctx.capacity, keys_)
        found = await ctx.db.transact_get(keys_)
        if taken_reads is not None:
            settle_transact_gets(taken_reads, found)
        return transact_get_response(req, keys_, found, shapes)

    plans: list[_WritePlan] = []
    total_bytes = 0
    for spec, (statement, params) in zip(specs, bound, strict=True):
        fail_old = spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        plan = _plan_write(ctx.db, statement, params, fail_old, "Transactions")
        refuse_if_leaderless(plan.op.table, "Transactions")  # even an unconditional DELETE
        once(plan.op.table, plan.op.key)
        total_bytes += plan.size
        plans.append(plan)
    if total_bytes > TRANSACT_BYTES_MAX:
        raise ValidationError(_TRANSACTION_TOO_BIG)
    # Each statement travels as a recipe: a cluster rebuilds it on the leader of its partition.
    ops = [
        dataclasses.replace(
            p.op, action=p.kind,
            recipe=(_RECIPE, [spec["Statement"], spec.get("Parameters") or [],
                              spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"]),
        )
        for spec, p in zip(specs, plans, strict=True)
    ]
    taken = admit_transact_writes(ctx.capacity, [(op.table, op.key, None) for op in ops])
    token: str | None = req.get("ClientRequestToken")
    if token is None:
        results = await ctx.db.transact_write(ops)
    else:
        results = await ctx.db.transact_write(ops, token=token, fingerprint=request_fingerprint(req))
    if taken is not None:
        settle_transact_writes(taken, results)
    return transact_write_response(req, ops, [p.kind for p in plans], results)
