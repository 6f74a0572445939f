"""DynamoDB Streams through the dispatcher over a LocalDataPlane, on an injected clock.

Everything a client sees (records per view type, sequence numbers, shard lineage on rollover,
retention, iterator expiry, disabled streams, TTL identities) is driven here with virtual
time, so 24 hours and 15 minutes pass without waiting. The black-box counterparts over HTTP
with boto3, the AWS CLI and a crash are in tests/integration/test_streams.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from quorumdb.api.dispatch import STREAMS_TARGET_PREFIX, TARGET_PREFIX, Dispatcher
from quorumdb.api.ops.streams import decode_iterator, encode_iterator
from quorumdb.api.registry import STREAMS_OPERATIONS
from quorumdb.db import LocalDataPlane, open_local
from quorumdb.db.contract import ShardInfo
from quorumdb.db.streams import StreamSettings, label_for, shard_id_for
from quorumdb.errors import ValidationError

T0 = 1_700_000_000.0
DAY = 24 * 3600.0
TABLE = "streamed"


class ApiError(Exception):
    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Api:
    def __init__(self, dp: LocalDataPlane, clock: Clock) -> None:
        self.dp = dp
        self.clock = clock
        self.dispatcher = Dispatcher(dp, clock=clock)

    async def __call__(self, op: str, **req: Any) -> dict[str, Any]:
        prefix = STREAMS_TARGET_PREFIX if op in STREAMS_OPERATIONS else TARGET_PREFIX
        status, body = await self.dispatcher.handle((prefix + op).encode(), orjson.dumps(req), "rid")
        out: dict[str, Any] = orjson.loads(body)
        if status != 200:
            raise ApiError(out["__type"].rsplit("#", 1)[1], out.get("message", ""))
        return out

    async def error(self, op: str, **req: Any) -> tuple[str, str]:
        with pytest.raises(ApiError) as e:
            await self(op, **req)
        return e.value.type_name, e.value.message

    # -- shortcuts ------------------------------------------------------------------------------

    async def create(self, view: str | None = "NEW_AND_OLD_IMAGES", name: str = TABLE) -> str:
        req: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if view is not None:
            req["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        out = await self("CreateTable", **req)
        return str(out["TableDescription"].get("LatestStreamArn", ""))

    async def put(self, pk: str, v: int, **extra: Any) -> None:
        await self("PutItem", TableName=TABLE, Item={"pk": {"S": pk}, "v": {"N": str(v)}, **extra})

    async def delete(self, pk: str) -> None:
        await self("DeleteItem", TableName=TABLE, Key={"pk": {"S": pk}})

    async def shards(self, arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = (await self("DescribeStream", StreamArn=arn))["StreamDescription"]["Shards"]
        return shards

    async def iterator(self, arn: str, shard_id: str, kind: str = "TRIM_HORIZON", seq: str | None = None) -> str:
        req: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if seq is not None:
            req["SequenceNumber"] = seq
        return str((await self("GetShardIterator", **req))["ShardIterator"])

    async def drain(self, iterator: str | None, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Every record from ``iterator`` on, until a read returns none (open shard) or the
        shard ends (NextShardIterator absent: returned None)."""
        out: list[dict[str, Any]] = []
        while iterator is not None:
            req: dict[str, Any] = {"ShardIterator": iterator}
            if limit is not None:
                req["Limit"] = limit
            page = await self("GetRecords", **req)
            out.extend(page["Records"])
            nxt = page.get("NextShardIterator")
            if not page["Records"]:
                return out, nxt
            iterator = nxt
        return out, None

    async def all_records(self, arn: str) -> list[dict[str, Any]]:
        """The whole stream as a poller reads it: each shard from TRIM_HORIZON, parents first."""
        out: list[dict[str, Any]] = []
        for shard in await self.shards(arn):
            recs, _ = await self.drain(await self.iterator(arn, shard["ShardId"]))
            out.extend(recs)
        return out


def scenario(body: Callable[[Api], Awaitable[None]], data_dir: str | None = None, **options: Any) -> None:
    async def main() -> None:
        clock = Clock()
        options.setdefault("ttl_interval_s", 0)
        dp = open_local(data_dir, clock=clock, **options)
        await dp.start()
        try:
            await body(Api(dp, clock))
        finally:
            await dp.close()

    asyncio.run(main())


def events(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in recs]


def seqs(recs: list[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in recs]


# -- records ------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"])
def test_each_view_type_records_the_images_it_names(view: str) -> None:
    async def body(api: Api) -> None:
        arn = await api.create(view)
        await api.put("a", 1)
        await api.put("a", 1)  # changes nothing: no record
        await api(
            "UpdateItem", TableName=TABLE, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "2"}},
        )
        await api(
            "UpdateItem", TableName=TABLE, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "2"}},
        )  # the same value again: no record
        await api.delete("a")
        await api.delete("a")  # nothing to delete: no record
        recs = await api.all_records(arn)
        assert events(recs) == [("INSERT", "a"), ("MODIFY", "a"), ("REMOVE", "a")]
        s = seqs(recs)
        assert s == sorted(s) and len(set(s)) == 3
        item1 = {"pk": {"S": "a"}, "v": {"N": "1"}}
        item2 = {"pk": {"S": "a"}, "v": {"N": "2"}}
        new = view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
        old = view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
        expected = [(item1 if new else None, None), (item2 if new else None, item1 if old else None), (None, item2 if old else None)]
        for r, (n, o) in zip(recs, expected, strict=True):
            d = r["dynamodb"]
            assert d["Keys"] == {"pk": {"S": "a"}}
            assert d.get("NewImage") == n and d.get("OldImage") == o
            assert d["StreamViewType"] == view
            assert d["ApproximateCreationDateTime"] == int(T0)
            assert d["SizeBytes"] > 0 and len(d["SequenceNumber"]) >= 21
            assert r["eventSource"] == "aws:dynamodb" and r["eventVersion"] == "1.1"
            assert "userIdentity" not in r
        assert len({r["eventID"] for r in recs}) == 3

    scenario(body)


def test_transactions_and_batches_record_each_item_and_failures_record_nothing() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api(
            "BatchWriteItem",
            RequestItems={TABLE: [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in ("b1", "b2", "b3")]},
        )
        await api(
            "TransactWriteItems",
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "t1"}}}},
                {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "b1"}}}},
                {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "b2"}}, "ConditionExpression": "attribute_exists(pk)"}},
            ],
        )
        typ, _ = await api.error(
            "TransactWriteItems",
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "t2"}}}},
                {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "zz"}}, "ConditionExpression": "attribute_exists(pk)"}},
            ],
        )
        assert typ == "TransactionCanceledException"
        typ, _ = await api.error(
            "PutItem", TableName=TABLE, Item={"pk": {"S": "b2"}, "x": {"S": "y"}}, ConditionExpression="attribute_not_exists(pk)"
        )
        assert typ == "ConditionalCheckFailedException"
        recs = await api.all_records(arn)
        assert events(recs) == [("INSERT", "b1"), ("INSERT", "b2"), ("INSERT", "b3"), ("INSERT", "t1"), ("REMOVE", "b1")]

    scenario(body)


def test_a_table_without_a_stream_records_nothing_and_lists_no_stream() -> None:
    async def body(api: Api) -> None:
        assert await api.create(None) == ""
        await api.put("a", 1)
        assert (await api("ListStreams"))["Streams"] == []
        assert (await api("ListStreams", TableName=TABLE))["Streams"] == []
        desc = (await api("DescribeTable", TableName=TABLE))["Table"]
        assert "LatestStreamArn" not in desc and "StreamSpecification" not in desc

    scenario(body)


def test_ttl_deletions_carry_the_service_identity() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api("UpdateTimeToLive", TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
        await api.put("old", 1, exp={"N": str(int(T0) - 10)})
        await api.put("young", 2, exp={"N": str(int(T0) + 3600)})
        await api.delete("young")
        assert await api.dp.expire_now() == 1
        recs = await api.all_records(arn)
        assert events(recs) == [("INSERT", "old"), ("INSERT", "young"), ("REMOVE", "young"), ("REMOVE", "old")]
        assert "userIdentity" not in recs[2]
        assert recs[3]["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}

    scenario(body)


# -- iterators ----------------------------------------------------------------------------------


def test_iterator_types_and_paging() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        for i in range(10):
            await api.put(f"k{i}", i)
        (shard,) = await api.shards(arn)
        sid = shard["ShardId"]
        all_recs, nxt = await api.drain(await api.iterator(arn, sid), limit=3)
        assert events(all_recs) == [("INSERT", f"k{i}") for i in range(10)]
        assert nxt is not None  # an open shard always has a next iterator
        s = [r["dynamodb"]["SequenceNumber"] for r in all_recs]
        assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == s[0]
        at, _ = await api.drain(await api.iterator(arn, sid, "AT_SEQUENCE_NUMBER", s[4]))
        assert events(at) == events(all_recs[4:])
        after, _ = await api.drain(await api.iterator(arn, sid, "AFTER_SEQUENCE_NUMBER", s[4]))
        assert events(after) == events(all_recs[5:])
        latest = await api.iterator(arn, sid, "LATEST")
        assert (await api("GetRecords", ShardIterator=latest))["Records"] == []
        await api.put("late", 99)
        recs, _ = await api.drain(latest)
        assert events(recs) == [("INSERT", "late")]
        # The iterator returned with an empty page keeps the position: the next write shows up.
        page = await api("GetRecords", ShardIterator=latest)
        tail = page["NextShardIterator"]
        assert events((await api("GetRecords", ShardIterator=tail))["Records"]) == []
        await api.put("later", 100)
        assert events((await api("GetRecords", ShardIterator=tail))["Records"]) == [("INSERT", "later")]
        api.clock.now += 60
        await api.put("stamped", 101)
        ts = await api("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="AT_TIMESTAMP", Timestamp=T0 + 30)
        recs, _ = await api.drain(ts["ShardIterator"])
        assert events(recs) == [("INSERT", "stamped")]

    scenario(body)


def test_iterators_expire_after_15_minutes() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api.put("a", 1)
        (shard,) = await api.shards(arn)
        it = await api.iterator(arn, shard["ShardId"])
        api.clock.now += 15 * 60
        page = await api("GetRecords", ShardIterator=it)
        assert events(page["Records"]) == [("INSERT", "a")]
        api.clock.now += 1
        assert (await api.error("GetRecords", ShardIterator=it))[0] == "ExpiredIteratorException"
        # The iterator handed back by the last read is fresh.
        assert (await api("GetRecords", ShardIterator=page["NextShardIterator"]))["Records"] == []

    scenario(body)


def test_iterator_round_trip_and_tampering() -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/x/stream/" + label_for(T0)
    shard = ShardInfo(
        shard_id=shard_id_for(0, 3, "abcdef01"), partition=0, generation=3, parent_shard_id=None,
        start_seq=1, end_seq=None, last_seq=0, trimmed_seq=0, opened_at=T0,
    )
    it = encode_iterator(arn, shard, 41, T0)
    assert it.startswith(arn + "|1|") and len(it) <= 2048
    assert decode_iterator(it) == (arn, 0, 3, 41, T0)
    other = arn.replace("table/x/", "table/y/")
    for bad in ["nonsense", it[:-2], it.replace(arn, other), it + "A", arn + "|1|!!!"]:
        with pytest.raises(ValidationError):
            decode_iterator(bad)


def test_request_errors() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api.put("a", 1)
        (shard,) = await api.shards(arn)
        sid = shard["ShardId"]
        seq = shard["SequenceNumberRange"]["StartingSequenceNumber"]
        missing = arn[:-3] + "999"
        assert (await api.error("DescribeStream", StreamArn=missing))[0] == "ResourceNotFoundException"
        assert (await api.error("GetShardIterator", StreamArn=missing, ShardId=sid, ShardIteratorType="LATEST"))[0] == "ResourceNotFoundException"
        other = "shardId-00000000000000000042-00000000"
        assert (await api.error("GetShardIterator", StreamArn=arn, ShardId=other, ShardIteratorType="LATEST"))[0] == "ResourceNotFoundException"
        for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            assert (await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType=kind))[0] == "ValidationException"
        beyond = f"{int(seq) + 5:021d}"
        assert (await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=beyond))[0] == "ValidationException"
        typ, msg = await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="FIRST")
        assert typ == "ValidationException" and "shardIteratorType" in msg
        typ, msg = await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber="12")
        assert typ == "ValidationException" and "sequenceNumber" in msg
        assert (await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber="x" * 21))[0] == "ValidationException"
        it = await api.iterator(arn, sid)
        typ, msg = await api.error("GetRecords", ShardIterator=it, Limit=1001)
        assert typ == "ValidationException" and "less than or equal to 1000" in msg
        assert (await api.error("GetRecords", ShardIterator="garbage"))[0] == "ValidationException"
        assert (await api.error("GetRecords"))[0] == "ValidationException"
        assert (await api.error("ListStreams", TableName="nope_not_here"))[0] == "ResourceNotFoundException"
        # StreamSpecification checks.
        typ, _ = await api.error("UpdateTable", TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
        assert typ == "ValidationException"  # already enabled
        typ, msg = await api.error(
            "CreateTable", TableName="other", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True},
        )
        assert typ == "ValidationException" and "StreamViewType" in msg
        typ, msg = await api.error(
            "CreateTable", TableName="other", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "EVERYTHING"},
        )
        assert typ == "ValidationException" and "streamViewType" in msg

    scenario(body)


# -- shards and lineage -----------------------------------------------------------------------


def _check_lineage(shards: list[dict[str, Any]]) -> None:
    """Each shard but the first names the previous one as parent; every closed shard ends
    before its child starts."""
    for parent, child in zip(shards, shards[1:], strict=False):
        assert child["ParentShardId"] == parent["ShardId"]
        end = int(parent["SequenceNumberRange"]["EndingSequenceNumber"])
        assert int(parent["SequenceNumberRange"]["StartingSequenceNumber"]) <= end
        assert end < int(child["SequenceNumberRange"]["StartingSequenceNumber"])
    assert "ParentShardId" not in shards[0]
    assert "EndingSequenceNumber" not in shards[-1]["SequenceNumberRange"]


def test_shards_roll_over_every_four_hours_with_parent_lineage() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api.put("a", 1)
        api.clock.now += 4 * 3600 - 1
        await api.put("a", 2)
        assert len(await api.shards(arn)) == 1
        api.clock.now += 1
        await api.put("a", 3)  # the shard is four hours old: it closes and a child takes this one
        shards = await api.shards(arn)
        assert len(shards) == 2
        _check_lineage(shards)
        parent_recs, nxt = await api.drain(await api.iterator(arn, shards[0]["ShardId"]))
        assert [r["dynamodb"]["NewImage"]["v"]["N"] for r in parent_recs] == ["1", "2"]
        assert nxt is None  # a closed shard read to its end: no next iterator
        assert parent_recs[-1]["dynamodb"]["SequenceNumber"] == shards[0]["SequenceNumberRange"]["EndingSequenceNumber"]
        latest = (await api("GetRecords", ShardIterator=await api.iterator(arn, shards[0]["ShardId"], "LATEST")))
        assert latest["Records"] == [] and "NextShardIterator" not in latest
        child_recs, _ = await api.drain(await api.iterator(arn, shards[1]["ShardId"]))
        assert [r["dynamodb"]["NewImage"]["v"]["N"] for r in child_recs] == ["3"]
        children = await api("DescribeStream", StreamArn=arn, ShardFilter={"Type": "CHILD_SHARDS", "ShardId": shards[0]["ShardId"]})
        assert [s["ShardId"] for s in children["StreamDescription"]["Shards"]] == [shards[1]["ShardId"]]

    scenario(body)


def test_shards_roll_over_after_n_records_and_describe_pages() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        for i in range(10):
            await api.put(f"k{i}", i)
        shards = await api.shards(arn)
        assert len(shards) == 4  # 3 + 3 + 3 + 1
        _check_lineage(shards)
        assert events(await api.all_records(arn)) == [("INSERT", f"k{i}") for i in range(10)]
        page = (await api("DescribeStream", StreamArn=arn, Limit=3))["StreamDescription"]
        assert page["Shards"] == shards[:3] and page["LastEvaluatedShardId"] == shards[2]["ShardId"]
        rest = (await api("DescribeStream", StreamArn=arn, ExclusiveStartShardId=page["LastEvaluatedShardId"]))["StreamDescription"]
        assert rest["Shards"] == shards[3:] and "LastEvaluatedShardId" not in rest

    scenario(body, stream_settings=StreamSettings(shard_records_max=3))


# -- retention, disabling, deletion ----------------------------------------------------------


def test_records_are_trimmed_after_24_hours() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api.put("old1", 1)
        await api.put("old2", 2)
        (shard,) = await api.shards(arn)
        sid = shard["ShardId"]
        first = shard["SequenceNumberRange"]["StartingSequenceNumber"]
        api.clock.now += DAY - 60
        stale_iterator = await api.iterator(arn, sid)  # points before old1
        await api.put("new", 3)
        await api.dp.purge_streams()
        assert events(await api.all_records(arn)) == [("INSERT", "old1"), ("INSERT", "old2"), ("INSERT", "new")]
        api.clock.now += 61
        assert await api.dp.purge_streams() == 2
        assert events(await api.all_records(arn)) == [("INSERT", "new")]
        typ, _ = await api.error("GetRecords", ShardIterator=stale_iterator)
        assert typ == "TrimmedDataAccessException"
        typ, _ = await api.error("GetShardIterator", StreamArn=arn, ShardId=sid, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first)
        assert typ == "TrimmedDataAccessException"

    scenario(body)


def test_a_disabled_stream_stays_readable_for_24_hours_and_reenabling_makes_a_new_one() -> None:
    async def body(api: Api) -> None:
        first = await api.create("KEYS_ONLY")
        await api.put("a", 1)
        api.clock.now += 10
        out = await api("UpdateTable", TableName=TABLE, StreamSpecification={"StreamEnabled": False})
        desc = out["TableDescription"]
        assert "StreamSpecification" not in desc and desc["LatestStreamArn"] == first
        typ, _ = await api.error("UpdateTable", TableName=TABLE, StreamSpecification={"StreamEnabled": False})
        assert typ == "ValidationException"
        await api.put("b", 2)  # no stream: no record
        d = (await api("DescribeStream", StreamArn=first))["StreamDescription"]
        assert d["StreamStatus"] == "DISABLED"
        assert "EndingSequenceNumber" in d["Shards"][0]["SequenceNumberRange"]
        assert events(await api.all_records(first)) == [("INSERT", "a")]
        api.clock.now += 10
        out = await api("UpdateTable", TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        second = out["TableDescription"]["LatestStreamArn"]
        assert second != first and out["TableDescription"]["LatestStreamLabel"] == second.rsplit("/", 1)[1]
        assert out["TableDescription"]["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        await api.put("c", 3)
        assert events(await api.all_records(second)) == [("INSERT", "c")]
        s1 = seqs(await api.all_records(first))
        s2 = seqs(await api.all_records(second))
        assert max(s1) < min(s2)  # one counter per table across its streams
        listed = (await api("ListStreams", TableName=TABLE))["Streams"]
        assert [s["StreamArn"] for s in listed] == [first, second]
        page = await api("ListStreams", Limit=1)
        assert page["Streams"][0]["StreamArn"] == first and page["LastEvaluatedStreamArn"] == first
        assert [s["StreamArn"] for s in (await api("ListStreams", ExclusiveStartStreamArn=first))["Streams"]] == [second]
        api.clock.now += DAY + 1
        await api.dp.purge_streams()
        assert (await api.error("DescribeStream", StreamArn=first))[0] == "ResourceNotFoundException"
        assert [s["StreamArn"] for s in (await api("ListStreams"))["Streams"]] == [second]
        # The enabled stream keeps its (open) shard even with every record trimmed.
        assert len(await api.shards(second)) == 1 and await api.all_records(second) == []

    scenario(body)


def test_a_stream_disabled_before_any_write_has_one_closed_empty_shard() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api("UpdateTable", TableName=TABLE, StreamSpecification={"StreamEnabled": False})
        (shard,) = await api.shards(arn)
        rng = shard["SequenceNumberRange"]
        assert rng["StartingSequenceNumber"] == rng["EndingSequenceNumber"]
        page = await api("GetRecords", ShardIterator=await api.iterator(arn, shard["ShardId"]))
        assert page["Records"] == [] and "NextShardIterator" not in page

    scenario(body)


def test_the_stream_of_a_deleted_table_stays_readable_until_retention() -> None:
    async def body(api: Api) -> None:
        arn = await api.create()
        await api.put("a", 1)
        await api("DeleteTable", TableName=TABLE)
        d = (await api("DescribeStream", StreamArn=arn))["StreamDescription"]
        assert d["StreamStatus"] == "DISABLED"
        assert events(await api.all_records(arn)) == [("INSERT", "a")]
        new_arn = await api.create()  # the same name again: a new stream, its own records
        await api.put("b", 1)
        assert new_arn != arn
        assert events(await api.all_records(new_arn)) == [("INSERT", "b")]
        api.clock.now += DAY + 1
        await api.dp.purge_streams()
        assert [s["StreamArn"] for s in (await api("ListStreams"))["Streams"]] == [new_arn]

    scenario(body)


def test_stream_state_survives_a_restart(tmp_path: Any) -> None:
    async def write(api: Api) -> None:
        await api.create()
        await api.put("a", 1)

    async def read(api: Api) -> None:
        (stream,) = (await api("ListStreams"))["Streams"]
        await api.put("b", 1)
        recs = await api.all_records(stream["StreamArn"])
        assert events(recs) == [("INSERT", "a"), ("INSERT", "b")]
        s = seqs(recs)
        assert s[1] == s[0] + 1

    scenario(write, data_dir=str(tmp_path / "d"))
    scenario(read, data_dir=str(tmp_path / "d"))


def test_a_batch_rerun_after_the_store_grows_records_each_write_once(tmp_path: Any) -> None:
    """The committer aborts and reruns a batch that fills the LMDB map: the records staged in
    the aborted transaction go with it, so none is lost or repeated."""

    async def body(api: Api) -> None:
        arn = await api.create()
        blob = {"S": "x" * 60_000}
        await asyncio.gather(*(api.put(f"k{i:03d}", i, blob=blob) for i in range(60)))
        recs = await api.all_records(arn)
        assert sorted(key for _e, key in events(recs)) == [f"k{i:03d}" for i in range(60)]
        s = seqs(recs)
        assert s == list(range(s[0], s[0] + 60))

    scenario(body, data_dir=str(tmp_path / "d"), map_size=1 << 20)
