"""On-demand backup definitions: what the catalog stores of a backup and how it is named.

A backup is identified by ``backup_id`` = ``<creation time in ms, 14 digits>-<8 hex digits>``
(DynamoDB's form, e.g. ``01576616366715-b4e58d3a``); its ARN is the source table's ARN plus
``/backup/<backup_id>``. ``table`` is the source table's definition as of the snapshot the
backup copied, so a restore needs nothing else (the source table may be gone by then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from quorumdb.model.schema import TableDef, arn_for

__all__ = ["BackupDef", "backup_arn", "backup_id_of", "make_backup_id", "CREATING", "AVAILABLE", "DELETED"]

CREATING = "CREATING"
AVAILABLE = "AVAILABLE"
DELETED = "DELETED"

_BACKUP_ARN = re.compile(r"arn:aws:dynamodb:[^:]*:[^:]*:table/([^/]+)/backup/(\d{14}-[0-9a-f]{8})")


def make_backup_id(created_at: float, suffix: str) -> str:
    assert len(suffix) == 8
    return f"{int(created_at * 1000):014d}-{suffix}"


def backup_arn(table_name: str, backup_id: str) -> str:
    return f"{arn_for(table_name)}/backup/{backup_id}"


def backup_id_of(arn: str) -> tuple[str, str] | None:
    """(table name, backup id) of a backup ARN; None if ``arn`` is not one."""
    m = _BACKUP_ARN.fullmatch(arn)
    return None if m is None else (m.group(1), m.group(2))


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupDef:
    backup_id: str
    name: str
    table: TableDef  # the source table as of the backup's snapshot
    created_at: float
    status: str = CREATING  # CREATING | AVAILABLE (DELETED is only ever reported)
    size_bytes: int = 0
    item_count: int = 0
    owner: str = ""  # the data plane copying it while CREATING

    @property
    def arn(self) -> str:
        return backup_arn(self.table.name, self.backup_id)

    def to_record(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "name": self.name,
            "table": self.table.to_record(),
            "created_at": self.created_at,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "item_count": self.item_count,
            "owner": self.owner,
        }

    @staticmethod
    def from_record(rec: dict[str, Any]) -> BackupDef:
        return BackupDef(
            backup_id=rec["backup_id"],
            name=rec["name"],
            table=TableDef.from_record(rec["table"]),
            created_at=rec["created_at"],
            status=rec["status"],
            size_bytes=rec["size_bytes"],
            item_count=rec["item_count"],
            owner=rec.get("owner", ""),
        )
