"""The undo log of point-in-time recovery (PITR).

While a table has PITR enabled, every change of one of its items appends, in the same write
batch (so atomically with the change), an undo record: (commit timestamp, sequence number) ->
(item key, item before the change). The table as of time T is then: the current items, read
from one snapshot, with every change of timestamp > T undone from that same snapshot, newest
first — equivalently, each key changed after T takes the "before" image of its first change
after T. A restore is therefore exact for any T in the window, whatever writes go on meanwhile.

Timestamps come from the writer's injectable clock, read once per batch; they never go
backwards (``max(clock, last)``, the last one kept in ``records.UNDO_CLOCK``) and a global
sequence number orders the changes of equal timestamps, also across processes sharing a store.

``record_undo`` is the writer's only hook. Never call asyncio from here; never commit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from quorumdb.db.records import (
    UNDO_CLOCK,
    item_prefix,
    pack_undo,
    undo_key,
    undo_prefix,
    unpack_undo,
)
from quorumdb.storage.engine import ReadTxn, WriteTxn, prefix_successor

if TYPE_CHECKING:
    from quorumdb.db.writer import Staged, WriteBatch

__all__ = ["UndoClock", "record_undo", "state_at", "to_us", "undo_bound"]

_CLOCK = struct.Struct(">QQ")


def to_us(t: float) -> int:
    """Seconds since the epoch -> whole microseconds (the undo log's time unit)."""
    return max(0, int(t * 1_000_000))


class UndoClock:
    """The timestamp and sequence numbers of one batch's undo records."""

    __slots__ = ("ts_us", "seq")

    def __init__(self, txn: ReadTxn, now: float) -> None:
        raw = txn.get(UNDO_CLOCK)
        last_us, seq = (0, 0) if raw is None else _CLOCK.unpack(raw)
        self.ts_us = max(to_us(now), int(last_us))
        self.seq = int(seq)

    def next_key(self, table_id: int) -> bytes:
        self.seq += 1
        return undo_key(table_id, self.ts_us, self.seq)

    def save(self, txn: WriteTxn) -> None:
        txn.put(UNDO_CLOCK, _CLOCK.pack(self.ts_us, self.seq))


def record_undo(batch: WriteBatch, st: Staged, table_id: int, item_key: bytes, old_rec: bytes | None) -> None:
    """Stage the undo record of a change of ``item_key`` (whose record was ``old_rec``)."""
    clock = batch.undo
    if clock is None:
        clock = batch.undo = UndoClock(batch.txn, batch.state.clock())
    st.put(clock.next_key(table_id), pack_undo(item_key, old_rec))


def undo_bound(table_id: int, ts_us: int) -> bytes:
    """The first undo key of ``table_id`` with a timestamp >= ``ts_us``."""
    return undo_prefix(table_id) + ts_us.to_bytes(8, "big")


def state_at(snap: ReadTxn, table_id: int, at: float) -> Iterator[bytes]:
    """The records of the table's items as of time ``at``, from the snapshot ``snap`` (current
    items, with every change after ``at`` undone). The caller checks that the undo log covers
    ``at`` (PITR enabled since then)."""
    before: dict[bytes, bytes | None] = {}
    lo = undo_bound(table_id, to_us(at) + 1)
    for _k, v in snap.iterate(lo, prefix_successor(undo_prefix(table_id))):
        key, old = unpack_undo(v)
        if key not in before:
            before[key] = old  # the first change after ``at``: its before image is the state at ``at``
    prefix = item_prefix(table_id)
    for k, v in snap.iterate(prefix, prefix_successor(prefix)):
        if k in before:
            old = before.pop(k)
            if old is not None:
                yield old
        else:
            yield v
    for old in before.values():  # deleted since ``at``
        if old is not None:
            yield old
