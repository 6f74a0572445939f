"""A tiny in-test message pump for the transaction cores, and its own tests.

Everything is deterministic: one virtual clock, FIFO delivery (unless a test holds or drops
messages), participants over a dict store, one ledger. Every message goes through to_wire ->
msgpack -> from_wire, so the wire form is exercised too. Other test_txn_* modules import
``Net``, ``DictStore`` and ``KVEvaluator`` from here.

Items are plain values. Action payloads (msgpack-able dicts):
``{"put": v}`` (PUT), ``{"add": n}`` (UPDATE on an int), DELETE (no payload), and an optional
``"if": expected`` condition (the current value must equal it) on any action.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from quorumdb.core.txn import (
    ActionKind,
    CommitPrepared,
    DropPrepared,
    Evaluation,
    ItemRef,
    ItemVersion,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    Message,
    Participant,
    ParticipantRecord,
    PreparedTxn,
    PutItem,
    PutPrepared,
    ReadItem,
    ReadRequest,
    ReadTxn,
    ReasonCode,
    RecoverRequest,
    RecoveryTxn,
    TxnAction,
    TxnClock,
    TxnConfig,
    TxnId,
    TxnLedger,
    TxnResult,
    TxnStatus,
    WriteReply,
    WriteRequest,
    WriteTxn,
    from_wire,
    to_wire,
)

FAST = TxnConfig(retransmit_ms=10, prepare_timeout_ms=100, recovery_after_ms=300,
                 recovery_retry_ms=100, read_retry_ms=5, read_timeout_ms=500,
                 ledger_stale_ms=600, token_ttl_ms=10_000, ledger_retention_ms=20_000)
LEDGER = "ledger"


def ref(key: str, table: str = "t") -> ItemRef:
    return ItemRef(table=table, key=key)


class DictStore:
    """An ``ItemStore`` over a dict, applying ``ParticipantRecord``s as the driver must."""

    def __init__(self, items: dict[ItemRef, Any] | None = None) -> None:
        self.items: dict[ItemRef, ItemVersion] = {}
        self.version = 0
        self.prepared: dict[TxnId, PreparedTxn] = {}  # the durable prepared records
        for r, v in (items or {}).items():
            self._put(r, v, None)

    def read(self, r: ItemRef) -> ItemVersion:
        return self.items.get(r) or ItemVersion(item=None, version=0)

    def value(self, r: ItemRef) -> Any:
        return self.read(r).item

    def _put(self, r: ItemRef, item: Any, ts: Any) -> None:
        self.version += 1
        old = self.read(r)
        self.items[r] = ItemVersion(item=item, version=self.version,
                                    write_ts=old.write_ts if ts is None else ts)

    def apply(self, rec: ParticipantRecord) -> None:
        if isinstance(rec, PutPrepared):
            self.prepared[rec.txn.txn_id] = rec.txn
        elif isinstance(rec, CommitPrepared):
            del self.prepared[rec.txn_id]
            for r, effect in rec.writes:
                self._put(r, effect, rec.ts)
        elif isinstance(rec, DropPrepared):
            del self.prepared[rec.txn_id]
        else:
            assert isinstance(rec, PutItem)
            self._put(rec.ref, rec.effect, None)


class KVEvaluator:
    def evaluate(self, action: TxnAction, current: ItemVersion, txn_id: TxnId | None) -> Evaluation:
        payload = action.payload or {}
        if "if" in payload and current.item != payload["if"]:
            return Evaluation.failed(ReasonCode.CONDITIONAL_CHECK_FAILED,
                                     "The conditional request failed", current.item)
        if action.kind is ActionKind.PUT:
            return Evaluation.passed(payload["put"])
        if action.kind is ActionKind.UPDATE:
            if not isinstance(current.item, int):
                return Evaluation.failed(ReasonCode.VALIDATION_ERROR, "not a number")
            return Evaluation.passed(current.item + payload["add"])
        return Evaluation.passed(None)  # DELETE (effect: absent) or CHECK (ignored)


def put(i: int, part: str, key: str, value: Any, **cond: Any) -> TxnAction:
    return TxnAction(index=i, partition=part, ref=ref(key), kind=ActionKind.PUT,
                     payload={"put": value, **cond}, return_item_on_failure=True)


def add(i: int, part: str, key: str, n: int, **cond: Any) -> TxnAction:
    return TxnAction(index=i, partition=part, ref=ref(key), kind=ActionKind.UPDATE,
                     payload={"add": n, **cond})


def check(i: int, part: str, key: str, expected: Any, *, show: bool = False) -> TxnAction:
    return TxnAction(index=i, partition=part, ref=ref(key), kind=ActionKind.CHECK,
                     payload={"if": expected}, return_item_on_failure=show)


def wire(msg: Message) -> Message:
    raw = msgpack.unpackb(msgpack.packb(to_wire(msg), use_bin_type=True), raw=False)
    back = from_wire(raw)
    assert back == msg, (back, msg)
    return back


class Net:
    """Participants ``partitions`` (each its own DictStore), coordinator nodes ``nodes``, one
    ledger; messages delivered FIFO through the wire form. ``hold(pred)`` keeps matching
    messages out of the network (``release()`` puts them back); ``drop(pred)`` loses them."""

    def __init__(self, partitions: Iterable[str] = ("p1", "p2"), nodes: Iterable[str] = ("c1",),
                 config: TxnConfig = FAST, items: dict[str, dict[ItemRef, Any]] | None = None,
                 participant_class: type[Participant] = Participant,
                 ledger: TxnLedger | None = None) -> None:
        self.now = 0
        self.config = config
        self.nodes = tuple(nodes)
        self.participant_class = participant_class
        self.stores = {p: DictStore((items or {}).get(p)) for p in partitions}
        self.participants: dict[str, Participant] = {}
        for p in self.stores:
            self.restart(p)
        self.ledger = ledger if ledger is not None else TxnLedger(config)
        self.clocks = {n: TxnClock(n) for n in self.nodes}
        self.cores: dict[tuple[str, TxnId], WriteTxn | ReadTxn | RecoveryTxn] = {}
        self.queue: deque[Message] = deque()
        self.held: list[Message] = []
        self.replies: dict[TxnId, TxnResult] = {}
        self.write_replies: list[WriteReply] = []
        self.delivered: list[Message] = []
        self.down: set[str] = set()
        self._hold: Callable[[Message], bool] = lambda m: False
        self._drop: Callable[[Message], bool] = lambda m: False

    # -- inputs -----------------------------------------------------------------------------

    def restart(self, p: str) -> None:
        """Rebuild participant ``p`` from its durable prepared records, as after a crash."""
        store = self.stores[p]
        self.participants[p] = self.participant_class(
            p, store=store, evaluator=KVEvaluator(), config=self.config,
            rng=random.Random(1), recovery_targets=self.nodes, prepared=store.prepared.values())

    def write(self, actions: Iterable[TxnAction], *, node: str = "c1", token: str | None = None,
              fingerprint: str = "") -> WriteTxn:
        req = WriteRequest(actions=tuple(actions), token=token, fingerprint=fingerprint)
        core = WriteTxn(node=node, request=req, clock=self.clocks[node], config=self.config,
                        ledger=LEDGER, now_ms=self.now)
        self.cores[(node, core.txn_id)] = core
        self._drain_core(core)
        return core

    def read(self, *items: tuple[str, str], node: str = "c1") -> ReadTxn:
        req = ReadRequest(items=tuple(ReadItem(partition=p, ref=ref(k)) for p, k in items))
        core = ReadTxn(node=node, request=req, clock=self.clocks[node], config=self.config,
                       now_ms=self.now)
        self.cores[(node, core.txn_id)] = core
        self._drain_core(core)
        return core

    def plain_write(self, p: str, action: TxnAction, request_id: int = 1) -> None:
        self.participants[p].write(request_id, action, self.now)
        self._drain_participant(p)

    def hold(self, pred: Callable[[Message], bool]) -> None:
        self._hold = pred

    def drop(self, pred: Callable[[Message], bool]) -> None:
        self._drop = pred

    def release(self) -> None:
        self._hold = lambda m: False
        held, self.held = self.held, []
        self.queue.extend(held)

    def crash_node(self, node: str) -> None:
        """A coordinator node loses every core it runs."""
        for key in [k for k in self.cores if k[0] == node]:
            del self.cores[key]

    # -- running ----------------------------------------------------------------------------

    def pump(self, max_steps: int = 10_000) -> None:
        for _ in range(max_steps):
            if not self.queue:
                return
            self._deliver(self.queue.popleft())
        raise AssertionError("the network never went quiet")

    def advance(self, ms: int, step_ms: int = 5) -> None:
        """Let ``ms`` of time pass, ticking every core and participant every ``step_ms``."""
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + step_ms)
            for p, part in self.participants.items():
                if p not in self.down:
                    part.tick(self.now)
                    self._drain_participant(p)
            for core in list(self.cores.values()):
                core.tick(self.now)
                self._drain_core(core)
            self.pump()

    def run_until_quiet(self, ms: int = 3000) -> None:
        self.pump()
        self.advance(ms)

    def _send(self, msg: Message) -> None:
        if self._drop(msg):
            return
        if self._hold(msg):
            self.held.append(msg)
            return
        self.queue.append(wire(msg))

    def _deliver(self, msg: Message) -> None:
        self.delivered.append(msg)
        if msg.dst in self.down:
            return
        if msg.dst in self.participants:
            self.participants[msg.dst].step(msg, self.now)
            self._drain_participant(msg.dst)
        elif msg.dst == LEDGER:
            assert isinstance(msg, LedgerBegin | LedgerDecide | LedgerComplete)
            self._send(self.ledger.apply(msg, self.now))
        elif isinstance(msg, RecoverRequest):
            if (msg.dst, msg.txn_id) not in self.cores:
                rec = RecoveryTxn(node=msg.dst, txn_id=msg.txn_id, participants=msg.participants,
                                  config=self.config, ledger=LEDGER, now_ms=self.now)
                self.cores[(msg.dst, msg.txn_id)] = rec
                self._drain_core(rec)
        else:
            core = self.cores.get((msg.dst, msg.txn_id))
            if core is not None:
                core.step(msg, self.now)
                self._drain_core(core)

    def _drain_participant(self, p: str) -> None:
        r = self.participants[p].ready()
        for rec in r.persist:
            self.stores[p].apply(rec)
        for m in r.messages:
            self._send(m)
        self.write_replies.extend(r.replies)

    def _drain_core(self, core: WriteTxn | ReadTxn | RecoveryTxn) -> None:
        r = core.ready()
        for m in r.messages:
            self._send(m)
        if r.reply is not None:
            assert core.txn_id not in self.replies or isinstance(core, RecoveryTxn)
            self.replies[core.txn_id] = r.reply
        if r.done:
            self.cores.pop((core.node, core.txn_id), None)


# -- the harness's own tests ---------------------------------------------------------------------


def test_a_write_transaction_commits_on_every_partition_through_the_wire_form() -> None:
    net = Net(items={"p1": {ref("a"): 10}, "p2": {ref("b"): 0}})
    t = net.write([add(0, "p1", "a", -3), add(1, "p2", "b", 3)])
    net.run_until_quiet()
    assert net.replies[t.txn_id].status is TxnStatus.SUCCESS
    assert net.stores["p1"].value(ref("a")) == 7 and net.stores["p2"].value(ref("b")) == 3
    assert not net.cores and not net.stores["p1"].prepared and not net.stores["p2"].prepared
    rec = net.ledger.record(t.txn_id)
    assert rec is not None and rec.completed_ms is not None


def test_a_read_transaction_returns_items_in_request_order() -> None:
    net = Net(items={"p1": {ref("a"): 1}, "p2": {ref("b"): 2}})
    r = net.read(("p2", "b"), ("p1", "a"), ("p1", "zz"))
    net.run_until_quiet()
    assert net.replies[r.txn_id] == TxnResult(txn_id=r.txn_id, status=TxnStatus.SUCCESS,
                                              items=(2, 1, None))
