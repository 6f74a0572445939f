"""The background work that keeps a cluster's global secondary indexes: propagation, backfill,
readiness. One ``IndexWork`` per node, driven by its ``ClusterDataPlane``.

Every ``interval_s`` the node looks at the base partitions it leads:

- *propagation*: a partition whose outbox holds undelivered changes (``db.gsi``) gets a task
  that ships them while this node leads it: a window of committed change records is split by
  destination index partition (``gsi.plan_delivery``), each destination's share is applied by
  that partition's leader as one command of its group (``gsi.apply_changes``, RPC
  ``dp.gsi_apply`` when it leads elsewhere), and once every destination has acknowledged the
  window the outbox is trimmed up to it (``gsi.trim``: the replicated cursor moves). A failed
  destination is retried (the others are not sent the same window again) and the window stays
  until all have it. The task then waits for the next applied command. A new leader starts
  from the cursor; replays are skipped by the index partitions' high-water marks.
- *backfill*: for a global index being created, the leader of each base partition walks its
  items a chunk per command (``gsi.backfill_chunk``), from where the replicated walk state
  says; the changes it stages are propagated like any other.
- *readiness*: the leader of a table's first base partition checks, for each index being
  created, that every base partition has caught up with it (``gsi.caught_up``, RPC
  ``dp.gsi_state`` for partitions not hosted here) and then commits ``index_ready`` to the
  metadata, which makes the index ACTIVE.

Everything here is at least once and idempotent: a task cut short by a crash or a leader change
is started again from replicated state, by whichever node leads then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from quorumdb.cluster.metadata import cmd_index_ready
from quorumdb.db import gsi
from quorumdb.db.records import loads, table_def_key
from quorumdb.errors import ResourceNotFoundError
from quorumdb.model.schema import IndexDef, TableDef

if TYPE_CHECKING:
    from quorumdb.cluster.dataplane import ClusterDataPlane, PartitionReplica

__all__ = ["IndexWork", "BATCH_DELAY_ENV"]

log = logging.getLogger(__name__)

# For fault tests: wait this long before shipping each window of changes, so that changes pile
# up in the outboxes (a kill then always lands mid-propagation).
BATCH_DELAY_ENV = "QUORUMDB_GSI_BATCH_DELAY_MS"
_IDLE_S = 0.5  # a propagation task looks again this often even if nothing was applied
_READY_EVERY_S = 0.2


class _Unplaced(Exception):
    """An index of the definition has no partitions in this node's map yet."""


class IndexWork:
    def __init__(self, dp: ClusterDataPlane, *, interval_s: float = 0.1, retry_s: float = 0.1,
                 batch_delay_s: float | None = None) -> None:
        self.dp = dp
        self.interval_s = interval_s
        self.retry_s = retry_s
        if batch_delay_s is None:
            batch_delay_s = float(os.environ.get(BATCH_DELAY_ENV, "0") or 0) / 1000
        self.batch_delay_s = batch_delay_s
        self._tasks: dict[tuple[Any, ...], asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self.delivered = 0  # changes acknowledged by index partitions (figures for tests)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        tasks = [t for t in [self._loop, *self._tasks.values()] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._loop = None
        self._tasks.clear()

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - never let one bad round stop the work
                log.warning("index work round failed", exc_info=True)
            await asyncio.sleep(self.interval_s)

    def _spawn(self, key: tuple[Any, ...], coro: Coroutine[Any, Any, None]) -> None:
        if key in self._tasks:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[key] = task
        task.add_done_callback(lambda _t: self._tasks.pop(key, None))

    def tick(self) -> None:
        """Start whatever work the partitions this node leads need and is not running yet."""
        host = self.dp.host
        for name in host.table_names():
            try:
                table = self.dp.table(name)
            except ResourceNotFoundError:
                continue
            creating = [ix for ix in table.global_indexes if ix.backfilling]
            for p in host.partitions(name):
                local = host.replica(p.group_id)
                if local is None or not local.handle.is_leader():
                    continue
                cursor, last = gsi.outbox_state(local.store.engine)
                if last > cursor:
                    self._spawn(("propagate", p.group_id), self._propagate(p, local))
                for ix in creating:
                    if "done" not in gsi.backfill_state(local.store.engine, ix.index_id):
                        self._spawn(("backfill", p.group_id, ix.index_id), self._backfill(p, local, name, ix.index_id))
                if creating and p.hash_lo == 0:
                    self._spawn(("ready", name), self._check_ready(name))

    def status(self) -> dict[str, Any]:
        """The outboxes of the base partitions this node leads (for operators and fault tests):
        per partition its cursor and last change number (the difference is in flight)."""
        host = self.dp.host
        parts = []
        for name in host.table_names():
            for p in host.partitions(name):
                local = host.replica(p.group_id)
                if local is None or not local.handle.is_leader():
                    continue
                cursor, last = gsi.outbox_state(local.store.engine)
                parts.append({"table": name, "group": p.group_id, "cursor": cursor, "last": last})
        return {"node": host.node_id, "delivered": self.delivered, "partitions": parts,
                "backlog": sum(p["last"] - p["cursor"] for p in parts)}

    def _leads(self, p: Any, local: PartitionReplica) -> bool:
        return self.dp.host.replica(p.group_id) is local and local.handle.is_leader()

    # -- propagation -----------------------------------------------------------------------------

    async def _propagate(self, p: Any, local: PartitionReplica) -> None:
        wake = asyncio.Event()
        local.on_apply = wake.set
        progress: dict[str, int] = {}  # destination group -> change number it acknowledged
        try:
            while self._leads(p, local):
                cursor, last = gsi.outbox_state(local.store.engine)
                if last <= cursor:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), _IDLE_S)
                    continue
                if self.batch_delay_s:
                    await asyncio.sleep(self.batch_delay_s)
                if not await self._ship(p, local, cursor, progress):
                    await asyncio.sleep(self.retry_s)
        finally:
            if local.on_apply == wake.set:
                local.on_apply = None

    async def _ship(self, p: Any, local: PartitionReplica, cursor: int, progress: dict[str, int]) -> bool:
        """Deliver one window of changes after ``cursor`` and trim it; False to try again later."""
        table = self._definition(p.table, local)
        if table is None:
            return False
        window = gsi.read_outbox(local.store.engine, cursor)
        if not window:
            return True
        hi = window[-1][0]
        dests: dict[str, Any] = {}

        def route(ix: IndexDef, h: int) -> str:
            try:
                dest = self.dp.index_partition(table.name, ix.name, h)
            except ResourceNotFoundError:
                raise _Unplaced(ix.name) from None
            dests[dest.group_id] = dest
            return str(dest.group_id)

        indexes = {ix.index_id: ix for ix in table.global_indexes}
        try:
            plan = gsi.plan_delivery(window, indexes, route, lambda d: progress.get(d, cursor))
        except _Unplaced:
            return False
        sent = await asyncio.gather(*(self._send(dests[d], table, p.group_id, hi, changes) for d, changes in plan.items()))
        for d, ok in zip(plan, sent, strict=True):
            if ok:
                progress[d] = hi
                self.delivered += len(plan[d])
        if not all(sent):
            return False
        try:
            await local.run(functools.partial(gsi.trim, upto=hi), table)
        except Exception:  # noqa: BLE001 - not the leader any more, or the command failed: again later
            log.debug("partition %s: trimming the outbox failed", p.group_id, exc_info=True)
            return False
        progress.clear()  # every destination has the whole window: the cursor says so now
        return True

    async def _send(self, dest: Any, table: TableDef, source: str, hi: int, changes: list[gsi.Change]) -> bool:
        payload = {"g": dest.group_id, "t": table.name, "s": source, "hi": hi, "c": changes}
        job = functools.partial(gsi.apply_changes, table=table, source=source, hi=hi, changes=changes)
        try:
            await self.dp.on_leader(dest, job, table, "dp.gsi_apply", payload)
        except Exception:  # noqa: BLE001 - an index partition without a leader: sent again later
            log.debug("delivery from %s to %s failed", source, dest.group_id, exc_info=True)
            return False
        return True

    def _definition(self, name: str, local: PartitionReplica) -> TableDef | None:
        """The newest definition of table ``name`` known here: the metadata's, or the one the
        partition's writes were evaluated with if that is newer (this node's copy of the
        metadata may lag the router's that sent a write). None if the table is gone."""
        try:
            table = self.dp.table(name)
        except ResourceNotFoundError:
            return None
        raw = local.store.engine.get(table_def_key(name))
        if raw is not None:
            stored = TableDef.from_record(loads(raw))
            if stored.table_id == table.table_id and stored.version > table.version:
                return stored
        return table

    # -- backfill and readiness --------------------------------------------------------------------

    async def _backfill(self, p: Any, local: PartitionReplica, name: str, index_id: int) -> None:
        while self._leads(p, local):
            try:
                table = self.dp.table(name)
            except ResourceNotFoundError:
                return
            ix = next((i for i in table.global_indexes if i.index_id == index_id), None)
            if ix is None or not ix.backfilling:
                return
            cursor, last = gsi.outbox_state(local.store.engine)
            if last - cursor > gsi.OUTBOX_RECORDS_MAX // 2:
                await asyncio.sleep(self.retry_s)  # let propagation catch up; writes come first
                continue
            try:
                if await local.run(functools.partial(gsi.backfill_chunk, table=table, index_id=index_id), table):
                    return
            except Exception:  # noqa: BLE001 - leadership moved or the command failed: tick restarts it
                log.debug("partition %s: backfill chunk failed", p.group_id, exc_info=True)
                return

    async def _check_ready(self, name: str) -> None:
        await asyncio.sleep(_READY_EVERY_S)
        try:
            table = self.dp.table(name)
        except ResourceNotFoundError:
            return
        for ix in table.global_indexes:
            if not ix.backfilling:
                continue
            states = [await self._caught_up(p, table, ix.index_id) for p in self.dp.host.partitions(name)]
            if all(states):
                res = await self.dp.host.meta_propose(cmd_index_ready(name, ix.name, ix.index_id))
                log.info("index %s of %s has caught up: %s", ix.name, name, res.get("ok"))

    async def _caught_up(self, p: Any, table: TableDef, index_id: int) -> bool:
        local = self.dp.host.replica(p.group_id)
        if local is not None and gsi.caught_up(local.store.engine, index_id):
            return True
        for node in p.replicas:
            if node == self.dp.host.node_id:
                continue
            try:
                return bool(await self.dp.host.call(node, "dp.gsi_state", {"g": p.group_id, "t": table.name, "i": index_id}))
            except Exception:  # noqa: BLE001 - ask the next replica
                continue
        return False
