"""A tiny in-test message pump for driving a few paxos replicas by hand, and its own tests.

Everything is deterministic: one virtual clock, FIFO delivery, seeded election timeouts.
Every message goes through to_wire -> msgpack -> from_wire, so the wire form is exercised too.
Other test_paxos_* modules import ``Cluster`` from here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import msgpack

from quorumdb.core.paxos import (
    Entry,
    EntryKind,
    MemoryLogStorage,
    Message,
    PaxosConfig,
    ProposalCommitted,
    ReadGranted,
    Replica,
    Reply,
    Role,
    from_wire,
    persist_ready,
    to_wire,
)

GROUP = "g1"
FAST = PaxosConfig(
    heartbeat_interval_ms=20,
    lease_ms=200,
    max_clock_drift_ms=50,
    election_timeout_min_ms=300,
    election_timeout_max_ms=600,
    retransmit_ms=60,
)


def _value(e: Entry) -> tuple:
    return (int(e.kind), tuple((c.request_id, c.data) for c in e.commands),
            e.config.new.voters if e.config else None)


class Cluster:
    def __init__(
        self,
        nodes: Iterable[str] = ("n1", "n2", "n3"),
        *,
        config: PaxosConfig = FAST,
        seed: int = 0,
        joiners: Iterable[str] = (),
        replica_class: type[Replica] = Replica,
    ) -> None:
        self.replica_class = replica_class
        self.config = config
        self.seed = seed
        self.now = 0
        self.voters = tuple(nodes)
        self.storages: dict[str, MemoryLogStorage] = {}
        self.replicas: dict[str, Replica] = {}
        self.inflight: list[Message] = []
        self.cut: set[frozenset[str]] = set()  # pairs that cannot talk
        self.down: set[str] = set()
        self.applied: dict[str, list[tuple[int, tuple]]] = {}
        self.replies: dict[str, list[Reply]] = {}
        self.chosen: dict[int, tuple] = {}  # index -> value, first applied anywhere
        self.violations: list[str] = []
        self.sent: list[Message] = []
        self.delivered: list[tuple[int, Message]] = []
        # Optional network chaos: random delivery order, drops and duplicates.
        self.chaos: random.Random | None = None
        self.max_acked = 0  # highest index whose commit was acknowledged to a client
        self.drop_rate = 0.0
        self.drop: Callable[[Message], bool] | None = None  # drops the messages it accepts
        self.dup_rate = 0.0
        for n in self.voters:
            self._start(n, initial_voters=self.voters)
        for n in joiners:
            self._start(n, initial_voters=None)

    # --- lifecycle ---

    def _start(self, node: str, *, initial_voters: tuple[str, ...] | None) -> None:
        storage = self.storages.setdefault(node, MemoryLogStorage())
        rng = random.Random(f"{self.seed}/{node}/{len(self.applied.get(node, []))}/{self.now}")
        self.replicas[node] = self.replica_class(GROUP, node, self.config, storage, rng,
                                      initial_voters=initial_voters)
        self.applied[node] = []
        self.replies.setdefault(node, [])
        self.down.discard(node)

    def add_node(self, node: str) -> None:
        self._start(node, initial_voters=None)

    def crash(self, node: str) -> None:
        self.down.add(node)
        self.inflight = [m for m in self.inflight if m.dst != node and m.src != node]

    def restart(self, node: str) -> None:
        self._start(node, initial_voters=self.voters if node in self.voters else None)

    # --- network ---

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups."""
        sets = [set(g) for g in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                for x in a:
                    for y in b:
                        self.cut.add(frozenset((x, y)))

    def isolate(self, node: str) -> None:
        self.partition([node], [n for n in self.replicas if n != node])

    def heal(self) -> None:
        self.cut.clear()

    # --- pump ---

    def flush(self, node: str) -> None:
        if node in self.down:
            return
        ready = self.replicas[node].ready()
        persist_ready(self.storages[node], ready)
        for m in ready.messages:
            wire = msgpack.unpackb(msgpack.packb(to_wire(m)))
            again = from_wire(wire)
            assert again == m, (again, m)
            self.inflight.append(again)
            self.sent.append(again)
        log = self.applied[node]
        if ready.apply_snapshot is not None:
            log[:] = [tuple(x) for x in msgpack.unpackb(ready.apply_snapshot.data)]
            log[:] = [(i, _untuple(v)) for i, v in log]
        for e in ready.committed:
            expected = (log[-1][0] + 1) if log else self._snap_floor(node, e.index)
            if e.index != expected:
                self.violations.append(f"{node} applied {e.index} after {expected - 1}")
            value = _value(e)
            first = self.chosen.setdefault(e.index, value)
            if first != value:
                self.violations.append(f"slot {e.index}: {node} applied {value}, not {first}")
            log.append((e.index, value))
        for reply in ready.replies:
            if isinstance(reply, ProposalCommitted):
                self.max_acked = max(self.max_acked, reply.index)
            elif isinstance(reply, ReadGranted) and reply.read_index < self.max_acked:
                self.violations.append(
                    f"stale read on {node}: index {reply.read_index} < acked {self.max_acked}")
        self.replies[node].extend(ready.replies)

    def _snap_floor(self, node: str, index: int) -> int:
        return index  # a replica may start applying above a snapshot it replayed

    def deliver(self, max_messages: int = 100_000,
                stop: Callable[[], bool] | None = None) -> None:
        """Deliver FIFO until quiet (or until ``stop()`` holds after a delivery)."""
        for n in self.replicas:
            self.flush(n)
        count = 0
        while self.inflight:
            count += 1
            assert count < max_messages, "message storm"
            chaos = self.chaos
            m = self.inflight.pop(chaos.randrange(len(self.inflight)) if chaos else 0)
            if m.dst in self.down or frozenset((m.src, m.dst)) in self.cut:
                continue
            if self.drop is not None and self.drop(m):
                continue
            if chaos is not None:
                if chaos.random() < self.drop_rate:
                    continue
                if chaos.random() < self.dup_rate:
                    self.inflight.append(m)
            self.delivered.append((self.now, m))
            self.replicas[m.dst].step(m, self.now)
            self.flush(m.dst)
            if stop is not None and stop():
                return

    def tick(self, ms: int = 10) -> None:
        self.now += ms
        for n, r in self.replicas.items():
            if n not in self.down:
                r.tick(self.now)
        self.deliver()
        self.check_leases()

    def run(self, ms: int, step: int = 10) -> None:
        for _ in range(ms // step):
            self.tick(step)

    def run_until(self, pred: Callable[[], bool], max_ms: int = 20_000, step: int = 10) -> None:
        waited = 0
        while not pred():
            assert waited < max_ms, f"condition not reached within {max_ms} ms"
            self.tick(step)
            waited += step

    def check_leases(self) -> None:
        holders = [n for n, r in self.replicas.items()
                   if n not in self.down and r.has_lease(self.now)]
        if len(holders) > 1:
            self.violations.append(f"two leases at {self.now}: {holders}")

    # --- queries ---

    def live(self) -> list[Replica]:
        return [r for n, r in self.replicas.items() if n not in self.down]

    def leaders(self) -> list[str]:
        return [n for n, r in self.replicas.items()
                if n not in self.down and r.role is Role.LEADER]

    def leader(self) -> str:
        (n,) = self.leaders()
        return n

    def elect(self, max_ms: int = 20_000) -> str:
        """Run until exactly one live leader has committed its own no-op."""
        def ok() -> bool:
            ls = self.leaders()
            return len(ls) == 1 and self.replicas[ls[0]].leader_ready
        self.run_until(ok, max_ms)
        return self.leader()

    def propose(self, node: str, data: bytes, rid: str) -> None:
        self.replicas[node].propose(data, rid)

    def committed_ids(self, node: str) -> list[str]:
        return [str(r.request_id) for r in self.replies[node] if isinstance(r, ProposalCommitted)]

    def data(self, node: str) -> list[bytes]:
        return [d for _, v in self.applied[node] if v[0] == int(EntryKind.COMMANDS)
                for _, d in v[1]]

    def snapshot_bytes(self, node: str) -> bytes:
        return msgpack.packb([[i, _tolist(v)] for i, v in self.applied[node]])


def _tolist(v: object) -> object:
    if isinstance(v, tuple):
        return [_tolist(x) for x in v]
    return v


def _untuple(v: object) -> object:
    if isinstance(v, list):
        return tuple(_untuple(x) for x in v)
    return v


# --- tests of the harness itself ---


def test_harness_single_node_commits() -> None:
    c = Cluster(["n1"])
    leader = c.elect()
    c.propose(leader, b"x", "r1")
    c.deliver()
    assert c.committed_ids(leader) == ["r1"]
    assert c.data(leader) == [b"x"]
    assert c.violations == []


def test_harness_three_nodes_agree() -> None:
    c = Cluster()
    leader = c.elect()
    for i in range(5):
        c.propose(leader, f"v{i}".encode(), f"r{i}")
    c.run(200)
    assert c.committed_ids(leader) == [f"r{i}" for i in range(5)]
    for n in c.replicas:
        assert c.data(n) == [f"v{i}".encode() for i in range(5)]
    assert c.violations == []
