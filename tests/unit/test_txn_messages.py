"""The transaction vocabulary: every message survives to_wire -> msgpack -> from_wire, values
validate when built, and the DynamoDB-facing shapes (CancellationReasons, error types) are right."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from quorumdb.core.txn import (
    NO_REASON,
    ZERO_TS,
    ActionKind,
    CancellationReason,
    Decision,
    DecisionAck,
    ItemRef,
    ItemsRead,
    ItemVersion,
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerRecord,
    LedgerStatus,
    Message,
    Prepare,
    PreparedTxn,
    ReadItems,
    ReasonCode,
    RecoverRequest,
    Timestamp,
    TxnAction,
    TxnResult,
    TxnState,
    TxnStatus,
    Verified,
    Verify,
    Vote,
    from_wire,
    to_wire,
    txn_id_of,
)

TS = Timestamp(ms=5, seq=2, node="c1")
A = ItemRef(table="t", key="a")
B = ItemRef(table="u", key="\x00b")
CCF = CancellationReason(code=ReasonCode.CONDITIONAL_CHECK_FAILED, message="no", item={"k": 1})
ENV: dict[str, Any] = {"src": "c1", "dst": "p1", "txn_id": txn_id_of(TS)}
RECORD = LedgerRecord(txn_id="x", state=TxnState.CANCELLED, participants=("p1",), ts=TS,
                      coordinator="c1", token="tok", fingerprint="ff",
                      outcome=TxnResult(txn_id="x", status=TxnStatus.CANCELLED, reasons=(CCF,)),
                      begun_ms=1, decided_ms=2, completed_ms=3)

MESSAGES: list[Message] = [
    Prepare(**ENV, ts=TS, participants=("p1", "p2"), actions=(
        TxnAction(index=0, partition="p1", ref=A, kind=ActionKind.PUT, payload={"put": [1, b"x"]},
                  return_item_on_failure=True),
        TxnAction(index=3, partition="p1", ref=B, kind=ActionKind.CHECK))),
    Vote(**ENV, ok=False, reasons=((0, NO_REASON), (3, CCF)), seen_ts=TS),
    Vote(**ENV, ok=True, reasons=((0, NO_REASON),)),
    Decision(**ENV, commit=True),
    DecisionAck(**ENV, commit=False),
    ReadItems(**ENV, attempt=2, refs=(A, B)),
    ItemsRead(**ENV, attempt=2, ok=True, items=(ItemVersion(item={"v": 1}, version=4, write_ts=TS),
                                                 ItemVersion(item=None, version=0))),
    ItemsRead(**ENV, attempt=1, ok=False, conflicts=(B,)),
    Verify(**ENV, attempt=1, refs=(A,), versions=(4,)),
    Verified(**ENV, attempt=1, ok=False, conflicts=(A,)),
    RecoverRequest(**ENV, participants=("p1",)),
    LedgerBegin(**ENV, ts=TS, participants=("p1",), token="tok", fingerprint="ab"),
    LedgerDecide(**ENV, decision=TxnState.COMMITTED, participants=("p1",),
                 outcome=TxnResult(txn_id="x", status=TxnStatus.SUCCESS)),
    LedgerComplete(**ENV),
    LedgerAnswer(**ENV, op="decide", status=LedgerStatus.DECIDED, record=RECORD),
    LedgerAnswer(**ENV, op="begin", status=LedgerStatus.BUSY),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_msgpack(msg: Message) -> None:
    raw = msgpack.unpackb(msgpack.packb(to_wire(msg), use_bin_type=True), raw=False)
    assert from_wire(raw) == msg


def test_every_message_type_is_covered_and_tags_are_distinct() -> None:
    from quorumdb.core.txn import messages

    assert {type(m) for m in MESSAGES} == set(messages._TAGS)
    assert len(set(messages._TAGS.values())) == len(messages._TAGS)


def test_records_round_trip() -> None:
    assert LedgerRecord.from_wire(RECORD.to_wire()) == RECORD
    p = PreparedTxn(txn_id="x", ts=TS, coordinator="c1", participants=("p1", "p2"),
                    writes=((A, {"v": 1}),), checks=(B,))
    assert PreparedTxn.from_wire(msgpack.unpackb(msgpack.packb(p.to_wire()), raw=False)) == p


@pytest.mark.parametrize("raw", [
    None, [], [99, "a", "b", "c"], [4, "a", "b", "c"], [4, "a", "b", "c", "yes"],
    [1, "c1", "p1", "t", [5, 2, "c1"], ["p1"], []],  # a Prepare without actions
    [2, "p1", "c1", "t", True, [[0, ["ConditionalCheckFailed", "", None]]], [0, 0, ""]],
])
def test_malformed_wire_messages_are_refused(raw: Any) -> None:
    with pytest.raises(ValueError):
        from_wire(raw)


@pytest.mark.parametrize("build", [
    lambda: Timestamp(ms=1, seq=0, node=""),
    lambda: Timestamp(ms=-1, seq=0, node="c"),
    lambda: txn_id_of(ZERO_TS),
    lambda: CancellationReason(code=ReasonCode.NONE, message="x"),
    lambda: TxnResult(txn_id="x", status=TxnStatus.CANCELLED, reasons=(NO_REASON,)),
    lambda: TxnResult(txn_id="x", status=TxnStatus.SUCCESS, reasons=(CCF,)),
    lambda: Vote(**ENV, ok=True, reasons=((0, CCF),)),
    lambda: Prepare(**ENV, ts=TS, participants=("p1",), actions=(
        TxnAction(index=0, partition="p2", ref=A, kind=ActionKind.PUT),)),
    lambda: Prepare(**ENV, ts=TS, participants=("p1",), actions=(
        TxnAction(index=0, partition="p1", ref=A, kind=ActionKind.PUT),
        TxnAction(index=1, partition="p1", ref=A, kind=ActionKind.DELETE))),
    lambda: ItemsRead(**ENV, attempt=1, ok=True, conflicts=(A,)),
    lambda: Verify(**ENV, attempt=1, refs=(A, B), versions=(1,)),
    lambda: PreparedTxn(txn_id="x", ts=TS, coordinator="c", participants=("p",),
                        writes=((A, 1),), checks=(A,)),
    lambda: LedgerRecord(txn_id="x", state=TxnState.PREPARING, participants=(), decided_ms=3),
])
def test_values_validate_when_built(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_timestamps_order_by_time_then_sequence_then_node() -> None:
    ts = [Timestamp(ms=2, seq=0, node="a"), Timestamp(ms=1, seq=5, node="z"),
          Timestamp(ms=1, seq=5, node="b"), ZERO_TS]
    assert sorted(ts) == [ZERO_TS, ts[2], ts[1], ts[0]]
    assert str(ts[0]) == "2.0@a" == txn_id_of(ts[0])


def test_dynamo_shapes() -> None:
    res = TxnResult(txn_id="x", status=TxnStatus.CANCELLED, reasons=(NO_REASON, CCF))
    assert res.dynamo_reasons() == [
        {"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "no", "Item": {"k": 1}}]
    assert {s: s.error_type for s in TxnStatus} == {
        TxnStatus.SUCCESS: None,
        TxnStatus.CANCELLED: "TransactionCanceledException",
        TxnStatus.IN_PROGRESS: "TransactionInProgressException",
        TxnStatus.PARAMETER_MISMATCH: "IdempotentParameterMismatchException",
        TxnStatus.UNAVAILABLE: "InternalServerError",
    }
    assert [k.value for k in ActionKind] == ["ConditionCheck", "Put", "Update", "Delete"]
    assert not ActionKind.CHECK.writes and ActionKind.DELETE.writes
