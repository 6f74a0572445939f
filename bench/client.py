"""A minimal DynamoDB JSON client for setup work (tables, preloading): http.client, keep-alive.

Used only to prepare a target before the load generator runs; it checks every answer.
"""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Date": "20260101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDBENCHMARK/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
}

PAYLOAD = "x" * 160


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        for attempt in range(3):
            try:
                self.conn.request("POST", "/", data, {**HEADERS, "X-Amz-Target": f"DynamoDB_20120810.{op}"})
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # moto closes the connection after every response.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        out = json.loads(raw) if raw else {}
        if resp.status != 200:
            raise RuntimeError(f"{op} failed: {resp.status} {raw[:300]!r}")
        return out

    def close(self) -> None:
        self.conn.close()


def key(i: int) -> str:
    return f"user{i:08d}"


def create_tables(port: int) -> None:
    c = Client(port)
    specs = [
        ("bench_kv", [("pk", "S", "HASH")]),
        ("bench_q", [("pk", "S", "HASH"), ("sk", "N", "RANGE")]),
        ("bench_batch", [("pk", "S", "HASH")]),
    ]
    for name, keys in specs:
        c.call("CreateTable", {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t, _ in keys],
            "KeySchema": [{"AttributeName": n, "KeyType": k} for n, _, k in keys],
            "BillingMode": "PAY_PER_REQUEST",
        })
    for name, _ in specs:
        for _ in range(600):
            if c.call("DescribeTable", {"TableName": name})["Table"]["TableStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
    c.close()


def _load_chunk(port: int, table: str, items: list[dict[str, Any]]) -> None:
    c = Client(port)
    for i in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]}
        while pending:
            out = c.call("BatchWriteItem", {"RequestItems": pending})
            pending = out.get("UnprocessedItems") or {}
    c.close()


def preload(port: int, kv_items: int, query_keys: int, threads: int = 8) -> float:
    """Load ``kv_items`` items into bench_kv and ``query_keys`` x 10 into bench_q; returns seconds."""
    t0 = time.monotonic()
    kv = [{"pk": {"S": key(i)}, "data": {"S": PAYLOAD}, "n": {"N": str(i)}} for i in range(kv_items)]
    q = [{"pk": {"S": key(i)}, "sk": {"N": str(j)}, "data": {"S": PAYLOAD}}
         for i in range(query_keys) for j in range(10)]
    jobs: list[tuple[str, list[dict[str, Any]]]] = []
    step = max(25, len(kv) // (threads * 4) // 25 * 25)
    jobs += [("bench_kv", kv[i:i + step]) for i in range(0, len(kv), step)]
    jobs += [("bench_q", q[i:i + step]) for i in range(0, len(q), step)]
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(_load_chunk, port, t, items) for t, items in jobs]:
            f.result()
    # Spot-check the load.
    c = Client(port)
    got = c.call("GetItem", {"TableName": "bench_kv", "Key": {"pk": {"S": key(kv_items - 1)}}})
    assert got.get("Item", {}).get("n") == {"N": str(kv_items - 1)}, got
    got = c.call("Query", {"TableName": "bench_q", "KeyConditionExpression": "pk = :p",
                           "ExpressionAttributeValues": {":p": {"S": key(query_keys - 1)}}})
    assert got["Count"] == 10, got
    c.close()
    return time.monotonic() - t0
