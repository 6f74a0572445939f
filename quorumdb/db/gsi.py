"""Global secondary indexes in the cluster: the change outbox of base partitions and its
idempotent application on index partitions. Pure functions over a write batch or an engine.

In the cluster a GSI is partitioned by its own key and replicated like a table (its own
partition groups). A base partition never writes index entries: every write that changes an
item's entry in some GSI stages, in the same command as the item (so in the same commit), one
*change record* in the partition's outbox, numbered by the partition's change counter. The
leader ships the committed outbox to the index partitions and then trims it; the trim point is
the propagation *cursor*, replicated with the partition like everything else, so a new leader
resumes from it. Changes are delivered at least once; an index partition applies them
idempotently by version: it keeps, per base partition, the highest change number it applied
(its *high-water mark*) and skips anything at or below it, so a replay (a batch resent after a
leader change, a duplicate RPC, a deposed leader still sending) changes nothing.

Why a high-water mark is enough: a base partition's changes carry strictly increasing numbers
in commit order and the outbox holds committed changes only, so two senders of the same
numbers send the same changes. A sender delivers to one index partition in number order and
starts from the cursor (every change at or below it was applied by every index partition) or
from what that index partition acknowledged; so when an index partition applies a batch ending
at ``hi``, it holds every change of that base partition for it up to ``hi``.

Backfill (UpdateTable Create on a table with items): the base leader walks its items in key
order, a chunk per command, staging a change that puts each item's current entry (a *re-emit*);
writes meanwhile stage their own changes. Both go through the one serialized command stream of
the partition, so the entry an item ends with is that of its latest state. The backfill state
(``after`` the last key walked, then ``done`` at a change number) is replicated too: a new
leader continues the walk. An index has caught up with a base partition once that partition's
walk is done and its cursor has passed the walk's last change.

Key spaces (system space of a partition's own store, next to ``db.records``'):

- base partitions: ``gsi/seq`` (u64, the last change number given out), ``gsi/cursor`` (u64,
  every change up to it was delivered and trimmed), ``gsi/out/<seq u64>`` (a change record,
  msgpack: ``{"c": [[index_id, old entry key | nil, new entry key | nil, entry record | nil],
  ...], "n": item record | nil}``; an entry record left nil for a new entry key is ``n``, the
  item itself, as an ALL projection stores it), ``gsi/bf/<index_id u16>`` (msgpack
  ``{"after": last item key}`` or ``{"done": change number}``);
- index partitions: ``gsi/hwm/<base group id>`` (u64, the high-water mark) and the entries
  under ``records.index_prefix(table_id, index_id)``, laid out as on a single node, with their
  ``count/`` counter (ItemCount and IndexSizeBytes of the partition's share of the index).

Never import asyncio or the cluster here: the cluster data plane drives these jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgpack

from quorumdb.db.records import (
    HEADER_SIZE,
    counter_key,
    index_prefix,
    item_prefix,
    loads,
    pack_u64,
    record_size,
    unpack_u64,
)
from quorumdb.db.writer import Staged, WriteBatch, index_entry
from quorumdb.errors import ProvisionedThroughputExceededError
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import Item
from quorumdb.storage.engine import Engine, ReadTxn, prefix_successor

__all__ = [
    "SEQ_KEY",
    "CURSOR_KEY",
    "OUT_PREFIX",
    "Change",
    "stage_changes",
    "read_outbox",
    "outbox_state",
    "plan_delivery",
    "entry_hash",
    "apply_changes",
    "high_water_mark",
    "trim",
    "backfill_chunk",
    "backfill_state",
    "caught_up",
    "BACKFILL_ITEMS",
    "WINDOW_BYTES",
    "OUTBOX_RECORDS_MAX",
    "INDEX_BACKLOG",
]

SEQ_KEY = b"\x00gsi/seq"
CURSOR_KEY = b"\x00gsi/cursor"
OUT_PREFIX = b"\x00gsi/out/"
_BACKFILL_PREFIX = b"\x00gsi/bf/"
_HWM_PREFIX = b"\x00gsi/hwm/"
_INDEX_PREFIX_LEN = len(index_prefix(0, 0))
_HASH_LEN = 8

BACKFILL_ITEMS = 256  # items walked per backfill command
BACKFILL_BYTES = 1024 * 1024  # and at most about this much of their entries
WINDOW_RECORDS = 512  # change records shipped per delivery round
WINDOW_BYTES = 1024 * 1024  # and at most about this many bytes of them
# Undelivered change records a base partition keeps at most: past it, writes that would add one
# are throttled, as DynamoDB throttles a table whose global index cannot keep up.
OUTBOX_RECORDS_MAX = 100_000
INDEX_BACKLOG = (
    "The level of configured provisioned throughput for one or more global secondary indexes of the "
    "table was exceeded. Consider increasing your provisioning level for the under-provisioned global "
    "secondary indexes with the UpdateTable API"
)

# One change to deliver to one index partition: [change number, index id, entry key to remove
# or None, entry key to write or None, its record or None].
Change = list[Any]


def _out_key(seq: int) -> bytes:
    return OUT_PREFIX + pack_u64(seq)


def _backfill_key(index_id: int) -> bytes:
    return _BACKFILL_PREFIX + index_id.to_bytes(2, "big")


def _hwm_key(source: str) -> bytes:
    return _HWM_PREFIX + source.encode("utf-8")


def _next_seq(st: Staged | Any) -> int:
    seq = unpack_u64(st.get(SEQ_KEY)) + 1
    st.put(SEQ_KEY, pack_u64(seq))
    return seq


# -- base partitions: staging changes ----------------------------------------------------------


def stage_changes(
    st: Staged, t: TableDef, old: Item | None, old_rec: bytes | None, new: Item | None, new_rec: bytes | None
) -> dict[str, int]:
    """``WriterState.global_index_sink`` of a base partition: stage the change record of one item
    write (nothing if no GSI entry changes). Returns the bytes of index entries removed and
    written per GSI name, as the single node counts them for ConsumedCapacity."""
    changes: list[list[Any]] = []
    touched: dict[str, int] = {}
    whole = False
    for ix in t.indexes:
        if ix.local:
            continue
        oe = index_entry(t, ix, old, old_rec)
        ne = index_entry(t, ix, new, new_rec)
        if oe is None and ne is None:
            continue
        if oe is not None and ne is not None and oe[0] == ne[0] and oe[1] == ne[1]:
            continue
        touched[ix.name] = (0 if oe is None else oe[2]) + (0 if ne is None else ne[2])
        rec = None
        if ne is not None:
            if ne[1] is new_rec:
                whole = True  # ALL projection: the entry is the item's record, stored once
            else:
                rec = ne[1]
        changes.append([ix.index_id, None if oe is None else oe[0], None if ne is None else ne[0], rec])
    if changes:
        seq = _next_seq(st)
        if seq - unpack_u64(st.get(CURSOR_KEY)) > OUTBOX_RECORDS_MAX:
            raise ProvisionedThroughputExceededError(INDEX_BACKLOG)  # nothing of the write is staged
        st.put(_out_key(seq), msgpack.packb({"c": changes, "n": new_rec if whole else None}))
    return touched


# -- base partitions: reading and trimming the outbox ---------------------------------------


def outbox_state(engine: Engine | ReadTxn) -> tuple[int, int]:
    """(cursor, last change number) of a base partition's applied state: changes in
    (cursor, last] are waiting for delivery."""
    return unpack_u64(engine.get(CURSOR_KEY)), unpack_u64(engine.get(SEQ_KEY))


def read_outbox(
    engine: Engine, after: int, *, records_max: int = WINDOW_RECORDS, bytes_max: int = WINDOW_BYTES
) -> list[tuple[int, dict[str, Any]]]:
    """The committed change records numbered above ``after``, in order: at most ``records_max``,
    stopping after the record that reaches ``bytes_max``."""
    out: list[tuple[int, dict[str, Any]]] = []
    size = 0
    with engine.snapshot() as snap:
        for k, v in snap.iterate(_out_key(after), prefix_successor(OUT_PREFIX), lo_inclusive=False):
            out.append((unpack_u64(k[len(OUT_PREFIX):]), msgpack.unpackb(v)))
            size += len(v)
            if len(out) >= records_max or size >= bytes_max:
                break
    return out


def entry_hash(entry_key: bytes) -> int:
    """The index partition-key hash of an index entry (it places the entry in the index's
    partitions): the 8 bytes after the index prefix, as in the table's own keys."""
    return int.from_bytes(entry_key[_INDEX_PREFIX_LEN:_INDEX_PREFIX_LEN + _HASH_LEN], "big")


def plan_delivery(
    window: Sequence[tuple[int, dict[str, Any]]],
    indexes: Mapping[int, IndexDef],
    route: Callable[[IndexDef, int], str],
    after: Callable[[str], int],
) -> dict[str, list[Change]]:
    """Split change records into the changes each index partition must apply: destination
    (``route(index, entry hash)``) -> changes in number order. A change whose entry moves
    between index partitions is a removal for the old one and a write for the new one. Changes
    of indexes not in ``indexes`` (deleted) are dropped, and so are those numbered at or below
    ``after(destination)`` (already acknowledged by it)."""
    out: dict[str, list[Change]] = {}
    for seq, rec in window:
        whole = rec.get("n")
        for iid, old_key, new_key, entry in rec["c"]:
            ix = indexes.get(iid)
            if ix is None:
                continue
            to_old = None if old_key is None else route(ix, entry_hash(old_key))
            to_new = None if new_key is None else route(ix, entry_hash(new_key))
            if to_old is not None and to_old != to_new and seq > after(to_old):
                out.setdefault(to_old, []).append([seq, iid, old_key, None, None])
            if to_new is not None and seq > after(to_new):
                same = old_key if to_old == to_new else None
                out.setdefault(to_new, []).append([seq, iid, same, new_key, whole if entry is None else entry])
    return out


def trim(batch: WriteBatch, upto: int) -> int:
    """Every change up to ``upto`` was delivered: delete those records and move the cursor
    (never back). Returns the cursor."""
    txn = batch.txn
    cursor = unpack_u64(txn.get(CURSOR_KEY))
    if upto <= cursor:
        return cursor
    done = [k for k, _v in txn.iterate(OUT_PREFIX, _out_key(upto), hi_inclusive=True)]
    for k in done:
        txn.delete(k)
    txn.put(CURSOR_KEY, pack_u64(upto))
    return upto


# -- index partitions ------------------------------------------------------------------------------


def high_water_mark(engine: Engine | ReadTxn, source: str) -> int:
    return unpack_u64(engine.get(_hwm_key(source)))


def apply_changes(batch: WriteBatch, table: TableDef, source: str, hi: int, changes: Sequence[Change]) -> int:
    """Apply the changes base partition ``source`` sent, numbered up to ``hi``, skipping those at
    or below this partition's high-water mark for ``source``; then raise the mark to ``hi``.
    Entry counters follow what is actually stored. Returns the high-water mark."""
    st = batch.stage()
    mark_key = _hwm_key(source)
    mark = unpack_u64(st.get(mark_key))
    if hi <= mark:
        return mark
    tid = table.table_id
    for seq, iid, old_key, new_key, entry in changes:
        if seq <= mark:
            continue
        ckey = counter_key(tid, iid)
        if old_key is not None and old_key != new_key:
            prev = st.get(old_key)
            if prev is not None:
                st.delete(old_key)
                st.count(ckey, -1, -record_size(prev))
        if new_key is not None:
            prev = st.get(new_key)
            st.put(new_key, entry)
            st.count(ckey, 1 if prev is None else 0, record_size(entry) - (0 if prev is None else record_size(prev)))
    st.put(mark_key, pack_u64(hi))
    st.flush()
    return hi


# -- backfill (base partitions) ----------------------------------------------------------------


def backfill_state(engine: Engine | ReadTxn | Staged, index_id: int) -> dict[str, Any]:
    """``{}`` (not started), ``{"after": item key}`` or ``{"done": change number}``."""
    raw = engine.get(_backfill_key(index_id))
    return {} if raw is None else dict(msgpack.unpackb(raw))


def backfill_chunk(
    batch: WriteBatch, table: TableDef, index_id: int, *, items_max: int = BACKFILL_ITEMS,
    bytes_max: int = BACKFILL_BYTES,
) -> bool:
    """Walk the next chunk of this partition's items and stage one change record that puts the
    current entry of each one indexed by ``index_id``. True once the walk is done (then or
    before); also True if the index is not in the partition's definition of the table any more."""
    t = batch.current_table(table)
    ix = next((i for i in t.indexes if i.index_id == index_id and not i.local), None)
    if ix is None:
        return True
    st = batch.stage()
    state = backfill_state(st, index_id)
    if "done" in state:
        return True
    lo = item_prefix(t.table_id)
    hi = prefix_successor(lo)
    after = state.get("after")
    it: Iterator[tuple[bytes, bytes]]
    it = batch.txn.iterate(lo, hi) if after is None else batch.txn.iterate(after, hi, lo_inclusive=False)
    changes: list[list[Any]] = []
    walked = size = 0
    last: bytes | None = None
    for k, rec in it:
        walked += 1
        last = k
        e = index_entry(t, ix, loads(memoryview(rec)[HEADER_SIZE:]), rec)
        if e is not None:
            changes.append([index_id, e[0], e[0], e[1]])
            size += len(e[0]) + len(e[1])
        if walked >= items_max or size >= bytes_max:
            break
    if changes:
        seq = _next_seq(st)
        st.put(_out_key(seq), msgpack.packb({"c": changes, "n": None}))
    finished = walked < items_max and size < bytes_max
    if finished:
        state = {"done": unpack_u64(st.get(SEQ_KEY))}
    else:
        assert last is not None
        state = {"after": last}
    st.put(_backfill_key(index_id), msgpack.packb(state))
    st.flush()
    return finished


def caught_up(engine: Engine | ReadTxn, index_id: int) -> bool:
    """Whether index ``index_id`` holds this base partition's items: the backfill walk is done
    and every change up to its last one was delivered."""
    state = backfill_state(engine, index_id)
    return "done" in state and outbox_state(engine)[0] >= int(state["done"])
