"""The transaction checkers must be able to fail: each is fed a recorded history that breaks
exactly its invariant (and a clean one that passes)."""

from __future__ import annotations

from typing import Any

import pytest

from quorumdb.core.txn import (
    CANCELLED_BY_RECOVERY,
    NO_REASON,
    ActionKind,
    CancellationReason,
    ItemRef,
    ReasonCode,
    Timestamp,
    TxnAction,
    TxnResult,
    TxnState,
    TxnStatus,
)
from quorumdb.sim.checkers.transactions import BankChecker, WriteOutcome

A, B = ItemRef(table="bank", key="a0"), ItemRef(table="vault", key="a1")
T1, T2 = "1.0@c", "2.0@c"
TS1, TS2 = Timestamp(ms=1, seq=0, node="c"), Timestamp(ms=2, seq=0, node="c")
ACTIONS = (
    TxnAction(index=0, partition="p0", ref=A, kind=ActionKind.UPDATE, payload={"add": -5, "min": 5}),
    TxnAction(index=1, partition="p1", ref=B, kind=ActionKind.UPDATE, payload={"add": 5}),
)
CCF = CancellationReason(code=ReasonCode.CONDITIONAL_CHECK_FAILED, message="no")


def img(b: int, w: str = "") -> dict[str, Any]:
    return {"b": b, "w": w, "n": 0}


def checker() -> BankChecker:
    c = BankChecker(refs=(A, B), total=20)
    c.began(T1, ("p0", "p1"), "tok1")
    c.began(T2, ("p0", "p1"), "tok2")
    return c


def committed(c: BankChecker, txn: str, ts: Timestamp, where: tuple[str, ...] = ("p0", "p1")) -> None:
    c.decided(txn, TxnState.COMMITTED)
    if "p0" in where:
        c.applied("p0", txn, ts, (A,))
    if "p1" in where:
        c.applied("p1", txn, ts, (B,))


def verdict(c: BankChecker, final: tuple[int, int] = (5, 15), *, settled: bool = True,
            ledger: dict[str, TxnState] | None = None) -> set[str]:
    fin = {A: img(final[0]), B: img(final[1])}
    return {v.checker for v in c.check(fin, settled=settled, leftovers=["x"],
                                        ledger=ledger if ledger is not None else dict(c.decisions))}


def test_a_clean_history_passes() -> None:
    c = checker()
    committed(c, T1, TS1)
    c.read((img(10), img(10)))
    c.read((img(5, T1), img(15, T1)))
    c.outcome(WriteOutcome(client="m", token="tok1", kind="transfer", actions=ACTIONS,
                           result=TxnResult(txn_id=T1, status=TxnStatus.SUCCESS)))
    assert verdict(c) == set()


def test_conservation() -> None:
    c = checker()
    c.read((img(10), img(11)))
    assert "conservation" in verdict(c)
    assert "conservation" in verdict(checker(), final=(5, 16))


def test_torn_read() -> None:
    c = checker()
    committed(c, T1, TS1)
    c.read((img(5, T1), img(10)))  # T1 at a, the initial value at b: sums wrong *and* torn
    assert {"torn-read", "conservation"} <= verdict(c)
    c2 = checker()
    c2.read((img(10, T2), img(10)))  # a writer that was never applied
    assert "torn-read" in verdict(c2)


def test_atomicity() -> None:
    c = checker()
    committed(c, T1, TS1, where=("p0",))
    assert "atomicity" in verdict(c)
    c2 = checker()
    c2.decided(T1, TxnState.CANCELLED)
    c2.applied("p0", T1, TS1, (A,))
    c2.applied("p1", T1, TS1, (B,))
    assert "atomicity" in verdict(c2)
    c3 = checker()
    c3.decided(T1, TxnState.COMMITTED)
    assert "atomicity" in verdict(c3)


def test_double_apply_and_decision_changes_are_caught_as_they_happen() -> None:
    c = checker()
    committed(c, T1, TS1)
    c.applied("p0", T1, TS1, (A,))
    c.decided(T1, TxnState.CANCELLED)
    assert {"double-apply", "decision-changed"} <= verdict(c)


def test_a_participant_that_only_checked_items_may_commit_again_without_writing() -> None:
    c = checker()
    c.decided(T1, TxnState.COMMITTED)
    c.applied("p0", T1, TS1, (A,))
    c.applied("p1", T1, TS1, ())
    c.applied("p1", T1, TS1, ())  # re-locked by a late Prepare, committed again: writes nothing
    assert verdict(c, final=(10, 10)) == set()
    c.applied("p0", T1, TS1, (A,))
    assert "double-apply" in verdict(c, final=(10, 10))


def test_timestamp_order() -> None:
    c = checker()
    committed(c, T2, TS2)
    committed(c, T1, TS1)
    assert "timestamp-order" in verdict(c, final=(10, 10))


def test_acknowledged() -> None:
    c = checker()
    c.outcome(WriteOutcome(client="m", token="tok1", kind="transfer", actions=ACTIONS,
                           result=TxnResult(txn_id=T1, status=TxnStatus.SUCCESS)))
    assert "acknowledged" in verdict(c, final=(10, 10))
    c2 = checker()
    committed(c2, T1, TS1)
    c2.outcome(WriteOutcome(client="m", token="tok1", kind="transfer", actions=ACTIONS,
                            result=TxnResult(txn_id=T1, status=TxnStatus.CANCELLED,
                                             reasons=(CCF, NO_REASON))))
    assert "acknowledged" in verdict(c2)


def test_idempotency() -> None:
    c = checker()
    c.began("3.0@c", ("p0", "p1"), "tok1")  # a second transaction under tok1 ...
    committed(c, T1, TS1)
    committed(c, "3.0@c", Timestamp(ms=3, seq=0, node="c"))  # ... applied too
    assert "idempotency" in verdict(c, final=(0, 20))
    first = TxnResult(txn_id=T1, status=TxnStatus.SUCCESS)
    for again in (TxnResult(txn_id=T2, status=TxnStatus.SUCCESS),  # re-executed
                  TxnResult(txn_id=T1, status=TxnStatus.SUCCESS)):  # not marked replayed
        c2 = checker()
        committed(c2, T1, TS1)
        c2.outcome(WriteOutcome(client="m", token="tok1", kind="replay", actions=ACTIONS,
                                result=again, original=first))
        assert "idempotency" in verdict(c2)
    c3 = checker()
    c3.outcome(WriteOutcome(client="m", token="tok1", kind="mismatch", actions=ACTIONS,
                            result=TxnResult(txn_id=T2, status=TxnStatus.CANCELLED,
                                             reasons=(CCF, NO_REASON)), original=first))
    assert "idempotency" in verdict(c3, final=(10, 10))


def test_a_replay_after_a_recovery_cancel_may_run_afresh() -> None:
    c = checker()
    committed(c, T2, TS2)
    recovered = CancellationReason(code=ReasonCode.TRANSACTION_CONFLICT,
                                   message=CANCELLED_BY_RECOVERY)
    c.outcome(WriteOutcome(client="m", token="tok1", kind="replay", actions=ACTIONS,
                           result=TxnResult(txn_id=T2, status=TxnStatus.SUCCESS),
                           original=TxnResult(txn_id=T1, status=TxnStatus.CANCELLED,
                                              reasons=(recovered, recovered))))
    assert verdict(c) == set()


@pytest.mark.parametrize("reasons", [
    (CCF,),  # one reason for two actions
    (NO_REASON, CCF),  # ConditionalCheckFailed on the unconditional credit
    (CancellationReason(code=ReasonCode.CONDITIONAL_CHECK_FAILED, item=img(1)), NO_REASON),
])
def test_reasons(reasons: tuple[CancellationReason, ...]) -> None:
    c = checker()
    c.outcome(WriteOutcome(client="m", token="tok1", kind="transfer", actions=ACTIONS,
                           result=TxnResult(txn_id=T1, status=TxnStatus.CANCELLED,
                                            reasons=reasons)))
    assert verdict(c, final=(10, 10)) == {"reasons"}


def test_quiescence() -> None:
    assert verdict(checker(), final=(10, 10), settled=False) == {"quiescence"}
