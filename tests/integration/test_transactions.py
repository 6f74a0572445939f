"""TransactWriteItems / TransactGetItems, black-box through boto3 against a real server process."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from tests.integration.helpers import expect_error


def item(pk: str, **attrs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"pk": {"S": pk}}
    for k, v in attrs.items():
        out[k] = {"N": str(v)} if isinstance(v, int) else {"S": v}
    return out


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def test_all_actions_across_tables_commit_together(ddb: Any, make_table: Any) -> None:
    t1, t2 = make_table(), make_table()
    ddb.put_item(TableName=t1, Item=item("upd", n=1))
    ddb.put_item(TableName=t2, Item=item("del", n=1))
    ddb.put_item(TableName=t2, Item=item("chk", state="open"))
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": t1, "Item": item("new", n=5), "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": t1, "Key": key("upd"), "UpdateExpression": "ADD n :d",
                        "ExpressionAttributeValues": {":d": {"N": "10"}}}},
            {"Delete": {"TableName": t2, "Key": key("del")}},
            {"ConditionCheck": {"TableName": t2, "Key": key("chk"), "ConditionExpression": "#s = :o",
                                "ExpressionAttributeNames": {"#s": "state"},
                                "ExpressionAttributeValues": {":o": {"S": "open"}}}},
        ]
    )
    assert ddb.get_item(TableName=t1, Key=key("new"))["Item"]["n"] == {"N": "5"}
    assert ddb.get_item(TableName=t1, Key=key("upd"))["Item"]["n"] == {"N": "11"}
    assert "Item" not in ddb.get_item(TableName=t2, Key=key("del"))


def test_failed_condition_cancels_everything_with_reasons_in_order(ddb: Any, make_table: Any) -> None:
    t = make_table()
    ddb.put_item(TableName=t, Item=item("a", n=1))
    ddb.put_item(TableName=t, Item=item("b", n=1))
    ddb.put_item(TableName=t, Item=item("d", n=1))
    with expect_error("TransactionCanceledException", "ConditionalCheckFailed") as box:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": t, "Item": item("c", n=1)}},
                {"Update": {"TableName": t, "Key": key("a"), "UpdateExpression": "SET n = :v",
                            "ExpressionAttributeValues": {":v": {"N": "2"}}}},
                {"ConditionCheck": {"TableName": t, "Key": key("b"), "ConditionExpression": "n = :x",
                                    "ExpressionAttributeValues": {":x": {"N": "99"}},
                                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Delete": {"TableName": t, "Key": key("d"), "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )
    reasons = box.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "ConditionalCheckFailed", "None"]
    assert reasons[2]["Item"] == item("b", n=1)
    assert "Item" not in reasons[0]
    assert "conditional request failed" in reasons[2]["Message"].lower()
    # Nothing applied.
    assert "Item" not in ddb.get_item(TableName=t, Key=key("c"))
    assert ddb.get_item(TableName=t, Key=key("a"))["Item"]["n"] == {"N": "1"}
    assert ddb.get_item(TableName=t, Key=key("b"))["Item"] == item("b", n=1)
    assert ddb.get_item(TableName=t, Key=key("d"))["Item"] == item("d", n=1)


def test_validation_limits(ddb: Any, make_table: Any) -> None:
    t = make_table()
    with expect_error("ValidationException", "multiple operations on one item"):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": item("x")}},
            {"Delete": {"TableName": t, "Key": key("x")}},
        ])
    with expect_error("ValidationException", "100"):
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": t, "Item": item(f"k{i}")}} for i in range(101)])
    with expect_error("ValidationException", "100"):
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": t, "Key": key(f"k{i}")}} for i in range(101)])
    with expect_error("ResourceNotFoundException"):
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": t + "_missing", "Item": item("x")}}])
    # A transaction of exactly 100 distinct actions is fine.
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": t, "Item": item(f"k{i}")}} for i in range(100)])
    assert ddb.scan(TableName=t, Select="COUNT")["Count"] == 100
    # Over 4 MB in total.
    big = "x" * 350_000
    with expect_error("ValidationException"):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": item(f"big{i}", data=big)}} for i in range(13)
        ])
    assert "Item" not in ddb.get_item(TableName=t, Key=key("big0"))


def test_client_request_token_idempotency(ddb: Any, make_table: Any) -> None:
    t = make_table()
    ddb.put_item(TableName=t, Item=item("ctr", n=0))
    token = uuid.uuid4().hex
    request = {
        "TransactItems": [{"Update": {"TableName": t, "Key": key("ctr"), "UpdateExpression": "ADD n :one",
                                      "ExpressionAttributeValues": {":one": {"N": "1"}}}}],
        "ClientRequestToken": token,
    }
    ddb.transact_write_items(**request)
    ddb.transact_write_items(**request)  # a retry: same outcome, not applied twice
    assert ddb.get_item(TableName=t, Key=key("ctr"))["Item"]["n"] == {"N": "1"}
    changed = {**request, "TransactItems": [{"Update": {**request["TransactItems"][0]["Update"],
                                                        "ExpressionAttributeValues": {":one": {"N": "2"}}}}]}
    with expect_error("IdempotentParameterMismatchException"):
        ddb.transact_write_items(**changed)
    assert ddb.get_item(TableName=t, Key=key("ctr"))["Item"]["n"] == {"N": "1"}


def test_transact_get_items(ddb: Any, make_table: Any) -> None:
    t1, t2 = make_table(), make_table()
    ddb.put_item(TableName=t1, Item=item("a", n=1, color="red"))
    ddb.put_item(TableName=t2, Item=item("b", n=2))
    out = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": t1, "Key": key("a"), "ProjectionExpression": "#c",
                     "ExpressionAttributeNames": {"#c": "color"}}},
            {"Get": {"TableName": t2, "Key": key("missing")}},
            {"Get": {"TableName": t2, "Key": key("b")}},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    assert out["Responses"][0] == {"Item": {"color": {"S": "red"}}}
    assert out["Responses"][1] == {}
    assert out["Responses"][2] == {"Item": item("b", n=2)}
    units = {c["TableName"]: c["CapacityUnits"] for c in out["ConsumedCapacity"]}
    assert units == {t1: 2.0, t2: 4.0}  # transactional reads cost double, missing items too


def test_transactional_capacity_is_double(ddb: Any, make_table: Any) -> None:
    t = make_table()
    out = ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": t, "Item": item(f"k{i}", data="x" * 1500)}} for i in range(3)],
        ReturnConsumedCapacity="TOTAL",
    )
    # 1.5 KB items are 2 WCU each; transactional writes cost double.
    assert len(out["ConsumedCapacity"]) == 1
    assert out["ConsumedCapacity"][0]["TableName"] == t
    assert out["ConsumedCapacity"][0]["CapacityUnits"] == 12.0


def test_concurrent_transfers_keep_the_total(ddb: Any, make_table: Any, endpoint: str) -> None:
    """Movers transfer amounts between accounts while readers sum every account; the total
    never changes in any read and is exact at the end."""
    from tests.integration.helpers import make_client

    accounts, start_balance = 40, 1000
    table = make_table(
        ("pk", "S"),
        ("acct", "N"),
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "acct", "AttributeType": "N"},
            {"AttributeName": "bank", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_bank",
            "KeySchema": [{"AttributeName": "bank", "KeyType": "HASH"}, {"AttributeName": "acct", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["balance"]},
        }],
    )
    acct_key = lambda i: {"pk": {"S": "bank"}, "acct": {"N": str(i)}}  # noqa: E731
    for i in range(accounts):
        ddb.put_item(TableName=table, Item={**acct_key(i), "bank": {"S": "b"}, "balance": {"N": str(start_balance)}})
    total = accounts * start_balance
    stop = threading.Event()
    stats = {"committed": 0, "cancelled": 0, "conflicts": 0, "reads": 0, "read_conflicts": 0}
    lock = threading.Lock()
    failures: list[str] = []
    duration_s = 8.0

    def mover(seed: int) -> None:
        c = make_client(endpoint)
        rng = random.Random(seed)
        while not stop.is_set():
            a, b = rng.sample(range(accounts), 2)
            amount = rng.randint(1, 400)
            try:
                c.transact_write_items(TransactItems=[
                    {"Update": {"TableName": table, "Key": acct_key(a), "UpdateExpression": "SET balance = balance - :m",
                                "ConditionExpression": "balance >= :m",
                                "ExpressionAttributeValues": {":m": {"N": str(amount)}}}},
                    {"Update": {"TableName": table, "Key": acct_key(b), "UpdateExpression": "SET balance = balance + :m",
                                "ExpressionAttributeValues": {":m": {"N": str(amount)}}}},
                ])
                with lock:
                    stats["committed"] += 1
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                with lock:
                    if code == "TransactionCanceledException":
                        stats["cancelled"] += 1
                    elif code == "TransactionConflictException":
                        stats["conflicts"] += 1
                    else:
                        failures.append(f"mover: {code} {exc}")
                        return

    def check(kind: str, balances: list[int]) -> None:
        with lock:
            stats["reads"] += 1
            if len(balances) != accounts or sum(balances) != total or min(balances) < 0:
                failures.append(f"{kind} saw {len(balances)} accounts summing to {sum(balances)}")

    def reader(kind: str) -> None:
        c = make_client(endpoint)
        while not stop.is_set():
            if kind == "transact_get":
                try:
                    out = c.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": acct_key(i)}}
                                                              for i in range(accounts)])
                except ClientError as exc:
                    # A read meeting transactions in progress may be cancelled (TransactionConflict),
                    # as DynamoDB's may.
                    reasons = [r["Code"] for r in exc.response.get("CancellationReasons", [])]
                    with lock:
                        if "TransactionConflict" in reasons:
                            stats["read_conflicts"] += 1
                        else:
                            failures.append(f"reader: {exc}")
                    continue
                check(kind, [int(r["Item"]["balance"]["N"]) for r in out["Responses"]])
            elif kind == "scan":
                out = c.scan(TableName=table, ConsistentRead=True)
                check(kind, [int(it["balance"]["N"]) for it in out["Items"]])
            elif kind == "query":
                out = c.query(TableName=table, KeyConditionExpression="pk = :b",
                              ExpressionAttributeValues={":b": {"S": "bank"}})
                check(kind, [int(it["balance"]["N"]) for it in out["Items"]])
            else:
                out = c.query(TableName=table, IndexName="by_bank", KeyConditionExpression="bank = :b",
                              ExpressionAttributeValues={":b": {"S": "b"}})
                check(kind, [int(it["balance"]["N"]) for it in out["Items"]])

    threads = [threading.Thread(target=mover, args=(s,)) for s in range(6)]
    threads += [threading.Thread(target=reader, args=(k,)) for k in ("transact_get", "scan", "query", "gsi_query")]
    for th in threads:
        th.start()
    time.sleep(duration_s)
    stop.set()
    for th in threads:
        th.join()
    final = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    balances = [int(it["balance"]["N"]) for it in final]
    print(f"\nconcurrent transfers: {stats} over {duration_s:.0f}s; final total {sum(balances)}")
    assert not failures, failures[:5]
    assert stats["committed"] > 0 and stats["reads"] > 0
    assert len(balances) == accounts and sum(balances) == total
