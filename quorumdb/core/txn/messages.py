"""Messages between transaction coordinators, participants and the ledger, and their wire form.

Every message is its own envelope: sender ``src``, destination ``dst`` (addresses: a coordinator
node, a partition id, the ledger) and the ``txn_id`` it is about. Drivers route by ``dst`` (a
partition id goes to that partition's current leader) and, on a coordinator node, by
``txn_id`` to the core running that transaction. ``to_wire(msg)`` gives a plain list
(``[tag, src, dst, txn_id, *fields]``) msgpack can encode; ``from_wire(raw)`` validates and
rebuilds it. The tags are part of the wire format and never change meaning.

The vocabulary:

* write transactions (coordinator <-> participant): ``Prepare(ts, participants, actions)`` ->
  ``Vote(ok, reasons, seen_ts)``; ``Decision(commit)`` -> ``DecisionAck(commit)``.
* read-only transactions: ``ReadItems(attempt, refs)`` -> ``ItemsRead(ok, items, conflicts)``;
  ``Verify(attempt, refs, versions)`` -> ``Verified(ok, conflicts)``.
* recovery: ``RecoverRequest(participants)`` from a participant (or the ledger's sweep) to any
  coordinator node, which runs a ``RecoveryTxn`` for it.
* the ledger (a replicated group): ``LedgerBegin``, ``LedgerDecide``, ``LedgerComplete`` ->
  ``LedgerAnswer(op, status, record)``.

This module must never do I/O or import from ``runtime``, ``sim``, ``api``, ``db`` or ``storage``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .values import (
    ZERO_TS,
    CancellationReason,
    ItemRef,
    ItemVersion,
    LedgerRecord,
    PartitionId,
    Timestamp,
    TxnAction,
    TxnResult,
    TxnState,
    _check_bool,
    _check_int,
    _check_str,
    _tuple_of,
)

__all__ = [
    "Message",
    "Prepare",
    "Vote",
    "Decision",
    "DecisionAck",
    "ReadItems",
    "ItemsRead",
    "Verify",
    "Verified",
    "RecoverRequest",
    "LedgerOp",
    "LedgerStatus",
    "LedgerBegin",
    "LedgerDecide",
    "LedgerComplete",
    "LedgerAnswer",
    "to_wire",
    "from_wire",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Envelope:
    src: str
    dst: str
    txn_id: str

    def __post_init__(self) -> None:
        _check_str("src", self.src)
        _check_str("dst", self.dst)
        _check_str("txn_id", self.txn_id)


def _check_participants(participants: object) -> None:
    _tuple_of("participants", participants, str)
    assert isinstance(participants, tuple)
    if not participants or len(set(participants)) != len(participants):
        raise ValueError("participants must be distinct and at least one")


# -- write transactions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare(_Envelope):
    """Coordinator ``src`` asks participant ``dst`` to prepare its ``actions`` of transaction
    ``txn_id`` at timestamp ``ts``; ``participants`` lists every partition of the transaction
    (a recovery coordinator tells them all the decision)."""

    ts: Timestamp
    participants: tuple[PartitionId, ...]
    actions: tuple[TxnAction, ...]

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        if not isinstance(self.ts, Timestamp) or self.ts == ZERO_TS:
            raise ValueError("ts must be a real Timestamp")
        _check_participants(self.participants)
        _tuple_of("actions", self.actions, TxnAction)
        if not self.actions:
            raise ValueError("a Prepare carries at least one action")
        if any(a.partition != self.dst for a in self.actions):
            raise ValueError("every action of a Prepare belongs to its destination")
        if self.dst not in self.participants:
            raise ValueError("the destination must be one of the participants")
        if len({a.ref for a in self.actions}) != len(self.actions):
            raise ValueError("an item appears twice in one Prepare")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote(_Envelope):
    """A participant's answer to ``Prepare``. ``reasons`` pairs every action's request index
    with its reason (``NONE`` where it was fine); a yes vote has only NONE reasons. ``seen_ts``
    is the highest item write timestamp the participant met (the coordinator's clock moves
    past it, so a retry is not refused for the same reason)."""

    ok: bool
    reasons: tuple[tuple[int, CancellationReason], ...]
    seen_ts: Timestamp = ZERO_TS

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_bool("ok", self.ok)
        if not isinstance(self.reasons, tuple) or not all(
            isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], CancellationReason)
            for r in self.reasons
        ):
            raise ValueError("reasons must be a tuple of (index, CancellationReason) pairs")
        for index, _ in self.reasons:
            _check_int("reason index", index)
        if self.ok == any(r.failed for _, r in self.reasons):
            raise ValueError("a yes vote has no failed reason and a no vote has at least one")
        if not isinstance(self.seen_ts, Timestamp):
            raise ValueError("seen_ts must be a Timestamp")


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision(_Envelope):
    """Commit (apply the prepared writes and release) or cancel (release). Sent only once the
    decision is durable in the ledger."""

    commit: bool

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_bool("commit", self.commit)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionAck(_Envelope):
    """The participant has durably applied ``Decision(commit)`` (or never held the
    transaction)."""

    commit: bool

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_bool("commit", self.commit)


# -- read-only transactions ------------------------------------------------------------------------


def _check_refs(refs: object) -> None:
    _tuple_of("refs", refs, ItemRef)
    assert isinstance(refs, tuple)
    if not refs or len(set(refs)) != len(refs):
        raise ValueError("refs must be distinct and at least one")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadItems(_Envelope):
    """Phase 1 of a read-only transaction: the items with their versions."""

    attempt: int
    refs: tuple[ItemRef, ...]

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_int("attempt", self.attempt, 1)
        _check_refs(self.refs)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemsRead(_Envelope):
    """``items`` in the order of ``ReadItems.refs`` when ``ok``; otherwise ``conflicts`` lists
    the items a prepared transaction holds."""

    attempt: int
    ok: bool
    items: tuple[ItemVersion, ...] = ()
    conflicts: tuple[ItemRef, ...] = ()

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_int("attempt", self.attempt, 1)
        _check_bool("ok", self.ok)
        _tuple_of("items", self.items, ItemVersion)
        _tuple_of("conflicts", self.conflicts, ItemRef)
        if self.ok == bool(self.conflicts) or (not self.ok and self.items):
            raise ValueError("an ok ItemsRead has no conflicts; a failed one has no items")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verify(_Envelope):
    """Phase 2: are ``refs`` still at ``versions`` and held by no prepared transaction?"""

    attempt: int
    refs: tuple[ItemRef, ...]
    versions: tuple[int, ...]

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_int("attempt", self.attempt, 1)
        _check_refs(self.refs)
        _tuple_of("versions", self.versions, int)
        if len(self.versions) != len(self.refs):
            raise ValueError("one version per ref")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified(_Envelope):
    attempt: int
    ok: bool
    conflicts: tuple[ItemRef, ...] = ()

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_int("attempt", self.attempt, 1)
        _check_bool("ok", self.ok)
        _tuple_of("conflicts", self.conflicts, ItemRef)
        if self.ok == bool(self.conflicts):
            raise ValueError("an ok Verified has no conflicts; a failed one has some")


# -- recovery ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverRequest(_Envelope):
    """Finish ``txn_id`` (a participant has held it prepared too long, or the ledger found it
    unfinished). The receiving node runs a ``RecoveryTxn`` unless it already runs a core for
    that transaction; there is no reply (the decision reaches the participants)."""

    participants: tuple[PartitionId, ...]

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_participants(self.participants)


# -- the ledger ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerBegin(_Envelope):
    """Record transaction ``txn_id`` as PREPARING (and claim ``token``) before any Prepare."""

    ts: Timestamp
    participants: tuple[PartitionId, ...]
    token: str | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        if not isinstance(self.ts, Timestamp) or self.ts == ZERO_TS:
            raise ValueError("ts must be a real Timestamp")
        _check_participants(self.participants)
        if self.token is not None:
            _check_str("token", self.token)
        _check_str("fingerprint", self.fingerprint, empty=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerDecide(_Envelope):
    """Compare-and-set the decision: written only if the transaction is undecided; the answer
    carries whichever decision the ledger holds afterwards (this one or an earlier one)."""

    decision: TxnState
    participants: tuple[PartitionId, ...]
    outcome: TxnResult | None = None
    by_recovery: bool = False

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        if not isinstance(self.decision, TxnState) or not self.decision.decided:
            raise ValueError("decision must be COMMITTED or CANCELLED")
        _check_participants(self.participants)
        if self.outcome is not None and not isinstance(self.outcome, TxnResult):
            raise ValueError("outcome must be a TxnResult")
        _check_bool("by_recovery", self.by_recovery)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerComplete(_Envelope):
    """Every participant acknowledged the decision: the record may age out."""


LedgerOp = LedgerBegin | LedgerDecide | LedgerComplete


class LedgerStatus(enum.Enum):
    BEGUN = "begun"  # the record is this transaction's (new, or the same Begin again)
    IN_PROGRESS = "in_progress"  # the token belongs to another, unfinished transaction
    MISMATCH = "mismatch"  # the token belongs to a different request
    REPLAY = "replay"  # the token's transaction is finished: ``record.outcome`` is the answer
    BUSY = "busy"  # the ledger is full; nothing was recorded
    DECIDED = "decided"  # ``record.state`` is the decision that won
    COMPLETED = "completed"


_OP_NAMES = {"begin", "decide", "complete"}


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerAnswer(_Envelope):
    """The ledger's answer to ``op`` ("begin" | "decide" | "complete"); ``record`` is the
    transaction's record (for a token hit: the record of the token's transaction)."""

    op: str
    status: LedgerStatus
    record: LedgerRecord | None = None

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        if self.op not in _OP_NAMES:
            raise ValueError(f"unknown ledger op {self.op!r}")
        if not isinstance(self.status, LedgerStatus):
            raise ValueError("status must be a LedgerStatus")
        if self.record is not None and not isinstance(self.record, LedgerRecord):
            raise ValueError("record must be a LedgerRecord")
        needs_record = self.status in (LedgerStatus.BEGUN, LedgerStatus.IN_PROGRESS,
                                       LedgerStatus.REPLAY, LedgerStatus.DECIDED)
        if needs_record and self.record is None:
            raise ValueError(f"a {self.status.value} answer carries the record")


Message = (
    Prepare | Vote | Decision | DecisionAck | ReadItems | ItemsRead | Verify | Verified
    | RecoverRequest | LedgerBegin | LedgerDecide | LedgerComplete | LedgerAnswer
)


# -- wire form ------------------------------------------------------------------------------------------
# Tags are stable forever.

_TAGS: dict[type, int] = {
    Prepare: 1,
    Vote: 2,
    Decision: 3,
    DecisionAck: 4,
    ReadItems: 5,
    ItemsRead: 6,
    Verify: 7,
    Verified: 8,
    RecoverRequest: 9,
    LedgerBegin: 10,
    LedgerDecide: 11,
    LedgerComplete: 12,
    LedgerAnswer: 13,
}
_CLASSES = {tag: cls for cls, tag in _TAGS.items()}


def _body(msg: Message) -> list[Any]:
    match msg:
        case Prepare():
            return [msg.ts.to_wire(), list(msg.participants), [a.to_wire() for a in msg.actions]]
        case Vote():
            return [msg.ok, [[i, r.to_wire()] for i, r in msg.reasons], msg.seen_ts.to_wire()]
        case Decision() | DecisionAck():
            return [msg.commit]
        case ReadItems():
            return [msg.attempt, [r.to_wire() for r in msg.refs]]
        case ItemsRead():
            return [msg.attempt, msg.ok, [i.to_wire() for i in msg.items],
                    [r.to_wire() for r in msg.conflicts]]
        case Verify():
            return [msg.attempt, [r.to_wire() for r in msg.refs], list(msg.versions)]
        case Verified():
            return [msg.attempt, msg.ok, [r.to_wire() for r in msg.conflicts]]
        case RecoverRequest():
            return [list(msg.participants)]
        case LedgerBegin():
            return [msg.ts.to_wire(), list(msg.participants), msg.token, msg.fingerprint]
        case LedgerDecide():
            return [msg.decision.value, list(msg.participants),
                    None if msg.outcome is None else msg.outcome.to_wire(), msg.by_recovery]
        case LedgerComplete():
            return []
        case LedgerAnswer():
            return [msg.op, msg.status.value, None if msg.record is None else msg.record.to_wire()]
    raise TypeError(f"not a transaction message: {msg!r}")


def to_wire(msg: Message) -> list[Any]:
    """``[tag, src, dst, txn_id, *fields]`` with only lists, ints, strs, bools, bytes, None
    (and whatever msgpack-able opaque payloads the driver put in actions and items)."""
    return [_TAGS[type(msg)], msg.src, msg.dst, msg.txn_id, *_body(msg)]


def _refs(raw: Any) -> tuple[ItemRef, ...]:
    return tuple(ItemRef.from_wire(r) for r in raw)


def from_wire(raw: Any) -> Message:
    """Rebuild and validate a message from ``to_wire`` output; ValueError when malformed."""
    if not isinstance(raw, list | tuple) or len(raw) < 4:
        raise ValueError("a transaction message is a list [tag, src, dst, txn_id, ...]")
    tag, src, dst, txn_id, *rest = raw
    cls = _CLASSES.get(tag)
    if cls is None:
        raise ValueError(f"unknown transaction message tag {tag!r}")
    head: dict[str, Any] = {"src": src, "dst": dst, "txn_id": txn_id}
    try:
        if cls is Prepare:
            ts, participants, actions = rest
            return Prepare(**head, ts=Timestamp.from_wire(ts), participants=tuple(participants),
                           actions=tuple(TxnAction.from_wire(a) for a in actions))
        if cls is Vote:
            ok, reasons, seen = rest
            return Vote(**head, ok=ok,
                        reasons=tuple((i, CancellationReason.from_wire(r)) for i, r in reasons),
                        seen_ts=Timestamp.from_wire(seen))
        if cls is Decision or cls is DecisionAck:
            (commit,) = rest
            return cls(**head, commit=commit)
        if cls is ReadItems:
            attempt, refs = rest
            return ReadItems(**head, attempt=attempt, refs=_refs(refs))
        if cls is ItemsRead:
            attempt, ok, items, conflicts = rest
            return ItemsRead(**head, attempt=attempt, ok=ok,
                             items=tuple(ItemVersion.from_wire(i) for i in items),
                             conflicts=_refs(conflicts))
        if cls is Verify:
            attempt, refs, versions = rest
            return Verify(**head, attempt=attempt, refs=_refs(refs), versions=tuple(versions))
        if cls is Verified:
            attempt, ok, conflicts = rest
            return Verified(**head, attempt=attempt, ok=ok, conflicts=_refs(conflicts))
        if cls is RecoverRequest:
            (participants,) = rest
            return RecoverRequest(**head, participants=tuple(participants))
        if cls is LedgerBegin:
            ts, participants, token, fingerprint = rest
            return LedgerBegin(**head, ts=Timestamp.from_wire(ts),
                               participants=tuple(participants), token=token,
                               fingerprint=fingerprint)
        if cls is LedgerDecide:
            decision, participants, outcome, by_recovery = rest
            return LedgerDecide(**head, decision=TxnState(decision),
                                participants=tuple(participants),
                                outcome=None if outcome is None else TxnResult.from_wire(outcome),
                                by_recovery=by_recovery)
        if cls is LedgerComplete:
            if rest:
                raise ValueError("LedgerComplete has no fields")
            return LedgerComplete(**head)
        op, status, record = rest
        return LedgerAnswer(**head, op=op, status=LedgerStatus(status),
                            record=None if record is None else LedgerRecord.from_wire(record))
    except (TypeError, KeyError) as exc:  # wrong arity or types inside
        raise ValueError(f"malformed {cls.__name__}: {exc}") from exc
