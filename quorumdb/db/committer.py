"""Group commit: many concurrent writes, one read-write transaction, one durable commit.

Callers on the event loop ``await submit(job)``. Jobs wait in a bounded queue; a dedicated
writer thread takes everything queued (up to ``batch_max``), opens ONE write transaction, runs
each job against it, commits ONCE (a durable sync), and only then resolves every job's future.
While a commit is in flight the event loop keeps accepting requests, so the next batch fills by
itself: the busier the server, the more writes share one sync.

A job is ``job(batch) -> result`` where ``batch`` is what ``begin_batch(txn)`` built for this
transaction. A job that raises fails alone: it must not have written anything before raising
(the data plane stages a job's writes and applies them only when the job succeeded). If the
engine runs out of space the whole batch is aborted, the engine grown, and the batch rerun —
jobs are pure functions of the stored state, so rerunning them is safe.

Never acknowledge (resolve a future) before the commit returned; never run a job on the loop.
"""

from __future__ import annotations

import asyncio
import threading
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
        name: str = "quorumdb-writer",
    ) -> None:
        assert queue_max > 0 and batch_max > 0
        self._engine = engine
        self._begin_batch = begin_batch
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._name = name
        self._pending: deque[_Entry] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._stopping = False
        self.commits = 0  # durable commits done (for tests and metrics)
        self.jobs_done = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self._queue_max)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    async def submit(self, job: Callable[[B], T]) -> T:
        """Run ``job`` in the next batch; return its result once the batch is durable."""
        if self._thread is None:
            self.start()
        if self._stopping:
            raise RuntimeError("the group committer is stopped")
        assert self._slots is not None and self._loop is not None
        await self._slots.acquire()  # bounds the queue: waits while queue_max writes are pending
        try:
            fut: asyncio.Future[T] = self._loop.create_future()
            self._pending.append((job, fut))
            self._wake.set()
            return await fut
        finally:
            self._slots.release()

    async def stop(self) -> None:
        """Finish every queued job, then stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        self._thread = None
        # Deliveries scheduled by the thread's last batch run on the next loop iterations.
        await asyncio.sleep(0)

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait()
            self._wake.clear()
            while pending:
                batch: list[_Entry] = []
                while pending and len(batch) < self._batch_max:
                    batch.append(pending.popleft())
                outcomes = self._execute(batch)
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(_deliver, batch, outcomes)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
            if self._stopping and not pending:
                return

    def _execute(self, batch: list[_Entry]) -> list[tuple[bool, Any]]:
        while True:
            txn = self._engine.begin_write()
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
                self._engine.grow()
            except BaseException as e:  # noqa: B036 - the commit failed: nobody is acknowledged
                txn.abort()
                if ctx is not None:
                    ctx.aborted()
                return [(False, e)] * len(batch)


def _deliver(batch: list[_Entry], outcomes: list[tuple[bool, Any]]) -> None:
    for (_job, fut), (ok, value) in zip(batch, outcomes, strict=True):
        if fut.done():  # the caller was cancelled; the write itself happened
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
