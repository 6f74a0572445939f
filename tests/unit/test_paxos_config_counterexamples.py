"""The two membership rules the mutant catalogue finds equivalent in this core, replayed on the
scripted traces that break Raft without them (Ongaro, raft-dev, 2015: "bug in single-server
membership changes"; and two changes in flight giving disjoint majorities).

In Raft a change governs from the moment it is appended, and a new leader keeps its log. Here a
change governs only the slots after it once committed, a change whose base is not the
membership in force at its slot is a no-op, and a candidate merges the highest-ballot value of
every slot and needs a majority of every membership along the merged log. Each test drives the
real core with the rule removed (``quorumdb.sim.mutants``) through the trace and checks that
nothing chosen is lost: the harness records every applied slot, and ``violations`` lists any
slot two replicas applied differently.
"""

from __future__ import annotations

from test_paxos_harness import Cluster

from quorumdb.core.paxos import Accept, Membership, ProposalCommitted, Role
from quorumdb.sim.mutants import NoNoopBeforeConfigChange, TwoConfigChangesPending


def _committed(c: Cluster, node: str, rid: str) -> bool:
    return any(isinstance(r, ProposalCommitted) and r.request_id == rid for r in c.replies[node])


def _elect_among(c: Cluster, nodes: list[str], *, ready: bool = True) -> str:
    """The first of ``nodes`` to win an election (with ``ready=False``, at once: before the
    no-op of its ballot is committed)."""
    c.run_until(lambda: any(c.replicas[n].role is Role.LEADER and (c.replicas[n].leader_ready or not ready)
                            for n in nodes), step=1)
    return next(n for n in nodes if c.replicas[n].role is Role.LEADER)


def test_ongaro_trace_with_no_noop_before_a_change() -> None:
    c = Cluster(["n1", "n2", "n3", "n4"], joiners=["n5"], seed=7, replica_class=NoNoopBeforeConfigChange)
    old = c.elect()
    c.propose(old, b"before", "before")
    c.run(200)
    assert _committed(c, old, "before")
    rest = [n for n in ("n1", "n2", "n3", "n4") if n != old]
    # 1. The old leader adds n5 but reaches only n5: C1 = C0 + n5 is accepted by two replicas.
    c.partition([old, "n5"], rest)
    c.replicas[old].change_membership("add5", add="n5")
    c.run(100)
    # 2. The other three elect a leader that at once removes the old leader (no no-op first)
    #    and commits a value under the new membership.
    c.drop = lambda m: isinstance(m, Accept) and m.src in rest  # hold the new leader's no-op back
    new = _elect_among(c, rest, ready=False)
    assert not c.replicas[new].leader_ready
    c.replicas[new].change_membership("drop-old", remove=old)  # the real core: NOT_READY
    c.drop = None
    c.run(300)
    assert isinstance(c.replicas[new], NoNoopBeforeConfigChange)
    assert c.replicas[new].activations > 0, "the change went in before the new leader's no-op committed"
    c.propose(new, b"after", "after")
    c.run(300)
    assert _committed(c, new, "drop-old") and _committed(c, new, "after")
    # 3. The old leader and n5 meet the one replica of the others that is not needed by the
    #    new membership's majority (Raft elects the old leader here, with C1's majority, and
    #    it overwrites the committed entries).
    witness = next(n for n in rest if n != new)
    c.partition([old, "n5", witness], [n for n in rest if n != witness])
    c.run(3000)
    c.heal()
    c.run(3000)
    assert c.violations == []
    leader = c.elect()
    assert b"after" in c.data(leader) and b"before" in c.data(leader)
    assert c.replicas[leader].membership == Membership.of([n for n in rest])


def test_two_changes_in_flight_never_commit_with_a_disjoint_majority() -> None:
    c = Cluster(["n1", "n2", "n3"], joiners=["n4", "n5"], seed=3, replica_class=TwoConfigChangesPending)
    old = c.elect()
    rest = [n for n in ("n1", "n2", "n3") if n != old]
    # The leader, cut off from the other voters, proposes two changes in a row (C0 + n4, then
    # + n5): in Raft, with both in effect on append, it would commit with n4 and n5 (3 of 5)
    # while the others commit with each other (2 of 3).
    c.partition([old, "n4", "n5"], rest)
    c.replicas[old].change_membership("add4", add="n4")
    c.run(50)
    c.replicas[old].change_membership("add5", add="n5")
    c.propose(old, b"lonely", "lonely")
    c.run(500)
    assert isinstance(c.replicas[old], TwoConfigChangesPending)
    assert c.replicas[old].activations > 0, "the second change went in while the first was pending"
    assert not _committed(c, old, "lonely"), "a majority of the committed membership is needed"
    new = _elect_among(c, rest)
    c.propose(new, b"majority", "majority")
    c.run(300)
    assert _committed(c, new, "majority")
    c.heal()
    c.run(3000)
    assert c.violations == []
    leader = c.elect()
    assert b"majority" in c.data(leader)
