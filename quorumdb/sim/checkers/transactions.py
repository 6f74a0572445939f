"""Judges of a transaction simulation (the bank workload of ``quorumdb.sim.txn``).

The driver records what happened, as facts the cores cannot fake: transactions begun (with their
participants), commits that became *durable* at a participant (with the transaction timestamp and
the items written), decisions the ledger answered, client results and every successful read's
item images. Each image names the last transaction that wrote it, so a read pins down exactly
which transactions it saw. ``check`` then returns every violation of:

* conservation: every successful read and the final state sum to the initial total;
* torn-read: a read that saw transaction T at one account saw T (or a later writer) at every
  other account T wrote; it never saw a write that was not applied;
* atomicity: every transaction was applied at all of its participants or at none, exactly as the
  ledger decided (COMMITTED: all; CANCELLED or never begun: none);
* double-apply: no participant applied a transaction's writes twice;
* timestamp-order: at every account, transactions were applied in increasing timestamp order;
* decision-changed: the ledger never answered two different decisions for one transaction;
* acknowledged: a SUCCESS answer (first or replayed) names a transaction applied everywhere, a
  CANCELLED answer one applied nowhere;
* idempotency: a token got at most one applied transaction; a replay of an acknowledged request
  got the same result; a different request under a used token got a mismatch;
* reasons: CancellationReasons have one entry per action, a failed one among them, and
  ConditionalCheckFailed only where the action had a condition;
* quiescence: once the faults stopped, every transaction was decided, delivered and completed,
  no item is left prepared, and every participant's memory matches its disk.

Checkers only read what was recorded; they never drive anything, and they must be able to fail
(tests feed them broken histories).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from quorumdb.core.txn import (
    CANCELLED_BY_RECOVERY,
    ItemRef,
    ReasonCode,
    Timestamp,
    TxnAction,
    TxnId,
    TxnResult,
    TxnState,
    TxnStatus,
)

__all__ = ["WriteOutcome", "BankChecker", "Violation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    checker: str
    detail: str

    def __str__(self) -> str:
        return f"{self.checker}: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteOutcome:
    """One client write request as the client saw it end. ``kind``: "transfer" (a fresh
    request), "replay" (the same request again under its token), "mismatch" (a different request
    under a used token). ``original`` is the acknowledged result the replay or mismatch follows;
    ``result`` is None when the client gave up without an answer."""

    client: str
    token: str
    kind: str
    actions: tuple[TxnAction, ...]
    result: TxnResult | None
    original: TxnResult | None = None


@dataclass(slots=True)
class BankChecker:
    refs: tuple[ItemRef, ...]
    total: int
    participants: dict[TxnId, tuple[str, ...]] = field(default_factory=dict)
    tokens: dict[TxnId, str] = field(default_factory=dict)
    # durable commits: txn -> partitions that applied it; account -> [(txn, ts)] in order
    applied_at: dict[TxnId, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    writes_of: dict[TxnId, set[ItemRef]] = field(default_factory=lambda: collections.defaultdict(set))
    order: dict[ItemRef, list[tuple[TxnId, Timestamp]]] = field(
        default_factory=lambda: collections.defaultdict(list))
    decisions: dict[TxnId, TxnState] = field(default_factory=dict)
    reads: list[tuple[Any, ...]] = field(default_factory=list)
    outcomes: list[WriteOutcome] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    # -- recording ------------------------------------------------------------------------------

    def began(self, txn_id: TxnId, participants: tuple[str, ...], token: str | None) -> None:
        self.participants[txn_id] = participants
        if token is not None:
            self.tokens[txn_id] = token

    def applied(self, partition: str, txn_id: TxnId, ts: Timestamp,
                written: tuple[ItemRef, ...]) -> None:
        if partition in self.applied_at[txn_id]:
            if not written:
                # A participant that only checked items was locked again by a late Prepare and
                # got the same decision again: nothing is written twice.
                return
            self._fail("double-apply", f"{partition} applied {txn_id} twice")
        self.applied_at[txn_id].append(partition)
        for ref in written:
            self.writes_of[txn_id].add(ref)
            self.order[ref].append((txn_id, ts))

    def decided(self, txn_id: TxnId, state: TxnState) -> None:
        earlier = self.decisions.setdefault(txn_id, state)
        if earlier is not state:
            self._fail("decision-changed", f"{txn_id} was {earlier.value}, then {state.value}")

    def read(self, images: tuple[Any, ...]) -> None:
        """A successful read of every account, in ``refs`` order."""
        self.reads.append(images)

    def outcome(self, o: WriteOutcome) -> None:
        self.outcomes.append(o)

    def _fail(self, checker: str, detail: str) -> None:
        self.violations.append(Violation(checker=checker, detail=detail))

    # -- verdicts -------------------------------------------------------------------------------

    def check(self, final: dict[ItemRef, Any], *, settled: bool, leftovers: list[str],
              ledger: dict[TxnId, TxnState]) -> list[Violation]:
        """Every violation (recorded ones included). ``final`` maps each account to its durable
        image; ``settled`` says the run reached quiescence, ``leftovers`` what was still open."""
        self._check_conservation(final)
        self._check_reads()
        self._check_atomicity(ledger)
        self._check_order()
        self._check_outcomes()
        if not settled:
            self._fail("quiescence", "; ".join(leftovers[:5]) or "not settled")
        return list(self.violations)

    def _check_conservation(self, final: dict[ItemRef, Any]) -> None:
        got = sum(final[r]["b"] for r in self.refs)
        if got != self.total:
            self._fail("conservation", f"the final balances sum to {got}, not {self.total}")
        for n, images in enumerate(self.reads):
            s = sum(i["b"] for i in images)
            if s != self.total:
                self._fail("conservation", f"read #{n} sums to {s}, not {self.total}")

    def _position(self, ref: ItemRef, txn_id: str) -> int | None:
        if txn_id == "":
            return -1
        for i, (t, _) in enumerate(self.order[ref]):
            if t == txn_id:
                return i
        return None

    def _check_reads(self) -> None:
        for n, images in enumerate(self.reads):
            seen = {ref: img["w"] for ref, img in zip(self.refs, images, strict=True)}
            for ref, writer in seen.items():
                if writer == "":
                    continue
                if self._position(ref, writer) is None:
                    self._fail("torn-read", f"read #{n} saw {writer} at {ref.key}, never applied there")
                    continue
                for other in self.writes_of[writer]:
                    if other == ref or other not in seen:
                        continue
                    want = self._position(other, writer)
                    have = self._position(other, seen[other])
                    if want is None or have is None or have < want:
                        self._fail("torn-read", f"read #{n} saw {writer} at {ref.key} but "
                                                f"{seen[other] or 'the initial value'} at {other.key}")

    def _check_atomicity(self, ledger: dict[TxnId, TxnState]) -> None:
        for txn_id in set(self.participants) | set(self.applied_at):
            parts = set(self.participants.get(txn_id, ()))
            got = set(self.applied_at.get(txn_id, ()))
            state = ledger.get(txn_id, self.decisions.get(txn_id))
            if got and got != parts:
                self._fail("atomicity", f"{txn_id} applied at {sorted(got)} of {sorted(parts)}")
            elif got and state is not TxnState.COMMITTED:
                self._fail("atomicity", f"{txn_id} applied but the ledger says "
                                        f"{state.value if state else 'nothing'}")
            elif not got and state is TxnState.COMMITTED:
                self._fail("atomicity", f"{txn_id} committed in the ledger but applied nowhere")

    def _check_order(self) -> None:
        for ref, seq in self.order.items():
            for (t1, ts1), (t2, ts2) in zip(seq, seq[1:], strict=False):
                if not ts1 < ts2:
                    self._fail("timestamp-order", f"{ref.key}: {t2} ({ts2}) applied after "
                                                  f"{t1} ({ts1})")

    def _everywhere(self, txn_id: str) -> bool:
        got = set(self.applied_at.get(txn_id, ()))
        return bool(got) and got == set(self.participants.get(txn_id, ()))

    def _check_outcomes(self) -> None:
        applied_per_token: dict[str, set[str]] = collections.defaultdict(set)
        for txn_id, token in self.tokens.items():
            if self.applied_at.get(txn_id):
                applied_per_token[token].add(txn_id)
        for token, txns in applied_per_token.items():
            if len(txns) > 1:
                self._fail("idempotency", f"token {token} applied {sorted(txns)}")
        for o in self.outcomes:
            r = o.result
            if r is not None:
                self._check_acknowledged(o, r)
            if o.kind == "replay":
                self._check_replay(o)
            elif o.kind == "mismatch" and r is not None and r.status not in _MISMATCH_OK:
                self._fail("idempotency", f"{o.token}: a different request under a used token "
                                          f"got {r.status.value}")

    def _check_acknowledged(self, o: WriteOutcome, r: TxnResult) -> None:
        if r.status is TxnStatus.SUCCESS and not self._everywhere(r.txn_id):
            self._fail("acknowledged", f"{o.token}: SUCCESS for {r.txn_id}, applied at "
                                       f"{sorted(self.applied_at.get(r.txn_id, ()))}")
        if r.status is TxnStatus.CANCELLED:
            if self.applied_at.get(r.txn_id):
                self._fail("acknowledged", f"{o.token}: CANCELLED {r.txn_id} was applied")
            self._check_reasons(o, r)

    def _check_reasons(self, o: WriteOutcome, r: TxnResult) -> None:
        if len(r.reasons) != len(o.actions):
            self._fail("reasons", f"{o.token}: {len(r.reasons)} reasons for {len(o.actions)} actions")
            return
        for action, reason in zip(o.actions, r.reasons, strict=True):
            if (reason.code is ReasonCode.CONDITIONAL_CHECK_FAILED
                    and "min" not in (action.payload or {})):
                self._fail("reasons", f"{o.token}: ConditionalCheckFailed on an unconditional "
                                      f"action {action.index}")
            if reason.item is not None and not action.return_item_on_failure:
                self._fail("reasons", f"{o.token}: an item image nobody asked for")

    def _check_replay(self, o: WriteOutcome) -> None:
        first, again = o.original, o.result
        if first is None or again is None or again.status in (TxnStatus.IN_PROGRESS,
                                                               TxnStatus.UNAVAILABLE):
            return
        if first.status is TxnStatus.SUCCESS:
            ok = again.status is TxnStatus.SUCCESS and again.replayed and again.txn_id == first.txn_id
        elif any(x.message == CANCELLED_BY_RECOVERY for x in first.reasons):
            ok = True  # recovery released the token: the retry ran afresh
        else:
            ok = (again.status is TxnStatus.CANCELLED and again.replayed
                  and again.reasons == first.reasons)
        if not ok:
            self._fail("idempotency", f"{o.token}: first {first.status.value} ({first.txn_id}), "
                                      f"replayed as {again.status.value} ({again.txn_id}, "
                                      f"replayed={again.replayed})")


# What a different request under a used token may get: the mismatch, or no verdict at all.
_MISMATCH_OK = (TxnStatus.PARAMETER_MISMATCH, TxnStatus.IN_PROGRESS, TxnStatus.UNAVAILABLE)
