"""Leader lease: lease reads, expiry, the drift window, and never two valid leases at once."""

from __future__ import annotations

import random

import pytest
from test_paxos_harness import FAST, Cluster

from quorumdb.core.paxos import (
    Ballot,
    HeartbeatAck,
    Prepare,
    Promise,
    ReadGranted,
    ReadRejected,
    ReplyReason,
    Role,
)


def read(c: Cluster, node: str, rid: str) -> ReadGranted | ReadRejected:
    c.replicas[node].read(rid, c.now)
    c.flush(node)
    (reply,) = [r for r in c.replies[node] if getattr(r, "request_id", None) == rid]
    assert isinstance(reply, ReadGranted | ReadRejected)
    return reply


def test_lease_read_is_served_at_the_commit_index_without_a_round_trip() -> None:
    c = Cluster(seed=1)
    leader = c.elect()
    c.propose(leader, b"w1", "w1")
    c.run(60)
    sent_before = len(c.sent)
    reply = read(c, leader, "r1")
    assert reply == ReadGranted(request_id="r1", read_index=c.replicas[leader].commit_index)
    assert len(c.sent) == sent_before  # no messages for a lease read
    # By the Ready ordering rules the driver has applied up to read_index already.
    assert c.applied[leader][-1][0] >= reply.read_index


def test_followers_refuse_reads_and_point_to_the_leader() -> None:
    c = Cluster(seed=2)
    leader = c.elect()
    c.run(50)
    for n in c.replicas:
        if n != leader:
            assert read(c, n, f"r-{n}") == ReadRejected(
                request_id=f"r-{n}", reason=ReplyReason.NOT_LEADER, leader_hint=leader)


def test_new_leader_refuses_reads_until_its_own_entry_commits() -> None:
    c = Cluster(seed=3)
    # Deliver only until somebody wins phase 1; its no-op is not yet accepted by anyone else.
    while not c.leaders():
        c.now += 10
        for r in c.replicas.values():
            r.tick(c.now)
        c.deliver(stop=lambda: bool(c.leaders()))
    leader = c.leader()
    assert not c.replicas[leader].leader_ready
    assert read(c, leader, "early").reason is ReplyReason.NOT_READY  # type: ignore[union-attr]
    c.deliver()
    c.run(40)
    assert c.replicas[leader].leader_ready
    assert isinstance(read(c, leader, "later"), ReadGranted)


def test_lease_expires_from_the_send_time_and_nobody_serves_in_the_drift_window() -> None:
    c = Cluster(seed=4)
    old = c.elect()
    c.run(100)
    c.isolate(old)
    # The newest heartbeat a majority acknowledged before the cut bounds the lease.
    acked = max(m.sent_ms for _, m in c.delivered
                if isinstance(m, HeartbeatAck) and m.ok and m.dst == old)
    expiry = acked + FAST.lease_ms
    last_ack_at = max(t for t, m in c.delivered if isinstance(m, HeartbeatAck) and m.dst == old)
    promise_end = last_ack_at + FAST.lease_ms + FAST.max_clock_drift_ms
    assert isinstance(read(c, old, "before"), ReadGranted)
    new_leader_at = None
    while new_leader_at is None:
        c.tick(5)
        served = read(c, old, f"t{c.now}")
        if c.now < expiry:
            assert isinstance(served, ReadGranted)
        else:
            assert served.reason in (ReplyReason.NO_LEASE, ReplyReason.NOT_LEADER)  # type: ignore[union-attr]
        if c.now < promise_end:
            # The drift window: the old lease is over but the followers still refuse others.
            for n in c.replicas:
                if n != old:
                    assert c.replicas[n].role is not Role.LEADER
        others = [n for n in c.leaders() if n != old]
        if others:
            new_leader_at = c.now
    assert new_leader_at >= promise_end
    granted = [t for t, m in c.delivered if isinstance(m, Promise) and m.ok and m.src != old
               and m.ballot.node_id != old and t > last_ack_at]
    assert granted and min(granted) >= promise_end
    assert c.violations == []


def test_follower_under_lease_refuses_a_candidate_then_grants_after_it() -> None:
    c = Cluster(seed=5)
    leader = c.elect()
    c.run(50)
    f = next(n for n in c.replicas if n != leader)
    r = c.replicas[f]
    high = Ballot(round=r.ballot.round + 10, node_id="zz")
    r.step(Prepare(group_id="g1", src="zz", dst=f, ballot=high, first_index=1), c.now)
    (reply,) = r.ready().messages
    assert isinstance(reply, Promise) and not reply.ok and reply.reason == "lease"
    assert r.ballot < high  # nothing promised
    later = c.now + FAST.lease_ms + FAST.max_clock_drift_ms
    r.step(Prepare(group_id="g1", src="zz", dst=f, ballot=high, first_index=1), later)
    (reply,) = r.ready().messages
    assert isinstance(reply, Promise) and reply.ok and r.ballot == high


def test_restarted_replica_honours_a_lease_it_may_have_acknowledged() -> None:
    c = Cluster(seed=6)
    leader = c.elect()
    f = next(n for n in c.replicas if n != leader)
    c.crash(f)
    c.restart(f)
    r = c.replicas[f]
    r.tick(c.now)
    high = Ballot(round=r.ballot.round + 10, node_id="zz")
    r.step(Prepare(group_id="g1", src="zz", dst=f, ballot=high, first_index=1), c.now + 1)
    (reply,) = r.ready().messages
    assert isinstance(reply, Promise) and reply.reason == "lease"


@pytest.mark.parametrize("seed", range(8))
def test_never_two_valid_leases_under_random_partitions(seed: int) -> None:
    rnd = random.Random(seed)
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    c = Cluster(nodes, seed=seed)
    c.elect()
    for step in range(12):
        c.heal()
        if rnd.random() < 0.8:
            cut = rnd.sample(nodes, rnd.randint(1, 2))
            c.partition(cut, [n for n in nodes if n not in cut])
        for n in c.leaders():
            c.propose(n, f"{step}".encode(), f"s{seed}-{step}-{n}")
        c.run(rnd.choice([100, 300, 700]))
        assert c.violations == []  # check_leases runs on every tick
    c.heal()
    leader = c.elect()
    c.propose(leader, b"end", "end")
    c.run(300)
    assert len({tuple(c.data(n)) for n in nodes}) == 1
    assert c.violations == []
