"""Client workloads for the simulator, in FoundationDB's setup / run / check shape.

``KVWorkload`` runs closed-loop clients that put, get and compare-and-swap a few keys through
whichever node they believe leads, and readers that only read, continuously, from whichever
node they believe leads (a node that answered last time stays their guess, so a deposed leader
that still answers reads keeps being asked). Every invocation and outcome goes to the world's
``History`` for the linearizability checker. Written values are unique per operation so a read
pins down which write it saw. A request whose node crashes, or whose answer does not come back
within the timeout, ends with an UNKNOWN outcome (it may still take effect).

Clients talk to nodes through the world (with a random one-way delay); all randomness is the
world's seeded RNG. This module never reads the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quorumdb.core.kv import encode_command
from quorumdb.core.paxos import node_name
from quorumdb.sim.checkers import OpKind

if TYPE_CHECKING:
    from quorumdb.sim.world import World

__all__ = ["WorkloadConfig", "KVWorkload"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadConfig:
    clients: int = 4
    readers: int = 2
    keys: int = 3
    timeout_ms: float = 4000.0
    think_ms_max: float = 30.0
    link_ms_max: float = 5.0  # one-way client <-> node delay
    get_weight: float = 0.4
    put_weight: float = 0.35
    cas_weight: float = 0.25
    reader_think_ms_max: float = 10.0


@dataclass(slots=True)
class _Client:
    cid: int
    reader: bool = False
    leader_guess: str | None = None  # a node name
    node: str = ""  # where the operation in flight was sent
    avoid: str = ""  # a node that just failed this client without naming a leader ...
    avoid_until: float = 0.0  # ... until then (one client timeout)
    op_id: int | None = None
    kind: OpKind | None = None
    key: str = ""
    value: Any = None
    seen: dict[str, Any] = field(default_factory=dict)
    counter: int = 0


class KVWorkload:
    def __init__(self, world: World, config: WorkloadConfig) -> None:
        self.world = world
        self.config = config
        self.clients = [_Client(cid=i, reader=i >= config.clients)
                        for i in range(config.clients + config.readers)]
        self._owner: dict[int, _Client] = {}
        self.keys = [f"k{i}" for i in range(config.keys)]

    # -- setup / run / check -----------------------------------------------------------------------

    def setup(self) -> None:
        for c in self.clients:
            self.world.schedule(self.world.rng.uniform(0, 100), "client", ("next", c.cid, 0))

    def finish(self) -> None:
        """End of run: every operation still waiting has an unknown outcome."""
        self.world.history.close()
        self._owner.clear()

    # -- events ------------------------------------------------------------------------------------

    def on_event(self, payload: tuple[Any, ...]) -> None:
        what = payload[0]
        if what == "next":
            self._issue(self.clients[payload[1]])
        elif what == "arrive":
            _, op_id, nid, kind, key, command = payload
            if op_id in self._owner:
                self.world.submit(nid, op_id, kind, key, command)
        elif what == "answer":
            _, op_id, outcome, result, hint = payload
            self._finish(op_id, outcome, result, hint)
        elif what == "timeout":
            op_id = payload[1]
            if op_id in self._owner:
                self._finish(op_id, "unknown", None, None)

    def _issue(self, c: _Client) -> None:
        w = self.world
        rng = w.rng
        cfg = self.config
        if c.reader:
            kind = OpKind.GET
        else:
            kind = rng.choices([OpKind.GET, OpKind.PUT, OpKind.CAS],
                               [cfg.get_weight, cfg.put_weight, cfg.cas_weight])[0]
        key = rng.choice(self.keys)
        c.counter += 1
        value: Any = None
        command: bytes | None = None
        unique = f"c{c.cid}.{c.counter}"
        if kind is OpKind.PUT:
            value = unique
            command = encode_command("put", key, value=unique)
        elif kind is OpKind.CAS:
            expected = c.seen.get(key)
            value = (expected, unique)
            command = encode_command("cas", key, value=unique, expected=expected)
        op_id = w.history.invoke(c.cid, kind, key, value, time=w.clock.now_ms)
        c.op_id, c.kind, c.key, c.value = op_id, kind, key, value
        self._owner[op_id] = c
        if w.clock.now_ms >= c.avoid_until:
            c.avoid = ""
        if c.leader_guess is not None:
            nid = c.leader_guess
        else:
            nid = rng.choice([n for n in w.node_ids if n != c.avoid] or w.node_ids)
        c.node = nid
        w.schedule(rng.uniform(0.1, cfg.link_ms_max), "client", ("arrive", op_id, nid, kind, key, command))
        w.schedule(cfg.timeout_ms, "client", ("timeout", op_id))

    def complete(self, op_id: int, outcome: str, result: Any, *, leader_hint: str | None = None) -> None:
        """A node answered (the answer travels back to the client with a delay)."""
        if op_id in self._owner:
            delay = self.world.rng.uniform(0.1, self.config.link_ms_max)
            self.world.schedule(delay, "client", ("answer", op_id, outcome, result, leader_hint))

    def _finish(self, op_id: int, outcome: str, result: Any, hint: str | None) -> None:
        c = self._owner.pop(op_id, None)
        if c is None:
            return
        h = self.world.history
        now = self.world.clock.now_ms
        if outcome == "ok":
            h.ok(op_id, result, time=now)
            c.leader_guess = c.node
            if c.kind is OpKind.GET:
                c.seen[c.key] = result
            elif c.kind is OpKind.CAS and result:
                c.seen[c.key] = c.value[1]
        elif outcome == "fail":
            h.fail(op_id, time=now)
            # A hint naming a node that just timed out on this client is not followed (for one
            # timeout): it is often a deposed leader its followers have not given up on yet.
            avoiding = c.avoid and now < c.avoid_until
            c.leader_guess = node_name(hint) if hint is not None else None
            if c.leader_guess is None or (avoiding and c.leader_guess == c.avoid):
                c.leader_guess = None
                if not avoiding:
                    self._avoid(c, now)
        else:
            h.unknown(op_id)
            c.leader_guess = None
            self._avoid(c, now)
        c.op_id = None
        think = self.config.reader_think_ms_max if c.reader else self.config.think_ms_max
        self.world.schedule(self.world.rng.uniform(0, think), "client", ("next", c.cid, op_id))

    def _avoid(self, c: _Client, now: float) -> None:
        c.avoid = c.node
        c.avoid_until = now + self.config.timeout_ms
