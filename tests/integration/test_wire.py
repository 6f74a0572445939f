"""DynamoDB's wire details seen from outside a real server process: error ``__type``
namespaces as botocore parses them, request ids, Date, the health answer, and requests nested
deeper than Python's default recursion limit (answered, never a 500)."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.integration.helpers import TableFactory, against_quorumdb, expect_error, raw_request


@pytest.fixture(scope="module")
def table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


def test_error_namespaces_on_the_wire(endpoint: str, table: str) -> None:
    cases = [
        ("ListTables", b'{"Limit": 1000}', "com.amazon.coral.validate#ValidationException", "message"),
        ("ListTables", b'{"Limit": "x"}', "com.amazon.coral.service#SerializationException", "Message"),
        ("Bogus", b"{}", "com.amazon.coral.service#UnknownOperationException", None),
        ("DescribeTable", b'{"TableName": "it_wire_missing"}',
         "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message"),
    ]
    for op, body, typ, key in cases:
        status, headers, data = raw_request(endpoint, f"DynamoDB_20120810.{op}", body)
        assert status == 400
        parsed = json.loads(data)
        assert parsed["__type"] == typ
        assert (set(parsed) - {"__type"}) == (set() if key is None else {key}), parsed


def test_botocore_parses_every_error_code(ddb: Any, table: str) -> None:
    with expect_error("ValidationException"):
        ddb.list_tables(Limit=1000)
    with expect_error("ResourceNotFoundException"):
        ddb.describe_table(TableName="it_wire_missing")
    ddb.put_item(TableName=table, Item={"pk": {"S": "c"}})
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "c"}}, ConditionExpression="attribute_not_exists(pk)")

    def retarget(request: Any, **_: Any) -> None:
        request.headers["X-Amz-Target"] = "DynamoDB_20120810.NoSuchOperation"

    def retype(request: Any, **_: Any) -> None:
        request.data = b'{"Limit": true}'

    ddb.meta.events.register("before-sign.dynamodb.ListTables", retarget)
    try:
        with expect_error("UnknownOperationException"):
            ddb.list_tables()
    finally:
        ddb.meta.events.unregister("before-sign.dynamodb.ListTables", retarget)
    ddb.meta.events.register("before-sign.dynamodb.ListTables", retype)
    try:
        with expect_error("SerializationException", "TRUE_VALUE cannot be converted to Integer"):
            ddb.list_tables()
    finally:
        ddb.meta.events.unregister("before-sign.dynamodb.ListTables", retype)


def test_request_id_and_date_headers(endpoint: str) -> None:
    ids = set()
    for body in (b"{}", b"{bad"):
        status, headers, _ = raw_request(endpoint, "DynamoDB_20120810.ListTables", body)
        assert re.fullmatch(r"[A-Z0-9]{52}", headers["x-amzn-requestid"]), headers
        assert parsedate_to_datetime(headers["date"]).utcoffset() is not None
        ids.add(headers["x-amzn-requestid"])
    assert len(ids) == 2


def test_health_answer_and_other_paths(endpoint: str) -> None:
    url = urllib.parse.urlsplit(endpoint)
    cases = [("/", 200, b"healthy: dynamodb.us-east-1.amazonaws.com ")]
    if against_quorumdb():  # dynalite answers every GET path with the health text
        cases.append(("/nope", 404, b"<UnknownOperationException/>\n"))
    for path, status, body in cases:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read()
            assert (resp.status, data) == (status, body), path
        finally:
            conn.close()


def nested_item_body(table: str, levels: int, leaf: str) -> bytes:
    value = leaf
    for _ in range(levels):
        value = '{"M": {"a": ' + value + "}}"
    return ('{"TableName": "' + table + '", "Item": {"pk": {"S": "n"}, "m": ' + value + "}}").encode()


@pytest.mark.skipif(not against_quorumdb(), reason="QuorumDB's own recursion limits")
def test_deeply_nested_requests_are_answered(endpoint: str, table: str) -> None:
    # 505 levels: past Python's default recursion limit, within the JSON parser's.
    status, _, data = raw_request(endpoint, "DynamoDB_20120810.PutItem", nested_item_body(table, 505, '{"S": "x"}'))
    assert status == 400
    assert json.loads(data) == {
        "__type": "com.amazon.coral.validate#ValidationException",
        "message": "Nesting Levels have exceeded supported limits",
    }
    # A JSON type error at the bottom comes first, as DynamoDB deserializes before it validates.
    status, _, data = raw_request(endpoint, "DynamoDB_20120810.PutItem", nested_item_body(table, 505, '{"S": 5}'))
    assert status == 400
    assert json.loads(data)["__type"] == "com.amazon.coral.service#SerializationException"
    # 300 nested parentheses in a condition.
    cond = "(" * 300 + "attribute_not_exists(pk)" + ")" * 300
    payload = {"TableName": table, "Item": {"pk": {"S": "p"}}, "ConditionExpression": cond}
    status, _, data = raw_request(endpoint, "DynamoDB_20120810.PutItem", json.dumps(payload).encode())
    assert status in (200, 400), data
