"""Support for the handler tests: table fixtures and a client over the real in-memory data plane.

``Client`` calls the registered handlers as the dispatcher does, over
``quorumdb.db.open_local(None)`` wrapped in a proxy that counts write calls (so tests can
assert that a refused request wrote nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from quorumdb.api.registry import OPERATIONS, RequestContext
from quorumdb.db import open_local
from quorumdb.db.contract import WriteOp, WriteResult
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef

# -- fixtures --------------------------------------------------------------------------------------

_next_id = [0]


def make_table(
    name: str = "t",
    *,
    hash_: tuple[str, Any] = ("pk", "S"),
    range_: tuple[str, Any] | None = None,
    indexes: Sequence[IndexDef] = (),
    attrs: dict[str, str] | None = None,
) -> TableDef:
    _next_id[0] += 1
    ks = KeySchema(
        hash=KeyAttr(name=hash_[0], type=hash_[1]),
        range=None if range_ is None else KeyAttr(name=range_[0], type=range_[1]),
    )
    defs: dict[str, Any] = {hash_[0]: hash_[1]}
    if range_ is not None:
        defs[range_[0]] = range_[1]
    for ix in indexes:
        for a in (ix.key_schema.hash, ix.key_schema.range):
            if a is not None:
                defs[a.name] = a.type
    defs.update(attrs or {})
    return TableDef(
        name=name,
        table_id=_next_id[0],
        uuid=f"uuid-{_next_id[0]}",
        key_schema=ks,
        attribute_definitions=defs,
        created_at=0.0,
        indexes=tuple(indexes),
    )


def index(
    name: str, hash_: tuple[str, Any], range_: tuple[str, Any] | None = None, *,
    local: bool = False, projection: str = "ALL", include: tuple[str, ...] = (), index_id: int = 1,
) -> IndexDef:
    return IndexDef(
        name=name,
        index_id=index_id,
        local=local,
        key_schema=KeySchema(
            hash=KeyAttr(name=hash_[0], type=hash_[1]),
            range=None if range_ is None else KeyAttr(name=range_[0], type=range_[1]),
        ),
        projection=projection,
        non_key_attributes=include,
    )


def _import_handlers() -> None:
    import quorumdb.api.ops  # noqa: F401  (registers every handler)


class CountingDataPlane:
    """Delegates to a real data plane, counting the write calls that reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write(self, op: WriteOp) -> WriteResult:
        self.writes += 1
        res: WriteResult = await self.inner.write(op)
        return res

    async def write_many(self, ops: Sequence[WriteOp]) -> list[WriteResult | BaseException]:
        self.writes += len(ops)
        res: list[WriteResult | BaseException] = await self.inner.write_many(ops)
        return res

    async def transact_write(self, ops: Sequence[WriteOp], **kw: Any) -> list[WriteResult]:
        self.writes += len(ops)
        res: list[WriteResult] = await self.inner.transact_write(ops, **kw)
        return res


class Client:
    """Calls handlers the way the dispatcher does: ``client.call("PutItem", {...})``."""

    def __init__(self, *tables: TableDef) -> None:
        _import_handlers()
        self.loop = asyncio.new_event_loop()
        inner = open_local(None, background=False)
        self.loop.run_until_complete(inner.start())
        for t in tables:
            self.loop.run_until_complete(inner.create_table(t))
        self.db = CountingDataPlane(inner)
        self.ctx = RequestContext(db=self.db, request_id="test", now=lambda: 1000.0)

    def close(self) -> None:
        self.loop.run_until_complete(self.db.inner.close())
        self.loop.close()

    def call(self, op: str, req: dict[str, Any]) -> dict[str, Any]:
        out = self.loop.run_until_complete(OPERATIONS[op](self.ctx, req))
        if isinstance(out, bytes):
            decoded: dict[str, Any] = orjson.loads(out)
            return decoded
        # What the server would send: encode and decode, to catch non-JSON values.
        decoded = orjson.loads(orjson.dumps(out))
        return decoded
