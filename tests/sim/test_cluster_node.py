"""Cluster nodes in one process on loopback: join, meta voters, partition groups, proposals,
restarts and table deletion (real TCP, real LMDB, fast Paxos timeouts)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from quorumdb.cluster.dataplane import NotLeaderError
from quorumdb.cluster.metadata import META_GROUP, cmd_create_table, cmd_delete_table
from quorumdb.cluster.node import ClusterConfig, ClusterNode, GroupError
from quorumdb.cluster.rpc import RpcError
from quorumdb.cluster.statemachine import KVStateMachine, pack
from quorumdb.core.paxos import PaxosConfig
from tests.sim.test_runtime_wire import _free_ports
from tests.unit.test_dataplane_support import table_def

FAST = PaxosConfig(heartbeat_interval_ms=20, lease_ms=200, max_clock_drift_ms=20, election_timeout_min_ms=300,
                   election_timeout_max_ms=600, retransmit_ms=60, max_batch_commands=1)


async def until(pred: Callable[[], bool], timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def _config(tmp: Path, i: int, port: int, seed: int | None) -> ClusterConfig:
    return ClusterConfig(node_id=f"n{i}", peer_address=("127.0.0.1", port), api_address=("127.0.0.1", 9000 + i),
                         data_dir=str(tmp / f"n{i}"), join=(("127.0.0.1", seed),) if seed else (),
                         secret=b"test", paxos=FAST, tick_ms=5, manage_ms=50, meta_refresh_ms=100)


def run(body: Callable[[Path, list[int]], Awaitable[None]], tmp: Path, n_ports: int = 4) -> None:
    asyncio.run(body(tmp, _free_ports(n_ports)))


async def put(nodes: list[ClusterNode], group: str, key: str, value: Any) -> None:
    """A put through whichever node leads ``group`` now (retried while leadership moves; a put
    of the same value is idempotent, so an unknown outcome may be retried too)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while True:
        leader = next((nd for nd in nodes if nd.groups[group].replica.leader_ready), None)
        try:
            if leader is not None:
                await leader.propose(group, pack({"op": "put", "key": key, "value": value}))
                return
        except GroupError:
            if loop.time() > end:
                raise
        await asyncio.sleep(0.05)


def voters(node: ClusterNode) -> list[str]:
    m = node.meta.replica.membership
    return list(m.voters) if m else []


async def start_cluster(tmp: Path, ports: list[int], n: int) -> list[ClusterNode]:
    nodes = []
    for i in range(n):
        node = ClusterNode(_config(tmp, i + 1, ports[i], None if i == 0 else ports[0]))
        await node.start()
        nodes.append(node)
    await until(lambda: all(len(nd.metadata.active_nodes()) == n for nd in nodes)
                and len(voters(nodes[0])) == min(n, 3))
    return nodes


def test_nodes_join_and_the_meta_group_grows_to_three_voters_only(tmp_path: Path) -> None:
    async def body(tmp: Path, ports: list[int]) -> None:
        nodes = await start_cluster(tmp, ports, 4)
        try:
            meta_voters = voters(nodes[0])
            assert len(meta_voters) == 3, "3 voters while fewer than 5 nodes"
            assert "n1" in meta_voters, "the founding voter stays"
            outsider = next(nd for nd in nodes if nd.node_id not in meta_voters)
            assert voters(outsider) == [], "the fourth node is no meta voter: it fetches the metadata"
            md = outsider.metadata
            assert sorted(md.active_nodes()) == ["n1", "n2", "n3", "n4"]
            assert md.nodes["n4"].peer_address == ("127.0.0.1", ports[3])
            assert all(voters(nd) == meta_voters for nd in nodes if nd is not outsider)
            leaders = [nd.node_id for nd in nodes if nd.meta.replica.role.value == "leader"]
            assert len(leaders) == 1
            st = await nodes[3].cluster_status()
            assert st["meta"]["leader"] == leaders[0]
            assert [n["up"] for n in st["nodes"]] == [True] * 4
        finally:
            for nd in nodes:
                await nd.close()

    run(body, tmp_path)


def test_tables_get_partition_groups_that_replicate_and_go_away(tmp_path: Path) -> None:
    async def body(tmp: Path, ports: list[int]) -> None:
        nodes = await start_cluster(tmp, ports, 3)
        try:
            # Any node can change the metadata (forwarded to the meta leader).
            r = await nodes[2].meta_propose(cmd_create_table(table_def("t").to_record(), 3))
            assert r["ok"] and r["table"]["table_id"] == 1
            assert not (await nodes[1].meta_propose(cmd_create_table(table_def("t").to_record(), 3)))["ok"]
            parts = nodes[0].metadata.partitions("t")
            groups = [p.group_id for p in parts]
            await until(lambda: all(g in nd.groups for nd in nodes for g in groups))

            def leader_of(g: str) -> ClusterNode | None:
                return next((nd for nd in nodes if nd.groups[g].replica.leader_ready), None)

            await until(lambda: all(leader_of(g) is not None for g in groups))
            # Propose through the RPC layer from a node that is not the leader of groups[0].
            leader = leader_of(groups[0])
            assert leader is not None
            other = next(nd for nd in nodes if nd is not leader)
            res = await other.call(leader.node_id, "group.propose",
                                   {"group": groups[0], "command": pack({"op": "put", "key": "k", "value": 7})})
            assert res == {"ok": True, "result": None}
            # A follower refuses and names the leader.
            with pytest.raises(RpcError) as err:
                await leader.call(other.node_id, "group.propose",
                                  {"group": groups[0], "command": pack({"op": "put", "key": "k", "value": 8})})
            assert (err.value.code, err.value.message) == ("not_leader", leader.node_id)
            with pytest.raises(GroupError) as gerr:
                await other.propose("g999", b"")
            assert gerr.value.reason == "no_group"
            # The same through the GroupHandle a partition's state machine gets.
            h, fh = leader.handle(groups[0]), other.handle(groups[0])
            assert h.is_leader() and not fh.is_leader() and fh.leader() == h.leader() == leader.node_id
            assert await h.propose(pack({"op": "put", "key": "h", "value": 1})) == {"ok": True, "result": None}
            await h.lease_read()
            with pytest.raises(NotLeaderError) as nl:
                await fh.propose(pack({"op": "put", "key": "h", "value": 2}))
            assert nl.value.leader == leader.node_id
            with pytest.raises(NotLeaderError):
                await fh.lease_read()
            assert isinstance(other.replica(groups[0]), KVStateMachine) and other.replica(META_GROUP) is None
            assert [p.group_id for p in other.partitions("t")] == groups and other.table_names() == ["t"]
            assert (other.table_record("t") or {})["table_id"] == 1
            # A lease read on the leader sees the write; every replica applies it.
            sm = await leader.read_index(groups[0])
            assert isinstance(sm, KVStateMachine) and sm.read("k") == 7
            await until(lambda: all(isinstance(s := nd.groups[groups[0]].sm, KVStateMachine) and s.read("k") == 7
                                    for nd in nodes))
            st = await nodes[1].cluster_status()
            assert [p["group"] for p in st["partitions"]] == groups
            assert all(p["leader"] is not None for p in st["partitions"])
            assert sum(n["leaders"] for n in st["nodes"]) == 3
            # Deleting the table stops its groups everywhere and deletes their logs.
            assert (await nodes[0].meta_propose(cmd_delete_table("t")))["ok"]
            await until(lambda: all(set(nd.groups) == {META_GROUP} for nd in nodes))
            assert all(nd.logs.groups() == [META_GROUP] for nd in nodes)
        finally:
            for nd in nodes:
                await nd.close()

    run(body, tmp_path)


def test_a_restarted_node_replays_its_groups_and_rejoins_with_a_new_incarnation(tmp_path: Path) -> None:
    async def body(tmp: Path, ports: list[int]) -> None:
        nodes = await start_cluster(tmp, ports, 3)
        try:
            assert (await nodes[0].meta_propose(cmd_create_table(table_def("t").to_record(), 1)))["ok"]
            g = nodes[0].metadata.partitions("t")[0].group_id
            await until(lambda: all(g in nd.groups and nd.groups[g].replica.leader_id for nd in nodes))
            for i in range(5):
                await put(nodes, g, f"k{i}", i)
            leader_id = nodes[0].groups[g].replica.leader_id
            victim = next(nd for nd in nodes if nd.node_id != leader_id)
            idx = nodes.index(victim)
            assert victim.incarnation == 1
            await victim.close()
            nodes[idx] = ClusterNode(_config(tmp, idx + 1, ports[idx], ports[0] if idx else None))
            await nodes[idx].start()
            restarted = nodes[idx]
            assert restarted.incarnation == 2
            await until(lambda: g in restarted.groups and isinstance(s := restarted.groups[g].sm, KVStateMachine)
                        and s.read("k4") == 4)
            await until(lambda: all(nd.metadata.nodes[restarted.node_id].incarnation == 2 for nd in nodes))
        finally:
            for nd in nodes:
                await nd.close()

    run(body, tmp_path)


def test_a_single_node_bootstraps_and_its_data_dir_is_its_own(tmp_path: Path) -> None:
    async def body(tmp: Path, ports: list[int]) -> None:
        node = ClusterNode(_config(tmp, 1, ports[0], None))
        await node.start()
        await until(lambda: node.metadata.active_nodes() == ["n1"])
        assert voters(node) == ["n1"]
        await node.close()
        assert os.path.exists(tmp / "n1" / "node.json")
        wrong = ClusterConfig(node_id="n2", peer_address=("127.0.0.1", ports[0]), api_address=("127.0.0.1", 1),
                              data_dir=str(tmp / "n1"))
        with pytest.raises(ValueError, match="belongs to node 'n1'"):
            ClusterNode(wrong)

    run(body, tmp_path, 1)
