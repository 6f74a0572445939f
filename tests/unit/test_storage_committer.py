"""Group commit: batching, per-job failure isolation, durability before acknowledgement."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from quorumdb.db.committer import GroupCommitter
from quorumdb.storage.engine import Engine, WriteTxn
from quorumdb.storage.lmdb_engine import LmdbEngine
from quorumdb.storage.memory import MemoryEngine


class _Batch:
    def __init__(self, txn: WriteTxn) -> None:
        self.txn = txn

    def before_commit(self) -> None:
        pass

    def aborted(self) -> None:
        pass


@pytest.fixture(params=["memory", "lmdb"])
def engine(request: Any, tmp_path: Any) -> Any:
    e: Engine = MemoryEngine() if request.param == "memory" else LmdbEngine(str(tmp_path / "db"))
    yield e
    e.close()


def test_concurrent_writes_share_commits(engine: Engine) -> None:
    async def main() -> GroupCommitter[_Batch]:
        c = GroupCommitter(engine, _Batch)

        def put(i: int) -> Any:
            def job(b: _Batch) -> int:
                b.txn.put(b"k%04d" % i, b"v")
                return i

            return job

        results = await asyncio.gather(*(c.submit(put(i)) for i in range(500)))
        assert results == list(range(500))
        await c.stop()
        return c

    c = asyncio.run(main())
    assert c.jobs_done == 500
    assert c.commits < 500 / 5  # batched: far fewer syncs than writes
    with engine.snapshot() as s:
        assert len(list(s.iterate())) == 500


def test_failing_job_fails_alone(engine: Engine) -> None:
    async def main() -> None:
        c = GroupCommitter(engine, _Batch)

        def ok(b: _Batch) -> str:
            b.txn.put(b"ok", b"1")
            return "fine"

        def bad(b: _Batch) -> str:
            raise KeyError("nope")

        r = await asyncio.gather(c.submit(ok), c.submit(bad), return_exceptions=True)
        assert r[0] == "fine" and isinstance(r[1], KeyError)
        await c.stop()

    asyncio.run(main())
    assert engine.get(b"ok") == b"1"


def test_ack_only_after_commit(engine: Engine) -> None:
    seen: list[bytes | None] = []

    async def main() -> None:
        c = GroupCommitter(engine, _Batch)

        def job(b: _Batch) -> None:
            b.txn.put(b"x", b"1")

        await c.submit(job)
        seen.append(engine.get(b"x"))  # visible to a fresh reader once acknowledged
        await c.stop()

    asyncio.run(main())
    assert seen == [b"1"]


def test_map_full_batch_is_rerun(tmp_path: Any) -> None:
    e = LmdbEngine(str(tmp_path / "db"), map_size=1 << 20)
    runs: list[int] = []

    async def main() -> None:
        c = GroupCommitter(e, _Batch)

        def big(i: int) -> Any:
            def job(b: _Batch) -> int:
                runs.append(i)
                for j in range(200):
                    b.txn.put(b"%d-%d" % (i, j), b"x" * 1000)
                return i

            return job

        assert await asyncio.gather(*(c.submit(big(i)) for i in range(20))) == list(range(20))
        await c.stop()

    asyncio.run(main())
    assert len(runs) > 20  # some batch hit the map limit and ran again
    with e.snapshot() as s:
        assert len(list(s.iterate())) == 4000
    e.close()


def test_queue_is_bounded() -> None:
    e = MemoryEngine()

    async def main() -> None:
        c = GroupCommitter(e, _Batch, queue_max=4, batch_max=2)

        def job(b: _Batch) -> int:
            return len(c._pending)

        depths = await asyncio.gather(*(c.submit(job) for i in range(50)))
        assert max(depths) <= 4
        await c.stop()

    asyncio.run(main())


def test_one_loop_iteration_is_one_batch(engine: Engine) -> None:
    """Writes submitted in the same loop iteration share one transaction and one sync."""

    async def main() -> GroupCommitter[_Batch]:
        c = GroupCommitter(engine, _Batch)

        def job(b: _Batch) -> None:
            b.txn.put(b"k", b"v")

        await asyncio.gather(*(c.submit(job) for _ in range(100)))
        await c.stop()
        return c

    c = asyncio.run(main())
    assert (c.commits, c.jobs_done) == (1, 100)


def test_stop_drains_the_queue() -> None:
    e = MemoryEngine()

    async def main() -> None:
        c = GroupCommitter(e, _Batch)

        def job(b: _Batch) -> int:
            b.txn.put(b"d", b"1")
            return 7

        task = asyncio.ensure_future(c.submit(job))
        await asyncio.sleep(0)  # queued, flush not yet run
        await c.stop()
        assert task.done() and task.result() == 7

    asyncio.run(main())
    assert e.get(b"d") == b"1"


def test_engine_failure_fails_the_batch_instead_of_hanging() -> None:
    class Broken(MemoryEngine):
        def begin_write(self) -> Any:
            raise OSError("disk gone")

    async def main() -> None:
        c = GroupCommitter(Broken(), _Batch)
        r = await asyncio.wait_for(
            asyncio.gather(c.submit(lambda b: 1), c.submit(lambda b: 2), return_exceptions=True), 5
        )
        assert all(isinstance(x, OSError) for x in r)
        await c.stop()

    asyncio.run(main())
