"""A transaction participant: one partition's side of DynamoDB's transaction protocol (sans-I/O).

One ``Participant`` runs on the leader of each partition. Inputs: ``step(msg, now_ms)`` for
``Prepare``, ``Decision``, ``ReadItems`` and ``Verify``; ``write(request_id, action, now_ms)``
for a plain (non-transactional) write; ``tick(now_ms)``. Output: ``ready()``. Items are read
through the injected ``ItemStore`` and actions are evaluated by the injected ``Evaluator`` (the
partition's own expression machinery); the core never looks inside an item, a payload or an
effect. Time only comes in as ``now_ms`` and randomness only from the injected
``random.Random``; this module never imports asyncio, reads a clock or does I/O.

Protocol (USENIX ATC 2023, "Distributed Transactions at Scale in Amazon DynamoDB")
---------------------------------------------------------------------------------
*Prepare.* A write transaction T with timestamp ts(T) asks each participant to prepare the
actions on its items. The participant accepts iff, for every item x of T here,

1. no *other* transaction is prepared on x (x is not locked),
2. ts(T) > write_ts(x), the timestamp of the last transaction that wrote x, and
3. the evaluator passes the action against x's current image (the condition holds).

Then it locks every item of T, keeps the evaluated effects and persists the prepared record
(``PutPrepared``) *before* its yes vote leaves (the vote is in the same Ready). Otherwise it
votes no, with one reason per action: ``TransactionConflict`` for 1 and 2, the evaluator's
reason for 3 (``ConditionalCheckFailed`` with the old image when the action asked for it).
A Prepare for a transaction already prepared here is answered yes again, without evaluating
anything; one for a transaction decided recently is answered no.

*Decision.* ``Decision(commit)`` arrives only after the decision is durable in the ledger. On
commit the participant applies the prepared effects, stamping each written item with
write_ts = ts(T) and a new version (``CommitPrepared``), and unlocks; on cancel it drops the
record and unlocks (``DropPrepared``). Either way it acknowledges, also for a transaction it
does not hold (a duplicate, or one it voted down).

*Plain writes* (PutItem, UpdateItem, DeleteItem outside a transaction) meet the lock: a plain
write on a locked item is refused with ``TransactionConflict`` (DynamoDB refuses it the same
way; waiting instead would hold a request open for as long as a coordinator takes to decide,
and the client's retry achieves the same with the lock released meanwhile). An admitted plain
write changes the item's version but not its write timestamp: it is ordered with transactions
by the lock alone (it lands strictly between the transactions that wrote x before and after it,
and always commutes with the timestamp order because no transaction is prepared on x then).

*Read-only transactions* take two rounds and no locks. ``ReadItems`` returns each item with its
version, or fails if any is locked; ``Verify`` then checks that every item still has the version
read and is unlocked. All phase-1 reads precede all phase-2 checks, so every item held the value
returned over the whole interval between its read and its check, and these intervals share the
instant t at which the coordinator switched phases: the values are the state at t. That state is
not torn: if a write transaction W was applied at some item at t, W had been prepared on all its
items before its decision, so each of W's other items was, at t, either already written by W or
locked by W; a locked item fails the check (or, if W's commit lands before the check, its version
changed). Hence a read sees all of W or none of it.

*Recovery.* A participant that holds a prepared transaction for ``recovery_after_ms`` sends
``RecoverRequest`` (first to the transaction's coordinator, then to random ``recovery_targets``)
and repeats every ``recovery_retry_ms`` until a ``Decision`` arrives. The recovery coordinator
writes CANCELLED to the ledger only if no decision is there (compare-and-set), so it can never
contradict a commit the coordinator already made durable.

Safety argument
---------------
*Atomicity:* a participant only applies effects it persisted when voting yes, and only on a
``Decision(commit)``; decisions come from the ledger, where the compare-and-set admits exactly
one per transaction, and a commit is written only after every participant voted yes. A yes vote
is durable before it is sent, so a participant that restarts still holds the transaction and will
apply exactly the decision. *Isolation:* prepared items are locked until the decision is
applied, and a transaction is decided only once every item is locked, so write transactions are
conservative two-phase locking: serializable. Condition 2 orders the writers of every item by
timestamp (they apply in increasing ts order; a ConditionCheck reads the item under the lock but
does not move its write timestamp, so two checks never refuse each other by timestamp) and
makes a late or duplicated Prepare of an already committed transaction fail (its ts equals the
write_ts of the items it wrote), so no effect is ever applied twice (a participant that only
checked items may lock them again for it; recovery then delivers the ledger's decision, which
writes nothing there, or a cancel if the record has aged out). *Durability:* records are persisted before
anything that depends on them is sent (see ``ParticipantReady``).

A few rules are small methods of their own (``_lock_items``, ``_unlock_items``,
``_timestamp_ok``) so the
simulator's mutant catalogue (``quorumdb.sim.txn.mutants``) can break each one in a subclass;
production code never does.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .config import TxnConfig
from .messages import (
    Decision,
    DecisionAck,
    ItemsRead,
    Message,
    Prepare,
    ReadItems,
    RecoverRequest,
    Verified,
    Verify,
    Vote,
)
from .values import (
    NO_REASON,
    ZERO_TS,
    CancellationReason,
    Evaluation,
    ItemRef,
    ItemVersion,
    PartitionId,
    PreparedTxn,
    ReasonCode,
    RequestId,
    Timestamp,
    TxnAction,
    TxnId,
)

__all__ = [
    "ItemStore",
    "Evaluator",
    "PutPrepared",
    "CommitPrepared",
    "DropPrepared",
    "PutItem",
    "ParticipantRecord",
    "WriteReply",
    "ParticipantReady",
    "Participant",
]


class ItemStore(Protocol):
    """The partition's items as the participant sees them: applied state plus every record of
    earlier Readies (the driver applies a Ready's records before the next input)."""

    def read(self, ref: ItemRef) -> ItemVersion:
        """The item (``item=None`` when absent), its version and write timestamp. A deleted
        item keeps its write timestamp."""
        ...


class Evaluator(Protocol):
    def evaluate(self, action: TxnAction, current: ItemVersion, txn_id: TxnId | None) -> Evaluation:
        """Evaluate ``action`` against ``current`` (``txn_id`` is None for a plain write): a
        passed Evaluation carries the opaque effect to apply (ignored for a CHECK), a failed one
        the reason. Must be deterministic and must not change anything."""
        ...


# -- what the driver persists ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PutPrepared:
    """Store the prepared record (it locks ``txn.refs``)."""

    txn: PreparedTxn


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitPrepared:
    """Atomically: apply each effect of ``writes`` (item := effect, version := new, write_ts :=
    ``ts``) and delete the prepared record of ``txn_id``."""

    txn_id: TxnId
    ts: Timestamp
    writes: tuple[tuple[ItemRef, Any], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DropPrepared:
    """Delete the prepared record of ``txn_id`` (cancelled)."""

    txn_id: TxnId


@dataclass(frozen=True, slots=True, kw_only=True)
class PutItem:
    """A plain write: item := effect, version := new, write_ts unchanged."""

    ref: ItemRef
    effect: Any


ParticipantRecord = PutPrepared | CommitPrepared | DropPrepared | PutItem


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteReply:
    """The answer to ``Participant.write``: applied, or refused with ``reason``
    (TransactionConflict: the item is locked; or the evaluator's reason)."""

    request_id: RequestId
    ok: bool
    reason: CancellationReason = NO_REASON


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantReady:
    """One batch of work for the driver. Ordering rules:

    1. ``persist`` records are made durable in order, and each record's item effects are applied
       to the ``ItemStore`` atomically with it. They must be visible to the store's ``read``
       before the next input is stepped (the core has already moved on to the state they
       produce). In the cluster, "durable" means committed in the partition's replicated log.
    2. ``messages`` and ``replies`` go out only after the persist records of this Ready *and of
       every earlier Ready* are durable: a yes vote promises a durable prepared record, an ack a
       durable commit, a read reply shows only durable state. Readies are handled in order.
    3. Messages may be lost, duplicated or reordered by the network: the protocol tolerates it.

    If the driver loses the records of a Ready (crash before they are durable), it must rebuild
    the participant from the durable state (``Participant(prepared=...)`` over the durable
    store) and drop every later Ready unsent.
    """

    persist: tuple[ParticipantRecord, ...] = ()
    messages: tuple[Message, ...] = ()
    replies: tuple[WriteReply, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.persist or self.messages or self.replies)


@dataclass(slots=True, kw_only=True)
class _Held:
    record: PreparedTxn
    since_ms: int | None  # when prepared here (None after a restart until the first input)
    asked_ms: int | None = None  # the last RecoverRequest
    asks: int = 0


_CONFLICT_LOCKED = "Transaction is ongoing for the item"
_CONFLICT_ORDER = "A newer transaction has written the item"
_DECIDED = "Transaction was already decided"
_TOO_MANY = "Too many transactions are prepared on the partition"


Handler = Callable[["Participant", Any, int], None]


class Participant:
    """The transaction participant of partition ``partition_id`` (run it on the partition's
    leader; see the module docstring for the protocol).

    ``prepared`` rebuilds a restarted participant (or a new leader) from the durable prepared
    records; their recovery timers start at the first input. ``recovery_targets`` are the
    coordinator nodes a RecoverRequest may go to after the first (which goes to the
    transaction's own coordinator).
    """

    def __init__(
        self,
        partition_id: PartitionId,
        *,
        store: ItemStore,
        evaluator: Evaluator,
        config: TxnConfig,
        rng: random.Random,
        recovery_targets: Sequence[str] = (),
        prepared: Iterable[PreparedTxn] = (),
    ) -> None:
        if not partition_id:
            raise ValueError("partition_id must be non-empty")
        self.partition_id = partition_id
        self._store = store
        self._evaluator = evaluator
        self._cfg = config
        self._rng = rng
        self._targets = tuple(recovery_targets)
        self._prepared: dict[TxnId, _Held] = {}
        self._locks: dict[ItemRef, TxnId] = {}  # item -> the transaction prepared on it
        for rec in prepared:
            self._hold(rec, None)
        self._decided: OrderedDict[TxnId, bool] = OrderedDict()
        self._now_ms: int | None = None
        self._out_persist: list[ParticipantRecord] = []
        self._out_msgs: list[Message] = []
        self._out_replies: list[WriteReply] = []

    # --- inspection --------------------------------------------------------------------------

    @property
    def prepared(self) -> Mapping[TxnId, PreparedTxn]:
        return {t: h.record for t, h in self._prepared.items()}

    def holder(self, ref: ItemRef) -> TxnId | None:
        """The transaction prepared on ``ref`` (None when the item is free)."""
        return self._locks.get(ref)

    # --- inputs ------------------------------------------------------------------------------

    def step(self, msg: Message, now_ms: int) -> None:
        """Handle one message addressed to this partition."""
        if msg.dst != self.partition_id:
            raise ValueError(f"message for {msg.dst} stepped into {self.partition_id}")
        self._advance(now_ms)
        handler = _DISPATCH.get(type(msg))
        if handler is not None:
            handler(self, msg, now_ms)

    def tick(self, now_ms: int) -> None:
        """Advance time: ask for recovery of transactions held prepared too long."""
        self._advance(now_ms)
        cfg = self._cfg
        for txn_id, held in self._prepared.items():
            assert held.since_ms is not None
            if now_ms - held.since_ms < cfg.recovery_after_ms:
                continue
            if held.asked_ms is not None and now_ms - held.asked_ms < cfg.recovery_retry_ms:
                continue
            rec = held.record
            if held.asks == 0 or not self._targets:
                target = rec.coordinator
            else:
                target = self._rng.choice(self._targets)
            held.asked_ms = now_ms
            held.asks += 1
            self._send(RecoverRequest(src=self.partition_id, dst=target, txn_id=txn_id,
                                      participants=rec.participants))

    def write(self, request_id: RequestId, action: TxnAction, now_ms: int) -> None:
        """A plain (non-transactional) write of ``action.ref``; the answer is a ``WriteReply``
        in ``ready().replies`` (sent once durable)."""
        if action.partition != self.partition_id:
            raise ValueError(f"write for {action.partition} given to {self.partition_id}")
        self._advance(now_ms)
        if self._lock_holder(action.ref) is not None:
            reason = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT, message=_CONFLICT_LOCKED)
            self._out_replies.append(WriteReply(request_id=request_id, ok=False, reason=reason))
            return
        ev = self._evaluator.evaluate(action, self._store.read(action.ref), None)
        if not ev.ok:
            self._out_replies.append(WriteReply(request_id=request_id, ok=False,
                                                reason=_shown(ev.reason, action)))
            return
        if action.kind.writes:
            self._out_persist.append(PutItem(ref=action.ref, effect=ev.effect))
        self._out_replies.append(WriteReply(request_id=request_id, ok=True))

    def ready(self) -> ParticipantReady:
        r = ParticipantReady(persist=tuple(self._out_persist), messages=tuple(self._out_msgs),
                             replies=tuple(self._out_replies))
        self._out_persist.clear()
        self._out_msgs.clear()
        self._out_replies.clear()
        return r

    # --- rules the safety argument rests on (mutant hooks) -------------------------------------

    def _lock_items(self, rec: PreparedTxn) -> None:
        """Lock every item of a transaction prepared here, until its decision is applied."""
        for ref in rec.refs:
            assert ref not in self._locks, f"{ref} locked twice"
            self._locks[ref] = rec.txn_id

    def _unlock_items(self, rec: PreparedTxn) -> None:
        for ref in rec.refs:
            assert self._locks.get(ref) == rec.txn_id, f"{ref} not locked by {rec.txn_id}"
            del self._locks[ref]

    def _timestamp_ok(self, ts: Timestamp, write_ts: Timestamp) -> bool:
        """Timestamp order: a transaction may only follow the last one that wrote the item."""
        return ts > write_ts

    # --- internals ---------------------------------------------------------------------------

    def _advance(self, now_ms: int) -> None:
        if self._now_ms is not None and now_ms < self._now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms
        for held in self._prepared.values():
            if held.since_ms is None:
                held.since_ms = now_ms

    def _send(self, msg: Message) -> None:
        self._out_msgs.append(msg)

    def _lock_holder(self, ref: ItemRef) -> TxnId | None:
        return self._locks.get(ref)

    def _hold(self, rec: PreparedTxn, now_ms: int | None) -> None:
        assert rec.txn_id not in self._prepared
        self._lock_items(rec)
        self._prepared[rec.txn_id] = _Held(record=rec, since_ms=now_ms)

    def _release(self, txn_id: TxnId) -> PreparedTxn:
        held = self._prepared.pop(txn_id)
        self._unlock_items(held.record)
        return held.record

    def _remember(self, txn_id: TxnId, commit: bool) -> None:
        if self._cfg.decided_cache_max == 0:
            return
        self._decided[txn_id] = commit
        self._decided.move_to_end(txn_id)
        while len(self._decided) > self._cfg.decided_cache_max:
            self._decided.popitem(last=False)

    def _vote(self, msg: Prepare, ok: bool, reasons: list[tuple[int, CancellationReason]],
              seen_ts: Timestamp = ZERO_TS) -> None:
        self._send(Vote(src=self.partition_id, dst=msg.src, txn_id=msg.txn_id, ok=ok,
                        reasons=tuple(reasons), seen_ts=seen_ts))

    def _on_prepare(self, msg: Prepare, now_ms: int) -> None:
        if msg.txn_id in self._prepared:
            # A retransmission: the record is durable (or will be before this vote leaves).
            self._vote(msg, True, [(a.index, NO_REASON) for a in msg.actions])
            return
        if msg.txn_id in self._decided:
            reason = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT, message=_DECIDED)
            self._vote(msg, False, [(a.index, reason) for a in msg.actions])
            return
        if len(self._prepared) >= self._cfg.prepared_max:
            reason = CancellationReason(code=ReasonCode.THROTTLING_ERROR, message=_TOO_MANY)
            self._vote(msg, False, [(a.index, reason) for a in msg.actions])
            return
        reasons: list[tuple[int, CancellationReason]] = []
        writes: list[tuple[ItemRef, Any]] = []
        checks: list[ItemRef] = []
        seen_ts = ZERO_TS
        for action in msg.actions:
            reason, effect = self._check(msg, action)
            if reason.failed:
                current = self._store.read(action.ref)
                seen_ts = max(seen_ts, current.write_ts)
            elif action.kind.writes:
                writes.append((action.ref, effect))
            else:
                checks.append(action.ref)
            reasons.append((action.index, reason))
        if any(r.failed for _, r in reasons):
            self._vote(msg, False, reasons, seen_ts)
            return
        rec = PreparedTxn(txn_id=msg.txn_id, ts=msg.ts, coordinator=msg.src,
                          participants=msg.participants, writes=tuple(writes), checks=tuple(checks))
        self._hold(rec, now_ms)
        self._out_persist.append(PutPrepared(txn=rec))
        self._vote(msg, True, reasons)

    def _check(self, msg: Prepare, action: TxnAction) -> tuple[CancellationReason, Any]:
        """Rules 1-3 of the prepare for one action: (reason, effect)."""
        holder = self._lock_holder(action.ref)
        if holder is not None and holder != msg.txn_id:
            return CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT,
                                      message=_CONFLICT_LOCKED), None
        current = self._store.read(action.ref)
        if not self._timestamp_ok(msg.ts, current.write_ts):
            return CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT,
                                      message=_CONFLICT_ORDER), None
        ev = self._evaluator.evaluate(action, current, msg.txn_id)
        if not ev.ok:
            return _shown(ev.reason, action), None
        return NO_REASON, ev.effect

    def _on_decision(self, msg: Decision, now_ms: int) -> None:
        if msg.txn_id in self._prepared:
            rec = self._release(msg.txn_id)
            if msg.commit:
                self._out_persist.append(CommitPrepared(txn_id=rec.txn_id, ts=rec.ts,
                                                        writes=rec.writes))
            else:
                self._out_persist.append(DropPrepared(txn_id=rec.txn_id))
        self._remember(msg.txn_id, msg.commit)
        self._send(DecisionAck(src=self.partition_id, dst=msg.src, txn_id=msg.txn_id,
                               commit=msg.commit))

    def _on_read(self, msg: ReadItems, now_ms: int) -> None:
        conflicts = tuple(r for r in msg.refs if self._lock_holder(r) is not None)
        if conflicts:
            self._send(ItemsRead(src=self.partition_id, dst=msg.src, txn_id=msg.txn_id,
                                 attempt=msg.attempt, ok=False, conflicts=conflicts))
            return
        items = tuple(self._store.read(r) for r in msg.refs)
        self._send(ItemsRead(src=self.partition_id, dst=msg.src, txn_id=msg.txn_id,
                             attempt=msg.attempt, ok=True, items=items))

    def _on_verify(self, msg: Verify, now_ms: int) -> None:
        conflicts = tuple(
            r for r, v in zip(msg.refs, msg.versions, strict=True)
            if self._lock_holder(r) is not None or self._store.read(r).version != v
        )
        self._send(Verified(src=self.partition_id, dst=msg.src, txn_id=msg.txn_id,
                            attempt=msg.attempt, ok=not conflicts, conflicts=conflicts))


def _shown(reason: CancellationReason, action: TxnAction) -> CancellationReason:
    """The reason as the client may see it: the old item only if the action asked for it."""
    if reason.item is not None and not action.return_item_on_failure:
        return CancellationReason(code=reason.code, message=reason.message)
    return reason


# Transitions as data: which handler runs for which message. Anything else (a coordinator's
# message misrouted here) is ignored.
_DISPATCH: dict[type, Handler] = {
    Prepare: Participant._on_prepare,
    Decision: Participant._on_decision,
    ReadItems: Participant._on_read,
    Verify: Participant._on_verify,
}
