"""The transaction simulation: participants, coordinators and the ledger in one process.

One ``random.Random(seed)`` drives every choice (message delays, drops, duplicates, faults,
clock offsets, fsync latency, the workload), and a priority queue of timed events drives virtual
time, so a seed reproduces a run exactly (``trace_hash`` digests every event). The transaction
cores are driven exactly as their Ready contracts say:

* a participant's Ready: its records are applied to the in-memory store at once and queued on
  the partition's simulated disk; its messages and write replies go out only when a simulated
  fsync has made those records *and every earlier one* durable. A crash loses what was not
  synced and every Ready not yet sent; the restarted participant is rebuilt from the disk.
* a coordinator's Ready: messages go out at once, the client is answered, finished cores are
  dropped. A crashed coordinator node loses every core it ran (it keeps no state); it restarts
  with a fresh clock identity (``c0.2``: its incarnation).
* the ledger stands for a replicated group: each request is applied when it arrives and the
  answer sent; its state survives everything, but it can be unreachable (an outage). Its driver
  sweeps stale records into recovery every ``ledger_stale_ms / 2``.

Faults (while the fault phase lasts): coordinator crashes (and restarts), coordinator crashes in
the middle of sending a commit (some participants get the Decision, the others do not, then the
node dies), participant crashes (and restarts from disk), ledger outages, cut links, message
loss, duplication and reordering, coordinator clocks that disagree. Then everything is healed,
the clients run on until ``steps`` events, stop, and the world runs until every transaction is
decided, delivered and completed (or ``quiet_ms_max`` passes: a quiescence failure). The
checkers (``quorumdb.sim.checkers.transactions``) judge the recorded facts.

``TxnSimConfig.mutant`` swaps in a deliberately broken core from ``quorumdb.sim.txn.mutants``.
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

from quorumdb.core.txn import (
    CommitPrepared,
    Decision,
    ItemVersion,
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerStatus,
    Message,
    Participant,
    ParticipantReady,
    ReadTxn,
    RecoverRequest,
    RecoveryTxn,
    TxnClock,
    TxnConfig,
    TxnLedger,
    TxnState,
    WriteTxn,
    from_wire,
    to_wire,
)
from quorumdb.sim.checkers.transactions import BankChecker, Violation
from quorumdb.sim.clock import DriftingClock, VirtualClock
from quorumdb.sim.network import NetworkConfig, SimNetwork
from quorumdb.sim.txn.bank import BankEvaluator, BankState, PartitionDisk, accounts, initial_image
from quorumdb.sim.txn.mutants import TxnMutant, txn_mutant
from quorumdb.sim.txn.workload import (
    BankWorkload,
    ClientAnswer,
    ClientRequest,
    PlainAnswer,
    PlainRequest,
    WorkloadConfig,
)

__all__ = ["TxnSimConfig", "TxnSimReport", "TxnWorld", "run"]

LEDGER = "ledger"


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnSimConfig:
    seed: int
    # Events processed with clients running (fault phase + quiet phase); then the clients stop
    # and the run goes on until everything is settled or quiet_ms_max passes.
    steps: int = 20_000
    partitions: int = 4
    coordinators: int = 3
    accounts: int = 8
    initial_balance: int = 100
    movers: int = 4
    readers: int = 2
    touchers: int = 1
    amount_max: int = 60
    check_weight: float = 0.3
    replay_weight: float = 0.08
    mismatch_weight: float = 0.05
    drop: float = 0.03
    duplicate: float = 0.02
    delay_ms_min: float = 1.0
    delay_ms_max: float = 20.0
    slow: float = 0.01  # share of messages held up to slow_ms_max longer (a long tail)
    slow_ms_max: float = 400.0
    fault_fraction: float = 0.7
    fault_interval_ms: float = 400.0
    coordinator_crash_weight: float = 1.0
    crash_mid_commit_weight: float = 1.0
    participant_crash_weight: float = 1.0
    ledger_outage_weight: float = 0.3
    link_cut_weight: float = 0.5
    downtime_ms_max: float = 1500.0
    clock_offset_ms_max: float = 300.0  # how far apart the nodes' clocks start
    clock_rate_ppm_max: float = 1000.0
    fsync_ms_min: float = 0.2
    fsync_ms_max: float = 4.0
    tick_ms: int = 10
    client_timeout_ms: float = 1500.0
    client_attempts: int = 4
    think_ms_max: float = 20.0
    retransmit_ms: int = 40
    prepare_timeout_ms: int = 300
    recovery_after_ms: int = 500
    recovery_retry_ms: int = 300
    ledger_stale_ms: int = 1500
    read_attempts: int = 5
    decided_cache: int = 10_000  # TxnConfig.decided_cache_max of the participants
    quiet_ms_max: float = 30_000.0
    wire: bool = True  # every message travels as to_wire -> msgpack -> from_wire
    mutant: str = ""  # TEST ONLY: a broken core from quorumdb.sim.txn.mutants ("" = the real one)

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def txn(self) -> TxnConfig:
        return TxnConfig(retransmit_ms=self.retransmit_ms,
                         prepare_timeout_ms=self.prepare_timeout_ms,
                         recovery_after_ms=self.recovery_after_ms,
                         recovery_retry_ms=self.recovery_retry_ms,
                         ledger_stale_ms=self.ledger_stale_ms, read_retry_ms=20,
                         read_attempts_max=self.read_attempts,
                         decided_cache_max=self.decided_cache,
                         read_timeout_ms=int(self.client_timeout_ms))


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnSimReport:
    config: TxnSimConfig
    steps: int
    virtual_ms: float
    committed: int  # transactions applied at every participant
    cancelled: int  # transactions the ledger decided CANCELLED
    stats: dict[str, int]  # the workload's counts (conflicts, replays, reads, ...)
    faults: dict[str, int]
    network: dict[str, int]
    violations: tuple[Violation, ...]
    settled: bool
    reads_checked: int
    trace_hash: str

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def conflicts(self) -> int:
        s = self.stats
        return s.get("write_conflicts", 0) + s.get("read_conflicts", 0) + s.get("plain_conflicts", 0)

    @property
    def faults_injected(self) -> int:
        return sum(v for k, v in self.faults.items() if k in _FAULT_KINDS)

    def failed_checkers(self) -> str:
        return ",".join(sorted({v.checker for v in self.violations}))

    def summary(self) -> str:
        s = self.stats
        lines = [
            f"steps={self.steps} virtual_time={self.virtual_ms / 1000:.1f}s settled={self.settled}",
            f"transactions: committed={self.committed} cancelled={self.cancelled} "
            f"write_conflicts={s.get('write_conflicts', 0)} "
            f"condition_failed={s.get('write_condition_failed', 0)} "
            f"unknown={s.get('writes_unknown', 0)} recoveries={self.faults.get('recoveries', 0)}",
            f"reads: ok={s.get('reads_ok', 0)} checked={self.reads_checked} "
            f"conflicts={s.get('read_conflicts', 0)}",
            f"plain writes: ok={s.get('plain_ok', 0)} conflicts={s.get('plain_conflicts', 0)}",
            "workload: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())),
            "faults: " + " ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
            "network: " + " ".join(f"{k}={v}" for k, v in sorted(self.network.items())),
        ]
        for v in self.violations[:20]:
            lines.append(f"VIOLATION {v}")
        if len(self.violations) > 20:
            lines.append(f"... and {len(self.violations) - 20} more violations")
        lines += [f"trace hash: {self.trace_hash}",
                  f"verdict: {'PASS' if self.ok else 'FAIL'} (seed {self.config.seed})"]
        return "\n".join(lines)


_FAULT_KINDS = ("coordinator_crash", "crash_mid_commit", "participant_crash", "ledger_outage",
                "link_cut")


@dataclass(slots=True)
class _PNode:
    """A participant node: the disk survives crashes; the rest is rebuilt on restart."""

    name: str
    clock: DriftingClock
    disk: PartitionDisk
    up: bool = True
    boot: int = 0
    core: Participant | None = None
    store: BankState = field(default_factory=BankState)
    pending: collections.deque[tuple[int, ParticipantReady]] = field(default_factory=collections.deque)
    written: int = 0
    synced: int = 0
    sync_in_flight: bool = False
    crash_armed: bool = False  # crash right after the next write, before it is synced


@dataclass(slots=True)
class _CNode:
    name: str
    clock: DriftingClock
    up: bool = True
    boot: int = 0
    txn_clock: TxnClock | None = None
    cores: dict[str, WriteTxn | ReadTxn | RecoveryTxn] = field(default_factory=dict)
    clients: dict[str, tuple[str, int]] = field(default_factory=dict)  # txn -> (client, seq)
    armed: bool = False  # crash in the middle of the next commit it sends


class TxnWorld:
    def __init__(self, config: TxnSimConfig) -> None:
        self.config = c = config
        self.rng = random.Random(config.seed)
        self.clock = VirtualClock()
        self.network = SimNetwork(
            NetworkConfig(delay_ms_min=c.delay_ms_min, delay_ms_max=c.delay_ms_max, drop=c.drop,
                          duplicate=c.duplicate, slow=c.slow, slow_ms_max=c.slow_ms_max),
            self.rng,
        )
        self.mutant: TxnMutant | None = txn_mutant(c.mutant)
        self.txn_config = c.txn()
        self.accounts = accounts(c.accounts, c.partitions)
        self.partitions = tuple(f"p{i}" for i in range(c.partitions))
        self.coordinators = tuple(f"c{i}" for i in range(c.coordinators))
        self.servers = self.partitions + self.coordinators + (LEDGER,)
        self.evaluator = BankEvaluator()

        def node_clock() -> DriftingClock:
            rate = self.rng.uniform(-c.clock_rate_ppm_max, c.clock_rate_ppm_max)
            return DriftingClock(self.clock, rate, self.rng.uniform(0, c.clock_offset_ms_max))

        self.pnodes = {p: _PNode(name=p, clock=node_clock(), disk=PartitionDisk())
                       for p in self.partitions}
        for a in self.accounts:
            d = self.pnodes[a.partition].disk.durable
            d.version += 1
            d.items[a.ref] = ItemVersion(item=initial_image(c.initial_balance), version=d.version)
        self.cnodes = {n: _CNode(name=n, clock=node_clock()) for n in self.coordinators}
        self.ledger_clock = node_clock()
        ledger_cls = self.mutant.ledger_class if self.mutant is not None else TxnLedger
        self.ledger = ledger_cls(self.txn_config)
        self.ledger_up = True
        self.checker = BankChecker(refs=tuple(a.ref for a in self.accounts),
                                   total=c.initial_balance * c.accounts)
        self.workload = BankWorkload(self, WorkloadConfig(
            movers=c.movers, readers=c.readers, touchers=c.touchers, amount_max=c.amount_max,
            check_weight=c.check_weight, replay_weight=c.replay_weight,
            mismatch_weight=c.mismatch_weight, think_ms_max=c.think_ms_max,
            timeout_ms=c.client_timeout_ms, attempts=c.client_attempts), self.accounts)
        self.faults: collections.Counter[str] = collections.Counter()
        self.fault_phase = True
        self.draining_since: float | None = None
        self.settled = False
        self.steps = 0
        self._plain: dict[int, tuple[str, int]] = {}  # plain write request id -> (client, seq)
        self._plain_ids = 0
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self._handlers: dict[str, Callable[[Any], None]] = {
            "deliver": self._on_deliver,
            "client_in": self._on_client_in,
            "client_out": self._on_client_out,
            "client": self.workload.on_wake,
            "client_timeout": self.workload.on_timeout,
            "tick": self._on_tick,
            "sync": self._on_sync,
            "fault": self._on_fault,
            "restart": self._on_restart,
            "heal": self._on_heal,
            "ledger_up": self._on_ledger_up,
            "sweep": self._on_sweep,
            "settle": self._on_settle,
        }

    # -- events -----------------------------------------------------------------------------------

    def schedule(self, delay_ms: float, kind: str, payload: Any) -> None:
        assert delay_ms >= 0
        self._seq += 1
        heapq.heappush(self._queue, (self.clock.now_ms + delay_ms, self._seq, kind, payload))

    def _trace_event(self, *parts: Any) -> None:
        self._trace.update(repr(parts).encode())

    def _now(self, clock: DriftingClock) -> int:
        return int(clock.now_ms())

    def run(self) -> TxnSimReport:
        for p in self.partitions:
            self._start_participant(p)
        for n in self.coordinators:
            self._start_coordinator(n)
        self.schedule(self.config.ledger_stale_ms / 2, "sweep", None)
        self.workload.setup()
        self.schedule(self.rng.expovariate(1 / self.config.fault_interval_ms), "fault", None)
        fault_steps = int(self.config.steps * self.config.fault_fraction)
        while self._queue and not self.settled:
            if self.fault_phase and self.steps >= fault_steps:
                self._end_faults()
            if self.draining_since is None and self.steps >= self.config.steps:
                self.draining_since = self.clock.now_ms
                self.workload.stop()
                self.schedule(0, "settle", None)
            if (self.draining_since is not None
                    and self.clock.now_ms > self.draining_since + self.config.quiet_ms_max):
                break
            t, _, kind, payload = heapq.heappop(self._queue)
            self.clock.advance_to(t)
            self.steps += 1
            self._trace_event(kind, round(t, 6))
            self._handlers[kind](payload)
        return self.report()

    # -- the network ------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        if self.config.wire:
            raw = msgpack.unpackb(msgpack.packb(to_wire(msg), use_bin_type=True), raw=False)
            msg = from_wire(raw)
        for delay in self.network.plan(msg.src, msg.dst):
            self.schedule(delay, "deliver", msg)

    def client_send(self, client: str, node: str, obj: Any) -> None:
        for delay in self.network.plan(client, node):
            self.schedule(delay, "client_in", (client, node, obj))

    def _answer_client(self, node: str, client: str, obj: Any) -> None:
        for delay in self.network.plan(node, client):
            self.schedule(delay, "client_out", (node, client, obj))

    def _on_deliver(self, msg: Message) -> None:
        if not self.network.arrive(msg.src, msg.dst):
            return
        self._trace_event("msg", type(msg).__name__, msg.src, msg.dst, msg.txn_id)
        if msg.dst in self.pnodes:
            node = self.pnodes[msg.dst]
            if node.up and node.core is not None:
                node.core.step(msg, self._now(node.clock))
                self._p_drain(node)
        elif msg.dst in self.cnodes:
            self._c_deliver(self.cnodes[msg.dst], msg)
        elif msg.dst == LEDGER:
            self._l_deliver(msg)

    def _on_client_in(self, payload: tuple[str, str, Any]) -> None:
        client, node_name, obj = payload
        if not self.network.arrive(client, node_name):
            return
        if isinstance(obj, PlainRequest):
            p = self.pnodes[node_name]
            if p.up and p.core is not None:
                self._plain_ids += 1
                self._plain[self._plain_ids] = (obj.client, obj.seq)
                p.core.write(self._plain_ids, obj.action, self._now(p.clock))
                self._p_drain(p)
            return
        assert isinstance(obj, ClientRequest)
        n = self.cnodes[node_name]
        if not n.up:
            return
        assert n.txn_clock is not None
        now = self._now(n.clock)
        core: WriteTxn | ReadTxn
        if obj.write is not None:
            cls = self.mutant.write_class if self.mutant is not None else WriteTxn
            core = cls(node=n.name, request=obj.write, clock=n.txn_clock, config=self.txn_config,
                       ledger=LEDGER, now_ms=now)
            self.checker.began(core.txn_id, core.participants, obj.write.token)
        else:
            assert obj.read is not None
            rcls = self.mutant.read_class if self.mutant is not None else ReadTxn
            core = rcls(node=n.name, request=obj.read, clock=n.txn_clock, config=self.txn_config,
                        now_ms=now)
        n.cores[core.txn_id] = core
        n.clients[core.txn_id] = (obj.client, obj.seq)
        self._c_drain(n, core)

    def _on_client_out(self, payload: tuple[str, str, Any]) -> None:
        node, client, obj = payload
        if self.network.arrive(node, client):
            self.workload.on_answer(obj)

    # -- participants -----------------------------------------------------------------------------

    def _start_participant(self, name: str) -> None:
        node = self.pnodes[name]
        node.up = True
        node.boot += 1
        node.store = node.disk.load()
        if self.mutant is not None and self.mutant.forget_prepared:
            node.store.prepared.clear()
        cls = self.mutant.participant_class if self.mutant is not None else Participant
        node.core = cls(name, store=node.store, evaluator=self.evaluator, config=self.txn_config,
                        rng=random.Random(self.rng.getrandbits(64)),
                        recovery_targets=self.coordinators,
                        prepared=tuple(node.store.prepared.values()))
        node.pending.clear()
        node.written = node.synced = 0
        node.sync_in_flight = False
        self._trace_event("start", name, node.boot)
        self.schedule(node.clock.global_delay_ms(self.config.tick_ms), "tick", (name, node.boot))

    def _p_drain(self, node: _PNode) -> None:
        assert node.core is not None
        r = node.core.ready()
        if not r:
            return
        if r.persist:
            for rec in r.persist:
                node.store.apply(rec)  # the core reads its own writes from the next input on
            node.written += 1
            node.disk.write(node.written, r.persist)
            if node.crash_armed:
                self._crash_participant(node.name)
                return
        node.pending.append((node.written, r))
        self._p_sync_soon(node)
        self._p_flush(node)

    def _p_sync_soon(self, node: _PNode) -> None:
        if node.written > node.synced and not node.sync_in_flight:
            node.sync_in_flight = True
            self.schedule(self.rng.uniform(self.config.fsync_ms_min, self.config.fsync_ms_max),
                          "sync", (node.name, node.boot, node.written))

    def _on_sync(self, payload: tuple[str, int, int]) -> None:
        name, boot, upto = payload
        node = self.pnodes[name]
        if not node.up or node.boot != boot:
            return
        for rec in node.disk.sync(upto):
            if isinstance(rec, CommitPrepared):
                self.checker.applied(name, rec.txn_id, rec.ts, tuple(r for r, _ in rec.writes))
        node.synced = upto
        node.sync_in_flight = False
        self._p_sync_soon(node)
        self._p_flush(node)

    def _p_flush(self, node: _PNode) -> None:
        while node.up and node.pending and node.pending[0][0] <= node.synced:
            _, r = node.pending.popleft()
            for m in r.messages:
                self.send(m)
            for reply in r.replies:
                assert isinstance(reply.request_id, int)
                client, seq = self._plain.pop(reply.request_id)
                self._answer_client(node.name, client, PlainAnswer(client=client, seq=seq,
                                                                   reply=reply))

    def _crash_participant(self, name: str) -> None:
        node = self.pnodes[name]
        node.up = False
        node.crash_armed = False
        node.core = None
        node.pending.clear()
        lost = node.disk.crash()
        self.faults["participant_crash"] += 1
        self.faults["lost_unsynced_records"] += lost
        self._trace_event("crash", name, lost)
        self.schedule(self.rng.uniform(50, self.config.downtime_ms_max), "restart", name)

    # -- coordinators -----------------------------------------------------------------------------

    def _start_coordinator(self, name: str) -> None:
        n = self.cnodes[name]
        n.up = True
        n.boot += 1
        n.txn_clock = TxnClock(f"{name}.{n.boot}")
        n.cores.clear()
        n.clients.clear()
        n.armed = False
        self._trace_event("start", name, n.boot)
        self.schedule(n.clock.global_delay_ms(self.config.tick_ms), "tick", (name, n.boot))

    def _c_deliver(self, n: _CNode, msg: Message) -> None:
        if not n.up:
            return
        now = self._now(n.clock)
        if isinstance(msg, RecoverRequest):
            if msg.txn_id in n.cores:
                return  # this node already runs a core for it
            core: WriteTxn | ReadTxn | RecoveryTxn = RecoveryTxn(
                node=n.name, txn_id=msg.txn_id, participants=msg.participants,
                config=self.txn_config, ledger=LEDGER, now_ms=now)
            n.cores[msg.txn_id] = core
            self.faults["recoveries"] += 1
            self._c_drain(n, core)
            return
        found = n.cores.get(msg.txn_id)
        if found is not None:
            found.step(msg, now)
            self._c_drain(n, found)

    def _c_drain(self, n: _CNode, core: WriteTxn | ReadTxn | RecoveryTxn) -> None:
        r = core.ready()
        msgs = list(r.messages)
        commits = [m for m in msgs if isinstance(m, Decision) and m.commit]
        if n.armed and commits:
            # Die in the middle of sending a commit: the messages leave in order, and the node
            # dies before the last commit Decision is out.
            last = max(i for i, m in enumerate(msgs) if isinstance(m, Decision) and m.commit)
            k = self.rng.randrange(last + 1)
            for m in msgs[:k]:
                self.send(m)
            self.faults["crash_mid_commit"] += 1
            self._trace_event("crash_mid_commit", n.name, core.txn_id, k)
            self._crash_coordinator(n.name, counted=False)
            return
        for m in msgs:
            self.send(m)
        if r.reply is not None:
            client = n.clients.pop(core.txn_id, None)
            if client is not None:
                self._answer_client(n.name, client[0], ClientAnswer(client=client[0],
                                                                   seq=client[1], result=r.reply))
        if r.done:
            n.cores.pop(core.txn_id, None)
            n.clients.pop(core.txn_id, None)

    def _crash_coordinator(self, name: str, *, counted: bool = True) -> None:
        n = self.cnodes[name]
        n.up = False
        n.cores.clear()
        n.clients.clear()
        n.armed = False
        if counted:
            self.faults["coordinator_crash"] += 1
        self._trace_event("crash", name)
        self.schedule(self.rng.uniform(50, self.config.downtime_ms_max), "restart", name)

    # -- the ledger -------------------------------------------------------------------------------

    def _l_deliver(self, msg: Message) -> None:
        if not self.ledger_up:
            return
        assert isinstance(msg, LedgerBegin | LedgerDecide | LedgerComplete)
        answer: LedgerAnswer = self.ledger.apply(msg, self._now(self.ledger_clock))
        if answer.status is LedgerStatus.DECIDED and answer.record is not None:
            self.checker.decided(answer.txn_id, answer.record.state)
        self.send(answer)

    def _on_sweep(self, _: Any) -> None:
        if self.ledger_up:
            for rec in self.ledger.stale(self._now(self.ledger_clock)):
                target = self.rng.choice(self.coordinators)
                self.faults["ledger_sweeps"] += 1
                self.send(RecoverRequest(src=LEDGER, dst=target, txn_id=rec.txn_id,
                                         participants=rec.participants))
        self.schedule(self.config.ledger_stale_ms / 2, "sweep", None)

    def _on_ledger_up(self, _: Any) -> None:
        self.ledger_up = True
        self._trace_event("ledger_up")

    # -- time and faults --------------------------------------------------------------------------

    def _on_tick(self, payload: tuple[str, int]) -> None:
        name, boot = payload
        if name in self.pnodes:
            p = self.pnodes[name]
            if not p.up or p.boot != boot or p.core is None:
                return
            p.core.tick(self._now(p.clock))
            self._p_drain(p)
            clock = p.clock
        else:
            n = self.cnodes[name]
            if not n.up or n.boot != boot:
                return
            now = self._now(n.clock)
            for core in list(n.cores.values()):
                if n.up:
                    core.tick(now)
                    self._c_drain(n, core)
            if not n.up:
                return  # crashed in the middle of a commit
            clock = n.clock
        self.schedule(clock.global_delay_ms(self.config.tick_ms), "tick", (name, boot))

    def _on_fault(self, _: Any) -> None:
        if not self.fault_phase:
            return
        c = self.config
        kinds = ["coordinator_crash", "crash_mid_commit", "participant_crash", "ledger_outage",
                 "link_cut"]
        weights = [c.coordinator_crash_weight, c.crash_mid_commit_weight,
                   c.participant_crash_weight, c.ledger_outage_weight, c.link_cut_weight]
        if sum(weights) > 0:
            kind = self.rng.choices(kinds, weights)[0]
            up_c = [n for n in self.coordinators if self.cnodes[n].up]
            up_p = [p for p in self.partitions if self.pnodes[p].up]
            if kind == "coordinator_crash" and up_c:
                self._crash_coordinator(self.rng.choice(up_c))
            elif kind == "crash_mid_commit" and up_c:
                victim = self.rng.choice(up_c)
                self.cnodes[victim].armed = True
                self._trace_event("arm", victim)
            elif kind == "participant_crash" and up_p:
                victim = self.rng.choice(up_p)
                if self.rng.random() < 0.5:
                    self.pnodes[victim].crash_armed = True  # mid-write: before the fsync
                else:
                    self._crash_participant(victim)
            elif kind == "ledger_outage" and self.ledger_up:
                self.ledger_up = False
                self.faults["ledger_outage"] += 1
                self._trace_event("ledger_down")
                self.schedule(self.rng.uniform(50, c.downtime_ms_max), "ledger_up", None)
            elif kind == "link_cut":
                a, b = self.rng.sample(self.servers, 2)
                links = self.network.partition([a], [b])
                self.faults["link_cut"] += 1
                self._trace_event("link_cut", a, b)
                self.schedule(self.rng.uniform(50, c.downtime_ms_max), "heal", links)
        self.schedule(self.rng.expovariate(1 / c.fault_interval_ms), "fault", None)

    def _on_restart(self, name: str) -> None:
        if name in self.pnodes and not self.pnodes[name].up:
            self.faults["restart"] += 1
            self._start_participant(name)
        elif name in self.cnodes and not self.cnodes[name].up:
            self.faults["restart"] += 1
            self._start_coordinator(name)

    def _on_heal(self, links: frozenset[tuple[str, str]]) -> None:
        self.network.heal(links)
        self._trace_event("heal", sorted(links))

    def _end_faults(self) -> None:
        self.fault_phase = False
        self.network.heal()
        self.ledger_up = True
        for n in self.cnodes.values():
            n.armed = False
        for p in self.pnodes.values():
            p.crash_armed = False
        for name in self.partitions:
            if not self.pnodes[name].up:
                self._on_restart(name)
        for name in self.coordinators:
            if not self.cnodes[name].up:
                self._on_restart(name)
        self._trace_event("quiet")

    # -- settling and verdicts --------------------------------------------------------------------

    def _leftovers(self) -> list[str]:
        out: list[str] = []
        if not self.workload.idle:
            out.append("clients still waiting")
        for p, node in self.pnodes.items():
            if node.core is not None and node.core.prepared:
                out.append(f"{p} holds {sorted(node.core.prepared)}")
            if node.pending or node.disk.queued:
                out.append(f"{p} has unsynced work")
        for rec in self.ledger.records():
            if not rec.state.decided or rec.completed_ms is None:
                out.append(f"ledger: {rec.txn_id} {rec.state.value}, not completed")
        for n in self.cnodes.values():
            if n.cores:
                out.append(f"{n.name} runs {len(n.cores)} cores")
        return out

    def _on_settle(self, _: Any) -> None:
        if not self._leftovers():
            self.settled = True
        else:
            self.schedule(100.0, "settle", None)

    def report(self) -> TxnSimReport:
        final: dict[Any, Any] = {}
        for node in self.pnodes.values():
            for ref, v in node.disk.durable.items.items():
                final[ref] = v.item
            if node.up and node.core is not None and node.store.items != node.disk.durable.items:
                if not node.pending and not node.disk.queued:
                    self.checker._fail("quiescence", f"{node.name}: memory differs from disk")
        ledger = {r.txn_id: r.state for r in self.ledger.records()}
        violations = self.checker.check(final, settled=self.settled, leftovers=self._leftovers(),
                                        ledger=ledger)
        committed = sum(1 for t in self.checker.applied_at if self.checker._everywhere(t))
        cancelled = sum(1 for s in self.checker.decisions.values() if s is TxnState.CANCELLED)
        stats = dict(self.workload.stats)
        return TxnSimReport(
            config=self.config, steps=self.steps, virtual_ms=self.clock.now_ms,
            committed=committed, cancelled=cancelled, stats=stats, faults=dict(self.faults),
            network={"sent": self.network.sent, "dropped": self.network.dropped,
                     "duplicated": self.network.duplicated, "slowed": self.network.slowed,
                     "delivered": self.network.delivered},
            violations=tuple(violations), settled=self.settled,
            reads_checked=len(self.checker.reads), trace_hash=self._trace.hexdigest()[:16],
        )


def run(config: TxnSimConfig) -> TxnSimReport:
    return TxnWorld(config).run()

