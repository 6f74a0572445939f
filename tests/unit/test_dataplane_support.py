"""Support for the data-plane tests: tables keyed by pk (S) and sk (N), and a started data plane.

The ``engine_kind`` fixture that names the engine to run on is in conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from quorumdb.db import LocalDataPlane, open_local
from quorumdb.db.contract import WriteOp
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef
from quorumdb.model.types import Item, ScalarType

PK = KeyAttr(name="pk", type="S")
SK = KeyAttr(name="sk", type="N")


def table_def(
    name: str = "t",
    *,
    range_key: bool = True,
    indexes: tuple[IndexDef, ...] = (),
    attributes: Mapping[str, ScalarType] | None = None,
) -> TableDef:
    """A table keyed by ``PK`` and (with ``range_key``) ``SK``; ``attributes`` are its attribute
    definitions, by default pk and sk."""
    return TableDef(
        name=name,
        table_id=0,
        uuid="uuid-" + name,
        key_schema=KeySchema(hash=PK, range=SK if range_key else None),
        attribute_definitions={"pk": "S", "sk": "N"} if attributes is None else dict(attributes),
        created_at=0.0,
        indexes=indexes,
    )


def put(t: TableDef, item: Item) -> WriteOp:
    return WriteOp(table=t, key=t.key_schema.key_of(item), mutate=lambda old: item)


def run(kind: str, tmp_path: Any, body: Callable[[LocalDataPlane], Awaitable[None]], **options: Any) -> None:
    """Run ``body`` against a started data plane on engine ``kind`` (LMDB under ``tmp_path``),
    then close it. ``options`` go to ``open_local``; the TTL expirer is off unless a test sets
    ``ttl_interval_s``, so no background deletion races a test."""

    async def main() -> None:
        options.setdefault("ttl_interval_s", 0)
        dp = open_local(None if kind == "memory" else str(tmp_path / "data"), **options)
        await dp.start()
        try:
            await body(dp)
        finally:
            await dp.close()

    asyncio.run(main())
