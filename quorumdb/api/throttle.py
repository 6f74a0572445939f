"""Provisioned-capacity enforcement on the single node: which requests run, which are throttled.

Off by default. On for every provisioned table with ``quorumdb serve --enforce-capacity`` (or
``QUORUMDB_ENFORCE_CAPACITY=1``), and for one table when it carries the tag
``quorumdb:enforce-capacity`` = ``true``. On-demand (PAY_PER_REQUEST) tables are never throttled.

A ``Throttle`` keeps token buckets (``quorumdb.core.capacity``) per table and per provisioned
GSI, one read and one write bucket per logical partition. The single node stores a table as one
partition, so the logical partitions are the ones DynamoDB would have
(``core.capacity.partition_count``, fixed when the buckets are made or the throughput changes,
never fewer afterwards), each owning an equal slice of the partition-key hash space. LSIs share
their table's buckets, as in DynamoDB.

Handlers ask before they act (``admit_*`` returns the error to raise, or None) and settle the
cost known only afterwards (``settle_*``), so a throttled request has no effect. Costs are the
ones ConsumedCapacity reports (``quorumdb.api.capacity``). This module never touches storage;
the one data-plane call is ``table_stats``/``index_stats`` when a table's buckets are (re)made.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from quorumdb.api import capacity
from quorumdb.core.capacity import (
    PARTITION_RCU_MAX,
    PARTITION_WCU_MAX,
    TokenBucket,
    partition_count,
    partition_of,
    partition_rate,
)
from quorumdb.db.contract import DataPlane, StoredItem, WriteResult
from quorumdb.errors import ProvisionedThroughputExceededError, TransactionCanceledError
from quorumdb.model.keys import partition_hash
from quorumdb.model.schema import IndexDef, KeySchema, TableDef
from quorumdb.model.size import item_size
from quorumdb.model.types import AttributeValue, Item, Key

__all__ = [
    "Throttle",
    "ENFORCE_ENV",
    "TIME_SCALE_ENV",
    "SHARE_ENV",
    "ENFORCE_TAG",
    "TABLE_MESSAGE",
    "INDEX_MESSAGE",
    "hash_position",
    "item_position",
    "meter",
    "admit_transact_writes",
    "settle_transact_writes",
    "admit_transact_gets",
    "settle_transact_gets",
    "scaled_clock",
    "from_env",
    "enforced_by_env",
]

ENFORCE_ENV = "QUORUMDB_ENFORCE_CAPACITY"
# Test-only: capacity time runs this many times faster than real time (refill and burst).
TIME_SCALE_ENV = "QUORUMDB_CAPACITY_TIME_SCALE"
# Internal: the fraction of each table's capacity one worker process of ``--workers N`` enforces.
SHARE_ENV = "QUORUMDB_CAPACITY_SHARE"
ENFORCE_TAG = "quorumdb:enforce-capacity"

TABLE_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
INDEX_MESSAGE = (
    "The level of configured provisioned throughput for one or more global secondary indexes "
    "of the table was exceeded. Consider increasing your provisioning level for the "
    "under-provisioned global secondary indexes with the UpdateTable API."
)


def hash_position(values: Sequence[AttributeValue]) -> int:
    """Where partition-key value(s) fall in the 64-bit hash space (several: a multi-attribute
    index key)."""
    if len(values) == 1:
        return int.from_bytes(partition_hash(values[0]), "big")
    digest = hashlib.blake2b(b"".join(partition_hash(v) for v in values), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def item_position(schema: KeySchema, item: Mapping[str, AttributeValue]) -> int | None:
    values = []
    for a in schema.hash_attrs:
        v = item.get(a.name)
        if v is None:
            return None
        values.append(v)
    return hash_position(values)


def scaled_clock(scale: float = 1.0) -> Callable[[], float]:
    """Monotonic seconds, running ``scale`` times faster than real time."""
    assert scale > 0
    if scale == 1.0:
        return time.monotonic
    return lambda: time.monotonic() * scale


class _Buckets:
    """The read and write buckets of one table or GSI, one pair per logical partition."""

    __slots__ = ("read_units", "write_units", "reads", "writes", "arn", "reason_prefix")

    def __init__(self, arn: str, reason_prefix: str) -> None:
        self.read_units = -1.0
        self.write_units = -1.0
        self.reads: list[TokenBucket] = []
        self.writes: list[TokenBucket] = []
        self.arn = arn
        self.reason_prefix = reason_prefix  # "Table" | "Index"

    def fit(self, read_units: float, write_units: float, size_bytes: Callable[[], int], now: float) -> None:
        """Make or resize the buckets for this throughput (a no-op while it is unchanged)."""
        if read_units == self.read_units and write_units == self.write_units:
            return
        count = max(len(self.reads), partition_count(read_units, write_units, size_bytes()))
        self.reads = _resized(self.reads, count, partition_rate(read_units, count, PARTITION_RCU_MAX), now)
        self.writes = _resized(self.writes, count, partition_rate(write_units, count, PARTITION_WCU_MAX), now)
        self.read_units = read_units
        self.write_units = write_units

    def error(self, op: str, message: str) -> ProvisionedThroughputExceededError:
        # One partition among several ran out: DynamoDB names that a key-range limit.
        limit = "KeyRangeThroughputExceeded" if len(self.reads) > 1 else "ProvisionedThroughputExceeded"
        return ProvisionedThroughputExceededError(
            message, reasons=[{"reason": self.reason_prefix + op + limit, "resource": self.arn}]
        )


def _resized(old: list[TokenBucket], count: int, rate: float, now: float) -> list[TokenBucket]:
    if len(old) == count:
        for b in old:
            b.resize(rate, now)
        return old
    # More partitions: their burst is what the old ones had left, shared out evenly.
    fresh = [TokenBucket.full(rate, now) for _ in range(count)]
    if old:
        for b in old:
            b.refill(now)
        left = sum(b.tokens for b in old) / count
        for b in fresh:
            b.tokens = min(b.burst_max, left)
    return fresh


class Throttle:
    """Token buckets of every enforced table of one server process."""

    __slots__ = ("on", "clock", "share", "db", "_tables", "_indexes")

    def __init__(
        self,
        *,
        on: bool,
        clock: Callable[[], float] = time.monotonic,
        share: float = 1.0,
        db: DataPlane | None = None,
    ) -> None:
        assert 0 < share <= 1
        self.on = on  # every provisioned table; else only the tagged ones
        self.clock = clock
        self.share = share
        self.db = db  # for table sizes (partition count); None: size 0
        self._tables: dict[str, _Buckets] = {}
        self._indexes: dict[tuple[str, int], _Buckets] = {}

    def applies(self, table: TableDef) -> bool:
        """Whether requests on ``table`` are metered (the caller checks ``on or table.tags``
        first, so the default path costs one test)."""
        if table.billing_mode != "PROVISIONED":
            return False
        return self.on or table.tags.get(ENFORCE_TAG, "").lower() == "true"

    # -- buckets ---------------------------------------------------------------------------

    def _table(self, table: TableDef, now: float) -> _Buckets:
        b = self._tables.get(table.uuid)
        if b is None:
            b = self._tables[table.uuid] = _Buckets(table.arn, "Table")
        t = table.throughput
        db = self.db
        b.fit(t.read_units * self.share, t.write_units * self.share,
              lambda: db.table_stats(table)[1] if db is not None else 0, now)
        return b

    def _index(self, table: TableDef, ix: IndexDef, now: float) -> _Buckets:
        k = (table.uuid, ix.index_id)
        b = self._indexes.get(k)
        if b is None:
            b = self._indexes[k] = _Buckets(f"{table.arn}/index/{ix.name}", "Index")
        t = ix.throughput
        db = self.db
        b.fit(t.read_units * self.share, t.write_units * self.share,
              lambda: db.index_stats(table, ix)[1] if db is not None else 0, now)
        return b

    def refit(self, table: TableDef) -> None:
        """Apply ``table``'s new throughput now (UpdateTable), to the buckets it has; the rate
        before applies up to this moment. (Another worker process applies it at its next
        request on the table.)"""
        now = self.clock()
        if table.uuid in self._tables:
            self._table(table, now)
        for ix in table.indexes:
            if (table.uuid, ix.index_id) in self._indexes:
                self._index(table, ix, now)

    # -- reads -----------------------------------------------------------------------------

    def admit_read(
        self, table: TableDef, index: IndexDef | None, position: int, units: float
    ) -> ProvisionedThroughputExceededError | None:
        """Take the read's minimum cost ``units`` from the partition at ``position`` of the
        table (or of a GSI), or return the error to raise."""
        if index is not None and not index.local and index.throughput.read_units <= 0:
            return None  # a GSI without provisioned reads (not one DynamoDB accepts): unmetered
        now = self.clock()
        b = self._index(table, index, now) if index is not None and not index.local else self._table(table, now)
        if b.reads[partition_of(position, len(b.reads))].take(units, now):
            return None
        return b.error("Read", TABLE_MESSAGE)

    def settle_read(
        self, table: TableDef, index: IndexDef | None, position: int, units: float, table_units: float = 0.0
    ) -> None:
        """Charge what the read cost beyond what ``admit_read`` took (may leave a debt);
        ``table_units``: the table reads of an LSI Query fetching unprojected attributes."""
        now = self.clock()
        if index is not None and not index.local:
            if index.throughput.read_units <= 0:
                return
            b = self._index(table, index, now)
            b.reads[partition_of(position, len(b.reads))].charge(units, now)
            if table_units:
                t = self._table(table, now)
                t.reads[partition_of(position, len(t.reads))].charge(table_units, now)
            return
        b = self._table(table, now)
        if units or table_units:
            b.reads[partition_of(position, len(b.reads))].charge(units + table_units, now)

    # -- writes ----------------------------------------------------------------------------

    def admit_write(
        self, table: TableDef, position: int, units: float, item: Item | None
    ) -> ProvisionedThroughputExceededError | None:
        """Take ``units`` (the cost known before the write) from the item's partition, or return
        the error to raise. A provisioned GSI in debt on the partition the write would reach
        (every partition when ``item``, the new item, is unknown) throttles the base-table
        write: DynamoDB's back-pressure."""
        now = self.clock()
        b = self._table(table, now)
        bucket = b.writes[partition_of(position, len(b.writes))]
        if not bucket.admits(units, now):
            return b.error("Write", TABLE_MESSAGE)
        for ix in table.indexes:
            if ix.local or ix.throughput.write_units <= 0:
                continue
            g = self._index(table, ix, now)
            ipos = item_position(ix.key_schema, item) if item is not None else None
            if item is not None and ipos is None:
                continue  # the new item has no entry in this index
            targets = g.writes if ipos is None else [g.writes[partition_of(ipos, len(g.writes))]]
            if not all(t.admits(1.0, now) for t in targets):
                return g.error("Write", INDEX_MESSAGE)
        taken = bucket.take(units, now)
        assert taken
        return None

    def settle_write(
        self,
        table: TableDef,
        position: int,
        extra_units: float,
        glob: Mapping[str, float],
        old: Item | None,
        new: Item | None,
    ) -> None:
        """Charge the table's partition ``extra_units`` (the write's cost beyond what was taken,
        plus LSI maintenance) and each GSI the units its entries cost (``glob``)."""
        now = self.clock()
        if extra_units:
            b = self._table(table, now)
            b.writes[partition_of(position, len(b.writes))].charge(extra_units, now)
        for name, units in glob.items():
            ix = table.index(name)
            if ix is None or ix.local or ix.throughput.write_units <= 0:
                continue
            g = self._index(table, ix, now)
            src = new if new is not None and item_position(ix.key_schema, new) is not None else old
            ipos = item_position(ix.key_schema, src) if src is not None else None
            g.writes[partition_of(ipos or 0, len(g.writes))].charge(units, now)

    def refund_write(self, table: TableDef, position: int, units: float) -> None:
        """Give back what ``admit_write`` took for a request that then did not run (another
        action of its transaction was throttled)."""
        now = self.clock()
        b = self._table(table, now)
        b.writes[partition_of(position, len(b.writes))].charge(-units, now)

    def refund_read(self, table: TableDef, position: int, units: float) -> None:
        """Give back what ``admit_read`` took on the table for a read that did not run."""
        now = self.clock()
        b = self._table(table, now)
        b.reads[partition_of(position, len(b.reads))].charge(-units, now)


def enforced_by_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``QUORUMDB_ENFORCE_CAPACITY`` turns enforcement on for every provisioned table."""
    env = os.environ if environ is None else environ
    return env.get(ENFORCE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def from_env(db: DataPlane | None = None, environ: Mapping[str, str] | None = None) -> Throttle:
    """The server's throttle, configured by ``QUORUMDB_ENFORCE_CAPACITY`` (``--enforce-capacity``
    sets it), ``QUORUMDB_CAPACITY_TIME_SCALE`` (tests) and ``QUORUMDB_CAPACITY_SHARE``."""
    env = os.environ if environ is None else environ
    on = enforced_by_env(env)
    scale = float(env.get(TIME_SCALE_ENV) or 1.0)
    share = float(env.get(SHARE_ENV) or 1.0)
    if scale <= 0 or not 0 < share <= 1:
        raise ValueError(f"{TIME_SCALE_ENV} must be > 0 and {SHARE_ENV} in (0, 1]")
    return Throttle(on=on, clock=scaled_clock(scale), share=share, db=db)


# -- transactions: all actions admitted, or none ---------------------------------------------

# (throttle, table, position, units taken) of each metered action; None: not metered.
Taken = list[tuple[Throttle, TableDef, int, float] | None]


def _cancel(n: int, refused: int, err: ProvisionedThroughputExceededError) -> TransactionCanceledError:
    reasons: list[dict[str, Any]] = [{"Code": "None"} for _ in range(n)]
    reasons[refused] = {"Code": "ProvisionedThroughputExceeded", "Message": err.message}
    return TransactionCanceledError(reasons)


def admit_transact_writes(
    throttle: Throttle | None, actions: Sequence[tuple[TableDef, Key, Item | None]]
) -> Taken | None:
    """Take the up-front cost of every action of a TransactWriteItems (``(table, key, new item
    of a Put or None)``), transactional: double. If one is throttled, give back what the others
    took and raise TransactionCanceledException naming it (DynamoDB's reason code
    ProvisionedThroughputExceeded). None when no table of the transaction is metered."""
    if throttle is None or not (throttle.on or any(t.tags for t, _, _ in actions)):
        return None
    taken: Taken = []
    for i, (table, key, item) in enumerate(actions):
        cap = meter(throttle, table)
        if cap is None:
            taken.append(None)
            continue
        pos = item_position(table.key_schema, key)
        assert pos is not None
        units = capacity.write_units(0, item_size(item) if item is not None else 0, transactional=True)
        err = cap.admit_write(table, pos, units, item)
        if err is not None:
            for t in taken:
                if t is not None:
                    t[0].refund_write(t[1], t[2], t[3])
            raise _cancel(len(actions), i, err)
        taken.append((cap, table, pos, units))
    return taken


def settle_transact_writes(taken: Taken, results: Sequence[WriteResult]) -> None:
    """Charge each committed action the rest of its transactional cost (and its indexes')."""
    for t, res in zip(taken, results, strict=True):
        if t is None or res.replayed:
            continue
        cap, table, pos, pre = t
        units = capacity.write_units(res.old_size, res.new_size, transactional=True)
        local, glob = capacity.index_units(table, res.old, res.new, res.index_writes, transactional=True)
        cap.settle_write(table, pos, units - pre + sum(local.values()), glob, res.old, res.new)


def admit_transact_gets(throttle: Throttle | None, keys: Sequence[tuple[TableDef, Key]]) -> Taken | None:
    """As ``admit_transact_writes``, for the reads of a TransactGetItems."""
    if throttle is None or not (throttle.on or any(t.tags for t, _ in keys)):
        return None
    taken: Taken = []
    pre = capacity.read_units(0, consistent=True, transactional=True)
    for i, (table, key) in enumerate(keys):
        cap = meter(throttle, table)
        if cap is None:
            taken.append(None)
            continue
        pos = item_position(table.key_schema, key)
        assert pos is not None
        err = cap.admit_read(table, None, pos, pre)
        if err is not None:
            for t in taken:
                if t is not None:
                    t[0].refund_read(t[1], t[2], t[3])
            raise _cancel(len(keys), i, err)
        taken.append((cap, table, pos, pre))
    return taken


def settle_transact_gets(taken: Taken, found: Sequence[StoredItem | None]) -> None:
    for t, stored in zip(taken, found, strict=True):
        if t is not None and stored is not None:
            cap, table, pos, pre = t
            cap.settle_read(table, None, pos, capacity.read_units(stored.size, consistent=True, transactional=True) - pre)


def meter(throttle: Throttle | None, table: TableDef) -> Throttle | None:
    """``throttle`` when it meters requests on ``table``, else None. Handlers on hot paths test
    ``throttle is not None and (throttle.on or table.tags)`` inline before calling this."""
    if throttle is None or not (throttle.on or table.tags) or not throttle.applies(table):
        return None
    return throttle
