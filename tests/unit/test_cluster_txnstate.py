"""The transaction jobs a cluster partition leader runs (``cluster.txnstate``): participant and
ledger state as replicated partition data.

A leader and a follower ``PartitionStore`` share a list standing in for the Paxos log: every
job is evaluated on the leader into a command that both apply. What is checked: a prepared
transaction locks its items for plain writes, single-partition transactions and reads, on every
replica alike; a commit applies the effects with a new version and the transaction's write
timestamp; a failed condition votes no with its reason (and the old item for ALL_OLD); the
ledger's ClientRequestToken answers (in progress, mismatch, replay, released by recovery).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from test_dataplane_support import table_def

import quorumdb.api.ops.transactions  # noqa: F401 - registers the "transact" write recipe
from quorumdb.cluster import txnstate
from quorumdb.core.txn import (
    ActionKind,
    Decision,
    ItemsRead,
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerStatus,
    Prepare,
    ReadItems,
    Timestamp,
    TxnAction,
    TxnConfig,
    TxnState,
    Vote,
    from_wire,
)
from quorumdb.db.contract import WriteOp
from quorumdb.db.replicated import PartitionStore
from quorumdb.db.writer import WriteBatch, WriterState
from quorumdb.errors import TransactionCanceledError, TransactionConflictError
from quorumdb.storage.memory import MemoryEngine
from quorumdb.storage.prefixed import PrefixedEngine

T = dataclasses.replace(table_def(range_key=False), table_id=3)
CFG = TxnConfig()
P = "g1"


class Replicas:
    def __init__(self) -> None:
        self.leader, self.follower = self._store(b"a"), self._store(b"b")
        self.index = 0

    @staticmethod
    def _store(name: bytes) -> PartitionStore:
        state = WriterState()
        state.item_guard, state.item_written = txnstate.guard, txnstate.bump
        return PartitionStore(PrefixedEngine(MemoryEngine(), name + b"/"), state, id_prefix=name + b":")

    def run(self, job: Callable[[WriteBatch], Any]) -> Any:
        outcomes, cmd = self.leader.evaluate([job], T)
        self.index += 1
        assert self.leader.apply(self.index, cmd.encode())
        assert self.follower.apply(self.index, cmd.encode())
        ok, value = outcomes[0]
        if not ok:
            raise value
        return value

    def step(self, msg: Any) -> list[Any]:
        out = self.run(txnstate.participant_job(P, msg, 1000, CFG))
        return [from_wire(m) for m in out[0]]

    def item(self, pk: str, store: PartitionStore | None = None) -> Any:
        from quorumdb.db.partition import HASH_SPACE, Partition

        part = Partition(table_id=T.table_id, hash_lo=0, hash_hi=HASH_SPACE, engine=(store or self.leader).engine)
        rec = part.get(T, {"pk": {"S": pk}})
        return None if rec is None else rec.item


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def action(index: int, kind: ActionKind, spec: dict[str, Any]) -> TxnAction:
    body = {"TableName": T.name, **spec}
    k = spec.get("Key") or {"pk": spec["Item"]["pk"]}
    return TxnAction(index=index, partition=P, ref=txnstate.item_ref(T, k), kind=kind,
                     payload=[["transact", {kind.value: body}], k], return_item_on_failure=True)


def prepare(txn: str, ms: int, *actions: TxnAction) -> Prepare:
    ts = Timestamp(ms=ms, seq=0, node="c1")
    return Prepare(src="c1", dst=P, txn_id=txn, ts=ts, participants=(P, "g2"), actions=actions)


def plain_put(pk: str, n: int) -> Callable[[WriteBatch], Any]:
    item = {"pk": {"S": pk}, "n": {"N": str(n)}}
    return lambda b: b.run_write(WriteOp(table=T, key=key(pk), mutate=lambda old: item))


def test_a_prepared_transaction_holds_its_items_until_its_commit_on_every_replica() -> None:
    r = Replicas()
    r.run(plain_put("a", 1))
    r.run(plain_put("b", 5))
    add = action(0, ActionKind.UPDATE, {"Key": key("a"), "UpdateExpression": "ADD n :d",
                                        "ExpressionAttributeValues": {":d": {"N": "10"}}})
    chk = action(1, ActionKind.CHECK, {"Key": key("b"), "ConditionExpression": "n = :v",
                                       "ExpressionAttributeValues": {":v": {"N": "5"}}})
    (vote,) = r.step(prepare("t1", 50, add, chk))
    assert isinstance(vote, Vote) and vote.ok
    # Both replicas hold the prepared record: a new leader would rebuild the participant from it.
    for store in (r.leader, r.follower):
        with store.engine.snapshot() as snap:
            assert [p.txn_id for p in txnstate.prepared_records(snap)] == ["t1"]
    # A plain write, a single-partition transaction and a read all meet the lock.
    with pytest.raises(TransactionConflictError):
        r.run(plain_put("a", 2))
    with pytest.raises(TransactionConflictError):
        r.run(plain_put("b", 2))  # a ConditionCheck locks its item too
    single = WriteOp(table=T, key=key("b"), mutate=lambda old: old)
    with pytest.raises(TransactionCanceledError) as cancelled:
        r.run(lambda b: b.run_transaction([single]))
    assert cancelled.value.reasons[0]["Code"] == "TransactionConflict"
    (read,) = r.step(ReadItems(src="c1", dst=P, txn_id="r1", attempt=1, refs=(add.ref,)))
    assert isinstance(read, ItemsRead) and not read.ok
    # The commit applies the effect and stamps the item; then the item is free again.
    (ack,) = r.step(Decision(src="c1", dst=P, txn_id="t1", commit=True))
    assert ack.commit
    assert r.item("a") == {"pk": {"S": "a"}, "n": {"N": "11"}} == r.item("a", r.follower)
    (read,) = r.step(ReadItems(src="c1", dst=P, txn_id="r2", attempt=1, refs=(add.ref, chk.ref)))
    assert isinstance(read, ItemsRead) and read.ok
    a, b = read.items
    assert a.write_ts == Timestamp(ms=50, seq=0, node="c1")
    assert b.write_ts == Timestamp(ms=0, seq=0, node="")  # a check does not move the timestamp
    version = a.version
    r.run(plain_put("a", 3))
    (read,) = r.step(ReadItems(src="c1", dst=P, txn_id="r3", attempt=1, refs=(add.ref,)))
    assert read.items[0].version == version + 1 and read.items[0].write_ts == a.write_ts
    # Timestamp order: an older transaction may not write the item any more.
    (late,) = r.step(prepare("t0", 40, add))
    assert not late.ok and late.reasons[0][1].code.value == "TransactionConflict"


def test_a_failed_condition_votes_no_with_the_old_item_when_asked() -> None:
    r = Replicas()
    r.run(plain_put("a", 1))
    put = action(0, ActionKind.PUT, {"Item": {"pk": {"S": "a"}, "n": {"N": "9"}},
                                     "ConditionExpression": "attribute_not_exists(pk)",
                                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    hidden = action(1, ActionKind.DELETE, {"Key": key("z"), "ConditionExpression": "attribute_exists(pk)"})
    (vote,) = r.step(prepare("t1", 50, put, hidden))
    assert not vote.ok
    reasons = dict(vote.reasons)
    assert reasons[0].to_dynamo() == {"Code": "ConditionalCheckFailed",
                                      "Message": "The conditional request failed",
                                      "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}
    assert "Item" not in reasons[1].to_dynamo()
    r.run(plain_put("a", 2))  # nothing was locked


def ledger(r: Replicas, req: Any, now_ms: int = 1000) -> LedgerAnswer:
    answer = from_wire(r.run(txnstate.ledger_job(req, now_ms, CFG)))
    assert isinstance(answer, LedgerAnswer)
    return answer


def begin(txn: str, ms: int, token: str, fp: str) -> LedgerBegin:
    return LedgerBegin(src="c1", dst="ledger", txn_id=txn, ts=Timestamp(ms=ms, seq=0, node="c1"),
                       participants=("g1",), token=token, fingerprint=fp)


def test_the_ledger_keeps_client_request_tokens_across_requests() -> None:
    r = Replicas()
    assert ledger(r, begin("t1", 1, "tok", "fp")).status is LedgerStatus.BEGUN
    assert ledger(r, begin("t2", 2, "tok", "fp")).status is LedgerStatus.IN_PROGRESS
    assert ledger(r, begin("t3", 3, "tok", "other")).status is LedgerStatus.MISMATCH
    decided = ledger(r, LedgerDecide(src="c1", dst="ledger", txn_id="t1", decision=TxnState.COMMITTED,
                                     participants=("g1",)))
    assert decided.record is not None and decided.record.state is TxnState.COMMITTED
    # A recovery's cancel cannot overturn the commit (compare-and-set).
    again = ledger(r, LedgerDecide(src="c2", dst="ledger", txn_id="t1", decision=TxnState.CANCELLED,
                                   participants=("g1",), by_recovery=True))
    assert again.record is not None and again.record.state is TxnState.COMMITTED
    ledger(r, LedgerComplete(src="c1", dst="ledger", txn_id="t1"))
    # The records live in the partition's replicated state: the follower has them too.
    for store in (r.leader, r.follower):
        with store.engine.snapshot() as snap:
            assert txnstate.open_records(snap) == []
    assert ledger(r, begin("t4", 4, "tok", "fp"), 2000).status is LedgerStatus.IN_PROGRESS  # no outcome
    # Another transaction, without a token, completes too.
    other = LedgerBegin(src="c1", dst="ledger", txn_id="t9", ts=Timestamp(ms=9, seq=0, node="c1"),
                        participants=("g1",))
    ledger(r, other)
    ledger(r, LedgerDecide(src="c1", dst="ledger", txn_id="t9", decision=TxnState.CANCELLED,
                           participants=("g1",)))
    ledger(r, LedgerComplete(src="c1", dst="ledger", txn_id="t9"))
    # Past the token window the token starts afresh (and t1's record, past its retention, goes).
    late = 1000 + CFG.token_ttl_ms + 1
    assert ledger(r, begin("t5", 5, "tok", "fp"), late).status is LedgerStatus.BEGUN
    assert ledger(r, LedgerComplete(src="c1", dst="ledger", txn_id="t1"), late).record is None
    # The sweep forgets the other completed record.
    assert r.run(txnstate.expire_job(late, CFG)) == 1
    assert ledger(r, LedgerComplete(src="c1", dst="ledger", txn_id="t9"), late).record is None
    assert r.run(txnstate.expire_job(late, CFG)) == 0


def test_a_token_whose_transaction_recovery_cancelled_is_released() -> None:
    r = Replicas()
    assert ledger(r, begin("t1", 1, "tok", "fp")).status is LedgerStatus.BEGUN
    with r.leader.engine.snapshot() as snap:
        assert [x.txn_id for x in txnstate.open_records(snap)] == ["t1"]
    ledger(r, LedgerDecide(src="c2", dst="ledger", txn_id="t1", decision=TxnState.CANCELLED,
                           participants=("g1",), by_recovery=True))
    assert ledger(r, begin("t2", 2, "tok", "fp")).status is LedgerStatus.BEGUN
    assert ledger(r, begin("t3", 3, "tok", "fp")).status is LedgerStatus.IN_PROGRESS
