"""Table and index definitions: what the catalog stores and every layer reads.

Definitions are immutable values; a change (UpdateTable, an index finishing its backfill) makes
a new value with ``dataclasses.replace`` and a higher ``version``. They serialize to plain dicts
(``to_record``/``from_record``) with stable field names, since they are stored on disk.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from quorumdb.model.types import Item, Key, ScalarType

__all__ = ["KeyAttr", "KeySchema", "Throughput", "IndexDef", "TableDef", "RestoreInfo", "arn_for", "PITR_DAYS", "MAX_KEY_ATTRIBUTES", "GONE", "TABLE_ARN_RE", "TABLE_ARN_MAX", "table_name_of"]

REGION = "us-east-1"
ACCOUNT = "000000000000"
# Partition-key (and, separately, sort-key) attributes of a multi-attribute GSI key.
MAX_KEY_ATTRIBUTES = 4
# ``TableDef.status_at`` of a DELETING table past its deadline: as good as gone.
GONE = "GONE"


def arn_for(table_name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"


# A table ARN, of any partition, region and account, as DynamoDB takes it in place of a
# TableName (at most 1024 characters).
TABLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/([a-zA-Z0-9_.-]{3,255})")
TABLE_ARN_MAX = 1024


def table_name_of(name_or_arn: str) -> str:
    """The table name a TableName parameter means: itself, or the name inside a table ARN."""
    if name_or_arn.startswith("arn:") and len(name_or_arn) <= TABLE_ARN_MAX:
        m = TABLE_ARN_RE.fullmatch(name_or_arn)
        if m is not None:
            return m.group(1)
    return name_or_arn


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyAttr:
    name: str
    type: ScalarType


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySchema:
    """A table's or index's primary key: a partition (HASH) key and an optional sort (RANGE) key.

    A global secondary index may have multi-attribute keys: up to ``MAX_KEY_ATTRIBUTES``
    partition-key attributes and as many sort-key attributes, in order. ``hash`` and ``range``
    are the first of each; ``extra_hash`` and ``extra_range`` the ones after it (empty for every
    table and local index).
    """

    hash: KeyAttr
    range: KeyAttr | None = None
    extra_hash: tuple[KeyAttr, ...] = ()
    extra_range: tuple[KeyAttr, ...] = ()

    def __post_init__(self) -> None:
        assert not self.extra_range or self.range is not None
        assert len(self.extra_hash) < MAX_KEY_ATTRIBUTES and len(self.extra_range) < MAX_KEY_ATTRIBUTES

    @property
    def hash_attrs(self) -> tuple[KeyAttr, ...]:
        return (self.hash, *self.extra_hash)

    @property
    def range_attrs(self) -> tuple[KeyAttr, ...]:
        return () if self.range is None else (self.range, *self.extra_range)

    @property
    def attrs(self) -> tuple[KeyAttr, ...]:
        return self.hash_attrs + self.range_attrs

    @property
    def multi_attribute(self) -> bool:
        return bool(self.extra_hash or self.extra_range)

    @property
    def names(self) -> tuple[str, ...]:
        if self.extra_hash or self.extra_range:
            return tuple(a.name for a in self.attrs)
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)

    def key_of(self, item: Item) -> Key:
        """The key attributes of ``item`` (which must have them)."""
        if self.extra_hash or self.extra_range:
            return {a.name: item[a.name] for a in self.attrs}
        if self.range is None:
            return {self.hash.name: item[self.hash.name]}
        return {self.hash.name: item[self.hash.name], self.range.name: item[self.range.name]}

    def to_wire(self) -> list[dict[str, str]]:
        out = [{"AttributeName": a.name, "KeyType": "HASH"} for a in self.hash_attrs]
        out.extend({"AttributeName": a.name, "KeyType": "RANGE"} for a in self.range_attrs)
        return out

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hash": [self.hash.name, self.hash.type],
            "range": None if self.range is None else [self.range.name, self.range.type],
        }
        # Only multi-attribute keys carry these, so older records read unchanged.
        if self.extra_hash:
            out["extra_hash"] = [[a.name, a.type] for a in self.extra_hash]
        if self.extra_range:
            out["extra_range"] = [[a.name, a.type] for a in self.extra_range]
        return out

    @staticmethod
    def from_record(rec: dict[str, Any]) -> KeySchema:
        h = rec["hash"]
        r = rec["range"]
        return KeySchema(
            hash=KeyAttr(name=h[0], type=h[1]),
            range=None if r is None else KeyAttr(name=r[0], type=r[1]),
            extra_hash=tuple(KeyAttr(name=n, type=t) for n, t in rec.get("extra_hash", ())),
            extra_range=tuple(KeyAttr(name=n, type=t) for n, t in rec.get("extra_range", ())),
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
    # Wall-clock end of the index's transition (CREATING / DELETING) as reported; see
    # ``status_at``. None: the stored status is the reported one.
    status_until: float | None = None

    def status_at(self, now: float) -> str:
        """IndexStatus at ``now``: CREATING while backfilling and until ``status_until``."""
        if self.status == "ACTIVE" and self.status_until is not None and now < self.status_until:
            return "CREATING"
        return self.status

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
            "status_until": self.status_until,
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
            status_until=rec.get("status_until"),
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
    # Wall-clock end of a CREATING / UPDATING / DELETING transition (``status_at``); None: the
    # stored status holds until changed. Stored, so every process sharing the store agrees.
    status_until: float | None = None
    # Global indexes being deleted: already gone from storage and from ``indexes``, described
    # with IndexStatus DELETING until their ``status_until``.
    deleting_indexes: tuple[IndexDef, ...] = ()

    def status_at(self, now: float) -> str:
        """TableStatus at ``now``: a CREATING or UPDATING table is ACTIVE from ``status_until``
        on; a DELETING one is ``GONE`` then (its definition only waits to be dropped)."""
        if self.status_until is None or now < self.status_until:
            return self.status
        if self.status == "DELETING":
            return GONE
        return "ACTIVE"

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
            "status_until": self.status_until,
            "deleting_indexes": [ix.to_record() for ix in self.deleting_indexes],
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
            status_until=rec.get("status_until"),
            deleting_indexes=tuple(IndexDef.from_record(ix) for ix in rec.get("deleting_indexes", ())),
            pitr_since=rec.get("pitr_since"),
            pitr_days=rec.get("pitr_days", PITR_DAYS),
            restore=None if rec.get("restore") is None else RestoreInfo.from_record(rec["restore"]),
        )
