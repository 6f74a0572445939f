"""The coordinators (write, read, recovery) driven with participants and a ledger through the
in-test pump: outcomes, cancellation reasons in request order, the ledger-before-decision rule,
recovery after a coordinator dies, idempotency tokens, the two-phase read."""

from __future__ import annotations

import dataclasses

import pytest
from test_txn_harness import FAST, Net, add, check, put, ref

from quorumdb.core.txn import (
    CANCELLED_BY_RECOVERY,
    Decision,
    DecisionAck,
    ItemsRead,
    LedgerAnswer,
    LedgerBegin,
    LedgerDecide,
    LedgerStatus,
    Message,
    ReadItems,
    ReasonCode,
    RecoverRequest,
    Timestamp,
    TxnClock,
    TxnState,
    TxnStatus,
    Verify,
    Vote,
    WritePhase,
    WriteRequest,
    WriteTxn,
)


def codes(net: Net, txn_id: str) -> list[str]:
    return [r.code.value for r in net.replies[txn_id].reasons]


def bank(a: int = 10, b: int = 10) -> Net:
    return Net(items={"p1": {ref("a"): a}, "p2": {ref("b"): b}})


def transfer(net: Net, n: int, token: str | None = None, fingerprint: str = "") -> WriteTxn:
    return net.write([add(0, "p1", "a", -n), add(1, "p2", "b", n)], token=token,
                     fingerprint=fingerprint)


# -- the clock ----------------------------------------------------------------------------------------


def test_the_clock_issues_unique_increasing_timestamps_and_moves_past_what_it_sees() -> None:
    c = TxnClock("c1")
    a, b, c2 = c.next(100), c.next(100), c.next(50)
    assert a < b < c2 and len({a, b, c2}) == 3 and a.ms == 100 and c2.ms == 100
    c.observe(Timestamp(ms=900, seq=4, node="c2"))
    nxt = c.next(200)
    assert nxt > Timestamp(ms=900, seq=4, node="c2") and nxt.node == "c1"
    assert TxnClock("c1").next(100) != TxnClock("c2").next(100)


# -- outcomes ------------------------------------------------------------------------------------------


def test_a_conflicting_transaction_is_cancelled_with_transaction_conflict_at_its_index() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, Vote) and m.src == "p2")
    first = net.write([add(0, "p1", "a", -1), add(1, "p2", "b", 1)])
    net.pump()
    second = net.write([check(0, "p2", "zz", None), add(1, "p1", "a", -2)])
    net.pump()
    assert second.txn_id not in net.replies  # p2's vote may still add its reasons
    net.advance(FAST.no_vote_wait_ms)
    assert codes(net, second.txn_id) == ["None", "TransactionConflict"]
    assert net.replies[second.txn_id].status.error_type == "TransactionCanceledException"
    net.release()
    net.run_until_quiet()
    assert net.replies[first.txn_id].status is TxnStatus.SUCCESS
    assert net.stores["p1"].value(ref("a")) == 9 and net.stores["p2"].value(ref("b")) == 11


def test_a_failed_condition_cancels_everywhere_with_reasons_in_request_order() -> None:
    net = Net(items={"p1": {ref("a"): 1}, "p2": {ref("b"): 2}})
    t = net.write([put(0, "p1", "a", 5), put(1, "p2", "b", 6, **{"if": 3}),
                   put(2, "p1", "c", 7)])
    net.run_until_quiet()
    res = net.replies[t.txn_id]
    assert res.status is TxnStatus.CANCELLED
    assert res.dynamo_reasons() == [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": 2},
        {"Code": "None"},
    ]
    assert net.stores["p1"].value(ref("a")) == 1 and net.stores["p1"].value(ref("c")) is None
    assert not net.participants["p1"].prepared and not net.participants["p2"].prepared
    rec = net.ledger.record(t.txn_id)
    assert rec is not None and rec.state is TxnState.CANCELLED and rec.completed_ms is not None


def test_a_cancellation_reports_the_reasons_of_every_participant_that_voted_in_time() -> None:
    net = Net(items={"p1": {ref("a"): 1}, "p2": {ref("b"): 2}})
    t = net.write([put(0, "p1", "a", 5, **{"if": 9}), put(1, "p2", "b", 6, **{"if": 3})])
    net.run_until_quiet()
    assert codes(net, t.txn_id) == ["ConditionalCheckFailed", "ConditionalCheckFailed"]


def test_without_a_wait_the_first_no_vote_cancels_at_once() -> None:
    net = Net(items={"p1": {ref("a"): 1}, "p2": {ref("b"): 2}},
              config=dataclasses.replace(FAST, no_vote_wait_ms=0))
    net.hold(lambda m: isinstance(m, Vote) and m.src == "p2")
    t = net.write([put(0, "p1", "a", 5, **{"if": 9}), put(1, "p2", "b", 6)])
    net.pump()
    assert codes(net, t.txn_id) == ["ConditionalCheckFailed", "None"]


def test_lost_votes_are_recovered_by_retransmitting_the_prepare() -> None:
    net = bank()
    lost = [0]

    def drop_first_vote(m: Message) -> bool:
        if isinstance(m, Vote) and lost[0] == 0:
            lost[0] += 1
            return True
        return False

    net.drop(drop_first_vote)
    t = transfer(net, 4)
    net.run_until_quiet()
    assert lost[0] == 1 and net.replies[t.txn_id].status is TxnStatus.SUCCESS
    assert net.stores["p1"].value(ref("a")) == 6


def test_a_silent_participant_cancels_the_transaction_after_the_prepare_timeout() -> None:
    net = bank()
    net.down.add("p2")
    t = transfer(net, 4)
    net.advance(150)
    assert codes(net, t.txn_id) == ["None", "TransactionConflict"]
    assert not net.participants["p1"].prepared  # p1 was told to cancel
    net.down.clear()
    net.run_until_quiet()
    assert net.stores["p1"].value(ref("a")) == 10 and net.stores["p2"].value(ref("b")) == 10


def test_no_decision_leaves_before_the_ledger_holds_it() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, LedgerDecide))
    t = transfer(net, 4)
    net.advance(50)
    assert t.phase is WritePhase.DECIDE
    assert not [m for m in net.delivered if isinstance(m, Decision)]
    net.release()
    net.run_until_quiet()
    assert net.replies[t.txn_id].status is TxnStatus.SUCCESS


def test_a_commit_is_answered_only_once_every_participant_applied_it() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, DecisionAck) and m.src == "p2")
    t = transfer(net, 4)
    net.pump()
    assert t.txn_id not in net.replies
    net.release()
    net.pump()
    assert net.replies[t.txn_id].status is TxnStatus.SUCCESS


def test_an_unreachable_ledger_makes_the_request_unavailable_and_prepares_nothing() -> None:
    net = bank()
    net.down.add("ledger")
    t = transfer(net, 4)
    net.advance(150)
    assert net.replies[t.txn_id].status is TxnStatus.UNAVAILABLE
    assert net.replies[t.txn_id].status.error_type == "InternalServerError"
    assert not [m for m in net.delivered if type(m).__name__ == "Prepare"]


# -- recovery ------------------------------------------------------------------------------------------


def test_a_coordinator_that_dies_after_committing_is_finished_by_recovery() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, Decision))
    t = transfer(net, 4)
    net.pump()
    rec = net.ledger.record(t.txn_id)
    assert rec is not None and rec.state is TxnState.COMMITTED
    net.crash_node("c1")
    net.held.clear()  # its decisions never left
    net.hold(lambda m: False)
    net.advance(400)
    assert [m for m in net.delivered if isinstance(m, RecoverRequest)]
    assert net.stores["p1"].value(ref("a")) == 6 and net.stores["p2"].value(ref("b")) == 14
    rec = net.ledger.record(t.txn_id)
    assert rec is not None and rec.completed_ms is not None


def test_recovery_cancels_an_undecided_transaction_and_the_coordinator_learns_it() -> None:
    """The coordinator's LedgerDecide(COMMIT) is delayed past recovery: the compare-and-set
    lets recovery's CANCEL win and the coordinator then sends CANCEL too."""
    net = Net(items={"p1": {ref("a"): 10}, "p2": {ref("b"): 10}}, nodes=("c1", "c2"))
    net.hold(lambda m: isinstance(m, LedgerDecide) and m.src == "c1")
    t = transfer(net, 4)
    # The participants ask c1 first (which runs the transaction, so its driver starts no
    # recovery), then a random node: c2 runs the recovery.
    for _ in range(20):
        net.advance(100)
        rec = net.ledger.record(t.txn_id)
        if rec is not None and rec.state.decided:
            break
    assert t.phase is WritePhase.DECIDE
    rec = net.ledger.record(t.txn_id)
    assert rec is not None and rec.state is TxnState.CANCELLED and rec.by_recovery
    assert not net.participants["p1"].prepared and not net.participants["p2"].prepared
    net.release()
    net.run_until_quiet()
    res = net.replies[t.txn_id]
    assert res.status is TxnStatus.CANCELLED
    assert {r.code for r in res.reasons} == {ReasonCode.TRANSACTION_CONFLICT}
    assert net.stores["p1"].value(ref("a")) == 10 and net.stores["p2"].value(ref("b")) == 10


def test_recovery_winning_while_votes_are_still_out_is_reported_as_such_and_frees_the_token() -> None:
    net = Net(items={"p1": {ref("a"): 10}, "p2": {ref("b"): 10}}, nodes=("c1", "c2"))
    net.hold(lambda m: isinstance(m, Vote))
    t = transfer(net, 4, token="tok", fingerprint="f")
    net.pump()
    net.queue.append(RecoverRequest(src="p1", dst="c2", txn_id=t.txn_id, participants=("p1", "p2")))
    net.pump()
    assert not net.participants["p1"].prepared and not net.participants["p2"].prepared
    # The yes votes are lost; the resent Prepares meet participants that know the decision and
    # vote no, so the coordinator proposes CANCEL itself, and learns it was recovery's.
    net.held.clear()
    net.hold(lambda m: False)
    net.run_until_quiet()
    assert [m for m in net.delivered if isinstance(m, Vote) and not m.ok]
    res = net.replies[t.txn_id]
    assert res.status is TxnStatus.CANCELLED
    assert {r.message for r in res.reasons} == {CANCELLED_BY_RECOVERY}
    again = transfer(net, 4, token="tok", fingerprint="f")  # no client saw an outcome: run anew
    net.run_until_quiet()
    assert net.replies[again.txn_id].status is TxnStatus.SUCCESS
    assert not net.replies[again.txn_id].replayed
    assert net.stores["p1"].value(ref("a")) == 6


def test_recovery_of_a_transaction_the_ledger_never_saw_leaves_a_cancelled_tombstone() -> None:
    net = bank()
    net.queue.append(RecoverRequest(src="p1", dst="c1", txn_id="9.0@c7", participants=("p1",)))
    net.run_until_quiet()
    rec = net.ledger.record("9.0@c7")
    assert rec is not None and rec.state is TxnState.CANCELLED and rec.completed_ms is not None
    assert [m for m in net.delivered if isinstance(m, Decision) and not m.commit]


# -- timestamps ----------------------------------------------------------------------------------------


def test_a_coordinator_whose_clock_lags_is_refused_once_then_moves_past() -> None:
    net = Net(items={"p1": {ref("a"): 10}}, nodes=("c1", "c2"))
    net.now = 5000
    first = net.write([add(0, "p1", "a", 1)], node="c1")
    net.run_until_quiet()
    assert net.replies[first.txn_id].status is TxnStatus.SUCCESS
    lagging = net.clocks["c2"]  # its clock reads 10 when c1's reads 5000
    req = WriteRequest(actions=(add(0, "p1", "a", 1),))
    core = WriteTxn(node="c2", request=req, clock=lagging, config=net.config, ledger="ledger",
                    now_ms=10)
    net.cores[("c2", core.txn_id)] = core
    net._drain_core(core)
    net.run_until_quiet()
    assert codes(net, core.txn_id) == ["TransactionConflict"]
    again = WriteTxn(node="c2", request=req, clock=lagging, config=net.config, ledger="ledger",
                     now_ms=net.now)
    assert again.ts > first.ts  # the refusal's seen_ts moved the clock
    assert core.ts < first.ts


# -- idempotency tokens --------------------------------------------------------------------------------


def test_a_token_in_flight_is_in_progress_then_replays_the_same_result() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, DecisionAck))
    t1 = transfer(net, 4, token="tok", fingerprint="f1")
    net.pump()
    t2 = transfer(net, 4, token="tok", fingerprint="f1")
    net.pump()
    assert net.replies[t2.txn_id].status is TxnStatus.IN_PROGRESS
    assert net.replies[t2.txn_id].status.error_type == "TransactionInProgressException"
    net.release()
    net.run_until_quiet()
    assert net.replies[t1.txn_id].status is TxnStatus.SUCCESS
    t3 = transfer(net, 4, token="tok", fingerprint="f1")
    net.run_until_quiet()
    replay = net.replies[t3.txn_id]
    assert replay.status is TxnStatus.SUCCESS and replay.replayed
    assert replay.txn_id == t1.txn_id
    assert net.stores["p1"].value(ref("a")) == 6  # applied once
    t4 = transfer(net, 5, token="tok", fingerprint="f2")
    net.run_until_quiet()
    assert net.replies[t4.txn_id].status.error_type == "IdempotentParameterMismatchException"


def test_a_cancelled_request_replays_its_cancellation() -> None:
    net = bank(a=1)
    t1 = net.write([add(0, "p1", "a", -4, **{"if": 9})], token="tok", fingerprint="f")
    net.run_until_quiet()
    t2 = net.write([add(0, "p1", "a", -4, **{"if": 9})], token="tok", fingerprint="f")
    net.run_until_quiet()
    first, again = net.replies[t1.txn_id], net.replies[t2.txn_id]
    assert again.replayed and again.status is TxnStatus.CANCELLED and again.reasons == first.reasons


# -- read-only transactions ----------------------------------------------------------------------------


def test_a_read_on_one_partition_takes_one_round_and_several_take_two() -> None:
    net = bank()
    one = net.read(("p1", "a"))
    net.run_until_quiet()
    assert not [m for m in net.delivered if isinstance(m, Verify)]
    assert net.replies[one.txn_id].items == (10,)
    two = net.read(("p1", "a"), ("p2", "b"))
    net.run_until_quiet()
    assert [m.dst for m in net.delivered if isinstance(m, Verify)] == ["p1", "p2"]
    assert net.replies[two.txn_id].items == (10, 10)


def test_a_read_that_straddles_a_commit_is_retried_never_torn() -> None:
    """Phase 1 reads a (old) and b (new); the check on a sees its version moved, so the
    attempt fails and the retry returns both new values."""
    net = bank()
    net.hold(lambda m: isinstance(m, ReadItems) and m.dst == "p2")
    r = net.read(("p1", "a"), ("p2", "b"))
    net.pump()
    t = transfer(net, 4)
    net.run_until_quiet(ms=0)
    assert net.replies[t.txn_id].status is TxnStatus.SUCCESS
    # p1's answer (a=10) arrived before the commit; p2 now answers b=14
    net.release()
    net.run_until_quiet()
    assert r.attempt == 2
    assert net.replies[r.txn_id].items == (6, 14)
    assert sum(net.replies[r.txn_id].items) == 20


def test_a_read_fails_on_a_prepared_item_and_gives_up_after_its_attempts() -> None:
    net = bank()
    net.hold(lambda m: isinstance(m, Decision))
    transfer(net, 4)
    net.pump()
    r = net.read(("p2", "b"), ("p1", "a"), ("p1", "c"))
    net.advance(100)
    res = net.replies[r.txn_id]
    assert r.attempt == net.config.read_attempts_max and r.done
    # The first refusal ends an attempt: b (p2 answers first) is reported, c never conflicted.
    assert [c.code.value for c in res.reasons] == ["TransactionConflict", "None", "None"]
    assert [m for m in net.delivered if isinstance(m, ItemsRead) and not m.ok]


def test_a_read_whose_partitions_never_answer_is_unavailable() -> None:
    net = bank()
    net.down.add("p2")
    r = net.read(("p1", "a"), ("p2", "b"))
    net.advance(600)
    assert net.replies[r.txn_id].status is TxnStatus.UNAVAILABLE


def test_cores_refuse_messages_for_other_transactions() -> None:
    net = bank()
    t = transfer(net, 1)
    stray = LedgerAnswer(src="ledger", dst="c1", txn_id="other", op="begin",
                         status=LedgerStatus.BUSY)
    with pytest.raises(ValueError, match="stepped into"):
        t.step(stray, net.now)
    assert isinstance(net.queue[0], LedgerBegin)
