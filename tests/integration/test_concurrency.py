"""Concurrent clients against one server: read-modify-writes are atomic (no lost ADD), a
conditional put-if-absent has exactly one winner, optimistic locking with a version attribute
loses no update, and expression size limits hold."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import TableFactory, expect_error, make_client


@pytest.fixture(scope="module")
def table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


def test_concurrent_add_loses_nothing(endpoint: str, table: str, ddb: Any) -> None:
    clients = [make_client(endpoint) for _ in range(8)]

    def work(i: int) -> None:
        c = clients[i % len(clients)]
        c.update_item(
            TableName=table, Key={"pk": {"S": "counter"}}, UpdateExpression="ADD n :one, s :me",
            ExpressionAttributeValues={":one": {"N": "1"}, ":me": {"SS": [f"w{i}"]}},
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(400)))
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "400"}
    assert len(item["s"]["SS"]) == 400


def test_put_if_absent_has_one_winner(endpoint: str, table: str, ddb: Any) -> None:
    clients = [make_client(endpoint) for _ in range(10)]
    barrier = threading.Barrier(10)
    results: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            clients[i].put_item(
                TableName=table, Item={"pk": {"S": "race"}, "winner": {"N": str(i)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            outcome = f"won:{i}"
        except ClientError as exc:
            outcome = exc.response["Error"]["Code"]
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [r for r in results if r.startswith("won:")]
    assert len(winners) == 1, results
    assert sorted(set(results) - set(winners)) == ["ConditionalCheckFailedException"]
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "race"}}, ConsistentRead=True)["Item"]
    assert winners == [f"won:{item['winner']['N']}"]


def test_optimistic_locking_loses_no_update(endpoint: str, table: str, ddb: Any) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": "versioned"}, "version": {"N": "0"}, "log": {"L": []}})
    clients = [make_client(endpoint) for _ in range(4)]

    def worker(w: int) -> int:
        c = clients[w]
        done = 0
        while done < 15:
            cur = c.get_item(TableName=table, Key={"pk": {"S": "versioned"}}, ConsistentRead=True)["Item"]
            version = cur["version"]["N"]
            try:
                c.update_item(
                    TableName=table, Key={"pk": {"S": "versioned"}},
                    UpdateExpression="SET version = :next, #log = list_append(#log, :entry)",
                    ConditionExpression="version = :cur",
                    ExpressionAttributeNames={"#log": "log"},
                    ExpressionAttributeValues={
                        ":cur": {"N": version}, ":next": {"N": str(int(version) + 1)},
                        ":entry": {"L": [{"S": f"{w}:{done}"}]},
                    },
                )
                done += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return done

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(worker, range(4))) == 60
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "versioned"}}, ConsistentRead=True)["Item"]
    assert item["version"] == {"N": "60"}
    assert len(item["log"]["L"]) == 60
    assert len({e["S"] for e in item["log"]["L"]}) == 60


def test_expression_limits(ddb: Any, table: str) -> None:
    # dynalite deviates: it limits neither IN operands nor expression size.
    values = {f":v{i}": {"N": str(i)} for i in range(101)}
    in_list = ", ".join(values)
    with expect_error("ValidationException", "The IN operator is provided with too many operands; number of operands: 101"):
        ddb.put_item(
            TableName=table, Item={"pk": {"S": "limits"}}, ConditionExpression=f"n IN ({in_list})",
            ExpressionAttributeValues=values,
        )
    hundred = dict(list(values.items())[:100])
    ddb.put_item(
        TableName=table, Item={"pk": {"S": "limits"}}, ConditionExpression=f"n IN ({', '.join(hundred)}) OR attribute_not_exists(n)",
        ExpressionAttributeValues=hundred,
    )
    long_expr = " OR ".join(["attribute_not_exists(abcdefghijklmnopqrst)"] * 120)
    assert len(long_expr.encode()) > 4096
    with expect_error("ValidationException", "Expression size has exceeded the maximum allowed size"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "limits"}}, ConditionExpression=long_expr)
