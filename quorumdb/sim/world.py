"""The deterministic simulator: a whole Multi-Paxos cluster in one process.

One ``random.Random(seed)`` drives every choice (message delays, drops, duplicates, fault times,
clock drift, election jitter, client think times, fsync latency) and a priority queue of timed
events drives virtual time, so a seed reproduces a run exactly; ``trace_hash`` digests every
event to prove it. Replicas are driven through the core's Ready loop exactly as the runtime
drives them: persist (to a ``SimDisk``, made durable only when the simulated fsync completes)
-> send -> apply -> reply. Readies are handled strictly in order; a crash loses every write not
yet synced and every Ready not yet handled.

Faults (while the fault phase lasts): crash + later restart, pause + resume (the node is not
stepped and its inputs queue; its clock keeps running, as a CLOCK_BOOTTIME clock does through a
suspend), clock freezes (a short pause with the clock stopped, within what the drift margin
absorbs), partitions (random splits, leader isolation, single cut links) + heal, message
drop/duplicate/reorder, per-node clock rates within the drift bound, disk wipes (the node comes
back as a new incarnation and the operator replaces the old one through membership changes).
The operator also adds and removes voters at random (``reconfig_interval_ms``). After the fault
phase everything is healed and restarted, and the liveness checker measures the time to the
next leader and commit. Invariants are checked at the end (``report``).

``SimConfig.mutant`` swaps in a deliberately broken core from ``quorumdb.sim.mutants``.

This module never reads the wall clock, sleeps, or uses unseeded randomness.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from quorumdb.core.kv import KVStateMachine
from quorumdb.core.paxos import (
    Ballot,
    Entry,
    Membership,
    Message,
    PaxosConfig,
    ProposalCommitted,
    ProposalRejected,
    ReadGranted,
    ReadRejected,
    Ready,
    Replica,
    ReplyReason,
    Role,
    node_name,
    start_identity,
)
from quorumdb.core.paxos.log import write_ready
from quorumdb.sim.checkers import (
    History,
    LinearizabilityResult,
    LivenessChecker,
    LivenessResult,
    LogSafetyChecker,
    OpKind,
    check_history,
)
from quorumdb.sim.clock import DriftingClock, VirtualClock, clock_budget
from quorumdb.sim.disk import SimDisk
from quorumdb.sim.mutants import Mutant, mutant
from quorumdb.sim.network import NetworkConfig, SimNetwork
from quorumdb.sim.storage import SimLogStorage
from quorumdb.sim.tablesm import SKIPPED, TableStateMachine
from quorumdb.sim.workloads import KVWorkload, WorkloadConfig

__all__ = ["SimConfig", "SimReport", "World", "run", "entry_digest"]

GROUP = "g0"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    seed: int
    # Events processed (fault phase + quiet phase); the run goes on past it until the liveness
    # and catch-up verdicts are decided.
    steps: int = 20_000
    nodes: int = 3  # founding voters
    spares: int = 1  # non-founding nodes the operator may add as voters
    clients: int = 4  # closed-loop clients mixing puts, gets and compare-and-swaps
    readers: int = 2  # clients that only read, continuously, from whoever they believe leads
    keys: int = 3
    drop: float = 0.02
    duplicate: float = 0.01
    delay_ms_min: float = 1.0
    delay_ms_max: float = 20.0
    fault_fraction: float = 0.7  # share of the steps during which faults are injected
    fault_interval_ms: float = 1500.0  # mean virtual time between faults
    crash_weight: float = 1.0
    pause_weight: float = 1.0
    freeze_weight: float = 0.5  # a short pause with the node's clock stopped
    partition_weight: float = 1.0
    link_cut_weight: float = 0.5  # one link cut (both directions)
    power_loss_weight: float = 0.2  # every node crashes at once (unsynced writes lost everywhere)
    wipe_weight: float = 0.15  # a node loses its whole disk and comes back as a new incarnation
    # The leader loses one follower, then (once that follower campaigns) every other one, for
    # long enough that a new leader is elected while the old one still answers its clients.
    depose_weight: float = 0.0
    reconfig_interval_ms: float = 3000.0  # mean time between operator membership changes (0: none)
    downtime_ms_max: float = 4000.0
    lease_ms: int = 1000
    max_clock_drift_ms: int = 100
    election_timeout_min_ms: int = 1500  # raised to lease_ms + max_clock_drift_ms if below
    election_timeout_spread_ms: int = 1500  # election timeouts are [min, min + spread)
    retransmit_ms: int = 300  # a leader's resend and a candidate's Prepare retry interval
    # Share of the drift margin spent on clock rates; the rest bounds clock freezes.
    clock_rate_share: float = 0.5
    fsync_ms_min: float = 0.2
    fsync_ms_max: float = 5.0
    torn_writes: bool = True  # a crash may keep a random prefix of unsynced writes
    tick_ms: int = 10
    client_timeout_ms: float = 4000.0
    think_ms_max: float = 30.0
    reader_think_ms_max: float = 30.0
    compact_threshold_entries: int = 200
    liveness_bound_ms: float = 15_000.0
    catch_up_ms: float = 5_000.0  # after faults stop, every replica must apply what was committed by then
    mutant: str = ""  # TEST ONLY: a broken core from quorumdb.sim.mutants ("" = the real one)
    # What the replicas apply: "kv" (the toy map) or "table" (the real partition state machine
    # of the cluster: writes evaluated into effects on the leader, see quorumdb.sim.tablesm).
    state_machine: str = "kv"

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def paxos(self) -> PaxosConfig:
        election_min = max(self.election_timeout_min_ms, self.lease_ms + self.max_clock_drift_ms)
        return PaxosConfig(
            lease_ms=self.lease_ms,
            max_clock_drift_ms=self.max_clock_drift_ms,
            election_timeout_min_ms=election_min,
            election_timeout_max_ms=election_min + self.election_timeout_spread_ms,
            retransmit_ms=self.retransmit_ms,
            compact_threshold_entries=self.compact_threshold_entries,
        )


def entry_digest(e: Entry) -> str:
    """An entry's chosen value, independent of the ballot it was (re-)accepted at."""
    raw = e.to_wire()
    return hashlib.sha256(msgpack.packb([raw[2], raw[3], raw[4]], use_bin_type=True)).hexdigest()[:16]


@dataclass(slots=True)
class SimNode:
    """One node: its durable disk survives crashes; everything else is rebuilt on restart."""

    name: str  # what the network routes by; the replica's node id adds the incarnation
    disk: SimDisk
    clock: DriftingClock
    replica: Replica | None = None
    kv: Any = field(default_factory=KVStateMachine)  # KVStateMachine or TableStateMachine
    up: bool = True
    paused: bool = False
    boot: int = 0  # process restarts (tags timers of an earlier life as stale)
    incarnations: int = 1  # incarnations of this name used so far (disk wipes)
    ever_synced: bool = False  # something of this disk reached the platter
    wiped: bool = False
    frozen_until: float = -1.0  # global time before which no new clock freeze starts
    compacted_index: int = 0
    compact_wanted: bool = False
    crash_armed: bool = False  # crash right after the next write, before it is synced
    pending_readies: collections.deque[tuple[int, Ready]] = field(default_factory=collections.deque)
    written_seq: int = 0
    synced_seq: int = 0
    sync_in_flight: bool = False
    held: list[tuple[str, Any]] = field(default_factory=list)  # inputs held while paused
    results: dict[Any, Any] = field(default_factory=dict)  # request id -> apply result
    reads: dict[Any, tuple[int, str]] = field(default_factory=dict)  # read id -> (op id, key)
    writes: dict[Any, int] = field(default_factory=dict)  # request id -> op id


@dataclass(frozen=True, slots=True, kw_only=True)
class SimReport:
    config: SimConfig
    steps: int
    virtual_ms: float
    ops: int
    ops_ok: int
    ops_failed: int
    ops_unknown: int
    commits: int
    faults: dict[str, int]
    network: dict[str, int]
    linearizability: LinearizabilityResult
    log_safety_ok: bool
    log_safety: str
    liveness: LivenessResult
    convergence_ok: bool
    convergence: str
    trace_hash: str

    @property
    def ok(self) -> bool:
        return bool(self.linearizability.ok) and self.log_safety_ok and self.liveness.ok and self.convergence_ok

    def failed_checkers(self) -> str:
        """Which checkers failed, comma-separated ("" when every one passed)."""
        verdicts = {"linearizability": self.linearizability.ok is not False,
                    "log-safety": self.log_safety_ok, "liveness": self.liveness.ok,
                    "convergence": self.convergence_ok}
        return ",".join(name for name, ok in verdicts.items() if not ok)

    def summary(self) -> str:
        lines = [
            f"steps={self.steps} virtual_time={self.virtual_ms / 1000:.1f}s",
            f"ops={self.ops} ok={self.ops_ok} fail={self.ops_failed} unknown={self.ops_unknown} commits={self.commits}",
            "faults: " + " ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
            "network: " + " ".join(f"{k}={v}" for k, v in sorted(self.network.items())),
            f"linearizability: {self.linearizability.describe()}",
            f"log safety: {self.log_safety}",
            f"liveness: {self.liveness.describe()}",
            f"convergence: {self.convergence}",
            f"trace hash: {self.trace_hash}",
            f"verdict: {'PASS' if self.ok else 'FAIL'} (seed {self.config.seed})",
        ]
        return "\n".join(lines)


class World:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.clock = VirtualClock()
        self.network = SimNetwork(
            NetworkConfig(delay_ms_min=config.delay_ms_min, delay_ms_max=config.delay_ms_max,
                          drop=config.drop, duplicate=config.duplicate),
            self.rng,
        )
        self.node_ids = [f"n{i}" for i in range(1, config.nodes + config.spares + 1)]  # names
        self.founders = tuple(self.node_ids[:config.nodes])
        self.paxos_config = config.paxos()
        self.mutant: Mutant | None = mutant(config.mutant)
        self.rate_max, self.freeze_ms_max = clock_budget(config.lease_ms, config.max_clock_drift_ms,
                                                         config.clock_rate_share)
        if self.mutant is not None and self.mutant.suspend_stops_clock:
            # A suspend as long as a lease, clock stopped: what CLOCK_MONOTONIC does in a VM.
            self.freeze_ms_max = 2.0 * config.lease_ms
        self.nodes: dict[str, SimNode] = {}
        for nid in self.node_ids:
            # Half the nodes run at an extreme of the bound: that is where lease bugs show.
            rate = self.rng.choice([-1.0, 1.0]) if self.rng.random() < 0.5 else self.rng.uniform(-1, 1)
            offset = self.rng.uniform(0, 10_000)
            self.nodes[nid] = SimNode(name=nid, disk=SimDisk(),
                                      clock=DriftingClock(self.clock, rate * self.rate_max * 1e6, offset))
        # The operator's view: the membership the committed log has reached, and the node id
        # each name last started as (a member with an older id is a wiped incarnation).
        self.membership = Membership.of(self.founders)
        self.latest_id: dict[str, str] = {}
        self.deposing_until = 0.0
        self.replicas_made: list[Replica] = []
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self.steps = 0
        self.history = History()
        self.log_safety = LogSafetyChecker()
        self.liveness = LivenessChecker(bound=config.liveness_bound_ms)
        self.faults: collections.Counter[str] = collections.Counter()
        self.commits = 0
        self.fault_phase = True
        self.committed_at_quiet = 0
        self.oracle = self._new_sm("oracle")
        self.oracle_digests: dict[int, str] = {0: self.oracle.digest()}
        self._oracle_entries: dict[int, Entry] = {}
        self.leader_seen: dict[str, Ballot] = {}  # node -> ballot it leads with (while it does)
        self.workload = KVWorkload(self, WorkloadConfig(clients=config.clients, readers=config.readers,
                                                         keys=config.keys, timeout_ms=config.client_timeout_ms,
                                                         think_ms_max=config.think_ms_max,
                                                         reader_think_ms_max=config.reader_think_ms_max))
        self._handlers: dict[str, Callable[[Any], None]] = {
            "tick": self._on_tick,
            "deliver": self._on_deliver,
            "sync": self._on_sync,
            "fault": self._on_fault,
            "restart": self._on_restart,
            "resume": self._on_resume,
            "heal": self._on_heal,
            "thaw": self._on_thaw,
            "isolate": self._on_isolate,
            "reconfig": self._on_reconfig,
            "reconfig_now": lambda _: self._reconfigure(),
            "client": self.workload.on_event,
        }

    # -- event queue -----------------------------------------------------------------------------

    def schedule(self, delay_ms: float, kind: str, payload: Any) -> None:
        assert delay_ms >= 0
        self._seq += 1
        heapq.heappush(self._queue, (self.clock.now_ms + delay_ms, self._seq, kind, payload))

    def _trace_event(self, *parts: Any) -> None:
        self._trace.update(repr(parts).encode())

    def local_now(self, nid: str) -> int:
        return int(self.nodes[nid].clock.now_ms())

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> SimReport:
        for nid in self.node_ids:
            self._start_node(nid)
        self.workload.setup()
        self.schedule(self.rng.expovariate(1 / self.config.fault_interval_ms), "fault", None)
        if self.config.reconfig_interval_ms > 0:
            self.schedule(self.rng.expovariate(1 / self.config.reconfig_interval_ms), "reconfig", None)
        fault_steps = int(self.config.steps * self.config.fault_fraction)
        while self._queue:
            if self.fault_phase and self.steps >= fault_steps:
                self._end_faults()
            if self.steps >= self.config.steps and self._liveness_decided():
                break
            t, _, kind, payload = heapq.heappop(self._queue)
            self.clock.advance_to(t)
            self.steps += 1
            self._handlers[kind](payload)
        return self.report()

    def _liveness_decided(self) -> bool:
        q = self.liveness.quiet_at
        if q is None:
            return True
        if self.clock.now_ms < q + self.config.catch_up_ms:
            return False
        if self.liveness.first_commit_after_quiet is not None and self.liveness.first_leader_after_quiet is not None:
            return True
        return self.clock.now_ms > q + self.config.liveness_bound_ms

    # -- nodes -----------------------------------------------------------------------------------

    def _new_sm(self, nid: str) -> Any:
        if self.config.state_machine == "table":
            return TableStateMachine(nid)
        return KVStateMachine()

    def _start_node(self, nid: str) -> None:
        node = self.nodes[nid]
        node.up = True
        node.paused = False
        node.boot += 1
        node.kv = self._new_sm(nid)
        node.pending_readies.clear()
        node.written_seq = node.synced_seq = 0
        node.sync_in_flight = False
        node.held.clear()
        node.results.clear()
        node.reads.clear()
        node.writes.clear()
        storage = self._storage(node)
        stored = storage.load()
        hs = stored.hard_state
        snap_index = stored.snapshot.index if stored.snapshot is not None else 0
        self.log_safety.observe_log(
            nid, {e.index: entry_digest(e) for e in stored.entries if e.index <= hs.commit_index},
            snapshot_index=snap_index, upto=hs.commit_index,
        )
        self.log_safety.reset_apply(nid, snap_index)
        if stored.snapshot is not None and stored.snapshot.data:
            node.kv.restore(stored.snapshot.data)
        node.kv.applied_index = snap_index
        if stored.snapshot is not None:
            self.log_safety.observe_snapshot(nid, snap_index, node.kv.digest(), self.oracle_digests.get(snap_index))
        node.compacted_index = snap_index
        node.compact_wanted = False
        # The operator bootstraps founders whose disk never held anything of this cluster; any
        # other empty disk (a spare's first start, a wiped disk) is a new incarnation.
        founding = nid in self.founders and not node.ever_synced and not node.wiped
        if self.mutant is not None and self.mutant.amnesiac_rejoin:
            founding = nid in self.founders
        founders = self.founders if founding else None

        def fresh_incarnation() -> int:
            node.incarnations += 1
            return node.incarnations

        node_id, initial_voters = start_identity(stored, name=nid, founders=founders,
                                                 fresh_incarnation=fresh_incarnation)
        cls = self.mutant.replica_class if self.mutant is not None else Replica
        node.replica = cls(
            GROUP, node_id, self.paxos_config, storage, random.Random(self.rng.getrandbits(64)),
            initial_voters=initial_voters, cluster_id="sim",
        )
        self.replicas_made.append(node.replica)
        self.latest_id[nid] = node_id
        self._trace_event("start", nid, node.boot, node_id)
        self._drain(nid)
        self.schedule(node.clock.global_delay_ms(self.config.tick_ms), "tick", (nid, node.boot))

    def _storage(self, node: SimNode) -> SimLogStorage:
        cls = self.mutant.storage_class if self.mutant is not None else SimLogStorage
        return cls(node.disk)

    def node_id(self, name: str) -> str | None:
        """The node id the node called ``name`` currently runs as (None while it is down)."""
        r = self.nodes[name].replica
        return r.node_id if r is not None else None

    def _crash(self, nid: str) -> None:
        node = self.nodes[nid]
        if not node.up:
            return
        node.up = False
        node.crash_armed = False
        node.replica = None
        self.leader_seen.pop(nid, None)
        node.pending_readies.clear()
        lost = node.disk.crash(self.rng, torn=self.config.torn_writes)
        self.faults["crash"] += 1
        self.faults["lost_unsynced_writes"] += lost
        self._trace_event("crash", nid, lost)

    def _on_tick(self, payload: tuple[str, int]) -> None:
        nid, inc = payload
        node = self.nodes[nid]
        if not node.up or node.boot != inc:
            return
        if not node.paused:
            assert node.replica is not None
            node.replica.tick(self.local_now(nid))
            self._drain(nid)
            self._observe_role(nid)
        self.schedule(node.clock.global_delay_ms(self.config.tick_ms), "tick", (nid, inc))

    def _observe_role(self, nid: str) -> None:
        r = self.nodes[nid].replica
        leading = r is not None and r.role is Role.LEADER
        if not leading:
            self.leader_seen.pop(nid, None)
        elif r is not None and self.leader_seen.get(nid) != r.ballot:
            self.leader_seen[nid] = r.ballot
            rnd = r.ballot.round
            self.liveness.leader(self.clock.now_ms, nid)
            self.log_safety.observe_leader(r.node_id, (r.ballot.round, r.ballot.node_id))
            self._trace_event("leader", nid, rnd)
            if self.config.reconfig_interval_ms > 0 and self.fault_phase:
                # An operator change right after an election (before the no-op commits).
                self.schedule(self.rng.uniform(0, 3), "reconfig_now", None)

    def send(self, msg: Message) -> None:
        for delay in self.network.plan(node_name(msg.src), node_name(msg.dst)):
            self.schedule(delay, "deliver", msg)

    def _on_deliver(self, msg: Message) -> None:
        nid = node_name(msg.dst)
        if not self.network.arrive(node_name(msg.src), nid):
            return
        node = self.nodes[nid]
        if not node.up:
            return
        self._trace_event("msg", type(msg).__name__, msg.src, msg.dst, msg.ballot.round)
        if node.paused:
            node.held.append(("msg", msg))
            return
        self._step(nid, msg)

    def _step(self, nid: str, msg: Message) -> None:
        r = self.nodes[nid].replica
        assert r is not None
        if r.node_id != msg.dst:
            # For an earlier incarnation of this node: that voter is gone, its promises with it.
            self.faults["stale_incarnation_msgs"] += 1
            return
        r.step(msg, self.local_now(nid))
        self._drain(nid)
        self._observe_role(nid)

    # -- the Ready loop --------------------------------------------------------------------------

    def _drain(self, nid: str) -> None:
        node = self.nodes[nid]
        assert node.replica is not None
        while True:
            ready = node.replica.ready()
            if not ready:
                break
            if ready.persist:
                write_ready(self._storage(node), ready)  # fsync is its own, delayable event
                node.written_seq += 1
                if node.crash_armed:
                    self._crash(nid)
                    self.schedule(self.rng.uniform(50, self.config.downtime_ms_max), "restart", nid)
                    return
            node.pending_readies.append((node.written_seq, ready))
        if node.written_seq > node.synced_seq and not node.sync_in_flight:
            node.sync_in_flight = True
            self.schedule(self.rng.uniform(self.config.fsync_ms_min, self.config.fsync_ms_max), "sync",
                          (nid, node.boot, node.written_seq))
        self._flush(nid)

    def _on_sync(self, payload: tuple[str, int, int]) -> None:
        nid, inc, covered = payload
        node = self.nodes[nid]
        if not node.up or node.boot != inc:
            return
        if node.paused:
            node.held.append(("sync", covered))
            return
        self._complete_sync(nid, covered)

    def _complete_sync(self, nid: str, covered: int) -> None:
        node = self.nodes[nid]
        node.disk.sync()
        node.ever_synced = True
        node.synced_seq = covered
        node.sync_in_flight = False
        self._trace_event("sync", nid, covered)
        if node.written_seq > node.synced_seq:
            node.sync_in_flight = True
            self.schedule(self.rng.uniform(self.config.fsync_ms_min, self.config.fsync_ms_max), "sync",
                          (nid, node.boot, node.written_seq))
        self._flush(nid)

    def _flush(self, nid: str) -> None:
        node = self.nodes[nid]
        send_early = self.mutant is not None and self.mutant.send_before_sync
        synced = node.written_seq if send_early else node.synced_seq
        while node.up and node.pending_readies and node.pending_readies[0][0] <= synced:
            _, ready = node.pending_readies.popleft()
            self._handle_ready(nid, ready)
        # Compact only with the pipeline empty, so the snapshot is of the replica's applied index
        # (a queued Ready may still hold a snapshot install the state machine has not seen).
        r = node.replica
        if (node.up and node.compact_wanted and not node.pending_readies and r is not None
                and node.kv.applied_index == r.applied_index and node.kv.applied_index > node.compacted_index):
            node.compact_wanted = False
            index = node.kv.applied_index
            self.log_safety.observe_snapshot(nid, index, node.kv.digest(), self.oracle_digests.get(index))
            r.compact(index, node.kv.snapshot())
            node.compacted_index = index
            self.faults["compactions"] += 1
            self._trace_event("compact", nid, index)
            # the compaction's own Ready is drained with the next input

    def _handle_ready(self, nid: str, ready: Ready) -> None:
        node = self.nodes[nid]
        for m in ready.messages:
            self.send(m)
        if ready.apply_snapshot is not None:
            snap = ready.apply_snapshot
            if snap.index > node.kv.applied_index:
                self.faults["snapshot_installs"] += 1
            node.kv = self._new_sm(nid)
            if snap.data:
                node.kv.restore(snap.data)
            node.kv.applied_index = snap.index
            node.compacted_index = max(node.compacted_index, snap.index)
            self.log_safety.observe_snapshot(nid, snap.index, node.kv.digest(), self.oracle_digests.get(snap.index))
            self._trace_event("snapshot", nid, snap.index)
        for e in ready.committed:
            self._apply(nid, e)
        for reply in ready.replies:
            self._reply(nid, reply)
        if ready.compact_hint:
            node.compact_wanted = True

    def _apply(self, nid: str, e: Entry) -> None:
        node = self.nodes[nid]
        digest = entry_digest(e)
        self.log_safety.observe_apply(nid, e.index, digest)
        self._oracle_learn(e)
        results = []
        if node.kv.applied_index != e.index - 1:
            raise AssertionError(f"{nid}: committed entry {e.index} after applied {node.kv.applied_index}")
        node.kv.applied_index = e.index
        for pos, c in enumerate(e.commands):
            results.append((c.request_id, node.kv.apply_command(e.index, pos, c.data)))
        for rid, res in results:
            if rid in node.writes:
                node.results[rid] = res
        self._trace_event("apply", nid, e.index, digest)

    def _oracle_learn(self, e: Entry) -> None:
        if e.index <= self.oracle.applied_index:
            return
        self._oracle_entries[e.index] = e
        while self.oracle.applied_index + 1 in self._oracle_entries:
            nxt = self._oracle_entries.pop(self.oracle.applied_index + 1)
            self.oracle.applied_index = nxt.index
            for pos, c in enumerate(nxt.commands):
                self.oracle.apply_command(nxt.index, pos, c.data)
            self.oracle_digests[nxt.index] = self.oracle.digest()
            if nxt.config is not None and nxt.config.base == self.membership:
                self.membership = nxt.config.new
                self.faults["config_changes"] += 1
                self._trace_event("membership", self.membership.voters)
            self.commits += 1
            self.liveness.commit(self.clock.now_ms)

    def _reply(self, nid: str, reply: Any) -> None:
        node = self.nodes[nid]
        match reply:
            case ProposalCommitted():
                op_id = node.writes.pop(reply.request_id, None)
                if op_id is None:
                    return
                if reply.request_id in node.results:
                    result = node.results.pop(reply.request_id)
                    if result == SKIPPED and self.config.state_machine == "table":
                        # Evaluated on a state that did not commit: certainly not applied.
                        self.faults["skipped_commands"] += 1
                        self.workload.complete(op_id, "fail", None)
                    else:
                        self.workload.complete(op_id, "ok", result)
                else:  # applied via a snapshot: the result is not known here
                    self.workload.complete(op_id, "unknown", None)
            case ProposalRejected():
                op_id = node.writes.pop(reply.request_id, None)
                if op_id is None:
                    return
                outcome = "unknown" if reply.reason is ReplyReason.DROPPED else "fail"
                self.workload.complete(op_id, outcome, None, leader_hint=reply.leader_hint)
            case ReadGranted():
                got = node.reads.pop(reply.request_id, None)
                if got is None:
                    return
                op_id, key = got
                if node.kv.applied_index < reply.read_index:
                    raise AssertionError(f"{nid}: read granted at {reply.read_index} before it was applied")
                self.workload.complete(op_id, "ok", node.kv.read(key))
            case ReadRejected():
                got = node.reads.pop(reply.request_id, None)
                if got is not None:
                    self.workload.complete(got[0], "fail", None, leader_hint=reply.leader_hint)

    # -- client entry points (called by the workload when a request reaches a node) ---------------

    def submit(self, nid: str, op_id: int, kind: OpKind, key: str, command: bytes | None) -> bool:
        """Hand a client request to ``nid``; False if the node is down (the client will time out)."""
        node = self.nodes[nid]
        if not node.up:
            return False
        if node.paused:
            node.held.append(("client", (op_id, kind, key, command)))
            return True
        self._submit_now(nid, op_id, kind, key, command)
        return True

    def _submit_now(self, nid: str, op_id: int, kind: OpKind, key: str, command: bytes | None) -> None:
        node = self.nodes[nid]
        assert node.replica is not None
        rid = f"{op_id}"
        if kind is OpKind.GET:
            node.reads[rid] = (op_id, key)
            node.replica.read(rid, self.local_now(nid))
        else:
            assert command is not None
            node.writes[rid] = op_id
            if node.replica.role is Role.LEADER:
                # Evaluated on applied state, possibly behind the log while the leader is not
                # ready yet: such a command meets another state and is skipped, never misapplied.
                command = node.kv.prepare(command, node.replica.ballot)
            node.replica.propose(command, rid)
        self._drain(nid)

    # -- faults ----------------------------------------------------------------------------------

    def _on_fault(self, _: Any) -> None:
        if not self.fault_phase:
            return
        c = self.config
        kinds = ["crash", "pause", "freeze", "partition", "link_cut", "power_loss", "wipe", "depose"]
        weights = [c.crash_weight, c.pause_weight, c.freeze_weight, c.partition_weight,
                   c.link_cut_weight, c.power_loss_weight, c.wipe_weight, c.depose_weight]
        if sum(weights) > 0:
            kind = self.rng.choices(kinds, weights)[0]
            up = [n for n in self.node_ids if self.nodes[n].up and not self.nodes[n].paused]
            if kind == "crash" and up:
                victim = self._pick_victim(up)
                if self.rng.random() < 0.5:
                    self.nodes[victim].crash_armed = True  # mid-write: before the fsync completes
                else:
                    self._crash(victim)
                    self.schedule(self.rng.uniform(50, c.downtime_ms_max), "restart", victim)
            elif kind == "pause" and up:
                victim = self._pick_victim(up)
                self.nodes[victim].paused = True
                self.faults["pause"] += 1
                self._trace_event("pause", victim)
                self.schedule(self.rng.uniform(50, c.downtime_ms_max), "resume", victim)
            elif kind == "freeze" and up:
                self._freeze(self._pick_victim(up))
            elif kind == "power_loss":
                self.faults["power_loss"] += 1
                for nid in self.node_ids:
                    if self.nodes[nid].up:
                        self._crash(nid)
                        self.schedule(self.rng.uniform(50, c.downtime_ms_max), "restart", nid)
            elif kind == "wipe" and up and self._may_wipe():
                self._wipe(self._pick_victim(up))
            elif kind == "partition":
                if self.rng.random() < 0.5:
                    leader = self._current_leader() or self.rng.choice(self.node_ids)
                    links = self.network.isolate(leader, self.node_ids)
                else:
                    shuffled = list(self.node_ids)
                    self.rng.shuffle(shuffled)
                    cut = self.rng.randrange(1, len(shuffled))
                    links = self.network.partition(shuffled[:cut], shuffled[cut:])
                self.faults["partition"] += 1
                self._trace_event("partition", sorted(self.network.blocked))
                self.schedule(self.rng.uniform(100, c.downtime_ms_max), "heal", links)
            elif (kind == "depose" and self.clock.now_ms >= self.deposing_until
                  and (deposed := self._current_leader()) is not None):
                # Once the cut-off follower surely campaigns (and the others refuse it, bound by
                # their lease promise), the leader loses everyone: the first promise to expire
                # elects the campaigner, possibly while the old leader still serves reads.
                follower = self.rng.choice([node_name(v) for v in self.membership.voters
                                            if node_name(v) != deposed] or [deposed])
                links = self.network.partition([deposed], [follower])
                self.faults["depose"] += 1
                self._trace_event("depose", deposed, follower)
                p = self.paxos_config
                later = p.election_timeout_max_ms + self.rng.uniform(0, p.retransmit_ms)
                self.deposing_until = self.clock.now_ms + later + p.election_timeout_max_ms + p.lease_ms
                self.schedule(later, "isolate", deposed)
                self.schedule(later + p.election_timeout_max_ms, "heal", links)
            elif kind == "link_cut":
                # Often between the leader and a follower: that follower campaigns while the
                # others still hear the leader, so their lease promises are what protects it.
                current = self._current_leader()
                a = current if current is not None and self.rng.random() < 0.7 else self.rng.choice(self.node_ids)
                b = self.rng.choice([n for n in self.node_ids if n != a])
                links = self.network.partition([a], [b])
                self.faults["link_cut"] += 1
                self._trace_event("link_cut", a, b)
                self.schedule(self.rng.uniform(100, 2 * c.downtime_ms_max), "heal", links)
        self.schedule(self.rng.expovariate(1 / c.fault_interval_ms), "fault", None)

    def _freeze(self, nid: str) -> None:
        """A VM suspend too short to matter to the lease: the node is not stepped and its clock
        stops, for at most what the drift margin absorbs, at most once per few leases."""
        node = self.nodes[nid]
        if self.clock.now_ms < node.frozen_until or self.freeze_ms_max <= 0:
            return
        length = self.rng.uniform(0.5, 1.0) * self.freeze_ms_max
        node.paused = True
        node.clock.freeze()
        node.frozen_until = self.clock.now_ms + length + 3 * (self.config.lease_ms + self.config.max_clock_drift_ms)
        self.faults["freeze"] += 1
        self._trace_event("freeze", nid)
        self.schedule(length, "thaw", (nid, node.boot))

    def _on_thaw(self, payload: tuple[str, int]) -> None:
        nid, boot = payload
        node = self.nodes[nid]
        node.clock.thaw()
        if node.boot == boot:
            self._on_resume(nid)

    def _wipe(self, nid: str) -> None:
        """The node loses its whole disk: it restarts as a new incarnation, and the operator adds
        that and removes the old one (which stays a voter that never answers meanwhile)."""
        node = self.nodes[nid]
        old_id = self.node_id(nid)
        self._crash(nid)
        node.disk = SimDisk()
        node.wiped = True
        self.faults["wipe"] += 1
        self.latest_id[nid] = ""  # its next id is known once it restarts
        self._trace_event("wipe", nid, old_id)
        self.schedule(self.rng.uniform(50, self.config.downtime_ms_max), "restart", nid)

    # -- the operator: membership changes ---------------------------------------------------------

    def _on_reconfig(self, _: Any) -> None:
        self._reconfigure()
        self.schedule(self.rng.expovariate(1 / self.config.reconfig_interval_ms), "reconfig", None)

    def _may_wipe(self) -> bool:
        """A wipe loses a voter until it is replaced: inject one only when the group tolerates
        it (no voter lost to an earlier wipe in any membership a replica knows, and no more
        than ``nodes`` voters, so the replacement's extra voter does not outrun the quorum)."""
        known = [self.membership] + [n.replica.membership for n in self.nodes.values()
                                     if n.replica is not None and n.replica.membership is not None]
        return (len(self.membership.voters) <= self.config.nodes
                and not any(self._stale_in(m) for m in known))

    def _stale_in(self, membership: Membership) -> list[str]:
        return [v for v in membership.voters
                if node_name(v) in self.latest_id and self.latest_id[node_name(v)] != v]

    def _stale_members(self) -> list[str]:
        """Voters that are an earlier incarnation of a node (its disk was wiped since)."""
        return self._stale_in(self.membership)

    def _reconfigure(self) -> None:
        """Ask the leader for the next membership change: finish replacing a wiped incarnation
        (add the new one, then remove the old one), else add a non-member or remove a voter so
        that the group keeps between ``nodes`` and ``nodes + 1`` voters. Half the time a second
        random change follows at once (a correct leader refuses it: CONFIG_PENDING)."""
        leader = self._current_leader()
        if leader is None:
            return
        r = self.nodes[leader].replica
        assert r is not None
        members = r.membership
        if members is None:
            return
        stale = self._stale_members()
        change: tuple[str | None, str | None] | None = None
        if stale:
            old_id = stale[0]
            new_id = self.latest_id[node_name(old_id)]
            if not new_id:
                return  # still down
            change = (new_id, None) if new_id not in members else (None, old_id)
        elif self.fault_phase:
            change = self._random_change(set(members.voters))
        if change is None:
            return
        self._request_change(leader, *change)
        if self.fault_phase and self.rng.random() < 0.5:
            add, remove = change
            after = (set(members.voters) | {add}) - {remove}
            second = self._random_change({v for v in after if v is not None})
            if second is not None:
                self._request_change(leader, *second)

    def _random_change(self, voters: set[str]) -> tuple[str | None, str | None] | None:
        outsiders = [i for n in self.node_ids if (i := self.node_id(n)) is not None and i not in voters]
        if len(voters) <= self.config.nodes and outsiders:
            return self.rng.choice(outsiders), None
        if len(voters) > self.config.nodes:
            return None, self.rng.choice(sorted(voters))
        return None

    def _request_change(self, leader: str, add: str | None, remove: str | None) -> None:
        r = self.nodes[leader].replica
        if r is None or not self.nodes[leader].up:
            return  # it crashed meanwhile (an armed crash fires on its next write)
        self.faults["reconfig_requests"] += 1
        self._trace_event("reconfig", leader, add, remove)
        rid = f"cfg{self.steps}.{self.faults['reconfig_requests']}"
        if add is not None:
            r.change_membership(rid, add=add)
        else:
            r.change_membership(rid, remove=remove)
        self._drain(leader)

    def _pick_victim(self, candidates: list[str]) -> str:
        leader = self._current_leader()
        if leader in candidates and self.rng.random() < 0.5:
            return leader
        return self.rng.choice(candidates)

    def _current_leader(self) -> str | None:
        best: tuple[int, str] | None = None
        for nid in self.node_ids:
            r = self.nodes[nid].replica
            if r is not None and self.nodes[nid].up and r.role is Role.LEADER:
                if best is None or r.ballot.round > best[0]:
                    best = (r.ballot.round, nid)
        return best[1] if best else None

    def _on_restart(self, nid: str) -> None:
        if not self.nodes[nid].up:
            self.faults["restart"] += 1
            self._start_node(nid)

    def _on_resume(self, nid: str) -> None:
        node = self.nodes[nid]
        if not node.up or not node.paused:
            return
        node.paused = False
        self._trace_event("resume", nid)
        held, node.held = node.held, []
        for what, item in held:
            if not node.up:
                break
            if what == "msg":
                self._step(nid, item)
            elif what == "sync":
                self._complete_sync(nid, item)
            else:
                self._submit_now(nid, *item)
        self._observe_role(nid)

    def _on_isolate(self, nid: str) -> None:
        links = self.network.isolate(nid, self.node_ids)
        self._trace_event("isolate", nid)
        node = self.nodes[nid]
        if node.up and not node.paused and self.rng.random() < 0.5:
            self._freeze(nid)  # its lease now lasts longer in real time, by what the margin covers
        self.schedule(self.paxos_config.election_timeout_max_ms, "heal", links)

    def _on_heal(self, links: frozenset[tuple[str, str]]) -> None:
        self.network.heal(links)
        self._trace_event("heal", sorted(links))

    def _end_faults(self) -> None:
        self.fault_phase = False
        self.network.heal()
        for nid in self.node_ids:
            node = self.nodes[nid]
            node.crash_armed = False
            node.clock.thaw()
            if not node.up:
                self._on_restart(nid)
            elif node.paused:
                self._on_resume(nid)
        self.liveness.quiet(self.clock.now_ms, current_leader=self._current_leader())
        self.committed_at_quiet = self.oracle.applied_index
        self._trace_event("quiet")

    # -- verdicts --------------------------------------------------------------------------------

    def report(self) -> SimReport:
        self.workload.finish()
        lin = check_history(self.history.ops)
        conv_problems = []
        for nid in self.node_ids:
            node = self.nodes[nid]
            if not node.up:
                continue
            member = self.node_id(nid) in self.membership
            if (member and self.liveness.quiet_at is not None
                    and node.kv.applied_index < self.committed_at_quiet):
                conv_problems.append(f"{nid} applied only {node.kv.applied_index} of the "
                                     f"{self.committed_at_quiet} entries committed when faults stopped")
            expected = self.oracle_digests.get(node.kv.applied_index)
            if expected is not None and node.kv.digest() != expected:
                conv_problems.append(f"{nid} state at {node.kv.applied_index} differs from the committed log")
        self.log_safety.check_prefix_known(self.oracle.applied_index)
        activations = sum(getattr(r, "activations", 0) for r in self.replicas_made)
        if activations:
            self.faults["mutant_activations"] = activations
        ops = self.history.ops
        for o in ops:
            self._trace.update(repr(sorted(o.to_record().items())).encode())
        return SimReport(
            config=self.config,
            steps=self.steps,
            virtual_ms=self.clock.now_ms,
            ops=len(ops),
            ops_ok=sum(1 for o in ops if o.outcome == "ok"),
            ops_failed=sum(1 for o in ops if o.outcome == "fail"),
            ops_unknown=sum(1 for o in ops if o.outcome == "unknown"),
            commits=self.commits,
            faults=dict(self.faults),
            network={"sent": self.network.sent, "dropped": self.network.dropped,
                     "duplicated": self.network.duplicated, "delivered": self.network.delivered},
            linearizability=lin,
            log_safety_ok=self.log_safety.ok,
            log_safety=self.log_safety.describe(),
            liveness=self.liveness.result(),
            convergence_ok=not conv_problems,
            convergence="; ".join(conv_problems) or "every live replica matches the committed log",
            trace_hash=self._trace.hexdigest()[:16],
        )


def run(config: SimConfig) -> SimReport:
    return World(config).run()
