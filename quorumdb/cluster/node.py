"""A cluster node: many Multi-Paxos groups in one process, over one transport and one LMDB.

The node hosts a replica of the system group ``meta`` (a voter on 3 nodes, 5 once the cluster
has 5+; elsewhere an idle replica that holds nothing) and one replica of every partition group
the committed metadata places on it. All groups share:

- one ``Transport`` (one authenticated outbound TCP connection per peer; every frame is MACed)
  carrying ``["p", paxos message]`` (the message names its group) and the RPC frames of
  ``Rpc`` (``["q", ...]`` / ``["r", ...]``);
- one LMDB environment for every group's log (``LMDBLogEnv``, keys prefixed by group id);
- one ticker (``tick_ms``) and the Ready loop of ``runtime.node``: persist -> send -> apply
  (to the group's ``StateMachine``) -> reply, group by group.

A manager task (every ``manage_ms``) keeps the node in line with the metadata it sees: it
registers the node (a ``join`` command with a fresh incarnation per process start), dials the
nodes of the membership, creates the partition groups the map gives it (the founding replicas
bootstrap the group with the founders as voters; a replica added later joins empty and is
caught up by snapshot) and stops (and deletes) those it no longer holds. On the meta leader it
grows or shrinks the meta group towards ``meta_voter_target`` one voter at a time. A node that
is not a meta voter refreshes its copy of the metadata from the meta group at a constant rate
(``meta_refresh_ms``), whether or not anything changed (DynamoDB's MemDS lesson).

Identity. A node has a name (``--node-id``, what the transport and the partition map route
by), a cluster id (drawn when the first node bootstraps the cluster, learned by every node that
joins it, saved in ``node.json``) and a *life*: how many times its durable state started
empty. Every replica it runs is named ``incarnation_id(name, life)`` (the bare name in life 1).
A node starting over an empty data directory while seeds are given (a new node, or one whose
disk was wiped: the two look the same from inside) fetches the metadata from a seed and claims
a life never used by its name through the meta group (``cmd_claim_life``), so a wiped voter
comes back as a *different* replica id: no group counts it as a voter, and the leaders replace
the old life by the new one through one-voter membership changes (add, then remove), the new
replica being caught up by snapshot first. It never votes with promises it forgot. Every frame
carries the sender's cluster id; frames of another cluster are dropped (a node with no cluster
id yet only reads answers to its ``meta.fetch``).

This module holds no consensus logic; it moves bytes and time in and out of the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from quorumdb.cluster.dataplane import NotLeaderError, OutcomeUnknownError
from quorumdb.cluster.metadata import (
    META_GROUP,
    Metadata,
    PartitionInfo,
    cmd_claim_life,
    cmd_join,
    cmd_leave,
    meta_voter_target,
    next_voter_change,
)
from quorumdb.cluster.placement import HASH_SPACE
from quorumdb.cluster.rebalance import Observed, next_moves
from quorumdb.cluster.rpc import KINDS, Rpc, RpcError, RpcHandler
from quorumdb.cluster.statemachine import (
    GroupHandle,
    KVStateMachine,
    MetadataStateMachine,
    PartitionFactory,
    StateMachine,
    pack,
)
from quorumdb.core.paxos import (
    PaxosConfig,
    ProposalCommitted,
    ProposalRejected,
    ReadGranted,
    ReadRejected,
    Replica,
    Reply,
    ReplyReason,
    Role,
    from_wire,
    incarnation_id,
    node_name,
    persist_ready,
    to_wire,
)
from quorumdb.runtime.clock import monotonic_ms
from quorumdb.runtime.storage import LMDBLogEnv, LMDBLogStorage
from quorumdb.runtime.transport import Address, Transport

__all__ = ["ClusterConfig", "ClusterNode", "GroupError", "Group", "CLUSTER_CHANNEL"]

log = logging.getLogger(__name__)

CLUSTER_CHANNEL = "quorumdb-cluster"  # the transport's handshake group: one per cluster
_PAXOS = "p"
_SEED = "seed:"


def _paxos_default() -> PaxosConfig:
    # One command per slot: a partition's state machine may key its idempotency on the index.
    return PaxosConfig(max_batch_commands=1)


# Fault injection for tests: with this variable set, a node drops its traffic with the peers
# listed in <data dir>/faults.json ({"cut": [...]}) while the file lists them.
FAULT_INJECTION_ENV = "QUORUMDB_FAULT_INJECTION"
FAULT_FILE = "faults.json"
DEAD_AFTER_ENV = "QUORUMDB_DEAD_AFTER_SECONDS"  # ClusterConfig.dead_after_ms for `serve`


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    node_id: str
    peer_address: Address  # where the transport listens (and what it advertises)
    api_address: Address  # the DynamoDB HTTP endpoint of this node, recorded in the membership
    data_dir: str
    join: tuple[Address, ...] = ()  # seeds; none (or only ourselves) bootstraps a new cluster
    secret: bytes = b""
    tick_ms: int = 10
    manage_ms: int = 100
    meta_refresh_ms: int = 250
    rebalance_ms: int = 1000  # how often the meta leader plans replica moves (0: never)
    max_moves: int = 1  # replica moves in flight at once (each a snapshot transfer)
    # A member the meta leader has not reached for this long is declared dead (it leaves, and
    # its replicas are re-created from the survivors); 0: only the operator does it.
    dead_after_ms: int = 600_000
    paxos: PaxosConfig = field(default_factory=_paxos_default)
    partition_factory: PartitionFactory = KVStateMachine  # (PartitionInfo, GroupHandle) -> StateMachine


class GroupError(Exception):
    """A proposal or read on a group failed. ``reason``: a ``ReplyReason`` value, or
    ``"no_group"`` (not hosted here) or ``"timeout"``. ``dropped`` means the outcome is unknown
    (it may still commit); every other reason means it certainly did not happen."""

    def __init__(self, reason: str, leader: str | None = None) -> None:
        super().__init__(f"{reason} (leader: {leader})")
        self.reason = reason
        self.leader = leader


class Group:
    """One hosted replication group: its replica, its log storage and its state machine."""

    def __init__(self, group_id: str, replica: Replica, storage: LMDBLogStorage, sm: StateMachine,
                 partition: PartitionInfo | None) -> None:
        self.group_id = group_id
        self.replica = replica
        self.storage = storage
        self.sm = sm
        self.partition = partition
        self.compacted = replica.snapshot_index
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.results: dict[str, Any] = {}

    def status(self) -> dict[str, Any]:
        r = self.replica
        m = r.membership
        voters = list(m.voters) if m else []
        return {"group": self.group_id, "role": r.role.value, "leader": _name(r.leader_id), "commit": r.commit_index,
                "applied": r.applied_index, "last": r.last_index, "voters": [node_name(v) for v in voters],
                "voter_ids": voters}


class ClusterNode:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        os.makedirs(config.data_dir, exist_ok=True)
        logs_dir = os.path.join(config.data_dir, "paxos")
        saved = _load_identity(config.data_dir, config.node_id)
        self.incarnation = int(saved.get("incarnation", 0)) + 1  # one per process start
        self.cluster_id: str | None = saved.get("cluster_id")
        # Without its logs the node has forgotten every promise: it must start a new life.
        self.life: int | None = saved.get("life") if os.path.exists(logs_dir) else None
        self.logs = LMDBLogEnv(logs_dir)
        self._rng = random.Random(os.urandom(16))
        self.groups: dict[str, Group] = {}
        # How a partition group's state machine is built; set it before start().
        self.partition_factory: PartitionFactory = config.partition_factory
        self.transport = Transport(
            node_id=config.node_id, group=CLUSTER_CHANNEL, listen=config.peer_address, peers={},
            on_message=self._on_message, secret=config.secret, learn_peers=True,
            fault_file=os.path.join(config.data_dir, FAULT_FILE) if os.environ.get(FAULT_INJECTION_ENV) else None,
        )
        self.rpc = Rpc(self._send)
        self._foreign: set[str] = set()  # peers seen sending another cluster's frames
        self._ids = itertools.count(1)
        self._seeds = [f"{_SEED}{h}:{p}" for h, p in config.join if (h, p) != config.peer_address]
        self._fetched = Metadata()
        self._meta_hint: str | None = None
        self._meta_voters_hint: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._joining = False
        self._voter_changes: dict[str, str] = {}  # group -> request id of its pending voter change
        self._leaving: dict[str, int] = {}  # group moved away from this node -> since when (ms)
        self._rebalancing = False
        self._last_rebalance_ms = 0
        self._down_since: dict[str, int] = {}  # member -> when the meta leader last found it down
        self._last_fetch_ms = 0
        self._changed = asyncio.Event()
        for method, handler in (
            ("meta.propose", self._rpc_meta_propose),
            ("meta.fetch", self._rpc_meta_fetch),
            ("status", self._rpc_status),
            ("group.propose", self._rpc_group_propose),
        ):
            self.rpc.register(method, handler)
        self._meta: Group | None = None
        bootstrap = not self._seeds and META_GROUP not in self.logs.groups()
        if bootstrap and self.life is None:  # the first node of a new cluster
            self.life, self.cluster_id = 1, self.cluster_id or uuid.uuid4().hex
        self._save_identity()
        if self.life is not None and self.cluster_id is not None:
            self._open_meta(bootstrap)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for seed, (host, port) in zip(self._seeds, [a for a in self.config.join if a != self.config.peer_address],
                                      strict=True):
            self.transport.add_peer(seed, (host, port))
        await self.transport.start()
        if self._meta is None:
            await self._learn_identity()
        self._drain_all()
        self._tasks = [asyncio.create_task(self._tick_loop(), name="tick"),
                       asyncio.create_task(self._manage_loop(), name="manage")]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.rpc.close()
        await self.transport.close()
        for g in self.groups.values():
            _fail_waiters(g, "dropped")
        self.logs.close()

    @property
    def meta(self) -> Group:
        assert self._meta is not None, "the meta group opens once the node knows its life"
        return self._meta

    @property
    def pid(self) -> str:
        """The replica id of this node's current life."""
        assert self.life is not None
        return incarnation_id(self.node_id, self.life)

    def _open_meta(self, bootstrap: bool) -> None:
        self._meta = self._open_group(META_GROUP, MetadataStateMachine(), None,
                                      (self.pid,) if bootstrap else None)

    def _save_identity(self) -> None:
        saved: dict[str, Any] = {"node_id": self.node_id, "incarnation": self.incarnation}
        if self.life is not None:
            saved["life"] = self.life
        if self.cluster_id is not None:
            saved["cluster_id"] = self.cluster_id
        _write_json(os.path.join(self.config.data_dir, IDENTITY_FILE), saved)

    async def _learn_identity(self) -> None:
        """Over an empty data directory: learn the cluster id from a seed and claim a new life
        through the meta group, then open the meta replica (as a joiner: it votes only once a
        membership change adds it). Waits, retrying, until a seed and the meta leader answer."""
        while True:
            for seed in self._seeds:
                try:
                    r = await self.rpc.call(seed, "meta.fetch", {"epoch": -1}, timeout_s=1.0)
                except RpcError:
                    continue
                cid = r.get("cluster")
                if not isinstance(cid, str) or not cid:
                    continue
                if self.cluster_id is not None and cid != self.cluster_id:
                    raise ValueError(f"{self.config.data_dir} belongs to cluster {self.cluster_id}, "
                                     f"but seed {seed} is in cluster {cid}")
                self.cluster_id = cid
                if r.get("state") is not None:
                    self._fetched = Metadata.restore(r["state"])
                    self._dial_members(self._fetched)
                life = await self._claim_life([r.get("leader"), *r.get("voters", []), seed])
                if life is not None:
                    self.life = life
                    self._save_identity()
                    log.info("%s: joining cluster %s as life %d (%s)", self.node_id, cid, life, self.pid)
                    self._open_meta(False)
                    return
            await asyncio.sleep(0.2)

    async def _claim_life(self, targets: list[Any]) -> int | None:
        tried: set[str] = set()
        queue = [t for t in targets if isinstance(t, str) and t != self.node_id]
        while queue:
            target = queue.pop(0)
            if target in tried:
                continue
            tried.add(target)
            try:
                result = await self.rpc.call(target, "meta.propose", cmd_claim_life(self.node_id), timeout_s=2.0)
            except RpcError as exc:
                if exc.code == "not_leader" and exc.message:
                    queue.insert(0, exc.message)
                continue
            if result.get("ok") and isinstance(result.get("life"), int):
                life: int = result["life"]
                return life
        return None

    def _send(self, dst: str, frame: list[Any]) -> None:
        """Send ``frame`` to node ``dst``, stamped with our cluster id (KeyError: unknown peer)."""
        self.transport.send(dst, [self.cluster_id or "", frame])

    @property
    def peer_address(self) -> Address:
        return self.transport.bound_address

    # -- public API for the data plane -------------------------------------------------------

    def register(self, method: str, handler: RpcHandler) -> None:
        """Serve RPC ``method`` on this node: ``async def handler(src_node, payload) -> result``."""
        self.rpc.register(method, handler)

    async def call(self, peer: str, method: str, payload: Any = None, *, timeout_s: float = 5.0) -> Any:
        """Call ``method`` on node ``peer`` (RpcError / RpcTimeout on failure)."""
        if peer == self.node_id:
            return await self._local_call(method, payload)
        return await self.rpc.call(peer, method, payload, timeout_s=timeout_s)

    async def _local_call(self, method: str, payload: Any) -> Any:
        return await self.rpc.handler(method)(self.node_id, payload)

    def handle(self, group_id: str) -> GroupHandle:
        """The ``GroupHandle`` of group ``group_id`` (valid while this node hosts it)."""
        return _Handle(self, group_id)

    # ClusterHost (cluster.dataplane): the catalog and the partition map, from the metadata.

    def table_record(self, name: str) -> dict[str, Any] | None:
        return self.metadata.table_record(name)

    def table_names(self) -> list[str]:
        return self.metadata.table_names()

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[PartitionInfo]:
        return self.metadata.partitions(table, hash_lo, hash_hi)

    def replica(self, group_id: str) -> Any:
        """The state machine of partition group ``group_id`` if this node hosts it, else None."""
        g = self.groups.get(group_id)
        return g.sm if g is not None and g.partition is not None else None

    @property
    def metadata(self) -> Metadata:
        """The newest metadata this node knows (its own meta replica's, or a fetched copy)."""
        assert isinstance(self.meta.sm, MetadataStateMachine)
        local = self.meta.sm.metadata
        return local if local.epoch >= self._fetched.epoch else self._fetched

    def group(self, group_id: str) -> Group | None:
        return self.groups.get(group_id)

    async def propose(self, group_id: str, command: bytes, *, timeout_s: float = 5.0) -> Any:
        """Propose ``command`` to a group this node leads; returns the state machine's result of
        applying it here. GroupError if it is not (known to be) committed."""
        g = self.groups.get(group_id)
        if g is None:
            raise GroupError("no_group")
        rid = self._rid()
        fut = self._wait(g, rid)
        g.replica.propose(command, rid)
        self._drain(g)
        return await self._await(g, rid, fut, timeout_s)

    async def read_index(self, group_id: str, *, timeout_s: float = 5.0) -> StateMachine:
        """A lease read on a group this node leads: returns its state machine once everything
        committed before the call is applied (linearizable). GroupError otherwise."""
        g = self.groups.get(group_id)
        if g is None:
            raise GroupError("no_group")
        rid = self._rid()
        fut = self._wait(g, rid)
        g.replica.read(rid, monotonic_ms())
        self._drain(g)
        await self._await(g, rid, fut, timeout_s)
        return g.sm

    async def meta_propose(self, command: dict[str, Any], *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Commit a metadata command through the meta leader (wherever it is) and return its
        result (``{"ok": ...}``). GroupError("timeout") if no leader took it in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hint: str | None = None
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise GroupError("timeout", hint)
            if self.meta.replica.role is Role.LEADER:
                try:
                    result: dict[str, Any] = await self.propose(META_GROUP, pack(command), timeout_s=left)
                    return result
                except GroupError as exc:
                    if exc.reason in (ReplyReason.DROPPED.value, "timeout"):
                        raise
                    hint = exc.leader
            else:
                target = next((c for c in [hint, self._meta_leader()] + self._meta_targets()
                               if c is not None and c != self.node_id), None)
                if target is not None:
                    try:
                        result = await self.rpc.call(target, "meta.propose", command, timeout_s=min(left, 2.0))
                        return result
                    except RpcError as exc:
                        if exc.code == "dropped":
                            raise GroupError(ReplyReason.DROPPED.value) from exc
                        hint = exc.message if exc.code == "not_leader" and exc.message else None
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))

    # -- status ------------------------------------------------------------------------------

    def local_status(self) -> dict[str, Any]:
        md = self.metadata
        meta = self.meta.status()
        return {
            "node": self.node_id, "incarnation": self.incarnation, "life": self.life, "pid": self.pid,
            "cluster": self.cluster_id, "epoch": md.epoch,
            "peer": list(self.peer_address), "api": list(self.config.api_address),
            "meta": meta, "groups": [g.status() for gid, g in sorted(self.groups.items()) if gid != META_GROUP],
        }

    async def cluster_status(self, *, timeout_s: float = 0.5) -> dict[str, Any]:
        """The whole cluster as this node sees it: every member asked for its status."""
        md = self.metadata
        members = list(md.nodes.values())
        self._dial_members(md)  # the manager may not have seen this map yet

        async def ask(node_id: str) -> dict[str, Any] | None:
            if node_id == self.node_id:
                return self.local_status()
            try:
                status: dict[str, Any] = await self.rpc.call(node_id, "status", None, timeout_s=timeout_s)
                return status
            except RpcError:
                return None

        answers = await asyncio.gather(*(ask(n.node_id) for n in members))
        seen = {n.node_id: a for n, a in zip(members, answers, strict=True) if a is not None}
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for node_id, st in seen.items():
            for g in st["groups"]:
                groups[(node_id, g["group"])] = g
        partitions: list[dict[str, Any]] = []
        for p in md.all_partitions():
            reps = {r: groups.get((r, p.group_id)) for r in p.replicas}
            commits = {r: g["commit"] for r, g in reps.items() if g is not None}
            top = max(commits.values(), default=0)
            leader = next((r for r, g in reps.items() if g is not None and g["role"] == "leader"), None)
            partitions.append({
                "table": p.table, "index": p.index, "group": p.group_id, "hash_lo": p.hash_lo, "hash_last": p.hash_hi - 1,
                "replicas": list(p.replicas), "leader": leader, "epoch": p.epoch, "commit": top,
                "voters": (reps.get(leader) or {}).get("voter_ids", []) if leader is not None else [],
                "moving": None if p.moving is None else {
                    "from": p.moving[0], "to": p.moving[1],
                    "progress": min(1.0, commits.get(p.moving[1], 0) / top) if top else 0.0},
                "lag": {r: top - c for r, c in commits.items()},
            })
        meta = self.meta.status()
        meta_leader = next((n for n, st in seen.items() if st["meta"]["role"] == "leader"), None)
        nodes = []
        for n in members:
            known = seen.get(n.node_id)
            nodes.append({
                "node": n.node_id, "state": n.state, "up": known is not None, "incarnation": n.incarnation,
                "life": n.life,
                "peer": list(n.peer_address), "api": list(n.api_address),
                "meta": known["meta"]["role"] if known is not None and n.node_id in known["meta"]["voters"] else "-",
                "partitions": sum(1 for p in partitions if n.node_id in p["replicas"]),
                "leaders": sum(1 for p in partitions if p["leader"] == n.node_id),
            })
        return {"node": self.node_id, "cluster": self.cluster_id, "epoch": md.epoch,
                "meta": {"leader": meta_leader, "voters": meta["voters"], "voter_ids": meta["voter_ids"]},
                "nodes": nodes, "partitions": partitions, "tables": md.table_names()}

    # -- groups ------------------------------------------------------------------------------

    def _open_group(self, group_id: str, sm: StateMachine, partition: PartitionInfo | None,
                    initial_voters: tuple[str, ...] | None, replica_id: str | None = None) -> Group:
        storage = self.logs.storage(group_id)
        replica_id = replica_id or self.pid
        try:
            replica = Replica(group_id, replica_id, self.config.paxos, storage, self._rng,
                              initial_voters=initial_voters, cluster_id=self.cluster_id or "")
        except ValueError:
            # The log of an earlier replica of this group on this node (it left the group while
            # this node was down, and is placed here again under a new id): start empty.
            log.info("%s: group %s: dropping the log of an earlier replica", self.node_id, group_id)
            self.logs.drop(group_id)
            storage = self.logs.storage(group_id)
            replica = Replica(group_id, replica_id, self.config.paxos, storage, self._rng,
                              initial_voters=initial_voters, cluster_id=self.cluster_id or "")
        g = Group(group_id, replica, storage, sm, partition)
        self.groups[group_id] = g
        return g

    def _stop_group(self, group_id: str) -> None:
        g = self.groups.pop(group_id)
        self._leaving.pop(group_id, None)
        _fail_waiters(g, "no_group")
        self.logs.drop(group_id)
        drop = getattr(g.sm, "drop", None)
        if drop is not None:
            drop()  # the partition's data goes with its log

    def _reconcile_groups(self, md: Metadata) -> None:
        mine = {p.group_id: p for p in md.groups_of(self.node_id)}
        now = monotonic_ms()
        for gid, p in mine.items():
            rid = p.replica_id(self.node_id)
            g = self.groups.get(gid)
            if g is not None and g.replica.node_id != rid:
                self._stop_group(gid)  # placed here again: a new replica, never the old one
                g = None
            if g is None:
                # Only the founders' own replica ids bootstrap the group; any other replica
                # starts empty and is caught up once the leader has added it.
                founders = p.founders if rid in p.founders else None
                self._open_group(gid, self.partition_factory(p, self.handle(gid)), p, founders, rid)
                self._drain(self.groups[gid])
            else:
                g.partition = p
        for gid in [gid for gid in self.groups if gid != META_GROUP and gid not in mine]:
            # Moved away: serve on (as a voter the leader has not removed yet, or as a leader
            # that removes itself) until the committed membership no longer has this replica.
            g = self.groups[gid]
            m = g.replica.membership
            since = self._leaving.setdefault(gid, now)
            if (m is None or g.replica.node_id not in m.voters or md.partition(gid) is None
                    or now - since > LEAVE_GRACE_MS):
                self._stop_group(gid)

    # -- the Ready loop ----------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            now = monotonic_ms()
            for g in list(self.groups.values()):
                g.replica.tick(now)
            self._drain_all()

    def _drain_all(self) -> None:
        for g in list(self.groups.values()):
            self._drain(g)

    def _drain(self, g: Group) -> None:
        while True:
            ready = g.replica.ready()
            if not ready:
                return
            persist_ready(g.storage, ready)  # durable (fsync) before anything is sent
            for m in ready.messages:
                with contextlib.suppress(KeyError):  # a peer we do not know yet: it retransmits
                    self._send(node_name(m.dst), [_PAXOS, to_wire(m)])
            if ready.apply_snapshot is not None:
                snap = ready.apply_snapshot
                g.sm.restore(snap.data)
                g.compacted = max(g.compacted, snap.index)
            for e in ready.committed:
                for c in e.commands:
                    result = g.sm.apply(e.index, c.data)
                    rid = str(c.request_id)
                    if rid in g.waiting:
                        g.results[rid] = result
            for reply in ready.replies:
                self._reply(g, reply)
            if ready.compact_hint and g.replica.applied_index > g.compacted:
                g.replica.compact(g.replica.applied_index, g.sm.snapshot())
                g.compacted = g.replica.applied_index
            if g is self.meta and (ready.committed or ready.apply_snapshot is not None):
                self._changed.set()

    def _reply(self, g: Group, reply: Reply) -> None:
        rid = str(reply.request_id)
        fut = g.waiting.pop(rid, None)
        applied = rid in g.results
        result = g.results.pop(rid, None)
        if fut is None or fut.done():
            return
        match reply:
            case ProposalCommitted():
                if applied or rid == self._voter_changes.get(g.group_id):
                    fut.set_result(result)
                else:  # the slot was chosen, but not with our command in it
                    fut.set_exception(GroupError(ReplyReason.DROPPED.value))
            case ReadGranted():
                fut.set_result(None)
            case ProposalRejected() | ReadRejected():
                fut.set_exception(GroupError(reply.reason.value, _name(reply.leader_hint)))

    def _rid(self) -> str:
        return f"{self.node_id}.{self.incarnation}.{next(self._ids)}"

    def _wait(self, g: Group, rid: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        g.waiting[rid] = fut
        return fut

    async def _await(self, g: Group, rid: str, fut: asyncio.Future[Any], timeout_s: float) -> Any:
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError as exc:
            raise GroupError("timeout", _name(g.replica.leader_id)) from exc
        finally:
            g.waiting.pop(rid, None)
            g.results.pop(rid, None)

    def _on_message(self, src: str, payload: Any) -> None:
        if (not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[0], str)
                or not isinstance(payload[1], list) or not payload[1]):
            return
        cid, frame = payload
        kind = frame[0]
        if cid != (self.cluster_id or ""):
            # Only two frames cross a cluster-id mismatch: a joiner's meta.fetch (it has no id
            # yet) and the answers it gets.
            joiner_fetch = cid == "" and kind == "q" and len(frame) == 4 and frame[2] == "meta.fetch"
            if not (joiner_fetch or (self.cluster_id is None and kind == "r")):
                if src not in self._foreign:
                    self._foreign.add(src)
                    log.warning("%s: dropping frames from %s: it is in cluster %r, not %r",
                                self.node_id, src, cid, self.cluster_id)
                return
        if kind == _PAXOS and len(frame) == 2:
            try:
                msg = from_wire(frame[1])
            except ValueError:
                log.warning("%s: malformed message from %s", self.node_id, src)
                return
            g = self.groups.get(msg.group_id)
            if g is None or node_name(msg.src) != src or msg.dst != g.replica.node_id:
                # e.g. a group not created here yet (the leader retransmits), or a message for
                # an earlier life of this node (whose promises this one does not have).
                return
            g.replica.step(msg, monotonic_ms())
            self._drain(g)
        elif kind in KINDS:
            if self._meta is None and kind != "r":
                return  # still learning who we are: we only read answers to our own calls
            self.rpc.on_frame(src, frame)

    # -- the manager -------------------------------------------------------------------------

    async def _manage_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.config.manage_ms / 1000)
            self._changed.clear()
            try:
                self._manage_once()
            except Exception:  # never let one bad round stop the manager
                log.exception("%s: manager round failed", self.node_id)

    def _manage_once(self) -> None:
        md = self.metadata
        self._dial_members(md)
        self._reconcile_groups(md)
        me = md.nodes.get(self.node_id)
        left = me is not None and me.state != "active" and me.life == self.life
        if (me is None or me.incarnation != self.incarnation or me.life != self.life
                or me.state != "active") and not self._joining and not left:
            self._joining = True
            self._spawn(self._join())
        self._converge_voters(md)
        if self._is_meta_voter():
            if self.meta.replica.leader_ready:
                self._manage_meta_voters(md)
                now = monotonic_ms()
                if (self.config.rebalance_ms > 0 and not self._rebalancing
                        and now - self._last_rebalance_ms >= self.config.rebalance_ms):
                    self._rebalancing, self._last_rebalance_ms = True, now
                    self._spawn(self._rebalance())
        elif monotonic_ms() - self._last_fetch_ms >= self.config.meta_refresh_ms:
            self._last_fetch_ms = monotonic_ms()
            self._spawn(self._fetch_metadata())

    def _dial_members(self, md: Metadata) -> None:
        for n in md.nodes.values():
            if n.node_id != self.node_id and n.state == "active":
                self.transport.add_peer(n.node_id, n.peer_address)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _join(self) -> None:
        try:
            assert self.life is not None
            cmd = cmd_join(self.node_id, self.incarnation, self.peer_address, self.config.api_address, self.life)
            result = await self.meta_propose(cmd, timeout_s=5.0)
            if not result.get("ok"):
                log.warning("%s: join refused: %s", self.node_id, result.get("error"))
            else:
                self._last_fetch_ms = 0  # learn the new map at once
        except GroupError as exc:
            log.info("%s: join not done yet (%s), retrying", self.node_id, exc.reason)
        finally:
            self._joining = False
            self._changed.set()

    def _manage_meta_voters(self, md: Metadata) -> None:
        m = self.meta.replica.membership
        assert m is not None
        names = meta_voter_target(md.active_nodes(), [node_name(v) for v in m.voters], md.left_nodes())
        if names:
            self._step_voters(self.meta, tuple(sorted(_current_pid(md, n, m.voters) for n in names)))

    def _converge_voters(self, md: Metadata) -> None:
        """On the partition groups this node leads: bring the membership to the replica ids the
        map gives (a moved replica, a node's new life after its disk was lost), one voter
        change at a time, adds first."""
        for gid, g in self.groups.items():
            p = md.partition(gid) if gid != META_GROUP else None
            if p is None or g.replica.membership is None or not g.replica.leader_ready:
                continue
            self._step_voters(g, tuple(sorted(p.voters)))

    def _step_voters(self, g: Group, target: tuple[str, ...]) -> None:
        """Take one one-voter step from ``g``'s voters towards ``target`` (one change pending
        per group; a refused change is tried again on a later round)."""
        m = g.replica.membership
        if g.group_id in self._voter_changes or m is None:
            return
        step = next_voter_change(m.voters, target)
        if step is None:
            return
        rid = self._voter_changes[g.group_id] = self._rid()
        fut = self._wait(g, rid)
        action, voter = step
        log.info("%s: group %s: %s voter %s", self.node_id, g.group_id, action, voter)
        if action == "add":
            g.replica.change_membership(rid, add=voter)
        else:
            g.replica.change_membership(rid, remove=voter)
        self._drain(g)

        def done(f: asyncio.Future[Any]) -> None:
            self._voter_changes.pop(g.group_id, None)
            g.waiting.pop(rid, None)
            if not f.cancelled():
                f.exception()  # retrieved: a refused change is simply tried again
            self._changed.set()

        fut.add_done_callback(done)

    async def _rebalance(self) -> None:
        """On the meta leader: observe every group through its leader and propose the next
        replica moves (``cluster.rebalance``)."""
        try:
            status = await self.cluster_status()
            await self._declare_dead(status)
            observed = {p["group"]: Observed(voters=frozenset(p["voters"]), lag=p["lag"])
                        for p in status["partitions"] if p["leader"] is not None}
            for cmd in next_moves(self.metadata, observed, max_moves=self.config.max_moves):
                result = await self.meta_propose(cmd, timeout_s=5.0)
                log.info("%s: %s %s: %s", self.node_id, cmd["op"], cmd["group"], result)
        except GroupError as exc:
            log.info("%s: rebalancing paused (%s)", self.node_id, exc.reason)
        finally:
            self._rebalancing = False

    async def _declare_dead(self, status: dict[str, Any]) -> None:
        """A member down for ``dead_after_ms`` leaves the cluster (``cmd_leave``), so the
        planner re-creates its replicas on the others; it may come back only as a new life."""
        now = monotonic_ms()
        for n in status["nodes"]:
            if n["up"] or n["state"] != "active":
                self._down_since.pop(n["node"], None)
                continue
            since = self._down_since.setdefault(n["node"], now)
            if self.config.dead_after_ms > 0 and now - since >= self.config.dead_after_ms:
                result = await self.meta_propose(cmd_leave(n["node"]), timeout_s=5.0)
                log.warning("%s: %s down for %d s: declared dead (%s)", self.node_id, n["node"],
                            (now - since) // 1000, result)
                self._down_since.pop(n["node"], None)

    def _is_meta_voter(self) -> bool:
        m = self.meta.replica.membership
        return m is not None and self.pid in m.voters

    def _meta_leader(self) -> str | None:
        return _name(self.meta.replica.leader_id) if self._is_meta_voter() else self._meta_hint

    def _meta_targets(self) -> list[str]:
        """Whom to ask for the meta leader: the voters, the seeds, then any member we know."""
        m = self.meta.replica.membership
        voters = ([node_name(v) for v in m.voters] if m is not None and self.pid in m.voters
                  else self._meta_voters_hint)
        members = [n for n in self.metadata.active_nodes() if n not in voters]
        return [v for v in voters + self._seeds + members if v != self.node_id]

    async def _fetch_metadata(self) -> None:
        for target in [t for t in [self._meta_hint] + self._meta_targets() if t is not None]:
            try:
                r = await self.rpc.call(target, "meta.fetch", {"epoch": self.metadata.epoch}, timeout_s=1.0)
            except RpcError:
                continue
            if r.get("voters"):
                self._meta_voters_hint = list(r["voters"])
            self._meta_hint = r.get("leader")
            if r.get("state") is not None and r["epoch"] > self.metadata.epoch:
                self._fetched = Metadata.restore(r["state"])
                self._changed.set()
            return

    # -- RPC handlers ------------------------------------------------------------------------

    async def _rpc_meta_propose(self, src: str, payload: Any) -> Any:
        if self.meta.replica.role is not Role.LEADER:
            raise RpcError("not_leader", _name(self.meta.replica.leader_id) or "")
        try:
            return await self.propose(META_GROUP, pack(payload), timeout_s=5.0)
        except GroupError as exc:
            raise RpcError(exc.reason, exc.leader or "") from exc

    async def _rpc_meta_fetch(self, src: str, payload: Any) -> Any:
        md = self.metadata
        since = payload.get("epoch", -1) if isinstance(payload, dict) else -1
        m = self.meta.replica.membership
        voters = ([node_name(v) for v in m.voters] if m is not None and self._is_meta_voter()
                  else self._meta_voters_hint)
        return {"epoch": md.epoch, "state": md.snapshot() if md.epoch > since else None,
                "voters": voters, "leader": self._meta_leader(), "cluster": self.cluster_id}

    async def _rpc_status(self, src: str, payload: Any) -> Any:
        return self.local_status()

    async def _rpc_group_propose(self, src: str, payload: Any) -> Any:
        """``{"group", "command": bytes}`` -> the state machine's result, on the group leader."""
        if not isinstance(payload, dict) or not isinstance(payload.get("command"), bytes):
            raise RpcError("invalid", "expected {group, command}")
        try:
            return await self.propose(str(payload.get("group")), payload["command"])
        except GroupError as exc:
            raise RpcError(exc.reason, exc.leader or "") from exc


class _Handle:
    """A group as its state machine sees it (``cluster.dataplane.GroupHandle``): proposals fail
    with NotLeaderError (certainly not done) or OutcomeUnknownError (may still commit)."""

    def __init__(self, node: ClusterNode, group_id: str, *, timeout_s: float = 10.0) -> None:
        self.node = node
        self.group_id = group_id
        self.timeout_s = timeout_s

    def leader(self) -> str | None:
        g = self.node.groups.get(self.group_id)
        return _name(g.replica.leader_id) if g is not None else None

    def is_leader(self) -> bool:
        g = self.node.groups.get(self.group_id)
        return g is not None and g.replica.leader_ready

    async def propose(self, command: bytes) -> Any:
        try:
            return await self.node.propose(self.group_id, command, timeout_s=self.timeout_s)
        except GroupError as exc:
            if exc.reason in (ReplyReason.DROPPED.value, "timeout"):
                raise OutcomeUnknownError(str(exc)) from exc
            raise NotLeaderError(exc.leader) from exc

    async def lease_read(self) -> None:
        try:
            await self.node.read_index(self.group_id, timeout_s=self.timeout_s)
        except GroupError as exc:
            raise NotLeaderError(exc.leader) from exc


def _fail_waiters(g: Group, reason: str) -> None:
    for fut in g.waiting.values():
        if not fut.done():
            fut.set_exception(GroupError(reason))
    g.waiting.clear()


IDENTITY_FILE = "node.json"
# How long a replica moved away from this node keeps serving while it waits to be removed
# from the group's membership (the leader normally does it within a few manager rounds).
LEAVE_GRACE_MS = 30_000


def _name(replica_id: str | None) -> str | None:
    """The node a replica id (``incarnation_id``) runs on: what the transport routes by."""
    return node_name(replica_id) if replica_id is not None else None


def _current_pid(md: Metadata, name: str, voters: tuple[str, ...]) -> str:
    """The replica id ``name`` should vote under: its current life's, or (for a founder not
    registered yet) the one it votes under now."""
    pid = md.pid_of(name)
    if pid is not None:
        return pid
    return next(v for v in voters if node_name(v) == name)


def _load_identity(data_dir: str, node_id: str) -> dict[str, Any]:
    """What ``node.json`` in ``data_dir`` says (empty for a new data directory)."""
    path = os.path.join(data_dir, IDENTITY_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        saved: dict[str, Any] = json.load(f)
    if saved.get("node_id") != node_id:
        raise ValueError(f"{data_dir} belongs to node {saved.get('node_id')!r}, not {node_id!r}")
    return saved


def _write_json(path: str, value: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
