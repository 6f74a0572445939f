"""LocalDataPlane: the single-node ``DataPlane`` over one storage engine.

Reads go table -> ``Router`` -> ``Partition`` -> engine snapshot, on the caller's thread.
Writes (items, DDL, index backfill chunks, deletion chunks, TTL expiry) are jobs of the group
committer, so each is durable before it is acknowledged; a batch runs on the loop thread
(no thread handoff), one durable commit per batch.

The catalog lives in the engine (``db.records`` key space); this object caches the definitions
and re-reads them when the stored catalog version changes, so processes sharing one LMDB
environment see each other's DDL. Background tasks (started by ``start``): index backfills,
dropping data of deleted tables / indexes, and the TTL expirer (which also purges expired
ClientRequestToken records and trims stream records past their retention). All resume after
a restart.

Several processes may each open the same LMDB directory (worker processes): every write job
reads definitions, counters, collection sizes and token records inside the one LMDB write
transaction, which LMDB serializes across processes, so all of them stay exact. An index
backfill is run by the process holding its lease (renewed by every chunk); every process
checks every ``resume_interval_s`` for unfinished backfills and deletions, and takes over a
backfill whose lease has lapsed (its process died). A periodic TTL pass is claimed in the
store first, so one process runs it per interval. Deletions (and explicit TTL passes) of
several processes may overlap; each chunk re-checks the stored state, so that only repeats work.

Never decode items on the read path unless asked (``Record.item`` is lazy) and never sort:
every order comes from the key encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from quorumdb.db import backups, streams, writer
from quorumdb.db.backups import INVALID_RESTORE_TIME, PITR_UNAVAILABLE
from quorumdb.db.committer import GroupCommitter
from quorumdb.db.contract import (
    ChangeRecord,
    ShardInfo,
    SortKeyRange,
    StoredItem,
    StreamInfo,
    WriteOp,
    WriteResult,
)
from quorumdb.db.partition import Router, segment_range
from quorumdb.db.records import (
    BACKUP_PREFIX,
    CATALOG_VERSION,
    GC_PREFIX,
    HEADER_SIZE,
    Record,
    backup_data_prefix,
    collection_prefix,
    counter_key,
    item_prefix,
    loads,
    record_size,
    undo_prefix,
    unpack_counter,
    unpack_i64,
    unpack_u64,
)
from quorumdb.db.undo import state_at, undo_bound
from quorumdb.db.writer import RESOURCE_NOT_FOUND, CatalogView, WriteBatch, WriterState
from quorumdb.errors import (
    ConditionalCheckFailedError,
    InvalidRestoreTimeError,
    PointInTimeRecoveryUnavailableError,
    ResourceNotFoundError,
)
from quorumdb.model.backups import CREATING, BackupDef, backup_id_of, make_backup_id
from quorumdb.model.keys import encode_primary_key, encode_scalar
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import AttributeValue, Item, Key
from quorumdb.storage.engine import Engine, prefix_successor

__all__ = [
    "LocalDataPlane",
    "TTL_MAX_AGE_S",
    "COLLECTION_LIMIT_ENV",
    "collection_limit_from_env",
    "stream_settings_from_env",
]

COLLECTION_LIMIT_ENV = "QUORUMDB_ITEM_COLLECTION_LIMIT_BYTES"
STREAM_RETENTION_ENV = "QUORUMDB_STREAM_RETENTION_SECONDS"
STREAM_SHARD_RECORDS_ENV = "QUORUMDB_STREAM_SHARD_MAX_RECORDS"
_LOOPS = frozenset({"ttl", "resume"})  # periodic tasks, not work to wait for
_LIVE_OWNERS: set[str] = set()  # the open data planes of this process

log = logging.getLogger(__name__)

# DynamoDB does not expire items whose TTL lies more than five years in the past.
TTL_MAX_AGE_S = 5 * 365 * 24 * 3600
TTL_SCAN_CHUNK = 512


def ttl_expired(item: Item | None, attr: str, now: float) -> bool:
    if item is None:
        return False
    av = item.get(attr)
    if av is None:
        return False
    n = av.get("N")
    if not isinstance(n, str):
        return False
    try:
        at = float(n)
    except ValueError:
        return False
    return now - TTL_MAX_AGE_S <= at <= now


def expire_mutator(attr: str, now: float) -> Callable[[Item | None], Item | None]:
    def mutate(old: Item | None) -> Item | None:
        if not ttl_expired(old, attr, now):
            raise ConditionalCheckFailedError()  # updated meanwhile: the new TTL wins
        return None

    return mutate


class LocalDataPlane:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        ttl_interval_s: float = 5.0,
        background: bool = True,
        queue_max: int = 8192,
        batch_max: int = 1024,
        backfill_chunk: int = writer.BACKFILL_CHUNK,
        item_collection_limit_bytes: int | None = None,
        token_window_s: float = writer.TOKEN_WINDOW_S,
        backfill_lease_s: float = writer.BACKFILL_LEASE_S,
        resume_interval_s: float = 5.0,
        backup_chunk: int = backups.BACKUP_CHUNK,
        stream_settings: streams.StreamSettings | None = None,
    ) -> None:
        self.engine = engine
        self._clock = clock
        self.ttl_interval_s = ttl_interval_s
        self.backfill_chunk = backfill_chunk
        self.backup_chunk = backup_chunk
        self.backfill_lease_s = backfill_lease_s
        self.resume_interval_s = resume_interval_s
        self._owner = f"{os.getpid()}:{uuid.uuid4().hex}"  # this data plane in backfill leases
        _LIVE_OWNERS.add(self._owner)
        self._background = background
        if item_collection_limit_bytes is None:
            item_collection_limit_bytes = collection_limit_from_env()
        if stream_settings is None:
            stream_settings = stream_settings_from_env()
        self._state = WriterState(
            collection_limit=item_collection_limit_bytes,
            clock=clock,
            token_window_s=token_window_s,
            stream_settings=stream_settings,
        )
        self.committer: GroupCommitter[WriteBatch] = GroupCommitter(
            engine, self._state.begin, queue_max=queue_max, batch_max=batch_max
        )
        self._router = Router(engine)
        self._catalog = self._load_catalog()
        self._tasks: dict[Any, asyncio.Task[None]] = {}
        self._closed = False

    # -- catalog ---------------------------------------------------------------------------

    def _load_catalog(self) -> CatalogView:
        with self.engine.snapshot() as snap:
            return CatalogView.load(snap)

    def _fresh_catalog(self) -> CatalogView:
        """The cached catalog, re-read when the stored one changed (by another process sharing
        the engine, or by a DDL job of this one whose caller has not resumed yet). The stored
        catalog version is read on every call (one small read), so a request sees every
        catalog change acknowledged before it started, by whichever process."""
        cat = self._catalog
        if unpack_u64(self.engine.get(CATALOG_VERSION)) != cat.version:
            cat = self._catalog = self._load_catalog()
        return cat

    def table(self, name: str) -> TableDef:
        t = self._fresh_catalog().by_name.get(name)
        if t is None:
            raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
        return t

    def table_names(self) -> list[str]:
        return sorted(self._fresh_catalog().by_name)

    async def create_table(self, table: TableDef) -> TableDef:
        t = await self.committer.submit(lambda b: writer.create_table(b, table))
        self._catalog = self._load_catalog()
        return t

    async def update_table(self, table: TableDef) -> TableDef:
        t, dropped = await self.committer.submit(lambda b: writer.update_table(b, table))
        self._catalog = self._load_catalog()
        for prefix in dropped:
            self._spawn(("gc", prefix), self._gc(prefix))
        self._start_backfills(t)
        return t

    async def delete_table(self, name: str) -> TableDef:
        t, prefixes = await self.committer.submit(lambda b: writer.delete_table(b, name))
        self._catalog = self._load_catalog()
        self._router.forget(t.table_id)
        for prefix in prefixes:
            self._spawn(("gc", prefix), self._gc(prefix))
        return t

    def table_stats(self, table: TableDef) -> tuple[int, int]:
        return unpack_counter(self.engine.get(counter_key(table.table_id, None)))

    async def settle_stats(self, table: TableDef) -> None:
        return None  # the counters change in the write's own transaction

    def index_stats(self, table: TableDef, index: IndexDef) -> tuple[int, int]:
        return unpack_counter(self.engine.get(counter_key(table.table_id, index.index_id)))

    def collection_size(self, table: TableDef, hash_value: AttributeValue) -> int:
        """The stored size in bytes of one item collection (tables with an LSI; else 0)."""
        h = table.key_schema.hash
        return unpack_i64(
            self.engine.get(collection_prefix(table.table_id) + encode_scalar(h.type, hash_value[h.type]))
        )

    # -- items -----------------------------------------------------------------------------

    async def get(self, table: TableDef, key: Key, *, consistent: bool = False) -> StoredItem | None:
        # A single node has one committed state: every read is the latest (strongly consistent).
        return self._router.partition_for(table, key[table.key_schema.hash.name]).get(table, key)

    async def write(self, op: WriteOp) -> WriteResult:
        return await self.committer.submit(lambda b: b.run_write(op))

    async def write_many(self, ops: Sequence[WriteOp]) -> list[WriteResult | BaseException]:
        ops = list(ops)  # one job (one future, no task per op); each op still fails alone
        return await self.committer.submit(lambda b: b.run_writes(ops))

    async def transact_write(
        self, ops: Sequence[WriteOp], *, token: str | None = None, fingerprint: bytes = b""
    ) -> list[WriteResult]:
        ops = list(ops)
        return await self.committer.submit(lambda b: b.run_transaction(ops, token, fingerprint))

    async def transact_get(self, keys: Sequence[tuple[TableDef, Key]]) -> list[StoredItem | None]:
        out: list[StoredItem | None] = []
        with self.engine.snapshot() as snap:
            for table, key in keys:
                v = snap.get(item_prefix(table.table_id) + encode_primary_key(table.key_schema, key))
                out.append(None if v is None else Record(v))
        return out

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
        part = self._router.partition_for(table, hash_value)
        return part.query(
            table, index, hash_value, sort, forward=forward, exclusive_start=exclusive_start
        )

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
        parts = self._router.partitions(table, lo, hi)
        return itertools.chain.from_iterable(
            p.scan(table, index, hash_lo=lo, hash_hi=hi, exclusive_start=exclusive_start)
            for p in parts
        )

    # -- streams ---------------------------------------------------------------------------

    async def streams(self, arn: str | None = None) -> list[StreamInfo]:
        with self.engine.snapshot() as snap:
            return streams.load_streams(snap, arn)

    async def stream_records(
        self, stream: StreamInfo, shard: ShardInfo, after_seq: int, *, limit: int, size_max_bytes: int
    ) -> list[ChangeRecord]:
        with self.engine.snapshot() as snap:
            return streams.read_records(snap, stream.stream_id, shard, after_seq, limit, size_max_bytes)

    # -- background work -------------------------------------------------------------------

    def _spawn(self, name: Any, coro: Any) -> None:
        if self._closed or name in self._tasks:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[name] = task
        task.add_done_callback(lambda _t: self._tasks.pop(name, None))

    def _start_backfills(self, t: TableDef) -> None:
        for ix in t.indexes:
            if ix.backfilling:
                self._spawn(("backfill", t.table_id, ix.name), self._backfill(t.table_id, ix.name))

    async def _backfill(self, table_id: int, index_name: str) -> None:
        after: bytes | None = None
        while True:
            state, after = await self.committer.submit(
                functools.partial(
                    writer.backfill_chunk,
                    table_id=table_id,
                    index_name=index_name,
                    after=after,
                    limit=self.backfill_chunk,
                    owner=self._owner,
                    lease_s=self.backfill_lease_s,
                )
            )
            if state == "busy":
                return  # another process runs it; ``resume_background`` checks again later
            if state == "done":
                break
        await self.committer.submit(lambda b: writer.finish_backfill(b, table_id, index_name))
        self._catalog = self._load_catalog()

    async def _gc(self, prefix: bytes) -> None:
        while not await self.committer.submit(lambda b: writer.gc_chunk(b, prefix)):
            pass

    async def wait_background(self) -> None:
        """Wait until the current backfills and deletions are done (for tests and shutdown)."""
        while True:
            tasks = [t for name, t in self._tasks.items() if name not in _LOOPS]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def purge_tokens(self) -> int:
        """Delete expired ClientRequestToken records; returns how many."""
        purged = 0
        while True:
            n = await self.committer.submit(writer.purge_tokens)
            purged += n
            if n < writer.TOKEN_PURGE_CHUNK:
                return purged

    async def purge_streams(self) -> int:
        """Trim stream records older than the retention (and shards and streams that ended
        before it); returns how many records went."""
        purged = 0
        while True:
            n = await self.committer.submit(writer.purge_streams)
            purged += n
            if n < streams.PURGE_CHUNK:
                return purged

    async def expire_now(self) -> int:
        """One TTL pass over every table with TTL enabled (and a purge of expired
        ClientRequestToken records and of stream records past their retention); returns the
        number of items deleted."""
        await self.purge_tokens()
        await self.purge_undo()
        await self.purge_streams()
        now = self._clock()
        deleted = 0
        for t in list(self._fresh_catalog().by_name.values()):
            if not (t.ttl_enabled and t.ttl_attribute):
                continue
            after: bytes | None = None
            while True:
                keys, after = self._expired_chunk(t, after, now)
                if keys:
                    mutate = expire_mutator(t.ttl_attribute, now)
                    ops = [WriteOp(table=t, key=k, mutate=mutate, ttl_expiry=True) for k in keys]
                    for r in await self.write_many(ops):
                        if isinstance(r, WriteResult):
                            deleted += 1
                        elif not isinstance(r, ConditionalCheckFailedError | ResourceNotFoundError):
                            log.warning("TTL deletion failed: %r", r)
                if after is None:
                    break
        return deleted

    def _expired_chunk(self, t: TableDef, after: bytes | None, now: float) -> tuple[list[Key], bytes | None]:
        assert t.ttl_attribute is not None
        attr = t.ttl_attribute
        needle = orjson.dumps(attr) + b':{"N":'
        lo = item_prefix(t.table_id)
        hi = prefix_successor(lo)
        keys: list[Key] = []
        n = 0
        last: bytes | None = None
        with self.engine.snapshot() as snap:
            it = snap.iterate(lo, hi) if after is None else snap.iterate(after, hi, lo_inclusive=False)
            for k, v in it:
                n += 1
                last = k
                if v.find(needle, HEADER_SIZE) >= 0:
                    item = orjson.loads(memoryview(v)[HEADER_SIZE:])
                    if ttl_expired(item, attr, now):
                        keys.append(t.key_schema.key_of(item))
                if n >= TTL_SCAN_CHUNK:
                    return keys, last
        return keys, None

    async def _ttl_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_interval_s)
            try:
                claim = functools.partial(
                    writer.claim_ttl_pass, owner=self._owner, interval_s=self.ttl_interval_s
                )
                if await self.committer.submit(claim):
                    await self.expire_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("TTL pass failed")

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.committer.start()
        if not self._background:
            return
        self.resume_background()
        if self.ttl_interval_s > 0:
            self._spawn("ttl", self._ttl_loop())
        if self.resume_interval_s > 0:
            self._spawn("resume", self._resume_loop())

    def resume_background(self) -> None:
        """Start (in this process) every backfill and deletion the store says is unfinished and
        that is not running here yet: after a restart, and periodically, so that work a crashed
        process left behind is taken over (a live backfill elsewhere is left to its lease holder)."""
        self._catalog = self._load_catalog()
        for t in self._catalog.by_name.values():
            self._start_backfills(t)
        with self.engine.snapshot() as snap:
            prefixes = [k[len(GC_PREFIX) :] for k, _v in snap.iterate(GC_PREFIX, prefix_successor(GC_PREFIX))]
        for p in prefixes:
            self._spawn(("gc", p), self._gc(p))
        self._spawn("abandoned", self._drop_abandoned())

    # -- backups and point-in-time recovery -------------------------------------------------

    def backups(self) -> list[BackupDef]:
        """Every backup (AVAILABLE or still CREATING), oldest first."""
        with self.engine.snapshot() as snap:
            return [
                BackupDef.from_record(loads(v))
                for _k, v in snap.iterate(BACKUP_PREFIX, prefix_successor(BACKUP_PREFIX))
            ]

    def backup(self, backup_arn: str) -> BackupDef | None:
        ids = backup_id_of(backup_arn)
        if ids is None:
            return None
        with self.engine.snapshot() as snap:
            b = backups.read_backup(snap, ids[1])
        return b if b is not None and b.arn == backup_arn else None

    async def create_backup(self, table: TableDef, name: str) -> BackupDef:
        """Copy the table's items as of now (one snapshot) into a new backup; returns it AVAILABLE."""
        snap = self.engine.snapshot()  # closed by _copy_backup
        try:
            t = CatalogView.load(snap).by_id.get(table.table_id)
            if t is None or t.name != table.name:
                raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
            created = math.floor(self._clock() * 1000) / 1000  # DynamoDB's precision: milliseconds
            b = BackupDef(
                backup_id=make_backup_id(created, secrets.token_hex(4)),
                name=name,
                table=t,
                created_at=created,
                owner=self._owner,
            )
            await self.committer.submit(lambda batch: backups.begin_backup(batch, b))
        except BaseException:
            snap.close()
            raise
        return await self._shielded(("backup", b.backup_id), self._copy_backup(snap, b))

    async def _copy_backup(self, snap: Any, b: BackupDef) -> BackupDef:
        try:
            count = size = 0
            prefix = item_prefix(b.table.table_id)
            it = snap.iterate(prefix, prefix_successor(prefix))
            while True:
                chunk = list(itertools.islice(it, self.backup_chunk))
                if chunk:
                    count += len(chunk)
                    size += sum(record_size(v) for _k, v in chunk)
                    await self.committer.submit(
                        functools.partial(backups.backup_chunk, backup_id=b.backup_id, chunk=chunk)
                    )
                if len(chunk) < self.backup_chunk:
                    break
        finally:
            snap.close()
        return await self.committer.submit(
            functools.partial(backups.finish_backup, backup_id=b.backup_id, item_count=count, size_bytes=size)
        )

    async def delete_backup(self, backup_arn: str) -> BackupDef:
        ids = backup_id_of(backup_arn)
        if ids is None:
            raise backups.backup_not_found(backup_arn)
        b = await self.committer.submit(
            functools.partial(backups.delete_backup, backup_id=ids[1], arn=backup_arn)
        )
        prefix = backup_data_prefix(b.backup_id)
        self._spawn(("gc", prefix), self._gc(prefix))
        return b

    async def restore_backup(self, backup_arn: str, target: TableDef) -> TableDef:
        """Create ``target`` (with its ``restore`` info) and fill it with the backup's items."""
        ids = backup_id_of(backup_arn)
        if ids is None:
            raise backups.backup_not_found(backup_arn)
        data = backup_data_prefix(ids[1])

        def records(snap: Any) -> Iterator[bytes]:
            for _k, v in snap.iterate(data, prefix_successor(data)):
                yield v

        return await self._restore(target, records, backup_arn)

    async def restore_to_time(self, source: TableDef, at: float, target: TableDef) -> TableDef:
        """Create ``target`` with the items ``source`` had at time ``at`` (PITR must cover it)."""

        def records(snap: Any) -> Iterator[bytes]:
            return state_at(snap, source.table_id, at)

        return await self._restore(target, records, None, (source, at))

    async def _restore(
        self,
        target: TableDef,
        records: Callable[[Any], Iterator[bytes]],
        backup_arn: str | None,
        source: tuple[TableDef, float] | None = None,
    ) -> TableDef:
        assert target.restore is not None
        target = dataclasses.replace(
            target, status="CREATING", restore=dataclasses.replace(target.restore, in_progress=True, owner=self._owner)
        )
        snap = self.engine.snapshot()  # the state restored from: taken before anything else
        try:
            if source is not None:
                src_def, at = source
                src = CatalogView.load(snap).by_id.get(src_def.table_id)
                if src is None or src.name != src_def.name:
                    raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
                if src.pitr_since is None:
                    raise PointInTimeRecoveryUnavailableError(PITR_UNAVAILABLE.format(src.name))
                if at < src.pitr_since:
                    raise InvalidRestoreTimeError(INVALID_RESTORE_TIME)
            t = await self.committer.submit(lambda b: backups.begin_restore(b, target, backup_arn))
        except BaseException:
            snap.close()
            raise
        self._catalog = self._load_catalog()
        return await self._shielded(("restore", t.table_id), self._fill(snap, t, records(snap)))

    async def _fill(self, snap: Any, t: TableDef, records: Iterator[bytes]) -> TableDef:
        try:
            try:
                while True:
                    chunk = list(itertools.islice(records, self.backup_chunk))
                    if chunk:
                        await self.committer.submit(functools.partial(backups.restore_chunk, target=t, records=chunk))
                    if len(chunk) < self.backup_chunk:
                        break
            finally:
                snap.close()
            done = await self.committer.submit(functools.partial(backups.finish_restore, target=t))
        except Exception:
            log.exception("restoring table %s failed; dropping it", t.name)
            with contextlib.suppress(ResourceNotFoundError):
                await self.delete_table(t.name)
            raise
        self._catalog = self._load_catalog()
        return done

    async def _shielded(self, name: Any, coro: Any) -> Any:
        """Run ``coro`` as background work of the data plane: a caller that goes away does not
        stop it halfway (a backup or restore left half done would need a clean-up)."""
        self._spawn(name, coro)
        task = self._tasks.get(name)
        if task is None:
            raise RuntimeError("the data plane is closed")
        return await asyncio.shield(task)

    async def set_point_in_time_recovery(self, table: TableDef, enabled: bool, days: int | None = None) -> TableDef:
        t = await self.committer.submit(lambda b: backups.set_pitr(b, table, enabled, days))
        self._catalog = self._load_catalog()
        return t

    async def purge_undo(self) -> int:
        """Delete the undo records outside every table's recovery window; returns how many."""
        now = self._clock()
        purged = 0
        for t in list(self._fresh_catalog().by_name.values()):
            cutoff = backups.undo_cutoff_us(t, now)
            prefix = undo_prefix(t.table_id)
            hi = prefix_successor(prefix) if cutoff is None else undo_bound(t.table_id, cutoff)
            with self.engine.snapshot() as snap:
                if next(snap.iterate(prefix, hi), None) is None:
                    continue
            while True:
                n = await self.committer.submit(functools.partial(backups.purge_undo, table_id=t.table_id))
                purged += n
                if n < backups.UNDO_PURGE_CHUNK:
                    break
        return purged

    @staticmethod
    def _abandoned(owner: str) -> bool:
        """Whether the data plane ``owner`` that started a backup or restore is gone."""
        if owner in _LIVE_OWNERS:
            return False
        return owner.partition(":")[0] == str(os.getpid()) or not writer._owner_alive(owner)

    async def _drop_abandoned(self) -> None:
        """Delete backups and restored tables whose copy was cut short by a crash."""
        for b in self.backups():
            if b.status == CREATING and self._abandoned(b.owner):
                log.warning("dropping backup %s: its copy did not finish", b.arn)
                try:
                    await self.committer.submit(
                        functools.partial(backups.delete_backup, backup_id=b.backup_id, arn=b.arn, creating_ok=True)
                    )
                except Exception:
                    continue
                prefix = backup_data_prefix(b.backup_id)
                self._spawn(("gc", prefix), self._gc(prefix))
        for t in list(self._catalog.by_name.values()):
            r = t.restore
            if r is not None and r.in_progress and self._abandoned(r.owner):
                log.warning("dropping table %s: its restore did not finish", t.name)
                try:
                    await self.delete_table(t.name)
                except ResourceNotFoundError:
                    pass

    async def _resume_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resume_interval_s)
            try:
                self.resume_background()
            except Exception:
                log.exception("resuming background work failed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _LIVE_OWNERS.discard(self._owner)
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.committer.stop()
        self.engine.close()


def collection_limit_from_env() -> int:
    """The item collection limit: QUORUMDB_ITEM_COLLECTION_LIMIT_BYTES if set, else 10 GB."""
    raw = os.environ.get(COLLECTION_LIMIT_ENV)
    if raw is None or not raw.strip():
        return writer.COLLECTION_LIMIT_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{COLLECTION_LIMIT_ENV} must be a whole number of bytes, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{COLLECTION_LIMIT_ENV} must be positive, not {value}")
    return value


def stream_settings_from_env() -> streams.StreamSettings:
    """Stream settings, DynamoDB's unless QUORUMDB_STREAM_RETENTION_SECONDS (record retention,
    24 h) or QUORUMDB_STREAM_SHARD_MAX_RECORDS (records per shard before it rolls over; by
    default shards roll over by age only) are set (for tests)."""
    retention = os.environ.get(STREAM_RETENTION_ENV, "").strip()
    records = os.environ.get(STREAM_SHARD_RECORDS_ENV, "").strip()
    try:
        return streams.StreamSettings(
            retention_s=float(retention) if retention else streams.RETENTION_S,
            shard_records_max=int(records) if records else 0,
        )
    except ValueError:
        raise ValueError(f"{STREAM_RETENTION_ENV} and {STREAM_SHARD_RECORDS_ENV} must be numbers") from None
