"""Where Query and Scan cut a page: once the items read reach 1 MB (1,048,576 bytes, item sizes
as DynamoDB counts them), the item that reaches or crosses the boundary is the last one of the
page, and the next page starts after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_handlers_support import Client, make_table

from quorumdb.model.size import item_size

MB = 1024 * 1024


def sized_item(i: int, size: int) -> dict[str, Any]:
    """An item of exactly ``size`` bytes."""
    item: dict[str, Any] = {"pk": {"S": "p"}, "sk": {"N": str(i)}, "d": {"S": ""}}
    item["d"] = {"S": "x" * (size - item_size(item))}
    assert item_size(item) == size
    return item


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(make_table("t", hash_=("pk", "S"), range_=("sk", "N")))
    yield c
    c.close()


def fill(c: Client, sizes: list[int]) -> None:
    for i, size in enumerate(sizes):
        c.call("PutItem", {"TableName": "t", "Item": sized_item(i, size)})


def query(c: Client, **kw: Any) -> dict[str, Any]:
    req = {"TableName": "t", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}}
    return c.call("Query", {**req, **kw})


@pytest.mark.parametrize(
    ("sizes", "first_page"),
    [
        ([MB // 4] * 6, 4),  # 4 items are exactly 1 MB: the 4th reaches it and ends the page
        ([MB // 4 - 1] * 6, 5),  # 4 items are 4 bytes short: the 5th crosses and is included
        ([MB // 4 - 5] * 3 + [MB // 4 + 15] + [MB // 4] * 2, 4),  # the 4th fills 1 MB exactly
        ([MB // 4 - 5] * 3 + [MB // 4 + 14] + [100] * 2, 5),  # ... one byte less: the 5th crosses it
        ([300_000] * 3 + [MB - 900_000, 100, 50], 4),
    ],
)
def test_query_and_scan_cut_at_the_item_reaching_1_mb(client: Client, sizes: list[int], first_page: int) -> None:
    fill(client, sizes)
    for call in (lambda **kw: query(client, **kw), lambda **kw: client.call("Scan", {"TableName": "t", **kw})):
        out = call()
        assert out["Count"] == out["ScannedCount"] == first_page
        assert out["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"N": str(first_page - 1)}}
        rest = call(ExclusiveStartKey=out["LastEvaluatedKey"])
        assert [int(i["sk"]["N"]) for i in rest["Items"]] == list(range(first_page, len(sizes)))
        # counted before the filter too
        filtered = call(FilterExpression="attribute_not_exists(d)")
        assert filtered["Count"] == 0 and filtered["ScannedCount"] == first_page


def test_under_1_mb_is_one_page(client: Client) -> None:
    fill(client, [MB // 4] * 3 + [MB // 4 - 1])
    out = query(client)
    assert out["Count"] == 4 and "LastEvaluatedKey" not in out
