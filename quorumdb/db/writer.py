"""What runs inside a group-commit batch: item writes, index maintenance, counters, DDL.

Everything here executes on the writer thread, against the one open write transaction, and
reads the table definitions as stored in that transaction (``CatalogView``), never a caller's
copy, so a write always maintains exactly the indexes the committed catalog has — also when
another process changed it.

Isolation: each job writes into a ``Staged`` overlay and ``flush``es it only on success, so a
job that raises leaves the transaction untouched. Counters (ItemCount / size per table and per
index) are summed per batch and written once in ``before_commit``.

Never call into asyncio from here and never commit: the committer owns the transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from quorumdb.db.contract import WriteOp, WriteResult
from quorumdb.db.records import (
    CATALOG_VERSION,
    HEADER_SIZE,
    NEXT_TABLE_ID,
    TABLE_DEF_PREFIX,
    counter_key,
    dumps,
    gc_key,
    index_prefix,
    item_prefix,
    item_size,
    loads,
    make_record,
    next_index_key,
    pack_counter,
    pack_u64,
    record_size,
    table_data_prefix,
    table_def_key,
    unpack_counter,
    unpack_u64,
)
from quorumdb.errors import (
    ConditionalCheckFailedError,
    InternalServerError,
    ResourceInUseError,
    ResourceNotFoundError,
    TransactionCanceledError,
    ValidationError,
)
from quorumdb.model.keys import encode_primary_key, encode_scalar, partition_hash
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import Item
from quorumdb.storage.engine import ReadTxn, WriteTxn, prefix_successor

__all__ = [
    "CatalogView",
    "WriterState",
    "WriteBatch",
    "Staged",
    "index_entry",
    "RESOURCE_NOT_FOUND",
]

RESOURCE_NOT_FOUND = "Requested resource not found"
_COUNTER_PREFIX_LEN = len(counter_key(0, None)) - 6


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CatalogView:
    """The table definitions of one catalog version."""

    version: int
    by_name: dict[str, TableDef]
    by_id: dict[int, TableDef]

    @staticmethod
    def load(txn: ReadTxn) -> CatalogView:
        version = unpack_u64(txn.get(CATALOG_VERSION))
        by_name: dict[str, TableDef] = {}
        for _k, v in txn.iterate(TABLE_DEF_PREFIX, prefix_successor(TABLE_DEF_PREFIX)):
            t = TableDef.from_record(loads(v))
            by_name[t.name] = t
        return CatalogView(version=version, by_name=by_name, by_id={t.table_id: t for t in by_name.values()})


class WriterState:
    """What the writer thread keeps between batches: its cached catalog view."""

    def __init__(self) -> None:
        self.catalog: CatalogView | None = None

    def begin(self, txn: WriteTxn) -> WriteBatch:
        return WriteBatch(self, txn)


class Staged:
    """A job's writes, kept apart from the transaction until ``flush``."""

    __slots__ = ("_batch", "_writes", "_counts")

    def __init__(self, batch: WriteBatch) -> None:
        self._batch = batch
        self._writes: dict[bytes, bytes | None] = {}
        self._counts: dict[bytes, list[int]] = {}

    def get(self, key: bytes) -> bytes | None:
        w = self._writes
        if key in w:
            return w[key]
        return self._batch.txn.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def count(self, key: bytes, items: int, size: int) -> None:
        c = self._counts.get(key)
        if c is None:
            self._counts[key] = [items, size]
        else:
            c[0] += items
            c[1] += size

    def flush(self) -> None:
        txn = self._batch.txn
        for k, v in self._writes.items():
            if v is None:
                txn.delete(k)
            else:
                txn.put(k, v)
        counters = self._batch.counters
        for k, (n, s) in self._counts.items():
            c = counters.get(k)
            if c is None:
                counters[k] = [n, s]
            else:
                c[0] += n
                c[1] += s
        self._writes = {}
        self._counts = {}


class WriteBatch:
    """Per-transaction context handed to every job of a batch."""

    def __init__(self, state: WriterState, txn: WriteTxn) -> None:
        self.state = state
        self.txn = txn
        self.counters: dict[bytes, list[int]] = {}
        cat = state.catalog
        version = unpack_u64(txn.get(CATALOG_VERSION))
        if cat is None or cat.version != version:
            cat = state.catalog = CatalogView.load(txn)
        self.catalog = cat

    # -- committer hooks -----------------------------------------------------------------------

    def before_commit(self) -> None:
        txn = self.txn
        by_id = self.catalog.by_id
        for k, (n, s) in self.counters.items():
            if not (n or s):
                continue
            tid = int.from_bytes(k[_COUNTER_PREFIX_LEN : _COUNTER_PREFIX_LEN + 4], "big")
            slot = int.from_bytes(k[_COUNTER_PREFIX_LEN + 4 :], "big")
            t = by_id.get(tid)
            if t is None or (slot and not any(ix.index_id + 1 == slot for ix in t.indexes)):
                continue  # dropped in this batch: its counters are gone with it
            c, b = unpack_counter(txn.get(k))
            txn.put(k, pack_counter(c + n, b + s))

    def aborted(self) -> None:
        self.state.catalog = None

    def stage(self) -> Staged:
        return Staged(self)

    def catalog_changed(self) -> None:
        """Call after flushing a DDL job: re-read the definitions from the transaction."""
        self.catalog = self.state.catalog = CatalogView.load(self.txn)

    def current_table(self, table: TableDef) -> TableDef:
        t = self.catalog.by_id.get(table.table_id)
        if t is None or t.name != table.name:
            raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
        return t

    # -- item writes ---------------------------------------------------------------------------

    def run_write(self, op: WriteOp) -> WriteResult:
        st = Staged(self)
        result = apply_write(self, st, op)
        st.flush()
        return result

    def run_transaction(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        st = Staged(self)
        results: list[WriteResult] = []
        reasons: list[dict[str, Any]] = []
        failed = False
        for op in ops:
            try:
                results.append(apply_write(self, st, op))
                reasons.append({"Code": "None"})
            except ConditionalCheckFailedError as e:
                failed = True
                reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": e.message}
                if e.item is not None:
                    reason["Item"] = e.item
                reasons.append(reason)
            except ValidationError as e:
                failed = True
                reasons.append({"Code": "ValidationError", "Message": e.message})
        if failed:
            raise TransactionCanceledError(reasons)
        st.flush()
        return results


def _project(table: TableDef, ix: IndexDef, item: Item) -> Item:
    if ix.projection == "ALL":
        return item
    names = list(table.key_schema.names) + list(ix.key_schema.names)
    if ix.projection == "INCLUDE":
        names.extend(ix.non_key_attributes)
    return {n: item[n] for n in names if n in item}


def index_entry(
    table: TableDef, ix: IndexDef, item: Item | None, item_rec: bytes | None
) -> tuple[bytes, bytes, int] | None:
    """(entry key, entry record, entry size) of ``item`` in ``ix``; None if not indexed (sparse)."""
    if item is None:
        return None
    ks = ix.key_schema
    h = ks.hash
    hv = item.get(h.name)
    if hv is None:
        return None
    raw = hv.get(h.type)
    if raw is None:
        return None  # a different type: not indexable (the API layer rejects such writes)
    enc = encode_scalar(h.type, raw)
    key = index_prefix(table.table_id, ix.index_id) + partition_hash(hv) + enc
    r = ks.range
    if r is not None:
        rv = item.get(r.name)
        if rv is None:
            return None
        rraw = rv.get(r.type)
        if rraw is None:
            return None
        key += encode_scalar(r.type, rraw)
    tks = table.key_schema
    key += encode_scalar(tks.hash.type, item[tks.hash.name][tks.hash.type])
    if tks.range is not None:
        key += encode_scalar(tks.range.type, item[tks.range.name][tks.range.type])
    if ix.projection == "ALL" and item_rec is not None:
        return key, item_rec, record_size(item_rec)
    projected = _project(table, ix, item)
    size = item_size(projected)
    return key, make_record(projected, size), size


def apply_write(batch: WriteBatch, st: Staged, op: WriteOp) -> WriteResult:
    t = batch.current_table(op.table)
    kb = item_prefix(t.table_id) + encode_primary_key(t.key_schema, op.key)
    old_rec = st.get(kb)
    old: Item | None
    if old_rec is None:
        old, old_size = None, 0
    else:
        old = loads(memoryview(old_rec)[HEADER_SIZE:])
        old_size = record_size(old_rec)
    new = op.mutate(old)
    if new is old and old_rec is not None:  # unchanged (e.g. a ConditionCheck): write nothing
        return WriteResult(old=old, new=new, old_size=old_size, new_size=old_size, index_writes={} if t.indexes else None)
    if new is None:
        if old_rec is None:
            return WriteResult(old=None, new=None, old_size=0, new_size=0)
        new_rec = None
        new_size = 0
        st.delete(kb)
    else:
        for name, av in op.key.items():
            if new.get(name) != av:
                raise InternalServerError("a mutation changed the item's key")
        new_size = item_size(new)
        new_rec = make_record(new, new_size)
        st.put(kb, new_rec)
    dcount = (new_rec is not None) - (old_rec is not None)
    st.count(counter_key(t.table_id, None), dcount, new_size - old_size)
    index_writes: dict[str, int] | None = None
    if t.indexes:
        index_writes = _maintain_indexes(t, st, old, old_rec, new, new_rec)
    return WriteResult(
        old=old, new=new, old_size=old_size, new_size=new_size, index_writes=index_writes
    )


def _maintain_indexes(
    t: TableDef,
    st: Staged,
    old: Item | None,
    old_rec: bytes | None,
    new: Item | None,
    new_rec: bytes | None,
) -> dict[str, int]:
    out: dict[str, int] = {}
    for ix in t.indexes:
        oe = index_entry(t, ix, old, old_rec)
        ne = index_entry(t, ix, new, new_rec)
        if oe is None and ne is None:
            continue
        if oe is not None and ne is not None and oe[0] == ne[0] and oe[1] == ne[1]:
            continue
        ckey = counter_key(t.table_id, ix.index_id)
        touched = 0
        if oe is not None and ix.backfilling and st.get(oe[0]) is None:
            oe = None  # not backfilled yet: nothing to remove
        if oe is not None:
            touched += oe[2]
            if ne is None or ne[0] != oe[0]:
                st.delete(oe[0])
            st.count(ckey, -1, -oe[2])
        if ne is not None:
            touched += ne[2]
            st.put(ne[0], ne[1])
            st.count(ckey, 1, ne[2])
        out[ix.name] = touched
    return out


# -- background jobs (each call is one job of one batch) ----------------------------------------

BACKFILL_CHUNK = 256
GC_CHUNK = 1024


def backfill_chunk(
    batch: WriteBatch, table_id: int, index_name: str, after: bytes | None, limit: int = BACKFILL_CHUNK
) -> tuple[bool, bytes | None]:
    """Index up to ``limit`` items after ``after``. Returns (finished, last item key)."""
    t = batch.catalog.by_id.get(table_id)
    ix = None if t is None else t.index(index_name)
    if t is None or ix is None or not ix.backfilling:
        return True, after
    lo = item_prefix(table_id)
    hi = prefix_successor(lo)
    chunk: list[tuple[bytes, bytes]] = []
    it: Iterator[tuple[bytes, bytes]]
    if after is None:
        it = batch.txn.iterate(lo, hi)
    else:
        it = batch.txn.iterate(after, hi, lo_inclusive=False)
    for kv in it:
        chunk.append(kv)
        if len(chunk) >= limit:
            break
    st = Staged(batch)
    ckey = counter_key(table_id, ix.index_id)
    for _k, rec in chunk:
        item: Item = loads(memoryview(rec)[HEADER_SIZE:])
        e = index_entry(t, ix, item, rec)
        if e is not None and st.get(e[0]) is None:
            st.put(e[0], e[1])
            st.count(ckey, 1, e[2])
    st.flush()
    if len(chunk) < limit:
        return True, None
    return False, chunk[-1][0]


def finish_backfill(batch: WriteBatch, table_id: int, index_name: str) -> TableDef | None:
    t = batch.catalog.by_id.get(table_id)
    ix = None if t is None else t.index(index_name)
    if t is None or ix is None or not ix.backfilling:
        return t
    done = dataclasses.replace(ix, status="ACTIVE", backfilling=False)
    new = dataclasses.replace(
        t,
        indexes=tuple(done if i.name == index_name else i for i in t.indexes),
        version=t.version + 1,
    )
    _put_table(batch, new)
    return new


def gc_chunk(batch: WriteBatch, data_prefix: bytes, limit: int = GC_CHUNK) -> bool:
    """Delete up to ``limit`` keys under ``data_prefix``; True once nothing is left."""
    keys = []
    for k, _v in batch.txn.iterate(data_prefix, prefix_successor(data_prefix)):
        keys.append(k)
        if len(keys) >= limit:
            break
    for k in keys:
        batch.txn.delete(k)
    if len(keys) < limit:
        batch.txn.delete(gc_key(data_prefix))
        return True
    return False


def _put_table(batch: WriteBatch, t: TableDef, *, delete: bool = False) -> None:
    txn = batch.txn
    if delete:
        txn.delete(table_def_key(t.name))
    else:
        txn.put(table_def_key(t.name), dumps(t.to_record()))
    txn.put(CATALOG_VERSION, pack_u64(unpack_u64(txn.get(CATALOG_VERSION)) + 1))
    batch.catalog_changed()


def create_table(batch: WriteBatch, table: TableDef) -> TableDef:
    if table.name in batch.catalog.by_name:
        raise ResourceInUseError(f"Table already exists: {table.name}")
    txn = batch.txn
    tid = unpack_u64(txn.get(NEXT_TABLE_ID)) + 1
    txn.put(NEXT_TABLE_ID, pack_u64(tid))
    # A new table has no items: its indexes need no backfill.
    indexes = tuple(
        dataclasses.replace(ix, index_id=i, backfilling=False) for i, ix in enumerate(table.indexes)
    )
    txn.put(next_index_key(tid), pack_u64(len(indexes)))
    new = dataclasses.replace(table, table_id=tid, indexes=indexes)
    # Leftovers of an earlier process that crashed mid-create cannot exist: ids are never reused.
    _put_table(batch, new)
    return new


def update_table(batch: WriteBatch, table: TableDef) -> tuple[TableDef, list[bytes]]:
    """Store ``table`` in place of the current definition; returns it and data prefixes to drop."""
    cur = batch.catalog.by_name.get(table.name)
    if cur is None:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    txn = batch.txn
    old_ix = {ix.name: ix for ix in cur.indexes}
    next_id = max(unpack_u64(txn.get(next_index_key(cur.table_id))), 1 + max((ix.index_id for ix in cur.indexes), default=-1))
    indexes: list[IndexDef] = []
    for ix in table.indexes:
        if ix.status == "DELETING":
            continue  # dropped at once: its entries are deleted in the background
        prev = old_ix.get(ix.name)
        if prev is None:
            ix = dataclasses.replace(ix, index_id=next_id, status="CREATING", backfilling=True)
            next_id += 1
        elif prev.backfilling:
            # The data plane owns the backfill state; a caller's copy may be older.
            ix = dataclasses.replace(ix, index_id=prev.index_id, status=prev.status, backfilling=True)
        else:
            status = prev.status if ix.status == "CREATING" else ix.status
            ix = dataclasses.replace(ix, index_id=prev.index_id, status=status, backfilling=False)
        indexes.append(ix)
    kept = {ix.name for ix in indexes}
    dropped: list[bytes] = []
    for name, ix in old_ix.items():
        if name not in kept:
            prefix = index_prefix(cur.table_id, ix.index_id)
            dropped.append(prefix)
            txn.put(gc_key(prefix), b"")
            txn.delete(counter_key(cur.table_id, ix.index_id))
    txn.put(next_index_key(cur.table_id), pack_u64(next_id))
    new = dataclasses.replace(table, table_id=cur.table_id, indexes=tuple(indexes), version=cur.version + 1)
    _put_table(batch, new)
    return new, dropped


def delete_table(batch: WriteBatch, name: str) -> tuple[TableDef, bytes]:
    cur = batch.catalog.by_name.get(name)
    if cur is None:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    txn = batch.txn
    prefix = table_data_prefix(cur.table_id)
    txn.put(gc_key(prefix), b"")
    txn.delete(counter_key(cur.table_id, None))
    for ix in cur.indexes:
        txn.delete(counter_key(cur.table_id, ix.index_id))
    txn.delete(next_index_key(cur.table_id))
    _put_table(batch, cur, delete=True)
    return dataclasses.replace(cur, status="DELETING"), prefix


JobFn = Callable[[WriteBatch], Any]
