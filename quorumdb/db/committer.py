"""Group commit: many concurrent writes, one read-write transaction, one durable commit.

Callers on the event loop ``await submit(job)``. The first job submitted in a loop iteration
schedules a flush with ``loop.call_soon``, so every request parsed in the same iteration joins
it. The flush runs on the loop thread: it takes everything queued (up to ``batch_max``), opens
ONE write transaction, runs each job against it, commits ONCE (a durable sync), and only then
resolves every job's future. While the sync blocks the loop, new requests wait in the socket
buffers and form the next batch by themselves: the busier the server, the more writes share one
sync. No thread handoff: a write costs no wakeup pipe, no futex and no GIL switch. (With several
processes sharing one LMDB environment the wait for LMDB's write lock also blocks the loop;
batches stay bounded by ``batch_max``.)

A job is ``job(batch) -> result`` where ``batch`` is what ``begin_batch(txn)`` built for this
transaction. A job that raises fails alone: it must not have written anything before raising
(the data plane stages a job's writes and applies them only when the job succeeded). If the
engine runs out of space the whole batch is aborted, the engine grown, and the batch rerun —
jobs are pure functions of the stored state, so rerunning them is safe.

Never acknowledge (resolve a future) before the commit returned; a job must never await.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from quorumdb.storage.engine import Engine, StorageFullError, WriteTxn

__all__ = ["GroupCommitter", "Batch"]

T = TypeVar("T")
B = TypeVar("B", bound="Batch")


class Batch(Protocol):
    """Per-transaction state the data plane keeps (staged counters, catalog view, ...)."""

    def before_commit(self) -> None:
        """Write what the batch accumulated (e.g. counters) into the transaction."""
        ...

    def aborted(self) -> None:
        """The transaction was rolled back: forget anything cached from it."""
        ...


_Entry = tuple[Callable[[Any], Any], "asyncio.Future[Any]"]


class GroupCommitter(Generic[B]):
    def __init__(
        self,
        engine: Engine,
        begin_batch: Callable[[WriteTxn], B],
        *,
        queue_max: int = 8192,
        batch_max: int = 1024,
    ) -> None:
        assert queue_max > 0 and batch_max > 0
        self._engine = engine
        self._begin_batch = begin_batch
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._pending: deque[_Entry] = deque()
        self._waiting = 0  # submitted and not yet resolved (queued or in the running batch)
        self._room: deque[asyncio.Future[None]] = deque()  # submitters waiting for queue room
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._stopping = False
        self.commits = 0  # durable commits done (for tests and metrics)
        self.jobs_done = 0

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._stopping = False

    async def submit(self, job: Callable[[B], T]) -> T:
        """Run ``job`` in the next batch; return its result once the batch is durable."""
        loop = self._loop
        if loop is None:
            self.start()
            loop = self._loop
            assert loop is not None
        while True:
            if self._stopping:
                raise RuntimeError("the group committer is stopped")
            if self._waiting < self._queue_max:
                break
            room: asyncio.Future[None] = loop.create_future()  # bounds the queue
            self._room.append(room)
            try:
                await room
            except asyncio.CancelledError:
                if room.done() and not room.cancelled():
                    self._wake_one()  # pass the freed slot on
                raise
        self._waiting += 1
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((job, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        try:
            return await fut
        finally:
            self._waiting -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        room = self._room
        while room:
            w = room.popleft()
            if not w.done():
                w.set_result(None)
                return

    async def stop(self) -> None:
        """Finish every queued job now (a later ``submit`` starts the committer again)."""
        if self._loop is None:
            return
        self._stopping = True
        while self._pending:
            self._run_batch()
        for w in self._room:
            if not w.done():
                w.set_result(None)  # they see ``_stopping`` and raise
        self._room.clear()
        self._loop = None
        await asyncio.sleep(0)

    # -- flush (on the loop thread) ------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        self._run_batch()
        if self._pending and self._loop is not None:
            # More than batch_max queued: let the loop breathe, then take the next batch.
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _run_batch(self) -> None:
        pending = self._pending
        n = min(len(pending), self._batch_max)
        batch = [pending.popleft() for _ in range(n)]
        outcomes = self._execute(batch)
        for (_job, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if fut.done():  # the caller was cancelled; the write itself happened
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _execute(self, batch: list[_Entry]) -> list[tuple[bool, Any]]:
        while True:
            try:
                txn = self._engine.begin_write()
            except Exception as e:  # nothing ran: every job of the batch fails
                return [(False, e)] * len(batch)
            ctx = None
            try:
                ctx = self._begin_batch(txn)
                outcomes: list[tuple[bool, Any]] = []
                for job, _fut in batch:
                    try:
                        outcomes.append((True, job(ctx)))
                    except StorageFullError:
                        raise
                    except BaseException as e:  # noqa: B036 - delivered to the caller
                        outcomes.append((False, e))
                ctx.before_commit()
                txn.commit()
                self.commits += 1
                self.jobs_done += len(batch)
                return outcomes
            except StorageFullError:
                txn.abort()
                if ctx is not None:
                    ctx.aborted()
                try:
                    self._engine.grow()
                except Exception as e:  # could not grow: fail the batch rather than strand it
                    return [(False, e)] * len(batch)
            except BaseException as e:  # noqa: B036 - the commit failed: nobody is acknowledged
                txn.abort()
                if ctx is not None:
                    ctx.aborted()
                return [(False, e)] * len(batch)
