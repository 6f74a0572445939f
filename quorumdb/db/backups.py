"""Group-commit jobs of on-demand backups, restores and point-in-time recovery settings.

A backup copies the items of ONE snapshot (taken by the data plane, which holds it open while
it feeds the copy) into the backup's own key range, a chunk per job, so a big table never
stalls the writers; the backup record says CREATING until the last chunk is in, then
AVAILABLE. A restore creates the target table (CREATING, with its ``RestoreInfo``), writes the
items chunk by chunk through ``writer.apply_write`` (so index entries, counters and item
collection sizes are maintained as for any write), then marks it ACTIVE.

Like everything run by the committer: no asyncio, no commit; each job re-reads the stored state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from quorumdb.db.contract import Mutator, WriteOp
from quorumdb.db.records import (
    HEADER_SIZE,
    backup_data_prefix,
    backup_key,
    dumps,
    gc_key,
    item_prefix,
    loads,
    undo_prefix,
)
from quorumdb.db.undo import to_us, undo_bound
from quorumdb.db.writer import (
    RESOURCE_NOT_FOUND,
    WriteBatch,
    _put_table,
    apply_write,
    create_table,
)
from quorumdb.errors import BackupInUseError, BackupNotFoundError, ResourceNotFoundError
from quorumdb.model.backups import AVAILABLE, CREATING, BackupDef
from quorumdb.model.schema import PITR_DAYS, TableDef
from quorumdb.model.types import Item
from quorumdb.storage.engine import ReadTxn, prefix_successor

__all__ = [
    "BACKUP_CHUNK",
    "read_backup",
    "begin_backup",
    "backup_chunk",
    "finish_backup",
    "delete_backup",
    "begin_restore",
    "restore_chunk",
    "finish_restore",
    "set_pitr",
    "purge_undo",
    "backup_not_found",
    "undo_cutoff_us",
    "PITR_UNAVAILABLE",
    "INVALID_RESTORE_TIME",
]

BACKUP_CHUNK = 512
PITR_UNAVAILABLE = "Point in time recovery is not enabled for table '{}'"
INVALID_RESTORE_TIME = "Only RestoreDateTime between EarliestRestorableDateTime and LatestRestorableDateTime can be specified"
UNDO_PURGE_CHUNK = 1024


def backup_not_found(arn: str) -> BackupNotFoundError:
    return BackupNotFoundError(f"Backup not found: {arn}")


def read_backup(txn: ReadTxn, backup_id: str) -> BackupDef | None:
    raw = txn.get(backup_key(backup_id))
    return None if raw is None else BackupDef.from_record(loads(raw))


def _put_backup(batch: WriteBatch, b: BackupDef) -> None:
    batch.txn.put(backup_key(b.backup_id), dumps(b.to_record()))


def begin_backup(batch: WriteBatch, backup: BackupDef) -> BackupDef:
    assert backup.status == CREATING
    _put_backup(batch, backup)
    return backup


def backup_chunk(batch: WriteBatch, backup_id: str, chunk: Sequence[tuple[bytes, bytes]]) -> None:
    """Store (item storage key, record) pairs read from the backup's snapshot."""
    b = read_backup(batch.txn, backup_id)
    if b is None:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    skip = len(item_prefix(b.table.table_id))
    data = backup_data_prefix(backup_id)
    txn = batch.txn
    for k, rec in chunk:
        txn.put(data + k[skip:], rec)


def finish_backup(batch: WriteBatch, backup_id: str, item_count: int, size_bytes: int) -> BackupDef:
    b = read_backup(batch.txn, backup_id)
    if b is None:
        raise ResourceNotFoundError(RESOURCE_NOT_FOUND)
    done = dataclasses.replace(b, status=AVAILABLE, item_count=item_count, size_bytes=size_bytes, owner="")
    _put_backup(batch, done)
    return done


def delete_backup(batch: WriteBatch, backup_id: str, arn: str, *, creating_ok: bool = False) -> BackupDef:
    """Remove the record; its data is deleted in the background (``gc_key``). A backup still
    being copied is in use (unless ``creating_ok``: its copier died), as is one a restore reads."""
    b = read_backup(batch.txn, backup_id)
    if b is None or b.arn != arn:
        raise backup_not_found(arn)
    if b.status == CREATING and not creating_ok:
        raise BackupInUseError(f"Backup is being created: {arn}")
    if any(t.restore is not None and t.restore.in_progress and t.restore.source_backup_arn == arn
           for t in batch.catalog.by_name.values()):
        raise BackupInUseError(f"Backup is being used to restore a table: {arn}")
    batch.txn.delete(backup_key(backup_id))
    batch.txn.put(gc_key(backup_data_prefix(backup_id)), b"")
    return b


# -- restores --------------------------------------------------------------------------------


def begin_restore(batch: WriteBatch, target: TableDef, backup_arn: str | None = None) -> TableDef:
    """Create the target table (status CREATING, ``target.restore`` set). With ``backup_arn``,
    the backup must still be AVAILABLE (checked in the same transaction)."""
    if backup_arn is not None:
        b = read_backup(batch.txn, backup_arn.rsplit("/", 1)[1])
        if b is None or b.arn != backup_arn:
            raise backup_not_found(backup_arn)
        if b.status != AVAILABLE:
            raise BackupInUseError(f"Backup is being created: {backup_arn}")
    return create_table(batch, target)


def _put_item(item: Item) -> Mutator:
    return lambda _old: item


def restore_chunk(batch: WriteBatch, target: TableDef, records: Sequence[bytes]) -> None:
    """Write items (records) into the table being restored, with their index entries."""
    t = batch.current_table(target)
    st = batch.stage()
    for rec in records:
        item: Item = loads(memoryview(rec)[HEADER_SIZE:])
        apply_write(batch, st, WriteOp(table=t, key=t.key_schema.key_of(item), mutate=_put_item(item)))
    st.flush()


def finish_restore(batch: WriteBatch, target: TableDef) -> TableDef:
    t = batch.current_table(target)
    assert t.restore is not None
    done = dataclasses.replace(
        t, status="ACTIVE", restore=dataclasses.replace(t.restore, in_progress=False, owner=""), version=t.version + 1
    )
    _put_table(batch, done)
    return done


# -- point-in-time recovery ------------------------------------------------------------------


def set_pitr(batch: WriteBatch, table: TableDef, enabled: bool, days: int | None) -> TableDef:
    """Enable (from now on; keeping the start if already enabled) or disable PITR. The undo
    records a disabled table no longer needs are deleted by ``purge_undo``."""
    t = batch.current_table(table)
    if enabled:
        since = t.pitr_since if t.pitr_since is not None else batch.state.clock()
        new = dataclasses.replace(t, pitr_since=since, pitr_days=days or t.pitr_days, version=t.version + 1)
    else:
        new = dataclasses.replace(t, pitr_since=None, pitr_days=PITR_DAYS, version=t.version + 1)
    if new != dataclasses.replace(t, version=t.version + 1):
        _put_table(batch, new)
        return new
    return t


def undo_cutoff_us(t: TableDef, now: float) -> int | None:
    """Undo records of ``t`` older than this (µs) are no longer needed; None: none are."""
    if t.pitr_since is None:
        return None
    return to_us(max(t.pitr_since, now - t.pitr_days * 86400.0))


def purge_undo(batch: WriteBatch, table_id: int, limit: int = UNDO_PURGE_CHUNK) -> int:
    """Delete up to ``limit`` undo records of the table that are outside its recovery window
    (all of them while PITR is disabled); returns how many."""
    t = batch.catalog.by_id.get(table_id)
    if t is None:
        return 0  # dropped: delete_table scheduled its whole undo range for deletion
    cutoff = undo_cutoff_us(t, batch.state.clock())
    prefix = undo_prefix(table_id)
    hi = prefix_successor(prefix) if cutoff is None else undo_bound(table_id, cutoff)
    keys = []
    for k, _v in batch.txn.iterate(prefix, hi):
        keys.append(k)
        if len(keys) >= limit:
            break
    for k in keys:
        batch.txn.delete(k)
    return len(keys)

