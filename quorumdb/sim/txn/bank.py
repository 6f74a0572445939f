"""The bank the transaction simulation runs: accounts, how actions on them are evaluated, and a
participant's item store with its simulated disk.

An account is one item, ``{"b": balance, "w": id of the last transaction that wrote it ("" at
first), "n": plain writes so far}``, in one of two tables (``bank`` and ``vault``: transactions
span tables as well as partitions), spread round-robin over the partitions. Action payloads:

* UPDATE ``{"add": n, "min": m}``: balance += n, only if balance >= m ("min" is optional);
* CHECK ``{"min": m}``: balance >= m;
* UPDATE ``{"touch": 1}`` (plain writes only): n += 1, balance and writer unchanged.

A failed condition is ConditionalCheckFailed with the account image. The writer id in every image
lets the checkers tell exactly which transactions a read saw.

``BankState`` is an ``ItemStore`` and applies ``ParticipantRecord``s the way the participant's
``ParticipantReady`` contract requires (write timestamp on commit, a new version on every write).
``PartitionDisk`` keeps the durable copy: records become durable only when a simulated fsync
completes; a crash loses the rest. Nothing here reads a clock or draws randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quorumdb.core.txn import (
    ActionKind,
    CommitPrepared,
    DropPrepared,
    Evaluation,
    ItemRef,
    ItemVersion,
    ParticipantRecord,
    PreparedTxn,
    PutItem,
    PutPrepared,
    ReasonCode,
    TxnAction,
    TxnId,
)

__all__ = ["Account", "accounts", "BankEvaluator", "BankState", "PartitionDisk", "CCF_MESSAGE"]

CCF_MESSAGE = "The conditional request failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    index: int
    ref: ItemRef
    partition: str


def accounts(n: int, partitions: int) -> tuple[Account, ...]:
    return tuple(
        Account(index=i, ref=ItemRef(table="bank" if i % 2 == 0 else "vault", key=f"a{i}"),
                partition=f"p{i % partitions}")
        for i in range(n)
    )


class BankEvaluator:
    """The ``Evaluator`` of every participant (see the module docstring for the payloads)."""

    def evaluate(self, action: TxnAction, current: ItemVersion, txn_id: TxnId | None) -> Evaluation:
        item = current.item
        payload = action.payload or {}
        if item is None:
            return Evaluation.failed(ReasonCode.CONDITIONAL_CHECK_FAILED, CCF_MESSAGE)
        if "min" in payload and item["b"] < payload["min"]:
            return Evaluation.failed(ReasonCode.CONDITIONAL_CHECK_FAILED, CCF_MESSAGE, item)
        if action.kind is ActionKind.CHECK:
            return Evaluation.passed()
        if action.kind is not ActionKind.UPDATE:
            return Evaluation.failed(ReasonCode.VALIDATION_ERROR, "the bank only updates")
        if "touch" in payload:
            return Evaluation.passed({**item, "n": item["n"] + 1})
        assert txn_id is not None, "balances move only inside transactions"
        return Evaluation.passed({"b": item["b"] + payload["add"], "w": txn_id, "n": item["n"]})


@dataclass(slots=True)
class BankState:
    """Items with versions and write timestamps, and the prepared records (an ``ItemStore``)."""

    items: dict[ItemRef, ItemVersion] = field(default_factory=dict)
    prepared: dict[TxnId, PreparedTxn] = field(default_factory=dict)
    version: int = 0  # the last version handed out (an LSN: never reused once durable)

    def read(self, ref: ItemRef) -> ItemVersion:
        return self.items.get(ref) or ItemVersion(item=None, version=0)

    def apply(self, rec: ParticipantRecord) -> None:
        if isinstance(rec, PutPrepared):
            assert rec.txn.txn_id not in self.prepared
            self.prepared[rec.txn.txn_id] = rec.txn
        elif isinstance(rec, CommitPrepared):
            self.prepared.pop(rec.txn_id, None)
            for ref, effect in rec.writes:
                self.version += 1
                self.items[ref] = ItemVersion(item=effect, version=self.version, write_ts=rec.ts)
        elif isinstance(rec, DropPrepared):
            self.prepared.pop(rec.txn_id, None)
        else:
            assert isinstance(rec, PutItem)
            self.version += 1
            old = self.read(rec.ref)
            self.items[rec.ref] = ItemVersion(item=rec.effect, version=self.version,
                                              write_ts=old.write_ts)

    def copy(self) -> BankState:
        return BankState(items=dict(self.items), prepared=dict(self.prepared), version=self.version)


@dataclass(slots=True)
class PartitionDisk:
    """The durable state of one participant. ``write`` queues a Ready's records, ``sync`` makes
    every queued record up to a sequence number durable (returning them, in order), ``crash``
    drops the rest, ``load`` is what a restarted participant reads."""

    durable: BankState = field(default_factory=BankState)
    queued: list[tuple[int, tuple[ParticipantRecord, ...]]] = field(default_factory=list)
    lost_records: int = 0

    def write(self, seq: int, records: tuple[ParticipantRecord, ...]) -> None:
        self.queued.append((seq, records))

    def sync(self, upto: int) -> list[ParticipantRecord]:
        done: list[ParticipantRecord] = []
        while self.queued and self.queued[0][0] <= upto:
            _, records = self.queued.pop(0)
            for rec in records:
                self.durable.apply(rec)
                done.append(rec)
        return done

    def crash(self) -> int:
        lost = sum(len(r) for _, r in self.queued)
        self.queued.clear()
        self.lost_records += lost
        return lost

    def load(self) -> BankState:
        return self.durable.copy()


def initial_image(balance: int) -> dict[str, Any]:
    return {"b": balance, "w": "", "n": 0}

