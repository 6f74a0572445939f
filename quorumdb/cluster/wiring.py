"""The seam between a cluster node and the DynamoDB API.

``make_dataplane(node)`` (called by ``serve`` *before* ``node.start()``) opens the node's data
environment (LMDB, ``<data dir>/data``), makes every partition group the node hosts a
``PartitionReplica`` over its own key namespace of that environment, registers the data
plane's RPCs (``dp.*``) and returns the ``ClusterDataPlane`` the HTTP API serves. Base
partitions hand their global-index changes to their outbox (``db.gsi.stage_changes``). The
namespaces (and Paxos logs) of groups the metadata has removed (a table or a global index
dropped) are deleted by the data plane's housekeeping (``sweep_removed_groups``).
The HTTP side of forwarding (``api.forward``: a request whose partition another node leads is
passed on whole, at most ``MAX_HOPS`` times) is in ``cluster.serve``, which owns the dispatcher.

Errors cross the RPC layer as ``RpcError`` codes: ``not_leader`` (with the leader the callee
knows) and ``dynamo`` (a DynamoDB error, type and message); the ``ClusterHost`` adapter turns
them back into ``NotLeaderError`` and the typed errors.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
from typing import Any

import orjson

from quorumdb.cluster import txnstate
from quorumdb.cluster.dataplane import (
    ClusterDataPlane,
    NotLeaderError,
    PartitionReplica,
    error_from_wire,
    error_to_wire,
)
from quorumdb.cluster.metadata import Metadata
from quorumdb.cluster.node import ClusterNode
from quorumdb.cluster.rpc import RpcError
from quorumdb.cluster.transactions import TransactionalDataPlane
from quorumdb.db.gsi import stage_changes
from quorumdb.db.partition import HASH_SPACE
from quorumdb.db.replicated import PartitionStore
from quorumdb.db.writer import WriterState
from quorumdb.errors import DynamoError
from quorumdb.storage.engine import Engine, prefix_successor
from quorumdb.storage.lmdb_engine import LmdbEngine
from quorumdb.storage.prefixed import PrefixedEngine

__all__ = ["make_dataplane", "MAX_HOPS", "PARTITIONS_ENV", "EVENTUAL_READS_ENV", "hops", "removed_groups",
           "stored_groups", "sweep_removed_groups"]

MAX_HOPS = 3
PARTITIONS_ENV = "QUORUMDB_PARTITIONS_PER_TABLE"  # partitions of a new table (default 4)
# Who serves eventually consistent reads: "leader" (default: the leader's applied state, fresh in
# practice) or "any" (any replica, this node's first: may be stale, as DynamoDB's may be).
EVENTUAL_READS_ENV = "QUORUMDB_EVENTUAL_READS"
_GROUP_SPACE = b"\x10g/"  # the node's data environment: one namespace per partition group
_SWEEP_CHUNK = 4096  # keys deleted per write transaction when a removed group's data goes
# How many times the request being served here was forwarded already (set per RPC task).
hops: contextvars.ContextVar[int] = contextvars.ContextVar("quorumdb_forward_hops", default=0)


class _Host:
    """The node as the data plane's ``ClusterHost``, with RPC errors turned back into types."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.node_id = node.node_id

    def table_record(self, name: str) -> dict[str, Any] | None:
        return self.node.table_record(name)

    def table_names(self) -> list[str]:
        return self.node.table_names()

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        return self.node.partitions(table, hash_lo, hash_hi)

    def index_partitions(self, table: str, index: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        return self.node.metadata.index_partitions(table, index, hash_lo, hash_hi)

    def replica(self, group_id: str) -> PartitionReplica | None:
        r = self.node.replica(group_id)
        return r if isinstance(r, PartitionReplica) else None

    async def meta_propose(self, command: dict[str, Any]) -> dict[str, Any]:
        return await self.node.meta_propose(command)

    async def await_epoch(self, epoch: int, timeout_s: float = 2.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.node.metadata.epoch < epoch and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def call(self, node_id: str, method: str, payload: Any) -> Any:
        try:
            return await self.node.call(node_id, method, payload)
        except RpcError as e:
            raise _from_rpc(e) from None


def _from_rpc(e: RpcError) -> Exception:
    if e.code == "not_leader":
        return NotLeaderError(e.message or None)
    if e.code == "dynamo":
        return error_from_wire(orjson.loads(e.message))
    return e


def _to_rpc(e: Exception) -> RpcError:
    if isinstance(e, NotLeaderError):
        return RpcError("not_leader", e.leader or "")
    if isinstance(e, DynamoError):
        return RpcError("dynamo", orjson.dumps(error_to_wire(e)).decode())
    raise e


def make_dataplane(node: ClusterNode) -> ClusterDataPlane:
    """The DataPlane a cluster node serves the DynamoDB API with."""
    engine = LmdbEngine(os.path.join(node.config.data_dir, "data"))
    prefix = f"{node.node_id}@{node.incarnation}/".encode()

    def partition(info: Any, handle: Any) -> PartitionReplica:
        gid = info.group_id.encode()
        state = WriterState(global_index_sink=stage_changes)
        state.item_guard, state.item_written = txnstate.guard, txnstate.bump  # transactions' locks
        store = PartitionStore(PrefixedEngine(engine, _GROUP_SPACE + gid + b"/"), state,
                               id_prefix=prefix + gid + b"/")
        return PartitionReplica(info, store, handle)

    node.partition_factory = partition
    parts = int(os.environ.get(PARTITIONS_ENV, "4") or 4)
    reads = os.environ.get(EVENTUAL_READS_ENV, "leader").strip() or "leader"
    ttl = float(os.environ.get("QUORUMDB_TTL_INTERVAL_SECONDS", "5") or 5)
    db = TransactionalDataPlane(_Host(node), partitions_per_table=max(1, parts), eventual_reads=reads,
                                ttl_interval_s=ttl)
    db.attach(node)

    def serve_rpc(method: str) -> Any:
        async def handler(src: str, payload: Any) -> Any:
            try:
                return await db.handle_rpc(method, payload)
            except (NotLeaderError, DynamoError) as e:
                raise _to_rpc(e) from None

        return handler

    for method in ClusterDataPlane.RPC_METHODS:
        node.register(method, serve_rpc(method))

    async def sweep() -> None:
        await sweep_removed_groups(engine, node)

    db.housekeeping.append(sweep)
    return db


def removed_groups(md: Metadata, group_ids: list[str]) -> list[str]:
    """Those of ``group_ids`` the metadata has removed: created before it (group ids are
    numbered in creation order and never reused) and in no partition of its map any more. A
    group is removed for good (with its table or its index), and a map too old to know a group
    counts it as not created yet, so a stale map never names a live group."""
    live = {p.group_id for p in md.all_partitions()}
    out = []
    for gid in group_ids:
        number = gid[1:]
        if gid.startswith("g") and number.isdigit() and int(number) < md.next_group and gid not in live:
            out.append(gid)
    return out


def stored_groups(engine: Engine) -> list[str]:
    """The group ids that have a namespace in the data environment (one seek per group)."""
    out: list[str] = []
    lo = _GROUP_SPACE
    end = prefix_successor(_GROUP_SPACE)
    with engine.snapshot() as snap:
        while True:
            first = next(iter(snap.iterate(lo, end)), None)
            if first is None:
                return out
            gid, _sep, _rest = first[0][len(_GROUP_SPACE):].partition(b"/")
            out.append(gid.decode())
            lo = _GROUP_SPACE + gid + b"0"  # the first key after every "<gid>/..." key


async def sweep_removed_groups(engine: Engine, node: ClusterNode) -> int:
    """Delete the data namespaces and Paxos logs of removed groups not hosted here; returns how
    many keys went. A chunk per write transaction, yielding in between."""
    md = node.metadata
    deleted = 0
    for gid in removed_groups(md, stored_groups(engine)):
        if node.group(gid) is not None:
            continue
        space = _GROUP_SPACE + gid.encode() + b"/"
        while True:
            with engine.snapshot() as snap:
                keys = [k for k, _v in itertools.islice(snap.iterate(space, prefix_successor(space)), _SWEEP_CHUNK)]
            if keys:
                engine.write_batch((), keys)
                deleted += len(keys)
            if len(keys) < _SWEEP_CHUNK:
                break
            await asyncio.sleep(0)
    for gid in removed_groups(md, node.logs.groups()):
        if node.group(gid) is None:
            node.logs.drop(gid)
    return deleted
