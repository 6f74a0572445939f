"""The data plane: everything between the API handlers and the storage engine.

``open_local`` builds the single-node data plane (``LocalDataPlane``) over the LMDB engine in
``data_dir``, or over the in-memory engine when ``data_dir`` is None. Handlers depend only on
``quorumdb.db.contract.DataPlane``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quorumdb.db.local import LocalDataPlane

__all__ = ["open_local", "LocalDataPlane"]


def open_local(
    data_dir: str | None, *, clock: Callable[[], float] = time.time, **options: Any
) -> LocalDataPlane:
    """A single-node data plane; ``options`` go to ``LocalDataPlane`` (ttl_interval_s,
    item_collection_limit_bytes — by default from QUORUMDB_ITEM_COLLECTION_LIMIT_BYTES, else
    10 GB —, token_window_s, ...). Several processes may open the same ``data_dir``."""
    if data_dir is None:
        from quorumdb.storage.memory import MemoryEngine

        return LocalDataPlane(MemoryEngine(), clock=clock, **options)
    from quorumdb.storage.lmdb_engine import LmdbEngine

    map_size = options.pop("map_size", None)
    engine = LmdbEngine(data_dir) if map_size is None else LmdbEngine(data_dir, map_size=map_size)
    return LocalDataPlane(engine, clock=clock, **options)
