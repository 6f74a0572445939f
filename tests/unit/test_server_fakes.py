"""A catalog-only in-memory DataPlane and an in-process HTTP server, for the server tests.

Only the catalog calls are implemented (tables, stats, lifecycle); item calls raise. The real
data plane is tested by the storage helper's own tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import orjson
import uvloop

from quorumdb.api.auth import Verifier
from quorumdb.api.dispatch import Dispatcher
from quorumdb.api.server import Server
from quorumdb.db.contract import TableChangedError
from quorumdb.errors import ResourceInUseError, ResourceNotFoundError
from quorumdb.model.schema import IndexDef, TableDef


class CatalogDataPlane:
    def __init__(self) -> None:
        self.tables: dict[str, TableDef] = {}
        self.next_id = 1
        self.started = False
        self.closed = False
        self.gate: asyncio.Event | None = None  # when set, CreateTable waits for it

    def table(self, name: str) -> TableDef:
        try:
            return self.tables[name]
        except KeyError:
            raise ResourceNotFoundError("Requested resource not found") from None

    def table_names(self) -> list[str]:
        return sorted(self.tables)

    async def create_table(self, table: TableDef) -> TableDef:
        # Really wait (a future completed later, then a bare yield), as a durable commit does,
        # so the server's path for handlers that suspend is exercised.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.001, fut.set_result, None)
        await fut
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if table.name in self.tables:
            raise ResourceInUseError(f"Table already exists: {table.name}")
        table = dataclasses.replace(table, table_id=self.next_id)
        self.next_id += 1
        self.tables[table.name] = table
        return table

    async def update_table(self, table: TableDef) -> TableDef:
        cur = self.table(table.name)
        if cur.version != table.version:
            raise TableChangedError(table.name)
        table = dataclasses.replace(table, version=cur.version + 1)
        self.tables[table.name] = table
        return table

    async def delete_table(self, name: str) -> TableDef:
        return self.tables.pop(name)

    async def settle_stats(self, table: TableDef) -> None:
        return None

    def table_stats(self, table: TableDef) -> tuple[int, int]:
        return (0, 0)

    def index_stats(self, table: TableDef, index: IndexDef) -> tuple[int, int]:
        return (0, 0)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"CatalogDataPlane has no item operations ({name})")

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True


def call(dp: CatalogDataPlane, op: str, req: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
    """Run one operation through the dispatcher; returns the response or {'__error': (type, message)}."""

    async def go() -> tuple[int, bytes]:
        return await Dispatcher(dp, clock=lambda: 1_700_000_000.0).handle(
            f"DynamoDB_20120810.{op}".encode(), orjson.dumps(req), "test-request"
        )

    status, body = asyncio.run(go())
    out: dict[str, Any] = orjson.loads(body)
    if status != 200:
        typ = out["__type"].rsplit("#", 1)[1]
        return {"__error": (typ, out.get("message", out.get("Message", ""))), "__status": status}
    return out


def error_of(dp: CatalogDataPlane, op: str, req: dict[str, Any]) -> tuple[str, str]:
    out = call(dp, op, req)
    assert "__error" in out, f"expected an error, got {out}"
    err: tuple[str, str] = out["__error"]
    return err


class ThreadedServer:
    """A real Server on 127.0.0.1:<random port>, its event loop in a background thread."""

    def __init__(self, *, use_uvloop: bool = True, verifier: Verifier | None = None) -> None:
        self.db = CatalogDataPlane()
        self.verifier = verifier
        self.loop = uvloop.new_event_loop() if use_uvloop else asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: Server | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.server = Server(Dispatcher(self.db, verifier=self.verifier))
            await self.server.start("127.0.0.1", 0)
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.run(self.server.close(timeout_s=2))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_catalog_fake_round_trip() -> None:
    dp = CatalogDataPlane()
    out = call(
        dp,
        "CreateTable",
        {
            "TableName": "fake",
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    assert out["TableDescription"]["TableName"] == "fake"
    assert dp.table_names() == ["fake"]
