"""Membership change: add or remove one voter at a time through CONFIG log entries."""

from __future__ import annotations

import pytest
from test_paxos_harness import Cluster

from quorumdb.core.paxos import (
    Accept,
    InstallSnapshot,
    Membership,
    ProposalCommitted,
    ProposalRejected,
    ReplyReason,
    Role,
)


def change(c: Cluster, node: str, rid: str, **kw: str) -> None:
    c.replicas[node].change_membership(rid, **kw)


def reply_for(c: Cluster, node: str, rid: str) -> object:
    (r,) = [x for x in c.replies[node] if getattr(x, "request_id", None) == rid]
    return r


def test_add_a_replica_that_catches_up_and_then_counts_in_majorities() -> None:
    c = Cluster(["n1", "n2", "n3"], joiners=["n4"], seed=1)
    leader = c.elect()
    for i in range(5):
        c.propose(leader, b"a%d" % i, f"a{i}")
    c.run(50)
    assert c.replicas["n4"].membership is None  # knows nothing yet
    change(c, leader, "add4", add="n4")
    c.run(200)
    assert isinstance(reply_for(c, leader, "add4"), ProposalCommitted)
    four = Membership.of(["n1", "n2", "n3", "n4"])
    for n, r in c.replicas.items():
        assert r.membership == four, n
    assert c.data("n4") == c.data(leader)
    assert any(isinstance(m, InstallSnapshot) and m.dst == "n4" for m in c.sent)
    # Quorum is now 3 of 4: the leader plus one old follower is not enough.
    others = [n for n in ["n1", "n2", "n3"] if n != leader]
    c.partition([leader, others[0]], [others[1], "n4"])
    c.propose(leader, b"needs3", "q1")
    c.run(100)
    assert "q1" not in c.committed_ids(leader)
    c.heal()
    c.run(200)
    assert "q1" in c.committed_ids(leader) or any(
        isinstance(x, ProposalRejected) and x.request_id == "q1" for x in c.replies[leader])
    assert c.violations == []


def test_added_replica_behind_a_compacted_log_gets_the_real_snapshot() -> None:
    c = Cluster(["n1", "n2", "n3"], joiners=["n4"], seed=2)
    leader = c.elect()
    for i in range(10):
        c.propose(leader, b"s%d" % i, f"s{i}")
        c.run(10)
    r = c.replicas[leader]
    r.compact(r.applied_index, c.snapshot_bytes(leader))
    change(c, leader, "add4", add="n4")
    c.run(300)
    assert c.replicas["n4"].snapshot_index >= 1
    assert c.data("n4") == c.data(leader)
    assert c.replicas["n4"].membership == Membership.of(["n1", "n2", "n3", "n4"])
    assert c.violations == []


def test_remove_a_follower_shrinks_the_quorum_and_stops_replication_to_it() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=3)
    leader = c.elect()
    gone, stay = [n for n in c.replicas if n != leader]
    change(c, leader, "rm", remove=gone)
    c.run(100)
    assert isinstance(reply_for(c, leader, "rm"), ProposalCommitted)
    assert c.replicas[leader].membership == Membership.of([leader, stay])
    sent_before = len(c.sent)
    c.propose(leader, b"two", "two")
    c.run(100)
    assert not [m for m in c.sent[sent_before:] if m.dst == gone]
    assert "two" in c.committed_ids(leader)
    # Both remaining voters are needed now.
    c.isolate(stay)
    c.propose(leader, b"alone", "alone")
    c.run(100)
    assert "alone" not in c.committed_ids(leader)
    # The removed replica learned it is out (commit index piggybacked) and never campaigns.
    c.heal()
    c.run(2000)
    assert c.replicas[gone].membership == Membership.of([leader, stay])
    assert not [m for m in c.sent if m.src == gone and m.ballot.node_id == gone]
    assert c.violations == []


def test_removing_the_leader_makes_it_step_down_and_the_rest_elect() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=4)
    old = c.elect()
    change(c, old, "rm-self", remove=old)
    c.run(50)
    assert isinstance(reply_for(c, old, "rm-self"), ProposalCommitted)
    assert c.replicas[old].role is Role.FOLLOWER
    new = c.elect()
    assert new != old
    assert c.replicas[new].membership == Membership.of([n for n in c.replicas if n != old])
    c.propose(new, b"x", "x")
    c.run(100)
    assert "x" in c.committed_ids(new)
    c.run(3000)
    assert c.leaders() == [new]
    assert c.violations == []


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ({"add": "n4"}, {"add": "n5"}, ReplyReason.CONFIG_PENDING),
        ({"add": "n4"}, {"remove": "n3"}, ReplyReason.CONFIG_PENDING),
        (None, {"add": "n2"}, ReplyReason.INVALID),  # already a voter
        (None, {"remove": "n9"}, ReplyReason.INVALID),  # not a voter
    ],
)
def test_one_change_at_a_time_and_only_real_changes(
    first: dict[str, str] | None, second: dict[str, str], reason: ReplyReason
) -> None:
    c = Cluster(["n1", "n2", "n3"], seed=5)
    leader = c.elect()
    if first is not None:
        change(c, leader, "c1", **first)
    change(c, leader, "c2", **second)
    c.flush(leader)
    rejected = reply_for(c, leader, "c2")
    assert isinstance(rejected, ProposalRejected) and rejected.reason is reason


def test_membership_change_on_a_follower_points_to_the_leader() -> None:
    c = Cluster(["n1", "n2", "n3"], seed=6)
    leader = c.elect()
    f = next(n for n in c.replicas if n != leader)
    change(c, f, "c", add="n4")
    c.flush(f)
    assert reply_for(c, f, "c") == ProposalRejected(
        request_id="c", reason=ReplyReason.NOT_LEADER, leader_hint=leader)
    with pytest.raises(ValueError):
        c.replicas[leader].change_membership("bad", add="n4", remove="n3")


def test_uncommitted_change_survives_a_leader_crash_consistently() -> None:
    c = Cluster(["n1", "n2", "n3"], joiners=["n4"], seed=7)
    old = c.elect()
    f1, f2 = [n for n in ["n1", "n2", "n3"] if n != old]
    change(c, old, "add4", add="n4")
    c.flush(old)
    # Only f1 accepts the config entry; the acks are lost and the leader dies.
    for m in list(c.inflight):
        if isinstance(m, Accept) and m.dst == f1:
            c.replicas[f1].step(m, c.now)
            c.replicas[f1].ready()
    c.inflight.clear()
    c.crash(old)
    new = c.elect()
    c.run(300)
    memberships = {n: c.replicas[n].membership for n in c.replicas if n not in c.down}
    assert len(set(memberships.values())) == 1
    c.propose(new, b"after", "after")
    c.run(200)
    assert "after" in c.committed_ids(new)
    assert c.violations == []


def test_a_joiner_whose_bootstrap_snapshot_was_lost_is_sent_it_again() -> None:
    """A joining replica holds entries but commits nothing before it knows the membership; it
    reports no progress until then, so the leader resends the (index 0) snapshot."""
    c = Cluster(["n1", "n2", "n3"], joiners=["n4"], seed=3)
    leader = c.elect()
    lost: list[InstallSnapshot] = []

    def drop_first_snapshot(m: object) -> bool:
        if isinstance(m, InstallSnapshot) and m.dst == "n4" and not lost:
            lost.append(m)
            return True
        return False

    c.drop = drop_first_snapshot
    change(c, leader, "add4", add="n4")
    c.propose(leader, b"after", "after")
    c.run(1000)
    assert lost, "the first snapshot to n4 was never sent"
    assert c.replicas["n4"].membership == Membership.of(["n1", "n2", "n3", "n4"])
    assert b"after" in c.data("n4")
    assert c.violations == []
