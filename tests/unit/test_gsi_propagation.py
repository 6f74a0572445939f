"""Global secondary indexes in the cluster, below the runtime: the outbox a base partition stages
with each write, its delivery to index partitions and their idempotent application
(``quorumdb.db.gsi``), the backfill walk, and the metadata that places index partitions.

Partitions here are ``PartitionStore``s whose commands are applied as soon as they are
evaluated (replication is tested elsewhere); what is under test is what survives a leader
change, a duplicate, a replay by a deposed leader, a failed delivery: the index must end equal
to what the table's items say, entry for entry, with exact counters.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any

import pytest
from test_dataplane_support import put, table_def

from quorumdb.cluster.metadata import (
    Metadata,
    cmd_create_table,
    cmd_delete_table,
    cmd_index_ready,
    cmd_join,
    cmd_update_table,
)
from quorumdb.cluster.wiring import removed_groups
from quorumdb.db import gsi
from quorumdb.db.contract import WriteOp
from quorumdb.db.partition import HASH_SPACE
from quorumdb.db.records import (
    HEADER_SIZE,
    counter_key,
    index_prefix,
    item_prefix,
    loads,
    record_size,
    unpack_counter,
)
from quorumdb.db.replicated import PartitionStore
from quorumdb.db.writer import WriterState, index_entry
from quorumdb.errors import ProvisionedThroughputExceededError
from quorumdb.model.keys import partition_hash
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef
from quorumdb.model.types import Item
from quorumdb.storage.engine import prefix_successor
from quorumdb.storage.memory import MemoryEngine

G_ALL = IndexDef(name="g_all", index_id=1, local=False, projection="ALL",
                 key_schema=KeySchema(hash=KeyAttr(name="g", type="S"), range=KeyAttr(name="sk", type="N")))
G_KEYS = IndexDef(name="g_keys", index_id=2, local=False, projection="KEYS_ONLY",
                  key_schema=KeySchema(hash=KeyAttr(name="g", type="S")))
G_INCL = IndexDef(name="h_incl", index_id=3, local=False, projection="INCLUDE", non_key_attributes=("color",),
                  key_schema=KeySchema(hash=KeyAttr(name="h", type="S"), range=KeyAttr(name="r", type="S")))
ATTRS = {"pk": "S", "sk": "N", "g": "S", "h": "S", "r": "S"}
TABLE = dataclasses.replace(table_def(indexes=(G_ALL, G_KEYS, G_INCL), attributes=ATTRS), table_id=1, version=1)
HALF = HASH_SPACE // 2


class Part:
    """One partition: a store whose commands commit at once (as if replicated)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.store = PartitionStore(MemoryEngine(), WriterState(global_index_sink=gsi.stage_changes),
                                    id_prefix=name.encode() + b"/")
        self.index = 0

    def run(self, job: Any, table: TableDef) -> Any:
        outcomes, cmd = self.store.evaluate([job], table)
        self.index += 1
        assert self.store.apply(self.index, cmd.encode())
        ok, value = outcomes[0]
        if not ok:
            raise value
        return value

    @property
    def engine(self) -> Any:
        return self.store.engine


def route(ix: IndexDef, h: int) -> str:
    return f"{ix.name}/{0 if h < HALF else 1}"


class World:
    """Two base partitions (by the table key's hash), two partitions per index, and the
    propagation senders of the base partitions' current leaders."""

    def __init__(self, table: TableDef, seed: int) -> None:
        self.table = table
        self.rng = random.Random(seed)
        self.base = {f"b{i}": Part(f"b{i}") for i in range(2)}
        self.index = {f"{ix.name}/{i}": Part(f"{ix.name}/{i}") for ix in (G_ALL, G_KEYS, G_INCL) for i in range(2)}
        self.progress: dict[str, dict[str, int]] = {b: {} for b in self.base}
        self.stale: list[tuple[str, str, int, list[Any]]] = []  # deliveries a deposed leader still sends
        self.replays = self.failures = self.leader_changes = 0

    def base_of(self, pk: str) -> Part:
        return self.base["b0" if int.from_bytes(partition_hash({"S": pk}), "big") < HALF else "b1"]

    def write(self, op: WriteOp) -> None:
        self.base_of(op.key["pk"]["S"]).run(lambda b: b.run_write(op), self.table)

    def deliver(self, dest: str, source: str, hi: int, changes: list[Any]) -> None:
        job = functools.partial(gsi.apply_changes, table=self.table, source=source, hi=hi, changes=changes)
        self.index[dest].run(job, self.table)

    def ship(self, name: str, *, faults: bool = True) -> None:
        """One delivery round of base partition ``name``'s leader (``cluster.indexes`` does this)."""
        part, progress = self.base[name], self.progress[name]
        cursor, last = gsi.outbox_state(part.engine)
        if last <= cursor:
            return
        window = gsi.read_outbox(part.engine, cursor, records_max=self.rng.randint(1, 6) if faults else 10_000)
        hi = window[-1][0]
        indexes = {ix.index_id: ix for ix in self.table.global_indexes}
        plan = gsi.plan_delivery(window, indexes, route, lambda d: progress.get(d, cursor))
        all_ok = True
        for dest, changes in plan.items():
            if faults and self.rng.random() < 0.15:
                all_ok = False  # the index partition had no leader
                self.failures += 1
                continue
            self.deliver(dest, name, hi, changes)
            progress[dest] = hi
            if faults and self.rng.random() < 0.1:
                self.deliver(dest, name, hi, changes)  # the RPC was retried after a timeout
                self.replays += 1
            if faults and self.rng.random() < 0.1:
                self.stale.append((dest, name, hi, changes))
        if all_ok:
            part.run(functools.partial(gsi.trim, upto=hi), self.table)
            progress.clear()
        if faults and self.rng.random() < 0.1:
            self.progress[name] = {}  # the leader changed: its successor starts from the cursor
            self.leader_changes += 1

    def replay_stale(self) -> None:
        while self.stale:
            dest, source, hi, changes = self.stale.pop(self.rng.randrange(len(self.stale)))
            self.deliver(dest, source, hi, changes)
            self.replays += 1

    def settle(self) -> None:
        for _ in range(1000):
            self.replay_stale()
            for name in self.base:
                self.ship(name, faults=False)
            if all(gsi.outbox_state(p.engine)[0] == gsi.outbox_state(p.engine)[1] for p in self.base.values()):
                return
        raise AssertionError("propagation did not settle")

    # -- what the index must be --------------------------------------------------------------------

    def items(self) -> list[tuple[Item, bytes]]:
        out = []
        lo = item_prefix(self.table.table_id)
        for p in self.base.values():
            with p.engine.snapshot() as snap:
                out += [(loads(memoryview(v)[HEADER_SIZE:]), bytes(v)) for _k, v in snap.iterate(lo, prefix_successor(lo))]
        return out

    def check(self) -> int:
        """The index partitions hold exactly the entries of the table's items, each in the
        partition its hash routes it to, and their counters say so. Returns the entries checked."""
        checked = 0
        for ix in self.table.global_indexes:
            want: dict[bytes, bytes] = {}
            for item, rec in self.items():
                e = index_entry(self.table, ix, item, rec)
                if e is not None:
                    want[e[0]] = e[1]
            got: dict[bytes, bytes] = {}
            prefix = index_prefix(self.table.table_id, ix.index_id)
            for i in range(2):
                part = self.index[f"{ix.name}/{i}"]
                with part.engine.snapshot() as snap:
                    entries = {bytes(k): bytes(v) for k, v in snap.iterate(prefix, prefix_successor(prefix))}
                assert all(route(ix, gsi.entry_hash(k)) == part.name for k in entries), "an entry in the wrong partition"
                assert not set(entries) & set(got), "an entry in two partitions"
                got.update(entries)
                count = unpack_counter(part.engine.get(counter_key(self.table.table_id, ix.index_id)))
                assert count == (len(entries), sum(record_size(v) for v in entries.values())), ix.name
            assert got == want, f"{ix.name}: {len(got)} entries, {len(want)} expected"
            checked += len(want)
        return checked


def random_item(rng: random.Random, pk: str) -> Item:
    item: Item = {"pk": {"S": pk}, "sk": {"N": "1"}, "v": {"N": str(rng.randrange(1000))}}
    if rng.random() < 0.8:
        item["g"] = {"S": f"g{rng.randrange(6)}"}
    if rng.random() < 0.6:
        item["h"] = {"S": f"h{rng.randrange(6)}"}
        item["r"] = {"S": rng.choice(["a", "b", ""])}  # "" cannot be a key: not indexed
    if rng.random() < 0.5:
        item["color"] = {"S": rng.choice(["red", "blue"])}
    return item


def delete(t: TableDef, pk: str) -> WriteOp:
    return WriteOp(table=t, key={"pk": {"S": pk}, "sk": {"N": "1"}}, mutate=lambda old: None)


# -- the outbox ------------------------------------------------------------------------------------


def test_a_write_stages_one_change_record_with_its_item() -> None:
    b = Part("b")
    item = {"pk": {"S": "a"}, "sk": {"N": "1"}, "g": {"S": "x"}, "h": {"S": "y"}, "r": {"S": "z"}, "color": {"S": "red"}}
    res = b.run(lambda batch: batch.run_write(put(TABLE, item)), TABLE)
    assert set(res.index_writes) == {"g_all", "g_keys", "h_incl"}  # ConsumedCapacity as on a single node
    assert gsi.outbox_state(b.engine) == (0, 1)
    ((seq, rec),) = gsi.read_outbox(b.engine, 0)
    assert seq == 1 and {c[0] for c in rec["c"]} == {1, 2, 3}
    whole = next(c for c in rec["c"] if c[0] == G_ALL.index_id)
    assert whole[1] is None and whole[3] is None and rec["n"] is not None  # ALL: the item record, once
    # No entry is written in the base partition itself.
    with b.engine.snapshot() as snap:
        assert list(snap.iterate(index_prefix(1, 1), prefix_successor(index_prefix(1, 3)))) == []
    # A change outside every projection stages nothing; a move stages old and new keys.
    b.run(lambda batch: batch.run_write(put(TABLE, {**item, "v": {"N": "1"}})), TABLE)
    assert gsi.outbox_state(b.engine) == (0, 2)  # g_all projects everything: one more record
    keys_only = dataclasses.replace(TABLE, indexes=(G_KEYS,), version=2)
    b.run(lambda batch: batch.run_write(put(keys_only, {**item, "v": {"N": "2"}})), keys_only)
    assert gsi.outbox_state(b.engine) == (0, 2)
    b.run(lambda batch: batch.run_write(put(keys_only, {**item, "g": {"S": "moved"}})), keys_only)
    (_, moved) = gsi.read_outbox(b.engine, 2)[0]
    ((iid, old_key, new_key, entry),) = moved["c"]
    assert iid == 2 and old_key is not None and new_key is not None and old_key != new_key and entry is not None


def test_a_sparse_item_stages_nothing_and_a_failed_write_consumes_no_number() -> None:
    b = Part("b")
    b.run(lambda batch: batch.run_write(put(TABLE, {"pk": {"S": "a"}, "sk": {"N": "1"}})), TABLE)
    assert gsi.outbox_state(b.engine) == (0, 0)

    def refuse(old: Any) -> Any:
        raise ValueError("condition")

    with pytest.raises(ValueError):
        b.run(lambda batch: batch.run_write(WriteOp(table=TABLE, key={"pk": {"S": "a"}, "sk": {"N": "1"}}, mutate=refuse)), TABLE)
    b.run(lambda batch: batch.run_write(put(TABLE, {"pk": {"S": "a"}, "sk": {"N": "1"}, "g": {"S": "x"}})), TABLE)
    assert gsi.outbox_state(b.engine) == (0, 1)


def test_a_base_partition_with_too_many_undelivered_changes_throttles_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gsi, "OUTBOX_RECORDS_MAX", 3)
    b = Part("b")

    def write(i: int) -> Any:
        return b.run(lambda batch: batch.run_write(put(TABLE, {"pk": {"S": f"p{i}"}, "sk": {"N": "1"}, "g": {"S": "x"}})), TABLE)

    for i in range(3):
        write(i)
    with pytest.raises(ProvisionedThroughputExceededError, match="global secondary indexes"):
        write(3)
    assert gsi.outbox_state(b.engine) == (0, 3)
    with b.engine.snapshot() as snap:  # nothing of the refused write was stored
        assert len(list(snap.iterate(item_prefix(1), prefix_successor(item_prefix(1))))) == 3
    b.run(functools.partial(gsi.trim, upto=2), TABLE)
    write(3)
    assert gsi.outbox_state(b.engine) == (2, 4)


def test_plan_splits_a_move_between_index_partitions_and_drops_deleted_indexes() -> None:
    lo_key = index_prefix(1, 2) + (5).to_bytes(8, "big") + b"lo"
    hi_key = index_prefix(1, 2) + (HALF + 5).to_bytes(8, "big") + b"hi"
    window = [(7, {"c": [[2, lo_key, hi_key, b"rec"], [9, None, lo_key, b"x"]], "n": None}),
              (8, {"c": [[2, hi_key, hi_key, b"rec2"]], "n": None})]
    plan = gsi.plan_delivery(window, {2: G_KEYS}, route, lambda d: 0)
    assert plan == {"g_keys/0": [[7, 2, lo_key, None, None]],
                    "g_keys/1": [[7, 2, None, hi_key, b"rec"], [8, 2, hi_key, hi_key, b"rec2"]]}
    # What a destination acknowledged is not planned again.
    again = gsi.plan_delivery(window, {2: G_KEYS}, route, lambda d: 7 if d == "g_keys/1" else 0)
    assert again == {"g_keys/0": [[7, 2, lo_key, None, None]], "g_keys/1": [[8, 2, hi_key, hi_key, b"rec2"]]}


def test_apply_skips_what_the_high_water_mark_covers_and_counts_exactly() -> None:
    ix = Part("ix")
    k1 = index_prefix(1, 2) + (1).to_bytes(8, "big") + b"a"
    k2 = index_prefix(1, 2) + (2).to_bytes(8, "big") + b"a"
    rec = b"\x01" + (10).to_bytes(4, "little") + b"{}"  # a record: its header says 10 bytes
    first = [[1, 2, None, k1, rec]]
    move = [[2, 2, k1, None, None], [3, 2, None, k2, rec]]

    def apply(source: str, hi: int, changes: list[Any]) -> int:
        return int(ix.run(functools.partial(gsi.apply_changes, table=TABLE, source=source, hi=hi, changes=changes), TABLE))

    assert apply("b0", 1, first) == 1
    assert apply("b0", 3, move) == 3
    for _ in range(2):  # a replay of either batch, in any order, changes nothing
        assert apply("b0", 1, first) == 3
        assert apply("b0", 3, move) == 3
    with ix.engine.snapshot() as snap:
        assert [k for k, _v in snap.iterate(index_prefix(1, 2), prefix_successor(index_prefix(1, 2)))] == [k2]
    assert unpack_counter(ix.engine.get(counter_key(1, 2))) == (1, 10)
    assert gsi.high_water_mark(ix.engine, "b0") == 3 and gsi.high_water_mark(ix.engine, "b1") == 0


# -- propagation under faults ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_index_equals_table_after_replays_failures_and_leader_changes(seed: int) -> None:
    w = World(TABLE, seed)
    pks = [f"p{i}" for i in range(30)]
    for _ in range(400):
        r = w.rng.random()
        pk = w.rng.choice(pks)
        if r < 0.75:
            w.write(put(TABLE, random_item(w.rng, pk)))
        elif r < 0.85:
            w.write(delete(TABLE, pk))
        elif r < 0.95:
            w.ship(w.rng.choice(list(w.base)))
        else:
            w.replay_stale()
    w.settle()
    assert w.check() > 0
    w.replay_stale()  # and a deposed leader's late deliveries change nothing afterwards
    assert w.check() > 0
    assert w.replays + w.failures + w.leader_changes > 0  # the faults happened


def test_trimming_keeps_what_is_not_delivered_and_the_cursor_never_moves_back() -> None:
    w = World(TABLE, 99)
    for i in range(5):
        w.write(put(TABLE, {"pk": {"S": f"p{i}"}, "sk": {"N": "1"}, "g": {"S": "x"}}))
    b = next(p for p in w.base.values() if gsi.outbox_state(p.engine)[1] >= 2)
    cursor, last = gsi.outbox_state(b.engine)
    assert b.run(functools.partial(gsi.trim, upto=1), TABLE) == 1
    assert [s for s, _r in gsi.read_outbox(b.engine, 0)] == list(range(2, last + 1))
    assert b.run(functools.partial(gsi.trim, upto=0), TABLE) == 1
    assert gsi.outbox_state(b.engine) == (1, last)


# -- backfill --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_backfill_with_concurrent_writes_ends_with_the_index_equal_to_the_table(seed: int) -> None:
    before = dataclasses.replace(TABLE, indexes=(G_KEYS,))
    w = World(before, seed)
    pks = [f"p{i}" for i in range(40)]
    for pk in pks:
        w.write(put(before, random_item(w.rng, pk)))
    w.settle()
    # UpdateTable adds g_all: backfilling. Writes, backfill chunks and deliveries interleave.
    creating = dataclasses.replace(G_ALL, status="CREATING", backfilling=True)
    w.table = dataclasses.replace(before, indexes=(G_KEYS, creating), version=2)
    assert not any(gsi.caught_up(p.engine, G_ALL.index_id) for p in w.base.values())
    done = {name: False for name in w.base}
    stale_writer = before  # a router that has not seen the new definition yet
    while not all(done.values()):
        r = w.rng.random()
        if r < 0.4:
            table = stale_writer if w.rng.random() < 0.3 else w.table
            w.write(put(table, random_item(w.rng, w.rng.choice(pks))))
        elif r < 0.5:
            w.write(delete(w.table, w.rng.choice(pks)))
        elif r < 0.8:
            name = w.rng.choice(list(w.base))
            chunk = functools.partial(gsi.backfill_chunk, table=w.table, index_id=G_ALL.index_id, items_max=3)
            done[name] = w.base[name].run(chunk, w.table)
        else:
            w.ship(w.rng.choice(list(w.base)))
    w.settle()
    assert all(gsi.caught_up(p.engine, G_ALL.index_id) for p in w.base.values())
    assert w.check() > 0


def test_a_stale_definition_never_takes_a_new_index_back() -> None:
    b = Part("b")
    v1 = dataclasses.replace(TABLE, indexes=(), version=1)
    v2 = dataclasses.replace(TABLE, indexes=(G_KEYS,), version=2)
    b.run(lambda batch: batch.run_write(put(v2, {"pk": {"S": "a"}, "sk": {"N": "1"}})), v2)
    # A router still on v1 writes: the partition keeps v2, so the write feeds the new index.
    b.run(lambda batch: batch.run_write(put(v1, {"pk": {"S": "b"}, "sk": {"N": "1"}, "g": {"S": "x"}})), v1)
    assert gsi.outbox_state(b.engine) == (0, 1)


# -- the metadata --------------------------------------------------------------------------------


def _meta(nodes: int = 3) -> Metadata:
    md = Metadata(token_count=16)
    for i in range(1, nodes + 1):
        assert md.apply(md.applied_index + 1, cmd_join(f"n{i}", 1, ("127.0.0.1", 1000 + i), ("127.0.0.1", 2000 + i)))["ok"]
    return md


def _do(md: Metadata, cmd: dict[str, Any]) -> dict[str, Any]:
    return md.apply(md.applied_index + 1, cmd)


def test_metadata_places_index_partitions_and_removes_them_with_the_index_or_table() -> None:
    md = _meta()
    rec = dataclasses.replace(TABLE, indexes=(G_ALL, G_KEYS)).to_record()
    res = _do(md, cmd_create_table(rec, 4))
    assert res["ok"]
    assert len(md.partitions("t")) == 4
    for name in ("g_all", "g_keys"):
        parts = md.index_partitions("t", name)
        assert [p.index for p in parts] == [name] * 4 and all(len(p.replicas) == 3 for p in parts)
        assert parts[0].hash_lo == 0 and parts[-1].hash_hi == HASH_SPACE
    assert len({p.group_id for p in md.all_partitions()}) == 12
    assert all(not ix["backfilling"] for ix in md.table_record("t")["indexes"])  # type: ignore[index]
    # UpdateTable: drop g_keys, add h_incl (a client's id is replaced by a fresh one).
    cur = TableDef.from_record(md.table_record("t"))  # type: ignore[arg-type]
    new = dataclasses.replace(cur, indexes=(cur.indexes[0], dataclasses.replace(G_INCL, index_id=2)))
    res = _do(md, cmd_update_table(new.to_record()))
    assert res["ok"]
    got = TableDef.from_record(res["table"])
    incl = got.index("h_incl")
    assert incl is not None and incl.index_id == 3 and incl.backfilling and incl.status == "CREATING"
    assert md.index_partitions("t", "g_keys") == [] and len(md.index_partitions("t", "h_incl")) == 4
    # A stale client copy (made before the index was ready) cannot undo its readiness.
    assert _do(md, cmd_index_ready("t", "h_incl", 3))["ok"]
    ready = TableDef.from_record(md.table_record("t"))  # type: ignore[arg-type]
    assert ready.index("h_incl") == dataclasses.replace(incl, status="ACTIVE", backfilling=False)
    assert _do(md, cmd_update_table(dataclasses.replace(got, tags={"a": "b"}).to_record()))["ok"]
    again = TableDef.from_record(md.table_record("t"))  # type: ignore[arg-type]
    assert again.index("h_incl") == ready.index("h_incl") and again.tags == {"a": "b"}
    # Ids are never reused: g_keys comes back as a new index.
    back = dataclasses.replace(again, indexes=(*again.indexes, G_KEYS))
    assert TableDef.from_record(_do(md, cmd_update_table(back.to_record()))["table"]).index("g_keys").index_id == 4  # type: ignore[union-attr]
    # The map survives a snapshot; deleting the table removes every partition, its indexes' too.
    assert Metadata.restore(md.snapshot()).all_partitions() == md.all_partitions()
    before = [p.group_id for p in md.all_partitions()]
    assert _do(md, cmd_delete_table("t"))["ok"]
    assert md.all_partitions() == []
    assert removed_groups(md, before + ["g999", "meta"]) == before  # a group not created yet is kept


def test_index_ready_refuses_an_unknown_index() -> None:
    md = _meta()
    _do(md, cmd_create_table(dataclasses.replace(TABLE, indexes=(G_ALL,)).to_record(), 2))
    assert not _do(md, cmd_index_ready("t", "nope", 1))["ok"]
    assert not _do(md, cmd_index_ready("t", "g_all", 7))["ok"]
    assert _do(md, cmd_index_ready("t", "g_all", 1))["ok"]  # already ACTIVE: nothing to do
