"""The transaction ledger as a state machine: the decision compare-and-set, ClientRequestToken
idempotency (in progress, mismatch, replay, expiry, release on recovery), stale records, bounds,
rebuilding from a snapshot, determinism across replicas."""

from __future__ import annotations

import pytest

from quorumdb.core.txn import (
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerOp,
    LedgerStatus,
    Timestamp,
    TxnConfig,
    TxnLedger,
    TxnResult,
    TxnState,
    TxnStatus,
    txn_id_of,
)
from quorumdb.core.txn.values import CancellationReason, ReasonCode

CFG = TxnConfig(retransmit_ms=10, prepare_timeout_ms=100, recovery_after_ms=300,
                ledger_stale_ms=600, token_ttl_ms=10_000, ledger_retention_ms=20_000)
PARTS = ("p1", "p2")


def tid(ms: int, node: str = "c1") -> str:
    return txn_id_of(Timestamp(ms=ms, seq=0, node=node))


def begin(ms: int, token: str | None = None, fp: str = "f", node: str = "c1") -> LedgerBegin:
    return LedgerBegin(src=node, dst="ledger", txn_id=tid(ms, node),
                       ts=Timestamp(ms=ms, seq=0, node=node), participants=PARTS, token=token,
                       fingerprint=fp)


def decide(txn_id: str, state: TxnState, *, recovery: bool = False) -> LedgerDecide:
    if recovery:
        outcome = None
    elif state is TxnState.COMMITTED:
        outcome = TxnResult(txn_id=txn_id, status=TxnStatus.SUCCESS)
    else:
        outcome = TxnResult(txn_id=txn_id, status=TxnStatus.CANCELLED, reasons=(
            CancellationReason(code=ReasonCode.CONDITIONAL_CHECK_FAILED),))
    return LedgerDecide(src="c9" if recovery else "c1", dst="ledger", txn_id=txn_id,
                        decision=state, participants=PARTS, outcome=outcome, by_recovery=recovery)


def complete(txn_id: str) -> LedgerComplete:
    return LedgerComplete(src="c1", dst="ledger", txn_id=txn_id)


def test_exactly_one_decision_wins_and_everyone_learns_it() -> None:
    led = TxnLedger(CFG)
    assert led.apply(begin(1), 0).status is LedgerStatus.BEGUN
    won = led.apply(decide(tid(1), TxnState.COMMITTED), 5)
    assert won.status is LedgerStatus.DECIDED and won.record is not None
    assert won.record.state is TxnState.COMMITTED and won.dst == "c1"
    late = led.apply(decide(tid(1), TxnState.CANCELLED, recovery=True), 6)
    assert late.record is not None and late.record.state is TxnState.COMMITTED
    assert late.dst == "c9"
    led2 = TxnLedger(CFG)
    led2.apply(begin(2), 0)
    first = led2.apply(decide(tid(2), TxnState.CANCELLED, recovery=True), 1)
    assert first.record is not None and first.record.by_recovery
    lost = led2.apply(decide(tid(2), TxnState.COMMITTED), 2)
    assert lost.record is not None and lost.record.state is TxnState.CANCELLED


def test_a_repeated_begin_is_idempotent_and_a_late_one_sees_the_decision() -> None:
    led = TxnLedger(CFG)
    a = led.apply(begin(1), 0)
    assert led.apply(begin(1), 3) == a
    led2 = TxnLedger(CFG)
    led2.apply(decide(tid(1), TxnState.CANCELLED, recovery=True), 0)  # a tombstone first
    late = led2.apply(begin(1), 1)
    assert late.status is LedgerStatus.BEGUN and late.record is not None
    assert late.record.state is TxnState.CANCELLED


def test_a_token_is_in_progress_until_its_commit_completes_then_replays() -> None:
    led = TxnLedger(CFG)
    led.apply(begin(1, token="t"), 0)
    assert led.apply(begin(2, token="t"), 1).status is LedgerStatus.IN_PROGRESS
    led.apply(decide(tid(1), TxnState.COMMITTED), 2)
    busy = led.apply(begin(3, token="t"), 3)
    assert busy.status is LedgerStatus.IN_PROGRESS and busy.record is not None
    assert busy.record.txn_id == tid(1) and busy.txn_id == tid(3)
    led.apply(complete(tid(1)), 4)
    replay = led.apply(begin(4, token="t"), 5)
    assert replay.status is LedgerStatus.REPLAY and replay.record is not None
    assert replay.record.outcome == TxnResult(txn_id=tid(1), status=TxnStatus.SUCCESS)
    assert led.apply(begin(5, token="t", fp="other"), 6).status is LedgerStatus.MISMATCH
    assert led.record(tid(4)) is None  # nothing recorded for a replay


def test_a_cancellation_decided_by_its_coordinator_replays_at_once() -> None:
    led = TxnLedger(CFG)
    led.apply(begin(1, token="t"), 0)
    led.apply(decide(tid(1), TxnState.CANCELLED), 1)
    replay = led.apply(begin(2, token="t"), 2)
    assert replay.status is LedgerStatus.REPLAY and replay.record is not None
    assert replay.record.outcome is not None and replay.record.outcome.status is TxnStatus.CANCELLED


def test_a_cancellation_by_recovery_releases_the_token() -> None:
    led = TxnLedger(CFG)
    led.apply(begin(1, token="t"), 0)
    led.apply(decide(tid(1), TxnState.CANCELLED, recovery=True), 1)
    fresh = led.apply(begin(2, token="t"), 2)
    assert fresh.status is LedgerStatus.BEGUN and fresh.record is not None
    assert fresh.record.txn_id == tid(2)


def test_a_token_expires_ten_minutes_after_completion_and_records_age_out() -> None:
    led = TxnLedger(CFG)
    led.apply(begin(1, token="t"), 0)
    led.apply(decide(tid(1), TxnState.COMMITTED), 10)
    led.apply(complete(tid(1)), 100)
    assert led.apply(begin(2, token="t", fp="x"), 100 + 9_999).status is LedgerStatus.MISMATCH
    again = led.apply(begin(3, token="t", fp="x"), 100 + 10_000)
    assert again.status is LedgerStatus.BEGUN and again.record is not None
    assert again.record.txn_id == tid(3)
    assert led.record(tid(1)) is not None
    led.apply(complete(tid(9)), 100 + 20_000)  # any request moves the ledger's clock
    assert led.record(tid(1)) is None and led.record(tid(3)) is not None  # unfinished: kept


def test_stale_lists_unfinished_records_untouched_for_long() -> None:
    led = TxnLedger(CFG)
    led.apply(begin(1), 0)
    led.apply(begin(2), 0)
    led.apply(decide(tid(2), TxnState.COMMITTED), 500)
    led.apply(begin(3), 0)
    led.apply(decide(tid(3), TxnState.CANCELLED), 0)
    led.apply(complete(tid(3)), 0)
    assert [r.txn_id for r in led.stale(599)] == []
    assert [r.txn_id for r in led.stale(600)] == [tid(1)]
    assert [r.txn_id for r in led.stale(1100)] == [tid(1), tid(2)]


def test_a_full_ledger_refuses_new_transactions() -> None:
    small = TxnConfig(retransmit_ms=10, prepare_timeout_ms=100, recovery_after_ms=300,
                      ledger_stale_ms=600, ledger_records_max=2)
    led = TxnLedger(small)
    led.apply(begin(1), 0)
    led.apply(begin(2), 0)
    busy = led.apply(begin(3), 0)
    assert busy.status is LedgerStatus.BUSY and len(led) == 2
    assert led.apply(begin(1), 0).status is LedgerStatus.BEGUN  # its own record: still fine


def _script() -> list[tuple[LedgerOp, int]]:
    return [(begin(1, token="a"), 0), (begin(2, token="b"), 1), (begin(3, token="a"), 2),
            (decide(tid(1), TxnState.COMMITTED), 3), (decide(tid(2), TxnState.CANCELLED, recovery=True), 4),
            (complete(tid(1)), 5), (begin(4, token="a"), 6), (begin(5, token="b"), 7),
            (begin(6, token="a", fp="zz"), 8)]


def test_replicas_applying_the_same_log_answer_the_same_and_a_snapshot_rebuilds_the_state() -> None:
    a, b = TxnLedger(CFG), TxnLedger(CFG)
    answers_a: list[LedgerAnswer] = []
    for i, (op, now) in enumerate(_script()):
        answers_a.append(a.apply(op, now))
        assert b.apply(op, now) == answers_a[-1]
        if i == 5:
            b = TxnLedger(CFG, records=b.records())  # a replica restored from a snapshot
    assert [x.status for x in answers_a[-3:]] == [LedgerStatus.REPLAY, LedgerStatus.BEGUN,
                                                  LedgerStatus.MISMATCH]
    assert a.records() == b.records()


@pytest.mark.parametrize("bad", [
    lambda: LedgerDecide(src="c", dst="l", txn_id="x", decision=TxnState.PREPARING,
                         participants=PARTS),
    lambda: LedgerBegin(src="c", dst="l", txn_id="x", ts=Timestamp(ms=0, seq=0, node=""),
                        participants=PARTS),
    lambda: LedgerAnswer(src="l", dst="c", txn_id="x", op="decide", status=LedgerStatus.DECIDED),
    lambda: LedgerAnswer(src="l", dst="c", txn_id="x", op="nope", status=LedgerStatus.BUSY),
])
def test_malformed_ledger_messages_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]
