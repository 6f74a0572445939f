"""Leader election with ballots: one leader, competing candidates, stale leaders stepping down."""

from __future__ import annotations

import random

import pytest
from test_paxos_harness import FAST, Cluster

from quorumdb.core.paxos import (
    Accept,
    Accepted,
    Ballot,
    Command,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatAck,
    MemoryLogStorage,
    Prepare,
    Promise,
    ProposalRejected,
    PutEntries,
    Replica,
    ReplyReason,
    Role,
)


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exactly_one_leader_and_everyone_follows_its_ballot(size: int, seed: int) -> None:
    c = Cluster([f"n{i}" for i in range(1, size + 1)], seed=seed)
    leader = c.elect()
    c.run(100)
    ballot = c.replicas[leader].ballot
    assert ballot.node_id == leader and ballot.round >= 1
    for n, r in c.replicas.items():
        assert r.ballot == ballot
        assert r.leader_id == leader
        assert (r.role is Role.LEADER) == (n == leader)
    assert c.violations == []


@pytest.mark.parametrize("seed", range(6))
def test_competing_candidates_resolve_to_one_leader(seed: int) -> None:
    """Everyone campaigns while cut off, then the network heals: ballots decide."""
    c = Cluster(["n1", "n2", "n3"], seed=seed)
    c.partition(["n1"], ["n2"], ["n3"])
    c.run(1500)
    assert all(r.role is Role.CANDIDATE for r in c.replicas.values())
    ballots = {r.ballot for r in c.replicas.values()}
    assert len(ballots) == 3  # every candidate has its own ballot
    c.heal()
    leader = c.elect()
    assert c.replicas[leader].ballot == max(r.ballot for r in c.replicas.values())
    prepares = [m for m in c.sent if isinstance(m, Prepare)]
    assert len({m.ballot for m in prepares}) >= 3
    assert c.violations == []


def test_promise_carries_accepted_entries_and_new_leader_reproposes_them() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=3)
    old = c.elect()
    others = [n for n in c.replicas if n != old]
    # The old leader gets one follower to accept a value, then dies before committing it.
    c.partition([old, others[0]], [others[1]])
    c.propose(old, b"maybe", "m1")
    c.flush(old)
    accept_only = [m for m in c.inflight]
    c.inflight.clear()
    for m in accept_only:  # deliver the Accept but drop the Accepted reply
        if m.dst == others[0]:
            c.replicas[m.dst].step(m, c.now)
            c.replicas[m.dst].ready()  # keep the persisted state, drop the messages
    c.crash(old)
    c.heal()
    new = c.elect()
    assert new != old
    assert b"maybe" in c.data(new)  # whoever wins learned it through phase 1 (or it is chosen)
    promises = [m for m in c.sent if isinstance(m, Promise) and m.ok and m.src == others[0]]
    assert promises or new == others[0]
    assert c.violations == []


def test_stale_leader_is_rejected_after_a_higher_ballot_and_steps_down() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=4)
    old = c.elect()
    old_ballot = c.replicas[old].ballot
    c.isolate(old)
    c.propose(old, b"lost?", "stale-1")
    c.run_until(lambda: len(c.leaders()) == 2 and all(
        c.replicas[n].leader_ready for n in c.leaders() if n != old))
    new = next(n for n in c.leaders() if n != old)
    assert c.replicas[new].ballot > old_ballot
    assert not c.replicas[old].has_lease(c.now)  # the new leader waited out the old lease
    c.heal()
    c.run_until(lambda: c.leaders() == [new])
    assert c.replicas[old].role is Role.FOLLOWER
    assert c.replicas[old].leader_id == new
    rejections = [m for m in c.sent if isinstance(m, HeartbeatAck | Accepted) and not m.ok
                  and m.dst == old]
    assert rejections and all(m.promised > old_ballot for m in rejections)
    outcome = [r for r in c.replies[old] if getattr(r, "request_id", None) == "stale-1"]
    assert len(outcome) == 1 and isinstance(outcome[0], ProposalRejected)
    assert outcome[0].reason in (ReplyReason.DROPPED,)
    c.propose(new, b"after", "a1")
    c.run(200)
    assert c.data(old) == c.data(new)
    assert c.violations == []


@pytest.mark.parametrize("kind", ["prepare", "heartbeat", "accept"])
def test_acceptor_refuses_lower_ballots_and_names_its_promise(kind: str) -> None:
    c = Cluster(["n1", "n2", "n3"], seed=5)
    leader = c.elect()
    follower = next(n for n in c.replicas if n != leader)
    r = c.replicas[follower]
    low = Ballot(round=r.ballot.round, node_id="a")  # same round, lower node id: lower ballot
    assert low < r.ballot
    env = {"group_id": "g1", "src": "a", "dst": follower, "ballot": low}
    msg = {
        "prepare": Prepare(**env, first_index=1),
        "heartbeat": Heartbeat(**env, commit_index=0, sent_ms=c.now),
        "accept": Accept(**env, entries=(), commit_index=0),
    }[kind]
    r.step(msg, c.now)
    (reply,) = r.ready().messages
    assert isinstance(reply, Promise | HeartbeatAck | Accepted)
    assert not reply.ok and reply.promised == r.ballot and reply.dst == "a"
    assert r.leader_id == leader and r.ballot.node_id == leader


def test_ballot_is_durable_and_restart_never_reuses_it() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=7)
    leader = c.elect()
    b = c.replicas[leader].ballot
    assert c.storages[leader].hard_state.promised == b
    for n in list(c.replicas):
        c.crash(n)
    for n in list(c.replicas):
        c.restart(n)
    new = c.elect()
    assert c.replicas[new].ballot > b
    assert c.violations == []


def test_leader_with_a_lease_reclaims_leadership_when_a_healed_replica_refuses_it() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=8)
    leader = c.elect()
    lost = next(n for n in c.replicas if n != leader)
    c.isolate(lost)
    c.run(3000)  # the cut-off replica campaigns on its own, pushing its ballot up
    assert c.replicas[lost].ballot > c.replicas[leader].ballot
    c.heal()
    c.run(200)
    # The leader re-ran phase 1 above the refusing ballot instead of waiting for an election.
    assert c.leaders() == [leader]
    assert c.replicas[lost].ballot == c.replicas[leader].ballot
    assert c.replicas[lost].leader_id == leader
    c.propose(leader, b"x", "x")
    c.run(100)
    assert c.data(lost) == c.data(leader) and b"x" in c.data(lost)
    assert c.violations == []


def _cmd(index: int, ballot: Ballot, data: bytes) -> Entry:
    return Entry(index=index, ballot=ballot, kind=EntryKind.COMMANDS,
                 commands=(Command(request_id=data.decode(), data=data),))


@pytest.mark.parametrize(
    ("n2_entries", "n2_commit", "n3_entries", "expected", "commit"),
    [
        # highest ballot wins per slot; gaps become no-ops; own no-op appended
        ([(1, 1, b"A"), (3, 1, b"C")], 0, [(1, 2, b"B")], [b"B", None, b"C", None], 0),
        # a promiser's chosen prefix is taken as chosen and committed at once
        ([(1, 1, b"A"), (2, 1, b"D")], 2, [], [b"A", b"D", None], 2),
        # nothing accepted anywhere: just the new leader's no-op
        ([], 0, [], [None], 0),
    ],
)
def test_phase_one_merge(
    n2_entries: list[tuple[int, int, bytes]], n2_commit: int,
    n3_entries: list[tuple[int, int, bytes]], expected: list[bytes | None], commit: int,
) -> None:
    storage = MemoryLogStorage()
    voters = ["n1", "n2", "n3", "n4", "n5"]  # the quorum (3) needs both promises below
    r = Replica("g1", "n1", FAST, storage, random.Random(0), initial_voters=voters)
    now = 0
    while r.role is not Role.CANDIDATE:
        now += 10
        r.tick(now)
    prepares = [m for m in r.ready().messages if isinstance(m, Prepare)]
    assert sorted(m.dst for m in prepares) == voters[1:]
    b = prepares[0].ballot
    for src, entries, commit_index in (("n2", n2_entries, n2_commit), ("n3", n3_entries, 0)):
        r.step(Promise(group_id="g1", src=src, dst="n1", ballot=b, ok=True, promised=b,
                       commit_index=commit_index, snapshot_index=0,
                       entries=tuple(_cmd(i, Ballot(round=rb, node_id=src), d)
                                     for i, rb, d in entries)), now)
    assert r.role is Role.LEADER and r.commit_index == commit
    got = [r.entry(i) for i in range(1, r.last_index + 1)]
    assert all(e is not None and e.ballot == b for e in got)  # everything re-stamped
    assert [e.commands[0].data if e and e.commands else None for e in got] == expected
    ready = r.ready()
    assert any(isinstance(a, PutEntries) for a in ready.persist)
    accepts = [m for m in ready.messages if isinstance(m, Accept)]
    assert {m.dst for m in accepts} == set(voters[1:])
