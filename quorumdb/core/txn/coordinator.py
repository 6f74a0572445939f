"""Transaction coordinators (sans-I/O): one core per request, on any node.

* ``WriteTxn`` runs one TransactWriteItems: Begin in the ledger, Prepare on every participant,
  write the decision to the ledger, send it, collect acknowledgements, Complete.
* ``ReadTxn`` runs one TransactGetItems: the two-phase read (read with versions, verify).
* ``RecoveryTxn`` finishes a transaction whose coordinator went quiet: it writes CANCELLED to
  the ledger unless a decision is there, then delivers whichever decision the ledger holds.
* ``TxnClock`` (one per node) issues the timestamps: unique, increasing, pushed past every
  write timestamp a participant reports.

Drive a core with ``step(msg, now_ms)`` for every message about its ``txn_id`` and
``tick(now_ms)`` every few milliseconds; take ``ready()`` after each input: send its
``messages``, answer the client with ``reply`` (at most once over the core's life), drop the core
once ``done``. Coordinators keep nothing durable: what must survive them is in the ledger, and a
coordinator node that restarts simply loses its cores (their transactions are recovered).
Time only comes in as ``now_ms``; this module never imports asyncio, reads a clock or does I/O.

Write transaction protocol and why it is safe
---------------------------------------------
1. ``LedgerBegin``: the ledger records the transaction as PREPARING with its participants and
   claims its ClientRequestToken (a token already in use answers IN_PROGRESS, MISMATCH or the
   earlier result, and the request goes no further). Nothing has been prepared yet, so a
   coordinator that cannot reach the ledger simply answers UNAVAILABLE.
2. ``Prepare`` to every participant (resent until each votes). The first vote of each
   participant counts; a no vote (once every participant voted, or ``no_vote_wait_ms`` after
   it, so that the client sees every action's reason), or no vote from someone within
   ``prepare_timeout_ms``, decides CANCEL; yes votes from all decide COMMIT. Vote timestamps push the node's clock.
3. ``LedgerDecide``: a compare-and-set on the transaction id, resent until answered. The
   answer carries the decision the ledger holds, which is the one that counts: a recovery
   coordinator may have written CANCELLED first. Only now does any ``Decision`` leave, so a
   participant can never apply a commit the ledger might still cancel, and a recovery
   coordinator always finds the decision that participants may have acted on.
4. ``Decision`` to every participant (resent until acknowledged). A cancel is answered to the
   client at once; a commit once every participant has acknowledged, so a read that follows the
   answer sees the writes.
5. ``LedgerComplete``: the record may age out (after the token window).

Exactly one decision exists per transaction (the ledger's compare-and-set), it is durable before
anyone acts on it, and every participant receives it from this coordinator or, if it dies, from
a recovery coordinator that a waiting participant or the ledger's sweep calls up. Hence every
participant applies the same decision: all commit or none.

Read-only protocol: see ``participant.py`` (the two-phase read and why it is never torn). When
every item lives on one participant the first phase suffices: a participant answers a read in one
atomic step. A failed attempt (an item locked, or changed between the phases) is retried up to
``read_attempts_max`` times, then cancelled with TransactionConflict on the items that failed.

Hook methods (``WriteTxn._decide``, ``ReadTxn._needs_verify``) let the simulator's mutant
catalogue break one rule each in a subclass; production code never does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import TxnConfig
from .messages import (
    Decision,
    DecisionAck,
    ItemsRead,
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerStatus,
    Message,
    Prepare,
    ReadItems,
    Verified,
    Verify,
    Vote,
)
from .values import (
    NO_REASON,
    Address,
    CancellationReason,
    ItemRef,
    ItemVersion,
    LedgerRecord,
    PartitionId,
    ReadItem,
    ReasonCode,
    Timestamp,
    TxnAction,
    TxnId,
    TxnResult,
    TxnState,
    TxnStatus,
    _check_str,
    _tuple_of,
    txn_id_of,
)

__all__ = [
    "CANCELLED_BY_RECOVERY",
    "TxnClock",
    "WriteRequest",
    "ReadRequest",
    "CoordinatorReady",
    "WritePhase",
    "ReadPhase",
    "RecoveryPhase",
    "WriteTxn",
    "ReadTxn",
    "RecoveryTxn",
]


class TxnClock:
    """Issues the timestamps of one coordinator node: ``(ms, seq, node)``, strictly increasing.

    ``node`` must be unique among live coordinators and must change when a node restarts with a
    clock that may have gone back (use the node id with its incarnation). ``observe`` moves the
    clock past a timestamp met elsewhere (a hybrid logical clock): a coordinator whose clock lags
    gets its transactions refused by timestamp order once, not forever.
    """

    def __init__(self, node: str) -> None:
        _check_str("node", node)
        self.node = node
        self._ms = 0
        self._seq = 0

    @property
    def last(self) -> tuple[int, int]:
        return self._ms, self._seq

    def next(self, now_ms: int) -> Timestamp:
        if now_ms > self._ms:
            self._ms, self._seq = now_ms, 0
        else:
            self._seq += 1
        return Timestamp(ms=self._ms, seq=self._seq, node=self.node)

    def observe(self, ts: Timestamp) -> None:
        if (ts.ms, ts.seq) > (self._ms, self._seq):
            self._ms, self._seq = ts.ms, ts.seq


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRequest:
    """A validated TransactWriteItems: ``actions[i].index == i``, each item at most once, each
    action routed to its partition. ``fingerprint`` identifies the request's parameters for the
    ClientRequestToken check (the API layer's ``request_fingerprint``, hex)."""

    actions: tuple[TxnAction, ...]
    token: str | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        _tuple_of("actions", self.actions, TxnAction)
        if not self.actions:
            raise ValueError("a transaction has at least one action")
        if [a.index for a in self.actions] != list(range(len(self.actions))):
            raise ValueError("action indexes must be 0..n-1 in order")
        if len({a.ref for a in self.actions}) != len(self.actions):
            raise ValueError("an item appears twice in one transaction")
        if self.token is not None:
            _check_str("token", self.token)
        _check_str("fingerprint", self.fingerprint, empty=True)

    @property
    def participants(self) -> tuple[PartitionId, ...]:
        """Every partition the transaction touches, in order of first appearance."""
        return tuple(dict.fromkeys(a.partition for a in self.actions))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRequest:
    """A validated TransactGetItems: the Gets in request order, each item at most once."""

    items: tuple[ReadItem, ...]

    def __post_init__(self) -> None:
        _tuple_of("items", self.items, ReadItem)
        if not self.items:
            raise ValueError("a read transaction has at least one item")
        if len({i.ref for i in self.items}) != len(self.items):
            raise ValueError("an item appears twice in one read transaction")


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatorReady:
    """Send ``messages``; answer the client with ``reply`` if set (once per core); forget the
    core when ``done``. A coordinator persists nothing."""

    messages: tuple[Message, ...] = ()
    reply: TxnResult | None = None
    done: bool = False

    def __bool__(self) -> bool:
        return bool(self.messages or self.reply is not None or self.done)


# -- the common part ---------------------------------------------------------------------------------


Handler = Callable[[Any, Any, int], None]


class _Core:
    """Inputs, outputs and the clock shared by the three coordinators."""

    _DISPATCH: dict[Any, dict[type, Handler]] = {}

    def __init__(self, node: Address, txn_id: TxnId, config: TxnConfig, now_ms: int) -> None:
        _check_str("node", node)
        self.node = node
        self.txn_id = txn_id
        self._cfg = config
        self._now_ms = now_ms
        self._phase: Any = None
        self._phase_ms = now_ms  # when the current phase began
        self._sent_ms = now_ms  # when the current phase last (re)sent its requests
        self._out: list[Message] = []
        self._reply: TxnResult | None = None
        self._replied = False
        self._done = False

    @property
    def phase(self) -> Any:
        return self._phase

    @property
    def done(self) -> bool:
        return self._done

    @property
    def replied(self) -> bool:
        return self._replied

    def step(self, msg: Message, now_ms: int) -> None:
        """Handle a message about this transaction (others are a driver bug: ValueError)."""
        if msg.txn_id != self.txn_id or msg.dst != self.node:
            raise ValueError(f"message for {msg.dst}/{msg.txn_id} stepped into "
                             f"{self.node}/{self.txn_id}")
        self._advance(now_ms)
        if self._done:
            return
        handler = self._DISPATCH.get(self._phase, {}).get(type(msg))
        if handler is not None:
            handler(self, msg, now_ms)

    def tick(self, now_ms: int) -> None:
        self._advance(now_ms)
        if not self._done:
            self._on_tick(now_ms)

    def ready(self) -> CoordinatorReady:
        r = CoordinatorReady(messages=tuple(self._out), reply=self._reply, done=self._done)
        self._out.clear()
        self._reply = None
        return r

    def _on_tick(self, now_ms: int) -> None:
        raise NotImplementedError

    def _advance(self, now_ms: int) -> None:
        if now_ms < self._now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms

    def _enter(self, phase: Any, now_ms: int) -> None:
        self._phase = phase
        self._phase_ms = self._sent_ms = now_ms

    def _resend_due(self, now_ms: int) -> bool:
        if now_ms - self._sent_ms >= self._cfg.retransmit_ms:
            self._sent_ms = now_ms
            return True
        return False

    def _send(self, msg: Message) -> None:
        self._out.append(msg)

    def _answer(self, result: TxnResult) -> None:
        assert not self._replied, "a client is answered once"
        self._replied = True
        self._reply = result

    def _finish(self) -> None:
        self._done = True


def _all_conflict(n: int, message: str) -> tuple[CancellationReason, ...]:
    reason = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT, message=message)
    return (reason,) * n


_NO_VOTE = "Transaction was cancelled: a participant did not answer in time"
# The Message of every reason of a transaction that recovery cancelled before its coordinator
# could decide: its ClientRequestToken was released, so a retry runs as a new request.
CANCELLED_BY_RECOVERY = "Transaction was cancelled by recovery"
_RECOVERED = CANCELLED_BY_RECOVERY


# -- TransactWriteItems --------------------------------------------------------------------------------


class WritePhase(enum.Enum):
    BEGIN = "begin"  # LedgerBegin sent
    PREPARE = "prepare"  # Prepares sent, collecting votes
    DECIDE = "decide"  # LedgerDecide sent
    RESOLVE = "resolve"  # Decision sent, collecting acknowledgements
    COMPLETE = "complete"  # LedgerComplete sent


class WriteTxn(_Core):
    """One TransactWriteItems, coordinated from node ``node`` (see the module docstring).

    ``ts`` and ``txn_id`` are drawn from ``clock`` when the core is built; the LedgerBegin is in
    the first ``ready()``. ``decision`` is the ledger's decision once known.
    """

    def __init__(self, *, node: Address, request: WriteRequest, clock: TxnClock,
                 config: TxnConfig, ledger: Address, now_ms: int) -> None:
        ts = clock.next(now_ms)
        super().__init__(node, txn_id_of(ts), config, now_ms)
        self.ts = ts
        self.request = request
        self.participants = request.participants
        self.decision: TxnState | None = None
        self._clock = clock
        self._ledger = ledger
        self._by_partition: dict[PartitionId, tuple[TxnAction, ...]] = {
            p: tuple(a for a in request.actions if a.partition == p) for p in self.participants
        }
        self._votes: dict[PartitionId, Vote] = {}
        self._first_no_ms: int | None = None  # when the first no vote came
        self._acks: set[PartitionId] = set()
        self._proposed: TxnState | None = None
        self._outcome: TxnResult | None = None
        self._enter(WritePhase.BEGIN, now_ms)
        self._send_begin()

    # --- sending -----------------------------------------------------------------------------

    def _send_begin(self) -> None:
        self._send(LedgerBegin(src=self.node, dst=self._ledger, txn_id=self.txn_id, ts=self.ts,
                               participants=self.participants, token=self.request.token,
                               fingerprint=self.request.fingerprint))

    def _send_prepare(self, partition: PartitionId) -> None:
        self._send(Prepare(src=self.node, dst=partition, txn_id=self.txn_id, ts=self.ts,
                           participants=self.participants, actions=self._by_partition[partition]))

    def _send_decision(self, partition: PartitionId, commit: bool) -> None:
        self._send(Decision(src=self.node, dst=partition, txn_id=self.txn_id, commit=commit))

    def _send_decide(self) -> None:
        assert self._proposed is not None
        self._send(LedgerDecide(src=self.node, dst=self._ledger, txn_id=self.txn_id,
                                decision=self._proposed, participants=self.participants,
                                outcome=self._outcome))

    def _send_complete(self) -> None:
        self._send(LedgerComplete(src=self.node, dst=self._ledger, txn_id=self.txn_id))

    # --- transitions -------------------------------------------------------------------------

    def _on_begin(self, msg: LedgerAnswer, now_ms: int) -> None:
        if msg.op != "begin":
            return
        status, record = msg.status, msg.record
        if status is LedgerStatus.BEGUN:
            assert record is not None and record.txn_id == self.txn_id
            if record.state.decided:  # the ledger's sweep recovered it before we got going
                self._on_decided(record, now_ms)
                return
            self._enter(WritePhase.PREPARE, now_ms)
            for p in self.participants:
                self._send_prepare(p)
        elif status is LedgerStatus.REPLAY:
            assert record is not None and record.outcome is not None
            out = record.outcome
            self._answer(TxnResult(txn_id=out.txn_id, status=out.status, reasons=out.reasons,
                                   items=out.items, replayed=True))
            self._finish()
        else:
            status_of = {LedgerStatus.IN_PROGRESS: TxnStatus.IN_PROGRESS,
                         LedgerStatus.MISMATCH: TxnStatus.PARAMETER_MISMATCH,
                         LedgerStatus.BUSY: TxnStatus.UNAVAILABLE}
            txn = record.txn_id if record is not None else self.txn_id
            self._answer(TxnResult(txn_id=txn, status=status_of[status]))
            self._finish()

    def _on_vote(self, msg: Vote, now_ms: int) -> None:
        if msg.src not in self._by_partition or msg.src in self._votes:
            return
        self._votes[msg.src] = msg
        self._clock.observe(msg.seen_ts)
        if len(self._votes) == len(self.participants):
            ok = all(v.ok for v in self._votes.values())
            self._decide(TxnState.COMMITTED if ok else TxnState.CANCELLED, now_ms)
        elif not msg.ok:
            if self._cfg.no_vote_wait_ms == 0:
                self._decide(TxnState.CANCELLED, now_ms)
            elif self._first_no_ms is None:
                self._first_no_ms = now_ms  # the others' votes have a moment to add their reasons

    def _decide(self, decision: TxnState, now_ms: int) -> None:
        """Write the decision to the ledger (a compare-and-set); nothing else leaves until the
        ledger answers."""
        self._proposed = decision
        if decision is TxnState.COMMITTED:
            self._outcome = TxnResult(txn_id=self.txn_id, status=TxnStatus.SUCCESS)
        else:
            self._outcome = TxnResult(txn_id=self.txn_id, status=TxnStatus.CANCELLED,
                                      reasons=self._cancel_reasons())
        self._enter(WritePhase.DECIDE, now_ms)
        self._send_decide()

    def _cancel_reasons(self) -> tuple[CancellationReason, ...]:
        """One reason per action, in request order: the votes' reasons; TransactionConflict for
        the actions of participants that never voted (when nobody voted no)."""
        reasons = [NO_REASON] * len(self.request.actions)
        for vote in self._votes.values():
            for index, reason in vote.reasons:
                reasons[index] = reason
        if not any(r.failed for r in reasons):
            silent = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT, message=_NO_VOTE)
            for p, actions in self._by_partition.items():
                if p not in self._votes:
                    for a in actions:
                        reasons[a.index] = silent
        if not any(r.failed for r in reasons):
            return _all_conflict(len(reasons), _RECOVERED)
        return tuple(reasons)

    def _on_decide_answer(self, msg: LedgerAnswer, now_ms: int) -> None:
        if msg.op != "decide" or msg.status is not LedgerStatus.DECIDED:
            return
        assert msg.record is not None
        self._on_decided(msg.record, now_ms)

    def _on_decided(self, record: LedgerRecord, now_ms: int) -> None:
        decision = record.state
        assert decision.decided
        self.decision = decision
        if record.by_recovery:
            # A recovery coordinator's CANCEL won the race (whatever this core proposed, or
            # before it proposed anything): its token was released, and the client is told so.
            assert decision is TxnState.CANCELLED, "only a coordinator commits"
            self._outcome = TxnResult(txn_id=self.txn_id, status=TxnStatus.CANCELLED,
                                      reasons=_all_conflict(len(self.request.actions), _RECOVERED))
        assert decision is self._proposed or record.by_recovery, "the ledger holds one decision"
        if decision is TxnState.CANCELLED:
            assert self._outcome is not None
            self._answer(self._outcome)
        self._enter(WritePhase.RESOLVE, now_ms)
        for p in self.participants:
            self._send_decision(p, decision is TxnState.COMMITTED)

    def _on_ack(self, msg: DecisionAck, now_ms: int) -> None:
        if msg.src not in self._by_partition or msg.commit != (self.decision is TxnState.COMMITTED):
            return
        self._acks.add(msg.src)
        if len(self._acks) < len(self.participants):
            return
        if self.decision is TxnState.COMMITTED:
            self._answer(TxnResult(txn_id=self.txn_id, status=TxnStatus.SUCCESS))
        self._enter(WritePhase.COMPLETE, now_ms)
        self._send_complete()

    def _on_complete(self, msg: LedgerAnswer, now_ms: int) -> None:
        if msg.op == "complete":
            self._finish()

    def _on_tick(self, now_ms: int) -> None:
        phase, cfg = self._phase, self._cfg
        waited = now_ms - self._phase_ms
        if phase is WritePhase.BEGIN:
            if waited >= cfg.prepare_timeout_ms:
                # Nothing was prepared; a Begin that landed unanswered is swept by the ledger.
                self._answer(TxnResult(txn_id=self.txn_id, status=TxnStatus.UNAVAILABLE))
                self._finish()
            elif self._resend_due(now_ms):
                self._send_begin()
        elif phase is WritePhase.PREPARE:
            no_vote_waited = (self._first_no_ms is not None
                              and now_ms - self._first_no_ms >= cfg.no_vote_wait_ms)
            if waited >= cfg.prepare_timeout_ms or no_vote_waited:
                self._decide(TxnState.CANCELLED, now_ms)
            elif self._resend_due(now_ms):
                for p in self.participants:
                    if p not in self._votes:
                        self._send_prepare(p)
        elif phase is WritePhase.DECIDE:
            if self._resend_due(now_ms):  # never give up: the decision may already be durable
                self._send_decide()
        elif phase is WritePhase.RESOLVE:
            if self._resend_due(now_ms):
                for p in self.participants:
                    if p not in self._acks:
                        self._send_decision(p, self.decision is TxnState.COMMITTED)
        elif phase is WritePhase.COMPLETE:
            if waited >= cfg.prepare_timeout_ms:
                self._finish()  # the ledger's sweep completes it
            elif self._resend_due(now_ms):
                self._send_complete()

    _DISPATCH = {
        WritePhase.BEGIN: {LedgerAnswer: _on_begin},
        WritePhase.PREPARE: {Vote: _on_vote},
        WritePhase.DECIDE: {LedgerAnswer: _on_decide_answer},
        WritePhase.RESOLVE: {DecisionAck: _on_ack},
        WritePhase.COMPLETE: {LedgerAnswer: _on_complete},
    }


# -- TransactGetItems ----------------------------------------------------------------------------------


class ReadPhase(enum.Enum):
    READ = "read"  # ReadItems sent
    VERIFY = "verify"  # Verify sent
    BACKOFF = "backoff"  # an attempt failed; the next one starts after read_retry_ms


class ReadTxn(_Core):
    """One TransactGetItems, coordinated from node ``node`` (see the module docstring)."""

    def __init__(self, *, node: Address, request: ReadRequest, clock: TxnClock,
                 config: TxnConfig, now_ms: int) -> None:
        super().__init__(node, txn_id_of(clock.next(now_ms)), config, now_ms)
        self.request = request
        self.attempt = 0
        self._parts: dict[PartitionId, tuple[ItemRef, ...]] = {}
        for it in request.items:
            self._parts[it.partition] = self._parts.get(it.partition, ()) + (it.ref,)
        self._start_ms = now_ms
        self._read: dict[PartitionId, tuple[ItemVersion, ...]] = {}
        self._verified: set[PartitionId] = set()
        self._conflicts: set[ItemRef] = set()
        self._retry_at_ms = now_ms
        self._start_attempt(now_ms)

    def _needs_verify(self) -> bool:
        """Phase 2 is needed whenever the items span more than one participant."""
        return len(self._parts) > 1

    def _start_attempt(self, now_ms: int) -> None:
        self.attempt += 1
        self._read.clear()
        self._verified.clear()
        self._conflicts.clear()
        self._enter(ReadPhase.READ, now_ms)
        for p in self._parts:
            self._send_read(p)

    def _send_read(self, p: PartitionId) -> None:
        self._send(ReadItems(src=self.node, dst=p, txn_id=self.txn_id, attempt=self.attempt,
                             refs=self._parts[p]))

    def _send_verify(self, p: PartitionId) -> None:
        self._send(Verify(src=self.node, dst=p, txn_id=self.txn_id, attempt=self.attempt,
                          refs=self._parts[p], versions=tuple(i.version for i in self._read[p])))

    def _on_read(self, msg: ItemsRead, now_ms: int) -> None:
        if msg.attempt != self.attempt or msg.src not in self._parts or msg.src in self._read:
            return
        if not msg.ok:
            self._fail_attempt(msg.conflicts, now_ms)
            return
        if len(msg.items) != len(self._parts[msg.src]):
            return  # not an answer to what we asked
        self._read[msg.src] = msg.items
        if len(self._read) < len(self._parts):
            return
        if not self._needs_verify():
            self._succeed()
            return
        self._enter(ReadPhase.VERIFY, now_ms)  # the instant every value is read at
        for p in self._parts:
            self._send_verify(p)

    def _on_verified(self, msg: Verified, now_ms: int) -> None:
        if msg.attempt != self.attempt or msg.src not in self._parts:
            return
        if not msg.ok:
            self._fail_attempt(msg.conflicts, now_ms)
            return
        self._verified.add(msg.src)
        if len(self._verified) == len(self._parts):
            self._succeed()

    def _succeed(self) -> None:
        by_ref = {r: v.item for p, refs in self._parts.items()
                  for r, v in zip(refs, self._read[p], strict=True)}
        self._answer(TxnResult(txn_id=self.txn_id, status=TxnStatus.SUCCESS,
                               items=tuple(by_ref[i.ref] for i in self.request.items)))
        self._finish()

    def _fail_attempt(self, conflicts: tuple[ItemRef, ...], now_ms: int) -> None:
        self._conflicts.update(conflicts)
        if self.attempt >= self._cfg.read_attempts_max:
            conflict = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT,
                                          message="Transaction is ongoing for the item")
            reasons = tuple(conflict if i.ref in self._conflicts else NO_REASON
                            for i in self.request.items)
            self._answer(TxnResult(txn_id=self.txn_id, status=TxnStatus.CANCELLED,
                                   reasons=reasons))
            self._finish()
            return
        self._enter(ReadPhase.BACKOFF, now_ms)
        self._retry_at_ms = now_ms + self._cfg.read_retry_ms

    def _on_tick(self, now_ms: int) -> None:
        if now_ms - self._start_ms >= self._cfg.read_timeout_ms:
            self._answer(TxnResult(txn_id=self.txn_id, status=TxnStatus.UNAVAILABLE))
            self._finish()
        elif self._phase is ReadPhase.BACKOFF:
            if now_ms >= self._retry_at_ms:
                self._start_attempt(now_ms)
        elif self._resend_due(now_ms):
            if self._phase is ReadPhase.READ:
                for p in self._parts:
                    if p not in self._read:
                        self._send_read(p)
            else:
                for p in self._parts:
                    if p not in self._verified:
                        self._send_verify(p)

    _DISPATCH = {
        ReadPhase.READ: {ItemsRead: _on_read},
        ReadPhase.VERIFY: {Verified: _on_verified},
    }


# -- recovery ---------------------------------------------------------------------------------------------


class RecoveryPhase(enum.Enum):
    DECIDE = "decide"  # LedgerDecide(CANCELLED, by_recovery) sent
    RESOLVE = "resolve"  # the ledger's decision sent to every participant
    COMPLETE = "complete"  # LedgerComplete sent


class RecoveryTxn(_Core):
    """Finishes transaction ``txn_id``: cancel it unless it is decided, then deliver the
    decision. Never answers a client. Gives up after ``prepare_timeout_ms`` without progress
    (whoever asked will ask again)."""

    def __init__(self, *, node: Address, txn_id: TxnId, participants: tuple[PartitionId, ...],
                 config: TxnConfig, ledger: Address, now_ms: int) -> None:
        super().__init__(node, txn_id, config, now_ms)
        if not participants:
            raise ValueError("a transaction has at least one participant")
        self.participants = participants
        self.decision: TxnState | None = None
        self._ledger = ledger
        self._acks: set[PartitionId] = set()
        self._enter(RecoveryPhase.DECIDE, now_ms)
        self._send_decide()

    def _send_decide(self) -> None:
        self._send(LedgerDecide(src=self.node, dst=self._ledger, txn_id=self.txn_id,
                                decision=TxnState.CANCELLED, participants=self.participants,
                                by_recovery=True))

    def _send_decision(self, p: PartitionId) -> None:
        self._send(Decision(src=self.node, dst=p, txn_id=self.txn_id,
                            commit=self.decision is TxnState.COMMITTED))

    def _send_complete(self) -> None:
        self._send(LedgerComplete(src=self.node, dst=self._ledger, txn_id=self.txn_id))

    def _on_decided(self, msg: LedgerAnswer, now_ms: int) -> None:
        if msg.op != "decide" or msg.status is not LedgerStatus.DECIDED:
            return
        assert msg.record is not None and msg.record.state.decided
        self.decision = msg.record.state
        # The ledger's list is the coordinator's own; a tombstone it created carries ours.
        self.participants = msg.record.participants or self.participants
        self._enter(RecoveryPhase.RESOLVE, now_ms)
        for p in self.participants:
            self._send_decision(p)

    def _on_ack(self, msg: DecisionAck, now_ms: int) -> None:
        if msg.src not in self.participants or msg.commit != (self.decision is TxnState.COMMITTED):
            return
        self._phase_ms = now_ms  # progress
        self._acks.add(msg.src)
        if len(self._acks) == len(self.participants):
            self._enter(RecoveryPhase.COMPLETE, now_ms)
            self._send_complete()

    def _on_complete(self, msg: LedgerAnswer, now_ms: int) -> None:
        if msg.op == "complete":
            self._finish()

    def _on_tick(self, now_ms: int) -> None:
        if now_ms - self._phase_ms >= self._cfg.prepare_timeout_ms:
            self._finish()
        elif self._resend_due(now_ms):
            if self._phase is RecoveryPhase.DECIDE:
                self._send_decide()
            elif self._phase is RecoveryPhase.RESOLVE:
                for p in self.participants:
                    if p not in self._acks:
                        self._send_decision(p)
            else:
                self._send_complete()

    _DISPATCH = {
        RecoveryPhase.DECIDE: {LedgerAnswer: _on_decided},
        RecoveryPhase.RESOLVE: {DecisionAck: _on_ack},
        RecoveryPhase.COMPLETE: {LedgerAnswer: _on_complete},
    }
