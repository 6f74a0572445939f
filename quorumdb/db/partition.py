"""The partition seam: (table, partition-key value) -> Partition -> storage key ranges.

A table's partition-key hash space (64-bit, from ``model.keys.partition_hash``) is cut into
partitions, each a contiguous hash range. On a single node a table has one partition covering
the whole space, backed by the local engine under the table's key prefix; the cluster will
route the same calls to replica groups. Reads (Get, Query, Scan) go table -> ``Router`` ->
``Partition`` -> engine; every order comes from the key encoding, never from a sort here.

This module must never write: writes go through the group committer (``db.writer``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass

from quorumdb.db.contract import SortKeyRange
from quorumdb.db.records import Record, index_prefix, item_prefix
from quorumdb.model.keys import encode_partition, encode_prefix, encode_primary_key, encode_scalar
from quorumdb.model.schema import IndexDef, TableDef
from quorumdb.model.types import AttributeValue, Key
from quorumdb.storage.engine import Engine, ReadTxn, prefix_successor

__all__ = ["Partition", "Router", "HASH_SPACE", "segment_range", "index_entry_key"]

HASH_SPACE = 1 << 64


def segment_range(segment: int, total_segments: int) -> tuple[int, int]:
    """The hash range [lo, hi) of a parallel-scan segment (hi == 2**64 for the last one)."""
    assert 0 <= segment < total_segments
    return segment * HASH_SPACE // total_segments, (segment + 1) * HASH_SPACE // total_segments


def index_entry_key(table: TableDef, ix: IndexDef, key: Key) -> bytes:
    """The entry key an ExclusiveStartKey (index key + table key attributes) names."""
    ks = ix.key_schema
    out = index_prefix(table.table_id, ix.index_id) + encode_partition(ks.hash_attrs, [key[a.name] for a in ks.hash_attrs])
    for a in ks.range_attrs:
        out += encode_scalar(a.type, key[a.name][a.type])
    tks = table.key_schema
    out += encode_scalar(tks.hash.type, key[tks.hash.name][tks.hash.type])
    if tks.range is not None:
        out += encode_scalar(tks.range.type, key[tks.range.name][tks.range.type])
    return out


_Bound = tuple[bytes | None, bool]  # (key, inclusive)


def _max_lo(a: _Bound, b: _Bound) -> _Bound:
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return a[0], a[1] and b[1]


def _min_hi(a: _Bound, b: _Bound) -> _Bound:
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] != b[0]:
        return a if a[0] < b[0] else b
    return a[0], a[1] and b[1]


_value = operator.itemgetter(1)


def _records(
    engine: Engine, lo: _Bound, hi: _Bound, reverse: bool
) -> Iterator[Record]:
    # The snapshot opens at the first next() and closes when the iteration ends or is dropped.
    snap = engine.snapshot()
    try:
        kvs = snap.iterate(lo[0], hi[0], lo_inclusive=lo[1], hi_inclusive=hi[1], reverse=reverse)
        yield from map(Record, map(_value, kvs))
    finally:
        snap.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """A contiguous hash range [hash_lo, hash_hi) of one table, stored in ``engine``."""

    table_id: int
    hash_lo: int
    hash_hi: int
    engine: Engine
    item_prefix: bytes = b""  # derived from table_id

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_prefix", item_prefix(self.table_id))

    def get(self, table: TableDef, key: Key) -> Record | None:
        v = self.engine.get(self.item_prefix + encode_primary_key(table.key_schema, key))
        return None if v is None else Record(v)

    def get_in(self, snap: ReadTxn, table: TableDef, key: Key) -> Record | None:
        v = snap.get(self.item_prefix + encode_primary_key(table.key_schema, key))
        return None if v is None else Record(v)

    def query(
        self,
        table: TableDef,
        index: IndexDef | None,
        hash_value: AttributeValue | tuple[AttributeValue, ...],
        sort: SortKeyRange | None,
        *,
        forward: bool = True,
        exclusive_start: Key | None = None,
    ) -> Iterator[Record]:
        ks = table.key_schema if index is None else index.key_schema
        prefix = item_prefix(table.table_id) if index is None else index_prefix(table.table_id, index.index_id)
        hash_values = (hash_value,) if isinstance(hash_value, dict) else hash_value
        base = prefix + encode_partition(ks.hash_attrs, hash_values)
        lo: _Bound = (base, True)
        hi: _Bound = (prefix_successor(base), False)
        if sort is not None:
            ranges = ks.range_attrs
            assert len(sort.prefix) < len(ranges)
            for a, v in zip(ranges, sort.prefix, strict=False):
                base += encode_scalar(a.type, v[a.type])
            if sort.prefix:
                lo, hi = (base, True), (prefix_successor(base), False)
            rt = ranges[len(sort.prefix)].type
            op = sort.op
            v0 = sort.values[0]
            if op == "BEGINS_WITH":
                p = base + encode_prefix(v0)
                lo, hi = (p, True), (prefix_successor(p), False)
            else:
                e0 = base + encode_scalar(rt, v0[rt])
                # Keys with sort value v all start with base + enc(v) (index entries add the
                # table key after it), so "after every v" is prefix_successor(base + enc(v)).
                if op == "EQ":
                    lo, hi = (e0, True), (prefix_successor(e0), False)
                elif op == "LT":
                    hi = (e0, False)
                elif op == "LE":
                    hi = (prefix_successor(e0), False)
                elif op == "GT":
                    lo = (prefix_successor(e0), True)
                elif op == "GE":
                    lo = (e0, True)
                elif op == "BETWEEN":
                    v1 = sort.values[1]
                    lo, hi = (e0, True), (prefix_successor(base + encode_scalar(rt, v1[rt])), False)
                else:
                    raise ValueError(f"unknown sort key operator {op!r}")
        if exclusive_start is not None:
            if index is None:
                start = item_prefix(table.table_id) + encode_primary_key(table.key_schema, exclusive_start)
            else:
                start = index_entry_key(table, index, exclusive_start)
            if forward:
                lo = _max_lo(lo, (start, False))
            else:
                hi = _min_hi(hi, (start, False))
        if lo[0] is not None and hi[0] is not None and lo[0] > hi[0]:
            return iter(())
        return _records(self.engine, lo, hi, not forward)

    def scan(
        self,
        table: TableDef,
        index: IndexDef | None,
        *,
        hash_lo: int,
        hash_hi: int,
        exclusive_start: Key | None = None,
    ) -> Iterator[Record]:
        prefix = item_prefix(table.table_id) if index is None else index_prefix(table.table_id, index.index_id)
        lo_h = max(hash_lo, self.hash_lo)
        hi_h = min(hash_hi, self.hash_hi)
        if lo_h >= hi_h:
            return iter(())
        lo: _Bound = (prefix + lo_h.to_bytes(8, "big"), True)
        hi: _Bound = (prefix + hi_h.to_bytes(8, "big"), False) if hi_h < HASH_SPACE else (prefix_successor(prefix), False)
        if exclusive_start is not None:
            if index is None:
                start = prefix + encode_primary_key(table.key_schema, exclusive_start)
            else:
                start = index_entry_key(table, index, exclusive_start)
            lo = _max_lo(lo, (start, False))
        return _records(self.engine, lo, hi, False)


class Router:
    """Maps a table and a partition-key value to its partition (one per table on a single node)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._parts: dict[int, Partition] = {}

    def _whole(self, table_id: int) -> Partition:
        p = self._parts.get(table_id)
        if p is None:
            p = self._parts[table_id] = Partition(table_id=table_id, hash_lo=0, hash_hi=HASH_SPACE, engine=self._engine)
        return p

    def partition_for(self, table: TableDef, hash_value: AttributeValue | tuple[AttributeValue, ...]) -> Partition:
        p = self._parts.get(table.table_id)
        return p if p is not None else self._whole(table.table_id)

    def partitions(self, table: TableDef, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[Partition]:
        """The partitions overlapping [hash_lo, hash_hi), in hash order."""
        p = self._whole(table.table_id)
        return [p] if p.hash_lo < hash_hi and hash_lo < p.hash_hi else []

    def forget(self, table_id: int) -> None:
        self._parts.pop(table_id, None)
