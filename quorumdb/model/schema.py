"""Table and index definitions: what the catalog stores and every layer reads.

Definitions are immutable values; a change (UpdateTable, an index finishing its backfill) makes
a new value with ``dataclasses.replace`` and a higher ``version``. They serialize to plain dicts
(``to_record``/``from_record``) with stable field names, since they are stored on disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from quorumdb.model.types import Item, Key, ScalarType

__all__ = ["KeyAttr", "KeySchema", "Throughput", "IndexDef", "TableDef", "RestoreInfo", "arn_for", "PITR_DAYS"]

REGION = "us-east-1"
ACCOUNT = "000000000000"


def arn_for(table_name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyAttr:
    name: str
    type: ScalarType


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySchema:
    """A table's or index's primary key: a partition (HASH) key and an optional sort (RANGE) key."""

    hash: KeyAttr
    range: KeyAttr | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)

    def key_of(self, item: Item) -> Key:
        """The key attributes of ``item`` (which must have them)."""
        if self.range is None:
            return {self.hash.name: item[self.hash.name]}
        return {self.hash.name: item[self.hash.name], self.range.name: item[self.range.name]}

    def to_wire(self) -> list[dict[str, str]]:
        out = [{"AttributeName": self.hash.name, "KeyType": "HASH"}]
        if self.range is not None:
            out.append({"AttributeName": self.range.name, "KeyType": "RANGE"})
        return out

    def to_record(self) -> dict[str, Any]:
        return {
            "hash": [self.hash.name, self.hash.type],
            "range": None if self.range is None else [self.range.name, self.range.type],
        }

    @staticmethod
    def from_record(rec: dict[str, Any]) -> KeySchema:
        h = rec["hash"]
        r = rec["range"]
        return KeySchema(
            hash=KeyAttr(name=h[0], type=h[1]),
            range=None if r is None else KeyAttr(name=r[0], type=r[1]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Throughput:
    """Provisioned capacity (units per second); zeros under PAY_PER_REQUEST."""

    read_units: int = 0
    write_units: int = 0
    last_increase: float | None = None
    last_decrease: float | None = None
    decreases_today: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "NumberOfDecreasesToday": self.decreases_today,
            "ReadCapacityUnits": self.read_units,
            "WriteCapacityUnits": self.write_units,
        }
        if self.last_increase is not None:
            out["LastIncreaseDateTime"] = self.last_increase
        if self.last_decrease is not None:
            out["LastDecreaseDateTime"] = self.last_decrease
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexDef:
    """A local or global secondary index.

    ``index_id`` is a small integer unique within the table, used in storage keys.
    ``projection`` is ``"ALL"``, ``"KEYS_ONLY"`` or ``"INCLUDE"`` (with ``non_key_attributes``).
    """

    name: str
    index_id: int
    local: bool
    key_schema: KeySchema
    projection: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()
    status: str = "ACTIVE"  # CREATING | UPDATING | DELETING | ACTIVE
    backfilling: bool = False
    throughput: Throughput = field(default_factory=Throughput)

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index_id": self.index_id,
            "local": self.local,
            "key_schema": self.key_schema.to_record(),
            "projection": self.projection,
            "non_key_attributes": list(self.non_key_attributes),
            "status": self.status,
            "backfilling": self.backfilling,
            "throughput": dataclasses.asdict(self.throughput),
        }

    @staticmethod
    def from_record(rec: dict[str, Any]) -> IndexDef:
        return IndexDef(
            name=rec["name"],
            index_id=rec["index_id"],
            local=rec["local"],
            key_schema=KeySchema.from_record(rec["key_schema"]),
            projection=rec["projection"],
            non_key_attributes=tuple(rec["non_key_attributes"]),
            status=rec["status"],
            backfilling=rec["backfilling"],
            throughput=Throughput(**rec["throughput"]),
        )


PITR_DAYS = 35  # DynamoDB's default (and longest) point-in-time recovery period


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreInfo:
    """Where a restored table came from (DescribeTable's RestoreSummary). ``owner`` names the
    data plane that fills it while ``in_progress`` (the table is CREATING until then)."""

    source_table_arn: str
    restore_time: float
    source_backup_arn: str | None = None
    in_progress: bool = False
    owner: str = ""

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_record(rec: dict[str, Any]) -> RestoreInfo:
        return RestoreInfo(**rec)


@dataclass(frozen=True, slots=True, kw_only=True)
class TableDef:
    """Everything the catalog knows of one table.

    ``table_id`` is a small integer assigned at creation and never reused while the engine
    holds data; storage keys start with it. ``uuid`` is the TableId shown to clients.
    """

    name: str
    table_id: int
    uuid: str
    key_schema: KeySchema
    attribute_definitions: dict[str, ScalarType]
    created_at: float
    billing_mode: str = "PROVISIONED"  # PROVISIONED | PAY_PER_REQUEST
    throughput: Throughput = field(default_factory=Throughput)
    indexes: tuple[IndexDef, ...] = ()
    status: str = "ACTIVE"  # CREATING | UPDATING | DELETING | ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    ttl_attribute: str | None = None
    ttl_enabled: bool = False
    deletion_protection: bool = False
    table_class: str = "STANDARD"
    stream_spec: dict[str, Any] | None = None  # the StreamSpecification while a stream is enabled
    stream_label: str | None = None  # the label of the latest stream (set by the data plane)
    # SSEDescription as DescribeTable reports it; None for the default (AWS owned key).
    sse: dict[str, str] | None = None
    version: int = 0
    # Point-in-time recovery: when it was (last) enabled, None while disabled.
    pitr_since: float | None = None
    pitr_days: int = PITR_DAYS
    restore: RestoreInfo | None = None

    @property
    def arn(self) -> str:
        return arn_for(self.name)

    @property
    def stream_arn(self) -> str | None:
        """The ARN of the table's latest stream (enabled or not), as DynamoDB forms it."""
        return None if self.stream_label is None else f"{self.arn}/stream/{self.stream_label}"

    def index(self, name: str) -> IndexDef | None:
        for ix in self.indexes:
            if ix.name == name:
                return ix
        return None

    @property
    def local_indexes(self) -> tuple[IndexDef, ...]:
        return tuple(ix for ix in self.indexes if ix.local)

    @property
    def global_indexes(self) -> tuple[IndexDef, ...]:
        return tuple(ix for ix in self.indexes if not ix.local)

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table_id": self.table_id,
            "uuid": self.uuid,
            "key_schema": self.key_schema.to_record(),
            "attribute_definitions": dict(self.attribute_definitions),
            "created_at": self.created_at,
            "billing_mode": self.billing_mode,
            "throughput": dataclasses.asdict(self.throughput),
            "indexes": [ix.to_record() for ix in self.indexes],
            "status": self.status,
            "tags": dict(self.tags),
            "ttl_attribute": self.ttl_attribute,
            "ttl_enabled": self.ttl_enabled,
            "deletion_protection": self.deletion_protection,
            "table_class": self.table_class,
            "stream_spec": self.stream_spec,
            "stream_label": self.stream_label,
            "sse": self.sse,
            "version": self.version,
            "pitr_since": self.pitr_since,
            "pitr_days": self.pitr_days,
            "restore": None if self.restore is None else self.restore.to_record(),
        }

    @staticmethod
    def from_record(rec: dict[str, Any]) -> TableDef:
        return TableDef(
            name=rec["name"],
            table_id=rec["table_id"],
            uuid=rec["uuid"],
            key_schema=KeySchema.from_record(rec["key_schema"]),
            attribute_definitions=dict(rec["attribute_definitions"]),
            created_at=rec["created_at"],
            billing_mode=rec["billing_mode"],
            throughput=Throughput(**rec["throughput"]),
            indexes=tuple(IndexDef.from_record(ix) for ix in rec["indexes"]),
            status=rec["status"],
            tags=dict(rec["tags"]),
            ttl_attribute=rec["ttl_attribute"],
            ttl_enabled=rec["ttl_enabled"],
            deletion_protection=rec.get("deletion_protection", False),
            table_class=rec.get("table_class", "STANDARD"),
            stream_spec=rec.get("stream_spec"),
            stream_label=rec.get("stream_label"),
            sse=rec.get("sse"),
            version=rec["version"],
            pitr_since=rec.get("pitr_since"),
            pitr_days=rec.get("pitr_days", PITR_DAYS),
            restore=None if rec.get("restore") is None else RestoreInfo.from_record(rec["restore"]),
        )
