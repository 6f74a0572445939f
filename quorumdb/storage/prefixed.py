"""A key namespace of an engine seen as an engine of its own, and a write overlay.

``PrefixedEngine(engine, prefix)`` stores every key ``k`` as ``prefix + k``, so several
independent stores (one per partition replica in the cluster) share one environment and its
durable commits while each sees only its own keys, with their order intact.

``OverlayTxn`` is a write transaction that never commits: it reads a snapshot through layers of
pending writes (newest last) and records its own writes, which the caller takes as a list of
effects (``writes``) to replicate. It speaks bytes only, like the rest of this package.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence

from .engine import Engine, ReadTxn, WriteTxn, in_bounds, prefix_successor

__all__ = ["PrefixedEngine", "OverlayTxn"]


def _bounds(
    prefix: bytes, lo: bytes | None, hi: bytes | None, lo_inclusive: bool, hi_inclusive: bool
) -> tuple[bytes, bytes | None, bool, bool]:
    plo, lo_inc = (prefix, True) if lo is None else (prefix + lo, lo_inclusive)
    if hi is None:
        return plo, prefix_successor(prefix), lo_inc, False
    return plo, prefix + hi, lo_inc, hi_inclusive


class _PrefixedRead:
    __slots__ = ("_txn", "_p", "_n")

    def __init__(self, txn: ReadTxn, prefix: bytes) -> None:
        self._txn = txn
        self._p = prefix
        self._n = len(prefix)

    def get(self, key: bytes) -> bytes | None:
        return self._txn.get(self._p + key)

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        plo, phi, li, hi_i = _bounds(self._p, lo, hi, lo_inclusive, hi_inclusive)
        n = self._n
        for k, v in self._txn.iterate(plo, phi, lo_inclusive=li, hi_inclusive=hi_i, reverse=reverse):
            yield k[n:], v

    def close(self) -> None:
        self._txn.close()

    def __enter__(self) -> _PrefixedRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PrefixedWrite(_PrefixedRead):
    __slots__ = ()
    _txn: WriteTxn

    def put(self, key: bytes, value: bytes) -> None:
        self._txn.put(self._p + key, value)

    def delete(self, key: bytes) -> bool:
        return self._txn.delete(self._p + key)

    def commit(self) -> None:
        self._txn.commit()

    def abort(self) -> None:
        self._txn.abort()


class PrefixedEngine:
    """The keys of ``engine`` that start with ``prefix``, with the prefix taken off."""

    def __init__(self, engine: Engine, prefix: bytes) -> None:
        assert prefix, "a namespace needs a non-empty prefix"
        self.base = engine
        self.prefix = prefix
        self.shared = engine.shared

    def get(self, key: bytes) -> bytes | None:
        return self.base.get(self.prefix + key)

    def snapshot(self) -> _PrefixedRead:
        return _PrefixedRead(self.base.snapshot(), self.prefix)

    def begin_write(self) -> _PrefixedWrite:
        return _PrefixedWrite(self.base.begin_write(), self.prefix)

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        p = self.prefix
        self.base.write_batch(((p + k, v) for k, v in puts), (p + k for k in deletes))

    def grow(self) -> None:
        self.base.grow()

    def close(self) -> None:
        """The namespace does not own the environment: closing it closes nothing."""

    def keys_count(self) -> int:
        with self.snapshot() as snap:
            return sum(1 for _ in snap.iterate())


class OverlayTxn:
    """Reads ``base`` through ``layers`` (dicts of key -> value or None = deleted, oldest
    first), records its own puts and deletes in ``writes`` and never touches ``base``."""

    def __init__(self, base: ReadTxn, layers: Sequence[dict[bytes, bytes | None]] = ()) -> None:
        self._base = base
        self._layers = list(layers)
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        w = self.writes
        if key in w:
            return w[key]
        for layer in reversed(self._layers):
            if key in layer:
                return layer[key]
        return self._base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> bool:
        existed = self.get(key) is not None
        self.writes[key] = None
        return existed

    def _merged(self) -> dict[bytes, bytes | None]:
        merged: dict[bytes, bytes | None] = {}
        for layer in self._layers:
            merged.update(layer)
        merged.update(self.writes)
        return merged

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes | None]]:
        over = self._merged()
        mine = sorted(
            (k for k in over if in_bounds(k, lo, hi, lo_inclusive, hi_inclusive)), reverse=reverse
        )
        base = self._base.iterate(lo, hi, lo_inclusive=lo_inclusive, hi_inclusive=hi_inclusive, reverse=reverse)
        # Merge the two ordered streams; an overlay key hides the base's value for that key.
        tagged_base = ((k, 1, v) for k, v in base if k not in over)
        tagged_mine = ((k, 0, over[k]) for k in mine)
        merged = heapq.merge(tagged_base, tagged_mine, reverse=reverse)
        for k, _tag, v in merged:
            if v is not None:
                yield k, v

    def commit(self) -> None:
        raise RuntimeError("an overlay transaction is never committed: replicate its writes")

    def abort(self) -> None:
        self.writes = {}

    def close(self) -> None:
        self._base.close()

    def __enter__(self) -> OverlayTxn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
