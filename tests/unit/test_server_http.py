"""The HTTP layer over raw sockets, against a server started in-process on a random port."""

from __future__ import annotations

import re
import socket
import zlib
from email.utils import parsedate_to_datetime
from collections.abc import Iterator

import orjson
import pytest
from test_server_fakes import ThreadedServer

TARGET = "DynamoDB_20120810."


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def srv(request: pytest.FixtureRequest) -> Iterator[ThreadedServer]:
    with ThreadedServer(use_uvloop=request.param == "uvloop") as s:
        yield s


def connect(srv: ThreadedServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return sock


def request(op: str | None, body: bytes, *, extra: str = "", method: str = "POST") -> bytes:
    head = f"{method} / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.0\r\n"
    head += "Authorization: AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc\r\n"
    if op is not None:
        head += f"X-Amz-Target: {TARGET}{op}\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict[str, object]:
        out: dict[str, object] = orjson.loads(self.body)
        return out


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read(self) -> Response:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), "connection closed before a response"
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            assert self._fill(), "connection closed inside a body"
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(status, headers, body)

    def closed(self) -> bool:
        try:
            return not self.buf and not self._fill()
        except ConnectionResetError:
            return True


def create_body(name: str) -> bytes:
    return orjson.dumps(
        {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    )


def check_headers(r: Response) -> None:
    assert r.headers["content-type"] == "application/x-amz-json-1.0"
    rid = r.headers["x-amzn-requestid"]
    assert re.fullmatch("[A-Z0-9]{52}", rid), rid  # DynamoDB's form
    assert parsedate_to_datetime(r.headers["date"]).tzinfo is not None  # RFC 7231, in GMT
    assert r.headers["date"].endswith(" GMT")
    assert int(r.headers["x-amz-crc32"]) == zlib.crc32(r.body)
    assert int(r.headers["content-length"]) == len(r.body)


def test_keep_alive_serves_several_requests_on_one_connection(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        rd = Reader(sock)
        sock.sendall(request("CreateTable", create_body("keepalive")))
        r = rd.read()
        assert r.status == 200, r.body
        check_headers(r)
        assert r.json()["TableDescription"]["TableStatus"] == "CREATING"  # type: ignore[index]
        ids = {r.headers["x-amzn-requestid"]}
        for _ in range(3):
            sock.sendall(request("DescribeTable", b'{"TableName":"keepalive"}'))
            r = rd.read()
            assert r.status == 200
            check_headers(r)
            assert r.json()["Table"]["TableName"] == "keepalive"  # type: ignore[index]
            ids.add(r.headers["x-amzn-requestid"])
        assert len(ids) == 4  # a fresh request id each time


def test_pipelined_requests_are_answered_in_order(srv: ThreadedServer) -> None:
    names = [f"pipe{i:02d}" for i in range(8)]
    batch = b"".join(request("CreateTable", create_body(n)) for n in names)
    batch += b"".join(request("DescribeTable", orjson.dumps({"TableName": n})) for n in names)
    batch += request("DescribeTable", b'{"TableName":"nope-missing"}')
    with connect(srv) as sock:
        sock.sendall(batch)
        rd = Reader(sock)
        for n in names:
            r = rd.read()
            assert r.status == 200
            assert r.json()["TableDescription"]["TableName"] == n  # type: ignore[index]
        for n in names:
            r = rd.read()
            assert r.json()["Table"]["TableName"] == n  # type: ignore[index]
        r = rd.read()
        assert r.status == 400
        assert r.json()["__type"] == "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
        check_headers(r)


def test_request_split_across_many_packets(srv: ThreadedServer) -> None:
    data = request("ListTables", b"{}")
    with connect(srv) as sock:
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        r = Reader(sock).read()
        assert r.status == 200
        assert "TableNames" in r.json()


def test_garbage_body_is_a_serialization_exception(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        rd = Reader(sock)
        for body in (b"{not json", b"[1, 2]", b'"text"', b""):
            sock.sendall(request("ListTables", body))
            r = rd.read()
            assert r.status == 400
            check_headers(r)
            assert r.json()["__type"].endswith("#SerializationException"), body  # type: ignore[union-attr]
        sock.sendall(request("ListTables", b"{}"))
        assert rd.read().status == 200  # the connection still works


def test_unknown_or_missing_target_is_unknown_operation(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        rd = Reader(sock)
        for req in (
            request("NoSuchOperation", b"{}"),
            request(None, b"{}"),
            request(None, b"{}", extra="X-Amz-Target: DynamoDB_20111205.ListTables\r\n"),
        ):
            sock.sendall(req)
            r = rd.read()
            assert r.status == 400
            check_headers(r)
            assert r.json()["__type"].endswith("#UnknownOperationException")  # type: ignore[union-attr]


def test_validation_error_comes_back_as_json(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(request("ListTables", b'{"Limit": 1000}'))
        r = Reader(sock).read()
        assert r.status == 400
        assert r.json() == {
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "1 validation error detected: Value '1000' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 100",
        }


def test_oversized_content_length_is_refused_without_reading_it(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        head = request("PutItem", b"", extra="").replace(
            b"Content-Length: 0", f"Content-Length: {16 * 1024 * 1024 + 1}".encode()
        )
        sock.sendall(head)  # headers only: the server must answer before any body arrives
        rd = Reader(sock)
        r = rd.read()
        assert r.status == 413
        assert int(r.headers["x-amz-crc32"]) == zlib.crc32(r.body)
        assert r.headers.get("connection") == "close"
        assert rd.closed()
    with connect(srv) as sock:  # and it keeps serving
        sock.sendall(request("ListTables", b"{}"))
        assert Reader(sock).read().status == 200


def test_oversized_chunked_body_is_refused(srv: ThreadedServer) -> None:
    head = (
        f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET}PutItem\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * (1024 * 1024)
    with connect(srv) as sock:
        sock.sendall(head)
        rd = Reader(sock)
        try:
            for _ in range(17):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may already have closed the connection
        r = rd.read()  # the server lingers, so the answer is not lost to a reset
        assert r.status == 413
    with connect(srv) as sock:
        sock.sendall(request("ListTables", b"{}"))
        assert Reader(sock).read().status == 200


def test_expect_100_continue(srv: ThreadedServer) -> None:
    body = b'{"Limit": 5}'
    with connect(srv) as sock:
        sock.sendall(request("ListTables", b"", extra="Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
        ))
        rd = Reader(sock)
        while b"\r\n\r\n" not in rd.buf:
            assert rd._fill()
        assert rd.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        rd.buf = rd.buf[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        sock.sendall(body)
        r = rd.read()
        assert r.status == 200
        assert "TableNames" in r.json()


def test_health_check_and_connection_close(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(sock)
        r = rd.read()
        assert r.status == 200 and r.body.startswith(b"healthy")
        sock.sendall(request("ListTables", b"{}", extra="Connection: close\r\n"))
        r = rd.read()
        assert r.status == 200
        assert r.headers.get("connection") == "close"
        assert rd.closed()


def test_http_1_0_without_keep_alive_closes(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(request("ListTables", b"{}").replace(b"HTTP/1.1", b"HTTP/1.0"))
        rd = Reader(sock)
        assert rd.read().status == 200
        assert rd.closed()


def test_malformed_http_gets_400_and_close(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        rd = Reader(sock)
        r = rd.read()
        assert r.status == 400
        assert rd.closed()


def test_oversized_headers_are_refused(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(request("ListTables", b"{}", extra="X-Big: " + "a" * 70_000 + "\r\n"))
        rd = Reader(sock)
        r = rd.read()
        assert r.status == 431
        assert rd.closed()


def test_cors_preflight(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(
            b"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n"
            b"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-amz-target\r\n\r\n"
        )
        r = Reader(sock).read()
        assert r.status == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-headers"] == "x-amz-target"


def test_graceful_close_finishes_and_closes_idle_connections() -> None:
    with ThreadedServer() as s:
        idle = connect(s)
        busy = connect(s)
        busy.sendall(request("ListTables", b"{}"))
        assert Reader(busy).read().status == 200
        assert s.server is not None
        s.run(s.server.close(timeout_s=2))
        assert Reader(idle).closed()
        assert Reader(busy).closed()
        idle.close()
        busy.close()
        # The server no longer accepts connections.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        s.server = _Noop()  # type: ignore[assignment]


class _Noop:
    async def close(self, timeout_s: float = 0) -> None:
        return None


def test_head_has_no_body(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(request("ListTables", b"{}"))
        rd = Reader(sock)
        while rd.buf.count(b"\r\n\r\n") < 1:
            assert rd._fill()
        head, _, rd.buf = rd.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        r = rd.read()  # the next response follows the HEAD headers directly
        assert r.status == 200 and "TableNames" in r.json()


def test_oversized_headers_sent_in_small_pieces_are_refused(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        rd = Reader(sock)
        try:
            for i in range(80):  # the server refuses after about 65 of them
                sock.sendall(b"X-Filler-%d: %s\r\n" % (i, b"a" * 1000))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = rd.read()
        assert r.status == 431
        assert rd.closed()


def test_half_closed_client_still_gets_its_answer(srv: ThreadedServer) -> None:
    with connect(srv) as sock:
        sock.sendall(request("CreateTable", create_body("halfclosed")))  # a handler that suspends
        sock.shutdown(socket.SHUT_WR)
        rd = Reader(sock)
        r = rd.read()
        assert r.status == 200
        assert rd.closed()


def test_graceful_close_finishes_in_flight_requests() -> None:
    import asyncio
    import time

    with ThreadedServer() as s:
        assert s.server is not None

        async def make_gate() -> asyncio.Event:
            return asyncio.Event()

        gate = s.run(make_gate())
        s.db.gate = gate
        with connect(s) as sock:
            sock.sendall(request("CreateTable", create_body("inflight")))
            deadline = time.monotonic() + 10
            while s.server.inflight == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            closing = asyncio.run_coroutine_threadsafe(s.server.close(timeout_s=10), s.loop)
            while True:  # wait until the server stopped listening
                try:
                    socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
                except OSError:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert not closing.done()  # still waiting for the request in flight
            s.loop.call_soon_threadsafe(gate.set)
            rd = Reader(sock)
            r = rd.read()
            assert r.status == 200
            assert r.headers.get("connection") == "close"
            assert rd.closed()
            closing.result(10)
        assert "inflight" in s.db.tables
        s.server = _Noop()  # type: ignore[assignment]


def test_long_pipeline_behind_a_slow_request_pauses_reading_and_finishes_in_order() -> None:
    import asyncio
    import threading

    with ThreadedServer() as s:

        async def make_gate() -> asyncio.Event:
            return asyncio.Event()

        gate = s.run(make_gate())
        s.db.gate = gate
        n = 200  # well past the per-connection queue bound
        batch = request("CreateTable", create_body("slowfirst")) + b"".join(
            request("ListTables", orjson.dumps({"Limit": 1 + i % 100})) for i in range(n)
        )
        with connect(s) as sock:
            sender = threading.Thread(target=sock.sendall, args=(batch,))
            sender.start()
            import time

            deadline = time.monotonic() + 10
            assert s.server is not None
            while not any(c.reading_paused for c in list(s.server.connections)):
                assert time.monotonic() < deadline, "the server never paused reading"
                time.sleep(0.01)
            s.loop.call_soon_threadsafe(gate.set)
            rd = Reader(sock)
            assert rd.read().status == 200
            for _ in range(n):
                r = rd.read()
                assert r.status == 200
                assert r.json()["TableNames"] == ["slowfirst"]  # answered after the create
            sender.join(10)
