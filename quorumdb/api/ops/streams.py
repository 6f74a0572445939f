"""The DynamoDB Streams API (target prefix ``DynamoDBStreams_20120810.``): ListStreams,
DescribeStream, GetShardIterator, GetRecords.

Shard iterators are opaque to clients and stateless here: ``<stream ARN>|1|<base64>`` (the
shape DynamoDB's have), the blob holding the shard (partition, generation), the position (the
sequence number read last) and the issue time, with a checksum. An iterator expires after
15 minutes (``QUORUMDB_STREAM_ITERATOR_SECONDS`` overrides it, for tests); each GetRecords
returns a fresh one. A position before the shard's trim horizon is TrimmedDataAccessException.

Handlers read streams through the data plane only and never format HTTP errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import zlib
from typing import Any

from quorumdb.api.registry import RequestContext, streams_operation
from quorumdb.db.contract import ChangeRecord, ShardInfo, StreamInfo
from quorumdb.errors import (
    ExpiredIteratorError,
    ResourceNotFoundError,
    TrimmedDataAccessError,
    ValidationError,
)
from quorumdb.model.schema import REGION

__all__ = ["ITERATOR_TTL_S", "encode_iterator", "decode_iterator", "sequence_number"]

ITERATOR_TTL_S = 15 * 60.0
ITERATOR_TTL_ENV = "QUORUMDB_STREAM_ITERATOR_SECONDS"
RECORDS_MAX = 1000
RESPONSE_BYTES_MAX = 1024 * 1024
SHARDS_PAGE_MAX = 100
STREAMS_PAGE_MAX = 100
TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
_ITER = struct.Struct(">IIQQI")  # partition, generation, position, issued ms, crc32


def iterator_ttl_s() -> float:
    raw = os.environ.get(ITERATOR_TTL_ENV, "").strip()
    return float(raw) if raw else ITERATOR_TTL_S


def sequence_number(seq: int) -> str:
    """A sequence number as DynamoDB sends it: decimal digits, at least 21 of them."""
    return f"{seq:021d}"


def _parse_sequence_number(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValidationError(f"Invalid SequenceNumber: {text}")
    return int(text)


def encode_iterator(arn: str, shard: ShardInfo, position: int, issued_at: float) -> str:
    head = _ITER.pack(shard.partition, shard.generation, position, int(issued_at * 1000), 0)[:-4]
    crc = zlib.crc32(arn.encode("utf-8") + head)
    return f"{arn}|1|{base64.b64encode(head + crc.to_bytes(4, 'big')).decode('ascii')}"


def decode_iterator(text: str) -> tuple[str, int, int, int, float]:
    """(stream ARN, partition, generation, position, issue time) of an iterator we made."""
    arn, sep, rest = text.rpartition("|1|")
    try:
        if not sep:
            raise ValueError
        blob = base64.b64decode(rest, validate=True)
        part, gen, position, issued_ms, crc = _ITER.unpack(blob)
        if zlib.crc32(arn.encode("utf-8") + blob[:-4]) != crc:
            raise ValueError
    except (ValueError, binascii.Error, struct.error):
        raise ValidationError("Invalid ShardIterator") from None
    return arn, part, gen, position, issued_ms / 1000.0


# -- lookups --------------------------------------------------------------------------------


async def _stream(ctx: RequestContext, arn: str) -> StreamInfo:
    for s in await ctx.db.streams(arn):
        return s
    raise ResourceNotFoundError(f"Requested resource not found: Stream: {arn} not found")


def _shard(stream: StreamInfo, shard_id: str) -> ShardInfo:
    shard = stream.shard(shard_id)
    if shard is None:
        raise ResourceNotFoundError(
            f"Requested resource not found: Shard: {shard_id} in Stream: {stream.arn} not found"
        )
    return shard


def _status(stream: StreamInfo) -> str:
    return "ENABLED" if stream.disabled_at is None else "DISABLED"


# -- ListStreams / DescribeStream -----------------------------------------------------------


@streams_operation("ListStreams")
async def list_streams(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req.get("TableName")
    streams = await ctx.db.streams()
    if name is not None:
        streams = [s for s in streams if s.table_name == name]
        if not streams and name not in ctx.db.table_names():
            raise ResourceNotFoundError(f"Requested resource not found: Table: {name} not found")
    start = req.get("ExclusiveStartStreamArn")
    if start is not None:
        pos = next((i for i, s in enumerate(streams) if s.arn == start), None)
        if pos is None:
            raise ResourceNotFoundError(f"Requested resource not found: Stream: {start} not found")
        streams = streams[pos + 1 :]
    limit = min(req.get("Limit") or STREAMS_PAGE_MAX, STREAMS_PAGE_MAX)
    out: dict[str, Any] = {
        "Streams": [
            {"StreamArn": s.arn, "TableName": s.table_name, "StreamLabel": s.label} for s in streams[:limit]
        ]
    }
    if len(streams) > limit:
        out["LastEvaluatedStreamArn"] = streams[limit - 1].arn
    return out


def _describe_shard(shard: ShardInfo) -> dict[str, Any]:
    rng: dict[str, Any] = {"StartingSequenceNumber": sequence_number(shard.start_seq)}
    if shard.end_seq is not None:
        rng["EndingSequenceNumber"] = sequence_number(shard.end_seq)
    out: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": rng}
    if shard.parent_shard_id is not None:
        out["ParentShardId"] = shard.parent_shard_id
    return out


@streams_operation("DescribeStream")
async def describe_stream(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    stream = await _stream(ctx, req["StreamArn"])
    shards = list(stream.shards)
    flt = req.get("ShardFilter")
    if flt is not None:
        if flt.get("Type") != "CHILD_SHARDS" or flt.get("ShardId") is None:
            raise ValidationError("ShardFilter must have Type CHILD_SHARDS and a ShardId")
        shards = [s for s in shards if s.parent_shard_id == flt["ShardId"]]
    start = req.get("ExclusiveStartShardId")
    if start is not None:
        pos = next((i for i, s in enumerate(shards) if s.shard_id == start), None)
        # A shard trimmed away meanwhile: continue after it in (partition, generation) order.
        shards = shards[pos + 1 :] if pos is not None else [s for s in shards if s.shard_id > start]
    limit = min(req.get("Limit") or SHARDS_PAGE_MAX, SHARDS_PAGE_MAX)
    desc: dict[str, Any] = {
        "StreamArn": stream.arn,
        "StreamLabel": stream.label,
        "StreamStatus": _status(stream),
        "StreamViewType": stream.view_type,
        "CreationRequestDateTime": stream.created_at,
        "TableName": stream.table_name,
        "KeySchema": stream.key_schema.to_wire(),
        "Shards": [_describe_shard(s) for s in shards[:limit]],
    }
    if len(shards) > limit:
        desc["LastEvaluatedShardId"] = shards[limit - 1].shard_id
    return {"StreamDescription": desc}


# -- GetShardIterator -----------------------------------------------------------------------


def _check_in_shard(shard: ShardInfo, seq: int, kind: str, text: str) -> None:
    end = shard.end_seq if shard.end_seq is not None else shard.last_seq
    if seq < shard.start_seq or seq > end:
        raise ValidationError(
            f"Invalid SequenceNumber for ShardIteratorType {kind}: {text} is not in shard {shard.shard_id}"
        )
    if seq <= shard.trimmed_seq:
        raise TrimmedDataAccessError(f"Sequence number {text} of shard {shard.shard_id} has been trimmed")


async def _position_at(ctx: RequestContext, stream: StreamInfo, shard: ShardInfo, at: float) -> int:
    """The position before the first record created at or after ``at`` (else at the end)."""
    position = max(shard.trimmed_seq, shard.start_seq - 1)
    while True:
        recs = await ctx.db.stream_records(
            stream, shard, position, limit=RECORDS_MAX, size_max_bytes=RESPONSE_BYTES_MAX
        )
        for r in recs:
            if r.created_at >= at:
                return r.seq - 1
            position = r.seq
        if not recs:
            return position


@streams_operation("GetShardIterator")
async def get_shard_iterator(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    kind: str = req["ShardIteratorType"]
    text: str | None = req.get("SequenceNumber")
    if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER") and text is None:
        raise ValidationError(f"SequenceNumber is required for ShardIteratorType {kind}")
    if kind == "AT_TIMESTAMP" and req.get("Timestamp") is None:
        raise ValidationError("Timestamp is required for ShardIteratorType AT_TIMESTAMP")
    stream = await _stream(ctx, req["StreamArn"])
    shard = _shard(stream, req["ShardId"])
    if kind == "TRIM_HORIZON":
        position = max(shard.trimmed_seq, shard.start_seq - 1)
    elif kind == "LATEST":
        position = shard.last_seq
    elif kind == "AT_TIMESTAMP":
        position = await _position_at(ctx, stream, shard, float(req["Timestamp"]))
    else:
        assert text is not None
        seq = _parse_sequence_number(text)
        _check_in_shard(shard, seq, kind, text)
        position = seq - 1 if kind == "AT_SEQUENCE_NUMBER" else seq
    return {"ShardIterator": encode_iterator(stream.arn, shard, position, ctx.now())}


# -- GetRecords ------------------------------------------------------------------------------


def _event_id(arn: str, seq: int) -> str:
    return hashlib.md5(f"{arn}|{seq}".encode(), usedforsecurity=False).hexdigest()


def _record(stream: StreamInfo, r: ChangeRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"ApproximateCreationDateTime": int(r.created_at), "Keys": r.keys}
    if r.new is not None:
        body["NewImage"] = r.new
    if r.old is not None:
        body["OldImage"] = r.old
    body["SequenceNumber"] = sequence_number(r.seq)
    body["SizeBytes"] = max(1, r.size)
    body["StreamViewType"] = stream.view_type
    out: dict[str, Any] = {
        "eventID": _event_id(stream.arn, r.seq),
        "eventName": r.event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": body,
    }
    if r.ttl_expiry:
        out["userIdentity"] = dict(TTL_IDENTITY)
    return out


@streams_operation("GetRecords")
async def get_records(ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    arn, part, gen, position, issued_at = decode_iterator(req["ShardIterator"])
    now = ctx.now()
    ttl = iterator_ttl_s()
    if now - issued_at > ttl:
        raise ExpiredIteratorError(
            f"Iterator expired. The iterator was created at time {int(issued_at * 1000)} while right now "
            f"it is {int(now * 1000)} which is further in the future than the tolerated delay of "
            f"{int(ttl * 1000)} milliseconds."
        )
    stream = await _stream(ctx, arn)
    shard = next((s for s in stream.shards if s.partition == part and s.generation == gen), None)
    if shard is None:
        raise ResourceNotFoundError(f"Requested resource not found: Shard in Stream: {arn} not found")
    if position < shard.trimmed_seq:
        raise TrimmedDataAccessError(
            f"Attempted to access data of shard {shard.shard_id} that has been trimmed (older than 24 hours)"
        )
    limit = min(req.get("Limit") or RECORDS_MAX, RECORDS_MAX)
    recs = await ctx.db.stream_records(stream, shard, position, limit=limit, size_max_bytes=RESPONSE_BYTES_MAX)
    if recs:
        position = recs[-1].seq
    out: dict[str, Any] = {"Records": [_record(stream, r) for r in recs]}
    if shard.end_seq is None or (recs and position < shard.end_seq):
        # A closed shard read to its end has no next iterator: the reader moves to its children.
        out["NextShardIterator"] = encode_iterator(arn, shard, position, now)
    return out
