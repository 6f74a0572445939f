"""The Paxos log-storage protocol on top of the simulated disk.

Writes go to the ``SimDisk`` overlay and become durable only on ``sync``; a crash of the node
throws away whatever was not synced, which is exactly the window the core's "persist before
send" rule is about. Values are stored in wire form (plain lists), as a real disk would hold
bytes, so a restarted replica never shares objects with its previous life.

This module never decides when to sync or crash: the world does.
"""

from __future__ import annotations

from quorumdb.core.paxos import ZERO_BALLOT, Entry, HardState, Identity, Snapshot, StoredState
from quorumdb.sim.disk import SimDisk

__all__ = ["SimLogStorage"]

_ID = ("id",)
_HS = ("hs",)
_SNAP = ("snap",)


class SimLogStorage:
    def __init__(self, disk: SimDisk) -> None:
        self.disk = disk

    def load(self) -> StoredState:
        hs_raw = self.disk.get(_HS)
        hs = HardState.from_wire(hs_raw) if hs_raw is not None else HardState(promised=ZERO_BALLOT, commit_index=0)
        snap_raw = self.disk.get(_SNAP)
        snap = Snapshot.from_wire(snap_raw) if snap_raw is not None else None
        floor = snap.index if snap is not None else 0
        idx = sorted(k[1] for k in self.disk.keys() if isinstance(k, tuple) and k[0] == "e" and k[1] > floor)
        entries = tuple(Entry.from_wire(self.disk.get(("e", i))) for i in idx)
        id_raw = self.disk.get(_ID)
        identity = Identity.from_wire(id_raw) if id_raw is not None else None
        return StoredState(hard_state=hs, snapshot=snap, entries=entries, identity=identity)

    def save_identity(self, identity: Identity) -> None:
        self.disk.put(_ID, identity.to_wire())

    def save_hard_state(self, hard_state: HardState) -> None:
        self.disk.put(_HS, hard_state.to_wire())

    def put_entries(self, entries: tuple[Entry, ...]) -> None:
        snap_raw = self.disk.get(_SNAP)
        floor = snap_raw[0] if snap_raw is not None else 0
        for e in entries:
            if e.index > floor:
                self.disk.put(("e", e.index), e.to_wire())

    def save_snapshot(self, snapshot: Snapshot) -> None:
        old = self.disk.get(_SNAP)
        if old is not None and snapshot.index < old[0]:
            return
        self.disk.put(_SNAP, snapshot.to_wire())
        for k in [k for k in self.disk.keys() if isinstance(k, tuple) and k[0] == "e" and k[1] <= snapshot.index]:
            self.disk.delete(k)

    def sync(self) -> None:
        self.disk.sync()
