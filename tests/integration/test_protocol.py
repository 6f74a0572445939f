"""The HTTP/JSON 1.0 protocol seen raw (http.client, sockets): response headers and CRC32,
SerializationException for wrong JSON types, UnknownOperationException, required-member
validation, and malformed input (garbage, non-object JSON, 10,000-level nesting, oversized
bodies, huge Content-Length) — each refused with a DynamoDB error body, after which the server
still serves normal requests."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from typing import Any

import pytest

from tests.integration.helpers import (
    FAKE_AUTH,
    TableFactory,
    check_crc32,
    error_message,
    error_type,
    raw_call,
    raw_request,
)

KNOWN_ERRORS = {
    "ValidationException",
    "SerializationException",
    "UnknownOperationException",
    "ResourceNotFoundException",
    "MissingAuthenticationTokenException",
}


@pytest.fixture(scope="module")
def table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


def assert_still_serving(endpoint: str) -> None:
    status, headers, body = raw_request(endpoint, "DynamoDB_20120810.ListTables", b"{}")
    assert status == 200, body
    assert "TableNames" in json.loads(body)
    check_crc32(headers, body)


def assert_dynamo_error(status: int, headers: dict[str, str], body: bytes, expected_type: str | None = None) -> dict[str, Any]:
    assert 400 <= status < 500, (status, body[:300])
    parsed = json.loads(body)
    assert isinstance(parsed, dict) and "__type" in parsed, body[:300]
    assert error_type(parsed) in KNOWN_ERRORS, parsed
    if expected_type is not None:
        assert error_type(parsed) == expected_type, parsed
    assert headers.get("x-amzn-requestid"), headers
    check_crc32(headers, body)
    return parsed


def test_success_headers_and_crc32(endpoint: str) -> None:
    status, headers, body = raw_request(endpoint, "DynamoDB_20120810.ListTables", b'{"Limit": 5}')
    assert status == 200
    assert headers.get("x-amzn-requestid")
    check_crc32(headers, body)
    assert headers.get("content-type", "").startswith("application/x-amz-json-1.0")
    # Older SDKs send application/json; the answer follows their content type.
    status, headers, body = raw_request(endpoint, "DynamoDB_20120810.ListTables", b"{}", content_type="application/json")
    assert status == 200
    check_crc32(headers, body)


def test_request_ids_differ(endpoint: str) -> None:
    ids = {raw_request(endpoint, "DynamoDB_20120810.ListTables", b"{}")[1]["x-amzn-requestid"] for _ in range(5)}
    assert len(ids) == 5


def test_unknown_operation(endpoint: str) -> None:
    for target in ("DynamoDB_20120810.Bogus", "DynamoDB_20120810.", "Nonsense.ListTables", None):
        status, headers, body = raw_request(endpoint, target, b"{}")
        assert_dynamo_error(status, headers, body, "UnknownOperationException")
    assert_still_serving(endpoint)


@pytest.mark.parametrize(
    ("operation", "payload", "message"),
    [
        ("PutItem", {"TableName": 123, "Item": {"pk": {"S": "a"}}}, "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": 5}}}, "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": True}}}, "TRUE_VALUE cannot be converted to String"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": "a"}, "l": {"L": [{"M": {"x": {"N": False}}}]}}},
         "FALSE_VALUE cannot be converted to String"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": "a"}, "b": {"BOOL": 1.5}}},
         "DECIMAL_VALUE cannot be converted to Boolean"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": "x"}}, "Unexpected value type in payload"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": "a"}, "ss": {"SS": "a"}}}, "Unexpected field type"),
        ("PutItem", {"TableName": "t_x", "Item": {"pk": {"S": "a"}, "m": {"M": []}}}, "Unrecognized collection type"),
        ("ListTables", {"Limit": "10"}, "STRING_VALUE cannot be converted to Integer"),
        ("ListTables", {"Limit": [1]}, "Unrecognized collection type"),
        ("GetItem", {"TableName": "t_x", "Key": {"pk": {"S": "a"}}, "ConsistentRead": 3},
         "NUMBER_VALUE cannot be converted to Boolean"),
        ("Query", {"TableName": "t_x", "ExclusiveStartKey": {"pk": {"S": {"x": 1}}}},
         "Start of structure or map found where not expected"),
    ],
)
def test_serialization_exception_for_wrong_json_types(
    endpoint: str, operation: str, payload: Any, message: str
) -> None:
    status, headers, body = raw_request(endpoint, f"DynamoDB_20120810.{operation}", json.dumps(payload).encode())
    parsed = assert_dynamo_error(status, headers, body, "SerializationException")
    assert message in error_message(parsed), parsed


def test_invalid_base64_is_refused(endpoint: str, table: str) -> None:
    payload = {"TableName": table, "Item": {"pk": {"S": "a"}, "b": {"B": "!!!"}}}
    status, headers, body = raw_request(endpoint, "DynamoDB_20120810.PutItem", json.dumps(payload).encode())
    assert_dynamo_error(status, headers, body, "SerializationException")


@pytest.mark.parametrize(
    ("operation", "payload", "message"),
    [
        ("PutItem", {"Item": {"pk": {"S": "a"}}},
         "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"),
        ("GetItem", {},
         "2 validation errors detected: Value null at 'tableName' failed to satisfy constraint: Member must not be "
         "null; Value null at 'key' failed to satisfy constraint: Member must not be null"),
        ("ListTables", {"Limit": 0, "ExclusiveStartTableName": "a"},
         "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ("Scan", {"TableName": "t_x", "Select": "NOPE"},
         "Value 'NOPE' at 'select' failed to satisfy constraint: Member must satisfy enum value set"),
    ],
)
def test_required_members_and_constraints(endpoint: str, operation: str, payload: Any, message: str) -> None:
    status, headers, data = raw_call(endpoint, operation, payload)
    assert status == 400
    assert error_type(data) == "ValidationException"
    assert message in error_message(data), data


MALFORMED: list[tuple[str, bytes]] = [
    ("garbage", b"this is not json"),
    ("truncated", b'{"TableName": "abc", "Item": {'),
    ("binary", bytes(range(256))),
    ("empty", b""),
    ("array", b"[1, 2, 3]"),
    ("string", b'"PutItem"'),
    ("number", b"42"),
    ("null", b"null"),
    ("invalid utf8", b'{"TableName": "\xff\xfe"}'),
    ("nested arrays", b"[" * 10_000 + b"]" * 10_000),
    ("nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("nested attribute", b'{"TableName": "abc", "Item": {"pk": {"S": "a"}, "m": '
     + b'{"M": {"a": ' * 10_000 + b'{"S": "x"}' + b"}}" * 10_000 + b"}}"),
]


LENIENT = {"empty", "array", "string", "number", "null"}


# dynalite deviates: a body of JSON null crashes it (TypeError), and it waits for the whole
# announced Content-Length before answering.
@pytest.mark.parametrize(("label", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_refused(endpoint: str, label: str, body: bytes) -> None:
    for op in ("PutItem", "ListTables"):
        status, headers, data = raw_request(endpoint, f"DynamoDB_20120810.{op}", body)
        if label in LENIENT and op == "ListTables" and status == 200:
            # Whether DynamoDB reads a bare JSON scalar or list as {} for an operation without
            # required members is not known; either answer is acceptable, a crash is not.
            continue
        assert_dynamo_error(status, headers, data)
    assert_still_serving(endpoint)


def test_deeply_nested_item_in_existing_table(endpoint: str, table: str) -> None:
    body = (
        b'{"TableName": "' + table.encode() + b'", "Item": {"pk": {"S": "deep"}, "m": '
        + b'{"L": [' * 5_000 + b'{"S": "x"}' + b"]}" * 5_000 + b"}}"
    )
    status, headers, data = raw_request(endpoint, "DynamoDB_20120810.PutItem", body)
    assert_dynamo_error(status, headers, data)
    assert_still_serving(endpoint)


def test_oversized_item_and_long_names(endpoint: str, table: str) -> None:
    status, headers, data = raw_request(
        endpoint, "DynamoDB_20120810.PutItem",
        json.dumps({"TableName": table, "Item": {"pk": {"S": "big"}, "d": {"S": "x" * 500_000}}}).encode(),
    )
    parsed = assert_dynamo_error(status, headers, data, "ValidationException")
    assert "Item size has exceeded the maximum allowed size" in error_message(parsed)
    status, headers, data = raw_request(
        endpoint, "DynamoDB_20120810.DescribeTable", json.dumps({"TableName": "t" * 100_000}).encode()
    )
    assert_dynamo_error(status, headers, data, "ValidationException")
    # Non-key attribute names are limited to 64 KB. dynalite deviates: it has no such limit.
    status, headers, data = raw_request(
        endpoint, "DynamoDB_20120810.PutItem",
        json.dumps({"TableName": table, "Item": {"pk": {"S": "a"}, "n" * 70_000: {"S": "v"}}}).encode(),
    )
    assert_dynamo_error(status, headers, data, "ValidationException")
    assert_still_serving(endpoint)


def test_body_over_16_mb_is_refused(endpoint: str) -> None:
    body = json.dumps({"TableName": "abc", "Item": {"pk": {"S": "x" * (17 * 1024 * 1024)}}}).encode()
    try:
        status, _, data = raw_request(endpoint, "DynamoDB_20120810.PutItem", body, timeout=60)
    except (ConnectionError, BrokenPipeError):
        status, data = 413, b""  # the server may close the connection while we still send
    assert 400 <= status < 500, (status, data[:200])
    assert_still_serving(endpoint)


def test_huge_content_length_is_refused_without_reading(endpoint: str) -> None:
    # Only the headers and one byte are sent: a server that waited for 20 MB would hang here.
    url = urllib.parse.urlsplit(endpoint)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=15)
    try:
        sock.sendall(
            b"POST / HTTP/1.1\r\n"
            b"Host: " + (url.netloc.encode()) + b"\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: DynamoDB_20120810.PutItem\r\n"
            b"X-Amz-Date: 20240101T000000Z\r\n"
            b"Authorization: " + FAKE_AUTH.encode() + b"\r\n"
            b"Content-Length: 20000000\r\n\r\n{"
        )
        resp = http.client.HTTPResponse(sock)
        resp.begin()  # the socket timeout bounds the wait
        data = resp.read() if resp.status != 413 or resp.getheader("Content-Length") else b""
        assert 400 <= resp.status < 500, resp.status
        if data:
            parsed = json.loads(data)
            assert "__type" in parsed
    finally:
        sock.close()
    assert_still_serving(endpoint)


def test_keep_alive_serves_many_requests_on_one_connection(endpoint: str) -> None:
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
    try:
        for i in range(20):
            body = b"{}" if i % 2 == 0 else b"not json"
            conn.request("POST", "/", body=body, headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "X-Amz-Date": "20240101T000000Z",
                "Authorization": FAKE_AUTH,
            })
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == (200 if i % 2 == 0 else 400), data
            check_crc32({k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def _connect(endpoint: str) -> tuple[socket.socket, str]:
    url = urllib.parse.urlsplit(endpoint)
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=15), url.netloc


def _request_bytes(netloc: str, body: bytes, target: str = "DynamoDB_20120810.ListTables") -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: " + netloc.encode() + b"\r\n"
        b"Content-Type: application/x-amz-json-1.0\r\n"
        b"X-Amz-Target: " + target.encode() + b"\r\n"
        b"X-Amz-Date: 20240101T000000Z\r\n"
        b"Authorization: " + FAKE_AUTH.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def _read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while True:
        line = stream.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, stream.read(int(headers["content-length"]))


def test_health_check_get(endpoint: str) -> None:
    # DynamoDB answers a plain GET / with "healthy: dynamodb.<region>.amazonaws.com " (health
    # checkers of local DynamoDB stand-ins rely on it); the host part names the server.
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        assert body.startswith(b"healthy: "), body
    finally:
        conn.close()


def test_chunked_request_body(endpoint: str) -> None:
    sock, netloc = _connect(endpoint)
    try:
        body = b'{"Limit": 3}'
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: " + netloc.encode() + b"\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n"
            b"X-Amz-Date: 20240101T000000Z\r\n"
            b"Authorization: " + FAKE_AUTH.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % 5 + body[:5] + b"\r\n"
            + b"%x\r\n" % (len(body) - 5) + body[5:] + b"\r\n0\r\n\r\n"
        )
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
        assert resp.status == 200, data
        assert "TableNames" in json.loads(data)
    finally:
        sock.close()


def test_pipelined_requests_are_answered_in_order(endpoint: str) -> None:
    sock, netloc = _connect(endpoint)
    try:
        sock.sendall(
            _request_bytes(netloc, b'{"Limit": 1}')
            + _request_bytes(netloc, b"garbage")
            + _request_bytes(netloc, b"{}", "DynamoDB_20120810.Bogus")
        )
        statuses = []
        types = []
        stream = sock.makefile("rb")  # one buffered reader: responses may arrive in one segment
        for _ in range(3):
            status, headers, data = _read_response(stream)
            check_crc32(headers, data)
            statuses.append(status)
            types.append(error_type(json.loads(data)) if status != 200 else "")
        assert statuses == [200, 400, 400]
        assert types == ["", "SerializationException", "UnknownOperationException"]
    finally:
        sock.close()


def test_stalled_and_dropped_clients_do_not_block_others(endpoint: str) -> None:
    # dynalite deviates: a client that disconnects mid-request crashes it.
    stalled = []
    try:
        for _ in range(20):
            sock, netloc = _connect(endpoint)
            # Half a request: headers promise a body that never comes.
            sock.sendall(_request_bytes(netloc, b'{"Limit": 1}')[:-5])
            stalled.append(sock)
        for _ in range(20):
            sock, netloc = _connect(endpoint)
            sock.sendall(_request_bytes(netloc, b'{"Limit": 1}')[:40])
            sock.close()  # dropped mid-request
        assert_still_serving(endpoint)  # raw_request's timeout bounds the wait
    finally:
        for sock in stalled:
            sock.close()
    assert_still_serving(endpoint)
