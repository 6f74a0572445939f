"""The durable engine: one LMDB environment (B+tree, MVCC read snapshots, one writer).

- Every commit is synced to disk before ``commit()`` returns (``sync=True``, ``metasync=True``).
- ``lock=True``: several processes may open the same directory; LMDB serializes their write
  transactions and each reader sees the latest commit of any process.
- The map starts large (address space only; the file grows as pages are used) and doubles when
  a write transaction hits ``MapFullError`` (the caller aborts, calls ``grow()``, and retries).
  When another process grew the map first, ``MapResizedError`` is handled by adopting its size.

LMDB keys are at most 511 bytes; longer keys (a DynamoDB key may take ~3 KB) are kept in order
through buckets (see ``_iterate``). Empty keys are not supported.

Read transactions are MVCC snapshots and cost no lock. This module must never hold a read
transaction across an ``await`` on behalf of callers that do not close it.
"""

from __future__ import annotations

import hashlib
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

import lmdb
import msgpack

from quorumdb.storage.engine import StorageFullError

__all__ = ["LmdbEngine", "DEFAULT_MAP_SIZE"]

DEFAULT_MAP_SIZE = 1 << 40  # 1 TiB of address space (not disk); grows by doubling when full
GROW_WAIT_S = 2.0
MAX_READERS = 1024


def _long_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class _Dbs:
    __slots__ = ("data", "long", "inline_max")

    def __init__(self, data: Any, long: Any, inline_max: int) -> None:
        self.data = data
        self.long = long
        self.inline_max = inline_max


def _get(txn: Any, dbs: _Dbs, key: bytes) -> bytes | None:
    if len(key) <= dbs.inline_max:
        return txn.get(key, db=dbs.data)
    return txn.get(_long_id(key), db=dbs.long)


def _put(txn: Any, dbs: _Dbs, key: bytes, value: bytes) -> None:
    assert key, "empty keys are not supported"
    p = dbs.inline_max
    if len(key) <= p:
        txn.put(key, value, db=dbs.data)
        return
    bucket = key[:p] + b"\x00"
    raw = txn.get(bucket, db=dbs.data)
    suffixes: list[bytes] = [] if raw is None else msgpack.unpackb(raw)
    suffix = key[p:]
    i = bisect_left(suffixes, suffix)
    if i == len(suffixes) or suffixes[i] != suffix:
        suffixes.insert(i, suffix)
        txn.put(bucket, msgpack.packb(suffixes), db=dbs.data)
    txn.put(_long_id(key), value, db=dbs.long)


def _delete(txn: Any, dbs: _Dbs, key: bytes) -> bool:
    p = dbs.inline_max
    if len(key) <= p:
        return bool(txn.delete(key, db=dbs.data))
    if not txn.delete(_long_id(key), db=dbs.long):
        return False
    bucket = key[:p] + b"\x00"
    suffixes: list[bytes] = msgpack.unpackb(txn.get(bucket, db=dbs.data))
    suffixes.remove(key[p:])
    if suffixes:
        txn.put(bucket, msgpack.packb(suffixes), db=dbs.data)
    else:
        txn.delete(bucket, db=dbs.data)
    return True


class _ReadTxn:
    __slots__ = ("_txn", "_dbs", "_engine", "_open")

    def __init__(self, txn: Any, dbs: _Dbs, engine: LmdbEngine) -> None:
        self._txn = txn
        self._dbs = dbs
        self._engine = engine
        self._open = True
        engine._open_snapshots += 1

    def get(self, key: bytes) -> bytes | None:
        return _get(self._txn, self._dbs, key)

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        return _iterate(self._txn, self._dbs, lo, hi, lo_inclusive, hi_inclusive, reverse, self)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._engine._open_snapshots -= 1
            try:
                self._txn.abort()
            except lmdb.Error:  # the environment was closed first
                pass

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> _ReadTxn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _iterate(
    txn: Any,
    dbs: _Dbs,
    lo: bytes | None,
    hi: bytes | None,
    lo_inclusive: bool,
    hi_inclusive: bool,
    reverse: bool,
    owner: object = None,  # kept alive while iterating (its __del__ would end the txn)
) -> Iterator[tuple[bytes, bytes]]:
    """Keys longer than ``inline_max`` live in a bucket (``key[:inline_max] + 0x00``, the
    sorted list of their suffixes) that sorts exactly where its members do; their values are
    in the ``long`` database. Seeks are conservative and every key is checked against the
    bounds, so buckets and plain keys interleave correctly."""
    p = dbs.inline_max
    blen = p + 1
    cur = txn.cursor(db=dbs.data)
    try:
        if not reverse:
            if lo is None:
                positioned = cur.first()
            else:
                positioned = cur.set_range(lo[:p])
            if not positioned:
                return
            # Keys ascend: once one plain key is past ``lo``, every later one is too.
            check_lo = lo is not None
            for k, v in cur.iternext():
                if len(k) == blen:
                    for s in msgpack.unpackb(v):
                        full = k[:p] + s
                        if lo is not None and (full < lo or (full == lo and not lo_inclusive)):
                            continue
                        if hi is not None and (full > hi or (full == hi and not hi_inclusive)):
                            return
                        yield full, txn.get(_long_id(full), db=dbs.long)
                    continue
                if check_lo:
                    assert lo is not None
                    if k < lo or (k == lo and not lo_inclusive):
                        continue
                    check_lo = False
                if hi is not None and (k > hi or (k == hi and not hi_inclusive)):
                    return
                yield k, v
        else:
            if hi is None:
                positioned = cur.last()
            else:
                seek = hi if len(hi) <= p else hi[:p] + b"\x00"
                positioned = cur.set_range(seek)
                if not positioned:
                    positioned = cur.last()
                elif cur.key() > seek:
                    positioned = cur.prev()
            if not positioned:
                return
            for k, v in cur.iterprev():
                if len(k) == blen:
                    for s in reversed(msgpack.unpackb(v)):
                        full = k[:p] + s
                        if hi is not None and (full > hi or (full == hi and not hi_inclusive)):
                            continue
                        if lo is not None and (full < lo or (full == lo and not lo_inclusive)):
                            return
                        yield full, txn.get(_long_id(full), db=dbs.long)
                    continue
                if hi is not None and (k > hi or (k == hi and not hi_inclusive)):
                    continue
                if lo is not None and (k < lo or (k == lo and not lo_inclusive)):
                    return
                yield k, v
    finally:
        cur.close()


class _WriteTxn:
    def __init__(self, engine: LmdbEngine) -> None:
        self._engine = engine
        self._dbs = engine._dbs
        self._txn = engine._env.begin(write=True)
        self._open = True

    def get(self, key: bytes) -> bytes | None:
        return _get(self._txn, self._dbs, key)

    def put(self, key: bytes, value: bytes) -> None:
        try:
            _put(self._txn, self._dbs, key, value)
        except lmdb.MapFullError as e:
            raise StorageFullError(str(e)) from e

    def delete(self, key: bytes) -> bool:
        try:
            return _delete(self._txn, self._dbs, key)
        except lmdb.MapFullError as e:
            raise StorageFullError(str(e)) from e

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        return _iterate(self._txn, self._dbs, lo, hi, lo_inclusive, hi_inclusive, reverse)

    def commit(self) -> None:
        assert self._open
        self._open = False
        try:
            self._txn.commit()
        except lmdb.MapFullError as e:
            raise StorageFullError(str(e)) from e

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._txn.abort()

    def close(self) -> None:
        self.abort()

    def __enter__(self) -> _WriteTxn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class LmdbEngine:
    shared = True

    def __init__(self, path: str, *, map_size: int = DEFAULT_MAP_SIZE, durable: bool = True) -> None:
        """``durable=False`` skips the sync on commit: for tests and scratch data only."""
        os.makedirs(path, exist_ok=True)
        self.path = path
        self._env = lmdb.open(
            path,
            map_size=map_size,
            subdir=True,
            lock=True,
            sync=durable,
            metasync=durable,
            readahead=False,
            max_readers=MAX_READERS,
            max_dbs=2,
            max_spare_txns=16,
        )
        # Two named databases (the unnamed one would list their names among our keys).
        data = self._env.open_db(b"data")
        long = self._env.open_db(b"long")
        self._dbs = _Dbs(data, long, self._env.max_key_size() - 1)
        self._data = data
        self._open_snapshots = 0  # approximate (updated without a lock); used only by grow()

    @property
    def map_size(self) -> int:
        return int(self._env.info()["map_size"])

    def get(self, key: bytes) -> bytes | None:
        txn = self._begin_read()
        try:
            if len(key) <= self._dbs.inline_max:
                return txn.get(key, db=self._data)
            return _get(txn, self._dbs, key)
        finally:
            txn.abort()

    def _begin_read(self) -> Any:
        try:
            return self._env.begin(buffers=False)
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)  # adopt the size another process set
            return self._env.begin(buffers=False)

    def snapshot(self) -> _ReadTxn:
        return _ReadTxn(self._begin_read(), self._dbs, self)

    def begin_write(self) -> _WriteTxn:
        try:
            return _WriteTxn(self)
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)
            return _WriteTxn(self)

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        puts = list(puts)
        deletes = list(deletes)
        while True:
            txn = self.begin_write()
            try:
                for k in deletes:
                    txn.delete(k)
                for k, v in puts:
                    txn.put(k, v)
                txn.commit()
                return
            except StorageFullError:
                txn.abort()
                self.grow()
            finally:
                txn.abort()

    def grow(self) -> None:
        """Double the map. LMDB requires that no transaction of this process is open: give open
        snapshots (iterations on other threads) a moment to finish. With the 1 TiB default
        this is rare; the short point reads of ``get`` are not tracked."""
        deadline = time.monotonic() + GROW_WAIT_S
        while self._open_snapshots > 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        self._env.set_mapsize(self.map_size * 2)

    def sync(self) -> None:
        self._env.sync(True)

    def close(self) -> None:
        self._env.close()
