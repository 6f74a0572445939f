"""LocalDataPlane backups and point-in-time recovery on both engines, with an injected clock:
restores to any instant are exact while writes go on, backups are one consistent cut, the undo
log is purged outside the window, and half-done backups or restores of a dead process are
dropped when the store is opened again."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
from collections.abc import Callable
from typing import Any

import pytest
from test_dataplane_support import put, table_def
from test_dataplane_support import run as run_on

from quorumdb.db import LocalDataPlane, backups, open_local
from quorumdb.db.contract import WriteOp
from quorumdb.db.records import backup_data_prefix, pack_undo, undo_prefix, unpack_undo
from quorumdb.errors import BackupInUseError, BackupNotFoundError, ResourceInUseError
from quorumdb.model.backups import BackupDef, backup_arn, backup_id_of, make_backup_id
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, RestoreInfo, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import Item
from quorumdb.storage.engine import prefix_successor

DEAD_OWNER = "999999999:0123456789abcdef"  # no such pid


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def run(engine_kind: str, tmp_path: Any) -> Callable[..., None]:
    return functools.partial(run_on, engine_kind, tmp_path)


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: int) -> dict[str, Any]:
    return {"N": str(x)}


def row(pk: str, sk: int, **attrs: int) -> Item:
    out: Item = {"pk": S(pk), "sk": N(sk)}
    out.update({k: N(v) for k, v in attrs.items()})
    return out


def delete(t: TableDef, pk: str, sk: int) -> WriteOp:
    return WriteOp(table=t, key={"pk": S(pk), "sk": N(sk)}, mutate=lambda old: None)


async def contents(dp: LocalDataPlane, t: TableDef, index: IndexDef | None = None) -> list[Item]:
    return [r.item for r in await dp.scan(dp.table(t.name), index)]


def target(name: str, at: float, source: TableDef) -> TableDef:
    return dataclasses.replace(
        source, name=name, table_id=0, uuid="uuid-" + name, pitr_since=None,
        restore=RestoreInfo(source_table_arn=source.arn, restore_time=at),
    )


def undo_count(dp: LocalDataPlane, table_id: int) -> int:
    p = undo_prefix(table_id)
    with dp.engine.snapshot() as snap:
        return sum(1 for _ in snap.iterate(p, prefix_successor(p)))


GSI = IndexDef(name="by_v", index_id=0, local=False,
               key_schema=KeySchema(hash=KeyAttr(name="v", type="N")), projection="ALL")


def test_undo_record_round_trip() -> None:
    assert unpack_undo(pack_undo(b"\x01key", b"\x01rec")) == (b"\x01key", b"\x01rec")
    assert unpack_undo(pack_undo(b"\x01key", None)) == (b"\x01key", None)
    bid = make_backup_id(1489602797.149, "73d8d5bc")
    assert bid == "01489602797149-73d8d5bc"
    assert backup_id_of(backup_arn("Music", bid)) == ("Music", bid)
    assert backup_id_of("arn:aws:dynamodb:us-east-1:000000000000:table/Music") is None


def test_restore_to_any_time_is_exact_while_writes_go_on(run: Callable[..., None]) -> None:
    clock = Clock(1000.0)

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def("src", indexes=(GSI,), attributes={"pk": "S", "sk": "N", "v": "N"}))
        for i in range(8):
            await dp.write(put(t, row("p", i, v=i % 3)))
        clock.t += 1
        t = await dp.set_point_in_time_recovery(t, True)
        assert t.pitr_since == clock.t
        states: dict[float, list[Item]] = {clock.t: await contents(dp, t)}
        rng = random.Random(11)
        for _step in range(30):
            clock.t += 1
            for _ in range(rng.randint(1, 3)):  # several changes may share a timestamp
                k = rng.randrange(12)
                choice = rng.random()
                if choice < 0.4:
                    await dp.write(put(t, row("p", k, v=rng.randrange(3), w=_step)))
                elif choice < 0.6:
                    await dp.write(delete(t, "p", k))
                elif choice < 0.8:
                    await dp.transact_write([put(t, row("q", k, v=1)), delete(t, "p", (k + 1) % 12)])
                else:
                    await dp.write_many([put(t, row("r", k, v=2)), put(t, row("p", k, v=0, w=-1))])
            states[clock.t] = await contents(dp, t)

        stop = asyncio.Event()

        async def noise() -> None:  # later changes, interleaved with the restores' chunks
            n = 0
            while not stop.is_set():
                clock.t += 0.5
                await dp.write(put(t, row("p", n % 12, v=1, noise=n)))
                await dp.write(delete(t, "q", n % 12))
                n += 1

        task = asyncio.create_task(noise())
        try:
            for i, at in enumerate(sorted(states)[::3] + [max(states)]):
                for when in (at, at + 0.25):  # between two timestamps: the state of the earlier one
                    name = f"dst{i}_{int(when * 100)}"
                    r = await dp.restore_to_time(t, when, target(name, when, t))
                    assert r.status == "ACTIVE" and r.restore is not None and not r.restore.in_progress
                    assert await contents(dp, r) == states[at], (when, name)
                    assert dp.table_stats(r) == (len(states[at]), sum(_size(x) for x in states[at]))
                    expected_gsi = sorted((x for x in states[at] if "v" in x), key=_gsi_order)
                    assert sorted(await contents(dp, r, r.index("by_v")), key=_gsi_order) == expected_gsi
        finally:
            stop.set()
            await task

    run(body, clock=clock, backup_chunk=3)


def _size(item: Item) -> int:
    return item_size(item)


def _gsi_order(item: Item) -> tuple[str, str, str]:
    return (item["v"]["N"], item["pk"]["S"], item["sk"]["N"])


def test_backup_is_the_state_when_it_started(run: Callable[..., None]) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def("src"))
        for i in range(20):
            await dp.write(put(t, row("p", i, n=0)))
        task = asyncio.ensure_future(dp.create_backup(t, "cut"))
        await asyncio.sleep(0)  # the backup takes its snapshot before its first await
        expected = await contents(dp, t)
        stop = asyncio.Event()

        async def writer() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                await dp.transact_write([put(t, row("p", k, n=n)) for k in (0, 9, 19)])
                await dp.write(delete(t, "p", n % 20))

        w = asyncio.create_task(writer())
        b = await task
        stop.set()
        await w
        assert b.status == "AVAILABLE" and b.item_count == 20
        assert b.size_bytes == sum(_size(x) for x in expected)
        with pytest.raises(ResourceInUseError):
            await dp.restore_backup(b.arn, dataclasses.replace(target("src", 0, t)))
        r = await dp.restore_backup(b.arn, target("copy", b.created_at, t))
        assert await contents(dp, r) == expected
        assert [x.backup_id for x in dp.backups()] == [b.backup_id]
        assert dp.backup(b.arn) == b
        assert dp.backup(backup_arn("other", b.backup_id)) is None
        await dp.delete_backup(b.arn)
        await dp.wait_background()
        with dp.engine.snapshot() as snap:
            p = backup_data_prefix(b.backup_id)
            assert next(snap.iterate(p, prefix_successor(p)), None) is None
        with pytest.raises(BackupNotFoundError):
            await dp.delete_backup(b.arn)
        with pytest.raises(BackupNotFoundError):
            await dp.restore_backup(b.arn, target("again", 0, t))

    run(body, backup_chunk=4)


def test_undo_log_is_purged_outside_the_window(run: Callable[..., None]) -> None:
    clock = Clock(10_000.0)
    day = 86400.0

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def("src"))
        t = await dp.set_point_in_time_recovery(t, True, 2)
        for i in range(5):
            await dp.write(put(t, row("p", i)))
        clock.t += 1.5 * day
        for i in range(3):
            await dp.write(put(t, row("p", i, x=1)))
        assert undo_count(dp, t.table_id) == 8
        assert await dp.purge_undo() == 0  # everything is within two days
        at = clock.t
        expected = await contents(dp, t)
        clock.t += 1 * day  # the first five changes are now older than the window
        await dp.write(delete(t, "p", 4))
        assert await dp.purge_undo() == 5
        assert undo_count(dp, t.table_id) == 4
        r = await dp.restore_to_time(t, at, target("dst", at, t))
        assert await contents(dp, r) == expected
        t = await dp.set_point_in_time_recovery(t, False)
        assert t.pitr_since is None
        assert await dp.purge_undo() == 4
        assert undo_count(dp, t.table_id) == 0
        await dp.write(put(t, row("p", 9)))
        assert undo_count(dp, t.table_id) == 0  # disabled: nothing is recorded
        t = await dp.set_point_in_time_recovery(t, True)
        await dp.write(put(t, row("p", 9, y=1)))
        assert undo_count(dp, t.table_id) == 1
        await dp.delete_table(t.name)
        await dp.wait_background()
        assert undo_count(dp, t.table_id) == 0

    run(body, clock=clock)


def test_undo_timestamps_never_go_backwards(run: Callable[..., None]) -> None:
    clock = Clock(500.0)

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def("src"))
        t = await dp.set_point_in_time_recovery(t, True)
        await dp.write(put(t, row("p", 1, v=1)))
        clock.t = 400.0  # the wall clock stepped back
        await dp.write(put(t, row("p", 1, v=2)))
        p = undo_prefix(t.table_id)
        with dp.engine.snapshot() as snap:
            records = [unpack_undo(v)[1] for _k, v in snap.iterate(p, prefix_successor(p))]
        assert records[0] is None and records[1] is not None and b'"v":{"N":"1"}' in records[1]
        # The second change is stamped 500 too (not 400, before the first): at 500 both happened.
        clock.t = 600.0
        r = await dp.restore_to_time(t, 500.0, target("dst", 500.0, t))
        assert await contents(dp, r) == [row("p", 1, v=2)]

    run(body, clock=clock)


def test_backup_in_use_while_being_created(run: Callable[..., None]) -> None:
    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def("src"))
        b = BackupDef(backup_id=make_backup_id(1.0, "0000abcd"), name="busy", table=t, created_at=1.0,
                      owner="someone")
        await dp.committer.submit(lambda batch: backups.begin_backup(batch, b))
        with pytest.raises(BackupInUseError):
            await dp.delete_backup(b.arn)
        with pytest.raises(BackupInUseError):
            await dp.restore_backup(b.arn, target("dst", 1.0, t))
        assert "dst" not in dp.table_names()

    run(body)


def test_abandoned_backups_and_restores_are_dropped_on_open(tmp_path: Any) -> None:
    path = str(tmp_path / "data")

    async def first() -> None:
        dp = open_local(path, ttl_interval_s=0, resume_interval_s=0)
        await dp.start()
        t = await dp.create_table(table_def("src"))
        await dp.write(put(t, row("p", 1)))
        b = BackupDef(backup_id=make_backup_id(2.0, "deadbeef"), name="cut-short", table=t, created_at=2.0,
                      owner=DEAD_OWNER)
        await dp.committer.submit(lambda batch: backups.begin_backup(batch, b))
        await dp.committer.submit(functools.partial(
            backups.backup_chunk, backup_id=b.backup_id, chunk=[(b"\x01\x00\x00\x00\x01\x00k", b"\x01rec")]))
        half = dataclasses.replace(target("half", 2.0, t), status="CREATING")
        half = dataclasses.replace(half, restore=dataclasses.replace(half.restore, in_progress=True, owner=DEAD_OWNER))
        await dp.committer.submit(lambda batch: backups.begin_restore(batch, half))
        await dp.close()

    async def second() -> None:
        dp = open_local(path, ttl_interval_s=0, resume_interval_s=0)
        await dp.start()
        await dp.wait_background()
        assert dp.backups() == []
        assert dp.table_names() == ["src"]
        with dp.engine.snapshot() as snap:
            p = backup_data_prefix(make_backup_id(2.0, "deadbeef"))
            assert next(snap.iterate(p, prefix_successor(p)), None) is None
        await dp.close()

    asyncio.run(first())
    asyncio.run(second())
