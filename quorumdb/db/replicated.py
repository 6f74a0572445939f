"""One partition replica's data in the cluster: the leader evaluates, every replica applies.

The leader runs write jobs (the same pure jobs the single node's group committer runs:
``job(batch) -> result``, see ``writer.WriteBatch``) against its applied state seen through the
effects it has proposed but not yet applied, and turns the batch into a *command*: the raw
key/value effects (items, index entries, counters, item-collection sizes, token records) plus
two ids. Replicas apply commands from the replicated log in log order without evaluating any
user expression. A command is applied only if it was evaluated on exactly the state it meets:
its ``base`` must equal the id of the last command applied (``LAST``). A command evaluated on
top of one that was lost (leadership changed, a slot became a no-op) meets another ``LAST`` and
is skipped on every replica alike; its jobs are evaluated again or fail with a retryable error.
Commands whose jobs all failed carry no effects but still go through the log, so a failed
condition is reported only once the state it was checked against is committed.

The applied log index and ``LAST`` are written in the same engine transaction as the effects,
so applying is idempotent across restarts (entries at or below the stored index are skipped).

This module is pure of I/O other than the engine it is given; it imports no asyncio and no
replication core: the cluster runtime feeds it committed entries and proposes its commands.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from quorumdb.model.schema import TableDef
from quorumdb.storage.engine import Engine, StorageFullError
from quorumdb.storage.prefixed import OverlayTxn

from .records import CATALOG_VERSION, dumps, loads, pack_u64, table_def_key, unpack_u64
from .writer import WriteBatch, WriterState

__all__ = ["Command", "PartitionStore", "Outcome", "decode_command", "snapshot_index", "APPLIED_KEY", "LAST_KEY"]

APPLIED_KEY = b"\x00replica/applied"  # u64 log index + u32 position in the entry, last applied
_WHOLE_ENTRY = 0xFFFFFFFF
LAST_KEY = b"\x00replica/last"  # the id of the last command whose effects were applied
_SNAPSHOT_VERSION = 1

Job = Callable[[WriteBatch], Any]
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)

_APPLIED = struct.Struct(">QI")


def _unpack_applied(b: bytes | None) -> tuple[int, int]:
    if not b:
        return 0, _WHOLE_ENTRY
    if len(b) == 8:
        return unpack_u64(b), _WHOLE_ENTRY
    index, position = _APPLIED.unpack(b)
    return int(index), int(position)


@dataclass(frozen=True, slots=True)
class Command:
    id: bytes
    base: bytes
    writes: tuple[tuple[bytes, bytes | None], ...]

    def encode(self) -> bytes:
        return msgpack.packb({"u": self.id, "b": self.base, "w": [list(w) for w in self.writes]})


def decode_command(raw: bytes) -> Command:
    d = msgpack.unpackb(raw)
    return Command(id=d["u"], base=d["b"], writes=tuple((k, v) for k, v in d["w"]))


class PartitionStore:
    """The state of one partition replica in ``engine`` (a namespace of the node's engine)."""

    def __init__(self, engine: Engine, state: WriterState, *, id_prefix: bytes) -> None:
        """``state`` must be this store's own (it caches the store's catalog view)."""
        self.engine = engine
        self._state = state
        self._id_prefix = id_prefix  # unique per (node, incarnation, replica): ids never repeat
        self._counter = 0
        # Proposed and not yet applied, oldest first: (command id, its writes).
        self._pending: deque[tuple[bytes, dict[bytes, bytes | None]]] = deque()

    # -- state ---------------------------------------------------------------------------------

    @property
    def applied_index(self) -> int:
        return _unpack_applied(self.engine.get(APPLIED_KEY))[0]

    @property
    def last_id(self) -> bytes:
        return self.engine.get(LAST_KEY) or b""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _new_id(self) -> bytes:
        self._counter += 1
        return self._id_prefix + self._counter.to_bytes(8, "big")

    # -- the leader ----------------------------------------------------------------------------

    def evaluate(self, jobs: Sequence[Job], table: TableDef | None = None) -> tuple[list[Outcome], Command]:
        """Run ``jobs`` on applied state + pending effects; return their outcomes and the
        command to propose. Nothing is applied here: outcomes count only once the command is
        applied (``apply`` returns True for it). ``table`` (the current definition from the
        metadata service) is written into the partition's catalog first when it differs."""
        base = self._pending[-1][0] if self._pending else self.last_id
        while True:
            with self.engine.snapshot() as snap:
                txn = OverlayTxn(snap, [w for _id, w in self._pending])
                try:
                    if table is not None:
                        _define(txn, table)
                    batch = self._state.begin(txn)  # type: ignore[arg-type]
                    outcomes: list[Outcome] = []
                    for job in jobs:
                        try:
                            outcomes.append((True, job(batch)))
                        except StorageFullError:
                            raise
                        except Exception as e:  # delivered to the caller
                            outcomes.append((False, e))
                    batch.before_commit()
                except StorageFullError:
                    self.engine.grow()
                    continue
            cmd = Command(id=self._new_id(), base=base, writes=tuple(txn.writes.items()))
            if cmd.writes:  # a command without effects leaves LAST as it is: no overlay layer
                self._pending.append((cmd.id, txn.writes))
            return outcomes, cmd

    def drop_pending(self) -> None:
        """Leadership is lost: forget the overlay (those commands will be skipped or applied
        through the log like anyone else's)."""
        self._pending.clear()

    # -- every replica -------------------------------------------------------------------------

    def apply(self, index: int, raw: bytes, position: int = 0) -> bool:
        """Apply the committed command at log ``index`` (the ``position``-th command of that
        entry: the log batches several commands per slot). True if its effects were applied,
        False if it was skipped (evaluated on a state that is not the current one) or was
        applied before a restart."""
        cmd = decode_command(raw)
        while True:
            txn = self.engine.begin_write()
            try:
                done = _unpack_applied(txn.get(APPLIED_KEY))
                if (index, position) <= done or (index == done[0] and done[1] == _WHOLE_ENTRY):
                    txn.abort()
                    return False
                ok = self._fits(cmd, txn.get(LAST_KEY) or b"")
                if ok:
                    for k, v in cmd.writes:
                        if v is None:
                            txn.delete(k)
                        else:
                            txn.put(k, v)
                    if cmd.writes:
                        txn.put(LAST_KEY, cmd.id)
                txn.put(APPLIED_KEY, _APPLIED.pack(index, position))
                txn.commit()
                break
            except StorageFullError:
                txn.abort()
                self.engine.grow()
        self._settle(cmd.id, ok and bool(cmd.writes))
        return ok

    @staticmethod
    def _fits(cmd: Command, last: bytes) -> bool:
        """Was ``cmd`` evaluated on the state it meets (the last applied command is its base)?"""
        return cmd.base == last

    def skip(self, index: int) -> None:
        """A log entry that is not a command (a no-op, a membership change): remember it."""
        if index > self.applied_index:
            self.engine.write_batch([(APPLIED_KEY, _APPLIED.pack(index, _WHOLE_ENTRY))])

    def _settle(self, cmd_id: bytes, changed_state: bool) -> None:
        p = self._pending
        if p and p[0][0] == cmd_id:
            p.popleft()
        elif p and changed_state:
            p.clear()  # someone else's effects landed first: everything pending will skip

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Every key of the partition (effects, catalog, applied index) as one blob."""
        with self.engine.snapshot() as snap:
            pairs = [[k, bytes(v)] for k, v in snap.iterate()]
        return msgpack.packb({"v": _SNAPSHOT_VERSION, "kv": pairs})

    def restore(self, blob: bytes, index: int) -> None:
        """Replace the state by a snapshot taken at log ``index`` (unless already past it)."""
        if index <= self.applied_index:
            return
        d = msgpack.unpackb(blob)
        txn = self.engine.begin_write()
        try:
            for k, _v in list(txn.iterate()):
                txn.delete(k)
            for k, v in d["kv"]:
                txn.put(k, v)
            txn.put(APPLIED_KEY, _APPLIED.pack(index, _WHOLE_ENTRY))
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        self._pending.clear()

    def clear(self) -> None:
        """Delete the whole state (the replica left its group)."""
        txn = self.engine.begin_write()
        try:
            for k, _v in list(txn.iterate()):
                txn.delete(k)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        self._pending.clear()

    def keys(self) -> Iterator[bytes]:
        with self.engine.snapshot() as snap:
            yield from (k for k, _v in snap.iterate())


def snapshot_index(blob: bytes) -> int:
    """The log index a ``PartitionStore.snapshot()`` blob was taken at."""
    for k, v in msgpack.unpackb(blob)["kv"]:
        if k == APPLIED_KEY:
            return _unpack_applied(v)[0]
    return 0


def _define(txn: OverlayTxn, table: TableDef) -> None:
    """Write ``table`` into the partition's catalog if it is not there in this version. Never
    an older version of the same table: a router with a stale map must not take a change back
    (e.g. a global index added meanwhile, whose entries writes must maintain from then on)."""
    key = table_def_key(table.name)
    rec = dumps(table.to_record())
    cur = txn.get(key)
    if cur is not None and cur != rec:
        stored = loads(cur)
        if stored.get("table_id") == table.table_id and int(stored.get("version", 0)) > table.version:
            return
    if cur != rec:
        txn.put(key, rec)
        txn.put(CATALOG_VERSION, pack_u64(unpack_u64(txn.get(CATALOG_VERSION)) + 1))
