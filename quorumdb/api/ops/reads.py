"""Query and Scan handlers.

They validate the request completely (DynamoDB's messages and order), then walk the data
plane's iterator, stopping at ``Limit`` items read or 1 MB read (both counted before the
filter), filter, project, and report ``Count``, ``ScannedCount``, ``LastEvaluatedKey`` and
``ConsumedCapacity``. A page with neither filter nor projection is answered by splicing the
stored JSON bytes, without decoding the items.

These handlers never write and never reach below the data plane.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson

from quorumdb.api import capacity
from quorumdb.api.common import (
    INVALID,
    check_duplicate_names,
    check_expression_params,
    check_key_paths,
    condition_paths,
    parse_expressions,
    table_of,
)
from quorumdb.api.registry import RequestContext, operation
from quorumdb.api.throttle import Throttle, hash_position, item_position, meter
from quorumdb.db.contract import SortKeyRange, StoredItem
from quorumdb.db.partition import segment_range
from quorumdb.errors import ResourceNotFoundError, ValidationError
from quorumdb.expr.keycond import (
    CONDITIONS_LENGTH,
    KeyCondition,
    conditions_from_expression,
    key_condition_from_conditions,
    validate_conditions,
)
from quorumdb.model.compare import compare, values_equal
from quorumdb.model.keys import encode_partition, extract_key
from quorumdb.model.schema import MAX_KEY_ATTRIBUTES, IndexDef, KeySchema, TableDef
from quorumdb.model.types import AttributeValue, Item, Key
from quorumdb.model.values import validate_item, validate_value

__all__ = [
    "query", "scan", "PAGE_BYTES_MAX", "Page", "read_page", "resolve_index", "check_start_key", "admit_page",
    "settle_page",
]

PAGE_BYTES_MAX = 1024 * 1024
_BAD_START = "The provided starting key is invalid"
# DynamoDB prefixes most value errors in ExclusiveStartKey, but not these.
_UNPREFIXED = re.compile(
    r"contains duplicates|number set|numeric value|significant digits|number with magnitude"
)


# -- validation helpers --------------------------------------------------------------------------


def _start_key_values(esk: Item | None) -> Item | None:
    if esk is None:
        return None
    try:
        return validate_item(esk)
    except ValidationError as e:
        if _UNPREFIXED.search(e.message):
            raise
        raise ValidationError(f"{_BAD_START}: {e.message}") from None


def _select(req: dict[str, Any], index: IndexDef | None, has_projection: bool) -> str:
    sel: str | None = req.get("Select")
    if sel is None:
        if has_projection:
            return "SPECIFIC_ATTRIBUTES"
        return "ALL_ATTRIBUTES" if index is None else "ALL_PROJECTED_ATTRIBUTES"
    if has_projection and sel != "SPECIFIC_ATTRIBUTES":
        param = "AttributesToGet" if req.get("AttributesToGet") is not None else "ProjectionExpression"
        raise ValidationError(
            INVALID + f"Cannot specify the {param} when choosing to get {sel}"
        )
    if sel == "SPECIFIC_ATTRIBUTES" and not has_projection:
        raise ValidationError(
            INVALID
            + "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
        )
    if sel == "ALL_PROJECTED_ATTRIBUTES" and index is None:
        raise ValidationError(
            INVALID + "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"
        )
    return sel


def resolve_index(
    table: TableDef, req: dict[str, Any], consistent: bool
) -> IndexDef | None:
    name = req.get("IndexName")
    if name is None:
        return None
    index = table.index(name)
    if index is None:
        raise ValidationError(f"The table does not have the specified index: {name}")
    if consistent and not index.local:
        raise ValidationError("Consistent reads are not supported on global secondary indexes")
    if index.backfilling:
        raise ValidationError(f"Cannot read from backfilling global secondary index: {name}")
    return index


def _key_names(table: TableDef, index: IndexDef | None) -> tuple[str, ...]:
    names = table.key_schema.names
    if index is None:
        return names
    return names + tuple(n for n in index.key_schema.names if n not in names)


def check_start_key(
    table: TableDef, index: IndexDef | None, esk: Item, *, is_query: bool
) -> Key:
    names = _key_names(table, index)
    if len(esk) != len(names):
        if index is None and not is_query:
            raise ValidationError(f"{_BAD_START}: The provided key element does not match the schema")
        raise ValidationError(_BAD_START)
    if index is not None:
        try:
            extract_key(index.key_schema, {n: esk[n] for n in index.key_schema.names if n in esk}, exact=False)
        except ValidationError as e:
            if "Missing the key" in e.message or "Type mismatch" in e.message:
                raise ValidationError(_BAD_START) from None
            raise
    table_part = {n: esk[n] for n in table.key_schema.names if n in esk}
    try:
        tk = extract_key(table.key_schema, table_part, exact=True)
    except ValidationError as e:
        raise ValidationError(f"{_BAD_START}: {e.message}") from None
    if index is None:
        return tk
    out = dict(esk)
    out.update(tk)
    return out


def _matches_sort(sort: SortKeyRange, av: AttributeValue) -> bool:
    op, vals = sort.op, sort.values
    if op == "BEGINS_WITH":
        ((t, v),) = av.items()
        ((t2, p),) = vals[0].items()
        if t != t2:
            return False
        if t == "B":
            return base64.b64decode(v).startswith(base64.b64decode(p))
        return bool(v.startswith(p))
    c = compare(av, vals[0])
    if c is None:
        return False
    if op == "EQ":
        return c == 0
    if op == "LT":
        return c < 0
    if op == "LE":
        return c <= 0
    if op == "GT":
        return c > 0
    if op == "GE":
        return c >= 0
    if op == "BETWEEN":
        c2 = compare(av, vals[1])
        return c >= 0 and c2 is not None and c2 <= 0
    raise AssertionError(op)


# Memos over the (immutable, themselves memoized) Condition objects of key condition
# expressions: identity-keyed, holding the object so its id is not reused; successes only.
_MEMO_MAX = 4096
_CONDS_MEMO: dict[int, tuple[Any, dict[str, tuple[str, list[AttributeValue]]]]] = {}
_KC_MEMO: dict[tuple[int, KeySchema], tuple[Any, KeyCondition]] = {}


def _memo_put(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value


def _key_conditions(req: dict[str, Any], condition: Any) -> dict[str, tuple[str, list[AttributeValue]]]:
    """The key conditions by attribute, checked as far as possible without the key schema."""
    if condition is not None:
        hit = _CONDS_MEMO.get(id(condition))
        if hit is not None and hit[0] is condition:
            return hit[1]
        conds = conditions_from_expression(condition.node)
        validate_conditions(conds)
        _check_condition_count(conds)
        _memo_put(_CONDS_MEMO, id(condition), (condition, conds))
        return conds
    else:
        conds = {
            name: (c.get("ComparisonOperator", ""), [validate_value(v) for v in c.get("AttributeValueList") or ()])
            for name, c in req["KeyConditions"].items()
        }
    validate_conditions(conds)
    _check_condition_count(conds)
    return conds


def _check_condition_count(conds: dict[str, tuple[str, list[AttributeValue]]]) -> None:
    """At most one condition per key attribute: two for a table (checked again against the key
    schema), up to eight for a multi-attribute index key."""
    if not 1 <= len(conds) <= 2 * MAX_KEY_ATTRIBUTES:
        raise ValidationError(CONDITIONS_LENGTH)


def _key_condition(
    conds: dict[str, tuple[str, list[AttributeValue]]], schema: KeySchema, *, memo: bool
) -> KeyCondition:
    """``key_condition_from_conditions``; with ``memo`` (``conds`` came from ``_CONDS_MEMO``,
    i.e. from an expression) memoized per (conds, schema)."""
    if not memo:
        return key_condition_from_conditions(conds, schema)
    mk = (id(conds), schema)
    hit = _KC_MEMO.get(mk)
    if hit is not None and hit[0] is conds:
        return hit[1]
    kc = key_condition_from_conditions(conds, schema)
    _memo_put(_KC_MEMO, mk, (conds, kc))
    return kc


def _values_equal(a: AttributeValue, b: AttributeValue) -> bool:
    return values_equal(a, b)


def _check_paths(table: TableDef, parsed: Any) -> None:
    if parsed.projection is not None:
        check_key_paths(table, parsed.projection.paths)
    if parsed.filter is not None:
        check_key_paths(table, condition_paths(parsed.filter))


def _check_segment(table: TableDef, index: IndexDef | None, start: Key, segment: int, total: int) -> None:
    """A parallel Scan's ExclusiveStartKey must lie in its segment's hash range."""
    schema = index.key_schema if index is not None else table.key_schema
    h = int.from_bytes(encode_partition(schema.hash_attrs, [start[a.name] for a in schema.hash_attrs])[:8], "big")
    lo, hi = segment_range(segment, total)
    if not lo <= h < hi:
        raise ValidationError(
            f"{_BAD_START}: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct "
            f"Segment. TotalSegments: {total} Segment: {segment}"
        )


# -- the page walk ---------------------------------------------------------------------------------


def _needs_fetch(table: TableDef, index: IndexDef | None, select: str, projection: Any) -> bool:
    """An LSI query/scan reads the table item for attributes the index does not project."""
    if index is None or not index.local or index.projection == "ALL":
        return False
    if select == "ALL_ATTRIBUTES":
        return True
    if projection is None:
        return False
    projected = set(table.key_schema.names)
    projected.update(index.key_schema.names)
    if index.projection == "INCLUDE":
        projected.update(index.non_key_attributes)
    return any(n not in projected for n in projection.top_level_names)


@dataclass(slots=True, kw_only=True)
class Page:
    """One page read by ``read_page``. ``raws`` (the stored JSON of each item) is set instead
    of ``items`` when nothing had to be decoded (no filter, projection or fetch)."""

    raws: list[bytes] | None
    items: list[Item]
    count: int
    scanned: int
    last_key: Key | None
    capacity: dict[str, Any] | None
    read_bytes: int = 0  # of the items read (before the filter): what the page costs
    fetched_bytes: int = 0  # of the table items an LSI read fetched for unprojected attributes


async def read_page(
    ctx: RequestContext,
    table: TableDef,
    index: IndexDef | None,
    it: Any,
    *,
    select: str,
    filt: Any,
    projection: Any,
    consistent: bool,
    limit: int | None,
    mode: str | None,
) -> Page:
    """Walk a Query/Scan iterator: stop at ``limit`` items read or 1 MB, fetch what an LSI
    does not project, filter, project, and count the read capacity (``mode``)."""
    fetch = _needs_fetch(table, index, select, projection)
    table_schema = table.key_schema
    key_names = _key_names(table, index)

    scanned = 0
    size = 0
    fetched_size = 0
    last: StoredItem | None = None
    truncated = False
    raw_fast = filt is None and projection is None and not fetch and select != "COUNT"
    raws: list[bytes] = []
    items: list[Item] = []
    count = 0
    if raw_fast or (select == "COUNT" and filt is None and not fetch):
        # Nothing to decode: keep the stored JSON (or just count).
        for stored in it:
            scanned += 1
            size += stored.size
            if raw_fast:
                raws.append(stored.raw)
            if scanned == limit or size >= PAGE_BYTES_MAX:
                truncated = True
                last = stored
                break
        count = scanned
    else:
        for stored in it:
            scanned += 1
            size += stored.size
            item = stored.item
            if fetch:
                full = await ctx.db.get(table, table_schema.key_of(item), consistent=consistent)
                if full is None:
                    item = {}
                else:
                    fetched_size += full.size
                    item = full.item
            if item and (filt is None or filt.evaluate(item)):
                count += 1
                if select != "COUNT":
                    items.append(projection.apply(item) if projection is not None else item)
            if scanned == limit or size >= PAGE_BYTES_MAX:
                truncated = True
                last = stored
                break

    lek: Key | None = None
    if truncated and last is not None:
        last_item = last.item
        lek = {n: last_item[n] for n in key_names if n in last_item}

    cc = None
    if mode is not None:
        units = capacity.read_units(size, consistent=consistent)
        if index is None:
            cc = capacity.consumed(table.name, mode, units)
        else:
            t_units = capacity.read_units(fetched_size, consistent=consistent) if fetched_size else 0.0
            ix = {index.name: units}
            cc = capacity.consumed(
                table.name,
                mode,
                t_units,
                local=ix if index.local else None,
                glob=None if index.local else ix,
            )
    return Page(
        raws=raws if raw_fast else None,
        items=items,
        count=count,
        scanned=scanned,
        last_key=lek,
        capacity=cc,
        read_bytes=size,
        fetched_bytes=fetched_size,
    )


async def _page(
    ctx: RequestContext,
    req: dict[str, Any],
    table: TableDef,
    index: IndexDef | None,
    it: Any,
    *,
    select: str,
    filt: Any,
    projection: Any,
    consistent: bool,
    taken: tuple[Throttle, int, float] | None = None,
) -> dict[str, Any] | bytes:
    page = await read_page(
        ctx,
        table,
        index,
        it,
        select=select,
        filt=filt,
        projection=projection,
        consistent=consistent,
        limit=req.get("Limit"),
        mode=capacity.wants_capacity(req),
    )
    if taken is not None:
        settle_page(taken, table, index, page, consistent)
    lek, cc = page.last_key, page.capacity
    if page.raws is not None:
        n = str(page.scanned).encode()
        parts = [b'{"Items":[', b",".join(page.raws), b'],"Count":', n, b',"ScannedCount":', n]
        if lek is not None:
            parts += [b',"LastEvaluatedKey":', orjson.dumps(lek)]
        if cc is not None:
            parts += [b',"ConsumedCapacity":', orjson.dumps(cc)]
        parts.append(b"}")
        return b"".join(parts)

    out: dict[str, Any] = {}
    if select != "COUNT":
        out["Items"] = page.items
    out["Count"] = page.count
    out["ScannedCount"] = page.scanned
    if lek is not None:
        out["LastEvaluatedKey"] = lek
    if cc is not None:
        out["ConsumedCapacity"] = cc
    return out


def admit_page(
    ctx: RequestContext, table: TableDef, index: IndexDef | None, position: int, consistent: bool
) -> tuple[Throttle, int, float] | None:
    """Take a Query/Scan page's minimum cost when capacity is enforced on ``table`` (the rest
    is charged once the page is read), or raise ProvisionedThroughputExceededException."""
    cap = meter(ctx.capacity, table)
    if cap is None:
        return None
    pre = capacity.read_units(0, consistent=consistent)
    err = cap.admit_read(table, index, position, pre)
    if err is not None:
        raise err
    return cap, position, pre


def settle_page(
    taken: tuple[Throttle, int, float], table: TableDef, index: IndexDef | None, page: Page, consistent: bool
) -> None:
    """Charge what a page read beyond what ``admit_page`` took (may leave a debt)."""
    cap, pos, pre = taken
    units = capacity.read_units(page.read_bytes, consistent=consistent) - pre
    fetched = capacity.read_units(page.fetched_bytes, consistent=consistent) if page.fetched_bytes else 0.0
    cap.settle_read(table, index, pos, units, fetched)


def _check_gsi_select(index: IndexDef | None, select: str) -> None:
    if (
        index is not None
        and not index.local
        and select == "ALL_ATTRIBUTES"
        and index.projection != "ALL"
    ):
        raise ValidationError(
            INVALID
            + f"Select type ALL_ATTRIBUTES is not supported for global secondary index {index.name} "
            "because its projection type is not ALL"
        )


def _check_query_start(schema: KeySchema, kc: KeyCondition, start: Key) -> None:
    """A Query's ExclusiveStartKey must lie inside its key condition."""
    hash_ok = all(
        (av := start.get(name)) is not None and _values_equal(av, value)
        for name, value in zip(kc.hash_names, kc.hash_values, strict=True)
    )
    sort = kc.sort
    if sort is None or kc.sort_name is None:
        if not hash_ok:
            raise ValidationError("The provided starting key is outside query boundaries based on provided conditions")
        return
    leading = schema.range_attrs[: len(sort.prefix)]
    rv = start.get(kc.sort_name)
    if (
        rv is None
        or not _matches_sort(sort, rv)
        or not all(
            (av := start.get(a.name)) is not None and _values_equal(av, v)
            for a, v in zip(leading, sort.prefix, strict=True)
        )
    ):
        raise ValidationError("The provided starting key does not match the range key predicate")
    if not hash_ok:
        raise ValidationError("The query can return at most one row and cannot be restarted")


def _check_filter_keys(filt: Any, schema: KeySchema, param: str) -> None:
    names = {p[0] for p in condition_paths(filt)}
    if not names:
        return
    for n in schema.names:
        if n in names:
            raise ValidationError(
                f"{param} can only contain non-primary key attributes: Primary key attribute: {n}"
            )


# -- Query -----------------------------------------------------------------------------------------


@operation("Query")
async def query(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    check_expression_params(
        req,
        ("ProjectionExpression", "FilterExpression", "KeyConditionExpression"),
        ("AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"),
    )
    check_duplicate_names(req.get("AttributesToGet"))
    esk = _start_key_values(req.get("ExclusiveStartKey"))
    if req.get("KeyConditions") is None and req.get("KeyConditionExpression") is None:
        raise ValidationError(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
        )
    parsed = parse_expressions(req, legacy_filter="QueryFilter")
    conds = _key_conditions(req, parsed.key_condition)
    has_projection = parsed.projection is not None
    consistent = bool(req.get("ConsistentRead"))
    try:
        table = table_of(ctx.db, req["TableName"])
        index = resolve_index(table, req, consistent)
    except (ResourceNotFoundError, ValidationError):
        if len(conds) > 2:
            # More than two conditions only fit a multi-attribute index key, which is
            # not there: the request error DynamoDB reports before looking up the table.
            raise ValidationError(CONDITIONS_LENGTH) from None
        raise
    schema = index.key_schema if index is not None else table.key_schema
    kc = _key_condition(conds, schema, memo=parsed.key_condition is not None)
    select = _select(req, index, has_projection)
    filt = parsed.filter
    _check_paths(table, parsed)
    if filt is not None:
        param = "QueryFilter" if req.get("QueryFilter") is not None else "Filter Expression"
        _check_filter_keys(filt, schema, param)
    _check_gsi_select(index, select)

    start: Key | None = None
    if esk is not None:
        start = check_start_key(table, index, esk, is_query=True)
        _check_query_start(schema, kc, start)

    taken = None
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        taken = admit_page(ctx, table, index, hash_position(kc.hash_values), consistent)
    it = await ctx.db.query(
        table,
        index,
        kc.hash_value if len(kc.hash_values) == 1 else kc.hash_values,
        kc.sort,
        forward=req.get("ScanIndexForward", True) is not False,
        exclusive_start=start,
        consistent=consistent,
        limit=req.get("Limit"),
    )
    return await _page(
        ctx,
        req,
        table,
        index,
        it,
        select=select,
        filt=filt,
        projection=parsed.projection,
        consistent=consistent,
        taken=taken,
    )


# -- Scan ------------------------------------------------------------------------------------------


@operation("Scan")
async def scan(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any] | bytes:
    check_expression_params(
        req,
        ("ProjectionExpression", "FilterExpression"),
        ("AttributesToGet", "ScanFilter", "ConditionalOperator"),
    )
    check_duplicate_names(req.get("AttributesToGet"))
    esk = _start_key_values(req.get("ExclusiveStartKey"))
    segment: int | None = req.get("Segment")
    total: int | None = req.get("TotalSegments")
    if segment is not None and total is None:
        raise ValidationError(
            "The TotalSegments parameter is required but was not present in the request when "
            "Segment parameter is present"
        )
    if total is not None:
        if segment is None:
            raise ValidationError(
                "The Segment parameter is required but was not present in the request when "
                "parameter TotalSegments is present"
            )
        if segment >= total:
            raise ValidationError(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                f"Segment: {segment} is not less than TotalSegments: {total}"
            )
    parsed = parse_expressions(req, legacy_filter="ScanFilter")
    has_projection = parsed.projection is not None
    consistent = bool(req.get("ConsistentRead"))
    table = table_of(ctx.db, req["TableName"])
    index = resolve_index(table, req, consistent)
    select = _select(req, index, has_projection)
    _check_gsi_select(index, select)
    start = None
    if esk is not None:
        start = check_start_key(table, index, esk, is_query=False)
        if total is not None and total > 1:
            _check_segment(table, index, start, segment or 0, total)
    _check_paths(table, parsed)
    taken = None
    cap = ctx.capacity
    if cap is not None and (cap.on or table.tags):
        # A page is charged to the partition it starts in.
        schema = index.key_schema if index is not None else table.key_schema
        pos = item_position(schema, start) if start is not None else None
        if pos is None:
            pos = segment_range(segment or 0, total or 1)[0]
        taken = admit_page(ctx, table, index, pos, consistent)
    it = await ctx.db.scan(
        table,
        index,
        segment=segment or 0,
        total_segments=total or 1,
        exclusive_start=start,
        consistent=consistent,
        limit=req.get("Limit"),
    )
    return await _page(
        ctx,
        req,
        table,
        index,
        it,
        select=select,
        filt=parsed.filter,
        projection=parsed.projection,
        consistent=consistent,
        taken=taken,
    )
