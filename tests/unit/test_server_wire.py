"""Wire details of the HTTP shell, against in-process servers: DynamoDB's health answer, 404s,
request-line limits, compressed request and response bodies, and SigV4 checking (``--auth``)
seen through boto3 and through raw requests."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.awsrequest
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_server_fakes import ThreadedServer
from test_server_http import Reader, Response, check_headers, create_body, request

from quorumdb.api.auth import AccessKey, Verifier
from quorumdb.api.server import (
    _DEFLATE,
    _GZIP,
    _UNSUPPORTED_ENCODING,
    GZIP_MIN_BYTES,
    MAX_BODY_BYTES,
    MAX_URL_BYTES,
    accepts_gzip,
    decode_body,
)
from quorumdb.errors import RequestEntityTooLargeError, SerializationError

AKID, SECRET = "AKIDWIRETEST", "wireSecret"


@pytest.fixture(scope="module")
def srv() -> Iterator[ThreadedServer]:
    with ThreadedServer() as s:
        yield s


@pytest.fixture(scope="module")
def auth_srv() -> Iterator[ThreadedServer]:
    with ThreadedServer(verifier=Verifier({AKID: AccessKey(access_key_id=AKID, secret=SECRET)})) as s:
        yield s


def exchange(srv: ThreadedServer, data: bytes) -> Response:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(data)
        return Reader(sock).read()


def client(srv: ThreadedServer, akid: str = AKID, secret: str = SECRET) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{srv.port}",
        region_name="us-east-1",
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


# -- health, paths, limits -----------------------------------------------------------------------


def test_get_slash_is_dynamodbs_health_answer(srv: ThreadedServer) -> None:
    r = exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200
    assert r.body == b"healthy: dynamodb.us-east-1.amazonaws.com "
    assert int(r.headers["x-amz-crc32"]) == zlib.crc32(r.body) == 3128867991  # DynamoDB's own crc
    r = exchange(srv, b"GET /?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200 and r.body.startswith(b"healthy: ")


@pytest.mark.parametrize("line", [b"GET /other", b"HEAD /x/y", b"PUT /", b"DELETE /", b"PATCH /", b"OPTIONS /"])
def test_other_paths_and_methods_are_404(srv: ThreadedServer, line: bytes) -> None:
    r = exchange(srv, line + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 404
    if not line.startswith(b"HEAD"):
        assert r.body == b"<UnknownOperationException/>\n"
    assert r.headers["x-amzn-requestid"]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-amz-json-1.0", b"{}", 200),
        ("application/json", b"{}", 200),
        ("Application/JSON; charset=utf-8", b"{}", 200),
        ("text/plain", b"{}", 404),
        ("application/x-www-form-urlencoded", b"{}", 404),  # curl -d
        (None, b"{}", 404),
        ("text/plain", b"", 400),  # no body: the operation's SerializationException
    ],
)
def test_post_content_types(srv: ThreadedServer, content_type: str | None, body: bytes, status: int) -> None:
    head = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    r = exchange(srv, head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert r.status == status, r.body
    if status == 404:
        assert r.body == b"<UnknownOperationException/>\n"
    if status == 200:
        expected = "application/json" if "json" in (content_type or "").lower() and "amz" not in content_type else None
        assert r.headers["content-type"] == (expected or "application/x-amz-json-1.0")


def test_request_ids_and_date_on_every_answer(srv: ThreadedServer) -> None:
    for data in (request("ListTables", b"{}"), request("Nope", b"{}"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        r = exchange(srv, data)
        assert len(r.headers["x-amzn-requestid"]) == 52 and r.headers["x-amzn-requestid"].isalnum()
        assert r.headers["x-amzn-requestid"].upper() == r.headers["x-amzn-requestid"]
        assert r.headers["date"].endswith(" GMT")


@pytest.mark.parametrize("size", [MAX_URL_BYTES + 10, 70 * 1024])
def test_overlong_request_target_is_414(srv: ThreadedServer, size: int) -> None:
    r = exchange(srv, b"POST /" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert r.status == 414
    body = json.loads(r.body)
    assert body["__type"] == "com.amazon.coral.service#SerializationException"
    assert r.headers.get("connection") == "close"


def test_overlong_request_target_in_pieces_is_414(srv: ThreadedServer) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /")
        for _ in range(MAX_URL_BYTES // 1000 + 2):
            sock.sendall(b"b" * 1000)
        assert Reader(sock).read().status == 414


def test_long_url_under_the_limit_is_served(srv: ThreadedServer) -> None:
    r = exchange(srv, b"GET /?" + b"q" * (MAX_URL_BYTES - 100) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200


def test_oversized_header_block_is_431(srv: ThreadedServer) -> None:
    big = b"X-Big: " + b"v" * 70_000 + b"\r\n"
    r = exchange(srv, b"POST / HTTP/1.1\r\nHost: x\r\n" + big + b"Content-Length: 2\r\n\r\n{}")
    assert r.status == 431


# -- errors on the wire (boto3 parses each code) -------------------------------------------------


def test_error_types_on_the_wire_and_through_boto3(srv: ThreadedServer) -> None:
    r = exchange(srv, request("ListTables", b'{"Limit": 1000}'))
    assert json.loads(r.body)["__type"] == "com.amazon.coral.validate#ValidationException"
    r = exchange(srv, request("ListTables", b'{"Limit": "x"}'))
    assert json.loads(r.body) == {
        "__type": "com.amazon.coral.service#SerializationException",
        "Message": "STRING_VALUE cannot be converted to Integer",
    }
    r = exchange(srv, request("ListTables", b"{nope"))
    assert json.loads(r.body) == {"__type": "com.amazon.coral.service#SerializationException"}
    r = exchange(srv, request("Bogus", b"{}"))
    assert json.loads(r.body) == {"__type": "com.amazon.coral.service#UnknownOperationException"}
    r = exchange(srv, request("DescribeTable", b'{"TableName": "missing"}'))
    assert json.loads(r.body)["__type"] == "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"

    c = client(srv)
    with pytest.raises(ClientError) as exc:
        c.list_tables(Limit=1000)
    assert error_code(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        c.describe_table(TableName="missing")
    assert error_code(exc)[0] == "ResourceNotFoundException"


def test_boto3_reads_serialization_exception_message(srv: ThreadedServer) -> None:
    c = client(srv)

    def bad_limit(request: botocore.awsrequest.AWSRequest, **_: Any) -> None:
        request.data = b'{"Limit": "ten"}'

    c.meta.events.register("before-sign.dynamodb.ListTables", bad_limit)
    with pytest.raises(ClientError) as exc:
        c.list_tables()
    assert error_code(exc) == ("SerializationException", "STRING_VALUE cannot be converted to Integer", 400)


# -- compressed requests -------------------------------------------------------------------------


def test_decode_body() -> None:
    data = b'{"TableName": "x"}' * 100
    assert decode_body(gzip.compress(data), _GZIP) == data
    assert decode_body(gzip.compress(data[:50]) + gzip.compress(data[50:]), _GZIP) == data  # two members
    assert decode_body(zlib.compress(data), _DEFLATE) == data
    raw = zlib.compressobj(wbits=-15)
    assert decode_body(raw.compress(data) + raw.flush(), _DEFLATE) == data
    for broken in (b"not gzip", gzip.compress(data)[:-10], gzip.compress(data) + b"junk"):
        with pytest.raises(SerializationError):
            decode_body(broken, _GZIP)
    with pytest.raises(SerializationError):
        decode_body(zlib.compress(data) + b"junk", _DEFLATE)
    with pytest.raises(SerializationError):
        decode_body(data, _UNSUPPORTED_ENCODING)
    bomb = gzip.compress(b"\0" * (MAX_BODY_BYTES + 1))
    assert len(bomb) < 100_000
    with pytest.raises(RequestEntityTooLargeError):
        decode_body(bomb, _GZIP)
    assert len(decode_body(gzip.compress(b" " * MAX_BODY_BYTES), _GZIP)) == MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("coding", "squeeze"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("x-gzip", gzip.compress)],
)
def test_compressed_request_bodies(srv: ThreadedServer, coding: str, squeeze: Any) -> None:
    body = squeeze(create_body(f"enc_{coding.replace('-', '_')}"))
    r = exchange(srv, request("CreateTable", body, extra=f"Content-Encoding: {coding}\r\n"))
    assert r.status == 200, r.body
    assert json.loads(r.body)["TableDescription"]["TableStatus"] == "CREATING"  # as DynamoDB answers CreateTable


def test_broken_or_unknown_compression_is_a_400_and_the_connection_lives_on(srv: ThreadedServer) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        rd = Reader(sock)
        for body, coding in (
            (b"\x1f\x8b garbage", "gzip"),
            (gzip.compress(b'{"a": 1}')[:-4], "gzip"),
            (b"{}", "br"),
        ):
            sock.sendall(request("ListTables", body, extra=f"Content-Encoding: {coding}\r\n"))
            r = rd.read()
            assert r.status == 400, r.body
            check_headers(r)
            assert json.loads(r.body)["__type"] == "com.amazon.coral.service#SerializationException"
        sock.sendall(request("ListTables", gzip.compress(b"{}"), extra="Content-Encoding: gzip\r\n"))
        assert rd.read().status == 200


def test_compressed_request_inflating_past_16_mb_is_413(srv: ThreadedServer) -> None:
    bomb = gzip.compress(b'{"TableName": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}')
    r = exchange(srv, request("DescribeTable", bomb, extra="Content-Encoding: gzip\r\n"))
    assert r.status == 413
    assert json.loads(r.body)["__type"] == "com.amazon.coral.service#RequestEntityTooLargeException"


def test_boto3_with_a_gzipped_request_body(srv: ThreadedServer, auth_srv: ThreadedServer) -> None:
    # botocore compresses only operations its model marks (DynamoDB's are not), so compress
    # before signing, as a client that does would: the signature covers the gzipped bytes.
    for s in (srv, auth_srv):
        c = client(s)

        def squeeze(request: botocore.awsrequest.AWSRequest, **_: Any) -> None:
            request.data = gzip.compress(request.body)
            request.headers["Content-Encoding"] = "gzip"

        c.meta.events.register("before-sign.dynamodb.*", squeeze)
        c.create_table(
            TableName="gz_boto", AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
        )
        assert "gz_boto" in c.list_tables()["TableNames"]


# -- compressed responses ------------------------------------------------------------------------


def test_accepts_gzip() -> None:
    assert accepts_gzip(b"gzip")
    assert accepts_gzip(b"deflate, gzip;q=0.5")
    assert accepts_gzip(b"*")
    assert not accepts_gzip(b"identity")
    assert not accepts_gzip(b"gzip;q=0")
    assert not accepts_gzip(b"br, deflate")


def make_tables(srv: ThreadedServer, n: int) -> None:
    names = set(client(srv).list_tables()["TableNames"])
    for i in range(n):
        name = f"many_tables_with_long_names_{i:03d}_" + "x" * 150
        if name not in names:
            assert exchange(srv, request("CreateTable", create_body(name))).status == 200


def test_large_responses_are_gzipped_when_asked(srv: ThreadedServer) -> None:
    make_tables(srv, 40)
    plain = exchange(srv, request("ListTables", b"{}"))
    assert len(plain.body) >= GZIP_MIN_BYTES and "content-encoding" not in plain.headers
    r = exchange(srv, request("ListTables", b"{}", extra="Accept-Encoding: gzip, deflate\r\n"))
    assert r.status == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.body) < len(plain.body)
    assert int(r.headers["x-amz-crc32"]) == zlib.crc32(r.body)  # of the bytes sent, as DynamoDB
    assert gzip.decompress(r.body) == plain.body
    small = exchange(srv, request("ListTables", b'{"Limit": 1}', extra="Accept-Encoding: gzip\r\n"))
    assert "content-encoding" not in small.headers
    assert json.loads(small.body)["TableNames"]


def test_http_client_and_boto3_read_gzipped_responses(srv: ThreadedServer) -> None:
    make_tables(srv, 40)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("POST", "/", body=b"{}", headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
            "Accept-Encoding": "gzip",
        })
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.getheader("Content-Encoding") == "gzip"
        assert len(json.loads(gzip.decompress(raw))["TableNames"]) >= 40
    finally:
        conn.close()

    # botocore checks x-amz-crc32 on the bytes received (before anything is decoded), then
    # parses; a client asking for gzip decodes the body before parsing.
    c = client(srv)
    c.meta.events.register(
        "before-sign.dynamodb.ListTables", lambda request, **_: request.headers.__setitem__("Accept-Encoding", "gzip")
    )
    seen: list[str] = []

    def inflate(response_dict: dict[str, Any], **_: Any) -> None:
        seen.append(response_dict["headers"].get("content-encoding", ""))
        if response_dict["headers"].get("content-encoding") == "gzip":
            response_dict["body"] = gzip.decompress(response_dict["body"])

    c.meta.events.register("before-parse.dynamodb.ListTables", inflate)
    assert len(c.list_tables()["TableNames"]) >= 40
    assert seen == ["gzip"]


# -- signatures (--auth) -------------------------------------------------------------------------


def test_auth_accepts_the_right_key(auth_srv: ThreadedServer) -> None:
    assert "TableNames" in client(auth_srv).list_tables()


@pytest.mark.parametrize(
    ("akid", "secret", "code", "message"),
    [
        (AKID, "wrong", "InvalidSignatureException",
         "The request signature we calculated does not match the signature you provided. Check your AWS "
         "Secret Access Key and signing method. Consult the service documentation for details."),
        ("AKIDNOBODY", SECRET, "UnrecognizedClientException", "The security token included in the request is invalid."),
    ],
)
def test_auth_refuses_wrong_keys_through_boto3(
    auth_srv: ThreadedServer, akid: str, secret: str, code: str, message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        client(auth_srv, akid, secret).list_tables()
    got_code, got_message, status = error_code(exc)
    assert (got_code, status) == (code, 400)
    assert got_message.startswith(message)


def test_auth_raw_requests(auth_srv: ThreadedServer) -> None:
    r = exchange(auth_srv, b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
                 b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}")
    assert json.loads(r.body) == {
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    }
    # The fake signature of the raw tests: the date is years off.
    r = exchange(auth_srv, request("ListTables", b"{}", extra="X-Amz-Date: 20240101T000000Z\r\n"))
    body = json.loads(r.body)
    assert body["__type"] == "com.amazon.coral.service#InvalidSignatureException"
    assert body["message"].startswith("Signature expired: 20240101T000000Z is now earlier than ")
    # Unknown operation and unparseable JSON come before the signature, as in DynamoDB.
    r = exchange(auth_srv, request("Bogus", b"{}"))
    assert json.loads(r.body)["__type"].endswith("#UnknownOperationException")
    r = exchange(auth_srv, request("ListTables", b"{x"))
    assert json.loads(r.body)["__type"].endswith("#SerializationException")


def test_auth_tampered_after_signing(auth_srv: ThreadedServer) -> None:
    c = client(auth_srv)

    def tamper(request: botocore.awsrequest.AWSRequest, **_: Any) -> None:
        # Signed as DescribeTable; the body would be a valid ListTables too.
        request.headers["X-Amz-Target"] = "DynamoDB_20120810.ListTables"

    c.meta.events.register("before-send.dynamodb.DescribeTable", tamper)
    with pytest.raises(ClientError) as exc:
        c.describe_table(TableName="whatever")
    assert error_code(exc)[0] == "InvalidSignatureException"


def test_auth_presigned_request(auth_srv: ThreadedServer) -> None:
    from botocore.auth import SigV4QueryAuth
    from botocore.credentials import Credentials

    url = f"http://127.0.0.1:{auth_srv.port}/"
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=url, data=b"{}",
        headers={"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"},
    )
    SigV4QueryAuth(Credentials(AKID, SECRET), "dynamodb", "us-east-1", expires=60).add_auth(req)
    prepared = req.prepare()
    assert not prepared.body  # botocore presigns without the body

    def send(path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", auth_srv.port, timeout=10)
        try:
            conn.request("POST", path, body=b"", headers=dict(prepared.headers))
            resp = conn.getresponse()
            assert resp.status == 400
            out: dict[str, Any] = json.loads(resp.read())
            return out
        finally:
            conn.close()

    path = prepared.url[len(url) - 1:]
    # The signature is good; then the missing body is the fault, as in DynamoDB.
    assert send(path) == {"__type": "com.amazon.coral.service#SerializationException"}
    assert send(path.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))["__type"].endswith("#InvalidSignatureException")


def test_every_error_type_has_dynamodbs_namespace() -> None:
    import quorumdb.errors as e

    coral_service = {
        e.SerializationError, e.UnknownOperationError, e.MissingAuthenticationTokenError,
        e.IncompleteSignatureError, e.InvalidSignatureError, e.UnrecognizedClientError, e.AccessDeniedError,
        e.RequestEntityTooLargeError,
    }
    for cls in vars(e).values():
        if not (isinstance(cls, type) and issubclass(cls, e.DynamoError)) or cls is e.DynamoError:
            continue
        err = cls([]) if cls is e.TransactionCanceledError else cls("text")
        typ = err.body()["__type"]
        if cls is e.ValidationError:
            assert typ == "com.amazon.coral.validate#ValidationException"
        elif cls is e.ThrottlingError:
            assert typ == "com.amazon.coral.availability#ThrottlingException"
        elif cls in coral_service:
            assert typ == f"com.amazon.coral.service#{cls.type_name}"
        else:
            assert typ == f"com.amazonaws.dynamodb.v20120810#{cls.type_name}"
    assert e.SerializationError("x").body() == {"__type": "com.amazon.coral.service#SerializationException", "Message": "x"}
    assert e.AccessDeniedError("x").body()["Message"] == "x"
    assert e.ValidationError("x").body()["message"] == "x"
    assert e.UnknownOperationError().body() == {"__type": "com.amazon.coral.service#UnknownOperationException"}


def test_botocore_parses_each_error_type() -> None:
    # botocore's JSON error parser: the code after '#', the text from message or Message.
    from botocore.parsers import JSONParser

    import quorumdb.errors as e

    for err in (e.ValidationError("v"), e.SerializationError("s"), e.ThrottlingError("t"), e.AccessDeniedError("a"),
                e.InvalidSignatureError("i"), e.ResourceNotFoundError("r"), e.UnknownOperationError()):
        body = json.dumps(err.body()).encode()
        parsed = JSONParser().parse({"body": body, "headers": {}, "status_code": 400}, None)
        assert parsed["Error"]["Code"] == err.type_name
        assert parsed["Error"]["Message"] == err.message
