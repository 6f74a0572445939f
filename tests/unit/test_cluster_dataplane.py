"""ClusterDataPlane over an in-process cluster whose replication is a perfect shared log.

The replication core is tested elsewhere (tests/unit/test_paxos_*, tests/sim); here each group's
log is a list every replica applies in order, so these tests are about routing: which node
evaluates a write, what is forwarded or shipped, where reads are served, how Scan walks
partitions and pages, and what the cluster refuses. Every RPC payload goes through msgpack, as
it would between processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from test_dataplane_support import put, table_def

from quorumdb.cluster.dataplane import ClusterDataPlane, NotLeaderError, PartitionReplica
from quorumdb.db.contract import Forward, WriteOp
from quorumdb.db.partition import HASH_SPACE
from quorumdb.db.replicated import Command, PartitionStore
from quorumdb.db.writer import WriterState
from quorumdb.errors import ConditionalCheckFailedError, ValidationError
from quorumdb.model.keys import partition_hash
from quorumdb.storage.memory import MemoryEngine
from quorumdb.storage.prefixed import PrefixedEngine


class Group:
    def __init__(self, info: Any) -> None:
        self.info = info
        self.leader: str = info.replicas[0]
        self.log: list[bytes] = []
        self.members: dict[str, PartitionReplica] = {}
        self.lose_next = 0  # drop this many proposals (as a deposed leader's would be)

    def commit(self, raw: bytes) -> dict[str, bool]:
        self.log.append(raw)
        return {n: r.apply(len(self.log), raw) for n, r in self.members.items()}


class Handle:
    def __init__(self, group: Group, node: str) -> None:
        self.group = group
        self.node = node

    def leader(self) -> str | None:
        return self.group.leader

    def is_leader(self) -> bool:
        return self.group.leader == self.node

    async def propose(self, command: bytes) -> Any:
        if not self.is_leader():
            raise NotLeaderError(self.group.leader)
        await asyncio.sleep(0)
        if self.group.lose_next:
            # Another leader's command takes the slot before ours: ours meets another state.
            self.group.lose_next -= 1
            last = self.group.members[self.node].store.last_id
            self.group.commit(Command(id=b"foreign%d" % len(self.group.log), base=last, writes=((b"zz", b"1"),)).encode())
        return self.group.commit(command)[self.node]

    async def lease_read(self) -> None:
        if not self.is_leader():
            raise NotLeaderError(self.group.leader)


class Cluster:
    def __init__(self, nodes: list[str], partitions: int, placement: list[tuple[str, ...]]) -> None:
        self.engines = {n: MemoryEngine() for n in nodes}
        self.tables: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, list[Any]] = {}
        self.groups: dict[str, Group] = {}
        self.partitions = partitions
        self.placement = placement
        self.planes = {n: ClusterDataPlane(Host(self, n), leader_wait_s=1.0) for n in nodes}
        self.rpcs: list[tuple[str, str]] = []

    def create(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec = dict(rec, table_id=len(self.tables) + 1)
        self.tables[rec["name"]] = rec
        n = self.partitions
        infos = []
        for i in range(n):
            info = SimpleNamespace(table=rec["name"], group_id=f"{rec['name']}-{i}", hash_lo=i * HASH_SPACE // n,
                                   hash_hi=(i + 1) * HASH_SPACE // n, replicas=self.placement[i % len(self.placement)], epoch=1)
            g = self.groups[info.group_id] = Group(info)
            for node in info.replicas:
                store = PartitionStore(PrefixedEngine(self.engines[node], f"{info.group_id}/".encode()), WriterState(),
                                       id_prefix=f"{node}/{info.group_id}/".encode())
                g.members[node] = PartitionReplica(info, store, Handle(g, node))
            infos.append(info)
        self.parts[rec["name"]] = infos
        return rec


class Host:
    def __init__(self, cluster: Cluster, node: str) -> None:
        self.c = cluster
        self.node_id = node

    def table_record(self, name: str) -> dict[str, Any] | None:
        return self.c.tables.get(name)

    def table_names(self) -> list[str]:
        return list(self.c.tables)

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        return [p for p in self.c.parts.get(table, []) if p.hash_lo < hash_hi and hash_lo < p.hash_hi]

    def replica(self, group_id: str) -> PartitionReplica | None:
        g = self.c.groups.get(group_id)
        return None if g is None else g.members.get(self.node_id)

    async def meta_propose(self, command: dict[str, Any]) -> dict[str, Any]:
        if command["op"] == "create_table":
            if command["table"]["name"] in self.c.tables:
                return {"ok": False, "error": "table exists"}
            return {"ok": True, "epoch": 1, "table": self.c.create(command["table"])}
        if command["op"] == "update_table":
            rec = dict(command["table"], table_id=self.c.tables[command["table"]["name"]]["table_id"])
            self.c.tables[rec["name"]] = rec
            return {"ok": True, "epoch": 1, "table": rec}
        raise AssertionError(command)

    async def await_epoch(self, epoch: int) -> None:
        return None  # one metadata for every node here

    async def call(self, node_id: str, method: str, payload: Any) -> Any:
        self.c.rpcs.append((self.node_id, node_id))
        wire = msgpack.unpackb(msgpack.packb(payload))
        out = await self.c.planes[node_id].handle_rpc(method, wire)
        return msgpack.unpackb(msgpack.packb(out))


def run(body: Any, nodes: int = 4, partitions: int = 4) -> None:
    names = [f"n{i}" for i in range(1, nodes + 1)]
    placement = [("n1", "n2", "n3"), ("n2", "n3", "n1"), ("n3", "n1", "n2"), ("n1", "n2", "n3")]
    asyncio.run(body(Cluster(names, partitions, placement)))


def item(pk: str, sk: int, **more: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, **{k: {"S": v} for k, v in more.items()}}


def leader_of(c: Cluster, pk: str) -> str:
    h = int.from_bytes(partition_hash({"S": pk}), "big")
    return next(p for p in c.parts["t"] if p.hash_lo <= h < p.hash_hi).replicas[0]


def test_writes_run_on_the_leader_and_reach_every_replica() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n4"].create_table(table_def())
        assert t.table_id == 1 and c.planes["n2"].table_names() == ["t"]
        for pk in ("a", "b", "c", "d", "e"):
            lead = leader_of(c, pk)
            res = await c.planes[lead].write(put(t, item(pk, 1, v="x")))
            assert res.new_size > 0
            others = [n for n in c.planes if n != lead]
            with pytest.raises(Forward) as fwd:
                await c.planes[others[0]].write(put(t, item(pk, 2)))
            assert fwd.value.node_id == lead
        # Every replica applied the same effects; a node without a replica reads remotely.
        for node, dp in c.planes.items():
            for pk in ("a", "b", "c", "d", "e"):
                got = await dp.get(t, {"pk": {"S": pk}, "sk": {"N": "1"}}, consistent=node == "n4")
                assert got is not None and got.item["v"] == {"S": "x"}
        for g in c.groups.values():
            states = [dict(r.store.engine.snapshot().iterate()) for r in g.members.values()]
            assert all(s == states[0] for s in states)

    run(body)


def test_batch_writes_are_shipped_to_each_partition_leader() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def())
        ops = [put(t, item(f"k{i}", i)) for i in range(40)]
        ops = [dataclasses.replace(op, constant=True) for op in ops]
        results = await c.planes["n4"].write_many(ops)
        assert all(not isinstance(r, BaseException) and r.new_size > 0 for r in results)
        assert {dst for src, dst in c.rpcs if src == "n4"} == {"n1", "n2", "n3"}
        everything = [r.item for r in await c.planes["n4"].scan(t, None)]
        assert sorted(int(i["sk"]["N"]) for i in everything) == list(range(40))
        hashes = [int.from_bytes(partition_hash(i["pk"]), "big") for i in everything]
        assert hashes == sorted(hashes)  # hash order across partitions
        await c.planes["n4"].refresh_stats()
        assert c.planes["n4"].table_stats(t) == c.planes["n1"].table_stats(t)
        assert c.planes["n4"].table_stats(t)[0] == 40

    run(body)


def test_scan_pages_cover_every_item_once() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def(range_key=False))
        ops = [dataclasses.replace(put(t, {"pk": {"S": f"k{i}"}}), constant=True) for i in range(30)]
        await c.planes["n2"].write_many(ops)
        seen: list[str] = []
        start = None
        while True:
            page = list(await c.planes["n4"].scan(t, None, exclusive_start=start, limit=7))[:7]
            seen.extend(r.item["pk"]["S"] for r in page)
            if len(page) < 7:
                break
            start = {"pk": page[-1].item["pk"]}
        assert sorted(seen) == sorted(f"k{i}" for i in range(30)) and len(seen) == 30

    run(body)


def test_a_lost_proposal_is_evaluated_again() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def())
        lead = leader_of(c, "ctr")
        g = next(g for g in c.groups.values() if g.info.replicas[0] == lead and g.info.hash_lo <= int.from_bytes(partition_hash({"S": "ctr"}), "big") < g.info.hash_hi)
        g.lose_next = 2

        def incr(old: Any) -> Any:
            n = 0 if old is None else int(old["n"]["N"])
            return {"pk": {"S": "ctr"}, "sk": {"N": "0"}, "n": {"N": str(n + 1)}}

        op = WriteOp(table=t, key={"pk": {"S": "ctr"}, "sk": {"N": "0"}}, mutate=incr)
        await asyncio.gather(*(c.planes[lead].write(op) for _ in range(5)))
        got = await c.planes[lead].get(t, op.key, consistent=True)
        assert got is not None and got.item["n"] == {"N": "5"}  # every increment once

    run(body)


def test_conditions_and_transactions_on_one_partition_and_refusals() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def())
        lead = leader_of(c, "p")

        def fail(old: Any) -> Any:
            raise ConditionalCheckFailedError()

        with pytest.raises(ConditionalCheckFailedError):
            await c.planes[lead].write(WriteOp(table=t, key={"pk": {"S": "p"}, "sk": {"N": "1"}}, mutate=fail))
        res = await c.planes[lead].transact_write([put(t, item("p", 1)), put(t, item("p", 2))])
        assert len(res) == 2
        got = await c.planes[lead].transact_get([(t, {"pk": {"S": "p"}, "sk": {"N": "1"}}), (t, {"pk": {"S": "p"}, "sk": {"N": "2"}})])
        assert all(g is not None for g in got)
        home = c.planes["n1"]._partition(t, {"S": "p"}).group_id
        other = next(pk for pk in (f"x{i}" for i in range(50)) if c.planes["n1"]._partition(t, {"S": pk}).group_id != home)
        with pytest.raises(ValidationError, match="span more than one partition"):
            await c.planes[lead].transact_write([put(t, item("p", 3)), put(t, item(other, 1))])
        with pytest.raises(ValidationError, match="span more than one partition"):
            await c.planes[lead].transact_get([(t, {"pk": {"S": "p"}, "sk": {"N": "1"}}), (t, {"pk": {"S": other}, "sk": {"N": "1"}})])
        assert await c.planes[lead].get(t, {"pk": {"S": "p"}, "sk": {"N": "3"}}) is None  # nothing partial

    run(body)


def test_conditional_batch_writes_never_forward_after_writing() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def())
        pks = [f"k{i}" for i in range(12)]
        ops = [put(t, item(pk, 1)) for pk in pks]  # not constant: as PartiQL's conditional writes
        results = await c.planes["n1"].write_many(ops)
        for pk, r in zip(pks, results, strict=True):
            if leader_of(c, pk) == "n1":
                assert not isinstance(r, BaseException)
            else:
                assert isinstance(r, ValidationError) and "not supported by this QuorumDB cluster yet" in r.message
                assert await c.planes["n1"].get(t, {"pk": {"S": pk}, "sk": {"N": "1"}}, consistent=True) is None
        # All in one partition: the whole request goes to that partition's leader, unwritten.
        lead = leader_of(c, "solo")
        other = next(n for n in c.planes if n != lead)
        with pytest.raises(Forward) as fwd:
            await c.planes[other].write_many([put(t, item("solo", 1)), put(t, item("solo", 2))])
        assert fwd.value.node_id == lead
        assert await c.planes[lead].get(t, {"pk": {"S": "solo"}, "sk": {"N": "1"}}, consistent=True) is None

    run(body)
