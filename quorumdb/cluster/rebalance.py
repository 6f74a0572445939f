"""Replica moves: how the metadata service spreads partitions over the nodes it has.

A pure planner. ``next_moves(metadata, observed)`` returns the metadata commands to propose
next (``cmd_move`` / ``cmd_finish_move``); the meta leader's node runs it every
``rebalance_ms`` with what it observed of each group (its leader's actual voters and each
replica's commit lag) and proposes what it returns. A move is one-at-a-time Paxos membership
change work:

1. ``move(g, src, dst)``: ``dst`` joins the partition's replicas with a new replica id. Its
   node opens the group empty; the group's leader adds the id as a voter (one membership change)
   and catches it up (a snapshot, then the log).
2. ``finish_move(g)`` once the leader's membership has the new voter and the new replica's
   commit lag is at most ``catch_up_slots``: ``src`` leaves the replicas; the leader removes
   its voter (a second change); ``src``'s node stops the group once it is out.

So a group always keeps at least its replication factor of voters, and adds come before
removals. At most ``max_moves`` moves are in flight at once, which bounds the snapshot traffic
competing with foreground requests.

What is planned, in order: (a) partitions with fewer replicas than their replication factor
get one on the least loaded node; (b) replicas on nodes that left (or were declared dead) move
to the least loaded node; (c) while the most and least loaded active nodes differ by more than
one replica, one replica moves from the former to the latter. Loads count replicas per node as they will
be once the moves in flight finish, so the end state is balanced within one replica of the
mean, and a join or a leave moves as few replicas as balance needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quorumdb.cluster.metadata import Metadata, PartitionInfo, cmd_finish_move, cmd_move

__all__ = ["Observed", "next_moves", "loads"]


@dataclass(frozen=True, slots=True)
class Observed:
    """What the group's leader reports: its voters and each replica's commit lag (by node)."""

    voters: frozenset[str]
    lag: Mapping[str, int]


def loads(md: Metadata) -> dict[str, int]:
    """Replicas per active node."""
    out = {n: 0 for n in md.active_nodes()}
    for p in md.all_partitions():
        for r in p.replicas:
            if r in out:
                out[r] += 1
    return out


def next_moves(
    md: Metadata, observed: Mapping[str, Observed], *, max_moves: int = 1, catch_up_slots: int = 16
) -> list[dict[str, Any]]:
    cmds: list[dict[str, Any]] = []
    parts = md.all_partitions()
    moving = [p for p in parts if p.moving is not None]
    for p in moving:
        assert p.moving is not None
        obs = observed.get(p.group_id)
        dst = p.moving[1]
        if obs is not None and obs.voters == frozenset(p.voters) and obs.lag.get(dst, catch_up_slots + 1) <= catch_up_slots:
            cmds.append(cmd_finish_move(p.group_id))
    budget = max_moves - len(moving)
    if budget <= 0:
        return cmds
    load = loads(md)
    for p in moving:  # count moves in flight at their end state
        assert p.moving is not None
        if p.moving[0] in load:
            load[p.moving[0]] -= 1
    if not load:
        return cmds
    active = set(load)
    still = [p for p in parts if p.moving is None]

    def least_loaded(p: PartitionInfo) -> str | None:
        free = [n for n in md.active_nodes() if n not in p.replicas]
        return min(free, key=lambda n: load[n]) if free else None

    def plan(p: PartitionInfo, src: str | None, dst: str) -> None:
        nonlocal budget
        cmds.append(cmd_move(p.group_id, src, dst))
        load[dst] += 1
        still.remove(p)
        budget -= 1

    for p in list(still):  # (a) too few replicas, (b) replicas on departed nodes
        if budget <= 0:
            return cmds
        gone = [r for r in p.replicas if r not in active]
        if len(p.replicas) < p.replication or gone:
            target = least_loaded(p)
            if target is not None:
                plan(p, gone[0] if gone and len(p.replicas) >= p.replication else None, target)
    while budget > 0:  # (c) balance
        hi = max(load, key=lambda n: (load[n], n))
        lo = min(load, key=lambda n: (load[n], n))
        if load[hi] - load[lo] <= 1:
            break
        p_move = next((p for p in still if hi in p.replicas and lo not in p.replicas), None)
        if p_move is None:
            break
        plan(p_move, hi, lo)
        load[hi] -= 1  # balance the end state
    return cmds
