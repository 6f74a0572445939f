"""The replica-move planner: adds before removals, one move at a time, balance within one."""

from __future__ import annotations

from typing import Any

from quorumdb.cluster.metadata import Metadata, cmd_create_table, cmd_join, cmd_leave
from quorumdb.cluster.rebalance import Observed, loads, next_moves
from tests.unit.test_dataplane_support import table_def


def _join(m: Metadata, i: int) -> None:
    assert m.apply(m.applied_index + 1, cmd_join(f"n{i}", 1, ("127.0.0.1", 7000 + i), ("127.0.0.1", 8000 + i)))["ok"]


def _settle(m: Metadata, *, max_moves: int = 1, rounds: int = 200) -> list[dict[str, Any]]:
    """Run the planner as the meta leader would, every group's leader applying each change at
    once (observed voters = the map's, lag 0), until it plans nothing more."""
    done: list[dict[str, Any]] = []
    for _ in range(rounds):
        observed = {p.group_id: Observed(voters=frozenset(p.voters), lag={r: 0 for r in p.replicas})
                    for p in m.all_partitions()}
        cmds = next_moves(m, observed, max_moves=max_moves)
        if not cmds:
            return done
        for c in cmds:
            assert m.apply(m.applied_index + 1, c)["ok"], c
            done.append(c)
        assert sum(1 for p in m.all_partitions() if p.moving) <= max_moves
        assert all(len(p.replicas) >= 3 for p in m.all_partitions()), "never below the replication factor"
    raise AssertionError("the planner did not settle")


def _balanced(m: Metadata) -> bool:
    counts = loads(m).values()
    return max(counts) - min(counts) <= 1


def test_grow_to_five_and_shrink_back_to_three() -> None:
    m = Metadata(token_count=64)
    for i in (1, 2, 3):
        _join(m, i)
    for t in ("a", "b"):
        assert m.apply(m.applied_index + 1, cmd_create_table(table_def(t).to_record(), 4))["ok"]
    assert loads(m) == {"n1": 8, "n2": 8, "n3": 8}
    _join(m, 4)
    _join(m, 5)
    moves = _settle(m, max_moves=2)
    first_ids = {p.group_id: set(p.voters) for p in m.all_partitions()}
    assert _balanced(m) and sorted(loads(m).values()) == [4, 5, 5, 5, 5]
    assert len([c for c in moves if c["op"] == "move"]) == 9, "only as many moves as balance needs"
    assert all(c["src"] is not None for c in moves if c["op"] == "move")
    assert all("@" in v for p in m.all_partitions() for v, r in zip(p.voters, p.replicas, strict=True)
               if r in ("n4", "n5")), "a replica added by a move has an id of its own"
    for node in ("n4", "n5"):
        assert m.apply(m.applied_index + 1, cmd_leave(node))["ok"]
    _settle(m)
    assert loads(m) == {"n1": 8, "n2": 8, "n3": 8}
    assert all(len(set(p.replicas)) == 3 for p in m.all_partitions())
    # A node placed on a group again gets a replica id it never had in that group.
    again = cmd_join("n4", 2, ("127.0.0.1", 7004), ("127.0.0.1", 8004))
    assert not m.apply(m.applied_index + 1, again)["ok"], "a node that left stays out in that life"
    assert m.apply(m.applied_index + 1, {**again, "life": 2})["ok"]
    _settle(m)
    p = next(p for p in m.all_partitions() if "n4" in p.replicas)
    assert p.replica_id("n4").startswith("n4@2.") and p.replica_id("n4") not in first_ids[p.group_id]


def test_a_move_finishes_only_once_the_new_voter_is_in_and_caught_up() -> None:
    m = Metadata(token_count=64)
    for i in (1, 2, 3):
        _join(m, i)
    m.apply(m.applied_index + 1, cmd_create_table(table_def("t").to_record(), 2))
    _join(m, 4)
    cmds = next_moves(m, {})
    assert [c["op"] for c in cmds] == ["move"] and cmds[0]["dst"] == "n4"
    assert m.apply(m.applied_index + 1, cmds[0])["ok"]
    assert next_moves(m, {}) == [], "one move at a time"
    p = next(p for p in m.all_partitions() if p.moving)
    assert p.moving == (cmds[0]["src"], "n4") and len(p.replicas) == 4
    old = frozenset(v for v in p.voters if not v.startswith("n4"))
    assert next_moves(m, {p.group_id: Observed(voters=old, lag={})}) == [], "not a voter yet"
    behind = Observed(voters=frozenset(p.voters), lag={"n4": 500})
    assert next_moves(m, {p.group_id: behind}) == [], "still catching up"
    caught = Observed(voters=frozenset(p.voters), lag={"n4": 0})
    assert [c["op"] for c in next_moves(m, {p.group_id: caught})] == ["finish_move"]


def test_a_dead_node_s_replicas_are_recreated_elsewhere() -> None:
    m = Metadata(token_count=64)
    for i in (1, 2, 3, 4):
        _join(m, i)
    m.apply(m.applied_index + 1, cmd_create_table(table_def("t").to_record(), 4))
    victim = next(iter(loads(m)))
    assert m.apply(m.applied_index + 1, cmd_leave(victim))["ok"]
    _settle(m)
    assert all(victim not in p.replicas and len(p.replicas) == 3 for p in m.all_partitions())
