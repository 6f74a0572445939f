"""Phase 2: batching, pipelining, majority commit, catch-up, snapshots, restarts, the unsafe flag."""

from __future__ import annotations

import dataclasses
import random

import msgpack
import pytest
from test_paxos_harness import FAST, Cluster

from quorumdb.core.paxos import (
    Accept,
    EntryKind,
    InstallSnapshot,
    MemoryLogStorage,
    PaxosConfig,
    ProposalCommitted,
    PutEntries,
    Replica,
    SaveHardState,
    SaveSnapshot,
    persist_ready,
)
from quorumdb.sim.mutants import CommitWithoutMajority


@pytest.mark.parametrize(
    ("batch", "commands", "slots"),
    [(64, 10, 1), (3, 10, 4), (1, 5, 5), (4, 4, 1)],
)
def test_proposals_between_readies_are_batched_into_slots(
    batch: int, commands: int, slots: int
) -> None:
    c = Cluster(config=dataclasses.replace(FAST, max_batch_commands=batch), seed=1)
    leader = c.elect()
    r = c.replicas[leader]
    first = r.last_index + 1
    for i in range(commands):
        r.propose(f"c{i}".encode(), f"r{i}")
    c.deliver()
    entries = [r.entry(i) for i in range(first, r.last_index + 1)]
    assert len(entries) == slots
    assert all(e is not None and e.kind is EntryKind.COMMANDS for e in entries)
    assert c.committed_ids(leader) == [f"r{i}" for i in range(commands)]
    c.run(50)  # followers learn the commit index from the next heartbeat
    for n in c.replicas:
        assert c.data(n) == [f"c{i}".encode() for i in range(commands)]


def test_batch_bytes_bound_splits_slots_but_a_big_command_still_fits() -> None:
    c = Cluster(config=dataclasses.replace(FAST, max_batch_bytes=10), seed=2)
    leader = c.elect()
    r = c.replicas[leader]
    first = r.last_index + 1
    for i, size in enumerate([4, 4, 4, 30, 1]):
        r.propose(b"x" * size, f"b{i}")
    c.deliver()
    sizes = [[len(cmd.data) for cmd in r.entry(i).commands]  # type: ignore[union-attr]
             for i in range(first, r.last_index + 1)]
    assert sizes == [[4, 4], [4], [30], [1]]


def test_pipelining_keeps_a_bounded_window_of_uncommitted_slots() -> None:
    cfg = dataclasses.replace(FAST, max_batch_commands=1, max_inflight_slots=3,
                              max_entries_per_message=2)
    c = Cluster(config=cfg, seed=3)
    leader = c.elect()
    r = c.replicas[leader]
    base = r.last_index
    for i in range(7):
        r.propose(b"p%d" % i, f"p{i}")
    c.flush(leader)  # no deliveries yet: three slots in flight, sent before any ack
    assert r.last_index == base + 3 and r.commit_index == base
    accepts = [m for m in c.inflight if isinstance(m, Accept)]
    per_follower = {m.dst: [e.index for m2 in accepts if m2.dst == m.dst for e in m2.entries]
                    for m in accepts}
    assert all(v == [base + 1, base + 2, base + 3] for v in per_follower.values())
    assert max(len(m.entries) for m in accepts) == 2  # batched per message, bounded
    c.deliver()
    assert c.committed_ids(leader) == [f"p{i}" for i in range(7)]
    assert r.last_index == base + 7


@pytest.mark.parametrize(
    ("size", "reachable", "commits"),
    [(3, 0, False), (3, 1, True), (5, 1, False), (5, 2, True), (4, 1, False), (4, 2, True)],
)
def test_commit_needs_a_majority_of_accepts(size: int, reachable: int, commits: bool) -> None:
    nodes = [f"n{i}" for i in range(1, size + 1)]
    c = Cluster(nodes, seed=4)
    leader = c.elect()
    others = [n for n in nodes if n != leader]
    c.partition([leader, *others[:reachable]], others[reachable:])
    c.propose(leader, b"v", "v")
    c.run(100)  # shorter than any lease/election timeout: leadership is stable
    assert c.leaders() == [leader]
    assert ("v" in c.committed_ids(leader)) is commits
    assert (b"v" in c.data(leader)) is commits
    assert c.violations == []


def test_commit_without_majority_mutant_diverges_and_the_harness_sees_it() -> None:
    c = Cluster(seed=5, replica_class=CommitWithoutMajority)
    old = c.elect()
    c.isolate(old)
    c.propose(old, b"only-on-old", "u1")
    c.run(20)
    assert "u1" in c.committed_ids(old)  # committed with no other acceptor
    assert b"only-on-old" in c.data(old)
    others = [n for n in c.replicas if n != old]
    c.run_until(lambda: any(c.replicas[n].leader_ready for n in others))
    new = next(n for n in others if c.replicas[n].leader_ready)
    c.propose(new, b"on-new", "u2")
    c.run(50)
    assert any("slot" in v for v in c.violations)  # two different values applied at one slot


def test_safe_config_does_not_commit_in_the_same_scenario() -> None:
    c = Cluster(seed=5)
    old = c.elect()
    c.isolate(old)
    c.propose(old, b"only-on-old", "u1")
    c.run(20)
    assert "u1" not in c.committed_ids(old)


def test_lagging_follower_catches_up_after_a_partition() -> None:
    c = Cluster(seed=6)
    leader = c.elect()
    lag = next(n for n in c.replicas if n != leader)
    c.isolate(lag)
    for i in range(40):
        c.propose(leader, b"e%d" % i, f"e{i}")
        if i % 7 == 0:
            c.run(20)
    c.run(100)
    assert len(c.data(leader)) == 40 and c.data(lag) == []
    c.heal()
    c.run_until(lambda: c.data(lag) == c.data(leader), max_ms=3000)
    assert c.leaders() == [leader]
    assert c.violations == []


def test_lost_and_reordered_accepts_are_recovered() -> None:
    cfg = dataclasses.replace(FAST, max_batch_commands=1, max_entries_per_message=1)
    c = Cluster(config=cfg, seed=7)
    leader = c.elect()
    rnd = random.Random(7)
    for i in range(20):
        c.propose(leader, b"%d" % i, f"q{i}")
    c.flush(leader)
    # Reorder and drop some of the Accepts before delivering.
    rnd.shuffle(c.inflight)
    c.inflight = [m for m in c.inflight if not isinstance(m, Accept) or rnd.random() > 0.3]
    c.deliver()
    c.run(500)
    for n in c.replicas:
        assert c.data(n) == [b"%d" % i for i in range(20)]
    assert c.violations == []


def test_snapshot_is_installed_on_a_follower_behind_the_compaction_point() -> None:
    c = Cluster(seed=8)
    leader = c.elect()
    lag = next(n for n in c.replicas if n != leader)
    c.isolate(lag)
    for i in range(30):
        c.propose(leader, b"s%d" % i, f"s{i}")
        c.run(10)
    r = c.replicas[leader]
    applied = r.applied_index
    r.compact(applied, c.snapshot_bytes(leader))
    c.flush(leader)
    assert r.snapshot_index == applied and r.entry(applied) is None
    assert c.storages[leader].snapshot is not None
    assert all(i > applied for i in c.storages[leader].entries)
    c.heal()
    c.propose(leader, b"after", "after")
    c.run_until(lambda: c.data(lag) == c.data(leader) and b"after" in c.data(lag),
                max_ms=3000)
    installs = [m for m in c.sent if isinstance(m, InstallSnapshot) and m.dst == lag]
    assert any(m.snapshot.index == applied for m in installs)
    assert c.replicas[lag].snapshot_index == applied
    assert c.violations == []


def test_compaction_hint_and_bounds() -> None:
    cfg = dataclasses.replace(FAST, compact_threshold_entries=5, max_batch_commands=1)
    c = Cluster(["n1"], config=cfg)
    leader = c.elect()
    r = c.replicas[leader]
    for i in range(6):
        r.propose(b"x", f"x{i}")
    ready = r.ready()
    assert ready.compact_hint
    with pytest.raises(ValueError):
        r.compact(r.applied_index + 1, b"")
    r.compact(r.applied_index, b"snap")
    with pytest.raises(ValueError):
        r.compact(r.applied_index, b"again")
    assert not r.ready().compact_hint


def test_ready_persists_before_it_sends() -> None:
    """A Promise/Accepted is only ever emitted with the state it vouches for in `persist`."""
    c = Cluster(seed=9)
    leader = c.elect()
    f = next(n for n in c.replicas if n != leader)
    c.propose(leader, b"d", "d")
    lr = c.replicas[leader].ready()
    accept = next(m for m in lr.messages if isinstance(m, Accept) and m.dst == f)
    assert any(isinstance(a, PutEntries) for a in lr.persist)  # the leader's own acceptance
    c.replicas[f].step(accept, c.now)
    fr = c.replicas[f].ready()
    put = [a for a in fr.persist if isinstance(a, PutEntries)]
    assert put and {e.index for e in put[0].entries} >= {e.index for e in accept.entries}
    assert isinstance(fr.persist[-1], SaveHardState) or not any(
        isinstance(a, SaveHardState) for a in fr.persist)


@pytest.mark.parametrize("who", ["follower", "leader", "all"])
def test_restart_rebuilds_from_storage(who: str) -> None:
    c = Cluster(seed=10)
    leader = c.elect()
    for i in range(10):
        c.propose(leader, b"r%d" % i, f"r{i}")
    c.run(100)
    before = {n: list(c.data(n)) for n in c.replicas}
    victims = {"follower": [next(n for n in c.replicas if n != leader)],
               "leader": [leader], "all": list(c.replicas)}[who]
    for v in victims:
        c.crash(v)
    for v in victims:
        promised = c.storages[v].hard_state.promised
        c.restart(v)
        assert c.replicas[v].ballot == promised
        c.flush(v)  # replays the committed log into the fresh application state
        assert c.data(v) == before[v]
    new = c.elect()
    c.propose(new, b"more", "more")
    c.run(300)
    assert len({tuple(c.data(n)) for n in c.replicas}) == 1
    assert c.data(new)[-1] == b"more"
    assert c.violations == []


def test_restart_after_snapshot_restores_state_then_replays_the_tail() -> None:
    storage = MemoryLogStorage()
    r = Replica("g1", "solo", FAST, storage, random.Random(1), initial_voters=["solo"])
    now = 0
    while not r.leader_ready:
        now += 10
        r.tick(now)
        persist_ready(storage, r.ready())
    for i in range(3):
        r.propose(b"a%d" % i, i)
    ready = r.ready()
    persist_ready(storage, ready)
    state = [cmd.data for e in ready.committed for cmd in e.commands]
    r.compact(r.applied_index, msgpack.packb(state))
    r.propose(b"tail", "t")
    ready = r.ready()
    assert any(isinstance(a, SaveSnapshot) for a in ready.persist)
    persist_ready(storage, ready)

    again = Replica("g1", "solo", FAST, storage, random.Random(2), initial_voters=["solo"])
    ready = again.ready()
    assert ready.apply_snapshot is not None
    assert msgpack.unpackb(ready.apply_snapshot.data) == [b"a0", b"a1", b"a2"]
    assert [cmd.data for e in ready.committed for cmd in e.commands] == [b"tail"]
    assert again.commit_index == again.applied_index == r.commit_index


def test_committed_replies_name_the_slot() -> None:
    c = Cluster(seed=11)
    leader = c.elect()
    c.propose(leader, b"a", "a")
    c.deliver()
    (reply,) = [x for x in c.replies[leader] if isinstance(x, ProposalCommitted)]
    entry = c.replicas[leader].entry(reply.index)
    assert entry is not None and [cmd.request_id for cmd in entry.commands] == ["a"]


def test_step_rejects_messages_for_another_group_or_node() -> None:
    c = Cluster(seed=12)
    leader = c.elect()
    m = next(m for m in c.sent if m.src == leader)
    other = dataclasses.replace(m, group_id="other")
    with pytest.raises(ValueError):
        c.replicas[m.dst].step(other, c.now)
    with pytest.raises(ValueError):
        c.replicas[leader].step(m, c.now)  # addressed to someone else


def test_time_must_not_go_backwards() -> None:
    r = Replica("g", "a", PaxosConfig(), MemoryLogStorage(), random.Random(0),
                initial_voters=["a"])
    r.tick(100)
    with pytest.raises(ValueError):
        r.tick(99)
