"""Transaction state inside a partition's replicated store: the jobs that run the transaction
cores (``quorumdb.core.txn``) on a partition leader, and the keys they keep.

Every piece of transaction state is ordinary partition data, written by the leader's write jobs
(``cluster.dataplane.PartitionReplica.run``) as raw effects that every replica applies from the
partition's Paxos log (``db.replicated``). Nothing lives only in a leader's memory, so a new
leader, a restarted node or a replica caught up by snapshot has it all:

* participant (every partition): the prepared record of each transaction voted yes here, a lock
  per item it holds, and per item its version (bumped by every write of the item, whatever the
  path) and the write timestamp of the last transaction that wrote it (kept when it is deleted);
* ledger (the partitions of the hidden ledger table): one ``LedgerRecord`` per transaction, a
  ClientRequestToken index, and two small indexes (unfinished records, completed records by
  completion time) for the recovery sweep and expiry.

A job is a pure function of the state it is evaluated on (applied state plus the effects of the
commands in flight before it): it rebuilds the core from that state, steps one message, writes
the core's records as effects and returns the core's messages. The leader may evaluate a job
again when the command it produced was not committed (leadership moved): the job then simply
runs again on the new state, and nothing it returned was sent (the replica answers only once the
command is applied, i.e. once the records are durable: the cores' "persist before you send").

Plain writes meet the lock through ``guard`` (a ``WriterState.item_guard`` hook that every item
write of the partition runs, on the same state), which refuses with TransactionConflictException,
as DynamoDB does; ``bump`` (``WriterState.item_written``) moves the item's version.

This module does no I/O of its own and never reads a clock: time comes in as ``now_ms``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from quorumdb.core.txn import (
    ZERO_TS,
    ActionKind,
    CommitPrepared,
    DropPrepared,
    Evaluation,
    ItemRef,
    ItemVersion,
    LedgerBegin,
    LedgerOp,
    LedgerRecord,
    Message,
    Participant,
    ParticipantRecord,
    Prepare,
    PreparedTxn,
    PutItem,
    PutPrepared,
    ReasonCode,
    Timestamp,
    TxnAction,
    TxnConfig,
    TxnId,
    TxnLedger,
    TxnState,
    to_wire,
)
from quorumdb.db import recipes
from quorumdb.db.contract import WriteOp
from quorumdb.db.records import HEADER_SIZE, item_prefix, loads, record_size
from quorumdb.db.writer import Staged, WriteBatch, apply_write
from quorumdb.errors import (
    ConditionalCheckFailedError,
    DuplicateItemError,
    DynamoError,
    ItemCollectionSizeLimitExceededError,
    ProvisionedThroughputExceededError,
    TransactionConflictError,
)
from quorumdb.model.keys import encode_primary_key
from quorumdb.model.schema import TableDef
from quorumdb.model.types import Item, Key
from quorumdb.storage.engine import ReadTxn, prefix_successor

__all__ = [
    "PREFIX",
    "item_ref",
    "guard",
    "bump",
    "participant_job",
    "ledger_job",
    "expire_job",
    "prepared_records",
    "open_records",
]

PREFIX = b"\x00txn/"
_ITEM = PREFIX + b"v/"  # + item key -> [version, write_ts]
_LOCK = PREFIX + b"l/"  # + item key -> id of the transaction prepared on it
_PREPARED = PREFIX + b"p/"  # + txn id -> PreparedTxn
_RECORD = PREFIX + b"r/"  # ledger: + txn id -> LedgerRecord
_TOKEN = PREFIX + b"t/"  # ledger: + ClientRequestToken -> the id of the txn holding it
_OPEN = PREFIX + b"u/"  # ledger: + txn id, while the record is not completed
_DONE = PREFIX + b"c/"  # ledger: + u64 completed_ms + txn id, once completed

CONFLICT = "Transaction is ongoing for the item"
_NOT_FOUND = "Requested resource not found"
_NO_LIMIT = 1 << 62
_RNG = random.Random(0)  # the participant draws only when it ticks, which a job never does


def _pack(v: Any) -> bytes:
    return msgpack.packb(v, use_bin_type=True)


def _unpack(b: bytes | memoryview) -> Any:
    return msgpack.unpackb(bytes(b), raw=False, strict_map_key=False)


def item_ref(table: TableDef, key: Key) -> ItemRef:
    """The core's name of an item: its table and its encoded primary key (hex)."""
    return ItemRef(table=table.name, key=encode_primary_key(table.key_schema, key).hex())


def _item_key(table: TableDef, ref: ItemRef) -> bytes:
    return item_prefix(table.table_id) + bytes.fromhex(ref.key)


def _meta(raw: bytes | None) -> tuple[int, Timestamp]:
    if raw is None:
        return 0, ZERO_TS
    version, ts = _unpack(raw)
    return int(version), Timestamp.from_wire(ts)


# -- hooks every item write of a partition runs ----------------------------------------------------


def guard(st: Staged, kb: bytes) -> None:
    """Refuse a write of an item that a prepared transaction holds."""
    if st.get(_LOCK + kb) is not None:
        raise TransactionConflictError(CONFLICT)


def bump(st: Staged, kb: bytes) -> None:
    """A write changed the item: a new version (its write timestamp stays)."""
    version, ts = _meta(st.get(_ITEM + kb))
    st.put(_ITEM + kb, _pack([version + 1, ts.to_wire()]))


# -- the participant ---------------------------------------------------------------------------------


class _Items:
    """``ItemStore`` over the state a job is evaluated on."""

    def __init__(self, batch: WriteBatch) -> None:
        self._batch = batch

    def read(self, ref: ItemRef) -> ItemVersion:
        table = self._batch.catalog.by_name.get(ref.table)
        if table is None:
            return ItemVersion(item=None, version=0)
        kb = _item_key(table, ref)
        rec = self._batch.txn.get(kb)
        version, ts = _meta(self._batch.txn.get(_ITEM + kb))
        return ItemVersion(item=None if rec is None else bytes(rec), version=version, write_ts=ts)


def _decode(rec: Any) -> Item | None:
    if rec is None:
        return None
    item: Item = loads(memoryview(rec)[HEADER_SIZE:])
    return item


def _const(new: Item | None) -> Callable[[Item | None], Item | None]:
    return lambda _old: new


class _Evaluator:
    """Evaluates an action from its recipe (``[recipe, key]``) against the current item.

    A passed write carries the effect ``[key, new item, old size, new size, index writes, old
    item (tables with indexes), collection size]``: the commit applies the new item; the sizes
    are what ConsumedCapacity is counted from. The write is also tried (never kept) on the
    current state, so that a commit never meets a limit the prepare did not check."""

    def __init__(self, batch: WriteBatch) -> None:
        self._batch = batch

    def evaluate(self, action: TxnAction, current: ItemVersion, txn_id: TxnId | None) -> Evaluation:
        batch = self._batch
        table = batch.catalog.by_name.get(action.ref.table)
        if table is None:
            return Evaluation.failed(ReasonCode.VALIDATION_ERROR, _NOT_FOUND)
        try:
            recipe, key = action.payload
            mutate = recipes.rebuild(table, recipe, key)
            old = _decode(current.item)
            new = mutate(old)
            if action.kind is ActionKind.CHECK:
                return Evaluation.passed()
            res = apply_write(batch, batch.stage(), WriteOp(table=table, key=key, mutate=_const(new),
                                                            constant=True))
        except ConditionalCheckFailedError as e:
            return Evaluation.failed(ReasonCode.CONDITIONAL_CHECK_FAILED, e.message, e.item)
        except DuplicateItemError as e:
            return Evaluation.failed(ReasonCode.DUPLICATE_ITEM, e.message)
        except ItemCollectionSizeLimitExceededError as e:
            return Evaluation.failed(ReasonCode.ITEM_COLLECTION_SIZE_LIMIT_EXCEEDED, e.message)
        except TransactionConflictError as e:
            return Evaluation.failed(ReasonCode.TRANSACTION_CONFLICT, e.message)
        except ProvisionedThroughputExceededError as e:  # e.g. a global index's backlog is full
            return Evaluation.failed(ReasonCode.PROVISIONED_THROUGHPUT_EXCEEDED, e.message)
        except DynamoError as e:
            return Evaluation.failed(ReasonCode.VALIDATION_ERROR, e.message)
        return Evaluation.passed([key, new, res.old_size, res.new_size, res.index_writes,
                                  old if table.indexes else None, res.collection_size])


def _table_of(batch: WriteBatch, ref: ItemRef) -> TableDef:
    table = batch.catalog.by_name.get(ref.table)
    assert table is not None, f"a prepared item of an unknown table {ref.table}"
    return table


def _persist(batch: WriteBatch, rec: ParticipantRecord) -> None:
    """One participant record as effects of the job's command."""
    st = batch.stage()
    if isinstance(rec, PutPrepared):
        txn = rec.txn
        st.put(_PREPARED + txn.txn_id.encode(), _pack(txn.to_wire()))
        for ref in txn.refs:
            st.put(_LOCK + _item_key(_table_of(batch, ref), ref), txn.txn_id.encode())
    elif isinstance(rec, CommitPrepared | DropPrepared):
        raw = st.get(_PREPARED + rec.txn_id.encode())
        assert raw is not None, f"a decision for {rec.txn_id}, which is not prepared here"
        held = PreparedTxn.from_wire(_unpack(raw))
        st.delete(_PREPARED + rec.txn_id.encode())
        for ref in held.refs:
            st.delete(_LOCK + _item_key(_table_of(batch, ref), ref))
        if isinstance(rec, CommitPrepared):
            state = batch.state
            limit, state.collection_limit = state.collection_limit, _NO_LIMIT  # checked at prepare
            try:
                for ref, effect in rec.writes:
                    table = _table_of(batch, ref)
                    key, new = effect[0], effect[1]
                    apply_write(batch, st, WriteOp(table=table, key=key, mutate=_const(new), constant=True))
                    kb = _item_key(table, ref)
                    version, _ts = _meta(st.get(_ITEM + kb))
                    st.put(_ITEM + kb, _pack([version, rec.ts.to_wire()]))
            finally:
                state.collection_limit = limit
    else:
        assert not isinstance(rec, PutItem), "plain writes take the partition's own path"
    st.flush()


def _sizes(batch: WriteBatch, part: Participant, msg: Prepare) -> list[list[Any]]:
    """``[index, old size, new size, index writes, old item, new item, collection size]`` per
    action of a Prepare this participant holds (for ConsumedCapacity), else nothing."""
    held = part.prepared.get(msg.txn_id)
    if held is None:
        return []
    effects = {ref: e for ref, e in held.writes}
    items = _Items(batch)
    out: list[list[Any]] = []
    for a in msg.actions:
        e = effects.get(a.ref)
        if e is not None:
            out.append([a.index, e[2], e[3], e[4], e[5], e[1], e[6]])
            continue
        rec = items.read(a.ref).item
        size = 0 if rec is None else record_size(rec)
        table = batch.catalog.by_name.get(a.ref.table)
        ix: dict[str, int] | None = {} if table is not None and table.indexes and rec is not None else None
        out.append([a.index, size, size, ix, None, None, None])
    return out


def _prepared_in(txn: ReadTxn) -> Iterator[PreparedTxn]:
    for _k, v in txn.iterate(_PREPARED, prefix_successor(_PREPARED)):
        if v is not None:
            yield PreparedTxn.from_wire(_unpack(v))


def participant_job(partition: str, msg: Message, now_ms: int, config: TxnConfig
                    ) -> Callable[[WriteBatch], list[Any]]:
    """The job that steps ``msg`` into partition ``partition``'s participant: returns
    ``[messages (wire), sizes]``; the messages may leave once the job's command is applied."""

    def job(batch: WriteBatch) -> list[Any]:
        part = Participant(partition, store=_Items(batch), evaluator=_Evaluator(batch), config=config,
                           rng=_RNG, prepared=list(_prepared_in(batch.txn)))
        part.step(msg, now_ms)
        ready = part.ready()
        for rec in ready.persist:
            _persist(batch, rec)
        sizes = _sizes(batch, part, msg) if isinstance(msg, Prepare) else []
        return [[to_wire(m) for m in ready.messages], sizes]

    return job


def prepared_records(snap: ReadTxn) -> list[PreparedTxn]:
    """The transactions prepared on a partition (its applied state), for the recovery sweep."""
    return list(_prepared_in(snap))


# -- the ledger ---------------------------------------------------------------------------------------


def _load(st: Staged, txn_id: TxnId) -> LedgerRecord | None:
    raw = st.get(_RECORD + txn_id.encode())
    return None if raw is None else LedgerRecord.from_wire(_unpack(raw))


def _done_key(completed_ms: int, txn_id: TxnId) -> bytes:
    return _DONE + completed_ms.to_bytes(8, "big") + txn_id.encode()


def _store_record(st: Staged, before: LedgerRecord | None, after: LedgerRecord | None) -> None:
    if after == before:
        return
    if after is None:
        assert before is not None
        tid = before.txn_id.encode()
        st.delete(_RECORD + tid)
        st.delete(_OPEN + tid)
        if before.completed_ms is not None:
            st.delete(_done_key(before.completed_ms, before.txn_id))
        return
    tid = after.txn_id.encode()
    st.put(_RECORD + tid, _pack(after.to_wire()))
    if after.completed_ms is None:
        st.put(_OPEN + tid, b"")
        return
    st.delete(_OPEN + tid)
    if before is not None and before.completed_ms is not None and before.completed_ms != after.completed_ms:
        st.delete(_done_key(before.completed_ms, before.txn_id))
    st.put(_done_key(after.completed_ms, after.txn_id), b"")


def _claims(rec: LedgerRecord, token: str) -> bool:
    return rec.token == token and not (rec.by_recovery and rec.state is TxnState.CANCELLED)


def ledger_job(req: LedgerOp, now_ms: int, config: TxnConfig) -> Callable[[WriteBatch], list[Any]]:
    """The job that applies one ledger request: ``TxnLedger.apply`` over the records it can
    touch (the transaction's own and the holders of the tokens involved), written back as
    effects. Returns the ``LedgerAnswer`` (wire)."""

    def job(batch: WriteBatch) -> list[Any]:
        st = batch.stage()
        loaded: dict[TxnId, LedgerRecord] = {}
        own = _load(st, req.txn_id)
        tokens: set[str] = set()
        if own is not None and own.token is not None:
            tokens.add(own.token)
        if isinstance(req, LedgerBegin) and req.token is not None:
            tokens.add(req.token)
        holders: list[LedgerRecord] = []
        for token in sorted(tokens):
            raw = st.get(_TOKEN + token.encode())
            if raw is not None and raw.decode() != req.txn_id:
                holder = _load(st, raw.decode())
                if holder is not None:
                    holders.append(holder)
        # The token index is authoritative: its holders come last (the ledger maps each token to
        # the last record claiming it).
        order = ([own] if own is not None else []) + holders
        for rec in order:
            loaded[rec.txn_id] = rec
        ledger = TxnLedger(config, order)
        answer = ledger.apply(req, now_ms)
        after = {t: ledger.record(t) for t in set(loaded) | {req.txn_id}}
        for t, now_rec in after.items():
            _store_record(st, loaded.get(t), now_rec)
            if now_rec is not None and now_rec.token is not None:
                tokens.add(now_rec.token)
        for token in tokens:
            tk = _TOKEN + token.encode()
            claimants = [r for r in after.values() if r is not None and _claims(r, token)]
            if claimants:
                winner = max(claimants, key=lambda r: (r.ts, r.begun_ms))
                current = st.get(tk)
                if current is None or current.decode() in after:
                    st.put(tk, winner.txn_id.encode())
            else:
                current = st.get(tk)
                if current is not None and current.decode() in after:
                    st.delete(tk)
        st.flush()
        return to_wire(answer)

    return job


def expire_job(now_ms: int, config: TxnConfig, limit: int = 256) -> Callable[[WriteBatch], int]:
    """Forget up to ``limit`` completed records older than ``ledger_retention_ms``."""

    def job(batch: WriteBatch) -> int:
        cutoff = now_ms - config.ledger_retention_ms
        st = batch.stage()
        gone = 0
        for k, _v in batch.txn.iterate(_DONE, prefix_successor(_DONE)):
            if int.from_bytes(k[len(_DONE):len(_DONE) + 8], "big") > cutoff or gone >= limit:
                break
            txn_id = k[len(_DONE) + 8:].decode()
            rec = _load(st, txn_id)
            st.delete(k)
            if rec is not None:
                st.delete(_RECORD + k[len(_DONE) + 8:])
                if rec.token is not None:
                    tk = _TOKEN + rec.token.encode()
                    held = st.get(tk)
                    if held is not None and held.decode() == txn_id:
                        st.delete(tk)
            gone += 1
        st.flush()
        return gone

    return job


def open_records(snap: ReadTxn) -> list[LedgerRecord]:
    """The ledger's unfinished records (applied state), for the stale sweep."""
    out: list[LedgerRecord] = []
    for k, _v in snap.iterate(_OPEN, prefix_successor(_OPEN)):
        raw = snap.get(_RECORD + k[len(_OPEN):])
        if raw is not None:
            out.append(LedgerRecord.from_wire(_unpack(raw)))
    return out
