"""What runs inside a group-commit batch: item writes, index maintenance, counters, DDL.

Everything here executes inside a group-commit batch (on the loop thread), against the one
open write transaction, and reads the table definitions as stored in that transaction
(``CatalogView``), never a caller's copy, so a write always maintains exactly the indexes the
committed catalog has — also when another process changed it.

Isolation: each job writes into a ``Staged`` overlay and ``flush``es it only on success, so a
job that raises leaves the transaction untouched. Counters (ItemCount / size per table and per
index) are summed per batch and written once in ``before_commit``.

Item collections (tables with a local secondary index): every write adjusts, in the same
transaction, the collection's size counter (the items' sizes plus their LSI entries' sizes, each
LSI entry counted with DynamoDB's 100-byte overhead) and a write that would grow a collection
past ``WriterState.collection_limit`` raises ItemCollectionSizeLimitExceededError.

ClientRequestToken records are read and written here, inside the transaction that applies the
TransactWriteItems, so the check-and-record is atomic across every process sharing the store.

Stream records (tables with an enabled stream, ``db.streams``) are staged by ``apply_write``
with the item, so an item and its change record commit together or not at all; the DDL jobs
open and close streams in the transaction that changes the StreamSpecification.

Point-in-time recovery (tables with ``pitr_since`` set, ``db.undo``): ``apply_write`` also
stages the item's undo record (its state before the change) with the change; the batch's undo
timestamp and sequence counter are saved in ``before_commit``.

Never call into asyncio from here and never commit: the committer owns the transaction.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from quorumdb.db import streams
from quorumdb.db.contract import TableChangedError, WriteOp, WriteResult
from quorumdb.db.records import (
    CATALOG_VERSION,
    HEADER_SIZE,
    NEXT_TABLE_ID,
    TABLE_DEF_PREFIX,
    TOKEN_AT_PREFIX,
    TTL_LAST_PASS,
    backfill_lease_key,
    collection_prefix,
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
    pack_i64,
    pack_u64,
    record_size,
    table_data_prefix,
    table_def_key,
    token_at_key,
    token_key,
    undo_prefix,
    unpack_counter,
    unpack_i64,
    unpack_u64,
)
from quorumdb.db.undo import UndoClock, record_undo
from quorumdb.errors import (
    ConditionalCheckFailedError,
    DuplicateItemError,
    IdempotentParameterMismatchError,
    InternalServerError,
    ItemCollectionSizeLimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
    TransactionCanceledError,
    TransactionConflictError,
    ValidationError,
)
from quorumdb.model.keys import (
    encode_partition,
    encode_primary_key,
    encode_scalar,
    key_value_allowed,
    partition_hash,
)
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import Item, Key
from quorumdb.storage.engine import ReadTxn, StorageFullError, WriteTxn, prefix_successor

__all__ = [
    "CatalogView",
    "WriterState",
    "WriteBatch",
    "Staged",
    "index_entry",
    "RESOURCE_NOT_FOUND",
    "COLLECTION_LIMIT_BYTES",
    "COLLECTION_TOO_BIG",
    "TOKEN_WINDOW_S",
    "LSI_ENTRY_OVERHEAD",
    "BACKFILL_LEASE_S",
    "purge_tokens",
    "purge_streams",
    "claim_ttl_pass",
    "GlobalIndexSink",
]

RESOURCE_NOT_FOUND = "Requested resource not found"
COLLECTION_LIMIT_BYTES = 10 * 1024**3  # DynamoDB's item collection limit: 10 GB
COLLECTION_TOO_BIG = "Collection size exceeded."  # the message DynamoDB sends
LSI_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds per local secondary index entry
TOKEN_WINDOW_S = 600.0  # ClientRequestToken idempotency window
TOKEN_PURGE_CHUNK = 1024
_TOKEN_MISMATCH = "The request uses the same client token as a previous, but non-identical request."
_COUNTER_PREFIX_LEN = len(counter_key(0, None)) - 6


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CatalogView:
    """The table definitions of one catalog version."""

    version: int
    by_name: dict[str, TableDef]
    by_id: dict[int, TableDef]
    with_lsi: frozenset[int] = frozenset()  # ids of the tables that have a local secondary index

    @staticmethod
    def load(txn: ReadTxn) -> CatalogView:
        version = unpack_u64(txn.get(CATALOG_VERSION))
        by_name: dict[str, TableDef] = {}
        for _k, v in txn.iterate(TABLE_DEF_PREFIX, prefix_successor(TABLE_DEF_PREFIX)):
            t = TableDef.from_record(loads(v))
            by_name[t.name] = t
        return CatalogView(
            version=version,
            by_name=by_name,
            by_id={t.table_id: t for t in by_name.values()},
            with_lsi=frozenset(t.table_id for t in by_name.values() if _has_lsi(t)),
        )


# (staged writes, table, old item, old record, new item, new record) -> entry bytes per GSI name
GlobalIndexSink = Callable[["Staged", TableDef, Item | None, bytes | None, Item | None, bytes | None], dict[str, int]]


class WriterState:
    """What the writer keeps between batches (its cached catalog view) and its settings."""

    def __init__(
        self,
        *,
        collection_limit: int = COLLECTION_LIMIT_BYTES,
        clock: Callable[[], float] | None = None,
        token_window_s: float = TOKEN_WINDOW_S,
        stream_settings: streams.StreamSettings | None = None,
        global_index_sink: GlobalIndexSink | None = None,
    ) -> None:
        self.catalog: CatalogView | None = None
        # None: global secondary index entries are written here, with their item (a single
        # node). Set (a cluster's base partition): GSI entries live elsewhere; each item write
        # hands its change to the sink instead (``db.gsi.stage_changes``).
        self.global_index_sink = global_index_sink
        self.collection_limit = collection_limit
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.token_window_s = token_window_s
        self.streams = stream_settings if stream_settings is not None else streams.StreamSettings()
        # Cluster transactions (``cluster.txnstate``): ``item_guard(st, item_key)`` runs before
        # every item write and may refuse it (an item a prepared transaction holds raises
        # TransactionConflictError); ``item_written(st, item_key)`` runs, staged with it, after
        # every write that changes an item. None on a single node.
        self.item_guard: Callable[[Staged, bytes], None] | None = None
        self.item_written: Callable[[Staged, bytes], None] | None = None

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
        self.undo: UndoClock | None = None  # set by the first PITR undo record of the batch
        cat = state.catalog
        version = unpack_u64(txn.get(CATALOG_VERSION))
        if cat is None or cat.version != version:
            cat = state.catalog = CatalogView.load(txn)
        self.catalog = cat

    # -- committer hooks -----------------------------------------------------------------------

    def before_commit(self) -> None:
        txn = self.txn
        if self.undo is not None:
            self.undo.save(txn)
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

    def run_writes(self, ops: Sequence[WriteOp]) -> list[WriteResult | BaseException]:
        """Each op as if it were its own job: one that raises writes nothing, the others do."""
        out: list[WriteResult | BaseException] = []
        for op in ops:
            try:
                out.append(self.run_write(op))
            except StorageFullError:
                raise  # the committer grows the store and reruns the whole batch
            except Exception as e:
                out.append(e)
        return out

    def run_transaction(
        self, ops: Sequence[WriteOp], token: str | None = None, fingerprint: bytes = b""
    ) -> list[WriteResult]:
        st = Staged(self)
        stale: dict[str, Any] | None = None
        if token is not None:
            earlier = self._token_record(st, token)
            if earlier is not None:
                if self.state.clock() - float(earlier.get("at", 0.0)) >= self.state.token_window_s:
                    stale = earlier  # expired: the request runs again and replaces the record
                elif earlier.get("fp") != fingerprint.hex():
                    raise IdempotentParameterMismatchError(_TOKEN_MISMATCH)
                else:
                    return self._replay(st, ops, earlier)
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
            except DuplicateItemError as e:  # a PartiQL INSERT in ExecuteTransaction
                failed = True
                reasons.append({"Code": "DuplicateItem", "Message": e.message})
            except ItemCollectionSizeLimitExceededError as e:
                failed = True
                reasons.append({"Code": "ItemCollectionSizeLimitExceeded", "Message": e.message})
            except TransactionConflictError as e:  # the item is held by a prepared transaction
                failed = True
                reasons.append({"Code": "TransactionConflict", "Message": e.message})
        if failed:
            raise TransactionCanceledError(reasons)
        # Several actions may share a collection: report each one's size after the whole transaction.
        results = [
            r if r.collection_size is None
            else dataclasses.replace(r, collection_size=_collection_size(st, _collection_key(op.table, op.key)))
            for op, r in zip(ops, results, strict=True)
        ]
        if token is not None:
            if stale is not None:
                st.delete(token_at_key(float(stale.get("at", 0.0)), token))
            at = self.state.clock()
            record = {"fp": fingerprint.hex(), "at": at, "sizes": [r.new_size for r in results]}
            st.put(token_key(token), dumps(record))
            st.put(token_at_key(at, token), b"")
        st.flush()
        return results

    def _token_record(self, st: Staged, token: str) -> dict[str, Any] | None:
        raw = st.get(token_key(token))
        if raw is None:
            return None
        rec: dict[str, Any] = loads(raw)
        return rec

    def _replay(self, st: Staged, ops: Sequence[WriteOp], rec: dict[str, Any]) -> list[WriteResult]:
        sizes: list[int] = list(rec.get("sizes", ()))
        out: list[WriteResult] = []
        for i, op in enumerate(ops):
            t = self.catalog.by_id.get(op.table.table_id)
            size = None
            if t is not None and _has_lsi(t):
                size = _collection_size(st, _collection_key(t, op.key))
            out.append(
                WriteResult(
                    old=None,
                    new=None,
                    old_size=0,
                    new_size=sizes[i] if i < len(sizes) else 0,
                    collection_size=size,
                    replayed=True,
                )
            )
        return out


def purge_tokens(batch: WriteBatch, limit: int = TOKEN_PURGE_CHUNK) -> int:
    """Delete up to ``limit`` token records older than the idempotency window (oldest first,
    reading only those); returns how many."""
    state = batch.state
    cutoff = token_at_key(state.clock() - state.token_window_s, "")
    txn = batch.txn
    stale: list[bytes] = []
    for k, _v in txn.iterate(TOKEN_AT_PREFIX, cutoff):
        stale.append(k)
        if len(stale) >= limit:
            break
    n = len(TOKEN_AT_PREFIX) + 8
    for k in stale:
        txn.delete(k)
        token = k[n:].decode("utf-8")
        raw = txn.get(token_key(token))
        if raw is not None and token_at_key(float(loads(raw).get("at", 0.0)), token) == k:
            txn.delete(token_key(token))
    return len(stale)


def purge_streams(batch: WriteBatch, limit: int = streams.PURGE_CHUNK) -> int:
    """Trim up to ``limit`` stream records older than the retention; returns how many."""
    state = batch.state
    return streams.purge(batch.txn, state.clock(), state.streams.retention_s, limit)


def claim_ttl_pass(batch: WriteBatch, owner: str, interval_s: float) -> bool:
    """Whether this data plane should run the periodic TTL pass now: True (and recorded) unless
    another process started one less than ``interval_s`` ago, so that processes sharing a store
    do not all scan every table on every tick."""
    now = batch.state.clock()
    raw = batch.txn.get(TTL_LAST_PASS)
    if raw is not None:
        last = loads(raw)
        if last.get("owner") != owner and now - float(last.get("at", 0.0)) < interval_s * 0.9:
            return False
    batch.txn.put(TTL_LAST_PASS, dumps({"owner": owner, "at": now}))
    return True


def _has_lsi(t: TableDef) -> bool:
    return any(ix.local for ix in t.indexes)


def _collection_key(t: TableDef, key: Key) -> bytes:
    h = t.key_schema.hash
    return collection_prefix(t.table_id) + encode_scalar(h.type, key[h.name][h.type])


def _collection_size(st: Staged, ckey: bytes) -> int:
    return unpack_i64(st.get(ckey))


def _project(table: TableDef, ix: IndexDef, item: Item) -> Item:
    if ix.projection == "ALL":
        return item
    names = list(table.key_schema.names) + list(ix.key_schema.names)
    if ix.projection == "INCLUDE":
        names.extend(ix.non_key_attributes)
    return {n: item[n] for n in names if n in item}


def _multi_attribute_entry_key(table: TableDef, ix: IndexDef, item: Item) -> bytes | None:
    """The start of ``item``'s entry key in a multi-attribute index (before the table key);
    None unless the item has every key attribute of the index, each a valid key value of its
    declared type."""
    ks = ix.key_schema
    hashes = ks.hash_attrs
    for a in ks.attrs:
        av = item.get(a.name)
        raw = None if av is None else av.get(a.type)
        if raw is None or not key_value_allowed(a.type, raw, is_hash=a in hashes):
            return None
    key = index_prefix(table.table_id, ix.index_id) + encode_partition(ks.hash_attrs, [item[a.name] for a in ks.hash_attrs])
    for a in ks.range_attrs:
        key += encode_scalar(a.type, item[a.name][a.type])
    return key


def index_entry(
    table: TableDef, ix: IndexDef, item: Item | None, item_rec: bytes | None
) -> tuple[bytes, bytes, int] | None:
    """(entry key, entry record, entry size) of ``item`` in ``ix``; None if not indexed: a key
    attribute is missing (sparse), or has a value that cannot be a key (another type, an empty
    string or binary, over the key size limit). The API refuses writes of such values, but an
    index added later finds them in older items, and DynamoDB's backfill skips those items."""
    if item is None:
        return None
    ks = ix.key_schema
    if ks.multi_attribute:
        key = _multi_attribute_entry_key(table, ix, item)
        if key is None:
            return None
    else:
        h = ks.hash
        hv = item.get(h.name)
        if hv is None:
            return None
        raw = hv.get(h.type)
        if raw is None or not key_value_allowed(h.type, raw, is_hash=True):
            return None
        enc = encode_scalar(h.type, raw)
        key = index_prefix(table.table_id, ix.index_id) + partition_hash(hv) + enc
        r = ks.range
        if r is not None:
            rv = item.get(r.name)
            if rv is None:
                return None
            rraw = rv.get(r.type)
            if rraw is None or not key_value_allowed(r.type, rraw, is_hash=False):
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
    guard = batch.state.item_guard
    if guard is not None:
        guard(st, kb)
    old_rec = st.get(kb)
    old: Item | None
    if old_rec is None:
        old, old_size = None, 0
    else:
        old = loads(memoryview(old_rec)[HEADER_SIZE:])
        old_size = record_size(old_rec)
    new = op.mutate(old)
    ckey = _collection_key(t, op.key) if t.table_id in batch.catalog.with_lsi else None
    if new is old and old_rec is not None:  # unchanged (e.g. a ConditionCheck): write nothing
        return WriteResult(
            old=old, new=new, old_size=old_size, new_size=old_size,
            index_writes={} if t.indexes else None,
            collection_size=None if ckey is None else _collection_size(st, ckey),
        )
    if new is None:
        if old_rec is None:
            return WriteResult(
                old=None, new=None, old_size=0, new_size=0,
                collection_size=None if ckey is None else _collection_size(st, ckey),
            )
        new_rec = None
        new_size = 0
    else:
        for name, av in op.key.items():
            if new.get(name) != av:
                raise InternalServerError("a mutation changed the item's key")
        new_size = item_size(new)
        new_rec = make_record(new, new_size)
    sink = batch.state.global_index_sink
    changes = _index_changes(t, st, old, old_rec, new, new_rec, sink is None) if t.indexes else None
    collection: int | None = None
    if ckey is not None:
        # Everything is computed before anything is staged: a refused write stages nothing.
        delta = new_size - old_size
        if changes:
            for ix, oe, ne in changes:
                if ix.local:
                    delta += (0 if ne is None else ne[2] + LSI_ENTRY_OVERHEAD) - (
                        0 if oe is None else oe[2] + LSI_ENTRY_OVERHEAD
                    )
        collection = _collection_size(st, ckey) + delta
        if delta > 0 and collection > batch.state.collection_limit:
            raise ItemCollectionSizeLimitExceededError(COLLECTION_TOO_BIG)
        if delta:
            if collection:
                st.put(ckey, pack_i64(collection))
            else:
                st.delete(ckey)
    if t.pitr_since is not None:
        record_undo(batch, st, t.table_id, kb, old_rec)
    if t.stream_spec is not None:
        state = batch.state
        streams.capture(
            st, t, op.key, old, new, state.clock(), state.streams, op.ttl_expiry, (old_size, new_size)
        )
    if new_rec is None:
        st.delete(kb)
    else:
        st.put(kb, new_rec)
    written = batch.state.item_written
    if written is not None:
        written(st, kb)
    dcount = (new_rec is not None) - (old_rec is not None)
    st.count(counter_key(t.table_id, None), dcount, new_size - old_size)
    index_writes = None if changes is None else _apply_index_changes(t, st, changes)
    if sink is not None and changes is not None:
        index_writes = {**(index_writes or {}), **sink(st, t, old, old_rec, new, new_rec)}
    return WriteResult(
        old=old,
        new=new,
        old_size=old_size,
        new_size=new_size,
        index_writes=index_writes,
        collection_size=collection,
    )


_Entry = tuple[bytes, bytes, int]


def _index_changes(
    t: TableDef,
    st: Staged,
    old: Item | None,
    old_rec: bytes | None,
    new: Item | None,
    new_rec: bytes | None,
    with_global: bool = True,
) -> list[tuple[IndexDef, _Entry | None, _Entry | None]]:
    """Per index whose entry changes: (index, entry to remove, entry to write); only the local
    indexes unless ``with_global``."""
    out: list[tuple[IndexDef, _Entry | None, _Entry | None]] = []
    for ix in t.indexes:
        if not (with_global or ix.local):
            continue
        oe = index_entry(t, ix, old, old_rec)
        ne = index_entry(t, ix, new, new_rec)
        if oe is None and ne is None:
            continue
        if oe is not None and ne is not None and oe[0] == ne[0] and oe[1] == ne[1]:
            continue
        if oe is not None and ix.backfilling and st.get(oe[0]) is None:
            oe = None  # not backfilled yet: nothing to remove
        out.append((ix, oe, ne))
    return out


def _apply_index_changes(
    t: TableDef, st: Staged, changes: list[tuple[IndexDef, _Entry | None, _Entry | None]]
) -> dict[str, int]:
    out: dict[str, int] = {}
    for ix, oe, ne in changes:
        ckey = counter_key(t.table_id, ix.index_id)
        touched = 0
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


BACKFILL_LEASE_S = 30.0


def backfill_chunk(
    batch: WriteBatch,
    table_id: int,
    index_name: str,
    after: bytes | None,
    limit: int = BACKFILL_CHUNK,
    owner: str = "",
    lease_s: float = BACKFILL_LEASE_S,
) -> tuple[str, bytes | None]:
    """Index up to ``limit`` items after ``after``. Returns (state, last item key): state is
    ``"more"``, ``"done"`` (call ``finish_backfill``) or ``"busy"``: another data plane (another
    process) holds the backfill's lease, renewed by each of its chunks, the lease is not older
    than ``lease_s`` and the holder's process is alive; then this call does nothing. Any holder may resume from its own ``after``:
    items before it are indexed, and writers maintain the entries of every item they write."""
    t = batch.catalog.by_id.get(table_id)
    ix = None if t is None else t.index(index_name)
    if t is None or ix is None or not ix.backfilling:
        return "done", after
    if owner:
        lk = backfill_lease_key(table_id, ix.index_id)
        raw = batch.txn.get(lk)
        now = batch.state.clock()
        if raw is not None:
            lease = loads(raw)
            holder = str(lease.get("owner", ""))
            if holder != owner and now - float(lease.get("at", 0.0)) < lease_s and _owner_alive(holder):
                return "busy", after
        batch.txn.put(lk, dumps({"owner": owner, "at": now}))
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
        return "done", None
    return "more", chunk[-1][0]


def _owner_alive(owner: str) -> bool:
    """Whether a lease holder's process (``<pid>:<id>``; processes sharing an LMDB directory
    share the host) still runs. Unknown forms count as alive."""
    pid_text, sep, _rest = owner.partition(":")
    if not sep or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def finish_backfill(batch: WriteBatch, table_id: int, index_name: str) -> TableDef | None:
    t = batch.catalog.by_id.get(table_id)
    ix = None if t is None else t.index(index_name)
    if t is None or ix is None or not ix.backfilling:
        return t
    batch.txn.delete(backfill_lease_key(table_id, ix.index_id))
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
    new = dataclasses.replace(table, table_id=tid, indexes=indexes, stream_label=None)
    if new.stream_spec is not None:
        label = streams.enable(txn, new, new.stream_spec["StreamViewType"], batch.state.clock())
        new = dataclasses.replace(new, stream_label=label)
    # Leftovers of an earlier process that crashed mid-create cannot exist: ids are never reused.
    _put_table(batch, new)
    return new


def update_table(batch: WriteBatch, table: TableDef) -> tuple[TableDef, list[bytes]]:
    """Store ``table`` in place of the current definition, if that is still the version
    ``table`` was made from (compare-and-swap: a stale copy must not undo a change made
    meanwhile, e.g. by another process); returns it and data prefixes to drop."""
    cur = batch.catalog.by_name.get(table.name)
    if cur is None or cur.table_id != table.table_id:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    if cur.version != table.version:
        raise TableChangedError(table.name)
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
            txn.delete(backfill_lease_key(cur.table_id, ix.index_id))
    txn.put(next_index_key(cur.table_id), pack_u64(next_id))
    label = cur.stream_label  # the data plane owns the stream state; a caller's copy may be older
    if cur.stream_spec is not None and table.stream_spec is None:
        streams.disable(txn, cur.table_id, batch.state.clock())
    elif cur.stream_spec is None and table.stream_spec is not None:
        label = streams.enable(txn, cur, table.stream_spec["StreamViewType"], batch.state.clock())
    new = dataclasses.replace(
        table, table_id=cur.table_id, indexes=tuple(indexes), stream_label=label, version=cur.version + 1
    )
    _put_table(batch, new)
    return new, dropped


def delete_table(batch: WriteBatch, name: str) -> tuple[TableDef, list[bytes]]:
    """Remove the definition; returns it and the prefixes whose keys are deleted in the background."""
    cur = batch.catalog.by_name.get(name)
    if cur is None:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    txn = batch.txn
    prefixes = [table_data_prefix(cur.table_id), undo_prefix(cur.table_id)]
    if _has_lsi(cur):
        prefixes.append(collection_prefix(cur.table_id))
    for prefix in prefixes:
        txn.put(gc_key(prefix), b"")
    txn.delete(counter_key(cur.table_id, None))
    for ix in cur.indexes:
        txn.delete(counter_key(cur.table_id, ix.index_id))
        txn.delete(backfill_lease_key(cur.table_id, ix.index_id))
    txn.delete(next_index_key(cur.table_id))
    streams.disable(txn, cur.table_id, batch.state.clock(), table_deleted=True)
    _put_table(batch, cur, delete=True)
    return dataclasses.replace(cur, status="DELETING"), prefixes


JobFn = Callable[[WriteBatch], Any]
