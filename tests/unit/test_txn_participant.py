"""The transaction participant, stepped by hand: the prepare rules (table-driven), decisions,
plain writes meeting the lock, the two-phase read, recovery timers and restarts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from test_txn_harness import FAST, DictStore, KVEvaluator, add, check, put, ref

from quorumdb.core.txn import (
    NO_REASON,
    ActionKind,
    CommitPrepared,
    Decision,
    DecisionAck,
    DropPrepared,
    Evaluation,
    ItemsRead,
    ItemVersion,
    Participant,
    ParticipantReady,
    Prepare,
    PutItem,
    PutPrepared,
    ReadItems,
    ReasonCode,
    RecoverRequest,
    Timestamp,
    TxnAction,
    TxnConfig,
    TxnId,
    Verified,
    Verify,
    Vote,
    txn_id_of,
)


class CountingEvaluator(KVEvaluator):
    calls = 0

    def evaluate(self, action: TxnAction, current: ItemVersion, txn_id: TxnId | None) -> Evaluation:
        self.calls += 1
        return KVEvaluator.evaluate(self, action, current, txn_id)


def ts(ms: int, node: str = "c1") -> Timestamp:
    return Timestamp(ms=ms, seq=0, node=node)


class Rig:
    """One participant ``p1`` over a DictStore; ``ready()`` applies persist records first."""

    def __init__(self, items: dict[str, Any] | None = None, config: TxnConfig = FAST,
                 targets: tuple[str, ...] = ("c8", "c9")) -> None:
        self.store = DictStore({ref(k): v for k, v in (items or {}).items()})
        self.evaluator = CountingEvaluator()
        self.config = config
        self.targets = targets
        self.p = self._build()
        self.now = 1

    def _build(self) -> Participant:
        return Participant("p1", store=self.store, evaluator=self.evaluator, config=self.config,
                           rng=random.Random(0), recovery_targets=self.targets,
                           prepared=self.store.prepared.values())

    def restart(self) -> None:
        self.p = self._build()

    def ready(self) -> ParticipantReady:
        r = self.p.ready()
        for rec in r.persist:
            self.store.apply(rec)
        return r

    def prepare(self, at: Timestamp, *actions: TxnAction, coordinator: str = "c1",
                participants: tuple[str, ...] = ("p1", "p2")) -> ParticipantReady:
        self.p.step(Prepare(src=coordinator, dst="p1", txn_id=txn_id_of(at), ts=at,
                            participants=participants, actions=actions), self.now)
        return self.ready()

    def decide(self, at: Timestamp, commit: bool) -> ParticipantReady:
        self.p.step(Decision(src="c1", dst="p1", txn_id=txn_id_of(at), commit=commit), self.now)
        return self.ready()


def only_vote(r: ParticipantReady) -> Vote:
    (msg,) = r.messages
    assert isinstance(msg, Vote)
    return msg


# -- the prepare rules, table-driven ----------------------------------------------------------------

# (case, items before, another txn prepared on "a" first?, write ts of "a" (ms), actions, ok,
#  expected reason codes by index)
PREPARE_CASES: list[tuple[str, dict[str, Any], bool, int, list[TxnAction], bool, list[str]]] = [
    ("fresh item", {}, False, 0, [put(0, "p1", "a", 1)], True, ["None"]),
    ("condition holds", {"a": 5}, False, 0, [put(0, "p1", "a", 6, **{"if": 5})], True, ["None"]),
    ("condition fails", {"a": 5}, False, 0, [put(0, "p1", "a", 6, **{"if": 4})], False,
     ["ConditionalCheckFailed"]),
    ("check fails", {"a": 5}, False, 0, [check(3, "p1", "a", 4)], False, ["ConditionalCheckFailed"]),
    ("evaluator refuses", {"a": "x"}, False, 0, [add(0, "p1", "a", 1)], False, ["ValidationError"]),
    ("item locked by another transaction", {"a": 5}, True, 0, [put(0, "p1", "a", 6, **{"if": 4})],
     False, ["TransactionConflict"]),
    ("a newer transaction wrote the item", {"a": 5}, False, 500, [put(0, "p1", "a", 6)], False,
     ["TransactionConflict"]),
    ("the item's last writer has this very timestamp", {"a": 5}, False, 100,
     [put(0, "p1", "a", 6)], False, ["TransactionConflict"]),
    ("older writer", {"a": 5}, False, 99, [put(0, "p1", "a", 6)], True, ["None"]),
    ("several actions: one reason each, by request index", {"a": 5, "b": 1}, False, 0,
     [put(0, "p1", "a", 6), check(2, "p1", "b", 7), add(4, "p1", "c", 1)], False,
     ["None", "ConditionalCheckFailed", "ValidationError"]),
]


@pytest.mark.parametrize("case,items,locked,write_ms,actions,ok,codes", PREPARE_CASES,
                         ids=[c[0] for c in PREPARE_CASES])
def test_prepare_rules(case: str, items: dict[str, Any], locked: bool, write_ms: int,
                       actions: list[TxnAction], ok: bool, codes: list[str]) -> None:
    rig = Rig(items)
    if write_ms:
        rig.store.items[ref("a")] = ItemVersion(item=items["a"], version=50, write_ts=ts(write_ms))
    if locked:
        assert only_vote(rig.prepare(ts(50, "c2"), put(0, "p1", "a", 0))).ok
    r = rig.prepare(ts(100), *actions)
    vote = only_vote(r)
    assert vote.ok is ok
    assert [(i, reason.code.value) for i, reason in vote.reasons] == \
        list(zip([a.index for a in actions], codes, strict=True))
    if ok:
        assert r.persist == (PutPrepared(txn=rig.p.prepared[txn_id_of(ts(100))]),)
        assert all(rig.p.holder(a.ref) == txn_id_of(ts(100)) for a in actions)
    else:
        assert r.persist == ()
        assert txn_id_of(ts(100)) not in rig.p.prepared
        assert all(rig.p.holder(a.ref) != txn_id_of(ts(100)) for a in actions)
    if write_ms >= 100:
        assert vote.seen_ts == ts(write_ms)  # the coordinator's clock moves past it


def test_a_failed_condition_returns_the_old_item_only_when_asked() -> None:
    rig = Rig({"a": 5})
    shown = only_vote(rig.prepare(ts(10), put(0, "p1", "a", 6, **{"if": 4})))
    assert shown.reasons[0][1].item == 5  # put() asks for ALL_OLD
    hidden = only_vote(rig.prepare(ts(11), check(0, "p1", "a", 4, show=False)))
    assert hidden.reasons[0][1].item is None
    assert hidden.reasons[0][1].to_dynamo() == {"Code": "ConditionalCheckFailed",
                                                 "Message": "The conditional request failed"}


def test_a_yes_vote_leaves_in_the_same_ready_as_its_prepared_record() -> None:
    rig = Rig()
    r = rig.prepare(ts(10), put(0, "p1", "a", 1), check(1, "p1", "b", None))
    assert isinstance(r.persist[0], PutPrepared) and only_vote(r).ok
    rec = r.persist[0].txn
    assert rec.writes == ((ref("a"), 1),) and rec.checks == (ref("b"),)
    assert rec.coordinator == "c1" and rec.participants == ("p1", "p2")


def test_a_retransmitted_prepare_is_answered_again_without_evaluating_or_persisting() -> None:
    rig = Rig()
    rig.prepare(ts(10), put(0, "p1", "a", 1))
    calls = rig.evaluator.calls
    r = rig.prepare(ts(10), put(0, "p1", "a", 1))
    assert only_vote(r).ok and r.persist == () and rig.evaluator.calls == calls


def test_commit_applies_the_prepared_effects_with_the_transaction_timestamp() -> None:
    rig = Rig({"a": 1, "b": 2})
    rig.prepare(ts(10), add(0, "p1", "a", 5), check(1, "p1", "b", 2))
    before_b = rig.store.read(ref("b"))
    r = rig.decide(ts(10), commit=True)
    assert r.persist == (CommitPrepared(txn_id=txn_id_of(ts(10)), ts=ts(10), writes=((ref("a"), 6),)),)
    assert r.messages == (DecisionAck(src="p1", dst="c1", txn_id=txn_id_of(ts(10)), commit=True),)
    a = rig.store.read(ref("a"))
    assert a.item == 6 and a.write_ts == ts(10)
    assert rig.store.read(ref("b")) == before_b  # a checked item is not written
    assert rig.p.holder(ref("a")) is None and rig.p.holder(ref("b")) is None
    assert not rig.p.prepared and not rig.store.prepared


def test_cancel_releases_and_changes_nothing() -> None:
    rig = Rig({"a": 1})
    rig.prepare(ts(10), add(0, "p1", "a", 5))
    r = rig.decide(ts(10), commit=False)
    assert r.persist == (DropPrepared(txn_id=txn_id_of(ts(10))),)
    assert rig.store.value(ref("a")) == 1 and rig.p.holder(ref("a")) is None
    assert only_vote(rig.prepare(ts(11), add(0, "p1", "a", 1))).ok  # free again


def test_a_decision_for_a_transaction_not_held_is_acknowledged_and_remembered() -> None:
    rig = Rig()
    r = rig.decide(ts(10), commit=False)  # overtook its own Prepare
    assert r.persist == () and isinstance(r.messages[0], DecisionAck)
    late = only_vote(rig.prepare(ts(10), put(0, "p1", "a", 1)))
    assert not late.ok and late.reasons[0][1].code is ReasonCode.TRANSACTION_CONFLICT
    assert not rig.p.prepared


def test_a_late_prepare_of_a_committed_transaction_never_applies_it_twice() -> None:
    """After a restart the participant has forgotten its recent decisions; timestamp order
    alone refuses the duplicate (the item's write timestamp is the transaction's)."""
    rig = Rig({"a": 1})
    rig.prepare(ts(10), add(0, "p1", "a", 5))
    rig.decide(ts(10), commit=True)
    rig.restart()
    vote = only_vote(rig.prepare(ts(10), add(0, "p1", "a", 5)))
    assert not vote.ok and vote.reasons[0][1].code is ReasonCode.TRANSACTION_CONFLICT
    rig.decide(ts(10), commit=True)
    assert rig.store.value(ref("a")) == 6


def test_too_many_prepared_transactions_are_voted_down_as_throttling() -> None:
    rig = Rig(config=TxnConfig(retransmit_ms=10, prepare_timeout_ms=100, recovery_after_ms=300,
                               ledger_stale_ms=600, prepared_max=1))
    assert only_vote(rig.prepare(ts(10), put(0, "p1", "a", 1))).ok
    vote = only_vote(rig.prepare(ts(11), put(0, "p1", "b", 1)))
    assert not vote.ok and vote.reasons[0][1].code is ReasonCode.THROTTLING_ERROR


# -- plain writes -----------------------------------------------------------------------------------


def test_a_plain_write_on_a_prepared_item_is_refused_as_a_conflict_and_admitted_after() -> None:
    rig = Rig({"a": 1})
    rig.prepare(ts(10), add(0, "p1", "a", 5))
    rig.p.write(7, put(0, "p1", "a", 100), rig.now)
    r = rig.ready()
    assert r.persist == () and len(r.replies) == 1
    assert not r.replies[0].ok and r.replies[0].reason.code is ReasonCode.TRANSACTION_CONFLICT
    rig.decide(ts(10), commit=True)
    rig.p.write(8, put(0, "p1", "a", 100), rig.now)
    r = rig.ready()
    assert r.persist == (PutItem(ref=ref("a"), effect=100),) and r.replies[0].ok
    a = rig.store.read(ref("a"))
    assert a.item == 100 and a.write_ts == ts(10)  # a plain write keeps the write timestamp


def test_a_plain_write_reports_its_failed_condition() -> None:
    rig = Rig({"a": 1})
    rig.p.write(1, TxnAction(index=0, partition="p1", ref=ref("a"), kind=ActionKind.DELETE,
                             payload={"if": 2}), rig.now)
    r = rig.ready()
    assert r.persist == () and r.replies[0].reason.code is ReasonCode.CONDITIONAL_CHECK_FAILED
    assert r.replies[0].reason.item is None  # not asked for


# -- the two-phase read -------------------------------------------------------------------------------


def test_reads_fail_on_locked_items_and_verify_checks_versions_and_locks() -> None:
    rig = Rig({"a": 1, "b": 2})
    refs = (ref("a"), ref("b"))
    rig.p.step(ReadItems(src="c1", dst="p1", txn_id="r1", attempt=1, refs=refs), rig.now)
    (got,) = rig.ready().messages
    assert isinstance(got, ItemsRead) and got.ok and [i.item for i in got.items] == [1, 2]
    versions = tuple(i.version for i in got.items)

    def verify() -> Verified:
        rig.p.step(Verify(src="c1", dst="p1", txn_id="r1", attempt=1, refs=refs,
                          versions=versions), rig.now)
        (v,) = rig.ready().messages
        assert isinstance(v, Verified)
        return v

    assert verify().ok
    rig.prepare(ts(10), add(0, "p1", "b", 1))
    assert verify().conflicts == (ref("b"),)
    rig.p.step(ReadItems(src="c1", dst="p1", txn_id="r2", attempt=1, refs=refs), rig.now)
    (locked,) = rig.ready().messages
    assert isinstance(locked, ItemsRead) and not locked.ok and locked.conflicts == (ref("b"),)
    rig.decide(ts(10), commit=False)
    assert verify().ok  # cancelled: the version did not move
    rig.p.write(1, put(0, "p1", "a", 9), rig.now)
    rig.ready()
    assert verify().conflicts == (ref("a"),)  # a plain write changes the version


# -- recovery timers and restarts -------------------------------------------------------------------


def recover_requests(rig: Rig, until: int, step: int = 10) -> list[tuple[int, str]]:
    out = []
    while rig.now < until:
        rig.now += step
        rig.p.tick(rig.now)
        out += [(rig.now, m.dst) for m in rig.ready().messages if isinstance(m, RecoverRequest)]
    return out


def test_a_transaction_held_too_long_is_sent_to_recovery_first_to_its_coordinator() -> None:
    rig = Rig()
    rig.prepare(ts(10), put(0, "p1", "a", 1), coordinator="c5")
    asks = recover_requests(rig, until=rig.now + 700)
    start = 1
    assert [t - start for t, _ in asks] == [300, 400, 500, 600, 700][: len(asks)] and len(asks) == 5
    assert asks[0][1] == "c5" and all(dst in ("c8", "c9") for _, dst in asks[1:])
    rig.decide(ts(10), commit=False)
    assert recover_requests(rig, until=rig.now + 500) == []


def test_a_restarted_participant_holds_its_durable_prepared_transactions() -> None:
    rig = Rig({"a": 1})
    rig.prepare(ts(10), add(0, "p1", "a", 5))
    rig.restart()
    assert rig.p.holder(ref("a")) == txn_id_of(ts(10))
    vote = only_vote(rig.prepare(ts(11), add(0, "p1", "a", 1)))
    assert not vote.ok
    assert only_vote(rig.prepare(ts(10), add(0, "p1", "a", 5))).ok  # still yes to its own
    start = rig.now
    asks = recover_requests(rig, until=start + 310)
    assert asks and asks[0][0] - start >= 300  # the timer restarts with the process
    rig.decide(ts(10), commit=True)
    assert rig.store.value(ref("a")) == 6


def test_inputs_are_validated() -> None:
    rig = Rig()
    with pytest.raises(ValueError, match="stepped into"):
        rig.p.step(Decision(src="c1", dst="p2", txn_id="x", commit=True), rig.now)
    rig.p.tick(100)
    with pytest.raises(ValueError, match="backwards"):
        rig.p.tick(50)
    with pytest.raises(ValueError, match="given to"):
        rig.p.write(1, put(0, "p2", "a", 1), 200)


def test_no_reason_is_the_default_and_carries_nothing() -> None:
    assert NO_REASON.to_dynamo() == {"Code": "None"} and not NO_REASON.failed
