"""DynamoDB Streams from outside: boto3's ``dynamodbstreams`` client, a Lambda-style poller,
the AWS CLI, and kill -9 in the middle of a write load.

The poller reads as Lambda's event source mapping does: DescribeStream, each shard from
TRIM_HORIZON once its parent is finished, GetRecords until a closed shard's NextShardIterator
is null. It rebuilds the table from the records and checks each one against what it rebuilt
so far (INSERT only for an absent item, OldImage equal to the current one), so a lost,
repeated or reordered record fails the test, not only a wrong final state.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tests.integration.helpers import (
    TableFactory,
    against_quorumdb,
    aws_cli,
    expect_error,
    make_client,
)

pytestmark = pytest.mark.skipif(
    not against_quorumdb(), reason="DynamoDB Streams are served on QuorumDB's own endpoint"
)

VIEWS = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
WAIT_S = 60.0


@pytest.fixture(scope="module")
def streams(endpoint: str) -> Any:
    return make_client(endpoint, "dynamodbstreams")


def stream_spec(view: str = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    return {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": view}}


def stream_arn(ddb: Any, table: str) -> str:
    return str(ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"])


def shards(streams: Any, arn: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    args: dict[str, Any] = {"StreamArn": arn}
    while True:
        desc = streams.describe_stream(**args)["StreamDescription"]
        out.extend(desc["Shards"])
        if "LastEvaluatedShardId" not in desc:
            return out
        args["ExclusiveStartShardId"] = desc["LastEvaluatedShardId"]


def drain(streams: Any, iterator: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Records from ``iterator`` until a read returns none; (records, next iterator or None
    once the shard is closed and read to its end)."""
    out: list[dict[str, Any]] = []
    while iterator is not None:
        page = streams.get_records(ShardIterator=iterator)
        out.extend(page["Records"])
        iterator = page.get("NextShardIterator")
        if not page["Records"]:
            break
    return out, iterator


def read_all(streams: Any, arn: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for shard in shards(streams, arn):
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        out.extend(drain(streams, it["ShardIterator"])[0])
    return out


def key_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


class Poller:
    """A Lambda-style consumer of one stream that rebuilds the table (NEW_AND_OLD_IMAGES)."""

    def __init__(self, streams: Any, arn: str) -> None:
        self.streams = streams
        self.arn = arn
        self.table: dict[str, dict[str, Any]] = {}
        self.iterators: dict[str, str | None] = {}  # shard id -> next iterator (None: finished)
        self.seq_by_shard: dict[str, int] = {}
        self.records = 0

    def apply(self, record: dict[str, Any]) -> None:
        d = record["dynamodb"]
        k = key_of(record)
        cur = self.table.get(k)
        event = record["eventName"]
        if event == "INSERT":
            assert cur is None, f"INSERT of {k} that exists: {record}"
        else:
            assert cur is not None and d["OldImage"] == cur, f"{event} of {k}: old {d.get('OldImage')} != {cur}"
        if event == "REMOVE":
            del self.table[k]
        else:
            self.table[k] = d["NewImage"]
        self.records += 1

    def round(self) -> int:
        """One pass over the shards (parents finished before their children); returns how
        many records it applied."""
        applied = 0
        listed = shards(self.streams, self.arn)
        ids = {s["ShardId"] for s in listed}
        for shard in listed:
            sid = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if parent in ids and (parent not in self.iterators or self.iterators[parent] is not None):
                continue  # the parent is not read to its end yet (a trimmed parent is not listed)
            if sid not in self.iterators:
                self.iterators[sid] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            it = self.iterators[sid]
            if it is None:
                continue
            recs, nxt = drain(self.streams, it)
            for r in recs:
                seq = int(r["dynamodb"]["SequenceNumber"])
                assert seq > self.seq_by_shard.get(sid, -1), "sequence numbers go down in a shard"
                self.seq_by_shard[sid] = seq
                self.apply(r)
            applied += len(recs)
            self.iterators[sid] = nxt
        return applied


def scan_table(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    args: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**args)
        for item in page["Items"]:
            out[item["pk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return out
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- the API through boto3 ----------------------------------------------------------------------


@pytest.mark.parametrize("view", VIEWS)
def test_records_of_each_view_type(ddb: Any, streams: Any, make_table: TableFactory, view: str) -> None:
    table = make_table(**stream_spec(view))
    desc = ddb.describe_table(TableName=table)["Table"]
    arn = desc["LatestStreamArn"]
    assert arn == f"{desc['TableArn']}/stream/{desc['LatestStreamLabel']}"
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": view}
    one = {"pk": {"S": "a"}, "v": {"N": "1"}}
    two = {"pk": {"S": "a"}, "v": {"N": "2"}}
    ddb.put_item(TableName=table, Item=one)
    ddb.put_item(TableName=table, Item=one)  # unchanged: no record
    ddb.put_item(TableName=table, Item=two)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "a"}})
    recs = read_all(streams, arn)
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY", "REMOVE"]
    new = view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    old = view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
    want = [(one, None), (two, one), (None, two)]
    for r, (n, o) in zip(recs, want, strict=True):
        d = r["dynamodb"]
        assert d["Keys"] == {"pk": {"S": "a"}} and d["StreamViewType"] == view
        assert d.get("NewImage") == (n if new else None)
        assert d.get("OldImage") == (o if old else None)
        assert r["eventSource"] == "aws:dynamodb" and r["awsRegion"] == "us-east-1"
    listed = streams.list_streams(TableName=table)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": table, "StreamLabel": desc["LatestStreamLabel"]}]
    sd = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert sd["StreamStatus"] == "ENABLED" and sd["StreamViewType"] == view and sd["TableName"] == table
    assert sd["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_iterator_types(ddb: Any, streams: Any, make_table: TableFactory) -> None:
    table = make_table(**stream_spec())
    arn = stream_arn(ddb, table)
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    (shard,) = shards(streams, arn)
    sid = shard["ShardId"]

    def read(kind: str, seq: str | None = None) -> list[str]:
        args: dict[str, Any] = {"StreamArn": arn, "ShardId": sid, "ShardIteratorType": kind}
        if seq is not None:
            args["SequenceNumber"] = seq
        return [key_of(r) for r in drain(streams, streams.get_shard_iterator(**args)["ShardIterator"])[0]]

    everything = read_all(streams, arn)
    s = [r["dynamodb"]["SequenceNumber"] for r in everything]
    assert read("TRIM_HORIZON") == [f"k{i}" for i in range(5)]
    assert read("AT_SEQUENCE_NUMBER", s[2]) == ["k2", "k3", "k4"]
    assert read("AFTER_SEQUENCE_NUMBER", s[2]) == ["k3", "k4"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
    assert streams.get_records(ShardIterator=latest)["Records"] == []
    ddb.put_item(TableName=table, Item={"pk": {"S": "late"}})
    assert [key_of(r) for r in drain(streams, latest)[0]] == ["late"]
    page = streams.get_records(ShardIterator=streams.get_shard_iterator(
        StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"], Limit=2)
    assert [key_of(r) for r in page["Records"]] == ["k0", "k1"] and page["NextShardIterator"]
    with expect_error("ValidationException"):
        streams.get_records(ShardIterator="not-an-iterator")
    with expect_error("ResourceNotFoundException"):
        streams.describe_stream(StreamArn=arn.rsplit("/", 1)[0] + "/2000-01-01T00:00:00.000")


def test_order_per_item_under_concurrent_writers(ddb: Any, streams: Any, make_table: TableFactory) -> None:
    table = make_table(**stream_spec())
    arn = stream_arn(ddb, table)
    keys = [f"k{i}" for i in range(5)]

    def writer(w: int) -> None:
        for n in range(40):
            ddb.update_item(
                TableName=table, Key={"pk": {"S": keys[(w + n) % len(keys)]}},
                UpdateExpression="ADD n :one SET w = :w", ExpressionAttributeValues={":one": {"N": "1"}, ":w": {"N": str(w)}},
            )

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = read_all(streams, arn)
    assert len(recs) == 160
    for k in keys:
        counts = [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in recs if key_of(r) == k]
        assert counts == list(range(1, len(counts) + 1)), k  # every increment once, in order
    assert scan_table(ddb, table) == {k: next(r["dynamodb"]["NewImage"] for r in reversed(recs) if key_of(r) == k) for k in keys}


def test_ttl_deletions_are_marked_as_the_service(ddb: Any, streams: Any, make_table: TableFactory) -> None:
    table = make_table(**stream_spec())
    arn = stream_arn(ddb, table)
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    ddb.put_item(TableName=table, Item={"pk": {"S": "gone"}, "exp": {"N": str(int(time.time()) - 60)}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "user"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "user"}})
    deadline = time.monotonic() + WAIT_S  # the shared server runs its TTL pass every second
    while True:
        recs = read_all(streams, arn)
        removed = [r for r in recs if r["eventName"] == "REMOVE"]
        if len(removed) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_key = {key_of(r): r for r in removed}
    assert set(by_key) == {"gone", "user"}
    assert by_key["gone"]["userIdentity"] == TTL_IDENTITY
    assert "userIdentity" not in by_key["user"]


def test_disabled_stream_stays_readable_and_reenabling_makes_a_new_stream(
    ddb: Any, streams: Any, make_table: TableFactory
) -> None:
    table = make_table(**stream_spec("KEYS_ONLY"))
    first = stream_arn(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    ddb.put_item(TableName=table, Item={"pk": {"S": "b"}})
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["LatestStreamArn"] == first and "StreamSpecification" not in desc
    sd = streams.describe_stream(StreamArn=first)["StreamDescription"]
    assert sd["StreamStatus"] == "DISABLED"
    assert all("EndingSequenceNumber" in s["SequenceNumberRange"] for s in sd["Shards"])
    assert [key_of(r) for r in read_all(streams, first)] == ["a"]
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    second = stream_arn(ddb, table)
    assert second != first
    ddb.put_item(TableName=table, Item={"pk": {"S": "c"}})
    assert [key_of(r) for r in read_all(streams, second)] == ["c"]
    assert [s["StreamArn"] for s in streams.list_streams(TableName=table)["Streams"]] == [first, second]
    with expect_error("ValidationException"):
        ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})


# -- a private server: short retention, short iterator life, small shards -------------------------


def test_expired_iterators_and_trimmed_records(own_server_factory: Any, tmp_path: Path) -> None:
    server = own_server_factory(
        tmp_path / "data", QUORUMDB_STREAM_ITERATOR_SECONDS="1", QUORUMDB_STREAM_RETENTION_SECONDS="2"
    )
    ddb = make_client(server.endpoint)
    sc = make_client(server.endpoint, "dynamodbstreams")
    ddb.create_table(
        TableName="trimmed", BillingMode="PAY_PER_REQUEST", **stream_spec(),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    arn = stream_arn(ddb, "trimmed")
    ddb.put_item(TableName="trimmed", Item={"pk": {"S": "old"}})
    (shard,) = shards(sc, arn)
    sid = shard["ShardId"]
    first = shard["SequenceNumberRange"]["StartingSequenceNumber"]
    it = sc.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    time.sleep(1.5)
    with expect_error("ExpiredIteratorException"):
        sc.get_records(ShardIterator=it)
    deadline = time.monotonic() + WAIT_S  # trimmed by the background pass (every second)
    while read_all(sc, arn) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert read_all(sc, arn) == []
    with expect_error("TrimmedDataAccessException"):
        sc.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first)
    ddb.put_item(TableName="trimmed", Item={"pk": {"S": "new"}})
    assert [key_of(r) for r in read_all(sc, arn)] == ["new"]


def _random_workload(ddb: Any, table: str, seed: int, ops: int) -> None:
    rng = random.Random(seed)
    keys = [f"k{i:02d}" for i in range(30)]

    def item(k: str) -> dict[str, Any]:
        return {"pk": {"S": k}, "v": {"N": str(rng.randint(0, 3))}, "tag": {"S": rng.choice("xyz")}}

    for _ in range(ops):
        roll = rng.random()
        if roll < 0.35:
            ddb.put_item(TableName=table, Item=item(rng.choice(keys)))
        elif roll < 0.6:
            ddb.update_item(
                TableName=table, Key={"pk": {"S": rng.choice(keys)}}, UpdateExpression="ADD c :d",
                ExpressionAttributeValues={":d": {"N": str(rng.randint(0, 2))}},
            )
        elif roll < 0.75:
            ddb.delete_item(TableName=table, Key={"pk": {"S": rng.choice(keys)}})
        elif roll < 0.9:
            batch = rng.sample(keys, 4)
            ddb.batch_write_item(RequestItems={table: [
                {"PutRequest": {"Item": item(k)}} if rng.random() < 0.7 else {"DeleteRequest": {"Key": {"pk": {"S": k}}}}
                for k in batch
            ]})
        else:
            a, b = rng.sample(keys, 2)
            with contextlib.suppress(ClientError):  # a failed condition cancels: no record
                ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": item(a)}},
                    {"Delete": {"TableName": table, "Key": {"pk": {"S": b}}, "ConditionExpression": "attribute_exists(pk)"}},
                ])


def test_poller_rebuilds_the_table_from_the_stream(own_server_factory: Any, tmp_path: Path) -> None:
    server = own_server_factory(tmp_path / "data", QUORUMDB_STREAM_SHARD_MAX_RECORDS="60")
    ddb = make_client(server.endpoint)
    sc = make_client(server.endpoint, "dynamodbstreams")
    ddb.create_table(
        TableName="rebuilt", BillingMode="PAY_PER_REQUEST", **stream_spec(),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    poller = Poller(sc, stream_arn(ddb, "rebuilt"))
    done = threading.Event()
    failures: list[BaseException] = []

    def poll() -> None:
        try:
            while not done.is_set():
                poller.round()
        except BaseException as e:  # reported by the test thread
            failures.append(e)

    consumer = threading.Thread(target=poll)
    consumer.start()
    try:
        writers = [threading.Thread(target=_random_workload, args=(ddb, "rebuilt", seed, 150)) for seed in (1, 2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
    finally:
        done.set()
        consumer.join()
    assert not failures, failures[0]
    poller.round()  # everything acknowledged is in the stream now: one more pass reads the rest
    assert poller.table == scan_table(ddb, "rebuilt")
    assert poller.records > 200
    assert len(shards(sc, poller.arn)) > 3  # the reader followed the shards' lineage


def test_kill9_never_separates_an_item_from_its_record(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    ddb = make_client(server.endpoint)
    ddb.create_table(
        TableName="crashy", BillingMode="PAY_PER_REQUEST", **stream_spec(),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    acked: list[tuple[str, dict[str, Any] | None]] = []  # (key, NewImage or None for a delete)
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def writer(w: int) -> None:
        rng = random.Random(w)
        while not stop.is_set():
            k = f"k{rng.randrange(40)}"
            try:
                if rng.random() < 0.15:
                    ddb.delete_item(TableName="crashy", Key={"pk": {"S": k}})
                    done: tuple[str, dict[str, Any] | None] = (k, None)
                else:
                    out = ddb.update_item(
                        TableName="crashy", Key={"pk": {"S": k}}, UpdateExpression="ADD n :one SET w = :w",
                        ExpressionAttributeValues={":one": {"N": "1"}, ":w": {"N": str(w)}}, ReturnValues="ALL_NEW",
                    )
                    done = (k, out["Attributes"])
            except (ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, OSError):
                return
            with lock:
                acked.append(done)
                if len(acked) >= 400:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(6)]
    for t in threads:
        t.start()
    enough.wait(timeout=120)
    server.kill()  # while the writers are still sending
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 400

    restarted = own_server_factory(data_dir)
    ddb = make_client(restarted.endpoint)
    sc = make_client(restarted.endpoint, "dynamodbstreams")
    poller = Poller(sc, stream_arn(ddb, "crashy"))
    poller.round()  # checks every record against the state the earlier ones built
    assert poller.table == scan_table(ddb, "crashy")  # every item's last record is the item
    images = {(k, img["n"]["N"]) for k, img in poller.table.items()}
    seen_new: set[tuple[str, str]] = set()
    for shard in shards(sc, poller.arn):
        it = sc.get_shard_iterator(StreamArn=poller.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        for r in drain(sc, it["ShardIterator"])[0]:
            if "NewImage" in r["dynamodb"]:
                seen_new.add((key_of(r), r["dynamodb"]["NewImage"]["n"]["N"]))
    assert images <= seen_new
    missing = [(k, img) for k, img in acked if img is not None and (k, img["n"]["N"]) not in seen_new]
    assert not missing, f"{len(missing)} acknowledged writes have no record, e.g. {missing[:3]}"


# -- the AWS CLI ----------------------------------------------------------------------------------


def test_aws_cli_dynamodbstreams(endpoint: str, ddb: Any, make_table: TableFactory, tmp_path: Path) -> None:
    table = make_table(**stream_spec("NEW_IMAGE"))
    ddb.put_item(TableName=table, Item={"pk": {"S": "cli"}, "v": {"N": "7"}})
    listed = aws_cli(endpoint, tmp_path, "dynamodbstreams", "list-streams", "--table-name", table)
    (stream,) = listed["Streams"]
    desc = aws_cli(endpoint, tmp_path, "dynamodbstreams", "describe-stream", "--stream-arn", stream["StreamArn"])
    (shard,) = desc["StreamDescription"]["Shards"]
    it = aws_cli(
        endpoint, tmp_path, "dynamodbstreams", "get-shard-iterator", "--stream-arn", stream["StreamArn"],
        "--shard-id", shard["ShardId"], "--shard-iterator-type", "TRIM_HORIZON",
    )
    got = aws_cli(endpoint, tmp_path, "dynamodbstreams", "get-records", "--shard-iterator", it["ShardIterator"])
    (record,) = got["Records"]
    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "cli"}, "v": {"N": "7"}}
