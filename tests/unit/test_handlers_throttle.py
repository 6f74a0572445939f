"""Provisioned-capacity enforcement through the handlers (quorumdb.api.throttle), on a fake clock
over the real in-memory data plane: what is throttled, with what error, and that a throttled
request writes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from quorumdb.api.throttle import (
    ENFORCE_TAG,
    INDEX_MESSAGE,
    TABLE_MESSAGE,
    Throttle,
    from_env,
    item_position,
)
from quorumdb.core.capacity import partition_of
from quorumdb.errors import ProvisionedThroughputExceededError, TransactionCanceledError
from quorumdb.model.schema import TableDef, Throughput
from tests.unit.test_handlers_support import Client, index, make_table

KB = 1024
KS = make_table("schema-only").key_schema


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provisioned(table: TableDef, rcu: int, wcu: int, **kw: Any) -> TableDef:
    return dataclasses.replace(table, throughput=Throughput(read_units=rcu, write_units=wcu), **kw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_for(table: TableDef, clock: FakeClock, *, on: bool = True) -> Client:
    c = Client(table)
    c.ctx.capacity = Throttle(on=on, clock=clock, db=c.db)
    return c


@pytest.fixture
def hot(clock: FakeClock) -> Iterator[Client]:
    """A 5 WCU / 5 RCU table ``t``, enforced."""
    c = client_for(provisioned(make_table("t"), 5, 5), clock)
    yield c
    c.close()


def put(c: Client, pk: str, size: int = 10, table: str = "t", **attrs: Any) -> dict[str, Any]:
    return c.call("PutItem", {"TableName": table, "Item": {"pk": {"S": pk}, "v": {"S": "x" * size}, **attrs}})


def puts_until_throttled(c: Client, limit: int, size: int = 10, table: str = "t") -> tuple[int, ProvisionedThroughputExceededError]:
    for i in range(limit):
        try:
            put(c, f"k{i}", size, table)
        except ProvisionedThroughputExceededError as e:
            return i, e
    raise AssertionError(f"not throttled after {limit} writes")


def test_burst_then_throttled_with_dynamodbs_error_and_no_effect(hot: Client, clock: FakeClock) -> None:
    n, err = puts_until_throttled(hot, 2000)
    assert n == 1500  # 300 s of 5 WCU, 1 WCU each
    body = err.body()
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    assert body["message"] == TABLE_MESSAGE
    assert body["ThrottlingReasons"] == [
        {"reason": "TableWriteProvisionedThroughputExceeded", "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/t"}
    ]
    assert err.http_status == 400
    writes = hot.db.writes
    assert hot.call("GetItem", {"TableName": "t", "Key": {"pk": {"S": "k1500"}}, "ConsistentRead": True}) == {}
    assert hot.db.writes == writes  # the throttled put wrote nothing
    clock.now += 1.0  # 5 units refilled
    for i in range(5):
        put(hot, f"again{i}")
    with pytest.raises(ProvisionedThroughputExceededError):
        put(hot, "one-too-many")


def test_write_cost_is_the_item_size_in_kb(hot: Client) -> None:
    n, _ = puts_until_throttled(hot, 2000, size=3 * KB)  # 3 KB + names: 4 WCU each
    assert n == 1500 // 4


def test_updates_are_charged_the_larger_item_afterwards(hot: Client, clock: FakeClock) -> None:
    put(hot, "big", 9 * KB)  # 10 WCU
    hot.call("UpdateItem", {"TableName": "t", "Key": {"pk": {"S": "big"}}, "UpdateExpression": "SET n = :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}})  # 10 WCU, 1 up front
    n, _ = puts_until_throttled(hot, 2000)
    assert n == 1500 - 20


def test_a_large_query_leaves_a_debt(clock: FakeClock) -> None:
    c = client_for(provisioned(make_table("q", range_=("sk", "S")), 1, 100), clock)
    try:
        for i in range(20):  # 20 items of ~50 KB: 1 MB in one partition
            c.call("PutItem", {"TableName": "q", "Item": {"pk": {"S": "p"}, "sk": {"S": f"{i:02}"}, "v": {"S": "x" * 50 * KB}}})
        query = {"TableName": "q", "KeyConditionExpression": "pk = :p", "ConsistentRead": True,
                 "ExpressionAttributeValues": {":p": {"S": "p"}}}
        assert c.call("Query", query)["Count"] == 20  # ~251 RCU of the 300 of burst
        assert c.call("Query", query)["Count"] == 20  # admitted on ~49 units left: a debt of ~200
        with pytest.raises(ProvisionedThroughputExceededError):
            c.call("Query", query)
        clock.now += 150.0  # still in debt
        with pytest.raises(ProvisionedThroughputExceededError):
            c.call("GetItem", {"TableName": "q", "Key": {"pk": {"S": "p"}, "sk": {"S": "00"}}})
        clock.now += 60.0  # repaid, and some
        assert c.call("GetItem", {"TableName": "q", "Key": {"pk": {"S": "p"}, "sk": {"S": "00"}}})["Item"]
    finally:
        c.close()


def test_eventually_consistent_reads_cost_half(hot: Client) -> None:
    key = {"TableName": "t", "Key": {"pk": {"S": "missing"}}}
    ok = 0
    with pytest.raises(ProvisionedThroughputExceededError):
        for _ in range(5000):
            hot.call("GetItem", key)
            ok += 1
    assert ok == 3000  # 1500 RCU of burst at 0.5 each


def test_batch_write_returns_throttled_requests_unprocessed(hot: Client, clock: FakeClock) -> None:
    puts_until_throttled(hot, 2000)
    clock.now += 2.0  # 10 units
    reqs = [{"PutRequest": {"Item": {"pk": {"S": f"b{i}"}}}} for i in range(25)]
    out = hot.call("BatchWriteItem", {"RequestItems": {"t": reqs}})
    assert len(out["UnprocessedItems"]["t"]) == 15
    assert out["UnprocessedItems"]["t"] == reqs[10:]
    got = hot.call("BatchGetItem", {"RequestItems": {"t": {"Keys": [{"pk": {"S": f"b{i}"}} for i in range(25)], "ConsistentRead": True}}})
    assert len(got["Responses"]["t"]) == 10  # only the processed ones were written


def test_batch_write_with_nothing_processable_fails_whole(hot: Client) -> None:
    puts_until_throttled(hot, 2000)
    writes = hot.db.writes
    with pytest.raises(ProvisionedThroughputExceededError):
        hot.call("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": {"S": "z"}}}}]}})
    assert hot.db.writes == writes


def test_batch_get_returns_throttled_keys_unprocessed(hot: Client, clock: FakeClock) -> None:
    for i in range(10):
        put(hot, f"g{i}")
    key = {"TableName": "t", "Key": {"pk": {"S": "g0"}}, "ConsistentRead": True}
    ok = 0
    with pytest.raises(ProvisionedThroughputExceededError):
        for _ in range(2000):
            hot.call("GetItem", key)
            ok += 1
    assert ok == 1500
    clock.now += 1.0  # 5 units: 5 consistent reads
    keys = [{"pk": {"S": f"g{i}"}} for i in range(10)]
    got = hot.call("BatchGetItem", {"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}})
    assert len(got["Responses"]["t"]) == 5
    assert got["UnprocessedKeys"]["t"]["Keys"] == keys[5:]
    assert got["UnprocessedKeys"]["t"]["ConsistentRead"] is True
    with pytest.raises(ProvisionedThroughputExceededError):
        hot.call("BatchGetItem", {"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}})


def test_off_by_default_tag_turns_it_on_on_demand_never(clock: FakeClock) -> None:
    plain = provisioned(make_table("plain"), 1, 1)
    tagged = provisioned(make_table("tagged"), 1, 1, tags={ENFORCE_TAG: "true"})
    ondemand = dataclasses.replace(make_table("od"), billing_mode="PAY_PER_REQUEST", tags={ENFORCE_TAG: "true"})
    c = Client(plain, tagged, ondemand)
    c.ctx.capacity = Throttle(on=False, clock=clock)
    try:
        for i in range(400):  # 300 units of burst on each provisioned table
            put(c, f"p{i}", table="plain")
            put(c, f"o{i}", table="od")
        n, _ = puts_until_throttled(c, 400, table="tagged")
        assert n == 300
        c.ctx.capacity = Throttle(on=True, clock=clock)
        for i in range(400):
            put(c, f"o{i}", table="od")
        n, _ = puts_until_throttled(c, 400, table="plain")
        assert n == 300
    finally:
        c.close()


def update_throughput(c: Client, rcu: int, wcu: int) -> None:
    out = c.call("UpdateTable", {"TableName": "t", "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}})
    assert out["TableDescription"]["ProvisionedThroughput"]["WriteCapacityUnits"] == wcu


def test_update_table_resizes_the_buckets(hot: Client, clock: FakeClock) -> None:
    puts_until_throttled(hot, 2000)
    update_throughput(hot, 5, 50)
    clock.now += 1.0  # 50 units at the new rate
    n, _ = puts_until_throttled(hot, 100)
    assert n == 50
    update_throughput(hot, 5, 2)
    clock.now += 1000.0  # the burst is capped at 300 s of the new rate
    n, _ = puts_until_throttled(hot, 1000)
    assert n == 600
    update_throughput(hot, 3000, 3000)  # now 4 partitions: the hot key gets a quarter
    clock.now += 1000.0
    n = 0
    with pytest.raises(ProvisionedThroughputExceededError):
        while n < 10_000:
            put(hot, "hot", 300 * KB - 20)  # 300 WCU
            n += 1
    assert n == 750  # 3000 WCU / 4 partitions x 300 s / 300 WCU


def test_partitions_of_a_large_table_throttle_a_hot_key(clock: FakeClock) -> None:
    # 2,000 WCU: two partitions of 1,000 WCU; one key uses one partition's burst only.
    c = client_for(provisioned(make_table("big"), 0, 2000), clock)
    try:
        body = {"TableName": "big", "Item": {"pk": {"S": "hot"}, "v": {"S": "x" * (100 * KB - 20)}}}  # 100 WCU
        ok = 0
        with pytest.raises(ProvisionedThroughputExceededError) as exc:
            for _ in range(7000):
                c.call("PutItem", body)
                ok += 1
        assert ok == 3000  # 1,000 WCU x 300 s, not the table's 2,000 x 300 s
        assert exc.value.body()["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
        other = next(f"k{i}" for i in range(100) if partition_of(item_position(KS, {"pk": {"S": f"k{i}"}}) or 0, 2)
                     != partition_of(item_position(KS, {"pk": {"S": "hot"}}) or 0, 2))
        put(c, other, table="big")  # a key of the other partition
    finally:
        c.close()


def test_lsi_writes_are_charged_to_the_table(clock: FakeClock) -> None:
    lsi = index("byv", ("pk", "S"), ("v", "S"), local=True)
    c = client_for(provisioned(make_table("l", range_=("sk", "S"), indexes=[lsi]), 5, 5), clock)
    try:
        for i in range(2000):
            try:
                c.call("PutItem", {"TableName": "l", "Item": {"pk": {"S": "p"}, "sk": {"S": str(i)}, "v": {"S": "x"}}})
            except ProvisionedThroughputExceededError:
                break
        assert i == 750  # 1 WCU for the table + 1 for the LSI entry
    finally:
        c.close()


def test_a_gsi_out_of_write_capacity_throttles_base_table_writes(clock: FakeClock) -> None:
    gsi = dataclasses.replace(index("byg", ("g", "S")), throughput=Throughput(read_units=5, write_units=1))
    c = client_for(provisioned(make_table("gt", indexes=[gsi]), 5, 1000), clock)
    try:
        for i in range(100):
            try:
                put(c, f"k{i}", 9 * KB, table="gt", g={"S": "x"})  # 10 WCU on the table and on the GSI
            except ProvisionedThroughputExceededError as e:
                err = e
                break
        assert i == 30  # the GSI's 300 units of burst
        assert err.message == INDEX_MESSAGE
        assert err.body()["ThrottlingReasons"][0]["resource"].endswith(":table/gt/index/byg")
        put(c, "no-entry", 9 * KB, table="gt")  # an item without the GSI key writes no entry there
        with pytest.raises(ProvisionedThroughputExceededError):  # may reach the GSI: unknown entry
            c.call("DeleteItem", {"TableName": "gt", "Key": {"pk": {"S": "k1"}}})
    finally:
        c.close()


def test_from_env() -> None:
    assert not from_env(environ={}).on
    t = from_env(environ={"QUORUMDB_ENFORCE_CAPACITY": "1", "QUORUMDB_CAPACITY_TIME_SCALE": "100"})
    assert t.on
    a = t.clock()
    assert t.clock() >= a
    with pytest.raises(ValueError):
        from_env(environ={"QUORUMDB_CAPACITY_TIME_SCALE": "0"})


def test_transactions_cost_double_and_are_cancelled_whole(hot: Client, clock: FakeClock) -> None:
    def tx(*pks: str) -> dict[str, Any]:
        return hot.call("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": pk}}}} for pk in pks]})

    done = 0
    with pytest.raises(TransactionCanceledError) as exc:
        for i in range(1000):
            tx(f"a{i}", f"b{i}")  # 2 actions x 2 WCU
            done += 1
    assert done == 375  # 1,500 / 4
    reasons = exc.value.body()["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ProvisionedThroughputExceeded", "None"]
    assert reasons[0]["Message"] == TABLE_MESSAGE
    clock.now += 0.6  # 3 units: the first action fits, the second not; the first is given back
    writes = hot.db.writes
    with pytest.raises(TransactionCanceledError) as exc:
        tx("c1", "c2")
    assert [r["Code"] for r in exc.value.body()["CancellationReasons"]] == ["None", "ProvisionedThroughputExceeded"]
    assert hot.db.writes == writes
    clock.now += 0.3  # 4.5 units, the 3 given back among them
    tx("c1", "c2")
    got = hot.call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "t", "Key": {"pk": {"S": "c1"}}}}]})
    assert got["Responses"] == [{"Item": {"pk": {"S": "c1"}}}]
    reads = 1
    with pytest.raises(TransactionCanceledError):
        for _ in range(1000):
            hot.call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "t", "Key": {"pk": {"S": "c1"}}}}]})
            reads += 1
    assert reads == 750  # 1,500 RCU / 2


def test_partiql_statements_are_metered(hot: Client, clock: FakeClock) -> None:
    def insert(pk: str) -> dict[str, Any]:
        return hot.call("ExecuteStatement", {"Statement": f"INSERT INTO t VALUE {{'pk': '{pk}'}}"})

    done = 0
    with pytest.raises(ProvisionedThroughputExceededError):
        for i in range(2000):
            insert(f"i{i}")
            done += 1
    assert done == 1500
    clock.now += 1.0  # 5 units
    out = hot.call("BatchExecuteStatement", {"Statements": [
        {"Statement": f"INSERT INTO t VALUE {{'pk': 'b{i}'}}"} for i in range(7)]})
    codes = [r.get("Error", {}).get("Code") for r in out["Responses"]]
    assert codes == [None] * 5 + ["ProvisionedThroughputExceeded"] * 2
    with pytest.raises(TransactionCanceledError):
        hot.call("ExecuteTransaction", {"TransactStatements": [{"Statement": "INSERT INTO t VALUE {'pk': 'x'}"}]})
    select = {"Statement": "SELECT * FROM t WHERE pk = 'b0'", "ConsistentRead": True}
    reads = 0
    with pytest.raises(ProvisionedThroughputExceededError):
        for _ in range(2000):
            assert hot.call("ExecuteStatement", select)["Items"] == [{"pk": {"S": "b0"}}]
            reads += 1
    assert reads == 1500
    with pytest.raises(ProvisionedThroughputExceededError):
        hot.call("ExecuteStatement", {"Statement": "SELECT * FROM t"})  # a Scan
