"""The seam between the API handlers and everything below them.

Handlers (``quorumdb.api``) validate a request completely, build pure functions, and call a
``DataPlane``. The data plane routes table + partition key to a partition, and the partition
to its replica group and storage engine. On a single node a partition is a key range of the
local engine; in the cluster the same calls go through replication. Handlers never touch an
engine directly, so replication slots in below them without rewriting them.

Rules every implementation keeps:

- ``write``/``write_many``/``transact_write`` resolve only after the change is durable (an
  acknowledged write survives kill -9). Concurrent writes may be group-committed.
- A mutation is a pure ``Mutator``: ``mutate(old) -> new`` where ``old``/``new`` are the stored
  item or ``None`` (absent / delete). It may raise (e.g. ``ConditionalCheckFailedError``,
  ``ValidationError``); then nothing of that write is applied. It may be called more than once
  (a retry under replication) and must not have side effects.
- Index entries (LSI/GSI) change atomically with their item on a single node.
- Reads come from a consistent snapshot; no read observes part of a ``transact_write``.
- Items are in wire shape (``quorumdb.model.types``) and already validated.
- ``update_table`` is a compare-and-swap on the definition's ``version`` (across processes
  too): a change computed from a definition that another change replaced meanwhile is refused
  with ``TableChangedError``, never applied over it; the caller re-reads and recomputes.
- ``table``/``table_names`` see every catalog change acknowledged before they are called.
- A table with an enabled stream gets one change record per write that changes an item, in
  the same atomic commit as the item, numbered in commit order (``ChangeRecord``); a write
  that leaves the item as it was records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from quorumdb.errors import ResourceInUseError
from quorumdb.model.backups import BackupDef
from quorumdb.model.schema import IndexDef, KeySchema, TableDef
from quorumdb.model.types import AttributeValue, Item, Key, SortKeyRange

__all__ = [
    "Mutator",
    "TableChangedError",
    "WriteOp",
    "WriteResult",
    "StoredItem",
    "SortKeyRange",
    "DataPlane",
    "ShardInfo",
    "StreamInfo",
    "ChangeRecord",
    "Forward",
]

Mutator = Callable[[Item | None], Item | None]


class TableChangedError(ResourceInUseError):
    """``update_table`` got a definition older than the stored one: re-read and recompute.
    (Should it ever reach a client, it is DynamoDB's "resource in use".)"""

    def __init__(self, name: str) -> None:
        super().__init__(f"Attempt to change a resource which is still in use: Table {name} is being updated")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteOp:
    """One item mutation: ``mutate`` sees the current item under ``key`` (or None)."""

    table: TableDef
    key: Key
    mutate: Mutator
    ttl_expiry: bool = False  # a deletion by the TTL expirer (its stream record says so)
    # True when ``mutate`` ignores the old item (BatchWriteItem's puts and deletes): its value
    # ``mutate(None)`` can then be computed by the router and shipped to a remote partition.
    constant: bool = False
    # A msgpack-able description of ``mutate`` (``quorumdb.db.recipes``): a router can ship a
    # conditional write to a remote partition leader, which rebuilds the mutation from it.
    recipe: tuple[str, Any] | None = None
    # The TransactWriteItems action this op is (Put, Update, Delete, ConditionCheck), set by the
    # transaction handlers: a cluster transaction locks a ConditionCheck's item but never writes it.
    action: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    old: Item | None
    new: Item | None
    old_size: int  # DynamoDB item size in bytes (0 if absent)
    new_size: int
    # Sizes of index entries written/removed per index name, for ConsumedCapacity INDEXES.
    index_writes: dict[str, int] | None = None
    # Tables with a local secondary index: the size in bytes of the item's collection (items
    # sharing its partition key, plus their LSI entries) after the write (after the whole
    # transaction in ``transact_write``). None for tables without an LSI.
    collection_size: int | None = None
    # ``transact_write`` with a token already committed: nothing was written; ``new_size`` is
    # the size the first run wrote, ``old``/``new`` are None.
    replayed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardInfo:
    """One shard of a stream: the changes of one partition of the table during one generation
    (a shard closes when it rolls over or the partition splits; its children continue it)."""

    shard_id: str
    partition: int
    generation: int
    parent_shard_id: str | None
    start_seq: int
    end_seq: int | None  # None while the shard is open
    last_seq: int  # the highest sequence number given out in this shard so far (start - 1 if none)
    trimmed_seq: int  # every record up to this sequence number was trimmed (0: none)
    opened_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    stream_id: int
    arn: str
    label: str
    table_name: str
    view_type: str  # KEYS_ONLY | NEW_IMAGE | OLD_IMAGE | NEW_AND_OLD_IMAGES
    created_at: float
    disabled_at: float | None  # None while the stream is enabled
    key_schema: KeySchema
    shards: tuple[ShardInfo, ...]  # parents before their children

    def shard(self, shard_id: str) -> ShardInfo | None:
        for s in self.shards:
            if s.shard_id == shard_id:
                return s
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRecord:
    """One stream record. ``new``/``old`` are present as the stream's view type asks."""

    seq: int
    event: str  # INSERT | MODIFY | REMOVE
    created_at: float
    keys: Item
    new: Item | None
    old: Item | None
    size: int  # bytes of keys and images
    ttl_expiry: bool
class Forward(Exception):
    """Raised by a data plane when this request must be served by another node (the leader of
    the partition it writes), before anything was written. The API layer passes the whole
    request on to ``node_id`` and answers with that node's answer."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"forward to {node_id}")
        self.node_id = node_id


class StoredItem(Protocol):
    """An item as read from storage: decoded lazily, size known without decoding."""

    @property
    def size(self) -> int: ...

    @property
    def item(self) -> Item: ...

    @property
    def raw(self) -> bytes:
        """The item serialized as DynamoDB JSON (``{"a":{"S":"x"}}``), ready to splice into a response."""
        ...


class DataPlane(Protocol):
    # -- catalog ---------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        """The table's current definition; ResourceNotFoundError if there is none."""
        ...

    def table_names(self) -> list[str]:
        """All table names, sorted."""
        ...

    async def create_table(self, table: TableDef) -> TableDef:
        """Store a new definition (the table_id is assigned here); ResourceInUseError if the name exists."""
        ...

    async def update_table(self, table: TableDef) -> TableDef:
        """Replace a definition (bumps ``version``); starts GSI backfills for new CREATING
        indexes. TableChangedError if the stored version is no longer ``table.version``."""
        ...

    async def delete_table(self, name: str) -> TableDef:
        """Remove the definition and all of the table's items and index entries."""
        ...

    def table_stats(self, table: TableDef) -> tuple[int, int]:
        """(ItemCount, TableSizeBytes), maintained on write."""
        ...

    async def settle_stats(self, table: TableDef) -> None:
        """Make ``table_stats``/``index_stats`` of ``table`` count every write acknowledged
        before the call (a data plane whose counters may lag refreshes them)."""
        ...

    def index_stats(self, table: TableDef, index: IndexDef) -> tuple[int, int]:
        """(ItemCount, IndexSizeBytes) of one index."""
        ...

    # -- items -----------------------------------------------------------------------------
    async def get(self, table: TableDef, key: Key, *, consistent: bool = False) -> StoredItem | None:
        """One item. ``consistent`` asks for a strongly consistent read (in the cluster: the
        partition leader under its lease); otherwise any replica may answer, possibly stale."""
        ...

    async def write(self, op: WriteOp) -> WriteResult:
        """Apply one mutation durably. Raises what ``op.mutate`` raised, applying nothing."""
        ...

    async def write_many(self, ops: Sequence[WriteOp]) -> list[WriteResult | BaseException]:
        """Independent mutations (BatchWriteItem): each applies or fails on its own."""
        ...

    async def transact_write(
        self, ops: Sequence[WriteOp], *, token: str | None = None, fingerprint: bytes = b""
    ) -> list[WriteResult]:
        """All or nothing. If any mutate raises, none applies and TransactionCanceledError is
        raised with one reason per op in order (ConditionalCheckFailed carries Item if set).

        ``token`` (a ClientRequestToken) makes it idempotent: the token, ``fingerprint`` (of the
        request's parameters) and the outcome are stored with the items in the same atomic
        commit and kept for the idempotency window (10 minutes). If the token was committed
        within the window, nothing is applied and the results have ``replayed=True``; if it was
        committed with another fingerprint, IdempotentParameterMismatchError. A cancelled
        transaction records nothing."""
        ...

    async def transact_get(self, keys: Sequence[tuple[TableDef, Key]]) -> list[StoredItem | None]:
        """Several items from one snapshot (serializable with transact_write)."""
        ...

    async def query(
        self,
        table: TableDef,
        index: IndexDef | None,
        hash_value: AttributeValue | tuple[AttributeValue, ...],
        sort: SortKeyRange | None,
        *,
        forward: bool = True,
        exclusive_start: Key | None = None,
        consistent: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredItem]:
        """Items of one partition-key value (a tuple of values, one per attribute, for a
        multi-attribute index key) in sort-key order (reverse if not forward), after
        ``exclusive_start`` (a table key, plus the index key when ``index`` is given). For an
        index, the stored item is the projected index entry.

        Resolves (after any remote or lease read) to an iterator over one page's worth: it
        yields at least every item the caller's page rule can consume, that is up to ``limit``
        items (all if None) and until their sizes add up to ``PAGE_BYTES_MAX`` (1 MB) or more,
        whichever comes first; it may yield more (a local store iterates lazily). The handler
        stops the iteration at Limit / 1 MB."""
        ...

    async def scan(
        self,
        table: TableDef,
        index: IndexDef | None,
        *,
        segment: int = 0,
        total_segments: int = 1,
        exclusive_start: Key | None = None,
        consistent: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredItem]:
        """Items of the table (or index) in storage order — partition-key hash order, so a
        segment is a contiguous range of the hash space. Paging as in ``query``."""
        ...

    # -- backups and point-in-time recovery -------------------------------------------------
    def backups(self) -> list[BackupDef]:
        """Every on-demand backup, oldest first (also those of deleted tables)."""
        ...

    def backup(self, backup_arn: str) -> BackupDef | None: ...

    async def create_backup(self, table: TableDef, name: str) -> BackupDef:
        """Copy the table's items as of one instant (one snapshot); returns the AVAILABLE backup."""
        ...

    async def delete_backup(self, backup_arn: str) -> BackupDef:
        """BackupNotFoundError / BackupInUseError (being created, or read by a restore)."""
        ...

    async def restore_backup(self, backup_arn: str, target: TableDef) -> TableDef:
        """Create ``target`` (its ``restore`` set) holding the backup's items and index entries;
        ResourceInUseError if the name exists. Returns it ACTIVE."""
        ...

    async def restore_to_time(self, source: TableDef, at: float, target: TableDef) -> TableDef:
        """Create ``target`` holding exactly the items ``source`` had at time ``at`` (within its
        point-in-time recovery window), whatever writes go on meanwhile."""
        ...

    async def set_point_in_time_recovery(
        self, table: TableDef, enabled: bool, days: int | None = None
    ) -> TableDef:
        """Enable (recording every change from now on) or disable point-in-time recovery."""
        ...

    # -- streams ---------------------------------------------------------------------------
    async def streams(self, arn: str | None = None) -> list[StreamInfo]:
        """Every stream still readable (enabled, or disabled less than 24 hours ago), oldest
        first; only the one with ``arn`` (if any) when given."""
        ...

    async def stream_records(
        self, stream: StreamInfo, shard: ShardInfo, after_seq: int, *, limit: int, size_max_bytes: int
    ) -> list[ChangeRecord]:
        """The records of ``shard`` with a sequence number above ``after_seq``, in order: at
        most ``limit``, and stopping after the record that reaches ``size_max_bytes``."""
        ...

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start background work: the TTL expirer, index backfills, group commit."""
        ...

    async def close(self) -> None:
        """Finish pending writes and close storage cleanly."""
        ...

