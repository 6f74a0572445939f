"""Black-box: LSI item collections (limit, ItemCollectionMetrics) and ClientRequestToken across a
restart, against private server processes.

The server is started with QUORUMDB_ITEM_COLLECTION_LIMIT_BYTES set low so the 10 GB limit's
behaviour can be seen with a few kilobytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import make_client, wait_active

LIMIT = 4096
TABLE = "colls"


def create_lsi_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "lsk", "AttributeType": "S"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_lsk",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lsk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    wait_active(client, TABLE)


def item(pk: str, sk: int, size: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, "lsk": {"S": "l"}, "filler": {"S": "x" * size}}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_item_collection_limit_and_metrics(own_server_factory: Any, tmp_path: Path) -> None:
    server = own_server_factory(tmp_path / "data", QUORUMDB_ITEM_COLLECTION_LIMIT_BYTES=str(LIMIT))
    client = make_client(server.endpoint)
    create_lsi_table(client)
    out = client.put_item(TableName=TABLE, Item=item("a", 0, 500), ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"] == {
        "ItemCollectionKey": {"pk": {"S": "a"}},
        "SizeEstimateRangeGB": [0.0, 1.0],
    }
    sk = 1
    with pytest.raises(ClientError) as exc:
        while sk < 50:
            client.put_item(TableName=TABLE, Item=item("a", sk, 500))
            sk += 1
    assert error_of(exc) == ("ItemCollectionSizeLimitExceededException", "Collection size exceeded.")
    assert 3 <= sk < 10
    # The refused item was not written, nor its index entry.
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"N": str(sk)}})
    lsi = client.query(TableName=TABLE, IndexName="by_lsk", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "a"}}, Select="COUNT")
    assert lsi["Count"] == sk

    # UpdateItem that grows the collection is refused; one that shrinks it is not.
    with pytest.raises(ClientError) as exc:
        client.update_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"N": "0"}},
                           UpdateExpression="SET more = :m", ExpressionAttributeValues={":m": {"S": "y" * 2000}})
    assert error_of(exc)[0] == "ItemCollectionSizeLimitExceededException"
    out = client.update_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"N": "0"}}, UpdateExpression="REMOVE filler",
                             ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"]["ItemCollectionKey"] == {"pk": {"S": "a"}}

    # BatchWriteItem: the over-limit request fails the call.
    with pytest.raises(ClientError) as exc:
        client.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": item("b", 0, 10)}},
            {"PutRequest": {"Item": item("a", 100, 3000)}},
        ]})
    assert error_of(exc)[0] == "ItemCollectionSizeLimitExceededException"
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"N": "100"}})
    out = client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item("c", 0, 10)}},
                                                        {"DeleteRequest": {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}]},
                                  ReturnItemCollectionMetrics="SIZE")
    assert sorted(m["ItemCollectionKey"]["pk"]["S"] for m in out["ItemCollectionMetrics"][TABLE]) == ["a", "c"]

    # TransactWriteItems: cancelled with the reason code; nothing of it applied.
    with pytest.raises(ClientError) as exc:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("d", 0, 10)}},
            {"Put": {"TableName": TABLE, "Item": item("a", 101, 3000)}},
        ])
    assert exc.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = exc.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ItemCollectionSizeLimitExceeded"]
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "d"}, "sk": {"N": "0"}})
    out = client.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": item("d", 0, 10)}},
        {"Put": {"TableName": TABLE, "Item": item("d", 1, 10)}},
        {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "c"}, "sk": {"N": "0"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ], ReturnItemCollectionMetrics="SIZE")
    assert out["ItemCollectionMetrics"] == {TABLE: [{"ItemCollectionKey": {"pk": {"S": "d"}}, "SizeEstimateRangeGB": [0.0, 1.0]}]}


def test_client_request_token_survives_restart(own_server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = own_server_factory(data_dir)
    client = make_client(server.endpoint)
    create_lsi_table(client)
    actions = [{"Update": {"TableName": TABLE, "Key": {"pk": {"S": "n"}, "sk": {"N": "0"}},
                           "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    client.transact_write_items(TransactItems=actions, ClientRequestToken="retry-me")
    server.stop()
    restarted = own_server_factory(data_dir)
    client = make_client(restarted.endpoint)
    out = client.transact_write_items(TransactItems=actions, ClientRequestToken="retry-me", ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"][0].get("ReadCapacityUnits") == 2.0  # a replay reads, it does not write
    got = client.get_item(TableName=TABLE, Key={"pk": {"S": "n"}, "sk": {"N": "0"}})["Item"]
    assert got["n"] == {"N": "1"}
    with pytest.raises(ClientError) as exc:
        client.transact_write_items(TransactItems=[{"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "n"}, "sk": {"N": "0"}}}}],
                                    ClientRequestToken="retry-me")
    assert exc.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
