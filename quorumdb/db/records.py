"""The data plane's on-disk layout: key spaces, item records, counters. A stable format.

Key spaces (first byte):

- ``0x00`` system: ``catalog/version`` (u64), ``catalog/next_table_id`` (u64),
  ``catalog/table/<name>`` (a TableDef record, JSON), ``catalog/next_index/<tid>`` (u64),
  ``count/<tid><slot>`` (item count and bytes, two i64; slot 0 = table, index_id + 1 = index),
  ``gc/<data prefix>`` (data left to delete after DROP of a table or an index; the prefix may
  also be a system prefix such as ``coll/<tid>``),
  ``coll/<tid u32><enc(pk)>`` (an item collection's size in bytes, i64; only for tables with a
  local secondary index; absent when zero),
  ``txtoken/<ClientRequestToken>`` (a TransactWriteItems token record, JSON: request fingerprint,
  commit time, item sizes written; expires after the idempotency window),
  ``txtoken-at/<commit time in ms, u64><ClientRequestToken>`` (empty; the same records in time
  order, so expired ones are found without reading the others),
  ``bflease/<tid u32><index_id u16>`` (JSON {owner, at}: which data plane runs an index
  backfill; another may take over once ``at`` is older than the lease time),
  ``ttl/last_pass`` (JSON {owner, at}: the last periodic TTL pass claimed by any process),
  ``backup/<backup id>`` (a BackupDef record, JSON; ids start with the creation time, so the
  backups are listed in creation order),
  ``pitr/clock`` (two u64: the last undo timestamp in microseconds and the last undo sequence
  number; undo keys are strictly increasing across batches and processes),
  ``streams/<stream_id u32>`` (JSON: one DynamoDB stream: ARN, label, table, view type,
  creation and disabling time), ``streams-next-id`` (u64),
  ``streams-shard/<stream_id u32><partition u32><generation u32>`` (JSON: one shard: id,
  parent, sequence number range, open/close time, highest trimmed sequence number),
  ``streams-head/<tid u32><partition u32>`` (JSON: the change-capture state of one partition
  of a table: the last sequence number given out, kept for the table's life, and the open
  shard of its enabled stream, if any).
- ``0x01`` data: ``0x01 <tid u32> 0x00`` + ``partition_hash(pk) + enc(pk) [+ enc(sk)]`` = item;
  ``0x01 <tid u32> 0x01 <index_id u16>`` + ``partition_hash(ipk) + enc(ipk) [+ enc(isk)] +
  enc(pk) [+ enc(sk)]`` = index entry (the projected item).
- ``0x02`` stream records: ``0x02 <stream_id u32> <partition u32> <generation u32> <seq u64>``
  = one change record (JSON, see ``db.streams``), in sequence order per shard. Outside the
  table's data prefix: a stream stays readable for 24 hours after its table is deleted.
- ``0x03`` undo log of point-in-time recovery: ``0x03 <tid u32> <ts_us u64> <seq u64>`` = one
  change of an item of a table with PITR enabled, written in the same batch as the change: the
  format byte ``0x01``, the item's storage key length (u32 big-endian), that key, then the item's
  record before the change (nothing if it was absent).
- ``0x04`` backup data: ``0x04 <backup id> 0x2f`` + the item's storage key after its table
  prefix = the item's record as of the backup's snapshot.

Item and index-entry values are records: ``0x01`` (format), the DynamoDB item size as u32
little-endian, then the item as DynamoDB JSON, so ``raw`` can be spliced into a response as is.
Never change the meaning of a byte written here; add a new format byte or key space instead.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from quorumdb.model.size import item_size
from quorumdb.model.types import Item

__all__ = [
    "Record",
    "make_record",
    "record_size",
    "item_size",
    "CATALOG_VERSION",
    "NEXT_TABLE_ID",
    "TABLE_DEF_PREFIX",
    "table_def_key",
    "next_index_key",
    "counter_key",
    "gc_key",
    "GC_PREFIX",
    "table_data_prefix",
    "item_prefix",
    "index_prefix",
    "HEADER_SIZE",
    "collection_prefix",
    "TOKEN_PREFIX",
    "token_key",
    "TOKEN_AT_PREFIX",
    "backfill_lease_key",
    "TTL_LAST_PASS",
    "token_at_key",
    "pack_i64",
    "unpack_i64",
    "BACKUP_PREFIX",
    "backup_key",
    "backup_data_prefix",
    "UNDO_CLOCK",
    "undo_prefix",
    "undo_key",
    "pack_undo",
    "unpack_undo",
    "STREAM_PREFIX",
    "STREAM_NEXT_ID",
    "stream_key",
    "shard_key",
    "shard_prefix",
    "stream_head_key",
    "stream_record_key",
    "stream_records_prefix",
]

FORMAT_V1 = 0x01
HEADER_SIZE = 5
_HEADER = struct.Struct("<BI")
_SIZE_FROM = struct.Struct("<I").unpack_from  # the size field at offset 1
_COUNTER = struct.Struct(">qq")
_U64 = struct.Struct(">Q")

CATALOG_VERSION = b"\x00catalog/version"
NEXT_TABLE_ID = b"\x00catalog/next_table_id"
TABLE_DEF_PREFIX = b"\x00catalog/table/"
_NEXT_INDEX_PREFIX = b"\x00catalog/next_index/"
_COUNTER_PREFIX = b"\x00count/"
GC_PREFIX = b"\x00gc/"
_COLLECTION_PREFIX = b"\x00coll/"
TOKEN_PREFIX = b"\x00txtoken/"
TOKEN_AT_PREFIX = b"\x00txtoken-at/"
_BACKFILL_LEASE_PREFIX = b"\x00bflease/"
TTL_LAST_PASS = b"\x00ttl/last_pass"
BACKUP_PREFIX = b"\x00backup/"
UNDO_CLOCK = b"\x00pitr/clock"
_UNDO = b"\x03"
_BACKUP_DATA = b"\x04"
_UNDO_HEAD = struct.Struct(">BI")
_I64 = struct.Struct(">q")
STREAM_PREFIX = b"\x00streams/"
STREAM_NEXT_ID = b"\x00streams-next-id"
_SHARD_PREFIX = b"\x00streams-shard/"
_STREAM_HEAD_PREFIX = b"\x00streams-head/"
_STREAM_RECORDS = b"\x02"

_DATA = b"\x01"
_ITEMS = b"\x00"
_INDEX = b"\x01"


def table_def_key(name: str) -> bytes:
    return TABLE_DEF_PREFIX + name.encode("utf-8")


def next_index_key(table_id: int) -> bytes:
    return _NEXT_INDEX_PREFIX + table_id.to_bytes(4, "big")


def counter_key(table_id: int, index_id: int | None) -> bytes:
    slot = 0 if index_id is None else index_id + 1
    return _COUNTER_PREFIX + table_id.to_bytes(4, "big") + slot.to_bytes(2, "big")


def gc_key(data_prefix: bytes) -> bytes:
    return GC_PREFIX + data_prefix


def collection_prefix(table_id: int) -> bytes:
    """Every item-collection size counter of the table (append enc(pk) for one collection)."""
    return _COLLECTION_PREFIX + table_id.to_bytes(4, "big")


def token_key(token: str) -> bytes:
    return TOKEN_PREFIX + token.encode("utf-8")


def backfill_lease_key(table_id: int, index_id: int) -> bytes:
    return _BACKFILL_LEASE_PREFIX + table_id.to_bytes(4, "big") + index_id.to_bytes(2, "big")


def token_at_key(at: float, token: str) -> bytes:
    return TOKEN_AT_PREFIX + _U64.pack(max(0, int(at * 1000))) + token.encode("utf-8")


def backup_key(backup_id: str) -> bytes:
    return BACKUP_PREFIX + backup_id.encode("ascii")


def backup_data_prefix(backup_id: str) -> bytes:
    return _BACKUP_DATA + backup_id.encode("ascii") + b"/"


def undo_prefix(table_id: int) -> bytes:
    return _UNDO + table_id.to_bytes(4, "big")


def undo_key(table_id: int, ts_us: int, seq: int) -> bytes:
    return _UNDO + table_id.to_bytes(4, "big") + _U64.pack(ts_us) + _U64.pack(seq)


def pack_undo(item_key: bytes, old_rec: bytes | None) -> bytes:
    return _UNDO_HEAD.pack(FORMAT_V1, len(item_key)) + item_key + (old_rec or b"")


def unpack_undo(value: bytes) -> tuple[bytes, bytes | None]:
    """(item storage key, record before the change or None) of an undo record."""
    n = int(_UNDO_HEAD.unpack_from(value)[1])
    start = _UNDO_HEAD.size
    old = value[start + n :]
    return value[start : start + n], (old or None)
def stream_key(stream_id: int) -> bytes:
    return STREAM_PREFIX + stream_id.to_bytes(4, "big")


def shard_prefix(stream_id: int) -> bytes:
    """Every shard descriptor of one stream, in (partition, generation) order."""
    return _SHARD_PREFIX + stream_id.to_bytes(4, "big")


def shard_key(stream_id: int, partition: int, generation: int) -> bytes:
    return shard_prefix(stream_id) + partition.to_bytes(4, "big") + generation.to_bytes(4, "big")


def stream_head_key(table_id: int, partition: int) -> bytes:
    return _STREAM_HEAD_PREFIX + table_id.to_bytes(4, "big") + partition.to_bytes(4, "big")


def stream_records_prefix(stream_id: int, partition: int, generation: int) -> bytes:
    """Every record of one shard (append the sequence number as u64 for one record)."""
    return _STREAM_RECORDS + stream_id.to_bytes(4, "big") + partition.to_bytes(4, "big") + generation.to_bytes(4, "big")


def stream_record_key(stream_id: int, partition: int, generation: int, seq: int) -> bytes:
    return stream_records_prefix(stream_id, partition, generation) + _U64.pack(seq)


def pack_i64(n: int) -> bytes:
    return _I64.pack(n)


def unpack_i64(b: bytes | None) -> int:
    return 0 if b is None else int(_I64.unpack(b)[0])


def table_data_prefix(table_id: int) -> bytes:
    """Every byte key of the table: items and index entries."""
    return _DATA + table_id.to_bytes(4, "big")


def item_prefix(table_id: int) -> bytes:
    return _DATA + table_id.to_bytes(4, "big") + _ITEMS


def index_prefix(table_id: int, index_id: int) -> bytes:
    return _DATA + table_id.to_bytes(4, "big") + _INDEX + index_id.to_bytes(2, "big")


def pack_u64(n: int) -> bytes:
    return _U64.pack(n)


def unpack_u64(b: bytes | None) -> int:
    return 0 if b is None else int(_U64.unpack(b)[0])


def pack_counter(count: int, size: int) -> bytes:
    return _COUNTER.pack(count, size)


def unpack_counter(b: bytes | None) -> tuple[int, int]:
    if b is None:
        return 0, 0
    c, s = _COUNTER.unpack(b)
    return int(c), int(s)


def make_record(item: Item, size: int) -> bytes:
    return _HEADER.pack(FORMAT_V1, size) + orjson.dumps(item)


def record_size(rec: bytes) -> int:
    return int(_SIZE_FROM(rec, 1)[0])


def record_item(rec: bytes) -> Item:
    item: Item = orjson.loads(memoryview(rec)[HEADER_SIZE:])
    return item


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(b: bytes | memoryview) -> Any:
    return orjson.loads(b)


class Record:
    """A stored item (``contract.StoredItem``): size from the header, JSON decoded on demand."""

    __slots__ = ("_rec", "_item")

    def __init__(self, rec: bytes) -> None:
        self._rec = rec  # rec[0] == FORMAT_V1
        self._item: Item | None = None

    @property
    def size(self) -> int:
        return int(_SIZE_FROM(self._rec, 1)[0])

    @property
    def raw(self) -> bytes:
        return self._rec[HEADER_SIZE:]

    @property
    def record(self) -> bytes:
        """The whole stored record (header and JSON), to ship to another node."""
        return bytes(self._rec)

    @property
    def item(self) -> Item:
        item = self._item
        if item is None:
            item = self._item = orjson.loads(memoryview(self._rec)[HEADER_SIZE:])
        return item

    def __repr__(self) -> str:
        return f"Record(size={self.size}, raw={self.raw[:80]!r})"
