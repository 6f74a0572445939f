"""The simulator's clients on the real partition state machine (the one that applies table
writes in the cluster), instead of the toy key-value map.

Each simulated replica holds a ``quorumdb.db.replicated.PartitionStore`` over a memory engine,
with a one-attribute-key table ``sim`` (``k`` → item ``{k, v}``). A client's put, compare-and-set
or delete reaching a node is evaluated there as a real ``WriteOp`` (a compare-and-set is a
conditional mutator that raises ConditionalCheckFailedError) and proposed as the raw effects
``PartitionStore.evaluate`` produced; every replica applies the committed effects without
evaluating anything, exactly as cluster nodes do. A command evaluated on a state that never
committed is skipped on every replica and its client is told the write certainly did not
happen. Reads are served from the store under the leader's lease.

Same interface as ``quorumdb.core.kv.KVStateMachine`` as the world uses it: ``prepare``,
``apply_command``, ``read``, ``snapshot``/``restore``, ``digest`` and ``applied_index``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack

from quorumdb.core.kv import decode_command
from quorumdb.db.contract import WriteOp
from quorumdb.db.partition import HASH_SPACE, Partition
from quorumdb.db.replicated import APPLIED_KEY, PartitionStore, snapshot_index
from quorumdb.db.writer import WriterState
from quorumdb.errors import ConditionalCheckFailedError
from quorumdb.model.schema import KeyAttr, KeySchema, TableDef
from quorumdb.model.types import Item
from quorumdb.storage.memory import MemoryEngine
from quorumdb.storage.prefixed import PrefixedEngine

__all__ = ["TableStateMachine", "SKIPPED", "TABLE"]

SKIPPED = "skipped"  # the result of a command whose effects were not applied (stale evaluation)
TABLE = TableDef(name="sim", table_id=1, uuid="sim", key_schema=KeySchema(hash=KeyAttr(name="k", type="S"), range=None),
                 attribute_definitions={"k": "S"}, created_at=0.0)


def _mutator(op: str, key: str, value: Any, expected: Any) -> Any:
    new: Item | None = None if op == "delete" else {"k": {"S": key}, "v": {"S": value}}

    def mutate(old: Item | None) -> Item | None:
        if op == "cas":
            current = None if old is None else old["v"]["S"]
            if current != expected:
                raise ConditionalCheckFailedError("The conditional request failed")
        return new

    return mutate


class TableStateMachine:
    def __init__(self, name: str) -> None:
        self.name = name
        self.applied_index = 0
        self._lives = 0
        self._ballot: Any = None
        self._fresh()

    def _fresh(self) -> None:
        self._lives += 1
        self.store = PartitionStore(PrefixedEngine(MemoryEngine(), b"p/"), WriterState(clock=lambda: 0.0),
                                    id_prefix=f"{self.name}/{id(self)}/{self._lives}/".encode())
        self.part = Partition(table_id=TABLE.table_id, hash_lo=0, hash_hi=HASH_SPACE, engine=self.store.engine)

    # -- the leader --------------------------------------------------------------------------

    def prepare(self, command: bytes, ballot: Any) -> bytes:
        """Evaluate a client's key-value command into the effects to propose."""
        if ballot != self._ballot:  # a new term of leadership: nothing of the old one is pending
            self.store.drop_pending()
            self._ballot = ballot
        cmd = decode_command(command)
        op = cmd["op"]
        key = {"k": {"S": cmd["key"]}}
        w = WriteOp(table=TABLE, key=key, mutate=_mutator(op, cmd["key"], cmd.get("value"), cmd.get("expected")))
        outcomes, effects = self.store.evaluate([lambda b: b.run_write(w)], TABLE)
        ok, value = outcomes[0]
        if not ok and not isinstance(value, ConditionalCheckFailedError):
            raise value
        result: Any = ok if op == "cas" else None
        return msgpack.packb({"c": effects.encode(), "r": result}, use_bin_type=True)

    # -- every replica ------------------------------------------------------------------------

    def apply_command(self, index: int, position: int, data: bytes) -> Any:
        try:
            d = msgpack.unpackb(data, raw=False)
            raw = d["c"]
        except Exception:  # noqa: BLE001 - a foreign payload in the log: a no-op everywhere
            return None
        return d["r"] if self.store.apply(index, raw, position) else SKIPPED

    def read(self, key: str) -> Any:
        rec = self.part.get(TABLE, {"k": {"S": key}})
        return None if rec is None else rec.item["v"]["S"]

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, blob: bytes) -> None:
        self._fresh()
        self.store.restore(blob, snapshot_index(blob))

    def digest(self) -> str:
        with self.store.engine.snapshot() as snap:
            pairs = [(k, bytes(v)) for k, v in snap.iterate() if k != APPLIED_KEY]
        return hashlib.sha256(msgpack.packb(pairs, use_bin_type=True)).hexdigest()[:16]
