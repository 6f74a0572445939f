"""ClientRequestToken records in storage: written in the transaction's own commit.

Same token and parameters within the window -> the first outcome, never applied twice (also
for concurrent duplicates, after a restart, and from a second data plane on the same LMDB
directory, which is what a second worker process is); other parameters ->
IdempotentParameterMismatchError; a cancelled transaction records nothing; records expire.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_dataplane_support import run, table_def

from quorumdb.db import LocalDataPlane, open_local
from quorumdb.db.contract import WriteOp, WriteResult
from quorumdb.db.records import TOKEN_AT_PREFIX, TOKEN_PREFIX
from quorumdb.errors import (
    ConditionalCheckFailedError,
    IdempotentParameterMismatchError,
    TransactionCanceledError,
)
from quorumdb.model.schema import TableDef
from quorumdb.model.types import Item
from quorumdb.storage.engine import prefix_successor

WINDOW = 600.0


def hash_table() -> TableDef:
    return table_def(range_key=False, attributes={"pk": "S"})


def incr(t: TableDef, pk: str, by: int = 1) -> WriteOp:
    """Add ``by`` to n: applying it twice is visible."""

    def mutate(old: Item | None) -> Item | None:
        n = 0 if old is None else int(old["n"]["N"])
        return {"pk": {"S": pk}, "n": {"N": str(n + by)}}

    return WriteOp(table=t, key={"pk": {"S": pk}}, mutate=mutate)


def fail(t: TableDef, pk: str) -> WriteOp:
    def mutate(old: Item | None) -> Item | None:
        raise ConditionalCheckFailedError()

    return WriteOp(table=t, key={"pk": {"S": pk}}, mutate=mutate)


async def value(dp: LocalDataPlane, t: TableDef, pk: str) -> int:
    s = await dp.get(t, {"pk": {"S": pk}})
    return 0 if s is None else int(s.item["n"]["N"])


def token_keys(dp: LocalDataPlane) -> tuple[int, int]:
    with dp.engine.snapshot() as snap:
        a = sum(1 for _ in snap.iterate(TOKEN_PREFIX, prefix_successor(TOKEN_PREFIX)))
        b = sum(1 for _ in snap.iterate(TOKEN_AT_PREFIX, prefix_successor(TOKEN_AT_PREFIX)))
    return a, b


def test_replay_mismatch_and_cancelled_first_attempt(engine_kind: str, tmp_path: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(hash_table())
        first = await dp.transact_write([incr(t, "a"), incr(t, "b", 5)], token="tok", fingerprint=b"F")
        assert not any(r.replayed for r in first)
        again = await dp.transact_write([incr(t, "a"), incr(t, "b", 5)], token="tok", fingerprint=b"F")
        assert all(r.replayed for r in again)
        assert [r.new_size for r in again] == [r.new_size for r in first]
        assert await value(dp, t, "a") == 1 and await value(dp, t, "b") == 5
        with pytest.raises(IdempotentParameterMismatchError, match="non-identical request"):
            await dp.transact_write([incr(t, "a")], token="tok", fingerprint=b"G")
        assert await value(dp, t, "a") == 1
        # Without a token, or with another one, it applies again.
        await dp.transact_write([incr(t, "a")])
        await dp.transact_write([incr(t, "a")], token="tok2", fingerprint=b"F")
        assert await value(dp, t, "a") == 3
        # A cancelled transaction records nothing: its retry runs (and may succeed).
        with pytest.raises(TransactionCanceledError):
            await dp.transact_write([incr(t, "c"), fail(t, "d")], token="tok3", fingerprint=b"H")
        assert await value(dp, t, "c") == 0
        res = await dp.transact_write([incr(t, "c")], token="tok3", fingerprint=b"H2")
        assert not res[0].replayed and await value(dp, t, "c") == 1
        assert token_keys(dp) == (3, 3)

    run(engine_kind, tmp_path, body)


def test_concurrent_duplicates_apply_once(engine_kind: str, tmp_path: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(hash_table())
        results = await asyncio.gather(
            *(dp.transact_write([incr(t, "a")], token=f"tok{i % 3}", fingerprint=b"F") for i in range(30))
        )
        applied = [r for r in results if not r[0].replayed]
        assert len(applied) == 3
        assert await value(dp, t, "a") == 3

    run(engine_kind, tmp_path, body)


def test_records_expire_lazily_and_are_purged(engine_kind: str, tmp_path: Any) -> None:
    now = [1_000.0]

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(hash_table())
        await dp.transact_write([incr(t, "a")], token="old", fingerprint=b"F")
        now[0] += 300
        await dp.transact_write([incr(t, "a")], token="young", fingerprint=b"F")
        now[0] += 299
        assert (await dp.transact_write([incr(t, "a")], token="old", fingerprint=b"F"))[0].replayed
        now[0] += 1  # "old" is now 600 s old: expired, so it runs again (also with new parameters)
        res = await dp.transact_write([incr(t, "a", 10)], token="old", fingerprint=b"other")
        assert not res[0].replayed and await value(dp, t, "a") == 12
        assert token_keys(dp) == (2, 2)  # the stale time-order entry was replaced, not leaked
        now[0] += 301  # "young" expired, the re-run "old" has not
        assert await dp.purge_tokens() == 1
        assert token_keys(dp) == (1, 1)
        assert (await dp.transact_write([incr(t, "a", 10)], token="old", fingerprint=b"other"))[0].replayed
        now[0] += 600
        await dp.expire_now()  # the TTL pass purges tokens too
        assert token_keys(dp) == (0, 0)
        assert await value(dp, t, "a") == 12

    run(engine_kind, tmp_path, body, clock=lambda: now[0])


def test_short_window_option(tmp_path: Any) -> None:
    now = [0.0]

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(hash_table())
        await dp.transact_write([incr(t, "a")], token="x", fingerprint=b"F")
        now[0] = 4.9
        assert (await dp.transact_write([incr(t, "a")], token="x", fingerprint=b"F"))[0].replayed
        now[0] = 5.0
        assert not (await dp.transact_write([incr(t, "a")], token="x", fingerprint=b"F"))[0].replayed
        assert await value(dp, t, "a") == 2

    run("memory", tmp_path, body, clock=lambda: now[0], token_window_s=5.0)


def test_replay_after_restart(tmp_path: Any) -> None:
    path = str(tmp_path / "data")

    async def first() -> None:
        dp = open_local(path, ttl_interval_s=0)
        await dp.start()
        t = await dp.create_table(hash_table())
        await dp.transact_write([incr(t, "a")], token="tok", fingerprint=b"F")
        await dp.close()

    async def second() -> None:
        dp = open_local(path, ttl_interval_s=0)
        await dp.start()
        t = dp.table("t")
        res = await dp.transact_write([incr(t, "a")], token="tok", fingerprint=b"F")
        assert res[0].replayed and await value(dp, t, "a") == 1
        with pytest.raises(IdempotentParameterMismatchError):
            await dp.transact_write([incr(t, "a", 2)], token="tok", fingerprint=b"G")
        await dp.close()

    asyncio.run(first())
    asyncio.run(second())


def two_data_planes(path: str) -> tuple[LocalDataPlane, LocalDataPlane]:
    """Two data planes over one LMDB environment, each with its own writer thread, catalog
    cache and committer: what two worker processes are, except that LMDB allows one handle per
    environment in a process, so they share it (LMDB's write lock serializes them the same way)."""
    a = open_local(path, ttl_interval_s=0)
    return a, LocalDataPlane(a.engine, ttl_interval_s=0)


def test_two_data_planes_on_one_directory(tmp_path: Any) -> None:
    path = str(tmp_path / "data")

    async def body() -> None:
        a, b = two_data_planes(path)
        await a.start()
        await b.start()
        try:
            t = await a.create_table(hash_table())
            tb = b.table("t")
            await a.transact_write([incr(t, "x")], token="one", fingerprint=b"F")
            res = await b.transact_write([incr(tb, "x")], token="one", fingerprint=b"F")
            assert res[0].replayed and await value(b, tb, "x") == 1
            with pytest.raises(IdempotentParameterMismatchError):
                await b.transact_write([incr(tb, "y")], token="one", fingerprint=b"G")
            # Concurrent duplicates through both: each token applies exactly once.
            calls = []
            for i in range(40):
                dp, table = (a, t) if i % 2 else (b, tb)
                calls.append(dp.transact_write([incr(table, "y")], token=f"t{i % 5}", fingerprint=b"F"))
            outs: list[list[WriteResult]] = await asyncio.gather(*calls)
            assert sum(1 for r in outs if not r[0].replayed) == 5
            assert await value(a, t, "y") == 5 and await value(b, tb, "y") == 5
        finally:
            await a.close()
            await b.close()

    asyncio.run(body())
