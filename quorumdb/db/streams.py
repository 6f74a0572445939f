"""DynamoDB Streams in the data plane: change capture, stream and shard lifecycle, retention.

A table's stream is made of shards. Each partition of the table writes into one open shard of
the stream; a shard is identified by (partition, generation) and its id is derived from them,
so a rollover (every ``shard_age_max_s``, or ``shard_records_max`` records) or a partition
split closes a shard (it gets an EndingSequenceNumber) and opens children that name it as
their parent. On a single node a table has one partition (0).

``capture`` runs inside the write job of the item (``db.writer.apply_write``) and stages the
record into the same ``Staged`` overlay as the item, so both commit atomically or neither
does. Sequence numbers come from a per-partition counter (``streams-head``) kept in the same
transaction: they increase in commit order, across the table's successive streams too.

``enable``/``disable`` run in the DDL job that changes the table's StreamSpecification.
``purge`` trims records older than the retention (24 hours), and drops shards closed and
streams disabled before that. Readers (``load_streams``, ``read_records``) work on a snapshot.

Record layout (JSON, stable field names): ``e`` event (0 INSERT, 1 MODIFY, 2 REMOVE), ``t``
creation time, ``k`` keys, ``n``/``o`` new/old image (as the view type asks), ``s`` size in
bytes, ``u`` 1 for a TTL deletion. Never decide here whether a caller may see a stream: that
is the API's business.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from typing import Any, Protocol

from quorumdb.db.contract import ChangeRecord, ShardInfo, StreamInfo
from quorumdb.db.records import (
    STREAM_NEXT_ID,
    STREAM_PREFIX,
    dumps,
    item_size,
    loads,
    pack_u64,
    shard_key,
    shard_prefix,
    stream_head_key,
    stream_key,
    stream_record_key,
    stream_records_prefix,
    unpack_u64,
)
from quorumdb.model.schema import KeySchema, TableDef
from quorumdb.model.types import Item, Key
from quorumdb.storage.engine import ReadTxn, WriteTxn, prefix_successor

__all__ = [
    "StreamSettings",
    "RETENTION_S",
    "SHARD_AGE_MAX_S",
    "VIEW_TYPES",
    "capture",
    "enable",
    "disable",
    "purge",
    "load_streams",
    "read_records",
    "shard_id_for",
    "label_for",
]

RETENTION_S = 24 * 3600.0  # DynamoDB keeps stream records for 24 hours
SHARD_AGE_MAX_S = 4 * 3600.0  # DynamoDB's shards roll over about every four hours
PURGE_CHUNK = 1024
VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
EVENTS = ("INSERT", "MODIFY", "REMOVE")
_SINGLE_PARTITION = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    retention_s: float = RETENTION_S
    shard_age_max_s: float = SHARD_AGE_MAX_S
    shard_records_max: int = 0  # 0: shards roll over by age only, as DynamoDB's


class _KV(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


def label_for(at: float) -> str:
    """A stream label: the creation time in ISO 8601 with milliseconds, as DynamoDB's."""
    ms = int(at * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


def _suffix(arn: str) -> str:
    return hashlib.sha1(arn.encode("utf-8")).hexdigest()[:8]


def shard_id_for(partition: int, generation: int, suffix: str) -> str:
    """``shardId-<partition, 8 digits><generation, 12 digits>-<8 hex of the stream ARN>``."""
    return f"shardId-{partition:08d}{generation:012d}-{suffix}"


# -- change capture (inside an item's write job) --------------------------------------------


def capture(
    kv: _KV,
    table: TableDef,
    key: Key,
    old: Item | None,
    new: Item | None,
    now: float,
    settings: StreamSettings,
    ttl_expiry: bool = False,
    sizes: tuple[int, int] | None = None,
) -> int | None:
    """Stage the stream record of one item change; returns its sequence number, or None when
    the table's stream is not enabled or the write changes nothing. ``sizes`` are the item
    sizes of ``old`` and ``new`` if the caller knows them."""
    if old == new:
        return None  # DynamoDB records nothing for a write that leaves the item as it was
    hk = stream_head_key(table.table_id, _SINGLE_PARTITION)
    raw = kv.get(hk)
    if raw is None:
        return None
    head: dict[str, Any] = loads(raw)
    sid = head.get("stream")
    if sid is None:
        return None
    seq = int(head["seq"]) + 1
    count = int(head["count"])
    if count and (
        (settings.shard_records_max and count >= settings.shard_records_max)
        or now - float(head["opened"]) >= settings.shard_age_max_s
    ):
        _roll_over(kv, head, seq, now)
    view = head["view"]
    rec: dict[str, Any] = {"e": 0 if old is None else 2 if new is None else 1, "t": now, "k": key}
    size = item_size(key)
    if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        rec["n"] = new
        size += item_size(new) if sizes is None else sizes[1]
    if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        rec["o"] = old
        size += item_size(old) if sizes is None else sizes[0]
    rec["s"] = size
    if ttl_expiry:
        rec["u"] = 1
    kv.put(stream_record_key(sid, head["part"], head["gen"], seq), dumps(rec))
    head["seq"] = seq
    head["count"] = int(head["count"]) + 1
    kv.put(hk, dumps(head))
    return seq


def _roll_over(kv: _KV, head: dict[str, Any], seq: int, now: float) -> None:
    """Close the open shard at the last sequence number given out; open its child at ``seq``."""
    sid, part, gen = head["stream"], head["part"], head["gen"]
    sk = shard_key(sid, part, gen)
    shard = loads(kv.get(sk) or b"{}")
    shard.update(end=int(head["seq"]), closed=now)
    kv.put(sk, dumps(shard))
    child = gen + 1
    kv.put(
        shard_key(sid, part, child),
        dumps(_new_shard(part, child, head["sfx"], shard.get("id"), seq, now)),
    )
    head.update(gen=child, start=seq, opened=now, count=0)


def _new_shard(part: int, gen: int, suffix: str, parent: str | None, start: int, now: float) -> dict[str, Any]:
    return {
        "id": shard_id_for(part, gen, suffix),
        "parent": parent,
        "start": start,
        "end": None,
        "opened": now,
        "closed": None,
        "trimmed": 0,
    }


# -- stream lifecycle (inside a DDL job) ----------------------------------------------------


def enable(txn: WriteTxn, table: TableDef, view_type: str, now: float) -> str:
    """Create a new stream for ``table`` (whose table_id is assigned) and open its first shard;
    returns the stream's label (later than the table's previous one)."""
    assert view_type in VIEW_TYPES
    # Labels (and so ARNs) stay unique per table name, also for a table re-created at once.
    taken = {
        d["label"]
        for _k, raw in txn.iterate(STREAM_PREFIX, prefix_successor(STREAM_PREFIX))
        if (d := loads(raw))["table"] == table.name
    }
    at = now
    label = label_for(at)
    while label in taken or (table.stream_label is not None and label <= table.stream_label):
        at += 0.001
        label = label_for(at)
    sid = unpack_u64(txn.get(STREAM_NEXT_ID)) + 1
    txn.put(STREAM_NEXT_ID, pack_u64(sid))
    arn = f"{table.arn}/stream/{label}"
    txn.put(
        stream_key(sid),
        dumps(
            {
                "arn": arn,
                "label": label,
                "table": table.name,
                "table_id": table.table_id,
                "view": view_type,
                "created": now,
                "disabled": None,
                "key_schema": table.key_schema.to_record(),
            }
        ),
    )
    hk = stream_head_key(table.table_id, _SINGLE_PARTITION)
    raw = txn.get(hk)
    last = 0 if raw is None else int(loads(raw)["seq"])
    suffix = _suffix(arn)
    txn.put(shard_key(sid, _SINGLE_PARTITION, 0), dumps(_new_shard(_SINGLE_PARTITION, 0, suffix, None, last + 1, now)))
    head = {
        "seq": last,
        "stream": sid,
        "part": _SINGLE_PARTITION,
        "gen": 0,
        "start": last + 1,
        "opened": now,
        "count": 0,
        "view": view_type,
        "sfx": suffix,
    }
    txn.put(hk, dumps(head))
    return label


def disable(txn: WriteTxn, table_id: int, now: float, *, table_deleted: bool = False) -> None:
    """Close the table's open shard and mark its stream DISABLED (readable until retention
    drops it). With ``table_deleted`` the capture state goes too (table ids are never reused)."""
    hk = stream_head_key(table_id, _SINGLE_PARTITION)
    raw = txn.get(hk)
    if raw is None:
        return
    head = loads(raw)
    sid = head.get("stream")
    if sid is not None:
        if not head["count"]:
            head["seq"] = int(head["start"])  # an empty shard still ends at a number of its own
        sk = shard_key(sid, head["part"], head["gen"])
        shard = loads(txn.get(sk) or b"{}")
        shard.update(end=int(head["seq"]), closed=now)
        txn.put(sk, dumps(shard))
        stream = loads(txn.get(stream_key(sid)) or b"{}")
        stream["disabled"] = now
        txn.put(stream_key(sid), dumps(stream))
    if table_deleted:
        txn.delete(hk)
    else:
        txn.put(hk, dumps({"seq": head["seq"], "stream": None}))


# -- retention ------------------------------------------------------------------------------


def purge(txn: WriteTxn, now: float, retention_s: float, limit: int = PURGE_CHUNK) -> int:
    """Delete up to ``limit`` records older than the retention (oldest first per shard), shards
    closed before it and streams disabled before it; returns how many records went."""
    cutoff = now - retention_s
    deleted = 0
    streams = list(txn.iterate(STREAM_PREFIX, prefix_successor(STREAM_PREFIX)))
    for sk, sraw in streams:
        sid = int.from_bytes(sk[len(STREAM_PREFIX) :], "big")
        sp = shard_prefix(sid)
        shards = list(txn.iterate(sp, prefix_successor(sp)))
        kept = 0
        for hk, hraw in shards:
            shard = loads(hraw)
            part = int.from_bytes(hk[len(sp) : len(sp) + 4], "big")
            gen = int.from_bytes(hk[len(sp) + 4 :], "big")
            rp = stream_records_prefix(sid, part, gen)
            old: list[bytes] = []
            for rk, rraw in txn.iterate(rp, prefix_successor(rp)):
                if float(loads(rraw)["t"]) >= cutoff or deleted + len(old) >= limit:
                    break
                old.append(rk)
            for rk in old:
                txn.delete(rk)
            deleted += len(old)
            closed = shard.get("closed")
            if closed is not None and float(closed) < cutoff and deleted < limit:
                if next(iter(txn.iterate(rp, prefix_successor(rp))), None) is None:
                    txn.delete(hk)
                    continue
            kept += 1
            if old:
                shard["trimmed"] = int.from_bytes(old[-1][len(rp) :], "big")
                txn.put(hk, dumps(shard))
        disabled = loads(sraw).get("disabled")
        if not kept and disabled is not None and float(disabled) < cutoff:
            txn.delete(sk)
        if deleted >= limit:
            break
    return deleted


# -- reading (from a snapshot) --------------------------------------------------------------


def load_streams(snap: ReadTxn, arn: str | None = None) -> list[StreamInfo]:
    """Every stream (only the one with ``arn`` if given), with its shards."""
    out: list[StreamInfo] = []
    for sk, sraw in snap.iterate(STREAM_PREFIX, prefix_successor(STREAM_PREFIX)):
        sid = int.from_bytes(sk[len(STREAM_PREFIX) :], "big")
        s = loads(sraw)
        if arn is not None and s["arn"] != arn:
            continue
        head_raw = snap.get(stream_head_key(int(s["table_id"]), _SINGLE_PARTITION))
        head = None if head_raw is None else loads(head_raw)
        sp = shard_prefix(sid)
        shards: list[ShardInfo] = []
        for hk, hraw in snap.iterate(sp, prefix_successor(sp)):
            h = loads(hraw)
            part = int.from_bytes(hk[len(sp) : len(sp) + 4], "big")
            gen = int.from_bytes(hk[len(sp) + 4 :], "big")
            end = h.get("end")
            if end is not None:
                last = int(end)
            elif head is not None and head.get("stream") == sid and head.get("gen") == gen:
                last = int(head["seq"])
            else:
                last = int(h["start"]) - 1
            shards.append(
                ShardInfo(
                    shard_id=h["id"],
                    partition=part,
                    generation=gen,
                    parent_shard_id=h.get("parent"),
                    start_seq=int(h["start"]),
                    end_seq=None if end is None else int(end),
                    last_seq=last,
                    trimmed_seq=int(h.get("trimmed") or 0),
                    opened_at=float(h["opened"]),
                )
            )
        disabled = s.get("disabled")
        out.append(
            StreamInfo(
                stream_id=sid,
                arn=s["arn"],
                label=s["label"],
                table_name=s["table"],
                view_type=s["view"],
                created_at=float(s["created"]),
                disabled_at=None if disabled is None else float(disabled),
                key_schema=KeySchema.from_record(s["key_schema"]),
                shards=tuple(shards),
            )
        )
    return out


def read_records(
    snap: ReadTxn, stream_id: int, shard: ShardInfo, after_seq: int, limit: int, size_max_bytes: int
) -> list[ChangeRecord]:
    rp = stream_records_prefix(stream_id, shard.partition, shard.generation)
    out: list[ChangeRecord] = []
    size = 0
    it: Iterator[tuple[bytes, bytes]] = snap.iterate(
        stream_record_key(stream_id, shard.partition, shard.generation, after_seq),
        prefix_successor(rp),
        lo_inclusive=False,
    )
    for k, raw in it:
        r = loads(raw)
        rec = ChangeRecord(
            seq=int.from_bytes(k[len(rp) :], "big"),
            event=EVENTS[r["e"]],
            created_at=float(r["t"]),
            keys=r["k"],
            new=r.get("n"),
            old=r.get("o"),
            size=int(r["s"]),
            ttl_expiry=bool(r.get("u")),
        )
        out.append(rec)
        size += rec.size
        if len(out) >= limit or size >= size_max_bytes:
            break
    return out
