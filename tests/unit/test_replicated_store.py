"""PartitionStore: the leader evaluates jobs into commands, every replica applies them.

A list stands in for the replicated log: what matters here is that replicas applying the same
committed commands in the same order end with the same bytes, that a command evaluated on a
state that never became committed is skipped everywhere, and that applying is idempotent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from test_dataplane_support import put, table_def

from quorumdb.db.contract import WriteOp
from quorumdb.db.partition import HASH_SPACE, Partition
from quorumdb.db.replicated import PartitionStore, decode_command
from quorumdb.db.writer import WriteBatch, WriterState
from quorumdb.errors import ConditionalCheckFailedError
from quorumdb.model.schema import TableDef
from quorumdb.storage.engine import Engine
from quorumdb.storage.lmdb_engine import LmdbEngine
from quorumdb.storage.memory import MemoryEngine
from quorumdb.storage.prefixed import OverlayTxn, PrefixedEngine

T = dataclasses.replace(table_def(), table_id=7)


def job(op: WriteOp) -> Callable[[WriteBatch], Any]:
    return lambda b: b.run_write(op)


def incr(pk: str, sk: int, *, expect: int | None = None) -> WriteOp:
    def mutate(old: Any) -> Any:
        n = 0 if old is None else int(old["n"]["N"])
        if expect is not None and n != expect:
            raise ConditionalCheckFailedError()
        return {"pk": {"S": pk}, "sk": {"N": str(sk)}, "n": {"N": str(n + 1)}}

    return WriteOp(table=T, key={"pk": {"S": pk}, "sk": {"N": str(sk)}}, mutate=mutate)


@pytest.fixture(params=["memory", "lmdb"])
def base(request: Any, tmp_path: Any) -> Engine:
    if request.param == "memory":
        return MemoryEngine()
    return LmdbEngine(str(tmp_path / "data"))


def store(base: Engine, name: bytes) -> PartitionStore:
    return PartitionStore(PrefixedEngine(base, b"p/" + name + b"/"), WriterState(), id_prefix=name + b":")


def contents(s: PartitionStore) -> dict[bytes, bytes]:
    with s.engine.snapshot() as snap:
        return {k: bytes(v) for k, v in snap.iterate()}


def items(s: PartitionStore, t: TableDef = T) -> dict[str, int]:
    part = Partition(table_id=t.table_id, hash_lo=0, hash_hi=HASH_SPACE, engine=s.engine)
    return {r.item["pk"]["S"] + "/" + r.item["sk"]["N"]: int(r.item.get("n", {"N": "0"})["N"]) for r in part.scan(t, None, hash_lo=0, hash_hi=HASH_SPACE)}


def test_followers_apply_effects_and_end_equal(base: Engine) -> None:
    leader, follower = store(base, b"a"), store(base, b"b")
    log: list[bytes] = []
    # Three pipelined batches, each evaluated on top of the previous, none applied yet.
    for batch in ([incr("x", 1), incr("y", 1)], [incr("x", 1)], [incr("x", 1), incr("z", 2)]):
        outcomes, cmd = leader.evaluate([job(op) for op in batch], T)
        assert all(ok for ok, _ in outcomes)
        log.append(cmd.encode())
    assert leader.pending == 3 and items(leader) == {}  # nothing applied before the log says so
    for i, raw in enumerate(log, 1):
        assert leader.apply(i, raw) and follower.apply(i, raw)
    assert leader.pending == 0
    assert items(leader) == {"x/1": 3, "y/1": 1, "z/2": 1}
    assert contents(leader) == contents(follower)  # counters, catalog, applied index: all equal


def test_a_command_built_on_a_lost_one_is_skipped_everywhere(base: Engine) -> None:
    old_leader, new_leader, follower = store(base, b"a"), store(base, b"b"), store(base, b"c")
    _, a = old_leader.evaluate([job(incr("x", 1))], T)
    _, b = old_leader.evaluate([job(incr("x", 1))], T)  # evaluated on top of a (x=1 -> 2)
    # a was never chosen: the new leader's command takes its place, then b is committed.
    _, c = new_leader.evaluate([job(incr("x", 1, expect=0))], T)
    log = [c.encode(), b.encode(), a.encode()]
    for s in (old_leader, new_leader, follower):
        results = [s.apply(i, raw) for i, raw in enumerate(log, 1)]
        assert results == [True, False, False]
        assert items(s) == {"x/1": 1}
    assert old_leader.pending == 0  # its overlay was dropped when another command landed
    assert contents(old_leader) == contents(new_leader) == contents(follower)


def test_failed_condition_is_a_command_without_effects(base: Engine) -> None:
    s = store(base, b"a")
    outcomes, cmd = s.evaluate([job(incr("x", 1))], T)
    assert s.apply(1, cmd.encode())
    outcomes, cmd = s.evaluate([job(incr("x", 1, expect=5)), job(incr("y", 1))], T)
    assert not outcomes[0][0] and isinstance(outcomes[0][1], ConditionalCheckFailedError)
    assert outcomes[1][0]
    assert s.apply(2, cmd.encode())
    outcomes, cmd = s.evaluate([job(incr("x", 1, expect=5))], T)
    assert not outcomes[0][0] and decode_command(cmd.encode()).writes == ()
    assert s.pending == 0  # nothing to overlay
    assert s.apply(3, cmd.encode())  # applied: the failure was checked on committed state
    assert items(s) == {"x/1": 1, "y/1": 1}


def test_apply_is_idempotent_by_log_index(base: Engine) -> None:
    s, other = store(base, b"a"), store(base, b"b")
    _, cmd = s.evaluate([job(incr("x", 1))], T)
    raw = cmd.encode()
    assert s.apply(1, raw)
    before = contents(s)
    assert not s.apply(1, raw)  # replayed after a restart: already in
    assert contents(s) == before
    s.skip(2)  # a no-op entry
    assert s.applied_index == 2
    # A snapshot restores another replica to the same state; an older snapshot is ignored.
    other.restore(s.snapshot(), s.applied_index)
    assert contents(other) == contents(s)
    other.restore(store(base, b"empty").snapshot(), 1)
    assert contents(other) == contents(s)


def test_catalog_changes_flow_through_the_log(base: Engine) -> None:
    s, f = store(base, b"a"), store(base, b"b")
    _, c1 = s.evaluate([job(put(T, {"pk": {"S": "k"}, "sk": {"N": "1"}}))], T)
    t2 = dataclasses.replace(T, ttl_attribute="exp", ttl_enabled=True)
    _, c2 = s.evaluate([], t2)
    _, c3 = s.evaluate([], t2)  # unchanged definition: no effects
    assert c2.writes and not c3.writes
    for i, c in enumerate((c1, c2, c3), 1):
        s.apply(i, c.encode())
        f.apply(i, c.encode())
    assert contents(s) == contents(f)


def test_overlay_iterates_through_layers_in_order() -> None:
    eng = MemoryEngine()
    eng.write_batch([(b"a", b"1"), (b"c", b"3"), (b"e", b"5")])
    with eng.snapshot() as snap:
        t = OverlayTxn(snap, [{b"b": b"2", b"c": None}, {b"d": b"4", b"b": b"22"}])
        t.put(b"f", b"6")
        assert t.delete(b"a") and not t.delete(b"zz")
        assert list(t.iterate()) == [(b"b", b"22"), (b"d", b"4"), (b"e", b"5"), (b"f", b"6")]
        assert list(t.iterate(b"b", b"e", reverse=True)) == [(b"d", b"4"), (b"b", b"22")]
        assert list(t.iterate(b"b", b"e", lo_inclusive=False, hi_inclusive=True)) == [(b"d", b"4"), (b"e", b"5")]
        assert t.get(b"c") is None and t.get(b"b") == b"22"
    assert eng.get(b"a") == b"1"  # the base was never written


def test_prefixed_engines_do_not_see_each_other() -> None:
    eng = MemoryEngine()
    a, b = PrefixedEngine(eng, b"A/"), PrefixedEngine(eng, b"B/")
    a.write_batch([(b"k", b"1"), (b"\xff", b"2")])
    b.write_batch([(b"k", b"3")])
    with a.snapshot() as snap:
        assert list(snap.iterate()) == [(b"k", b"1"), (b"\xff", b"2")]
        assert list(snap.iterate(hi=b"\xff")) == [(b"k", b"1")]
    assert b.get(b"k") == b"3" and b.get(b"\xff") is None
    w = a.begin_write()
    w.delete(b"k")
    w.commit()
    assert a.get(b"k") is None and b.get(b"k") == b"3"


def test_commands_batched_in_one_entry_each_apply_once(base: Engine) -> None:
    """The log batches several commands into one slot: they share the entry's index."""
    s, f = store(base, b"a"), store(base, b"b")
    _, c1 = s.evaluate([job(incr("x", 1))], T)
    _, c2 = s.evaluate([job(incr("x", 1))], T)
    _, c3 = s.evaluate([job(incr("y", 1))], T)
    for r in (s, f):
        assert [r.apply(4, c.encode(), pos) for pos, c in enumerate((c1, c2))] == [True, True]
        assert r.apply(5, c3.encode(), 0)
        # A replay after a restart (from the same entries) changes nothing.
        assert not r.apply(4, c1.encode(), 0) and not r.apply(4, c2.encode(), 1) and not r.apply(5, c3.encode(), 0)
        assert items(r) == {"x/1": 2, "y/1": 1}
