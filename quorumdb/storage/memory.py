"""In-memory reference engine: a persistent (copy-on-write) two-level sorted structure.

The state is an immutable root: a list of chunks (each a sorted key list plus its value list)
and the list of each chunk's last key. A commit copies only the chunks it touches and the root
lists, then publishes the new root with one reference assignment, so a snapshot is just the
root it started with: isolated from later commits, never locked, and a batch appears at once.

It is for tests and ``--in-memory`` serving; it must never be used where durability is promised.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

from quorumdb.storage.engine import in_bounds

__all__ = ["MemoryEngine"]

CHUNK_MAX = 512  # a chunk that grows past this is split in two

_Chunk = tuple[list[bytes], list[bytes]]


class _Root:
    __slots__ = ("lasts", "chunks")

    def __init__(self, lasts: list[bytes], chunks: list[_Chunk]) -> None:
        self.lasts = lasts  # lasts[i] == chunks[i][0][-1]; no chunk is empty
        self.chunks = chunks


def _root_get(root: _Root, key: bytes) -> bytes | None:
    lasts = root.lasts
    i = bisect_left(lasts, key)
    if i == len(lasts):
        return None
    ks, vs = root.chunks[i]
    j = bisect_left(ks, key)
    if ks[j] == key:  # j < len(ks) since key <= ks[-1]
        return vs[j]
    return None


def _root_iter(
    root: _Root,
    lo: bytes | None,
    hi: bytes | None,
    lo_inclusive: bool,
    hi_inclusive: bool,
    reverse: bool,
) -> Iterator[tuple[bytes, bytes]]:
    lasts, chunks = root.lasts, root.chunks
    if not chunks:
        return
    if not reverse:
        if lo is None:
            i, j = 0, 0
        else:
            i = bisect_left(lasts, lo)
            if i == len(lasts):
                return
            ks = chunks[i][0]
            j = bisect_left(ks, lo) if lo_inclusive else bisect_right(ks, lo)
        n = len(chunks)
        while i < n:
            ks, vs = chunks[i]
            m = len(ks)
            while j < m:
                k = ks[j]
                if hi is not None and (k > hi or (k == hi and not hi_inclusive)):
                    return
                yield k, vs[j]
                j += 1
            i += 1
            j = 0
    else:
        if hi is None:
            i = len(chunks) - 1
            j = len(chunks[i][0]) - 1
        else:
            i = bisect_left(lasts, hi)
            if i == len(lasts):
                i -= 1
            ks = chunks[i][0]
            j = (bisect_right(ks, hi) if hi_inclusive else bisect_left(ks, hi)) - 1
        while i >= 0:
            ks, vs = chunks[i]
            while j >= 0:
                k = ks[j]
                if lo is not None and (k < lo or (k == lo and not lo_inclusive)):
                    return
                yield k, vs[j]
                j -= 1
            i -= 1
            if i >= 0:
                j = len(chunks[i][0]) - 1


def _apply(root: _Root, changes: dict[bytes, bytes | None]) -> _Root:
    """A new root with ``changes`` (value None = delete) applied; ``root`` is untouched."""
    if not changes:
        return root
    lasts = list(root.lasts)
    chunks = list(root.chunks)
    # Group changed keys by the chunk they fall in (keys past the end go to the last chunk).
    by_chunk: dict[int, list[bytes]] = {}
    nchunks = len(chunks)
    for key in sorted(changes):
        i = bisect_left(lasts, key)
        if i == nchunks:
            i = nchunks - 1  # -1 when there are no chunks at all
        by_chunk.setdefault(i, []).append(key)
    # Rebuild touched chunks from the highest index down so earlier indices stay valid.
    for i in sorted(by_chunk, reverse=True):
        if i < 0:
            ks: list[bytes] = []
            vs: list[bytes] = []
        else:
            ks = list(chunks[i][0])
            vs = list(chunks[i][1])
        for key in by_chunk[i]:
            value = changes[key]
            j = bisect_left(ks, key)
            present = j < len(ks) and ks[j] == key
            if value is None:
                if present:
                    del ks[j]
                    del vs[j]
            elif present:
                vs[j] = value
            else:
                ks.insert(j, key)
                vs.insert(j, value)
        pieces: list[_Chunk] = []
        n = len(ks)
        if n <= CHUNK_MAX:
            if n:
                pieces.append((ks, vs))
        else:  # split evenly, so chunks stay at least half full
            parts = -(-n // CHUNK_MAX)
            for p in range(parts):
                a, b = p * n // parts, (p + 1) * n // parts
                pieces.append((ks[a:b], vs[a:b]))
        if i < 0:
            chunks = pieces
            lasts = [p[0][-1] for p in pieces]
        else:
            chunks[i : i + 1] = pieces
            lasts[i : i + 1] = [p[0][-1] for p in pieces]
    return _Root(lasts, chunks)


class _Snapshot:
    __slots__ = ("_root",)

    def __init__(self, root: _Root) -> None:
        self._root = root

    def get(self, key: bytes) -> bytes | None:
        return _root_get(self._root, key)

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        return _root_iter(self._root, lo, hi, lo_inclusive, hi_inclusive, reverse)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _WriteTxn:
    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._base = engine._root
        self._changes: dict[bytes, bytes | None] = {}
        self._open = True

    def get(self, key: bytes) -> bytes | None:
        changes = self._changes
        if key in changes:
            return changes[key]
        return _root_get(self._base, key)

    def put(self, key: bytes, value: bytes) -> None:
        assert self._open
        self._changes[key] = bytes(value)

    def delete(self, key: bytes) -> bool:
        assert self._open
        present = self.get(key) is not None
        self._changes[key] = None
        return present

    def iterate(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        base = _root_iter(self._base, lo, hi, lo_inclusive, hi_inclusive, reverse)
        if not self._changes:
            return base
        # Pending changes are few (one batch); merge them over the base order.
        mine = sorted(
            (k for k in self._changes if in_bounds(k, lo, hi, lo_inclusive, hi_inclusive)),
            reverse=reverse,
        )
        return self._merge(base, mine, reverse)

    def _merge(
        self, base: Iterator[tuple[bytes, bytes]], mine: list[bytes], reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        changes = self._changes
        i = 0
        n = len(mine)
        for k, v in base:
            while i < n and (mine[i] > k if reverse else mine[i] < k):
                nv = changes[mine[i]]
                if nv is not None:
                    yield mine[i], nv
                i += 1
            if i < n and mine[i] == k:
                i += 1
                nv = changes[k]
                if nv is not None:
                    yield k, nv
                continue
            yield k, v
        while i < n:
            nv = changes[mine[i]]
            if nv is not None:
                yield mine[i], nv
            i += 1

    def commit(self) -> None:
        assert self._open
        self._open = False
        try:
            assert self._engine._root is self._base, "a second writer committed meanwhile"
            self._engine._root = _apply(self._base, self._changes)
        finally:
            self._engine._write_lock.release()

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._engine._write_lock.release()

    def close(self) -> None:
        self.abort()

    def __enter__(self) -> _WriteTxn:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.abort()


class MemoryEngine:
    shared = False

    def __init__(self) -> None:
        self._root = _Root([], [])
        self._write_lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return _root_get(self._root, key)

    def snapshot(self) -> _Snapshot:
        return _Snapshot(self._root)

    def begin_write(self) -> _WriteTxn:
        self._write_lock.acquire()
        return _WriteTxn(self)

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        txn = self.begin_write()
        try:
            for k in deletes:
                txn.delete(k)
            for k, v in puts:
                txn.put(k, v)
            txn.commit()
        finally:
            txn.abort()

    def grow(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return sum(len(c[0]) for c in self._root.chunks)
