"""The storage engine protocol: an ordered byte-key space with snapshots and atomic commits.

Everything above storage (catalog, items, index entries, counters) is laid out as byte keys
whose byte order is the order the database needs, so no layer above ever sorts at read time.
An engine offers exactly four things:

- ``get(key)``: the latest committed value (a point read, the GetItem fast path);
- ``snapshot()``: a read transaction that sees one committed state for its whole life
  (``get`` + bounded ``iterate`` forward or reverse);
- ``begin_write()``: the single read-write transaction (reads see its own writes), ended by one
  durable ``commit()`` or by ``abort()``. Only one is open at a time; the group committer owns it;
- ``write_batch(puts, deletes)``: an atomic, durable convenience commit.

This module must never know about items, tables or DynamoDB: it speaks bytes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

__all__ = ["ReadTxn", "WriteTxn", "Engine", "StorageFullError", "prefix_successor", "in_bounds"]


class ReadTxn(Protocol):
    """A consistent view of the key space. Close it (or use ``with``) when done."""

    def get(self, key: bytes) -> bytes | None: ...

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with ``lo <= key < hi`` (bounds as flagged; None = unbounded),
        ascending, or descending when ``reverse``. The bounds mean the same in both directions."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> ReadTxn: ...

    def __exit__(self, *exc: object) -> None: ...


class WriteTxn(ReadTxn, Protocol):
    """The read-write transaction: reads see its own writes; ``commit`` is durable."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was there."""
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Engine(Protocol):
    #: True when other processes may write the same store (their commits appear without us).
    shared: bool

    def get(self, key: bytes) -> bytes | None: ...

    def snapshot(self) -> ReadTxn: ...

    def begin_write(self) -> WriteTxn: ...

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None: ...

    def grow(self) -> None:
        """Make room after a ``StorageFullError`` (LMDB: a larger map); no-op if unbounded."""
        ...

    def close(self) -> None: ...


class StorageFullError(Exception):
    """The engine ran out of space inside a write transaction; abort, ``grow()``, retry."""


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no such key)."""
    p = prefix.rstrip(b"\xff")
    if not p:
        return None
    return p[:-1] + bytes((p[-1] + 1,))


def in_bounds(
    key: bytes, lo: bytes | None, hi: bytes | None, lo_inclusive: bool, hi_inclusive: bool
) -> bool:
    if lo is not None and (key < lo or (key == lo and not lo_inclusive)):
        return False
    if hi is not None and (key > hi or (key == hi and not hi_inclusive)):
        return False
    return True
