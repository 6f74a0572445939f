"""Item collections of tables with local secondary indexes: exact size counters and the limit.

The counter of every collection is checked against a recount from scratch (the table's items
plus their LSI entries, each entry with DynamoDB's 100-byte overhead) after random writes,
transactions, TTL deletions, restarts and table deletion, on both engines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import random
import subprocess
import sys
from typing import Any

import orjson
import pytest
from test_dataplane_support import PK, SK, put, run
from test_dataplane_support import table_def as support_table_def

from quorumdb.api.common import item_collection_metrics
from quorumdb.db import LocalDataPlane, open_local
from quorumdb.db.contract import WriteOp, WriteResult
from quorumdb.db.local import COLLECTION_LIMIT_ENV
from quorumdb.db.records import (
    backfill_lease_key,
    collection_prefix,
    index_prefix,
    item_prefix,
    record_item,
)
from quorumdb.db.writer import (
    COLLECTION_LIMIT_BYTES,
    COLLECTION_TOO_BIG,
    LSI_ENTRY_OVERHEAD,
    claim_ttl_pass,
    index_entry,
)
from quorumdb.errors import (
    ConditionalCheckFailedError,
    ItemCollectionSizeLimitExceededError,
    TransactionCanceledError,
)
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import Item, ScalarType
from quorumdb.storage.engine import prefix_successor

# The LSI and GSI key attributes of these tables, besides pk and sk.
ATTRIBUTES: dict[str, ScalarType] = {"pk": "S", "sk": "N", "a": "S", "b": "S", "g": "S"}


def lsi(name: str, attr: str, projection: str = "ALL", include: tuple[str, ...] = ()) -> IndexDef:
    return IndexDef(
        name=name,
        index_id=0,
        local=True,
        key_schema=KeySchema(hash=PK, range=KeyAttr(name=attr, type="S")),
        projection=projection,
        non_key_attributes=include,
    )


def gsi(name: str, attr: str) -> IndexDef:
    return IndexDef(name=name, index_id=0, local=False, key_schema=KeySchema(hash=KeyAttr(name=attr, type="S")))


def table_def(name: str = "t", indexes: tuple[IndexDef, ...] = ()) -> TableDef:
    return support_table_def(name, indexes=indexes, attributes=ATTRIBUTES)


LSI_TABLE = (lsi("by_a", "a", "ALL"), lsi("by_b", "b", "INCLUDE", ("x",)), gsi("by_g", "g"))


def delete(t: TableDef, pk: str, sk: int) -> WriteOp:
    return WriteOp(table=t, key={"pk": {"S": pk}, "sk": {"N": str(sk)}}, mutate=lambda old: None)


def item(pk: str, sk: int, **attrs: str) -> Item:
    out: Item = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    for k, v in attrs.items():
        out[k] = {"S": v}
    return out


async def recount(dp: LocalDataPlane, t: TableDef) -> dict[str, int]:
    """Every collection's size, from scratch: items plus LSI entries (+100 bytes each)."""
    sizes: dict[str, int] = {}
    for s in await dp.scan(t, None):
        pk = s.item["pk"]["S"]
        sizes[pk] = sizes.get(pk, 0) + s.size
    for ix in t.indexes:
        if not ix.local:
            continue
        for s in await dp.scan(t, ix):
            pk = s.item["pk"]["S"]
            sizes[pk] = sizes.get(pk, 0) + s.size + LSI_ENTRY_OVERHEAD
    return sizes


async def stored(dp: LocalDataPlane, t: TableDef) -> dict[str, int]:
    """Every collection counter as stored (keys are absent when a collection is empty)."""
    lo = collection_prefix(t.table_id)
    out: dict[str, int] = {}
    with dp.engine.snapshot() as snap:
        keys = [k for k, _v in snap.iterate(lo, prefix_successor(lo))]
    assert all(k.startswith(lo) for k in keys)
    for pk in {s.item["pk"]["S"] for s in await dp.scan(t, None)}:
        out[pk] = dp.collection_size(t, {"S": pk})
    assert len(keys) == len(out), "a counter is left for an empty collection"
    return out


def test_sizes_counted_as_dynamodb_counts_them(engine_kind: str, tmp_path: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=LSI_TABLE))
        full = item("p", 1, a="x", b="y", x="inc", z="not projected", g="gg")
        r = await dp.write(put(t, full))
        projected_b = {k: full[k] for k in ("pk", "sk", "b", "x")}
        expected = item_size(full) + (item_size(full) + 100) + (item_size(projected_b) + 100)
        assert r.collection_size == expected == dp.collection_size(t, {"S": "p"})
        # Sparse: an item without the LSI keys counts only itself.
        r2 = await dp.write(put(t, item("p", 2, z="zz")))
        assert r2.collection_size == expected + item_size(item("p", 2, z="zz"))
        # Another partition key is another collection; GSI entries never count.
        r3 = await dp.write(put(t, item("q", 1, g="only gsi")))
        assert r3.collection_size == item_size(item("q", 1, g="only gsi"))
        # Deleting everything leaves no counter behind.
        for pk, sk in (("p", 1), ("p", 2), ("q", 1)):
            r = await dp.write(delete(t, pk, sk))
        assert r.collection_size == 0
        assert await stored(dp, t) == {} and dp.collection_size(t, {"S": "p"}) == 0
        # A table without an LSI reports nothing.
        plain = await dp.create_table(table_def("plain", indexes=(gsi("g1", "g"),)))
        assert (await dp.write(put(plain, item("p", 1)))).collection_size is None

    run(engine_kind, tmp_path, body)


def _random_op(rng: random.Random, t: TableDef) -> WriteOp:
    pk = rng.choice("abc")
    sk = rng.randrange(6)
    roll = rng.random()
    if roll < 0.2:
        return delete(t, pk, sk)
    attrs: dict[str, str] = {}
    for name in ("a", "b", "x", "z", "g"):
        if rng.random() < 0.6:
            attrs[name] = "v" * rng.randrange(1, 40)
    new = item(pk, sk, **attrs)
    if roll < 0.5:
        return put(t, new)

    def update(old: Item | None) -> Item | None:  # keeps some old attributes, changes others
        merged = dict(old or {})
        merged.update(new)
        if "a" in merged and rng.random() < 0.3:
            del merged["a"]
        return merged

    if roll < 0.6:
        def refuse(old: Item | None) -> Item | None:
            raise ConditionalCheckFailedError()

        return WriteOp(table=t, key=t.key_schema.key_of(new), mutate=refuse)
    return WriteOp(table=t, key=t.key_schema.key_of(new), mutate=update)


@pytest.mark.parametrize("seed", [1, 2])
def test_counters_exact_through_random_writes_transactions_and_restart(seed: int, engine_kind: str, tmp_path: Any) -> None:
    rng = random.Random(seed)

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=LSI_TABLE))
        for _round in range(12):
            await dp.write_many([_random_op(rng, t) for _ in range(20)])
            keys = set()
            tx = []
            for _ in range(6):
                op = _random_op(rng, t)
                k = (op.key["pk"]["S"], op.key["sk"]["N"])
                if k not in keys:
                    keys.add(k)
                    tx.append(op)
            try:
                results = await dp.transact_write(tx)
            except TransactionCanceledError:
                pass
            else:
                for op, res in zip(tx, results, strict=True):  # sizes after the whole transaction
                    assert res.collection_size == dp.collection_size(t, op.key["pk"])
            assert await stored(dp, t) == await recount(dp, t)

    run(engine_kind, tmp_path, body)
    if engine_kind == "lmdb":
        async def reopened(dp: LocalDataPlane) -> None:
            t = dp.table("t")
            assert await stored(dp, t) == await recount(dp, t)

        run(engine_kind, tmp_path, reopened)


def test_limit_refuses_growth_and_writes_nothing(engine_kind: str, tmp_path: Any) -> None:
    limit = 1000

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(lsi("by_a", "a", "KEYS_ONLY"),)))
        sizes: list[int] = []
        i = 0
        while True:
            try:
                r = await dp.write(put(t, item("p", i, a="k", v="x" * 100)))
            except ItemCollectionSizeLimitExceededError as e:
                assert e.message == COLLECTION_TOO_BIG
                assert e.type_name == "ItemCollectionSizeLimitExceededException"
                break
            assert r.collection_size is not None
            sizes.append(r.collection_size)
            i += 1
        assert sizes and sizes[-1] <= limit
        before = dp.collection_size(t, {"S": "p"})
        assert await dp.get(t, {"pk": {"S": "p"}, "sk": {"N": str(i)}}) is None  # nothing written
        assert dp.table_stats(t)[0] == i
        assert dp.index_stats(t, t.indexes[0])[0] == i
        # Shrinking or same-size writes still go through; a growing update does not.
        r = await dp.write(put(t, item("p", 0, a="k", v="y" * 100)))
        assert r.collection_size == before
        r = await dp.write(put(t, item("p", 0, v="short")))
        assert r.collection_size is not None and r.collection_size < before
        with pytest.raises(ItemCollectionSizeLimitExceededError):
            await dp.write(put(t, item("p", 0, a="k", v="x" * 400)))
        # Another collection is not affected.
        assert (await dp.write(put(t, item("q", 0, a="k", v="x" * 100)))).collection_size is not None
        # BatchWriteItem: the over-limit request fails on its own, the others apply.
        res = await dp.write_many([put(t, item("q", 1, v="x" * 10)), put(t, item("p", 50, v="x" * 900))])
        assert isinstance(res[0], WriteResult)
        assert isinstance(res[1], ItemCollectionSizeLimitExceededError)
        assert await dp.get(t, {"pk": {"S": "p"}, "sk": {"N": "50"}}) is None
        # TransactWriteItems: the reason code, and nothing of the transaction is applied.
        with pytest.raises(TransactionCanceledError) as exc:
            await dp.transact_write([put(t, item("r", 1, v="fine")), put(t, item("p", 51, v="x" * 900))])
        assert exc.value.reasons == [
            {"Code": "None"},
            {"Code": "ItemCollectionSizeLimitExceeded", "Message": COLLECTION_TOO_BIG},
        ]
        assert await dp.get(t, {"pk": {"S": "r"}, "sk": {"N": "1"}}) is None
        assert await stored(dp, t) == await recount(dp, t)

    run(engine_kind, tmp_path, body, item_collection_limit_bytes=limit)


def test_transaction_growth_is_counted_across_its_actions(engine_kind: str, tmp_path: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(lsi("by_a", "a"),)))
        one = item("p", 1, v="x" * 200)
        # Each put alone fits; together they do not.
        assert item_size(one) < 600
        with pytest.raises(TransactionCanceledError) as exc:
            await dp.transact_write([put(t, item("p", i, v="x" * 200)) for i in range(4)])
        codes = [r["Code"] for r in exc.value.reasons]
        assert codes[0] == "None" and "ItemCollectionSizeLimitExceeded" in codes
        assert await stored(dp, t) == {}
        res = await dp.transact_write([put(t, item("p", i, v="x" * 200)) for i in range(2)])
        assert res[0].collection_size == res[1].collection_size == dp.collection_size(t, {"S": "p"})

    run(engine_kind, tmp_path, body, item_collection_limit_bytes=600)


def test_ttl_deletions_and_delete_table_keep_counters_exact(engine_kind: str, tmp_path: Any) -> None:
    now = [1_000_000.0]

    async def body(dp: LocalDataPlane) -> None:
        base = table_def(indexes=LSI_TABLE)
        t = await dp.create_table(dataclasses.replace(base, ttl_enabled=True, ttl_attribute="exp"))
        for i in range(30):
            it = item("p" if i % 2 else "q", i, a="a", b="b")
            if i % 3 == 0:
                it["exp"] = {"N": str(int(now[0]) - 10)}
            await dp.write(put(t, it))
        assert await dp.expire_now() == 10
        assert await stored(dp, t) == await recount(dp, t)
        assert sum(1 for _ in await dp.scan(t, None)) == 20
        await dp.delete_table("t")
        await dp.wait_background()
        lo = collection_prefix(t.table_id)
        with dp.engine.snapshot() as snap:
            assert list(snap.iterate(lo, prefix_successor(lo))) == []

    run(engine_kind, tmp_path, body, clock=lambda: now[0])


def test_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        monkeypatch.setenv(COLLECTION_LIMIT_ENV, "500")
        dp = open_local(None, ttl_interval_s=0)
        await dp.start()
        t = await dp.create_table(table_def(indexes=(lsi("by_a", "a"),)))
        with pytest.raises(ItemCollectionSizeLimitExceededError):
            await dp.write(put(t, item("p", 1, v="x" * 600)))
        await dp.close()
        # An explicit option wins over the environment.
        dp = open_local(None, ttl_interval_s=0, item_collection_limit_bytes=10_000)
        await dp.start()
        t = await dp.create_table(table_def(indexes=(lsi("by_a", "a"),)))
        await dp.write(put(t, item("p", 1, v="x" * 600)))
        await dp.close()
        monkeypatch.setenv(COLLECTION_LIMIT_ENV, "lots")
        with pytest.raises(ValueError, match=COLLECTION_LIMIT_ENV):
            open_local(None)
        monkeypatch.delenv(COLLECTION_LIMIT_ENV)
        dp = open_local(None)
        assert dp._state.collection_limit == COLLECTION_LIMIT_BYTES == 10 * 1024**3
        await dp.close()

    asyncio.run(body())


def test_size_estimate_range_in_gb() -> None:
    t = table_def(indexes=(lsi("by_a", "a"),))
    key = {"pk": {"S": "p"}, "sk": {"N": "1"}}
    req = {"ReturnItemCollectionMetrics": "SIZE"}
    gb = 1024**3

    def rng(size: int | None) -> Any:
        m = item_collection_metrics(t, key, req, size)
        assert m is not None and m["ItemCollectionKey"] == {"pk": {"S": "p"}}
        return m["SizeEstimateRangeGB"]

    assert rng(0) == [0.0, 1.0]
    assert rng(123) == [0.0, 1.0]
    assert rng(gb - 1) == [0.0, 1.0]
    assert rng(gb) == [1.0, 2.0]
    assert rng(int(9.5 * gb)) == [9.0, 10.0]
    assert item_collection_metrics(t, key, {}, 5) is None
    assert item_collection_metrics(table_def(), key, req, 5) is None


# -- several processes on one LMDB directory ------------------------------------------------------

WORKER = r"""
import asyncio, random, sys, time
from quorumdb.db import open_local
from quorumdb.db.contract import WriteOp
from quorumdb.errors import TransactionCanceledError, ConditionalCheckFailedError

path, seed, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)

def item(pk, sk, **attrs):
    out = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    out.update({k: {"S": v} for k, v in attrs.items()})
    return out

def random_op(t, now):
    pk, sk = rng.choice("abcdef"), rng.randrange(12)
    key = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    if rng.random() < 0.25:
        return WriteOp(table=t, key=key, mutate=lambda old: None)
    attrs = {n: "v" * rng.randrange(1, 30) for n in ("a", "b", "x", "g", "h") if rng.random() < 0.6}
    new = item(pk, sk, **attrs)
    if rng.random() < 0.2:
        new["exp"] = {"N": str(int(now) - 1)}  # expired at once: the TTL expirers race for it
    def mutate(old):
        merged = dict(old or {})
        merged.update(new)
        return merged
    return WriteOp(table=t, key=key, mutate=mutate)

def incr(t):
    def mutate(old):
        n = 0 if old is None else int(old["n"]["N"])
        return {"pk": {"S": "ctr"}, "sk": {"N": "0"}, "n": {"N": str(n + 1)}}
    return WriteOp(table=t, key={"pk": {"S": "ctr"}, "sk": {"N": "0"}}, mutate=mutate)

async def main():
    dp = open_local(path, ttl_interval_s=0.05)
    await dp.start()
    print("ready", flush=True)
    sys.stdin.readline()  # go
    for r in range(rounds):
        t = dp.table("t")
        now = time.time()
        await dp.write_many([random_op(t, now) for _ in range(8)])
        seen, tx = set(), []
        for _ in range(3):
            op = random_op(t, now)
            k = (op.key["pk"]["S"], op.key["sk"]["N"])
            if k not in seen:
                seen.add(k)
                tx.append(op)
        try:
            await dp.transact_write(tx)
        except TransactionCanceledError:
            pass
        res = await dp.transact_write([incr(t)], token=f"tok{r % 25}", fingerprint=b"same")
        if not res[0].replayed:
            print("applied", flush=True)
    await dp.expire_now()
    await dp.close()
    print("done", flush=True)

asyncio.run(main())
"""


def test_processes_sharing_one_directory_keep_counters_and_indexes_exact(tmp_path: Any) -> None:
    """Two worker processes write concurrently (batches, transactions, tokens, TTL expiry) while
    this process adds a GSI whose backfill runs here; afterwards every counter, every index and
    every item collection matches a recount from the items, and each token applied once."""
    path = str(tmp_path / "data")
    rounds = 120

    async def main() -> None:
        dp = open_local(path, ttl_interval_s=0, backfill_chunk=4)
        await dp.start()
        base = table_def(indexes=LSI_TABLE)
        await dp.create_table(dataclasses.replace(base, ttl_enabled=True, ttl_attribute="exp"))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, path, str(seed), str(rounds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ),
            )
            for seed in (1, 2)
        ]
        try:
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            t = dp.table("t")
            while dp.table_stats(t)[0] < 30:  # let the workers fill the table first
                await asyncio.sleep(0.01)
            t = dp.table("t")
            new_gsi = IndexDef(name="by_h", index_id=0, local=False,
                               key_schema=KeySchema(hash=KeyAttr(name="h", type="S"), range=SK))
            await dp.update_table(dataclasses.replace(t, indexes=(*t.indexes, new_gsi)))
            await dp.wait_background()
            outs = []
            for p in procs:
                out, _ = await asyncio.get_running_loop().run_in_executor(None, p.communicate)
                assert p.returncode == 0
                outs.append(out.split())
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert all(o[-1] == "done" for o in outs)
        applied = sum(o.count("applied") for o in outs)
        assert applied == 25  # each token once, across both processes

        await dp.expire_now()
        t = dp.table("t")
        assert [ix.status for ix in t.indexes] == ["ACTIVE"] * 4
        ctr = await dp.get(t, {"pk": {"S": "ctr"}, "sk": {"N": "0"}})
        assert ctr is not None and ctr.item["n"] == {"N": "25"}
        items = [(s.item, s.size) for s in await dp.scan(t, None)]
        assert dp.table_stats(t) == (len(items), sum(sz for _i, sz in items))
        with dp.engine.snapshot() as snap:
            recs = {k: v for k, v in snap.iterate(item_prefix(t.table_id), prefix_successor(item_prefix(t.table_id)))}
            for ix in t.indexes:
                expected: dict[bytes, bytes] = {}
                for rec in recs.values():
                    e = index_entry(t, ix, record_item(rec), rec)
                    if e is not None:
                        expected[e[0]] = e[1]
                lo = index_prefix(t.table_id, ix.index_id)
                actual = dict(snap.iterate(lo, prefix_successor(lo)))
                assert actual == expected, ix.name
                sizes = sum(int.from_bytes(v[1:5], "little") for v in actual.values())
                assert dp.index_stats(t, ix) == (len(actual), sizes), ix.name
        assert await stored(dp, t) == await recount(dp, t)
        await dp.close()

    asyncio.run(main())


def _index_matches_table(dp: LocalDataPlane, t: TableDef) -> None:
    with dp.engine.snapshot() as snap:
        lo = item_prefix(t.table_id)
        recs = [v for _k, v in snap.iterate(lo, prefix_successor(lo))]
        assert dp.table_stats(t) == (len(recs), sum(int.from_bytes(v[1:5], "little") for v in recs))
        for ix in t.indexes:
            expected: dict[bytes, bytes] = {}
            for rec in recs:
                e = index_entry(t, ix, record_item(rec), rec)
                if e is not None:
                    expected[e[0]] = e[1]
            ilo = index_prefix(t.table_id, ix.index_id)
            actual = dict(snap.iterate(ilo, prefix_successor(ilo)))
            assert actual == expected, ix.name
            assert dp.index_stats(t, ix) == (len(actual), sum(int.from_bytes(v[1:5], "little") for v in actual.values()))


def test_two_data_planes_backfill_while_the_other_writes_with_a_stale_definition(tmp_path: Any) -> None:
    """Data plane A adds a GSI and backfills it; B, whose cached definition predates the index,
    keeps writing, then starts (and finds the backfill leased by A). The index ends exact."""
    rng = random.Random(7)

    async def main() -> None:
        a = open_local(str(tmp_path / "data"), ttl_interval_s=0, backfill_chunk=3)
        b = LocalDataPlane(a.engine, ttl_interval_s=0, backfill_chunk=5, background=True)
        await a.start()
        try:
            t = await a.create_table(table_def(indexes=LSI_TABLE))
            stale = b.table("t")
            for _ in range(10):
                await b.write_many([_random_op(rng, stale) for _ in range(10)])
            await b.write_many([put(stale, item(f"m{i % 7}", i, a="a", x=f"x{i % 4}")) for i in range(100)])
            new_gsi = IndexDef(name="by_x", index_id=0, local=False, key_schema=KeySchema(hash=KeyAttr(name="x", type="S")))
            t2 = await a.update_table(dataclasses.replace(t, indexes=(*t.indexes, new_gsi)))
            assert t2.index("by_x") is not None and t2.index("by_x").backfilling  # type: ignore[union-attr]
            await b.start()  # finds the index still backfilling, leased by A
            for _ in range(20):
                await asyncio.gather(
                    b.write_many([_random_op(rng, stale) for _ in range(5)]),
                    a.write_many([_random_op(rng, t) for _ in range(5)]),
                )
            await asyncio.gather(a.wait_background(), b.wait_background())
            final = a.table("t")
            assert [ix.status for ix in final.indexes] == ["ACTIVE"] * 4
            _index_matches_table(a, final)
            assert await stored(a, final) == await recount(a, final)
        finally:
            await b.committer.stop()
            await a.close()

    asyncio.run(main())


def test_backfill_lease_is_respected_then_taken_over(tmp_path: Any) -> None:
    """A backfill leased by a live holder is left alone until the lease lapses; one leased by a
    process that no longer exists is taken over at once."""
    now = [1000.0]

    async def main() -> None:
        a = open_local(str(tmp_path / "data"), ttl_interval_s=0, resume_interval_s=0, clock=lambda: now[0], backfill_chunk=7)
        await a.start()
        try:
            t = await a.create_table(table_def(indexes=LSI_TABLE))
            await a.write_many([put(t, item(f"p{i % 5}", i, x=f"x{i % 3}")) for i in range(60)])
            for holder, ix_name in ((f"{os.getpid()}:someone-else", "by_x"), ("999999999:dead", "by_x2")):
                t = a.table("t")
                ix_id = 1 + max(ix.index_id for ix in t.indexes)
                lease = backfill_lease_key(t.table_id, ix_id)
                a.engine.write_batch([(lease, orjson.dumps({"owner": holder, "at": now[0]}))])
                new_gsi = IndexDef(name=ix_name, index_id=0, local=False, key_schema=KeySchema(hash=KeyAttr(name="x", type="S")))
                t = await a.update_table(dataclasses.replace(t, indexes=(*t.indexes, new_gsi)))
                await a.wait_background()
                ix = a.table("t").index(ix_name)
                assert ix is not None and ix.index_id == ix_id
                if holder.startswith("999999999"):
                    assert ix.status == "ACTIVE"  # the holder is gone: taken over at once
                else:
                    assert ix.status == "CREATING" and ix.backfilling  # left to its holder
                    a.resume_background()
                    await a.wait_background()
                    assert a.table("t").index(ix_name).status == "CREATING"  # type: ignore[union-attr]
                    now[0] += 31  # the holder stopped renewing: the lease lapses
                    a.resume_background()
                    await a.wait_background()
                    assert a.table("t").index(ix_name).status == "ACTIVE"  # type: ignore[union-attr]
                assert a.engine.get(lease) is None
            final = a.table("t")
            _index_matches_table(a, final)
        finally:
            await a.close()

    asyncio.run(main())


def test_periodic_ttl_pass_is_claimed_by_one_process_per_interval() -> None:
    now = [0.0]

    async def main() -> None:
        dp = open_local(None, ttl_interval_s=0, clock=lambda: now[0])
        await dp.start()

        async def claim(owner: str) -> bool:
            result: bool = await dp.committer.submit(
                functools.partial(claim_ttl_pass, owner=owner, interval_s=10.0)
            )
            return result

        assert await claim("a")
        assert await claim("a")  # the holder itself is never held back
        assert not await claim("b")
        now[0] = 8.9
        assert not await claim("b")
        now[0] = 9.0
        assert await claim("b")
        assert not await claim("a")
        await dp.close()

    asyncio.run(main())
