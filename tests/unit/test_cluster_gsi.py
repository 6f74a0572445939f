"""Global secondary indexes through ``ClusterDataPlane`` and its ``IndexWork``, in one process.

The partition map is the real ``Metadata`` (index partitions placed as the table's); each group's
log is a list every replica applies in order (as in test_cluster_dataplane), with a leader the
test can move. The background work runs for real (propagation, backfill, readiness); every RPC
payload goes through msgpack. What is checked: routing of Query and Scan to index partitions,
the ConsistentRead refusal, counters, propagation that resumes on a new leader of a base or an
index partition, online backfill to ACTIVE, and deletion.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest
from test_dataplane_support import put, table_def

from quorumdb.cluster.dataplane import ClusterDataPlane, NotLeaderError, PartitionReplica
from quorumdb.cluster.metadata import Metadata, cmd_join
from quorumdb.db import gsi
from quorumdb.db.contract import Forward, WriteOp
from quorumdb.db.partition import HASH_SPACE
from quorumdb.db.replicated import PartitionStore
from quorumdb.db.writer import WriterState
from quorumdb.errors import ValidationError
from quorumdb.model.keys import partition_hash
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef
from quorumdb.storage.memory import MemoryEngine
from quorumdb.storage.prefixed import PrefixedEngine

NODES = ("n1", "n2", "n3")
BY_G = IndexDef(name="by_g", index_id=1, local=False, projection="INCLUDE", non_key_attributes=("c",),
                key_schema=KeySchema(hash=KeyAttr(name="g", type="S"), range=KeyAttr(name="sk", type="N")))
ATTRS = {"pk": "S", "sk": "N", "g": "S"}


class Group:
    def __init__(self, info: Any) -> None:
        self.info = info
        self.leader: str = info.replicas[0]
        self.log: list[bytes] = []
        self.members: dict[str, PartitionReplica] = {}

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
        if not self.is_leader():  # deposed while proposing: the slot went elsewhere
            raise NotLeaderError(self.group.leader)
        return self.group.commit(command)[self.node]

    async def lease_read(self) -> None:
        if not self.is_leader():
            raise NotLeaderError(self.group.leader)


class Cluster:
    def __init__(self) -> None:
        self.md = Metadata(token_count=12)
        for i, n in enumerate(NODES):
            self.md.apply(self.md.applied_index + 1, cmd_join(n, 1, ("127.0.0.1", 1000 + i), ("127.0.0.1", 2000 + i)))
        self.engines = {n: MemoryEngine() for n in NODES}
        self.groups: dict[str, Group] = {}
        self.planes = {n: ClusterDataPlane(Host(self, n), partitions_per_table=3, leader_wait_s=1.0,
                                           ttl_interval_s=0) for n in NODES}
        for dp in self.planes.values():
            dp.indexes.interval_s = 0.005
            dp.indexes.retry_s = 0.005

    def sync(self) -> None:
        """Host every group of the map, drop the removed ones (the node runtime does this)."""
        live = {p.group_id: p for p in self.md.all_partitions()}
        for gid in [g for g in self.groups if g not in live]:
            del self.groups[gid]
        for gid, info in live.items():
            if gid in self.groups:
                continue
            g = self.groups[gid] = Group(info)
            for node in info.replicas:
                store = PartitionStore(PrefixedEngine(self.engines[node], f"{gid}/".encode()),
                                       WriterState(global_index_sink=gsi.stage_changes), id_prefix=f"{node}/{gid}/".encode())
                g.members[node] = PartitionReplica(info, store, Handle(g, node))

    def group_of(self, table: str, index: str, h: int) -> Group:
        parts = self.md.index_partitions(table, index) if index else self.md.partitions(table)
        return self.groups[next(p for p in parts if p.hash_lo <= h < p.hash_hi).group_id]

    async def write(self, op: WriteOp) -> None:
        node = "n1"
        for _ in range(4):
            try:
                await self.planes[node].write(op)
                return
            except Forward as f:
                node = f.node_id
        raise AssertionError("no leader took the write")


class Host:
    def __init__(self, cluster: Cluster, node: str) -> None:
        self.c = cluster
        self.node_id = node

    def table_record(self, name: str) -> dict[str, Any] | None:
        return self.c.md.table_record(name)

    def table_names(self) -> list[str]:
        return self.c.md.table_names()

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        return self.c.md.partitions(table, hash_lo, hash_hi)

    def index_partitions(self, table: str, index: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        return self.c.md.index_partitions(table, index, hash_lo, hash_hi)

    def replica(self, group_id: str) -> PartitionReplica | None:
        g = self.c.groups.get(group_id)
        return None if g is None else g.members.get(self.node_id)

    async def meta_propose(self, command: dict[str, Any]) -> dict[str, Any]:
        wire = msgpack.unpackb(msgpack.packb(command))
        res = self.c.md.apply(self.c.md.applied_index + 1, wire)
        self.c.sync()
        return res

    async def await_epoch(self, epoch: int) -> None:
        return None  # one metadata for every node here

    async def call(self, node_id: str, method: str, payload: Any) -> Any:
        out = await self.c.planes[node_id].handle_rpc(method, msgpack.unpackb(msgpack.packb(payload)))
        return msgpack.unpackb(msgpack.packb(out))


def run(body: Callable[[Cluster], Awaitable[None]]) -> None:
    async def main() -> None:
        c = Cluster()
        for dp in c.planes.values():
            dp.indexes.start()
        try:
            await body(c)
        finally:
            for dp in c.planes.values():
                await dp.close()

    asyncio.run(main())


async def settle(check: Callable[[], Awaitable[bool]], rounds: int = 400) -> None:
    """Let the background work run until ``check()`` holds (bounded; never a timing claim)."""
    for _ in range(rounds):
        if await check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the indexes did not settle")


def row(i: int, g: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": f"p{i}"}, "sk": {"N": str(i)}, "c": {"S": f"c{i}"}, "x": {"S": "not projected"}}
    if g is not None:
        item["g"] = {"S": g}
    return item


def projected(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in ("pk", "sk", "g", "c")}


async def index_rows(dp: ClusterDataPlane, t: TableDef, segments: int = 1) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seg in range(segments):
        start = None
        while True:
            page = list(await dp.scan(t, t.index("by_g"), segment=seg, total_segments=segments, exclusive_start=start, limit=4))[:4]
            out += [r.item for r in page]
            if len(page) < 4:
                break
            last = page[-1].item
            start = {k: last[k] for k in ("pk", "sk", "g")}
    return out


def test_query_and_scan_read_the_index_partitions_once_propagated() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n2"].create_table(table_def("t", indexes=(BY_G,), attributes=ATTRS))
        assert {p.index for p in c.md.all_partitions()} == {"", "by_g"}
        items = [row(i, None if i % 5 == 0 else f"g{i % 4}") for i in range(40)]
        for it in items:
            await c.write(put(t, it))
        want = sorted((projected(it) for it in items if "g" in it), key=lambda r: r["pk"]["S"])

        async def converged() -> bool:
            got = await index_rows(c.planes["n3"], t)
            return sorted(got, key=lambda r: r["pk"]["S"]) == want

        await settle(converged)
        # Scan walks the index partitions in hash order; parallel scan segments cover it once.
        hashes = [partition_hash(r["g"]) for r in await index_rows(c.planes["n1"], t)]
        assert hashes == sorted(hashes)
        by_segments = [r["pk"]["S"] for r in await index_rows(c.planes["n1"], t, segments=3)]
        assert sorted(by_segments) == sorted(r["pk"]["S"] for r in want)
        q = list(await c.planes["n1"].query(t, t.index("by_g"), {"S": "g1"}, None))
        assert [r.item["sk"]["N"] for r in q] == sorted((it["sk"]["N"] for it in items if it.get("g") == {"S": "g1"}), key=int)
        assert c.planes["n1"].index_stats(t, BY_G)[0] == len(want)
        with pytest.raises(ValidationError, match="Consistent reads are not supported on global secondary indexes"):
            await c.planes["n1"].query(t, t.index("by_g"), {"S": "g1"}, None, consistent=True)
        with pytest.raises(ValidationError, match="Consistent reads are not supported on global secondary indexes"):
            await c.planes["n1"].scan(t, t.index("by_g"), consistent=True)

    run(body)


def test_propagation_resumes_after_leaders_of_base_and_index_partitions_move() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def("t", indexes=(BY_G,), attributes=ATTRS))
        for dp in c.planes.values():
            dp.indexes.batch_delay_s = 0.02  # changes pile up in the outboxes
        items = {i: row(i, f"g{i % 3}") for i in range(30)}
        for it in items.values():
            await c.write(put(t, it))
        backlog = sum(gsi.outbox_state(g.members[g.leader].store.engine)[1] - gsi.outbox_state(g.members[g.leader].store.engine)[0]
                      for g in c.groups.values() if not g.info.index)
        assert backlog > 0
        # Every base and index partition changes leader while changes are in flight.
        for g in c.groups.values():
            g.leader = g.info.replicas[1]
        for i in range(0, 30, 2):  # moves between index partitions, removals
            items[i] = row(i, None if i % 4 == 0 else "moved")
            await c.write(put(t, items[i]))
        for dp in c.planes.values():
            dp.indexes.batch_delay_s = 0
        want = sorted((projected(it) for it in items.values() if "g" in it), key=lambda r: r["pk"]["S"])

        def trimmed() -> bool:  # every outbox delivered and trimmed, on every replica
            return all(len(set(gsi.outbox_state(r.store.engine))) == 1 for g in c.groups.values() for r in g.members.values())

        async def converged() -> bool:
            got = await index_rows(c.planes["n2"], t)
            return sorted(got, key=lambda r: r["pk"]["S"]) == want and len(got) == len(want) and trimmed()

        await settle(converged)
        assert sum(dp.indexes.delivered for dp in c.planes.values()) >= len(items)

    run(body)


def test_online_backfill_then_active_then_delete_cleans_the_map() -> None:
    async def body(c: Cluster) -> None:
        t = await c.planes["n1"].create_table(table_def("t", attributes={"pk": "S", "sk": "N"}))
        items = {i: row(i, f"g{i % 5}") for i in range(60)}
        for it in items.values():
            await c.write(put(t, it))
        t = c.planes["n1"].table("t")
        creating = dataclasses.replace(BY_G, index_id=9, status="CREATING", backfilling=True)
        t = await c.planes["n3"].update_table(dataclasses.replace(t, indexes=(creating,), attribute_definitions=ATTRS))
        ix = t.index("by_g")
        assert ix is not None and ix.backfilling and ix.index_id == 1  # the metadata gives the id
        assert len(c.md.index_partitions("t", "by_g")) == 3
        for i in range(0, 60, 3):  # writes during the backfill
            items[i] = row(i, None if i % 2 else "late")
            await c.write(put(t, items[i]))

        async def active() -> bool:
            cur = c.planes["n2"].table("t").index("by_g")
            return cur is not None and not cur.backfilling and cur.status == "ACTIVE"

        await settle(active)
        t = c.planes["n2"].table("t")
        want = sorted((projected(it) for it in items.values() if "g" in it), key=lambda r: r["pk"]["S"])

        async def converged() -> bool:
            got = await index_rows(c.planes["n2"], t)
            return sorted(got, key=lambda r: r["pk"]["S"]) == want

        await settle(converged)
        # Delete the index: its partitions leave the map (the runtime drops their groups).
        gone = {p.group_id for p in c.md.index_partitions("t", "by_g")}
        await c.planes["n1"].update_table(dataclasses.replace(t, indexes=()))
        assert c.md.index_partitions("t", "by_g") == [] and not gone & set(c.groups)

    run(body)
