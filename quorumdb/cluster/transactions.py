"""Transactions across partitions and tables in the cluster: the driver of the transaction cores.

``TransactionalDataPlane`` is the cluster's data plane with TransactWriteItems,
TransactGetItems (and PartiQL ExecuteTransaction, which calls the same two) on any set of
partitions and tables, run by the sans-I/O cores of ``quorumdb.core.txn``:

* Coordinators (``WriteTxn``, ``ReadTxn``, ``RecoveryTxn``) run on the node that received the
  request, one core per request, ticked every ``_TICK_S``. Their address is the node id with its
  incarnation (``n1#3``), which is also the ``TxnClock`` node: a restarted node never receives
  answers meant for the cores it lost.
* Messages to a partition go to its leader as the RPC ``txn.part``; the leader steps them into
  its participant through a write job of the partition (``cluster.txnstate``), so the
  participant's records (prepared transactions, locks, item versions and write timestamps) are
  in the partition's Paxos log and the answer leaves only once they are applied. The answer
  messages come back as the RPC's result and are stepped into the core. An unanswered message
  is resent by the core (``retransmit_ms``); one RPC per (transaction, destination, kind) is in
  flight at a time.
* The ledger is the hidden table ``LEDGER_TABLE`` (one partition, created through the metadata
  service on first use, replicated like any table, excluded from ListTables); its leader applies
  ``TxnLedger`` through write jobs (RPC ``txn.ledger``). One ledger for the whole cluster keeps a
  ClientRequestToken idempotent cluster-wide: every token maps to the same place.
* Recovery: every node sweeps the partitions it leads every ``_SWEEP_S``: a transaction held
  prepared for ``recovery_after_ms`` (since this leader first saw it) gets a ``RecoveryTxn`` on
  this node, unless a core for it runs here; the ledger's leader does the same for records left
  unfinished for ``ledger_stale_ms`` (a coordinator that died before anything was prepared, or
  before it completed) and forgets completed records after ``ledger_retention_ms``.
* A transaction without a ClientRequestToken whose items all live in one partition keeps the
  single-partition path (one atomic job on the leader): it meets prepared items through the
  partition's item guard (TransactionConflict), so it stays serializable with the others. (The
  AWS SDKs fill in a token for every TransactWriteItems, so with them every transaction takes
  the core's path: a token must be checked where every token lives, the ledger.) Every
  TransactGetItems uses the two-phase read of the core (a read of one partition is one round),
  so that it never returns an item a prepared transaction holds.

Capacity stays the API handlers': the participants report the sizes of each action with their
vote (outside the core's messages), which become the ``WriteResult``s the handlers count double.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quorumdb.cluster.dataplane import ClusterDataPlane, NotLeaderError, PartitionReplica
from quorumdb.cluster.node import ClusterNode
from quorumdb.cluster.rpc import RpcError
from quorumdb.cluster.txnstate import (
    expire_job,
    item_ref,
    ledger_job,
    open_records,
    participant_job,
    prepared_records,
)
from quorumdb.core.txn import (
    ActionKind,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    Message,
    ReadItem,
    ReadRequest,
    ReadTxn,
    RecoveryTxn,
    TxnAction,
    TxnClock,
    TxnConfig,
    TxnResult,
    TxnStatus,
    Vote,
    WriteRequest,
    WriteTxn,
    from_wire,
    to_wire,
)
from quorumdb.db.contract import StoredItem, WriteOp, WriteResult
from quorumdb.db.records import Record
from quorumdb.errors import (
    DynamoError,
    IdempotentParameterMismatchError,
    InternalServerError,
    TransactionCanceledError,
    TransactionInProgressError,
    ValidationError,
)
from quorumdb.model.schema import KeyAttr, KeySchema, TableDef
from quorumdb.model.types import Key

__all__ = ["TransactionalDataPlane", "LEDGER_TABLE", "LEDGER", "TXN_CONFIG"]

log = logging.getLogger(__name__)

LEDGER_TABLE = "quorumdb:txn-ledger"  # not a valid DynamoDB table name: no client can touch it
LEDGER = "ledger"  # the ledger's address in the cores' messages
# Timeouts for real processes: a Paxos round with fsync on a loaded machine takes milliseconds
# to tens of them, and a leader election about a second.
TXN_CONFIG = TxnConfig(retransmit_ms=250, prepare_timeout_ms=3000, no_vote_wait_ms=300, recovery_after_ms=5000,
                       recovery_retry_ms=2000, read_attempts_max=8, read_retry_ms=20,
                       read_timeout_ms=5000, ledger_stale_ms=10_000)
_TICK_S = 0.02
_SWEEP_S = 0.5
_EXPIRE_EVERY_S = 5.0
_RPC_TIMEOUT_S = 5.0
_LEDGER_WAIT_S = 15.0
_NO_RECIPE = ("Transactions whose actions cannot be shipped to other partitions are not supported "
              "by this QuorumDB cluster yet")
_IN_PROGRESS = "Transaction with the same ClientRequestToken is in progress"
_MISMATCH = "The request uses the same client token as a previous, but non-identical request."

Core = WriteTxn | ReadTxn | RecoveryTxn


@dataclass(slots=True)
class _Running:
    core: Core
    reply: asyncio.Future[TxnResult] | None
    sizes: dict[int, list[Any]] = field(default_factory=dict)


def ledger_table() -> TableDef:
    return TableDef(name=LEDGER_TABLE, table_id=0, uuid=str(uuid.uuid4()),
                    key_schema=KeySchema(hash=KeyAttr(name="txn", type="S")),
                    attribute_definitions={"txn": "S"}, created_at=time.time())


class TransactionalDataPlane(ClusterDataPlane):
    """``ClusterDataPlane`` with transactions across partitions (see the module docstring).
    ``attach(node)`` before ``start()``: it registers the ``txn.*`` RPCs."""

    txn_config: TxnConfig = TXN_CONFIG

    def attach(self, node: ClusterNode, config: TxnConfig = TXN_CONFIG) -> None:
        self.node = node
        self.txn_config = config
        self.address = f"{node.node_id}#{node.incarnation}"
        self.txn_clock = TxnClock(self.address)
        self._cores: dict[str, _Running] = {}
        self._inflight: set[tuple[str, str, str]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._first_seen: dict[str, int] = {}
        self._asked: dict[str, int] = {}
        self._last_ms = 0
        self._last_expire = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._ledger_lock = asyncio.Lock()
        node.register("txn.part", self._rpc_part)
        node.register("txn.ledger", self._rpc_ledger)

    # -- catalog: the ledger is nobody's table --------------------------------------------------

    def table_names(self) -> list[str]:
        return [n for n in super().table_names() if n != LEDGER_TABLE]

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for t in list(self._tasks):
            t.cancel()
        await super().close()

    def _now_ms(self) -> int:
        """Wall-clock milliseconds that never go back in this process (timestamps are ordered
        across coordinators by it; the cores want a clock that does not go backwards)."""
        self._last_ms = max(self._last_ms, int(time.time() * 1000))
        return self._last_ms

    # -- TransactWriteItems ---------------------------------------------------------------------

    async def transact_write(
        self, ops: Sequence[WriteOp], *, token: str | None = None, fingerprint: bytes = b""
    ) -> list[WriteResult]:
        ops = list(ops)
        parts = [self._partition(op.table, op.key[op.table.key_schema.hash.name]) for op in ops]
        if token is None and len({p.group_id for p in parts}) == 1 and len({op.table.name for op in ops}) == 1:
            return await super().transact_write(ops)
        if any(op.recipe is None or not op.action for op in ops):
            raise ValidationError(_NO_RECIPE)
        await self._ensure_ledger()
        actions = tuple(
            TxnAction(index=i, partition=p.group_id, ref=item_ref(op.table, op.key),
                      kind=ActionKind(op.action), payload=[list(op.recipe or ()), op.key],
                      # The mutation puts the old item in its failure only for ALL_OLD.
                      return_item_on_failure=True)
            for i, (op, p) in enumerate(zip(ops, parts, strict=True))
        )
        request = WriteRequest(actions=actions, token=token, fingerprint=fingerprint.hex())
        core = WriteTxn(node=self.address, request=request, clock=self.txn_clock,
                        config=self.txn_config, ledger=LEDGER, now_ms=self._now_ms())
        running = self._start(core, reply=True)
        assert running.reply is not None
        result = await running.reply
        if result.status is TxnStatus.SUCCESS:
            if result.replayed:
                return await self._replayed(ops)
            return [_result_of(running.sizes.get(i)) for i in range(len(ops))]
        raise _error_of(result)

    async def _replayed(self, ops: list[WriteOp]) -> list[WriteResult]:
        """A retry of a completed token: nothing is written; the capacity reported is that of
        reading the items (as DynamoDB does)."""
        out = []
        for op in ops:
            stored = await self.get(op.table, op.key, consistent=True)
            out.append(WriteResult(old=None, new=None, old_size=0,
                                   new_size=0 if stored is None else stored.size, replayed=True))
        return out

    # -- TransactGetItems -----------------------------------------------------------------------

    async def transact_get(self, keys: Sequence[tuple[TableDef, Key]]) -> list[StoredItem | None]:
        items = tuple(ReadItem(partition=self._partition(t, k[t.key_schema.hash.name]).group_id,
                               ref=item_ref(t, k)) for t, k in keys)
        core = ReadTxn(node=self.address, request=ReadRequest(items=items), clock=self.txn_clock,
                       config=self.txn_config, now_ms=self._now_ms())
        running = self._start(core, reply=True)
        assert running.reply is not None
        result = await running.reply
        if result.status is not TxnStatus.SUCCESS:
            raise _error_of(result)
        return [None if raw is None else Record(bytes(raw)) for raw in result.items]

    # -- driving the coordinators ---------------------------------------------------------------

    def _start(self, core: Core, *, reply: bool) -> _Running:
        fut: asyncio.Future[TxnResult] | None = None
        if reply:
            fut = asyncio.get_running_loop().create_future()
        running = _Running(core, fut)
        self._cores[core.txn_id] = running
        self._pump(running)
        return running

    def _pump(self, r: _Running) -> None:
        ready = r.core.ready()
        for m in ready.messages:
            self._send(r, m)
        if ready.reply is not None and r.reply is not None and not r.reply.done():
            r.reply.set_result(ready.reply)
        if ready.done:
            if self._cores.get(r.core.txn_id) is r:
                del self._cores[r.core.txn_id]
            if r.reply is not None and not r.reply.done():
                r.reply.set_exception(InternalServerError("Internal server error (transaction lost)"))

    def _send(self, r: _Running, m: Message) -> None:
        key = (m.txn_id, m.dst, type(m).__name__)
        if key in self._inflight:
            return  # the earlier copy is still on its way: the core resends after it
        self._inflight.add(key)
        task = asyncio.get_running_loop().create_task(self._deliver(r, m, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, r: _Running, m: Message, key: tuple[str, str, str]) -> None:
        try:
            if m.dst == LEDGER:
                p = await self._ledger_partition()
                method = "txn.ledger"
            else:
                p = self.node.metadata.partition(m.dst)
                method = "txn.part"
            if p is None:
                return
            leader = await self._leader_of(p)
            got = await self.node.call(leader, method, {"g": p.group_id, "m": to_wire(m)},
                                       timeout_s=_RPC_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - lost: the core resends
            log.debug("txn %s: %s to %s failed: %r", m.txn_id, type(m).__name__, m.dst, e)
            return
        finally:
            self._inflight.discard(key)
        if self._cores.get(r.core.txn_id) is not r:
            return
        sizes = got.get("x") or []
        for raw in got.get("m") or []:
            msg = from_wire(raw)
            if isinstance(msg, Vote) and msg.ok:
                for entry in sizes:
                    r.sizes[int(entry[0])] = list(entry[1:])
            r.core.step(msg, self._now_ms())
            self._pump(r)

    async def _tick_loop(self) -> None:
        last_sweep = 0.0
        while True:
            await asyncio.sleep(_TICK_S)
            try:
                now = self._now_ms()
                for r in list(self._cores.values()):
                    r.core.tick(now)
                    self._pump(r)
                if time.monotonic() - last_sweep >= _SWEEP_S:
                    last_sweep = time.monotonic()
                    await self._sweep()
            except Exception:  # noqa: BLE001 - never let one round stop the ticker
                log.exception("transaction ticker round failed")

    # -- recovery --------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        """On the partitions this node leads: recover transactions held prepared too long; on
        the ledger's leader: recover unfinished records, forget expired ones."""
        now = self._now_ms()
        cfg = self.txn_config
        held: set[str] = set()
        for g in list(self.node.groups.values()):
            sm = g.sm
            if not isinstance(sm, PartitionReplica) or not sm.handle.is_leader():
                continue
            with sm.store.engine.snapshot() as snap:
                prepared = prepared_records(snap)
                stale = open_records(snap) if sm.info.table == LEDGER_TABLE else []
            for rec in prepared:
                held.add(rec.txn_id)
                first = self._first_seen.setdefault(rec.txn_id, now)
                if now - first >= cfg.recovery_after_ms:
                    self._recover(rec.txn_id, rec.participants, now)
            for lrec in stale:
                touched = lrec.decided_ms if lrec.decided_ms is not None else lrec.begun_ms
                if now - touched >= cfg.ledger_stale_ms and lrec.participants:
                    self._recover(lrec.txn_id, lrec.participants, now)
            if sm.info.table == LEDGER_TABLE and time.monotonic() - self._last_expire >= _EXPIRE_EVERY_S:
                self._last_expire = time.monotonic()
                with contextlib.suppress(Exception):
                    await sm.run(expire_job(now, cfg), self.table(LEDGER_TABLE))
        for t in [t for t in self._first_seen if t not in held]:
            del self._first_seen[t]
        for t in [t for t, at in self._asked.items() if now - at > 10 * cfg.recovery_retry_ms]:
            del self._asked[t]

    def _recover(self, txn_id: str, participants: tuple[str, ...], now: int) -> None:
        if txn_id in self._cores:
            return  # its coordinator (or a recovery) runs here
        asked = self._asked.get(txn_id)
        if asked is not None and now - asked < self.txn_config.recovery_retry_ms:
            return
        self._asked[txn_id] = now
        log.info("txn %s: recovering (participants %s)", txn_id, participants)
        self._start(RecoveryTxn(node=self.address, txn_id=txn_id, participants=participants,
                                config=self.txn_config, ledger=LEDGER, now_ms=now), reply=False)

    # -- the ledger table --------------------------------------------------------------------------

    async def _ensure_ledger(self) -> None:
        if self.host.partitions(LEDGER_TABLE):
            return
        async with self._ledger_lock:
            if self.host.table_record(LEDGER_TABLE) is None:
                res = await self.host.meta_propose(
                    {"op": "create_table", "table": ledger_table().to_record(), "partitions": 1})
                if not res.get("ok") and res.get("error") != "table exists":
                    raise InternalServerError(f"Internal server error ({res.get('error')})")
            await self._ledger_partition()

    async def _ledger_partition(self) -> Any:
        deadline = time.monotonic() + _LEDGER_WAIT_S
        while True:
            parts = self.host.partitions(LEDGER_TABLE)
            if parts:
                return parts[0]
            if time.monotonic() > deadline:
                raise InternalServerError("Internal server error (no transaction ledger)")
            await asyncio.sleep(0.05)

    # -- the RPCs a partition leader serves ------------------------------------------------------

    async def _rpc_part(self, src: str, payload: Any) -> Any:
        local, table = self._leading(payload)
        msg = from_wire(payload["m"])
        out = await self._run(local, participant_job(local.info.group_id, msg, self._now_ms(),
                                                     self.txn_config), table)
        return {"m": out[0], "x": out[1]}

    async def _rpc_ledger(self, src: str, payload: Any) -> Any:
        local, table = self._leading(payload)
        if local.info.table != LEDGER_TABLE:
            raise RpcError("invalid", "not the ledger")
        msg = from_wire(payload["m"])
        if not isinstance(msg, LedgerBegin | LedgerDecide | LedgerComplete):
            raise RpcError("invalid", "not a ledger request")
        answer = await self._run(local, ledger_job(msg, self._now_ms(), self.txn_config), table)
        return {"m": [answer]}

    def _leading(self, payload: Any) -> tuple[PartitionReplica, TableDef]:
        local = self.host.replica(str(payload.get("g")))
        if local is None:
            raise RpcError("not_leader", "")
        if not local.handle.is_leader():
            raise RpcError("not_leader", local.handle.leader() or "")
        try:
            return local, self.table(local.info.table)
        except DynamoError as e:
            raise RpcError("failed", e.message) from None

    async def _run(self, local: PartitionReplica, job: Any, table: TableDef) -> Any:
        try:
            return await local.run(job, table)
        except NotLeaderError as e:
            raise RpcError("not_leader", e.leader or "") from None
        except DynamoError as e:
            raise RpcError("failed", e.message) from None


def _result_of(sizes: list[Any] | None) -> WriteResult:
    """A committed action's result from the sizes its participant reported with its vote."""
    if sizes is None:
        return WriteResult(old=None, new=None, old_size=0, new_size=0)
    old_size, new_size, index_writes, old, new, collection = sizes
    return WriteResult(old=old, new=new, old_size=old_size, new_size=new_size,
                       index_writes=index_writes, collection_size=collection)


def _error_of(result: TxnResult) -> DynamoError:
    match result.status:
        case TxnStatus.CANCELLED:
            return TransactionCanceledError(result.dynamo_reasons())
        case TxnStatus.IN_PROGRESS:
            return TransactionInProgressError(_IN_PROGRESS)
        case TxnStatus.PARAMETER_MISMATCH:
            return IdempotentParameterMismatchError(_MISMATCH)
    return InternalServerError("Internal server error (transaction outcome unavailable)")
