"""The narrow log-storage protocol a replica persists through, and an in-memory implementation.

A replica never writes storage itself: it returns ``PersistAction``s in its ``Ready`` and the
driver performs them with ``persist_ready`` (in order, then ``sync``; ``write_ready`` is the
same without the sync) before sending that Ready's messages. On restart, ``load()`` returns
everything needed to rebuild the replica, including the storage's ``Identity`` (cluster id and
node id with its incarnation; None for a storage never written).

Multi-Paxos needs no suffix truncation: a slot is only ever overwritten by a value of a higher
ballot (``put_entries``), and the prefix is dropped by ``save_snapshot``.

Implementations must make ``sync()`` durable (fsync or equivalent) for everything written
before it, keep entries by index (a put overwrites the same index), and must never change the
meaning of stored data. This module must never import from ``runtime``, ``sim`` or ``api``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .ready import PutEntries, Ready, SaveHardState, SaveIdentity, SaveSnapshot
from .values import ZERO_BALLOT, Entry, HardState, Identity, NodeId, Snapshot, incarnation_id

__all__ = [
    "StoredState",
    "LogStorage",
    "MemoryLogStorage",
    "persist_ready",
    "write_ready",
    "start_identity",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredState:
    """Everything a replica needs to restart (entries above the snapshot, by index)."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]
    identity: Identity | None = None

    @property
    def empty(self) -> bool:
        """Nothing was ever stored: a brand-new node, or one whose disk was wiped."""
        return (self.identity is None and self.snapshot is None and not self.entries
                and self.hard_state == HardState(promised=ZERO_BALLOT, commit_index=0))


class LogStorage(Protocol):
    def load(self) -> StoredState: ...

    def save_identity(self, identity: Identity) -> None: ...

    def save_hard_state(self, hard_state: HardState) -> None: ...

    def put_entries(self, entries: tuple[Entry, ...]) -> None: ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` and drop every entry at or below ``snapshot.index``."""
        ...

    def sync(self) -> None:
        """Make every earlier write durable."""
        ...


class MemoryLogStorage:
    """Reference implementation: a dict of entries, the hard state and the last snapshot.

    ``sync`` is a no-op; a simulator models a crash by keeping only what was synced (copy the
    object at sync time) or simply by keeping this object across a replica restart.
    """

    def __init__(self) -> None:
        self.identity: Identity | None = None
        self.hard_state = HardState(promised=ZERO_BALLOT, commit_index=0)
        self.snapshot: Snapshot | None = None
        self.entries: dict[int, Entry] = {}
        self.syncs = 0

    def load(self) -> StoredState:
        return StoredState(
            hard_state=self.hard_state,
            snapshot=self.snapshot,
            entries=tuple(self.entries[i] for i in sorted(self.entries)),
            identity=self.identity,
        )

    def save_identity(self, identity: Identity) -> None:
        self.identity = identity

    def save_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def put_entries(self, entries: tuple[Entry, ...]) -> None:
        floor = self.snapshot.index if self.snapshot is not None else 0
        for e in entries:
            if e.index > floor:
                self.entries[e.index] = e

    def save_snapshot(self, snapshot: Snapshot) -> None:
        if self.snapshot is not None and snapshot.index < self.snapshot.index:
            return
        self.snapshot = snapshot
        for i in [i for i in self.entries if i <= snapshot.index]:
            del self.entries[i]

    def sync(self) -> None:
        self.syncs += 1


def write_ready(storage: LogStorage, ready: Ready) -> None:
    """Perform ``ready.persist`` in order, without ``sync``: for a driver that makes the writes
    durable itself (the simulator schedules fsync as a separate, delayable event)."""
    for action in ready.persist:
        match action:
            case SaveIdentity():
                storage.save_identity(action.identity)
            case SaveHardState():
                storage.save_hard_state(action.hard_state)
            case PutEntries():
                storage.put_entries(action.entries)
            case SaveSnapshot():
                storage.save_snapshot(action.snapshot)


def persist_ready(storage: LogStorage, ready: Ready) -> None:
    """Perform ``ready.persist`` in order, then ``sync`` (only if there was something to do)."""
    if not ready.persist:
        return
    write_ready(storage, ready)
    storage.sync()


def start_identity(
    stored: StoredState,
    *,
    name: str,
    founders: Iterable[str] | None,
    fresh_incarnation: Callable[[], int],
) -> tuple[NodeId, tuple[NodeId, ...] | None]:
    """The node id a node called ``name`` runs as over ``stored``, and the ``initial_voters`` to
    build its ``Replica`` with.

    * A storage that records an identity: that node id (it keeps its promises). A storage with
      data but no identity (written before identities existed) is the first incarnation.
    * An empty storage while the operator bootstraps a new cluster (``founders``: the founding
      names, ``name`` among them): the first incarnation, founding voters.
    * Any other empty storage (a new node, or one whose disk was wiped: the two look the same
      from inside): a fresh incarnation (``fresh_incarnation()``, >= 2 and never used before by
      this name) and no initial voters, so it can only join through a membership change.
    """
    if stored.identity is not None:
        return stored.identity.node_id, None
    if not stored.empty:
        return incarnation_id(name, 1), None
    if founders is not None:
        voters = tuple(sorted(set(founders)))
        if name not in voters:
            raise ValueError(f"{name!r} bootstraps a cluster it is not a founder of")
        return incarnation_id(name, 1), tuple(incarnation_id(v, 1) for v in voters)
    incarnation = fresh_incarnation()
    if incarnation < 2:
        raise ValueError("a fresh incarnation must be >= 2 (1 is the founding life)")
    return incarnation_id(name, incarnation), None
