"""kill -9 a process mid-write: every acknowledged write must survive."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

from quorumdb.db import open_local

WRITER = r"""
import asyncio, sys
from quorumdb.db import open_local
from quorumdb.db.contract import WriteOp
from quorumdb.model.schema import KeyAttr, KeySchema, TableDef

async def main():
    dp = open_local(sys.argv[1], ttl_interval_s=0)
    await dp.start()
    t = await dp.create_table(TableDef(
        name="t", table_id=0, uuid="u", key_schema=KeySchema(hash=KeyAttr(name="pk", type="S")),
        attribute_definitions={"pk": "S"}, created_at=0.0))
    print("ready", flush=True)

    async def one(i):
        item = {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}
        await dp.write(WriteOp(table=t, key={"pk": item["pk"]}, mutate=lambda old: item))
        sys.stdout.write(f"{i}\n")
        sys.stdout.flush()

    i = 0
    while True:  # killed from outside
        await asyncio.gather(*(one(i + j) for j in range(16)))
        i += 16

asyncio.run(main())
"""


def test_acknowledged_writes_survive_kill_9(tmp_path: Any) -> None:
    path = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    acked: list[int] = []
    try:
        while len(acked) < 400:
            line = proc.stdout.readline()
            assert line, "writer died"
            acked.append(int(line))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Lines already buffered in the pipe were acknowledged too.
    acked.extend(int(x) for x in proc.stdout.read().split())

    async def check() -> None:
        dp = open_local(path, ttl_interval_s=0)
        await dp.start()
        t = dp.table("t")
        missing = [i for i in acked if await dp.get(t, {"pk": {"S": f"k{i}"}}) is None]
        assert missing == []
        count, _size = dp.table_stats(t)
        assert count >= len(set(acked))
        assert count == sum(1 for _ in await dp.scan(t, None))  # counters committed with the items
        await dp.close()

    asyncio.run(check())
