"""ConsumedCapacity arithmetic, as DynamoDB reports it.

Pure functions: sizes in, capacity units and the ``ConsumedCapacity`` response member out.

- Reads: ``ceil(size / 4 KB)`` units, minimum 1; half if eventually consistent; double if
  transactional. Query/Scan sum the sizes of every item read, then round up once.
- Writes: ``ceil(max(old size, new size) / 1 KB)`` units, minimum 1; double if transactional.

This module never touches storage, token buckets or the request: handlers pass it sizes and
the ``ReturnConsumedCapacity`` mode, and it returns what goes on the wire (or ``None``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import Item

__all__ = [
    "READ_UNIT_BYTES",
    "WRITE_UNIT_BYTES",
    "read_units",
    "write_units",
    "wants_capacity",
    "consumed",
    "index_write_units",
    "index_units",
    "merge_by_table",
]

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> float:
    """Read units for ``size_bytes`` read at once (one item, or a whole Query/Scan page)."""
    units = max(1, -(-size_bytes // READ_UNIT_BYTES))
    if transactional:
        return float(units * 2)
    return float(units) if consistent else units / 2


def write_units(old_size: int, new_size: int, *, transactional: bool = False) -> float:
    """Write units of one item write: the larger of the old and new item decides."""
    units = max(1, -(-max(old_size, new_size) // WRITE_UNIT_BYTES))
    return float(units * 2 if transactional else units)


def wants_capacity(req: Mapping[str, Any]) -> str | None:
    """``"TOTAL"`` or ``"INDEXES"`` when the request asked for ConsumedCapacity, else None."""
    mode = req.get("ReturnConsumedCapacity")
    return mode if mode == "TOTAL" or mode == "INDEXES" else None


def index_write_units(
    table: TableDef, index_writes: Mapping[str, int] | None, *, transactional: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """Split per-index write sizes (from ``WriteResult.index_writes``) into (local, global) units,
    one write of the given size per index. ``index_units`` is exact when the items are known."""
    local: dict[str, float] = {}
    glob: dict[str, float] = {}
    if not index_writes:
        return local, glob
    for name, size in index_writes.items():
        ix = table.index(name)
        if ix is None:
            continue
        units = write_units(0, size, transactional=transactional)
        target = local if ix.local else glob
        target[name] = target.get(name, 0.0) + units
    return local, glob


def _index_entry(table: TableDef, ix: IndexDef, item: Item | None) -> Item | None:
    if item is None:
        return None
    ks = ix.key_schema
    if any(n not in item for n in ks.names):
        return None
    if ix.projection == "ALL":
        return item
    names = set(table.key_schema.names)
    names.update(ks.names)
    if ix.projection == "INCLUDE":
        names.update(ix.non_key_attributes)
    return {n: v for n, v in item.items() if n in names}


def index_units(
    table: TableDef,
    old: Item | None,
    new: Item | None,
    index_writes: Mapping[str, int] | None = None,
    *,
    transactional: bool = False,
) -> tuple[dict[str, float], dict[str, float]]:
    """(local, global) write units of the index maintenance one item write caused, as DynamoDB
    counts them: an entry added or removed is one write of its size; an entry updated in place
    is one write of the larger version; an entry whose index key changed is two writes (delete
    the old entry, put the new one). ``index_writes`` (when the data plane reports it) limits
    the work to the indexes that changed.
    """
    local: dict[str, float] = {}
    glob: dict[str, float] = {}
    for ix in table.indexes:
        if index_writes is not None and ix.name not in index_writes:
            continue
        oe = _index_entry(table, ix, old)
        ne = _index_entry(table, ix, new)
        if oe is None and ne is None or oe == ne:
            continue
        if oe is not None and ne is not None:
            same_key = all(oe[n] == ne[n] for n in ix.key_schema.names)
            if same_key:
                units = write_units(item_size(oe), item_size(ne), transactional=transactional)
            else:
                units = write_units(item_size(oe), 0, transactional=transactional) + write_units(
                    0, item_size(ne), transactional=transactional
                )
        else:
            entry = oe if oe is not None else ne
            assert entry is not None
            units = write_units(item_size(entry), 0, transactional=transactional)
        (local if ix.local else glob)[ix.name] = units
    return local, glob


def consumed(
    table_name: str,
    mode: str | None,
    table_units: float,
    *,
    local: Mapping[str, float] | None = None,
    glob: Mapping[str, float] | None = None,
    kind: str | None = None,
) -> dict[str, Any] | None:
    """The ``ConsumedCapacity`` member for one table, or None when ``mode`` is not set.

    ``kind`` ("read"/"write") adds ReadCapacityUnits/WriteCapacityUnits, as DynamoDB does for
    transactions. Index units count into the total.
    """
    if mode is None:
        return None
    total = table_units
    if local:
        total += sum(local.values())
    if glob:
        total += sum(glob.values())
    out: dict[str, Any] = {"TableName": table_name, "CapacityUnits": total}
    if kind == "read":
        out["ReadCapacityUnits"] = total
    elif kind == "write":
        out["WriteCapacityUnits"] = total
    if mode == "INDEXES":
        out["Table"] = _units(table_units, kind)
        if local:
            out["LocalSecondaryIndexes"] = {n: _units(u, kind) for n, u in local.items()}
        if glob:
            out["GlobalSecondaryIndexes"] = {n: _units(u, kind) for n, u in glob.items()}
    return out


def _units(units: float, kind: str | None) -> dict[str, float]:
    out = {"CapacityUnits": units}
    if kind == "read":
        out["ReadCapacityUnits"] = units
    elif kind == "write":
        out["WriteCapacityUnits"] = units
    return out


def merge_by_table(
    mode: str | None, entries: Iterable[tuple[str, float, Mapping[str, float], Mapping[str, float]]],
    *, kind: str | None = None,
) -> list[dict[str, Any]] | None:
    """One ConsumedCapacity per table (batch and transaction calls), in first-seen order.

    ``entries`` are ``(table_name, table_units, local_units, global_units)``.
    """
    if mode is None:
        return None
    tables: dict[str, tuple[float, dict[str, float], dict[str, float]]] = {}
    for name, units, local, glob in entries:
        t_units, t_local, t_glob = tables.get(name, (0.0, {}, {}))
        for n, u in local.items():
            t_local[n] = t_local.get(n, 0.0) + u
        for n, u in glob.items():
            t_glob[n] = t_glob.get(n, 0.0) + u
        tables[name] = (t_units + units, t_local, t_glob)
    out = []
    for name, (units, local, glob) in tables.items():
        cc = consumed(name, mode, units, local=local, glob=glob, kind=kind)
        assert cc is not None
        out.append(cc)
    return out
