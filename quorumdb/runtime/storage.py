"""The Paxos log-storage protocol on LMDB: hard state, entries by index, the latest snapshot.

Writes are buffered in memory and written in one LMDB write transaction by ``sync`` (LMDB
commits are durable: the environment is opened with ``sync=True``), so one Ready costs one
fsync, and a crash before ``sync`` loses exactly what the core was told might be lost. Keys:
``b"id"`` (cluster id and node id with its incarnation), ``b"hs"``, ``b"snap"``,
``b"e" + index (8 bytes big-endian)``; values are msgpack of the
values' wire form. Those encodings never change meaning once written. Several groups can share
one environment (``LMDBLogEnv``, one per cluster node): each group's keys then start with
``b"g" + len(group id) (1 byte) + group id``.

This module never decides when to sync; the node's Ready loop does.
"""

from __future__ import annotations

import os
import struct

import lmdb
import msgpack

from quorumdb.core.paxos import ZERO_BALLOT, Entry, HardState, Identity, Snapshot, StoredState

__all__ = ["LMDBLogStorage", "LMDBLogEnv"]

_ID = b"id"
_HS = b"hs"
_SNAP = b"snap"
_E = b"e"
_IDX = struct.Struct(">Q")


def _ekey(index: int) -> bytes:
    return _E + _IDX.pack(index)


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(data: bytes) -> object:
    return msgpack.unpackb(data, raw=False)


def _open(path: str, map_size_bytes: int) -> lmdb.Environment:
    os.makedirs(path, exist_ok=True)
    return lmdb.open(path, map_size=map_size_bytes, sync=True, metasync=True, max_dbs=1)


def group_prefix(group_id: str) -> bytes:
    raw = group_id.encode()
    if not 0 < len(raw) < 256:
        raise ValueError("a group id must be 1 to 255 bytes")
    return b"g" + bytes([len(raw)]) + raw


class LMDBLogEnv:
    """One LMDB environment holding the logs of many groups (one per cluster node)."""

    def __init__(self, path: str, *, map_size_bytes: int = 1 << 32) -> None:
        self.env = _open(path, map_size_bytes)

    def storage(self, group_id: str) -> LMDBLogStorage:
        return LMDBLogStorage(env=self.env, prefix=group_prefix(group_id))

    def groups(self) -> list[str]:
        """The ids of the groups that have anything stored."""
        out = []
        with self.env.begin() as txn:
            cur = txn.cursor()
            ok = cur.set_range(b"g")
            while ok:
                k = cur.key()
                if not k.startswith(b"g") or len(k) < 2:
                    break
                n = k[1]
                out.append(k[2 : 2 + n].decode())
                ok = cur.set_range(k[: 2 + n] + b"\xff")
        return out

    def drop(self, group_id: str) -> None:
        """Delete everything stored for ``group_id`` (durably)."""
        prefix = group_prefix(group_id)
        with self.env.begin(write=True) as txn:
            cur = txn.cursor()
            doomed = []
            if cur.set_range(prefix):
                for k in cur.iternext(keys=True, values=False):
                    if not k.startswith(prefix):
                        break
                    doomed.append(k)
            for k in doomed:
                txn.delete(k)

    def close(self) -> None:
        self.env.close()


class LMDBLogStorage:
    """The log of one group: its own environment at ``path``, or ``env`` shared under ``prefix``."""

    def __init__(self, path: str | None = None, *, map_size_bytes: int = 1 << 30,
                 env: lmdb.Environment | None = None, prefix: bytes = b"") -> None:
        if env is None:
            assert path is not None
            env = _open(path, map_size_bytes)
            self._owns_env = True
        else:
            self._owns_env = False
        self.env = env
        self._p = prefix
        self._pending: list[tuple[str, object]] = []
        self.syncs = 0

    def close(self) -> None:
        if self._owns_env:
            self.env.close()

    def _ekey(self, index: int) -> bytes:
        return self._p + _ekey(index)

    def load(self) -> StoredState:
        p = self._p
        with self.env.begin() as txn:
            id_raw = txn.get(p + _ID)
            identity = Identity.from_wire(_unpack(id_raw)) if id_raw else None
            hs_raw = txn.get(p + _HS)
            hs = HardState.from_wire(_unpack(hs_raw)) if hs_raw else HardState(promised=ZERO_BALLOT, commit_index=0)
            snap_raw = txn.get(p + _SNAP)
            snap = Snapshot.from_wire(_unpack(snap_raw)) if snap_raw else None
            floor = snap.index if snap is not None else 0
            entries = []
            cur = txn.cursor()
            if cur.set_range(self._ekey(floor + 1)):
                for k, v in cur:
                    if not k.startswith(p + _E):
                        break
                    entries.append(Entry.from_wire(_unpack(v)))
        return StoredState(hard_state=hs, snapshot=snap, entries=tuple(entries), identity=identity)

    def save_identity(self, identity: Identity) -> None:
        self._pending.append(("id", identity))

    def save_hard_state(self, hard_state: HardState) -> None:
        self._pending.append(("hs", hard_state))

    def put_entries(self, entries: tuple[Entry, ...]) -> None:
        self._pending.append(("entries", entries))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._pending.append(("snap", snapshot))

    def sync(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        p = self._p
        ep = p + _E
        with self.env.begin(write=True) as txn:
            snap_raw = txn.get(p + _SNAP)
            floor = _unpack(snap_raw)[0] if snap_raw else 0  # type: ignore[index]
            for kind, value in pending:
                if kind == "id":
                    assert isinstance(value, Identity)
                    txn.put(p + _ID, _pack(value.to_wire()))
                elif kind == "hs":
                    assert isinstance(value, HardState)
                    txn.put(p + _HS, _pack(value.to_wire()))
                elif kind == "entries":
                    assert isinstance(value, tuple)
                    for e in value:
                        if e.index > floor:
                            txn.put(self._ekey(e.index), _pack(e.to_wire()))
                else:
                    assert isinstance(value, Snapshot)
                    if value.index < floor:
                        continue
                    floor = value.index
                    txn.put(p + _SNAP, _pack(value.to_wire()))
                    cur = txn.cursor()
                    doomed = []
                    if cur.set_range(self._ekey(1)):
                        for k in cur.iternext(keys=True, values=False):
                            if not k.startswith(ep) or _IDX.unpack(k[len(ep):])[0] > floor:
                                break
                            doomed.append(k)
                    for k in doomed:
                        txn.delete(k)
        self.syncs += 1
