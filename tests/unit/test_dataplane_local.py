"""LocalDataPlane: items, queries, scans, counters, indexes, backfill, TTL, DDL (both engines)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest
from test_dataplane_support import PK, put, table_def
from test_dataplane_support import run as run_on

from quorumdb.db import LocalDataPlane, open_local
from quorumdb.db.contract import SortKeyRange, TableChangedError, WriteOp
from quorumdb.errors import (
    ConditionalCheckFailedError,
    ResourceInUseError,
    ResourceNotFoundError,
    TransactionCanceledError,
    ValidationError,
)
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import Item


def gsi(name: str, hash_attr: str, range_attr: str | None = None, projection: str = "ALL", include: tuple[str, ...] = ()) -> IndexDef:
    return IndexDef(
        name=name,
        index_id=0,
        local=False,
        key_schema=KeySchema(
            hash=KeyAttr(name=hash_attr, type="S"),
            range=None if range_attr is None else KeyAttr(name=range_attr, type="N"),
        ),
        projection=projection,
        non_key_attributes=include,
    )


def delete(t: TableDef, key: Item) -> WriteOp:
    return WriteOp(table=t, key=key, mutate=lambda old: None)


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: int | str) -> dict[str, Any]:
    return {"N": str(x)}


@pytest.fixture
def run(engine_kind: str, tmp_path: Any) -> Callable[..., None]:
    """Run an async test body against a started data plane, then close it."""
    return functools.partial(run_on, engine_kind, tmp_path)


def test_catalog(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        a = await dp.create_table(table_def("a"))
        b = await dp.create_table(table_def("b"))
        assert a.table_id != b.table_id
        assert dp.table("a") == a
        assert dp.table_names() == ["a", "b"]
        with pytest.raises(ResourceInUseError, match="Table already exists: a"):
            await dp.create_table(table_def("a"))
        d = await dp.delete_table("a")
        assert d.status == "DELETING"
        with pytest.raises(ResourceNotFoundError):
            dp.table("a")
        with pytest.raises(ResourceNotFoundError):
            await dp.delete_table("a")
        a2 = await dp.create_table(table_def("a"))
        assert a2.table_id not in (a.table_id, b.table_id)

    run(body)


def test_get_write_and_results(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        item = {"pk": S("a"), "sk": N(1), "v": S("x" * 10)}
        r = await dp.write(put(t, item))
        assert r.old is None and r.new == item and r.old_size == 0 and r.new_size == item_size(item)
        got = await dp.get(t, {"pk": S("a"), "sk": N(1)})
        assert got is not None and got.item == item and got.size == item_size(item)
        import orjson

        assert orjson.loads(got.raw) == item
        assert await dp.get(t, {"pk": S("a"), "sk": N(2)}) is None
        r = await dp.write(delete(t, {"pk": S("a"), "sk": N(1)}))
        assert r.old == item and r.new is None and r.new_size == 0
        assert await dp.get(t, {"pk": S("a"), "sk": N(1)}) is None
        r = await dp.write(delete(t, {"pk": S("a"), "sk": N(1)}))
        assert r.old is None and r.new is None

    run(body)


def test_failing_mutate_writes_nothing(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())

        def fail(old: Item | None) -> Item | None:
            raise ConditionalCheckFailedError(item=old)

        ops = [put(t, {"pk": S("a"), "sk": N(i)}) for i in range(5)]
        ops.insert(2, WriteOp(table=t, key={"pk": S("a"), "sk": N(99)}, mutate=fail))
        res = await dp.write_many(ops)
        assert isinstance(res[2], ConditionalCheckFailedError)
        assert sum(1 for r in res if not isinstance(r, BaseException)) == 5
        assert await dp.get(t, {"pk": S("a"), "sk": N(99)}) is None
        assert dp.table_stats(t)[0] == 5
        with pytest.raises(ConditionalCheckFailedError):
            await dp.write(WriteOp(table=t, key={"pk": S("a"), "sk": N(1)}, mutate=fail))

    run(body)


def test_transact_write_all_or_nothing(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        await dp.write(put(t, {"pk": S("a"), "sk": N(1), "n": N(1)}))

        def ccf(old: Item | None) -> Item | None:
            raise ConditionalCheckFailedError(item=old)

        def invalid(old: Item | None) -> Item | None:
            raise ValidationError("bad update")

        ops = [
            put(t, {"pk": S("b"), "sk": N(1)}),
            WriteOp(table=t, key={"pk": S("a"), "sk": N(1)}, mutate=ccf),
            WriteOp(table=t, key={"pk": S("c"), "sk": N(1)}, mutate=invalid),
        ]
        with pytest.raises(TransactionCanceledError) as ei:
            await dp.transact_write(ops)
        assert ei.value.reasons == [
            {"Code": "None"},
            {
                "Code": "ConditionalCheckFailed",
                "Message": "The conditional request failed",
                "Item": {"pk": S("a"), "sk": N(1), "n": N(1)},
            },
            {"Code": "ValidationError", "Message": "bad update"},
        ]
        assert await dp.get(t, {"pk": S("b"), "sk": N(1)}) is None
        assert dp.table_stats(t)[0] == 1
        res = await dp.transact_write([put(t, {"pk": S("b"), "sk": N(1)}), delete(t, {"pk": S("a"), "sk": N(1)})])
        assert len(res) == 2
        got = await dp.transact_get([(t, {"pk": S("a"), "sk": N(1)}), (t, {"pk": S("b"), "sk": N(1)})])
        assert got[0] is None and got[1] is not None
        assert dp.table_stats(t)[0] == 1

    run(body)


def test_query_ranges_and_order(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        values = [-5, -1.5, 0, 1, 2, 3, 10, 100]
        await dp.write_many([put(t, {"pk": S("p"), "sk": N(v)}) for v in values])
        await dp.write_many([put(t, {"pk": S(o), "sk": N(1)}) for o in ("o", "q", "pp", "p\x00")])

        async def q(sort: SortKeyRange | None, forward: bool = True, esk: Any = None) -> list[float]:
            return [
                float(r.item["sk"]["N"])
                for r in await dp.query(t, None, S("p"), sort, forward=forward, exclusive_start=esk)
            ]

        assert await q(None) == values
        assert await q(None, False) == values[::-1]
        cases = [
            ("EQ", (N(2),), [2]),
            ("EQ", (N(7),), []),
            ("LT", (N(2),), [-5, -1.5, 0, 1]),
            ("LE", (N(2),), [-5, -1.5, 0, 1, 2]),
            ("GT", (N(2),), [3, 10, 100]),
            ("GE", (N(2),), [2, 3, 10, 100]),
            ("BETWEEN", (N(-1.5), N(3)), [-1.5, 0, 1, 2, 3]),
            ("BETWEEN", (N(4), N(5)), []),
        ]
        for op, vals, want in cases:
            r = SortKeyRange(op=op, values=vals)
            assert await q(r) == want, op
            assert await q(r, False) == want[::-1], op
        # ExclusiveStartKey resumes strictly after the key, in both directions.
        esk = {"pk": S("p"), "sk": N(2)}
        assert await q(None, True, esk) == [3, 10, 100]
        assert await q(None, False, esk) == [1, 0, -1.5, -5]
        assert await q(SortKeyRange(op="LE", values=(N(10),)), True, esk) == [3, 10]
        assert await q(SortKeyRange(op="GE", values=(N(0),)), False, esk) == [1, 0]

    run(body)


def test_query_begins_with_strings(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t0 = table_def()
        t = await dp.create_table(
            dataclasses.replace(t0, key_schema=KeySchema(hash=PK, range=KeyAttr(name="sk", type="S")))
        )
        sks = ["a", "ab", "ab\x00", "abc", "abd", "ac", "b", "\u00e9"]
        await dp.write_many([put(t, {"pk": S("p"), "sk": S(s)}) for s in sks])
        got = [r.item["sk"]["S"] for r in await dp.query(t, None, S("p"), SortKeyRange(op="BEGINS_WITH", values=(S("ab"),)))]
        assert got == ["ab", "ab\x00", "abc", "abd"]
        got = [r.item["sk"]["S"] for r in await dp.query(t, None, S("p"), None)]
        assert got == sorted(sks, key=lambda s: s.encode())
        got = [r.item["sk"]["S"] for r in await dp.query(t, None, S("p"), SortKeyRange(op="BEGINS_WITH", values=(S("ab"),)), forward=False)]
        assert got == ["abd", "abc", "ab\x00", "ab"]

    run(body)


def test_scan_segments_cover_every_item_once(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(range_key=False))
        await dp.write_many([put(t, {"pk": S(f"k{i}")}) for i in range(300)])
        everything = [r.item["pk"]["S"] for r in await dp.scan(t, None)]
        assert sorted(everything) == sorted(f"k{i}" for i in range(300))
        for total in (1, 2, 3, 7, 64):
            seen: list[str] = []
            for seg in range(total):
                seen.extend(r.item["pk"]["S"] for r in await dp.scan(t, None, segment=seg, total_segments=total))
            assert seen == everything  # segments are contiguous ranges in scan order
        # paging with ExclusiveStartKey inside a segment
        seg_items = [r.item for r in await dp.scan(t, None, segment=1, total_segments=3)]
        page = [r.item for r in await dp.scan(t, None, segment=1, total_segments=3, exclusive_start={"pk": seg_items[4]["pk"]})]
        assert page == seg_items[5:]

    run(body)


def test_counters_exact(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        rng = random.Random(7)
        model: dict[tuple[str, int], Item] = {}
        for _ in range(20):
            ops = []
            for _ in range(20):
                k = (rng.choice("abc"), rng.randrange(10))
                key = {"pk": S(k[0]), "sk": N(k[1])}
                if rng.random() < 0.3:
                    ops.append(delete(t, key))
                else:
                    item = {**key, "v": S("x" * rng.randrange(50))}
                    ops.append(put(t, item))
            for op in ops:  # sequential semantics for the model
                new = op.mutate(None)
                k = (op.key["pk"]["S"], int(op.key["sk"]["N"]))
                if new is None:
                    model.pop(k, None)
                else:
                    model[k] = new
            await dp.write_many(ops)
        assert dp.table_stats(t) == (len(model), sum(item_size(i) for i in model.values()))

    run(body)


async def index_contents(dp: LocalDataPlane, t: TableDef, name: str) -> list[Item]:
    ix = dp.table(t.name).index(name)
    assert ix is not None
    return [r.item for r in await dp.scan(dp.table(t.name), ix)]


def test_index_maintenance_projection_and_sparse(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(
            table_def(
                indexes=(
                    gsi("all", "g", "r"),
                    gsi("keys", "g", projection="KEYS_ONLY"),
                    gsi("inc", "g", "r", projection="INCLUDE", include=("x",)),
                )
            )
        )
        ids = {ix.name: ix.index_id for ix in t.indexes}
        assert len(set(ids.values())) == 3
        a = {"pk": S("a"), "sk": N(1), "g": S("G1"), "r": N(5), "x": S("xx"), "y": S("yy")}
        b = {"pk": S("b"), "sk": N(1), "g": S("G1"), "x": S("x2")}  # no r: not in all / inc
        c = {"pk": S("c"), "sk": N(1), "y": S("no index keys")}
        await dp.write_many([put(t, a), put(t, b), put(t, c)])
        ix_all, ix_keys, ix_inc = t.indexes
        assert [r.item for r in await dp.query(t, ix_all, S("G1"), None)] == [a]
        assert sorted((r.item for r in await dp.query(t, ix_keys, S("G1"), None)), key=lambda i: i["pk"]["S"]) == [
            {"pk": S("a"), "sk": N(1), "g": S("G1")},
            {"pk": S("b"), "sk": N(1), "g": S("G1")},
        ]
        assert [r.item for r in await dp.query(t, ix_inc, S("G1"), None)] == [
            {"pk": S("a"), "sk": N(1), "g": S("G1"), "r": N(5), "x": S("xx")}
        ]
        assert dp.index_stats(t, ix_all) == (1, item_size(a))
        assert dp.index_stats(t, ix_keys)[0] == 2
        # moving between index keys
        a2 = {**a, "g": S("G2"), "r": N(7)}
        r = await dp.write(put(t, a2))
        assert r.index_writes is not None and set(r.index_writes) == {"all", "keys", "inc"}
        assert [r.item for r in await dp.query(t, ix_all, S("G1"), None)] == []
        assert [r.item for r in await dp.query(t, ix_all, S("G2"), None)] == [a2]
        assert [r.item["pk"] for r in await dp.query(t, ix_keys, S("G1"), None)] == [S("b")]
        # losing an index attribute removes the entry (sparse)
        a3 = {k: v for k, v in a2.items() if k != "g"}
        await dp.write(put(t, a3))
        assert await index_contents(dp, t, "all") == []
        assert dp.index_stats(t, ix_all) == (0, 0)
        await dp.write(delete(t, {"pk": S("b"), "sk": N(1)}))
        assert await index_contents(dp, t, "keys") == []
        assert dp.index_stats(t, ix_keys) == (0, 0)

    run(body)


def test_index_query_order_and_exclusive_start(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(gsi("by_g", "g", "r"),)))
        ix = t.indexes[0]
        items = [{"pk": S(f"p{i}"), "sk": N(i), "g": S("G"), "r": N(i % 4)} for i in range(12)]
        await dp.write_many([put(t, i) for i in items])
        got = [r.item for r in await dp.query(t, ix, S("G"), None)]
        assert [int(i["r"]["N"]) for i in got] == sorted(int(i["r"]["N"]) for i in items)
        assert [r.item for r in await dp.query(t, ix, S("G"), None, forward=False)] == got[::-1]
        eq2 = [r.item for r in await dp.query(t, ix, S("G"), SortKeyRange(op="EQ", values=(N(2),)))]
        assert len(eq2) == 3 and all(i["r"] == N(2) for i in eq2)
        le1 = [r.item for r in await dp.query(t, ix, S("G"), SortKeyRange(op="LE", values=(N(1),)))]
        assert le1 == got[:6]
        gt1 = [r.item for r in await dp.query(t, ix, S("G"), SortKeyRange(op="GT", values=(N(1),)))]
        assert gt1 == got[6:]
        for cut in range(len(got)):
            esk = {"pk": got[cut]["pk"], "sk": got[cut]["sk"], "g": got[cut]["g"], "r": got[cut]["r"]}
            assert [r.item for r in await dp.query(t, ix, S("G"), None, exclusive_start=esk)] == got[cut + 1 :]
            assert [r.item for r in await dp.query(t, ix, S("G"), None, forward=False, exclusive_start=esk)] == got[:cut][::-1]

    run(body)


def test_backfill_while_writing_equals_from_scratch(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        rng = random.Random(3)

        def rand_item(i: int) -> Item:
            item: Item = {"pk": S(f"p{i % 37}"), "sk": N(i)}
            if rng.random() < 0.7:
                item["g"] = S(rng.choice(["A", "B", "C"]))
            if rng.random() < 0.5:
                item["v"] = N(rng.randrange(1000))
            return item

        await dp.write_many([put(t, rand_item(i)) for i in range(1500)])
        t2 = dataclasses.replace(t, indexes=(gsi("by_g", "g", "v", projection="INCLUDE", include=("sk",)),))
        updated = await dp.update_table(t2)
        ix = updated.indexes[0]
        assert ix.status == "CREATING" and ix.backfilling
        # keep writing (puts, updates that move entries, deletes) while the backfill runs
        rounds_during_backfill = 0
        for _round in range(10):
            ix_now = dp.table(t.name).index("by_g")
            assert ix_now is not None
            rounds_during_backfill += ix_now.backfilling
            ops = []
            for _ in range(40):
                i = rng.randrange(1700)
                ops.append(delete(t, {"pk": S(f"p{i % 37}"), "sk": N(i)}) if rng.random() < 0.2 else put(t, rand_item(i)))
            await dp.write_many(ops)
            await asyncio.sleep(0)
        assert rounds_during_backfill >= 3
        await dp.wait_background()
        final = dp.table(t.name)
        ix = final.index("by_g")
        assert ix is not None and ix.status == "ACTIVE" and not ix.backfilling
        assert final.version > t.version
        backfilled = await index_contents(dp, t, "by_g")
        stats = dp.index_stats(final, ix)
        # from scratch: a fresh table with the index from the start, same items
        fresh = await dp.create_table(dataclasses.replace(table_def("fresh"), indexes=(gsi("by_g", "g", "v", projection="INCLUDE", include=("sk",)),)))
        await dp.write_many([put(fresh, r.item) for r in await dp.scan(final, None)])
        scratch = await index_contents(dp, fresh, "by_g")
        assert backfilled == scratch
        assert stats == dp.index_stats(fresh, fresh.indexes[0])
        assert stats[0] == len(scratch) > 0

    run(body, backfill_chunk=40)


def test_drop_index_and_delete_table_remove_data(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(gsi("by_g", "g"),)))
        await dp.write_many([put(t, {"pk": S(f"p{i}"), "sk": N(i), "g": S("G")}) for i in range(3000)])
        assert dp.table_stats(t)[0] == 3000
        t2 = await dp.update_table(dataclasses.replace(t, indexes=()))
        assert t2.indexes == ()
        await dp.wait_background()
        from quorumdb.db.records import table_data_prefix
        from quorumdb.storage.engine import prefix_successor

        def keys_under(p: bytes) -> int:
            with dp.engine.snapshot() as s:
                return sum(1 for _ in s.iterate(p, prefix_successor(p)))

        assert keys_under(table_data_prefix(t.table_id)) == 3000  # only the items remain
        await dp.delete_table("t")
        await dp.wait_background()
        assert keys_under(table_data_prefix(t.table_id)) == 0
        assert keys_under(b"\x00gc/") == 0
        with pytest.raises(ResourceNotFoundError):
            await dp.write(put(t, {"pk": S("x"), "sk": N(1)}))

    run(body)


def test_ttl_expiry_with_injected_clock(run: Any) -> None:
    now = [1_700_000_000.0]

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        t = await dp.update_table(dataclasses.replace(t, ttl_enabled=True, ttl_attribute="exp"))
        items = [
            {"pk": S("a"), "sk": N(1), "exp": N(1_699_999_000)},  # expired
            {"pk": S("a"), "sk": N(2), "exp": N(1_700_000_500)},  # future
            {"pk": S("a"), "sk": N(3), "exp": S("999")},  # not a number: ignored
            {"pk": S("a"), "sk": N(4)},  # no attribute
            {"pk": S("a"), "sk": N(5), "exp": N(1)},  # more than 5 years ago: ignored
            {"pk": S("a"), "sk": N(6), "nested": {"M": {"exp": N(5)}}},
        ]
        await dp.write_many([put(t, i) for i in items])
        assert await dp.expire_now() == 1
        left = [int(r.item["sk"]["N"]) for r in await dp.query(t, None, S("a"), None)]
        assert left == [2, 3, 4, 5, 6]
        assert dp.table_stats(t)[0] == 5
        now[0] = 1_700_000_600.0
        assert await dp.expire_now() == 1
        assert [int(r.item["sk"]["N"]) for r in await dp.query(t, None, S("a"), None)] == [3, 4, 5, 6]

    run(body, clock=lambda: now[0], ttl_interval_s=0)


def test_ttl_background_task(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(dataclasses.replace(table_def(), ttl_enabled=True, ttl_attribute="exp"))
        await dp.write(put(t, {"pk": S("a"), "sk": N(1), "exp": N(50)}))
        for _ in range(200):
            if await dp.get(t, {"pk": S("a"), "sk": N(1)}) is None:
                break
            await asyncio.sleep(0.01)
        assert await dp.get(t, {"pk": S("a"), "sk": N(1)}) is None

    run(body, clock=lambda: 100.0, ttl_interval_s=0.01)


def test_ttl_recheck_lets_a_concurrent_extension_win(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        from quorumdb.db.local import expire_mutator

        t = await dp.create_table(dataclasses.replace(table_def(), ttl_enabled=True, ttl_attribute="exp"))
        await dp.write(put(t, {"pk": S("a"), "sk": N(1), "exp": N(50)}))
        await dp.write(put(t, {"pk": S("a"), "sk": N(1), "exp": N(500)}))  # extended
        with pytest.raises(ConditionalCheckFailedError):
            await dp.write(WriteOp(table=t, key={"pk": S("a"), "sk": N(1)}, mutate=expire_mutator("exp", 100.0)))
        assert await dp.get(t, {"pk": S("a"), "sk": N(1)}) is not None

    run(body, ttl_interval_s=0)


def test_reopen_keeps_catalog_and_items(tmp_path: Any) -> None:
    path = str(tmp_path / "data")

    async def first() -> None:
        dp = open_local(path)
        await dp.start()
        t = await dp.create_table(table_def(indexes=(gsi("by_g", "g"),)))
        await dp.write(put(t, {"pk": S("a"), "sk": N(1), "g": S("G")}))
        await dp.close()

    async def second() -> None:
        dp = open_local(path)
        await dp.start()
        t = dp.table("t")
        assert await dp.get(t, {"pk": S("a"), "sk": N(1)}) is not None
        assert dp.table_stats(t)[0] == 1
        assert [r.item["pk"] for r in await dp.query(t, t.indexes[0], S("G"), None)] == [S("a")]
        t2 = await dp.create_table(table_def("u"))
        assert t2.table_id > t.table_id
        await dp.close()

    asyncio.run(first())
    asyncio.run(second())


def test_other_process_ddl_and_stale_definitions(tmp_path: Any) -> None:
    path = str(tmp_path / "data")
    other = (
        "import asyncio, sys, dataclasses\n"
        "from quorumdb.db import open_local\n"
        "from quorumdb.model.schema import KeyAttr, KeySchema, TableDef\n"
        "async def main():\n"
        "    dp = open_local(sys.argv[1], ttl_interval_s=0)\n"
        "    await dp.start()\n"
        "    t = TableDef(name='u', table_id=0, uuid='x', key_schema=KeySchema(hash=KeyAttr(name='pk', type='S')),\n"
        "                 attribute_definitions={'pk': 'S'}, created_at=0.0)\n"
        "    await dp.create_table(t)\n"
        "    await dp.close()\n"
        "asyncio.run(main())\n"
    )

    async def main() -> None:
        a = open_local(path, ttl_interval_s=0)
        await a.start()
        t = await a.create_table(table_def())
        await a.write(put(t, {"pk": S("x"), "sk": N(1), "g": S("G")}))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", other, path)
        assert await proc.wait() == 0
        assert a.table_names() == ["t", "u"]  # the other process's DDL is visible
        # A write made with an outdated definition still maintains the current indexes.
        stale = a.table("t")
        await a.update_table(dataclasses.replace(t, indexes=(gsi("by_g", "g"),)))
        await a.wait_background()
        await a.write(put(stale, {"pk": S("y"), "sk": N(1), "g": S("G")}))
        t2 = a.table("t")
        ix = t2.index("by_g")
        assert ix is not None and ix.status == "ACTIVE"
        assert sorted(r.item["pk"]["S"] for r in await a.query(t2, ix, S("G"), None)) == ["x", "y"]
        await a.close()

    asyncio.run(main())


def test_update_table_is_a_compare_and_swap_on_the_version(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        tagged = await dp.update_table(dataclasses.replace(t, tags={"a": "1"}))
        assert tagged.version == t.version + 1
        # A copy made from the older definition would undo the tag: it is refused.
        with pytest.raises(TableChangedError):
            await dp.update_table(dataclasses.replace(t, ttl_enabled=True, ttl_attribute="exp"))
        assert dp.table("t").tags == {"a": "1"} and not dp.table("t").ttl_enabled
        # Made from the current one, it applies; a deleted and recreated table is another table.
        await dp.update_table(dataclasses.replace(dp.table("t"), ttl_enabled=True, ttl_attribute="exp"))
        assert dp.table("t").tags == {"a": "1"} and dp.table("t").ttl_enabled
        old = dp.table("t")
        await dp.delete_table("t")
        await dp.create_table(table_def())
        with pytest.raises(ResourceNotFoundError):
            await dp.update_table(dataclasses.replace(old, tags={}))

    run(body)


def test_maximum_size_keys(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t0 = table_def()
        t = await dp.create_table(
            dataclasses.replace(t0, key_schema=KeySchema(hash=PK, range=KeyAttr(name="sk", type="S")))
        )
        big = "h" * 2048
        sks = ["s" * 1024, "s" * 1023 + "t", "s" * 600, "a", "s" * 1000 + "\x00"]
        await dp.write_many([put(t, {"pk": S(big), "sk": S(s), "v": N(i)}) for i, s in enumerate(sks)])
        await dp.write(put(t, {"pk": S("small"), "sk": S("x")}))
        want = sorted(sks, key=lambda s: s.encode())
        assert [r.item["sk"]["S"] for r in await dp.query(t, None, S(big), None)] == want
        assert [r.item["sk"]["S"] for r in await dp.query(t, None, S(big), None, forward=False)] == want[::-1]
        got = await dp.query(t, None, S(big), SortKeyRange(op="BEGINS_WITH", values=(S("s" * 700),)))
        assert [r.item["sk"]["S"] for r in got] == [s for s in want if s.startswith("s" * 700)]
        esk = {"pk": S(big), "sk": S(want[1])}
        assert [r.item["sk"]["S"] for r in await dp.query(t, None, S(big), None, exclusive_start=esk)] == want[2:]
        rec = await dp.get(t, {"pk": S(big), "sk": S("s" * 1024)})
        assert rec is not None and rec.item["v"] == N(0)
        assert sum(1 for _ in await dp.scan(t, None)) == 6
        await dp.write(delete(t, {"pk": S(big), "sk": S("s" * 1024)}))
        assert await dp.get(t, {"pk": S(big), "sk": S("s" * 1024)}) is None
        assert dp.table_stats(t)[0] == 5

    run(body)


def test_unchanged_item_writes_nothing(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(gsi("by_g", "g"),)))
        item = {"pk": S("a"), "sk": N(1), "g": S("G")}
        await dp.write(put(t, item))
        stats = dp.table_stats(t), dp.index_stats(t, t.indexes[0])
        r = await dp.write(WriteOp(table=t, key={"pk": S("a"), "sk": N(1)}, mutate=lambda old: old))
        assert r.old == item and r.new == item and r.index_writes == {}
        assert (dp.table_stats(t), dp.index_stats(t, t.indexes[0])) == stats
        r = await dp.write(WriteOp(table=t, key={"pk": S("zz"), "sk": N(1)}, mutate=lambda old: old))
        assert r.old is None and r.new is None and dp.table_stats(t) == stats[0]

    run(body)


def test_update_table_keeps_data_plane_owned_index_state(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(dataclasses.replace(gsi("a", "g"), backfilling=True),)))
        assert not t.indexes[0].backfilling  # a new table has nothing to backfill
        t2 = await dp.update_table(dataclasses.replace(t, indexes=(*t.indexes, gsi("b", "h"))))
        assert [ix.index_id for ix in t2.indexes] == [0, 1]
        # a caller still holding the definition from before the backfill ended
        await dp.wait_background()
        assert dp.table("t").index("b").status == "ACTIVE"  # type: ignore[union-attr]
        t3 = await dp.update_table(dataclasses.replace(dp.table("t"), indexes=(t2.indexes[1],)))
        assert [ix.name for ix in t3.indexes] == ["b"] and t3.indexes[0].index_id == 1
        assert t3.indexes[0].status == "ACTIVE" and not t3.indexes[0].backfilling
        t4 = await dp.update_table(dataclasses.replace(t3, indexes=(*t3.indexes, gsi("a", "g"))))
        assert t4.index("a").index_id == 2  # type: ignore[union-attr]  # ids are never reused
        await dp.wait_background()

    run(body)


def test_reads_never_see_part_of_a_transaction(run: Any) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def())
        keys = [{"pk": S("tx"), "sk": N(i)} for i in range(4)]
        await dp.transact_write([put(t, {**k, "n": N(0)}) for k in keys])
        done = False
        observed: set[tuple[str, ...]] = set()

        async def writer() -> None:
            nonlocal done
            for n in range(1, 60):
                await dp.transact_write([put(t, {**k, "n": N(n)}) for k in keys])
            done = True

        async def reader() -> None:
            while not done:
                got = await dp.transact_get([(t, k) for k in keys])
                observed.add(tuple(r.item["n"]["N"] for r in got if r is not None))
                observed.add(tuple(r.item["n"]["N"] for r in await dp.query(t, None, S("tx"), None)))
                await asyncio.sleep(0)

        await asyncio.gather(writer(), reader(), reader())
        assert observed and all(len(o) == 4 and len(set(o)) == 1 for o in observed)

    run(body)
