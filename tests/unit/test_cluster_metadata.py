"""The metadata state machine: membership, catalog, partition map, epochs, determinism."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.cluster.metadata import (
    Metadata,
    cmd_claim_life,
    cmd_create_table,
    cmd_delete_table,
    cmd_join,
    cmd_leave,
    cmd_set_replicas,
    cmd_update_table,
    meta_voter_target,
    next_voter_change,
)
from quorumdb.cluster.placement import HASH_SPACE
from quorumdb.cluster.statemachine import MetadataStateMachine, pack
from quorumdb.model.schema import TableDef
from tests.unit.test_dataplane_support import table_def


def _join(i: int, inc: int = 1) -> dict[str, Any]:
    return cmd_join(f"n{i}", inc, ("127.0.0.1", 7000 + i), ("127.0.0.1", 8000 + i))


def _run(cmds: list[dict[str, Any]]) -> tuple[Metadata, list[dict[str, Any]]]:
    m = Metadata(token_count=64)
    return m, [m.apply(i, c) for i, c in enumerate(cmds, start=1)]


def test_join_create_route_and_query() -> None:
    m, results = _run([_join(1), _join(2), _join(3), cmd_create_table(table_def("t").to_record(), 4)])
    assert all(r["ok"] for r in results)
    assert m.active_nodes() == ["n1", "n2", "n3"]
    assert m.epoch == 4
    parts = m.partitions("t")
    assert [p.hash_lo for p in parts] == [i * HASH_SPACE // 4 for i in range(4)]
    assert parts[-1].hash_hi == HASH_SPACE
    assert all(sorted(p.replicas) == ["n1", "n2", "n3"] for p in parts)
    assert len({p.group_id for p in parts}) == 4
    assert all(p.epoch == 4 for p in parts)
    for h in (0, HASH_SPACE // 4 - 1, HASH_SPACE // 4, HASH_SPACE - 1):
        p = m.partition_for("t", h)
        assert p is not None and p.hash_lo <= h < p.hash_hi
    assert m.partition_for("nope", 0) is None
    assert [p.hash_lo for p in m.partitions("t", HASH_SPACE // 4, HASH_SPACE // 2 + 1)] == [HASH_SPACE // 4, HASH_SPACE // 2]
    assert len(m.groups_of("n2")) == 4
    rec = m.table_record("t")
    assert rec is not None
    assert TableDef.from_record(rec).table_id == 1, "the metadata assigns table ids"


def test_lives_are_claimed_once_and_founders_are_recorded_with_theirs() -> None:
    m, results = _run([_join(1), _join(2), _join(3), cmd_create_table(table_def("t").to_record(), 2),
                       cmd_claim_life("n1"), cmd_claim_life("n1"), cmd_claim_life("n9")])
    assert all(r["ok"] for r in results)
    assert [r["life"] for r in results[4:]] == [2, 3, 1], "never the same life twice; 1 for a new name"
    assert all(sorted(p.founders) == ["n1", "n2", "n3"] for p in m.partitions("t"))
    rejoin = cmd_join("n1", 1, ("127.0.0.1", 7001), ("127.0.0.1", 8001), life=3)
    assert m.apply(8, rejoin)["ok"]
    assert m.pid_of("n1") == "n1@3" and m.nodes["n1"].life == 3
    stale = cmd_join("n1", 5, ("127.0.0.1", 7001), ("127.0.0.1", 8001), life=2)
    assert m.apply(9, stale) == {"ok": False, "error": "stale life 2 < 3"}, "an older copy of the data"
    assert m.apply(10, cmd_claim_life("n1"))["life"] == 4
    m.apply(11, cmd_create_table(table_def("u").to_record(), 1))
    assert sorted(m.partitions("u")[0].founders) == ["n1@3", "n2", "n3"]
    assert Metadata.restore(m.snapshot()).to_wire() == m.to_wire()


def test_refused_commands_change_nothing() -> None:
    m, _ = _run([_join(1), cmd_create_table(table_def("t").to_record(), 2)])
    before = m.snapshot()
    epoch = m.epoch
    index = m.applied_index
    for c in (
        cmd_create_table(table_def("t").to_record(), 2),  # exists
        cmd_delete_table("nope"),
        cmd_update_table(table_def("nope").to_record()),
        cmd_set_replicas("g99", ["n1"]),
        cmd_set_replicas("g1", ["n7"]),
        cmd_set_replicas("g1", []),
        cmd_leave("n1"),  # the last node
        cmd_leave("zz"),
        {"op": "bogus"},
        {"op": "join", "node": 5},
        "not a dict",
        cmd_create_table(table_def("u").to_record(), 0),
    ):
        index += 1
        r = m.apply(index, c)
        assert r["ok"] is False and r["error"], c
    assert m.epoch == epoch
    assert Metadata.restore(m.snapshot()).to_wire() | {"applied": 0} == Metadata.restore(before).to_wire() | {"applied": 0}


def test_every_change_bumps_the_epoch_and_partitions_carry_theirs() -> None:
    m, _ = _run([_join(1), _join(2), cmd_create_table(table_def("t").to_record(), 2)])
    g = m.partitions("t")[0].group_id
    e0 = m.epoch
    assert m.apply(10, _join(2))["ok"] and m.epoch == e0, "an identical join is not a change"
    assert m.apply(11, cmd_set_replicas(g, ["n2"]))["ok"]
    assert m.epoch == e0 + 1
    assert m.partitions("t")[0].replicas == ("n2",) and m.partitions("t")[0].epoch == e0 + 1
    assert m.partitions("t")[1].epoch == e0
    assert m.apply(12, _join(2, inc=2))["ok"] and m.epoch == e0 + 2, "a restart (new incarnation) is a change"
    assert not m.apply(13, _join(2, inc=1))["ok"], "a stale incarnation is refused"
    upd = table_def("t").to_record() | {"billing_mode": "PAY_PER_REQUEST", "table_id": 77}
    r = m.apply(14, cmd_update_table(upd))
    assert r["ok"] and r["table"]["table_id"] == 1 and m.tables["t"]["billing_mode"] == "PAY_PER_REQUEST"
    assert m.apply(15, cmd_delete_table("t"))["ok"]
    assert m.partitions("t") == [] and m.table_names() == [] and m.epoch == e0 + 4


def test_tokens_follow_membership_and_replication_is_capped_by_the_cluster() -> None:
    m, _ = _run([_join(1), cmd_create_table(table_def("solo").to_record(), 2)])
    assert all(p.replicas == ("n1",) for p in m.partitions("solo")), "one node: one replica"
    m.apply(3, _join(2))
    m.apply(4, _join(3))
    m.apply(5, _join(4))
    assert sorted(m.tokens.count(n) for n in m.active_nodes()) == [16, 16, 16, 16]
    m.apply(6, cmd_leave("n4"))
    assert "n4" not in m.tokens and m.nodes["n4"].state == "left"
    m.apply(7, cmd_create_table(table_def("t").to_record(), 8))
    assert all(len(p.replicas) == 3 and "n4" not in p.replicas for p in m.partitions("t"))


commands = st.one_of(
    st.builds(_join, st.integers(1, 6), st.integers(1, 3)),
    st.builds(lambda i: cmd_leave(f"n{i}"), st.integers(1, 6)),
    st.builds(lambda name, k: cmd_create_table(table_def(name).to_record(), k), st.sampled_from("abc"), st.integers(1, 5)),
    st.builds(lambda name: cmd_delete_table(name), st.sampled_from("abc")),
    st.builds(lambda g, ns: cmd_set_replicas(f"g{g}", [f"n{i}" for i in ns]), st.integers(1, 12),
              st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True)),
)


@settings(max_examples=100)
@given(st.lists(commands, max_size=30))
def test_apply_is_deterministic_and_snapshots_round_trip(cmds: list[dict[str, Any]]) -> None:
    a, ra = _run(cmds)
    b, rb = _run(cmds)
    assert ra == rb and a.snapshot() == b.snapshot()
    restored = Metadata.restore(a.snapshot())
    assert restored.snapshot() == a.snapshot()
    for table in a.table_names():
        parts = a.partitions(table)
        assert parts[0].hash_lo == 0 and parts[-1].hash_hi == HASH_SPACE
        assert all(x.hash_hi == y.hash_lo for x, y in zip(parts, parts[1:], strict=False))
        assert [p.to_wire() for p in restored.partitions(table)] == [p.to_wire() for p in parts]
    # The epoch counts exactly the commands that changed something.
    changes, prev = 0, 0
    for r in ra:
        if r["ok"]:
            assert r["epoch"] in (prev, prev + 1)
            changes += r["epoch"] == prev + 1
            prev = r["epoch"]
    assert a.epoch == changes


def test_the_state_machine_adapter_decodes_msgpack_and_refuses_garbage() -> None:
    sm = MetadataStateMachine()
    assert sm.apply(1, pack(_join(1)))["ok"]
    assert sm.apply(2, b"\xc1")["ok"] is False
    other = MetadataStateMachine()
    other.restore(sm.snapshot())
    assert other.metadata.active_nodes() == ["n1"] and other.metadata.applied_index == 2
    other.restore(b"")
    assert other.metadata.active_nodes() == []


def test_meta_voters_grow_to_three_then_five_one_step_at_a_time() -> None:
    assert meta_voter_target(["n1"], ["n1"]) == ("n1",)
    assert meta_voter_target(["n1", "n2"], ["n1"]) == ("n1", "n2")
    assert meta_voter_target(["n1", "n2", "n3", "n4"], ["n1", "n2"]) == ("n1", "n2", "n3")
    assert meta_voter_target(["n1", "n2", "n3", "n4"], ["n2", "n3", "n4"]) == ("n2", "n3", "n4"), "current voters stay"
    assert len(meta_voter_target([f"n{i}" for i in range(7)], ["n1"])) == 5
    assert meta_voter_target(["n2", "n3", "n4"], ["n1", "n2", "n3"], ["n1"]) == ("n2", "n3", "n4"), "a departed voter is replaced"
    # The founding voter is kept even while others registered before it did.
    assert meta_voter_target(["n2", "n3"], ["n1"]) == ("n1", "n2", "n3")
    assert meta_voter_target(["n2", "n3", "n4"], ["n1"]) == ("n1", "n2", "n3")
    assert next_voter_change(["n1"], ["n1", "n2"]) == ("add", "n2")
    assert next_voter_change(["n1", "n2", "n3"], ["n2", "n3", "n4"]) == ("add", "n4")
    assert next_voter_change(["n1", "n2", "n3", "n4"], ["n2", "n3", "n4"]) == ("remove", "n1")
    assert next_voter_change(["n1"], ["n1"]) is None
