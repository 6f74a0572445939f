"""The transaction ledger: where every write transaction's fate is decided exactly once.

``TxnLedger`` is a deterministic state machine meant to be replicated: the driver proposes each
request (``LedgerBegin``, ``LedgerDecide``, ``LedgerComplete``) together with the proposing
replica's ``now_ms`` to a replicated group (a Multi-Paxos group in the cluster), every replica
calls ``apply(request, now_ms)`` in log order, and the replica that proposed sends the returned
``LedgerAnswer``. Given the same requests and times, every replica reaches the same state.

Per transaction it keeps a ``LedgerRecord``: PREPARING (from Begin) -> COMMITTED or CANCELLED
(from Decide) -> completed (from Complete) -> forgotten ``ledger_retention_ms`` later.

*Exactly one decision.* ``LedgerDecide`` is a compare-and-set on the transaction id: it writes
its decision only if the record is undecided (or absent: then it creates it) and always answers
with the decision the record holds afterwards. The coordinator and any number of recovery
coordinators may race; the first Decide applied wins and everyone learns it. A decision is never
overwritten, so a participant that acted on it can never be contradicted.

*Idempotency (ClientRequestToken).* Begin claims the request's token for its transaction. While
the token's transaction is unfinished, another Begin with the token gets IN_PROGRESS; with
different parameters (fingerprint) MISMATCH; once the transaction is complete (a cancellation
decided by its own coordinator counts as soon as it is decided: nothing remains to apply) the
same request gets REPLAY with the stored outcome, for ``token_ttl_ms`` after completion (10
minutes, as DynamoDB). A transaction cancelled by *recovery* releases its token at once: no client
ever saw that outcome, so a retry runs as a new request. The window is measured with the ledger
driver's clock (the ``now_ms`` given to ``apply``).

*Stale records.* ``stale(now_ms)`` lists unfinished records untouched for ``ledger_stale_ms``
(a coordinator died after Begin, or before it completed). The ledger's driver sends a
``RecoverRequest`` for each (rate-limited by the driver) so that every transaction ends decided
and delivered even when no participant holds it prepared.

*Bounds.* At most ``ledger_records_max`` records; a Begin beyond it is refused (BUSY). Completed
records are forgotten after ``ledger_retention_ms``.

The compare-and-set is a small method (``_may_decide``) so the simulator's mutant catalogue can
break it in a subclass; production code never does. This module never does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable

from .config import TxnConfig
from .messages import (
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerOp,
    LedgerStatus,
)
from .values import LedgerRecord, TxnId, TxnState, TxnStatus

__all__ = ["TxnLedger"]


class TxnLedger:
    """The ledger's replicated state (see the module docstring). ``records`` rebuilds it from a
    snapshot (``records()`` of another replica)."""

    def __init__(self, config: TxnConfig, records: Iterable[LedgerRecord] = ()) -> None:
        self._cfg = config
        self._records: dict[TxnId, LedgerRecord] = {}
        self._tokens: dict[str, TxnId] = {}
        self._expiry: list[tuple[int, TxnId]] = []  # (forget at, txn) for completed records
        for rec in records:
            self._records[rec.txn_id] = rec
            if rec.token is not None and not (rec.by_recovery and rec.state is TxnState.CANCELLED):
                self._tokens[rec.token] = rec.txn_id
            if rec.completed_ms is not None:
                heapq.heappush(self._expiry, (rec.completed_ms + config.ledger_retention_ms,
                                              rec.txn_id))

    # --- inspection --------------------------------------------------------------------------

    def record(self, txn_id: TxnId) -> LedgerRecord | None:
        return self._records.get(txn_id)

    def records(self) -> tuple[LedgerRecord, ...]:
        """Every record, for a snapshot of the replicated state."""
        return tuple(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def stale(self, now_ms: int) -> list[LedgerRecord]:
        """Unfinished records untouched for ``ledger_stale_ms``: hand each to recovery."""
        limit = self._cfg.ledger_stale_ms
        return [r for r in self._records.values()
                if r.completed_ms is None and now_ms - _touched(r) >= limit]

    # --- the state machine -------------------------------------------------------------------

    def apply(self, req: LedgerOp, now_ms: int) -> LedgerAnswer:
        """Apply one request (in log order, on every replica) and return the answer."""
        self._expire(now_ms)
        if isinstance(req, LedgerBegin):
            status, rec = self._begin(req, now_ms)
            op = "begin"
        elif isinstance(req, LedgerDecide):
            status, rec = self._decide(req, now_ms)
            op = "decide"
        else:
            assert isinstance(req, LedgerComplete)
            status, rec = self._complete(req, now_ms)
            op = "complete"
        return LedgerAnswer(src=req.dst, dst=req.src, txn_id=req.txn_id, op=op, status=status,
                            record=rec)

    def _begin(self, req: LedgerBegin, now_ms: int) -> tuple[LedgerStatus, LedgerRecord | None]:
        own = self._records.get(req.txn_id)
        if own is not None:
            return LedgerStatus.BEGUN, own  # the same Begin again (its answer was lost)
        if req.token is not None:
            holder = self._token_holder(req.token, now_ms)
            if holder is not None:
                if holder.fingerprint != req.fingerprint:
                    return LedgerStatus.MISMATCH, None
                if _finished_for_client(holder):
                    return LedgerStatus.REPLAY, holder
                return LedgerStatus.IN_PROGRESS, holder
        if len(self._records) >= self._cfg.ledger_records_max:
            return LedgerStatus.BUSY, None
        rec = LedgerRecord(txn_id=req.txn_id, state=TxnState.PREPARING,
                           participants=req.participants, ts=req.ts, coordinator=req.src,
                           token=req.token, fingerprint=req.fingerprint, begun_ms=now_ms)
        self._records[req.txn_id] = rec
        if req.token is not None:
            self._tokens[req.token] = req.txn_id
        return LedgerStatus.BEGUN, rec

    def _may_decide(self, rec: LedgerRecord, req: LedgerDecide) -> bool:
        """The compare-and-set: only an undecided transaction takes a decision."""
        return not rec.state.decided

    def _decide(self, req: LedgerDecide, now_ms: int) -> tuple[LedgerStatus, LedgerRecord]:
        rec = self._records.get(req.txn_id)
        if rec is None:
            # Never begun (or long forgotten): recovery leaves a tombstone so that the decision
            # stays unique.
            rec = LedgerRecord(txn_id=req.txn_id, state=TxnState.PREPARING,
                               participants=req.participants, begun_ms=now_ms)
        if self._may_decide(rec, req):
            rec = dataclasses.replace(rec, state=req.decision, outcome=req.outcome,
                                      by_recovery=req.by_recovery, decided_ms=now_ms,
                                      completed_ms=None)
            if (req.by_recovery and req.decision is TxnState.CANCELLED and rec.token is not None
                    and self._tokens.get(rec.token) == rec.txn_id):
                del self._tokens[rec.token]
        self._records[req.txn_id] = rec
        return LedgerStatus.DECIDED, rec

    def _complete(self, req: LedgerComplete, now_ms: int) -> tuple[LedgerStatus, LedgerRecord | None]:
        rec = self._records.get(req.txn_id)
        if rec is None or not rec.state.decided or rec.completed_ms is not None:
            return LedgerStatus.COMPLETED, rec  # forgotten, not ours to complete, or again
        rec = dataclasses.replace(rec, completed_ms=now_ms)
        self._records[req.txn_id] = rec
        heapq.heappush(self._expiry, (now_ms + self._cfg.ledger_retention_ms, rec.txn_id))
        return LedgerStatus.COMPLETED, rec

    # --- tokens and expiry -------------------------------------------------------------------

    def _token_holder(self, token: str, now_ms: int) -> LedgerRecord | None:
        txn_id = self._tokens.get(token)
        if txn_id is None:
            return None
        rec = self._records.get(txn_id)
        done_ms = None if rec is None else _client_done_ms(rec)
        if rec is None or (done_ms is not None and now_ms - done_ms >= self._cfg.token_ttl_ms):
            del self._tokens[token]  # expired: the token starts afresh
            return None
        return rec

    def _expire(self, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] <= now_ms:
            _, txn_id = heapq.heappop(self._expiry)
            rec = self._records.get(txn_id)
            if rec is None or rec.completed_ms is None:
                continue
            if rec.completed_ms + self._cfg.ledger_retention_ms > now_ms:
                continue  # a stale heap entry
            del self._records[txn_id]
            if rec.token is not None and self._tokens.get(rec.token) == txn_id:
                del self._tokens[rec.token]


def _touched(rec: LedgerRecord) -> int:
    return rec.decided_ms if rec.decided_ms is not None else rec.begun_ms


def _finished_for_client(rec: LedgerRecord) -> bool:
    """Is the record's outcome final for its client (REPLAY rather than IN_PROGRESS)?"""
    return _client_done_ms(rec) is not None and rec.outcome is not None


def _client_done_ms(rec: LedgerRecord) -> int | None:
    """When the token's request finished: a commit once every participant applied it
    (completed), a coordinator's own cancellation once decided (nothing remains to apply)."""
    if rec.state is TxnState.COMMITTED:
        return rec.completed_ms
    if rec.state is TxnState.CANCELLED and rec.outcome is not None:
        assert rec.outcome.status is TxnStatus.CANCELLED
        return rec.decided_ms
    return None
