"""Properties of the read handlers: pagination never loses, repeats or misorders items."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_handlers_support import Client, make_table

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sort_keys = st.lists(
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False),
    min_size=0,
    max_size=25,
    unique_by=lambda d: d.normalize(),
)


def _all_pages(c: Client, op: str, req: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    items: list[dict[str, Any]] = []
    count = scanned = 0
    start = None
    for _ in range(200):
        r = dict(req)
        if start is not None:
            r["ExclusiveStartKey"] = start
        out = c.call(op, r)
        items += out.get("Items", [])
        count += out["Count"]
        scanned += out["ScannedCount"]
        start = out.get("LastEvaluatedKey")
        if start is None:
            return items, count, scanned
    raise AssertionError("pagination did not end")


@_SETTINGS
@given(sks=sort_keys, limit=st.integers(1, 8), forward=st.booleans(), modulus=st.integers(1, 3))
def test_query_pages_cover_the_partition_in_order(
    sks: list[Decimal], limit: int, forward: bool, modulus: int
) -> None:
    c = Client(make_table("t", hash_=("pk", "S"), range_=("sk", "N")))
    try:
        for i, sk in enumerate(sks):
            c.call("PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"N": str(sk)}, "i": {"N": str(i)}}})
            c.call("PutItem", {"TableName": "t", "Item": {"pk": {"S": "other"}, "sk": {"N": str(sk)}}})
        req = {
            "TableName": "t",
            "KeyConditionExpression": "pk = :p",
            "FilterExpression": "i >= :zero",
            "ExpressionAttributeValues": {":p": {"S": "p"}, ":zero": {"N": "0"}},
            "Limit": limit,
            "ScanIndexForward": forward,
        }
        items, count, scanned = _all_pages(c, "Query", req)
        got = [Decimal(i["sk"]["N"]) for i in items]
        assert got == sorted(sks, reverse=not forward)
        assert count == scanned == len(sks)
        # A filter that keeps every modulus-th item: Count shrinks, ScannedCount does not.
        odd = {**req, "FilterExpression": "i IN (" + ", ".join(f":v{j}" for j in range(0, 25, modulus)) + ")",
               "ExpressionAttributeValues": {":p": {"S": "p"}, **{f":v{j}": {"N": str(j)} for j in range(0, 25, modulus)}}}
        items, count, scanned = _all_pages(c, "Query", odd)
        assert scanned == len(sks)
        assert count == len(items) == len([j for j in range(len(sks)) if j % modulus == 0])
    finally:
        c.close()


@_SETTINGS
@given(n=st.integers(0, 40), limit=st.integers(1, 9), total=st.integers(1, 5))
def test_parallel_scan_pages_see_every_item_once(n: int, limit: int, total: int) -> None:
    c = Client(make_table("h", hash_=("pk", "S")))
    try:
        for i in range(n):
            c.call("PutItem", {"TableName": "h", "Item": {"pk": {"S": f"k{i}"}}})
        seen: list[str] = []
        for seg in range(total):
            req: dict[str, Any] = {"TableName": "h", "Limit": limit}
            if total > 1:
                req.update(Segment=seg, TotalSegments=total)
            items, count, _ = _all_pages(c, "Scan", req)
            assert count == len(items)
            seen += [i["pk"]["S"] for i in items]
        assert sorted(seen) == sorted(f"k{i}" for i in range(n))
    finally:
        c.close()
