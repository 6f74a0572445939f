"""The cluster's DataPlane: every node a request router, every partition a Multi-Paxos group.

``ClusterDataPlane`` implements ``quorumdb.db.contract.DataPlane`` over a node that hosts
replicas of some partitions (``ClusterHost``, provided by the node runtime):

- the catalog and the partition map come from the metadata service (the node's copy of the
  ``meta`` group's state, refreshed by the node at a constant rate);
- a write runs on the leader of its partition: if that is this node, the ``PartitionReplica``
  evaluates the pure mutation against its state (plus the effects it has proposed and not yet
  applied), proposes the resulting raw effects and acknowledges once they are committed by a
  majority and applied here (``quorumdb.db.replicated``); otherwise the request is forwarded
  whole to the leader (``Forward``); a batch that spans partitions ships each partition's
  writes to its leader by RPC: BatchWriteItem's puts and deletes as values, and
  BatchExecuteStatement's conditional writes as recipes (their statements, which the leader
  rebuilds and evaluates: ``quorumdb.db.recipes``);
- ``ConsistentRead`` goes to the leader, which serves it from applied state under its lease;
  other reads go to any replica (this node's if it has one) and may be stale, as in DynamoDB;
- Query reads one partition; Scan walks the partitions of its segment in hash order and
  returns one page's worth; ItemCount/TableSizeBytes add up the partitions' counters.
- A global secondary index has partitions of its own, by the hash of the index key: Query and
  Scan on it read those (eventually consistent, as DynamoDB's GSIs are: ConsistentRead is
  refused), and its ItemCount/IndexSizeBytes add up their counters. Base partitions stage each
  index change in an outbox with the item, and their leaders propagate it to the index
  partitions in the background (``db.gsi`` for the data, ``cluster.indexes`` for the driver).

Transactions: this class runs a transaction confined to one partition atomically on its
leader (and refuses any other); ``cluster.transactions`` subclasses it with the transaction
protocol (``core.txn``) for transactions on any set of partitions and tables.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from quorumdb.cluster.indexes import IndexWork
from quorumdb.db import gsi, recipes
from quorumdb.db.contract import Forward, StoredItem, WriteOp, WriteResult
from quorumdb.db.local import expire_mutator, ttl_expired
from quorumdb.db.partition import HASH_SPACE, Partition, segment_range
from quorumdb.db.records import Record, counter_key, unpack_counter
from quorumdb.db.replicated import PartitionStore, snapshot_index
from quorumdb.db.writer import WriteBatch
from quorumdb.errors import (
    ConditionalCheckFailedError,
    DynamoError,
    InternalServerError,
    ResourceInUseError,
    ResourceNotFoundError,
    ValidationError,
)
from quorumdb.model.keys import encode_partition, partition_hash
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import AttributeValue, Item, Key, SortKeyRange

__all__ = [
    "ClusterDataPlane",
    "ClusterHost",
    "GroupHandle",
    "PartitionReplica",
    "NotLeaderError",
    "OutcomeUnknownError",
    "PAGE_BYTES",
    "error_to_wire",
    "error_from_wire",
]

log = logging.getLogger(__name__)

PAGE_BYTES = 1024 * 1024  # one Query/Scan page (DynamoDB's 1 MB)
_RESOURCE_NOT_FOUND = "Requested resource not found"
_CROSS_PARTITION = (
    "Transactions that span more than one partition are not supported by this QuorumDB cluster "
    "yet: keep the items of one transaction under one partition key, or use a single node"
)
GSI_CONSISTENT = "Consistent reads are not supported on global secondary indexes"
_CROSS_LEADER_BATCH = (
    "Conditional writes in one batch whose partitions are led by different nodes are not "
    "supported by this QuorumDB cluster yet: send them one by one"
)
_NO_STREAMS = "DynamoDB Streams are not supported by this QuorumDB cluster yet"
_NO_BACKUPS = "Backups and point-in-time recovery are not supported by this QuorumDB cluster yet"
_MAX_SKIPS = 8  # a batch evaluated on a state that did not commit is evaluated again
_LEADER_WAIT_S = 10.0  # how long a request waits for a partition to elect a leader
_SETTLED_S = 1.0  # how long counters read from the leaders are preferred to the local ones


class NotLeaderError(Exception):
    """This replica does not lead its group (``leader``: who does, if known)."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"not the leader (leader: {leader})")
        self.leader = leader


class OutcomeUnknownError(Exception):
    """Leadership was lost while a command was in flight: it may or may not commit."""


class GroupHandle(Protocol):
    """What the node runtime offers for one replication group it hosts."""

    def leader(self) -> str | None:
        """The node this replica believes leads the group (itself included), if any."""
        ...

    def is_leader(self) -> bool:
        """This replica leads and has committed an entry of its ballot (may propose)."""
        ...

    async def propose(self, command: bytes) -> Any:
        """Replicate ``command``; resolve to what the state machine's ``apply`` returned on this
        node once it is committed and applied here. Raises NotLeaderError (nothing proposed) or
        OutcomeUnknownError (leadership lost in flight)."""
        ...

    async def lease_read(self) -> None:
        """Return once applied state may serve a linearizable read (the leader holds its lease
        and has applied every committed entry); NotLeaderError otherwise."""
        ...


class ClusterHost(Protocol):
    """What the node runtime offers the data plane."""

    node_id: str

    def table_record(self, name: str) -> dict[str, Any] | None: ...

    def table_names(self) -> list[str]: ...

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        """PartitionInfo (table, group_id, hash_lo, hash_hi, replicas, epoch) in hash order."""
        ...

    def index_partitions(self, table: str, index: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Any]:
        """The partitions of global secondary index ``index`` (hashes of the index key), in hash order."""
        ...

    def replica(self, group_id: str) -> PartitionReplica | None:
        """This node's replica of ``group_id`` if it hosts one."""
        ...

    async def meta_propose(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run a command through the metadata group (via its leader)."""
        ...

    async def await_epoch(self, epoch: int) -> None:
        """Return once this node's copy of the metadata has reached ``epoch`` (or after a short
        while: the copy catches up at its constant rate anyway)."""
        ...

    async def call(self, node_id: str, method: str, payload: Any) -> Any:
        """An RPC to another node's handler ``method``."""
        ...


# -- errors over the wire ----------------------------------------------------------------------


def _subclasses(cls: type[DynamoError]) -> Iterator[type[DynamoError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def error_to_wire(e: BaseException) -> list[Any]:
    if isinstance(e, ConditionalCheckFailedError) and e.item is not None:
        return [e.type_name, e.message, e.item]  # ReturnValuesOnConditionCheckFailure=ALL_OLD
    if isinstance(e, DynamoError):
        return [e.type_name, e.message]
    return ["InternalServerError", "Internal server error"]


def error_from_wire(raw: Sequence[Any]) -> DynamoError:
    type_name, message = raw[0], raw[1]
    if type_name == ConditionalCheckFailedError.type_name:
        return ConditionalCheckFailedError(message, raw[2] if len(raw) > 2 else None)
    for cls in _subclasses(DynamoError):
        if cls.type_name == type_name:
            try:
                return cls(message)
            except TypeError:
                break
    return InternalServerError(message)


def result_to_wire(r: WriteResult) -> dict[str, Any]:
    return {"o": r.old, "n": r.new, "os": r.old_size, "ns": r.new_size, "ix": r.index_writes,
            "cs": r.collection_size}


def result_from_wire(raw: dict[str, Any]) -> WriteResult:
    return WriteResult(old=raw.get("o"), new=raw.get("n"), old_size=raw["os"], new_size=raw["ns"],
                       index_writes=raw["ix"], collection_size=raw["cs"])


# -- one hosted partition replica ----------------------------------------------------------------


@dataclass(slots=True)
class _Waiter:
    job: Callable[[WriteBatch], Any]
    table: TableDef
    future: asyncio.Future[Any]
    skips: int = 0


class PartitionReplica:
    """A partition replica on this node: its store and its replication group.

    On the leader, ``run(job, table)`` batches the jobs queued in one loop iteration into one
    command (group commit over Paxos); several commands may be in flight, each evaluated on top
    of the previous ones. Every replica applies committed commands through ``apply``."""

    def __init__(self, info: Any, store: PartitionStore, handle: GroupHandle, *, max_inflight: int = 8) -> None:
        self.info = info
        self.store = store
        self.handle = handle
        self._queue: deque[_Waiter] = deque()
        self._scheduled = False
        self._inflight = 0
        self._max_inflight = max_inflight
        self._applying = (0, 0)  # (log index, position of the next command in that entry)
        self.on_apply: Callable[[], None] | None = None  # called after each applied command

    # -- the state machine the node drives -------------------------------------------------------

    def apply(self, index: int, command: bytes) -> bool:
        """The node hands over each command of a committed entry in order, all with the
        entry's index: count their positions (a replay after a restart starts an entry from
        its first command again, so positions come out the same)."""
        last, pos = self._applying
        pos = pos if index == last else 0
        self._applying = (index, pos + 1)
        applied = self.store.apply(index, command, pos)
        if self.on_apply is not None:
            self.on_apply()
        return applied

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        if not data:
            return
        self.store.restore(data, snapshot_index(data))

    def drop(self) -> None:
        """This node no longer holds the partition: delete its data."""
        self.store.clear()

    # -- reads -----------------------------------------------------------------------------------

    def part(self, table: TableDef) -> Partition:
        return Partition(table_id=table.table_id, hash_lo=self.info.hash_lo, hash_hi=self.info.hash_hi,
                         engine=self.store.engine)

    def counters(self, table: TableDef, index_id: int | None) -> tuple[int, int]:
        return unpack_counter(self.store.engine.get(counter_key(table.table_id, index_id)))

    # -- writes (leader) ----------------------------------------------------------------------

    async def run(self, job: Callable[[WriteBatch], Any], table: TableDef) -> Any:
        if not self.handle.is_leader():
            raise NotLeaderError(self.handle.leader())
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiter(job, table, fut))
        self._schedule()
        return await fut

    def _schedule(self) -> None:
        if not self._scheduled and self._queue and self._inflight < self._max_inflight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._queue:
            return
        batch = list(self._queue)
        self._queue.clear()
        if not self.handle.is_leader():
            err = NotLeaderError(self.handle.leader())
            for w in batch:
                _fail(w.future, err)
            return
        table = max((w.table for w in batch), key=lambda t: t.version)
        outcomes, cmd = self.store.evaluate([w.job for w in batch], table)
        self._inflight += 1
        asyncio.get_running_loop().create_task(self._replicate(batch, outcomes, cmd.encode()))

    async def _replicate(self, batch: list[_Waiter], outcomes: list[tuple[bool, Any]], raw: bytes) -> None:
        try:
            try:
                applied = await self.handle.propose(raw)
            except NotLeaderError as e:
                self.store.drop_pending()
                for w in batch:
                    _fail(w.future, e)
                return
            except OutcomeUnknownError:
                self.store.drop_pending()
                for w in batch:
                    _fail(w.future, InternalServerError("Internal server error"))
                return
            except Exception as e:  # noqa: BLE001 - a failed replication fails its callers
                self.store.drop_pending()
                log.exception("partition %s: proposal failed", self.info.group_id)
                for w in batch:
                    _fail(w.future, InternalServerError(f"Internal server error ({type(e).__name__})"))
                return
            if applied:
                for w, (ok, value) in zip(batch, outcomes, strict=True):
                    if w.future.done():
                        continue
                    if ok:
                        w.future.set_result(value)
                    else:
                        w.future.set_exception(value)
                return
            # Evaluated on a state that did not commit: evaluate again on the current one.
            for w in batch:
                w.skips += 1
                if w.skips > _MAX_SKIPS:
                    _fail(w.future, InternalServerError("Internal server error (write contention)"))
                elif not w.future.done():
                    self._queue.append(w)
        finally:
            self._inflight -= 1
            self._schedule()


def _holding(parts: Sequence[Any], h: int) -> Any:
    for p in parts:
        if p.hash_lo <= h < p.hash_hi:
            return p
    raise ResourceNotFoundError(_RESOURCE_NOT_FOUND)


def _fail(fut: asyncio.Future[Any], err: BaseException) -> None:
    if not fut.done():
        fut.set_exception(err)


# -- the data plane --------------------------------------------------------------------------------


def _hash_int(v: AttributeValue) -> int:
    return int.from_bytes(partition_hash(v), "big")


def _index_hash(index: IndexDef, hash_value: AttributeValue | Sequence[AttributeValue]) -> int:
    """Where an index partition-key value (one attribute, or one value per attribute of a
    multi-attribute key) falls in the index's hash space: its entries' hash bytes."""
    values = (hash_value,) if isinstance(hash_value, dict) else tuple(hash_value)
    return int.from_bytes(encode_partition(index.key_schema.hash_attrs, values)[:8], "big")


def _collect(it: Iterator[Any], limit: int | None, budget: int = PAGE_BYTES) -> tuple[list[Any], bool]:
    """The prefix of ``it`` a page can consume: up to ``limit`` items and until the sizes
    reach ``budget``. Returns (items, True if the page rule stopped it)."""
    out: list[Any] = []
    size = 0
    for s in it:
        out.append(s)
        size += s.size
        if (limit is not None and len(out) >= limit) or size >= budget:
            return out, True
    return out, False


class ClusterDataPlane:
    def __init__(
        self,
        host: ClusterHost,
        *,
        partitions_per_table: int = 4,
        clock: Callable[[], float] = time.time,
        leader_wait_s: float = _LEADER_WAIT_S,
        eventual_reads: str = "leader",
        ttl_interval_s: float = 5.0,
    ) -> None:
        if eventual_reads not in ("leader", "any"):
            raise ValueError("eventual_reads is 'leader' or 'any'")
        self.eventual_reads = eventual_reads
        self.host = host
        self.partitions_per_table = partitions_per_table
        self._clock = clock
        self.leader_wait_s = leader_wait_s
        self._defs: dict[str, tuple[int, TableDef]] = {}
        self._stats: dict[tuple[str, int | None], tuple[int, int]] = {}
        # Counters just read from partition leaders (settle_stats): (items, bytes, when).
        self._settled: dict[tuple[str, int | None], tuple[int, int, float]] = {}
        self._stats_task: asyncio.Task[None] | None = None
        self._ttl_task: asyncio.Task[None] | None = None
        self.ttl_interval_s = ttl_interval_s
        # Background work run with the stats refresh (e.g. dropping the data of deleted groups).
        self.housekeeping: list[Callable[[], Any]] = []
        self.indexes = IndexWork(self)

    # -- catalog -------------------------------------------------------------------------------

    def table(self, name: str) -> TableDef:
        rec = self.host.table_record(name)
        if rec is None:
            raise ResourceNotFoundError(_RESOURCE_NOT_FOUND)
        return TableDef.from_record(rec)

    def table_names(self) -> list[str]:
        return sorted(self.host.table_names())

    def _refuse_unsupported(self, table: TableDef) -> None:
        if table.stream_spec:
            raise ValidationError(_NO_STREAMS)

    async def create_table(self, table: TableDef) -> TableDef:
        self._refuse_unsupported(table)
        res = await self.host.meta_propose(
            {"op": "create_table", "table": table.to_record(), "partitions": self.partitions_per_table}
        )
        if not res.get("ok"):
            if res.get("error") == "table exists":
                raise ResourceInUseError(f"Table already exists: {table.name}")
            raise InternalServerError(f"Internal server error ({res.get('error')})")
        await self.host.await_epoch(res["epoch"])  # this node's next DescribeTable shows it
        return TableDef.from_record(res["table"])

    async def update_table(self, table: TableDef) -> TableDef:
        self._refuse_unsupported(table)
        rec = replace(table, version=table.version + 1).to_record()
        res = await self.host.meta_propose({"op": "update_table", "table": rec})
        if not res.get("ok"):
            raise ResourceNotFoundError(_RESOURCE_NOT_FOUND)
        await self.host.await_epoch(res["epoch"])
        return TableDef.from_record(res["table"])

    async def delete_table(self, name: str) -> TableDef:
        res = await self.host.meta_propose({"op": "delete_table", "name": name})
        if not res.get("ok"):
            raise ResourceNotFoundError(_RESOURCE_NOT_FOUND)
        await self.host.await_epoch(res["epoch"])
        return TableDef.from_record(res["table"])

    def table_stats(self, table: TableDef) -> tuple[int, int]:
        return self._sum_stats(table, None)

    def index_stats(self, table: TableDef, index: IndexDef) -> tuple[int, int]:
        return self._sum_stats(table, index.index_id)

    def _stats_partitions(self, table: TableDef, index_id: int | None) -> list[Any]:
        """Where the counters of the table (``index_id`` None) or of one of its indexes are: a
        global index's in its own partitions, the others' in the table's."""
        ix = None if index_id is None else next((i for i in table.indexes if i.index_id == index_id), None)
        if ix is not None and not ix.local:
            return self.host.index_partitions(table.name, ix.name)
        return self.host.partitions(table.name)

    def _sum_stats(self, table: TableDef, index_id: int | None) -> tuple[int, int]:
        n = b = 0
        now = self._clock()
        for p in self._stats_partitions(table, index_id):
            r = self.host.replica(p.group_id)
            settled = self._settled.get((p.group_id, index_id))
            if settled is not None and now - settled[2] < _SETTLED_S:
                c = settled[0], settled[1]
            else:
                c = r.counters(table, index_id) if r is not None else self._stats.get((p.group_id, index_id), (0, 0))
            n += c[0]
            b += c[1]
        return n, b

    async def settle_stats(self, table: TableDef) -> None:
        """The table's counters (and its local indexes') from each partition's leader, which
        has applied every acknowledged write (a replica here may be a heartbeat behind)."""
        ids: list[int | None] = [None, *(ix.index_id for ix in table.local_indexes)]
        for p in self.host.partitions(table.name):
            try:
                leader = await self._leader_of(p)
                local = self.host.replica(p.group_id)
                if leader == self.host.node_id and local is not None:
                    await local.handle.lease_read()
                    got: list[Any] = [local.counters(table, iid) for iid in ids]
                else:
                    got = await self.host.call(leader, "dp.stats", {"g": p.group_id, "t": table.name, "i": ids})
            except Exception:  # noqa: BLE001 - the counters stay as this node knows them
                continue
            for iid, c in zip(ids, got, strict=True):
                self._settled[(p.group_id, iid)] = (c[0], c[1], self._clock())

    async def refresh_stats(self) -> None:
        """Fetch the counters of the partitions this node does not host (DynamoDB refreshes
        ItemCount about every six hours; the cluster does it every few seconds)."""
        for name in self.host.table_names():
            try:
                table = self.table(name)
            except ResourceNotFoundError:
                continue
            # The table's partitions count the table and its local indexes; a global index's, itself.
            local_ids: list[int | None] = [None, *(ix.index_id for ix in table.local_indexes)]
            wanted: list[tuple[Any, list[int | None]]] = [(p, local_ids) for p in self.host.partitions(name)]
            for ix in table.global_indexes:
                wanted += [(p, [ix.index_id]) for p in self.host.index_partitions(name, ix.name)]
            for p, ids in wanted:
                if self.host.replica(p.group_id) is not None:
                    continue
                for node in p.replicas:
                    try:
                        got = await self.host.call(node, "dp.stats", {"g": p.group_id, "t": name, "i": ids})
                    except Exception:  # noqa: BLE001 - try the next replica
                        continue
                    for iid, c in zip(ids, got, strict=True):
                        self._stats[(p.group_id, iid)] = (c[0], c[1])
                    break

    # -- routing -------------------------------------------------------------------------------

    def _partition(self, table: TableDef, hash_value: AttributeValue) -> Any:
        return _holding(self.host.partitions(table.name, 0, HASH_SPACE), _hash_int(hash_value))

    def index_partition(self, table: str, index: str, h: int) -> Any:
        """The partition of global index ``index`` holding index-key hash ``h``."""
        return _holding(self.host.index_partitions(table, index), h)

    async def on_leader(self, p: Any, job: Callable[[WriteBatch], Any], table: TableDef, method: str,
                        payload: dict[str, Any]) -> Any:
        """Run ``job`` on the leader of ``p``: here if this node leads it, else by RPC ``method``
        (whose handler runs the same job there). Background work's counterpart of Forward."""
        for _attempt in range(_MAX_SKIPS):
            local = self.host.replica(p.group_id)
            if local is not None and local.handle.is_leader():
                try:
                    return await local.run(job, table)
                except NotLeaderError:
                    continue
            leader = await self._leader_of(p)
            if leader == self.host.node_id:
                await asyncio.sleep(0.02)  # we lead but are not ready yet
                continue
            try:
                return await self.host.call(leader, method, payload)
            except NotLeaderError:
                await asyncio.sleep(0.02)
        raise InternalServerError("Internal server error (the partition's leader is moving)")

    async def _leader_of(self, p: Any) -> str:
        """The leader of partition ``p`` as far as this node knows, waiting for an election."""
        deadline = self._clock() + self.leader_wait_s
        while True:
            local = self.host.replica(p.group_id)
            if local is not None:
                if local.handle.is_leader():
                    return self.host.node_id
                leader = local.handle.leader()
                if leader is not None and leader != self.host.node_id:
                    return leader
            else:
                try:
                    leader = await self.host.call(p.replicas[0], "dp.leader", {"g": p.group_id})
                except Exception:  # noqa: BLE001
                    leader = None
                    for node in p.replicas[1:]:
                        try:
                            leader = await self.host.call(node, "dp.leader", {"g": p.group_id})
                            break
                        except Exception:  # noqa: BLE001
                            continue
                if leader:
                    return str(leader)
            if self._clock() > deadline:
                raise InternalServerError("Internal server error (no leader for the partition)")
            await asyncio.sleep(0.05)

    # -- items ---------------------------------------------------------------------------------

    async def get(self, table: TableDef, key: Key, *, consistent: bool = False) -> StoredItem | None:
        p = self._partition(table, key[table.key_schema.hash.name])
        raw = await self._read(p, table, "get", {"k": key}, consistent)
        return None if raw is None else Record(raw)

    async def write(self, op: WriteOp) -> WriteResult:
        p = self._partition(op.table, op.key[op.table.key_schema.hash.name])
        res: WriteResult = await self._run_on_leader(p, lambda b: b.run_write(op), op.table)
        return res

    async def _run_on_leader(self, p: Any, job: Callable[[WriteBatch], Any], table: TableDef) -> Any:
        """Run ``job`` here if this node leads ``p`` (waiting out its election), else raise
        Forward to the leader, before anything was written."""
        deadline = self._clock() + self.leader_wait_s
        skips = 0
        while skips < _MAX_SKIPS and self._clock() < deadline:
            local = self.host.replica(p.group_id)
            if local is not None and local.handle.is_leader():
                try:
                    return await local.run(job, table)
                except NotLeaderError as e:
                    if e.leader and e.leader != self.host.node_id:
                        raise Forward(e.leader) from None
                    skips += 1
                    continue
            leader = await self._leader_of(p)
            if leader != self.host.node_id:
                raise Forward(leader)
            await asyncio.sleep(0.02)  # we lead but are not ready yet (our ballot's first commit)
        raise InternalServerError("Internal server error (the partition's leader is moving)")

    async def write_many(self, ops: Sequence[WriteOp]) -> list[WriteResult | BaseException]:
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, op in enumerate(ops):
            p = self._partition(op.table, op.key[op.table.key_schema.hash.name])
            groups.setdefault(p.group_id, (p, []))[1].append(i)
        out: list[WriteResult | BaseException] = [InternalServerError("Internal server error")] * len(ops)
        if len(groups) == 1:
            # One partition: a request of conditional writes can go to its leader whole.
            p = next(iter(groups.values()))[0]
            local = self.host.replica(p.group_id)
            if not all(op.constant for op in ops) and not (local is not None and local.handle.is_leader()):
                leader = await self._leader_of(p)
                if leader != self.host.node_id:
                    raise Forward(leader)

        async def one_group(p: Any, idx: list[int]) -> None:
            sub = [ops[i] for i in idx]
            try:
                results = await self._write_group(p, sub)
            except DynamoError as e:
                results = [e] * len(sub)
            for i, r in zip(idx, results, strict=True):
                out[i] = r

        await asyncio.gather(*(one_group(p, idx) for p, idx in groups.values()))
        return out

    async def _write_group(self, p: Any, ops: list[WriteOp]) -> list[WriteResult | BaseException]:
        for _attempt in range(_MAX_SKIPS):
            local = self.host.replica(p.group_id)
            if local is not None and local.handle.is_leader():
                try:
                    return list(await local.run(lambda b: b.run_writes(ops), ops[0].table))
                except NotLeaderError:
                    continue
            leader = await self._leader_of(p)
            if not all(op.constant or op.recipe is not None for op in ops) and leader != self.host.node_id:
                # Conditional writes without a recipe cannot be shipped (their mutation is code):
                # refused alone, never forwarded after the other partitions' writes were done.
                return [ValidationError(_CROSS_LEADER_BATCH)] * len(ops)
            if leader == self.host.node_id:
                await asyncio.sleep(0.02)  # we lead but are not ready yet
                continue
            payload = {"g": p.group_id, "t": ops[0].table.name,
                       "ops": [[op.key, op.mutate(None), None] if op.constant else [op.key, None, op.recipe]
                               for op in ops]}
            try:
                got = await self.host.call(leader, "dp.write", payload)
            except NotLeaderError:
                continue
            return [error_from_wire(r["e"]) if "e" in r else result_from_wire(r) for r in got]
        raise InternalServerError("Internal server error (partition leadership is moving)")

    async def transact_write(
        self, ops: Sequence[WriteOp], *, token: str | None = None, fingerprint: bytes = b""
    ) -> list[WriteResult]:
        ops = list(ops)
        p = self._single_partition([(op.table, op.key) for op in ops])
        res: list[WriteResult] = await self._run_on_leader(
            p, lambda b: b.run_transaction(ops, token, fingerprint), ops[0].table
        )
        return res

    def _single_partition(self, keys: Sequence[tuple[TableDef, Key]]) -> Any:
        parts = {p.group_id: p for p in (self._partition(t, k[t.key_schema.hash.name]) for t, k in keys)}
        if len(parts) != 1 or len({t.name for t, _ in keys}) != 1:
            raise ValidationError(_CROSS_PARTITION)
        return next(iter(parts.values()))

    async def transact_get(self, keys: Sequence[tuple[TableDef, Key]]) -> list[StoredItem | None]:
        p = self._single_partition(keys)
        table = keys[0][0]
        raws = await self._read(p, table, "tget", {"ks": [k for _, k in keys]}, True)
        return [None if r is None else Record(r) for r in raws]

    async def query(
        self,
        table: TableDef,
        index: IndexDef | None,
        hash_value: AttributeValue | tuple[AttributeValue, ...],
        sort: SortKeyRange | None,
        *,
        forward: bool = True,
        exclusive_start: Key | None = None,
        consistent: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredItem]:
        if index is not None and not index.local:
            if consistent:
                raise ValidationError(GSI_CONSISTENT)
            p = self.index_partition(table.name, index.name, _index_hash(index, hash_value))
        else:
            assert isinstance(hash_value, dict)  # tables and local indexes: one partition-key attribute
            p = self._partition(table, hash_value)
        args = {"ix": None if index is None else index.name, "h": hash_value,
                "s": None if sort is None else [sort.op, list(sort.values), list(sort.prefix)], "f": forward,
                "x": exclusive_start, "l": limit}
        raws, _more = await self._read(p, table, "query", args, consistent)
        return iter([Record(r) for r in raws])

    async def scan(
        self,
        table: TableDef,
        index: IndexDef | None,
        *,
        segment: int = 0,
        total_segments: int = 1,
        exclusive_start: Key | None = None,
        consistent: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredItem]:
        lo, hi = segment_range(segment, total_segments)
        if index is not None and not index.local:
            if consistent:
                raise ValidationError(GSI_CONSISTENT)
            if exclusive_start is not None:
                lo = max(lo, _index_hash(index, [exclusive_start[a.name] for a in index.key_schema.hash_attrs]))
            parts = self.host.index_partitions(table.name, index.name, lo, hi)
        else:
            if exclusive_start is not None:
                lo = max(lo, _hash_int(exclusive_start[table.key_schema.hash.name]))
            parts = self.host.partitions(table.name, lo, hi)
        out: list[Record] = []
        budget = PAGE_BYTES
        for p in parts:
            want = None if limit is None else limit - len(out)
            args = {"ix": None if index is None else index.name, "lo": lo, "hi": None if hi >= HASH_SPACE else hi,
                    "x": exclusive_start, "l": want, "b": budget}
            raws, stopped = await self._read(p, table, "scan", args, consistent)
            recs = [Record(r) for r in raws]
            out.extend(recs)
            budget -= sum(r.size for r in recs)
            if stopped:
                break
        return iter(out)

    # -- reads, local or remote -------------------------------------------------------------

    async def _read(self, p: Any, table: TableDef, kind: str, args: dict[str, Any], consistent: bool) -> Any:
        """Serve a read: consistent ones by the leader under its lease; eventually consistent
        ones by the leader's applied state (``eventual_reads="leader"``, the default: fresh in
        practice, falling back to any replica when the leader does not answer) or by any
        replica, this node's first (``"any"``: may be stale, as DynamoDB's may)."""
        me = self.host.node_id
        prefer_leader = consistent or self.eventual_reads == "leader"
        payload = {"g": p.group_id, "t": table.name, "k": kind, "a": args, "c": consistent}
        for _attempt in range(3):
            local = self.host.replica(p.group_id)
            if local is not None and (not prefer_leader or local.handle.is_leader()):
                try:
                    if consistent:
                        await local.handle.lease_read()
                    return serve_read(local, table, kind, args)
                except NotLeaderError:
                    pass
            nodes: list[str] = []
            if prefer_leader:
                try:
                    leader = await self._leader_of(p)
                except InternalServerError:
                    if consistent:
                        raise
                    leader = ""
                if leader == me:
                    await asyncio.sleep(0.02)
                    continue
                if leader:
                    nodes.append(leader)
            if not consistent:
                nodes += [n for n in p.replicas if n != me and n not in nodes]
            for node in nodes:
                try:
                    return await self.host.call(node, "dp.read", payload)
                except NotLeaderError:
                    if consistent:
                        break
                except DynamoError:
                    raise
                except Exception:  # noqa: BLE001 - try the next replica
                    continue
            if not consistent and local is not None:
                return serve_read(local, table, kind, args)  # nobody else answered: ours, maybe stale
            await asyncio.sleep(0.02)
        raise InternalServerError("Internal server error (no replica answered)")

    # -- what the cluster does not do yet ------------------------------------------------------

    def backups(self) -> list[Any]:
        return []  # none can be made here

    def backup(self, backup_arn: str) -> Any:
        return None

    async def create_backup(self, table: TableDef, name: str) -> Any:
        raise ValidationError(_NO_BACKUPS)

    async def delete_backup(self, backup_arn: str) -> Any:
        raise ValidationError(_NO_BACKUPS)

    async def restore_backup(self, backup_arn: str, target: TableDef) -> TableDef:
        raise ValidationError(_NO_BACKUPS)

    async def restore_to_time(self, source: TableDef, at: float, target: TableDef) -> TableDef:
        raise ValidationError(_NO_BACKUPS)

    async def set_point_in_time_recovery(self, table: TableDef, enabled: bool, days: int | None = None) -> TableDef:
        raise ValidationError(_NO_BACKUPS)

    async def streams(self, arn: str | None = None) -> list[Any]:
        return []  # no table of the cluster can have a stream

    async def stream_records(self, stream: Any, shard: Any, after_seq: int, *, limit: int,
                             size_max_bytes: int) -> list[Any]:
        raise ValidationError(_NO_STREAMS)

    # -- the RPCs other nodes send this one -----------------------------------------------------

    RPC_METHODS = ("dp.read", "dp.write", "dp.stats", "dp.leader", "dp.gsi_apply", "dp.gsi_state")

    async def handle_rpc(self, method: str, payload: dict[str, Any]) -> Any:
        """Serve ``dp.*`` RPCs from other nodes' routers. Raises NotLeaderError when a leader
        is needed and this replica is not it (the transport sends that back as such)."""
        local = self.host.replica(payload["g"])
        if method == "dp.leader":
            return None if local is None else local.handle.leader()
        if local is None:
            raise NotLeaderError(None)
        table = self.table(payload["t"])
        if method == "dp.read":
            if payload["c"]:
                await local.handle.lease_read()
            return serve_read(local, table, payload["k"], payload["a"])
        if method == "dp.write":
            if not local.handle.is_leader():
                raise NotLeaderError(local.handle.leader())
            return await serve_write(local, table, payload["ops"])
        if method == "dp.stats":
            return [list(local.counters(table, iid)) for iid in payload["i"]]
        if method == "dp.gsi_apply":  # changes a base partition propagates to this index partition
            if not local.handle.is_leader():
                raise NotLeaderError(local.handle.leader())
            job = functools.partial(gsi.apply_changes, table=table, source=payload["s"], hi=payload["hi"],
                                    changes=payload["c"])
            return await local.run(job, table)
        if method == "dp.gsi_state":  # has this base partition caught up with index "i"?
            return gsi.caught_up(local.store.engine, payload["i"])
        raise ValidationError(f"unknown cluster RPC {method!r}")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._stats_task is None:
            self._stats_task = asyncio.get_running_loop().create_task(self._stats_loop())
        if self._ttl_task is None and self.ttl_interval_s > 0:
            self._ttl_task = asyncio.get_running_loop().create_task(self._ttl_loop())
        self.indexes.start()

    async def expire_now(self) -> int:
        """One TTL pass over the partitions this node leads: delete the items whose TTL
        attribute is in the past (each deletion re-checks expiry, as on a single node)."""
        now = self._clock()
        deleted = 0
        for name in self.host.table_names():
            try:
                t = self.table(name)
            except ResourceNotFoundError:
                continue
            if not (t.ttl_enabled and t.ttl_attribute):
                continue
            attr = t.ttl_attribute
            for p in self.host.partitions(name):
                local = self.host.replica(p.group_id)
                if local is None or not local.handle.is_leader():
                    continue
                expired = [t.key_schema.key_of(r.item)
                           for r in local.part(t).scan(t, None, hash_lo=p.hash_lo, hash_hi=p.hash_hi)
                           if ttl_expired(r.item, attr, now)]
                if not expired:
                    continue
                mutate = expire_mutator(attr, now)
                ops = [WriteOp(table=t, key=k, mutate=mutate, ttl_expiry=True) for k in expired]
                try:
                    results = await local.run(functools.partial(_run_writes, ops), t)
                except (NotLeaderError, DynamoError):
                    continue
                deleted += sum(1 for r in results if isinstance(r, WriteResult))
        return deleted

    async def _ttl_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_interval_s)
            try:
                await self.expire_now()
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.warning("TTL pass failed", exc_info=True)

    async def _stats_loop(self) -> None:
        while True:
            try:
                await self.refresh_stats()
            except Exception:  # noqa: BLE001 - stats are best effort
                log.debug("stats refresh failed", exc_info=True)
            for job in self.housekeeping:
                try:
                    await job()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.warning("housekeeping failed", exc_info=True)
            await asyncio.sleep(2.0)

    async def close(self) -> None:
        for task in (self._stats_task, self._ttl_task):
            if task is not None:
                task.cancel()
        self._stats_task = self._ttl_task = None
        await self.indexes.close()


# -- the server side of the RPCs -------------------------------------------------------------------


def serve_read(local: PartitionReplica, table: TableDef, kind: str, args: dict[str, Any]) -> Any:
    """Answer a read from this replica's applied state (raw records, msgpack-able)."""
    part = local.part(table)
    if kind == "get":
        rec = part.get(table, args["k"])
        return None if rec is None else rec.record
    if kind == "tget":
        with local.store.engine.snapshot() as snap:
            out = []
            for k in args["ks"]:
                rec = part.get_in(snap, table, k)
                out.append(None if rec is None else rec.record)
            return out
    index = None
    if args.get("ix") is not None:
        index = next((ix for ix in table.indexes if ix.name == args["ix"]), None)
        if index is None:
            raise ResourceNotFoundError(_RESOURCE_NOT_FOUND)
    if kind == "query":
        s = args["s"]
        sort = None if s is None else SortKeyRange(op=s[0], values=tuple(s[1]), prefix=tuple(s[2]) if len(s) > 2 else ())
        it = part.query(table, index, args["h"], sort, forward=args["f"], exclusive_start=args["x"])
        recs, more = _collect(it, args["l"])
    elif kind == "scan":
        hi = HASH_SPACE if args["hi"] is None else args["hi"]  # 2**64 does not fit msgpack
        it = part.scan(table, index, hash_lo=args["lo"], hash_hi=hi, exclusive_start=args["x"])
        recs, more = _collect(it, args["l"], args.get("b", PAGE_BYTES))
    else:
        raise ValidationError(f"unknown read {kind!r}")
    close = getattr(it, "close", None)
    if close is not None:
        close()
    return [r.record for r in recs], more


async def serve_write(local: PartitionReplica, table: TableDef, ops: list[list[Any]]) -> list[dict[str, Any]]:
    """Apply writes shipped by a router (this node leads the partition): ``[key, value, None]``
    for a constant put (or delete: value None), ``[key, None, recipe]`` for a write whose
    mutation the recipe describes (``quorumdb.db.recipes``)."""
    wops = [WriteOp(table=table, key=k, mutate=_const(v), constant=True) if recipe is None
            else WriteOp(table=table, key=k, mutate=recipes.rebuild(table, recipe, k))
            for k, v, recipe in ops]
    results = await local.run(lambda b: b.run_writes(wops), table)
    return [{"e": error_to_wire(r)} if isinstance(r, BaseException) else result_to_wire(r) for r in results]


def _run_writes(ops: list[WriteOp], batch: WriteBatch) -> list[WriteResult | BaseException]:
    return batch.run_writes(ops)


def _const(v: Item | None) -> Callable[[Item | None], Item | None]:
    return lambda old: v
