"""Shared glue of the item handlers (items, reads, transactions).

Everything here is request validation and translation: legacy-vs-expression parameter checks,
building conditions / updates / projections (from expressions or their legacy equivalents),
key and item validation against a table definition (including secondary-index key types),
and ReturnValues shaping. It raises ``quorumdb.errors`` types with DynamoDB's messages.

It never performs I/O or writes: handlers call the data plane themselves, after every check
here has passed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from quorumdb.api.lifecycle import serves_items
from quorumdb.errors import ResourceNotFoundError, ValidationError
from quorumdb.expr import Condition, ExpressionContext, KeyCondition, Projection, Update, legacy
from quorumdb.expr.ast import Literal, Path
from quorumdb.model.keys import (
    HASH_KEY_SIZE_MAX,
    RANGE_KEY_SIZE_MAX,
    extract_key,
    key_value_allowed,
)
from quorumdb.model.schema import IndexDef, KeySchema, TableDef, table_name_of
from quorumdb.model.types import Item, Key

__all__ = [
    "MAX_ITEM_BYTES",
    "INVALID",
    "table_of",
    "check_expression_params",
    "check_duplicate_names",
    "Parsed",
    "parse_expressions",
    "validate_item_for_table",
    "check_index_keys",
    "updated_attributes",
    "key_fingerprint",
    "refuse_if_leaderless",
    "REPLICATION_TAG",
    "condition_paths",
    "check_key_paths",
    "check_update_index_types",
    "item_collection_metrics",
]

MAX_ITEM_BYTES = 400 * 1024
INVALID = "One or more parameter values were invalid: "


def table_of(ctx_db: Any, name: str, now: float | None = None) -> TableDef:
    """The table an item operation names (by name or table ARN), or ResourceNotFoundError with
    DynamoDB's text; so is a table that is being created or deleted (at ``now``, the wall
    clock by default)."""
    try:
        table: TableDef = ctx_db.table(table_name_of(name))
    except ResourceNotFoundError:
        raise ResourceNotFoundError("Requested resource not found") from None
    if table.status_until is not None and not serves_items(table, time.time() if now is None else now):
        raise ResourceNotFoundError("Requested resource not found")
    if table.restore is not None and table.restore.in_progress:
        raise ResourceNotFoundError("Requested resource not found")  # CREATING: not readable yet
    return table


def check_expression_params(
    req: Mapping[str, Any], expressions: Sequence[str], legacy: Sequence[str]
) -> None:
    """Refuse mixing expression and legacy parameters, and stray ExpressionAttribute* maps."""
    used = [p for p in expressions if req.get(p) is not None]
    if used:
        legacy_used = [p for p in legacy if req.get(p) is not None]
        if (
            "KeyConditions" in legacy_used
            and req.get("KeyConditionExpression") is None
        ):
            legacy_used.remove("KeyConditions")
        if legacy_used:
            raise ValidationError(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(legacy_used)}}} "
                f"Expression parameters: {{{', '.join(used)}}}"
            )
    if req.get("ExpressionAttributeNames") is not None and not used:
        raise ValidationError(
            "ExpressionAttributeNames can only be specified when using expressions"
        )
    value_exprs = [p for p in expressions if p != "ProjectionExpression"]
    if (
        value_exprs
        and req.get("ExpressionAttributeValues") is not None
        and all(req.get(p) is None for p in value_exprs)
    ):
        verb = "are" if len(value_exprs) > 1 else "is"
        raise ValidationError(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(value_exprs)} {verb} null"
        )


def check_duplicate_names(names: Sequence[str] | None) -> None:
    """AttributesToGet may not repeat a name."""
    if not names:
        return
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValidationError(INVALID + f"Duplicate value in attribute name: {n}")
        seen.add(n)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """The compiled expressions of one request (None where absent).

    ``key_condition`` is a plain ``Condition`` when parsed without a key schema (Query converts
    it once the table or index is known), else a ``KeyCondition``.
    """

    condition: Condition | None = None
    update: Update | None = None
    key_condition: Condition | KeyCondition | None = None
    filter: Condition | None = None
    projection: Projection | None = None


_EMPTY = Parsed()


def parse_expressions(
    req: Mapping[str, Any],
    *,
    key_schema: KeySchema | None = None,
    filter_param: str = "FilterExpression",
    legacy_filter: str | None = None,
    legacy_updates: bool = False,
    legacy_expected: bool = False,
    legacy_key_conditions: bool = False,
) -> Parsed:
    """Compile the request's expressions (or legacy parameters) in DynamoDB's order.

    Expressions are parsed in DynamoDB's order (update, condition, key condition, filter,
    projection), then unused placeholders are refused. Legacy parameters become the same
    objects through ``quorumdb.expr.legacy``.
    """
    upd_t = req.get("UpdateExpression")
    cond_t = req.get("ConditionExpression")
    key_t = req.get("KeyConditionExpression")
    filt_t = req.get(filter_param) if filter_param == "FilterExpression" else None
    proj_t = req.get("ProjectionExpression")
    names = req.get("ExpressionAttributeNames")
    values = req.get("ExpressionAttributeValues")

    condition: Condition | None = None
    update: Update | None = None
    key_condition: Condition | KeyCondition | None = None
    filt: Condition | None = None
    projection: Projection | None = None
    if (
        upd_t is not None
        or cond_t is not None
        or key_t is not None
        or filt_t is not None
        or proj_t is not None
        or names is not None
        or values is not None
    ):
        ec = ExpressionContext(names, values)
        if upd_t is not None:
            update = ec.update(upd_t)
        if cond_t is not None:
            condition = ec.condition(cond_t, "ConditionExpression")
        if key_t is not None:
            # Without a schema: parsed as a plain condition; the caller converts it once the
            # table (or index) is known, so schema errors rank after every request error.
            if key_schema is None:
                key_condition = ec.condition(key_t, "KeyConditionExpression")
            else:
                key_condition = ec.key_condition(key_t, key_schema)
        if filt_t is not None:
            filt = ec.condition(filt_t, "FilterExpression")
        if proj_t is not None:
            projection = ec.projection(proj_t)
        ec.check_unused()

    op = req.get("ConditionalOperator")
    if legacy_updates and req.get("AttributeUpdates") is not None:
        update = legacy.attribute_updates(req["AttributeUpdates"])
    if legacy_expected and req.get("Expected") is not None:
        condition = legacy.expected(req["Expected"], op)
    if legacy_filter and req.get(legacy_filter) is not None:
        filt = legacy.filter_conditions(req[legacy_filter], op, legacy_filter)
    if legacy_key_conditions and req.get("KeyConditions") is not None and key_t is None:
        assert key_schema is not None
        key_condition = legacy.key_conditions(req["KeyConditions"], key_schema)
    if projection is None and req.get("AttributesToGet") is not None:
        projection = legacy.attributes_to_get(req["AttributesToGet"])

    if (
        condition is None
        and update is None
        and key_condition is None
        and filt is None
        and projection is None
    ):
        return _EMPTY
    return Parsed(
        condition=condition,
        update=update,
        key_condition=key_condition,
        filter=filt,
        projection=projection,
    )


def validate_item_for_table(table: TableDef, item: Item) -> Key:
    """An already value-validated item against the table: primary key, index key types.

    Returns the item's primary key.
    """
    key = extract_key(table.key_schema, item, exact=False)
    if table.indexes:
        check_index_keys(table, item)
    return key


def _index_key_error(ix: IndexDef, name: str, expected: str, av: Mapping[str, Any]) -> ValidationError:
    actual = next(iter(av))
    if actual == expected and av[actual] == "" and expected in ("S", "B"):
        kind = "string" if expected == "S" else "binary"
        return ValidationError(
            "One or more parameter values are not valid. A value specified for a secondary index "
            "key is not supported. The AttributeValue for a key attribute cannot contain an empty "
            f"{kind} value. IndexName: {ix.name}, IndexKey: {name}"
        )
    return ValidationError(
        INVALID
        + f"Type mismatch for Index Key {name} Expected: {expected} Actual: {actual} IndexName: {ix.name}"
    )


def check_index_keys(table: TableDef, item: Item) -> None:
    """Index key attributes present in ``item`` must have the declared type and not be empty."""
    for ix in table.indexes:
        ks = ix.key_schema
        hash_attrs = ks.hash_attrs
        for attr in ks.attrs:
            av = item.get(attr.name)
            if av is None:
                continue
            v = av.get(attr.type)
            if v is None or v == "":
                raise _index_key_error(ix, attr.name, attr.type, av)
            if attr.type != "N":
                is_hash = attr in hash_attrs
                if not key_value_allowed(attr.type, v, is_hash=is_hash):
                    raise ValidationError(
                        INVALID
                        + (
                            f"Size of hashkey has exceeded the maximum size limit of{HASH_KEY_SIZE_MAX} bytes"
                            if is_hash
                            else f"Aggregated size of all range keys has exceeded the size limit of {RANGE_KEY_SIZE_MAX} bytes"
                        )
                    )


def updated_attributes(item: Item | None, update: Update) -> Item:
    """The paths an update touched, as found in ``item`` (ReturnValues UPDATED_OLD / UPDATED_NEW)."""
    if not item:
        return {}
    return update.project_updated(item)


def condition_paths(condition: Any) -> list[tuple[str | int, ...]]:
    """Every document path a compiled condition reads (for key-attribute checks)."""
    out: list[tuple[str | int, ...]] = []
    stack: list[Any] = [getattr(condition, "node", None)]
    while stack:
        n = stack.pop()
        if n is None or isinstance(n, (Literal, str, int)):
            continue
        if isinstance(n, Path):
            out.append(n.resolved)
        elif isinstance(n, tuple):
            stack.extend(n)
        elif dataclasses.is_dataclass(n):
            stack.extend(getattr(n, f.name) for f in dataclasses.fields(n))
    return out


def check_key_paths(table: TableDef, paths: Iterable[tuple[str | int, ...]]) -> None:
    """Key attributes are scalars: a nested path below one is refused."""
    nested = {p[0] for p in paths if len(p) > 1}
    if not nested:
        return
    for n in table.key_schema.names:
        if n in nested:
            raise ValidationError(_NOT_SCALAR + f"Key: {n}")
    for ix in table.indexes:
        for n in ix.key_schema.names:
            if n in nested:
                raise ValidationError(_NOT_SCALAR + f"IndexKey: {n}")


_NOT_SCALAR = (
    "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: "
)


def check_update_index_types(table: TableDef, update: Any) -> None:
    """Index key attributes an update SETs to a literal must get the declared type."""
    if not table.indexes:
        return
    types: dict[str, str] = update.top_level_types()
    if not types:
        return
    for ix in table.indexes:
        for attr in ix.key_schema.attrs:
            t = types.get(attr.name)
            if t is not None and t != attr.type:
                raise ValidationError(
                    INVALID
                    + f"Type mismatch for Index Key {attr.name} Expected: {attr.type} Actual: {t} IndexName: {ix.name}"
                )


REPLICATION_TAG = "quorumdb:replication"


def refuse_if_leaderless(table: TableDef, what: str) -> None:
    """Conditions and transactions cannot be atomic on a leaderless (Dynamo-style) table."""
    if table.tags and table.tags.get(REPLICATION_TAG) == "leaderless":
        raise ValidationError(
            f"{what} are not supported on table {table.name}: its replication mode is leaderless "
            f"(tag {REPLICATION_TAG})"
        )


def key_fingerprint(key: Key) -> tuple[Any, ...]:
    """A hashable identity of a key (numbers are canonical already). A key not checked
    against the schema yet may hold a set, list, map, bool or null: it gets an identity too."""
    if len(key) == 1:
        ((n, av),) = key.items()
        ((t, v),) = av.items()
        return (n, t, v if v.__class__ is str else _hashable(v))
    return tuple(
        sorted((n, t, v if v.__class__ is str else _hashable(v)) for n, av in key.items() for t, v in av.items())
    )


def _hashable(payload: Any) -> str:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def item_collection_metrics(
    table: TableDef, key: Key, req: Mapping[str, Any], size: int | None = None
) -> dict[str, Any] | None:
    """ItemCollectionMetrics for ReturnItemCollectionMetrics=SIZE on tables with an LSI.

    ``size`` is the collection's size in bytes (``WriteResult.collection_size``); the estimate
    is the whole-GB range around it, as DynamoDB reports it (``[0.0, 1.0]`` below 1 GB)."""
    if req.get("ReturnItemCollectionMetrics") != "SIZE":
        return None
    if not any(ix.local for ix in table.indexes):
        return None
    h = table.key_schema.hash.name
    lower = float(max(size or 0, 0) // _GB)
    return {"ItemCollectionKey": {h: key[h]}, "SizeEstimateRangeGB": [lower, lower + 1.0]}


_GB = 1024**3
