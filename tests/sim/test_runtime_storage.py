"""The LMDB log storage keeps exactly what was synced, by index, across reopen."""

from __future__ import annotations

from pathlib import Path

from quorumdb.core.paxos import (
    Ballot,
    Command,
    Entry,
    EntryKind,
    HardState,
    Identity,
    Membership,
    MemoryLogStorage,
    Snapshot,
)
from quorumdb.runtime.storage import LMDBLogStorage
from quorumdb.sim.disk import SimDisk
from quorumdb.sim.storage import SimLogStorage

B1 = Ballot(round=1, node_id="n1")
B2 = Ballot(round=2, node_id="n2")


def entry(i: int, ballot: Ballot = B1, data: bytes = b"x") -> Entry:
    return Entry(index=i, ballot=ballot, kind=EntryKind.COMMANDS, commands=(Command(request_id=i, data=data),))


def test_lmdb_storage_round_trips_and_loses_unsynced(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    s = LMDBLogStorage(path)
    s.save_hard_state(HardState(promised=B1, commit_index=2))
    s.put_entries((entry(1), entry(2), entry(3)))
    s.sync()
    s.put_entries((entry(3, B2, b"y"),))  # overwrite by index
    s.sync()
    s.put_entries((entry(4),))  # never synced: lost on "crash"
    s.close()
    s = LMDBLogStorage(path)
    st = s.load()
    assert st.hard_state == HardState(promised=B1, commit_index=2)
    assert [e.index for e in st.entries] == [1, 2, 3]
    assert st.entries[2] == entry(3, B2, b"y")
    snap = Snapshot(index=2, ballot=B1, membership=Membership.of(["n1", "n2", "n3"]), data=b"state")
    s.save_snapshot(snap)
    s.put_entries((entry(1),))  # below the snapshot: ignored
    s.sync()
    s.close()
    st = LMDBLogStorage(path).load()
    assert st.snapshot == snap
    assert [e.index for e in st.entries] == [3]


def test_sim_storage_matches_memory_storage_and_crashes() -> None:
    disk = SimDisk()
    sim, mem = SimLogStorage(disk), MemoryLogStorage()
    snap = Snapshot(index=2, ballot=B1, membership=Membership.of(["a"]), data=b"s")
    for s in (sim, mem):
        s.save_hard_state(HardState(promised=B2, commit_index=1))
        s.put_entries((entry(1), entry(2), entry(3)))
        s.save_snapshot(snap)
        s.sync()
    assert sim.load() == mem.load()
    sim.put_entries((entry(4),))
    disk.crash()
    assert sim.load() == mem.load()


def test_storages_keep_the_identity(tmp_path: Path) -> None:
    ident = Identity(cluster_id="c", node_id="n1@4")
    lmdb_path = str(tmp_path / "log")
    s = LMDBLogStorage(lmdb_path)
    assert s.load().identity is None and s.load().empty
    s.save_identity(ident)
    s.sync()
    s.close()
    assert LMDBLogStorage(lmdb_path).load().identity == ident
    disk = SimDisk()
    sim = SimLogStorage(disk)
    sim.save_identity(ident)
    disk.crash()
    assert sim.load().identity is None  # unsynced: lost
    sim.save_identity(ident)
    sim.sync()
    assert sim.load().identity == ident and not sim.load().empty


def test_runtime_node_runs_as_its_stored_identity_and_a_wiped_disk_is_a_new_incarnation(tmp_path: Path) -> None:
    from quorumdb.runtime.node import NodeConfig, PaxosKVNode

    peers = {"n1": ("127.0.0.1", 1), "n2": ("127.0.0.1", 2), "n3": ("127.0.0.1", 3)}

    def node(data_dir: Path, *, bootstrap: bool) -> PaxosKVNode:
        return PaxosKVNode(NodeConfig(node_id="n1", peers=peers, client_address=("127.0.0.1", 0),
                                      data_dir=str(data_dir), bootstrap=bootstrap))

    founder = node(tmp_path / "a", bootstrap=True)
    assert founder.replica.node_id == "n1"
    assert founder.replica.membership == Membership.of(["n1", "n2", "n3"])
    founder._drain()  # persists the identity
    founder.storage.close()
    again = node(tmp_path / "a", bootstrap=False)  # a restart keeps its identity either way
    assert again.replica.node_id == "n1" and again.replica.membership is not None
    again.storage.close()
    wiped = node(tmp_path / "b", bootstrap=False)
    assert wiped.replica.node_id.startswith("n1@") and wiped.replica.membership is None
    wiped.storage.close()
