"""Domain values of the transaction core: timestamps, item references, actions, cancellation
reasons, results, prepared-transaction and ledger records.

Frozen, slotted, keyword-only dataclasses that validate when built, shared by the messages
(``messages.py``), the participant, the coordinators and the ledger. Each converts to and from
plain lists (``to_wire`` / ``from_wire``) so it can travel as msgpack or be persisted.

Opaque values (an action's ``payload``, an evaluated ``effect``, an ``item`` image) belong to the
driver: the core stores and forwards them without looking inside. They must be msgpack-able
(plain dicts, lists, strs, ints, bytes, bools, None) if they are to cross the wire.

This module must never do I/O, read a clock, or import anything from ``runtime``, ``sim``,
``api``, ``db`` or ``storage``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TxnId",
    "PartitionId",
    "Address",
    "RequestId",
    "Timestamp",
    "ZERO_TS",
    "txn_id_of",
    "ItemRef",
    "ActionKind",
    "TxnAction",
    "ReadItem",
    "ReasonCode",
    "CancellationReason",
    "NO_REASON",
    "ItemVersion",
    "Evaluation",
    "TxnStatus",
    "TxnResult",
    "TxnState",
    "PreparedTxn",
    "LedgerRecord",
]

TxnId = str
PartitionId = str  # a participant: one partition (its leader runs the Participant core)
Address = str  # where a message goes: a coordinator node, a partition id, the ledger
RequestId = int | str  # a plain write's identity, chosen by the driver and echoed in its reply


def _check_str(name: str, value: object, *, empty: bool = False) -> None:
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{name} must be a {'' if empty else 'non-empty '}str, got {value!r}")


def _check_int(name: str, value: object, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def _unpack(raw: Any, n: int, what: str) -> list[Any]:
    if not isinstance(raw, list | tuple) or len(raw) != n:
        raise ValueError(f"a {what} is a list of {n} fields, got {raw!r}")
    return list(raw)


def _tuple_of(name: str, value: object, cls: type) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, cls) for v in value):
        raise ValueError(f"{name} must be a tuple of {cls.__name__}")


# -- timestamps ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Timestamp:
    """A transaction timestamp ``(ms, seq, node)``, totally ordered and unique per coordinator.

    ``ms`` comes from the coordinator's injected clock, ``seq`` breaks ties within one clock
    value (and absorbs a clock that stands still or was pushed forward by ``TxnClock.observe``),
    ``node`` makes timestamps of different coordinators distinct. ``ZERO_TS`` (all zero, empty
    node) is below every real timestamp: the write timestamp of an item no transaction wrote.
    """

    ms: int
    seq: int
    node: str

    def __post_init__(self) -> None:
        _check_int("ms", self.ms)
        _check_int("seq", self.seq)
        _check_str("node", self.node, empty=True)
        if (self.node == "") != (self.ms == 0 and self.seq == 0):
            raise ValueError("only ZERO_TS may have an empty node")

    def to_wire(self) -> list[Any]:
        return [self.ms, self.seq, self.node]

    @classmethod
    def from_wire(cls, raw: Any) -> Timestamp:
        ms, seq, node = _unpack(raw, 3, "Timestamp")
        return cls(ms=ms, seq=seq, node=node)

    def __str__(self) -> str:
        return f"{self.ms}.{self.seq}@{self.node}" if self.node else "0"


ZERO_TS = Timestamp(ms=0, seq=0, node="")


def txn_id_of(ts: Timestamp) -> TxnId:
    """The id of the transaction a coordinator started at ``ts`` (unique because ``ts`` is)."""
    if ts == ZERO_TS:
        raise ValueError("ZERO_TS names no transaction")
    return str(ts)


# -- items and actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRef:
    """One item: its table and its primary key in a canonical encoding the driver chooses
    (equal keys must encode equally; e.g. the key fingerprint the API layer already computes)."""

    table: str
    key: str

    def __post_init__(self) -> None:
        _check_str("table", self.table)
        _check_str("key", self.key, empty=True)

    def to_wire(self) -> list[Any]:
        return [self.table, self.key]

    @classmethod
    def from_wire(cls, raw: Any) -> ItemRef:
        table, key = _unpack(raw, 2, "ItemRef")
        return cls(table=table, key=key)


class ActionKind(enum.Enum):
    """The four TransactWriteItems actions (their DynamoDB names are the values)."""

    CHECK = "ConditionCheck"
    PUT = "Put"
    UPDATE = "Update"
    DELETE = "Delete"

    @property
    def writes(self) -> bool:
        return self is not ActionKind.CHECK


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnAction:
    """One action of a write transaction, as the participant that owns ``ref`` receives it.

    ``index`` is the action's position in the client's request (cancellation reasons are
    reported in that order); ``partition`` is the participant it belongs to; ``payload`` is
    opaque (the driver's evaluator reads it: the item to put, the update expression, the
    condition...). ``return_item_on_failure`` is ReturnValuesOnConditionCheckFailure=ALL_OLD.
    """

    index: int
    partition: PartitionId
    ref: ItemRef
    kind: ActionKind
    payload: Any = None
    return_item_on_failure: bool = False

    def __post_init__(self) -> None:
        _check_int("index", self.index)
        _check_str("partition", self.partition)
        if not isinstance(self.ref, ItemRef):
            raise ValueError("ref must be an ItemRef")
        if not isinstance(self.kind, ActionKind):
            raise ValueError("kind must be an ActionKind")
        _check_bool("return_item_on_failure", self.return_item_on_failure)

    def to_wire(self) -> list[Any]:
        return [self.index, self.partition, self.ref.to_wire(), self.kind.value, self.payload,
                self.return_item_on_failure]

    @classmethod
    def from_wire(cls, raw: Any) -> TxnAction:
        index, partition, ref, kind, payload, ret = _unpack(raw, 6, "TxnAction")
        return cls(index=index, partition=partition, ref=ItemRef.from_wire(ref),
                   kind=ActionKind(kind), payload=payload, return_item_on_failure=ret)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadItem:
    """One Get of a TransactGetItems request: the item and the participant that owns it."""

    partition: PartitionId
    ref: ItemRef

    def __post_init__(self) -> None:
        _check_str("partition", self.partition)
        if not isinstance(self.ref, ItemRef):
            raise ValueError("ref must be an ItemRef")


# -- cancellation reasons ---------------------------------------------------------------------------


class ReasonCode(enum.Enum):
    """DynamoDB's CancellationReasons codes (the values are the wire strings)."""

    NONE = "None"
    CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailed"
    TRANSACTION_CONFLICT = "TransactionConflict"
    ITEM_COLLECTION_SIZE_LIMIT_EXCEEDED = "ItemCollectionSizeLimitExceeded"
    VALIDATION_ERROR = "ValidationError"
    THROTTLING_ERROR = "ThrottlingError"
    PROVISIONED_THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceeded"
    DUPLICATE_ITEM = "DuplicateItem"  # a PartiQL INSERT of an existing item (ExecuteTransaction)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancellationReason:
    """One entry of CancellationReasons: ``Code`` (``NONE`` for an action that was fine),
    ``Message`` and, for a failed condition with ALL_OLD asked, the ``Item`` image."""

    code: ReasonCode
    message: str = ""
    item: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, ReasonCode):
            raise ValueError("code must be a ReasonCode")
        _check_str("message", self.message, empty=True)
        if self.code is ReasonCode.NONE and (self.message or self.item is not None):
            raise ValueError("a NONE reason carries no message and no item")

    @property
    def failed(self) -> bool:
        return self.code is not ReasonCode.NONE

    def to_dynamo(self) -> dict[str, Any]:
        """The reason in DynamoDB's JSON shape (``TransactionCanceledError(reasons)`` takes a
        list of these)."""
        out: dict[str, Any] = {"Code": self.code.value}
        if self.message:
            out["Message"] = self.message
        if self.item is not None:
            out["Item"] = self.item
        return out

    def to_wire(self) -> list[Any]:
        return [self.code.value, self.message, self.item]

    @classmethod
    def from_wire(cls, raw: Any) -> CancellationReason:
        code, message, item = _unpack(raw, 3, "CancellationReason")
        return cls(code=ReasonCode(code), message=message, item=item)


NO_REASON = CancellationReason(code=ReasonCode.NONE)


# -- what a participant reads and evaluates ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemVersion:
    """An item as the participant's store holds it: the (opaque) image, None when absent; its
    ``version``, which changes on every write of the item, transactional or not (the log index
    of its last write does); and ``write_ts``, the timestamp of the last *transaction* that
    wrote it (kept when the item is deleted: a tombstone's timestamp still orders later
    transactions)."""

    item: Any
    version: int
    write_ts: Timestamp = ZERO_TS

    def __post_init__(self) -> None:
        _check_int("version", self.version)
        if not isinstance(self.write_ts, Timestamp):
            raise ValueError("write_ts must be a Timestamp")

    def to_wire(self) -> list[Any]:
        return [self.item, self.version, self.write_ts.to_wire()]

    @classmethod
    def from_wire(cls, raw: Any) -> ItemVersion:
        item, version, ts = _unpack(raw, 3, "ItemVersion")
        return cls(item=item, version=version, write_ts=Timestamp.from_wire(ts))


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What the driver's evaluator says about one action against the current item: passed,
    with the opaque ``effect`` the participant keeps until commit (for a write action), or
    failed with a reason (ConditionalCheckFailed with the old item, ValidationError, ...)."""

    ok: bool
    effect: Any = None
    reason: CancellationReason = NO_REASON

    def __post_init__(self) -> None:
        _check_bool("ok", self.ok)
        if not isinstance(self.reason, CancellationReason):
            raise ValueError("reason must be a CancellationReason")
        if self.ok == self.reason.failed:
            raise ValueError("a passed evaluation has no reason; a failed one must have one")

    @classmethod
    def passed(cls, effect: Any = None) -> Evaluation:
        return cls(ok=True, effect=effect)

    @classmethod
    def failed(cls, code: ReasonCode, message: str = "", item: Any = None) -> Evaluation:
        return cls(ok=False, reason=CancellationReason(code=code, message=message, item=item))


# -- results ----------------------------------------------------------------------------------------


class TxnStatus(enum.Enum):
    """How a transaction request ended, for the client. ``error_type`` is the DynamoDB
    exception the HTTP layer answers with (None: success)."""

    SUCCESS = "success"
    CANCELLED = "cancelled"  # TransactionCanceledException with CancellationReasons
    IN_PROGRESS = "in_progress"  # the ClientRequestToken's transaction is still running
    PARAMETER_MISMATCH = "parameter_mismatch"  # the token was used by a different request
    UNAVAILABLE = "unavailable"  # nothing was done; retryable (InternalServerError)

    @property
    def error_type(self) -> str | None:
        return _ERROR_TYPES[self]


_ERROR_TYPES: dict[TxnStatus, str | None] = {
    TxnStatus.SUCCESS: None,
    TxnStatus.CANCELLED: "TransactionCanceledException",
    TxnStatus.IN_PROGRESS: "TransactionInProgressException",
    TxnStatus.PARAMETER_MISMATCH: "IdempotentParameterMismatchException",
    TxnStatus.UNAVAILABLE: "InternalServerError",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnResult:
    """The answer to one TransactWriteItems / TransactGetItems request.

    ``reasons`` (CANCELLED only) has one entry per action, in request order. ``items`` (a read's
    SUCCESS only) has one image per Get, in request order (None: absent). ``replayed`` marks
    the answer to a retry of a completed ClientRequestToken (nothing was written again; the
    HTTP layer reports read capacity for it, as DynamoDB does). ``txn_id`` names the
    transaction that produced the result (the original one for a replay).
    """

    txn_id: TxnId
    status: TxnStatus
    reasons: tuple[CancellationReason, ...] = ()
    items: tuple[Any, ...] = ()
    replayed: bool = False

    def __post_init__(self) -> None:
        _check_str("txn_id", self.txn_id, empty=True)
        if not isinstance(self.status, TxnStatus):
            raise ValueError("status must be a TxnStatus")
        _tuple_of("reasons", self.reasons, CancellationReason)
        if not isinstance(self.items, tuple):
            raise ValueError("items must be a tuple")
        _check_bool("replayed", self.replayed)
        if self.reasons and self.status is not TxnStatus.CANCELLED:
            raise ValueError("only a CANCELLED result carries reasons")
        if self.status is TxnStatus.CANCELLED and not any(r.failed for r in self.reasons):
            raise ValueError("a CANCELLED result needs at least one failed reason")

    def dynamo_reasons(self) -> list[dict[str, Any]]:
        return [r.to_dynamo() for r in self.reasons]

    def to_wire(self) -> list[Any]:
        return [self.txn_id, self.status.value, [r.to_wire() for r in self.reasons],
                list(self.items), self.replayed]

    @classmethod
    def from_wire(cls, raw: Any) -> TxnResult:
        txn_id, status, reasons, items, replayed = _unpack(raw, 5, "TxnResult")
        return cls(txn_id=txn_id, status=TxnStatus(status),
                   reasons=tuple(CancellationReason.from_wire(r) for r in reasons),
                   items=tuple(items), replayed=replayed)


# -- durable records ---------------------------------------------------------------------------------


class TxnState(enum.Enum):
    """A transaction's state in the ledger: PREPARING until exactly one decision is written."""

    PREPARING = "preparing"
    COMMITTED = "committed"
    CANCELLED = "cancelled"

    @property
    def decided(self) -> bool:
        return self is not TxnState.PREPARING


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedTxn:
    """What a participant persists when it votes yes: enough to finish the transaction after a
    restart (apply ``writes`` on commit, or drop them) and to hold its items meanwhile.

    ``writes`` pairs each written item with the effect the evaluator produced at prepare time;
    ``checks`` are the items only checked (locked, never written). ``coordinator`` and
    ``participants`` tell a recovery coordinator whom to ask and whom to tell.
    """

    txn_id: TxnId
    ts: Timestamp
    coordinator: Address
    participants: tuple[PartitionId, ...]
    writes: tuple[tuple[ItemRef, Any], ...]
    checks: tuple[ItemRef, ...] = ()

    def __post_init__(self) -> None:
        _check_str("txn_id", self.txn_id)
        if not isinstance(self.ts, Timestamp) or self.ts == ZERO_TS:
            raise ValueError("ts must be a real Timestamp")
        _check_str("coordinator", self.coordinator)
        _tuple_of("participants", self.participants, str)
        if not self.participants:
            raise ValueError("a transaction has at least one participant")
        if not isinstance(self.writes, tuple) or not all(
            isinstance(w, tuple) and len(w) == 2 and isinstance(w[0], ItemRef) for w in self.writes
        ):
            raise ValueError("writes must be a tuple of (ItemRef, effect) pairs")
        _tuple_of("checks", self.checks, ItemRef)
        refs = self.refs
        if len(set(refs)) != len(refs):
            raise ValueError("an item appears twice in one prepared transaction")

    @property
    def refs(self) -> tuple[ItemRef, ...]:
        return tuple(r for r, _ in self.writes) + self.checks

    def to_wire(self) -> list[Any]:
        return [self.txn_id, self.ts.to_wire(), self.coordinator, list(self.participants),
                [[r.to_wire(), e] for r, e in self.writes], [r.to_wire() for r in self.checks]]

    @classmethod
    def from_wire(cls, raw: Any) -> PreparedTxn:
        txn_id, ts, coordinator, participants, writes, checks = _unpack(raw, 6, "PreparedTxn")
        return cls(txn_id=txn_id, ts=Timestamp.from_wire(ts), coordinator=coordinator,
                   participants=tuple(participants),
                   writes=tuple((ItemRef.from_wire(r), e) for r, e in writes),
                   checks=tuple(ItemRef.from_wire(r) for r in checks))


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRecord:
    """One transaction in the ledger (see ``ledger.py``).

    ``outcome`` is the client-visible result written with the decision (replayed to a retry of
    the same ClientRequestToken). ``by_recovery`` marks a CANCELLED decision a recovery
    coordinator wrote: no client saw it, so its token is released. Times are the ledger
    driver's clock (``begun_ms``, ``decided_ms``, ``completed_ms``; None until then).
    """

    txn_id: TxnId
    state: TxnState
    participants: tuple[PartitionId, ...]
    ts: Timestamp = ZERO_TS
    coordinator: Address = ""
    token: str | None = None
    fingerprint: str = ""
    outcome: TxnResult | None = None
    by_recovery: bool = False
    begun_ms: int = 0
    decided_ms: int | None = None
    completed_ms: int | None = None

    def __post_init__(self) -> None:
        _check_str("txn_id", self.txn_id)
        if not isinstance(self.state, TxnState):
            raise ValueError("state must be a TxnState")
        _tuple_of("participants", self.participants, str)
        if not isinstance(self.ts, Timestamp):
            raise ValueError("ts must be a Timestamp")
        _check_str("coordinator", self.coordinator, empty=True)
        if self.token is not None:
            _check_str("token", self.token)
        _check_str("fingerprint", self.fingerprint, empty=True)
        if self.outcome is not None and not isinstance(self.outcome, TxnResult):
            raise ValueError("outcome must be a TxnResult")
        _check_bool("by_recovery", self.by_recovery)
        _check_int("begun_ms", self.begun_ms)
        if self.state.decided != (self.decided_ms is not None):
            raise ValueError("decided_ms is set exactly when the record is decided")
        if self.completed_ms is not None and not self.state.decided:
            raise ValueError("only a decided transaction completes")

    def to_wire(self) -> list[Any]:
        return [self.txn_id, self.state.value, list(self.participants), self.ts.to_wire(),
                self.coordinator, self.token, self.fingerprint,
                None if self.outcome is None else self.outcome.to_wire(), self.by_recovery,
                self.begun_ms, self.decided_ms, self.completed_ms]

    @classmethod
    def from_wire(cls, raw: Any) -> LedgerRecord:
        (txn_id, state, participants, ts, coordinator, token, fingerprint, outcome, by_recovery,
         begun, decided, completed) = _unpack(raw, 12, "LedgerRecord")
        return cls(txn_id=txn_id, state=TxnState(state), participants=tuple(participants),
                   ts=Timestamp.from_wire(ts), coordinator=coordinator, token=token,
                   fingerprint=fingerprint,
                   outcome=None if outcome is None else TxnResult.from_wire(outcome),
                   by_recovery=by_recovery, begun_ms=begun, decided_ms=decided,
                   completed_ms=completed)
