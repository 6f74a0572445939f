"""The HTTP shell: DynamoDB's JSON 1.0 protocol over HTTP/1.1, on asyncio (uvloop) + httptools.

One ``HttpProtocol`` per connection parses requests with httptools and answers them strictly
in arrival order (keep-alive and pipelining safe): a connection runs one request at a time,
later pipelined requests wait in a bounded queue, and reading pauses while that queue or the
transport's write buffer is full. Every buffer is bounded: the request target (16 KB, else
414), the header bytes (64 KB, else 431), the body (16 MB, else 413; a larger
``Content-Length`` is refused before any of the body is read, a larger chunked body as soon as
it crosses the limit, and the connection is then closed), the queue.

``POST /`` with ``X-Amz-Target: DynamoDB_20120810.<Operation>`` goes to the ``Dispatcher``;
its coroutine is first run inline and only becomes a task if it actually waits (reads and
cached lookups finish without one). A ``Content-Encoding: gzip`` or ``deflate`` body is
inflated first (at most 16 MB of it; a broken stream is a SerializationException). Every
response carries ``x-amzn-RequestId`` (52 upper-case letters and digits, as DynamoDB's),
``x-amz-crc32`` (of the body bytes as sent) and ``Date``; a body of 4 KB or more is gzipped
for a client that sends ``Accept-Encoding: gzip``. ``GET /`` is DynamoDB's health check; other
paths and methods get 404 ``<UnknownOperationException/>`` (except a ``GET`` of a path in
``Server.routes``, e.g. a cluster node's ``/cluster/status``, answered by that route's
coroutine in turn like any other request), as does a POST with a body whose
Content-Type is neither ``application/x-amz-json-1.0`` nor ``application/json`` (DynamoDB's
answers).

Credentials are not checked (as DynamoDB Local) unless the dispatcher has a SigV4
``Verifier`` (``--auth``): then connections are ``SigningHttpProtocol``s, which also collect
what the signature covers; without it that costs nothing.

``serve()``/``run()`` start a whole single-node server process (data plane + HTTP) and stop it
gracefully on SIGINT/SIGTERM; ``run_workers()`` supervises several such processes sharing one
port and one LMDB directory. This module never interprets request bodies itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from email.utils import formatdate
from typing import Any, cast

import httptools

from quorumdb.api import early_stop
from quorumdb.api.auth import SignedRequest, Verifier
from quorumdb.api.dispatch import Dispatcher, error_body
from quorumdb.api.ops import control
from quorumdb.api.throttle import from_env as throttle_from_env
from quorumdb.errors import (
    DynamoError,
    InternalServerError,
    RequestEntityTooLargeError,
    SerializationError,
)
from quorumdb.supervise import Supervisor

__all__ = [
    "HttpProtocol",
    "Server",
    "serve",
    "run",
    "run_workers",
    "SigningHttpProtocol",
    "decode_body",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "MAX_PIPELINE",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024  # request line and headers of one request
MAX_URL_BYTES = 16 * 1024  # the request target
GZIP_MIN_BYTES = 4 * 1024  # smaller response bodies are not worth compressing
GZIP_LEVEL = 1
MAX_PIPELINE = 64  # requests parsed ahead of the one being answered
RECURSION_LIMIT = 50_000
WRITE_BUFFER_HIGH_BYTES = 4 * 1024 * 1024
SMALL_BODY_BYTES = 16 * 1024
LINGER_S = 2.0  # how long a refused connection keeps discarding input before it is closed

_STATUS_LINES = {
    200: b"HTTP/1.1 200 OK\r\n",
    400: b"HTTP/1.1 400 Bad Request\r\n",
    404: b"HTTP/1.1 404 Not Found\r\n",
    413: b"HTTP/1.1 413 Request Entity Too Large\r\n",
    414: b"HTTP/1.1 414 URI Too Long\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    500: b"HTTP/1.1 500 Internal Server Error\r\n",
    503: b"HTTP/1.1 503 Service Unavailable\r\n",
}
_CT_AMZ = b"application/x-amz-json-1.0"
_CT_JSON = b"application/json"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# DynamoDB's answer to GET / (the trailing space is DynamoDB's).
_HEALTH_BODY = b"healthy: dynamodb.us-east-1.amazonaws.com "
_UNKNOWN_OP_BODY = b"<UnknownOperationException/>\n"
_TOO_LARGE_BODY = error_body(
    RequestEntityTooLargeError(f"Request payload exceeds the maximum of {MAX_BODY_BYTES} bytes")
)
_INTERNAL_BODY = error_body(InternalServerError("Internal server error"))
_CORS_HEADERS = b"Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: x-amzn-RequestId,x-amz-crc32\r\n"
_BAD_REQUEST_BODY = error_body(SerializationError("Malformed HTTP request"))
_URL_TOO_LONG_BODY = error_body(SerializationError(f"Request target longer than {MAX_URL_BYTES} bytes"))
_GZIP = 1
_DEFLATE = 2
_UNSUPPORTED_ENCODING = 3

# Request kinds queued on a connection.
_DISPATCH, _HEALTH, _NOT_FOUND, _PREFLIGHT, _REJECT, _ROUTE = range(6)

# A GET route: a coroutine answering (status, JSON body).
Route = Callable[[bytes], Coroutine[Any, Any, tuple[int, bytes]]]  # (request target) -> (status, JSON)


class _Request:
    __slots__ = (
        "kind", "target", "body", "keep_alive", "json_ct", "origin", "cors", "status", "reply", "head_only",
        "gzip_ok", "signed", "route",
    )

    def __init__(self, kind: int, keep_alive: bool) -> None:
        self.kind = kind
        self.keep_alive = keep_alive
        self.target: bytes | None = None
        self.body = b""
        self.json_ct = False
        self.origin = False
        self.cors: tuple[bytes, bytes] | None = None
        self.status = 200
        self.reply = b""
        self.head_only = False
        self.route: Route | None = None
        self.gzip_ok = False
        self.signed: SignedRequest | None = None


class _RequestIds:
    """Unique request ids shaped like DynamoDB's (52 upper-case letters and digits): a random
    per-process prefix of 40 and a 12-digit hexadecimal counter."""

    __slots__ = ("prefix", "counter")

    def __init__(self) -> None:
        self.prefix = base64.b32encode(os.urandom(25)).decode()
        assert len(self.prefix) == 40
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):012X}"


class HttpProtocol(asyncio.Protocol):
    """One client connection (see the module docstring for the rules it keeps)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.dispatcher = server.dispatcher
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.rid_prefix = server.ids.prefix
        self.rid_counter = server.ids.counter
        self.queue: deque[_Request] = deque()
        self.busy = False  # a dispatched request has not been answered yet
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.stop_reading = False  # after a refused request: ignore the rest of the stream
        self.lingering = False  # refused and answered: discarding input until the client closes
        self.reading_paused = False
        self.writing_paused = False
        self.closing_after_idle = False
        self.in_message = False
        self.in_headers = False
        self.deferred_continue = False
        self._reset_message()

    def _reset_message(self) -> None:
        self.header_bytes = 0
        self.url = b""
        self.url_done = False
        self.encoding = 0  # _GZIP, _DEFLATE, _UNSUPPORTED_ENCODING or 0 (identity)
        self.gzip_ok = False
        self.ct_ok = False  # Content-Type is DynamoDB's (application/x-amz-json-1.0) or application/json
        self.target: bytes | None = None
        self.json_ct = False
        self.origin = False
        self.cors_headers = b""
        self.cors_method = b""
        self.expect_continue = False
        self.body_parts: list[bytes] = []
        self.body_bytes = 0
        self.too_large = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = tr = cast(asyncio.Transport, transport)
        tr.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES)
        sock = tr.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.clear()
        self.server.connections.discard(self)
        self.server.connection_gone()

    def data_received(self, data: bytes) -> None:
        if self.stop_reading or self.closed:
            return
        if len(data) + self.header_bytes > MAX_HEADER_BYTES and (self.in_headers or not self.in_message):
            # A large chunk that starts inside (or at) a request head: measure the head exactly.
            end = data.find(b"\r\n\r\n")
            if self.header_bytes + (len(data) if end < 0 else end) > MAX_HEADER_BYTES:
                if self._url_too_long(data):
                    self._refuse(414, _URL_TOO_LONG_BODY)
                else:
                    self._refuse(431, _BAD_REQUEST_BODY)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, _BAD_REQUEST_BODY)
            return
        except httptools.HttpParserError:
            if not self.stop_reading:
                self._refuse(400, _BAD_REQUEST_BODY)
            return
        if self.in_headers:
            # Headers still incomplete: everything received for them so far counts (a chunk
            # is bounded by the transport's read size, so this bounds what httptools buffers).
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES and not self.stop_reading:
                self._refuse(431, _BAD_REQUEST_BODY)

    def _url_too_long(self, data: bytes) -> bool:
        """Whether the request line that ``data`` starts or continues is over the URL limit."""
        fresh = not self.in_message
        if not fresh and self.url_done:
            return False
        line = data.find(b"\r\n")
        return (0 if fresh else len(self.url)) + (len(data) if line < 0 else line) > MAX_URL_BYTES

    def eof_received(self) -> bool | None:
        if self.lingering or (not self.busy and not self.queue):
            return None  # the transport closes itself
        self.closing_after_idle = True  # answer what was received, then close
        return True

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._update_reading()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.in_headers = True
        self._reset_message()

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL_BYTES and not self.stop_reading:
            self._refuse(414, _URL_TOO_LONG_BODY)
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self.url_done = True
        try:
            handler = _HEADER_HANDLERS[name]
        except KeyError:
            handler = _HEADER_HANDLERS.get(name.lower())
        if handler is not None:
            handler(self, value)

    def _h_target(self, value: bytes) -> None:
        self.target = value.strip()

    def _h_length(self, value: bytes) -> None:
        try:
            if int(value) > MAX_BODY_BYTES:
                self.too_large = True
        except ValueError:
            pass  # httptools refuses a malformed Content-Length itself

    def _h_type(self, value: bytes) -> None:
        v = value.split(b";", 1)[0].strip().lower()
        self.json_ct = v == _CT_JSON
        self.ct_ok = self.json_ct or v == _CT_AMZ

    def _h_encoding(self, value: bytes) -> None:
        v = value.strip().lower()
        if v == b"gzip" or v == b"x-gzip":
            self.encoding = _GZIP
        elif v == b"deflate":
            self.encoding = _DEFLATE
        elif v and v != b"identity":
            self.encoding = _UNSUPPORTED_ENCODING

    def _h_accept_encoding(self, value: bytes) -> None:
        self.gzip_ok = accepts_gzip(value)

    def _h_expect(self, value: bytes) -> None:
        self.expect_continue = value.strip().lower() == b"100-continue"

    def _h_origin(self, value: bytes) -> None:
        self.origin = True

    def _h_cors_headers(self, value: bytes) -> None:
        self.cors_headers = value

    def _h_cors_method(self, value: bytes) -> None:
        self.cors_method = value

    def on_headers_complete(self) -> None:
        self.in_headers = False
        self.url_done = True
        if self.too_large:
            self._refuse(413, _TOO_LARGE_BODY)
            return
        if self.expect_continue:
            if not self.busy and not self.queue:
                assert self.transport is not None
                self.transport.write(_CONTINUE)
            else:
                self.deferred_continue = True

    def on_body(self, body: bytes) -> None:
        if self.stop_reading:
            return
        self.body_bytes += len(body)
        if self.body_bytes > MAX_BODY_BYTES:
            self.body_parts = []
            self._refuse(413, _TOO_LARGE_BODY)
            return
        self.body_parts.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.stop_reading:
            return
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive() and not self.closing_after_idle
        if self.server.routes and method in (b"GET", b"POST") and self.url.split(b"?", 1)[0] in self.server.routes:
            # A cluster node's own routes (status, operator commands), before the DynamoDB API.
            self.body_parts = []
            req = _Request(_ROUTE, keep_alive)
            req.route = self.server.routes[self.url.split(b"?", 1)[0]]
            req.target = self.url
            req.json_ct = True
        elif method == b"POST" and (self.ct_ok or not self.body_bytes):
            parts = self.body_parts
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            self.body_parts = []
            signed = self._signed_request(body)
            refusal: DynamoError | None = None
            if self.encoding and body:
                try:
                    body = decode_body(body, self.encoding)
                except DynamoError as err:
                    refusal = err
            if refusal is None and not self.busy and not self.queue:
                self._dispatch_now(body, keep_alive, signed)
                return
            if refusal is None:
                req = _Request(_DISPATCH, keep_alive)
                req.body = body
                req.target = self.target
                req.signed = signed
            else:
                req = _Request(_REJECT, keep_alive)
                req.status = refusal.http_status
                req.reply = error_body(refusal)
            req.json_ct = self.json_ct
            req.gzip_ok = self.gzip_ok
        elif (method == b"GET" or method == b"HEAD") and self.url.split(b"?", 1)[0] == b"/":
            req = _Request(_HEALTH, keep_alive)
            req.head_only = method == b"HEAD"
        elif method == b"OPTIONS" and self.origin:
            req = _Request(_PREFLIGHT, keep_alive)
            req.cors = (self.cors_headers, self.cors_method)
        else:
            req = _Request(_NOT_FOUND, keep_alive)
        req.origin = self.origin
        self.body_parts = []
        self.queue.append(req)
        if len(self.queue) >= MAX_PIPELINE:
            self._update_reading()
        if not self.busy:
            self._run_queue()

    # -- answering, in order -------------------------------------------------------------------

    def _refuse(self, status: int, body: bytes) -> None:
        """Answer the current request with an error once its turn comes, then close."""
        self.stop_reading = True
        req = _Request(_REJECT, False)
        req.status = status
        req.reply = body
        req.origin = self.origin
        self.queue.append(req)
        self._update_reading()
        if not self.busy:
            self._run_queue()

    def _update_reading(self) -> None:
        if self.transport is None or self.closed:
            return
        want_pause = (
            (self.stop_reading and not self.lingering) or self.writing_paused or len(self.queue) >= MAX_PIPELINE
        )
        if want_pause and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        elif not want_pause and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def _signed_request(self, body: bytes) -> SignedRequest | None:
        """What a signature covers (only ``SigningHttpProtocol`` collects it)."""
        return None

    def _dispatch_now(self, body: bytes, keep_alive: bool, signed: SignedRequest | None) -> None:
        """The common case: nothing queued, so answer this request right away (no queue entry)."""
        rid = f"{self.rid_prefix}{next(self.rid_counter):012X}"
        coro = self.dispatcher.handle(self.target, body, rid, signed)
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            status, out = done.value
            ct = _CT_JSON if self.json_ct else _CT_AMZ
            extra = _CORS_HEADERS if self.origin else b""
            self._send(status, out, rid, keep_alive, ct, extra, gzip_ok=self.gzip_ok)
            if self.reading_paused or self.deferred_continue or self.closing_after_idle:
                self._idle()
            return
        except BaseException:
            log.exception("request %s failed outside the dispatcher", rid)
            self._send(500, _INTERNAL_BODY, rid, keep_alive, _CT_AMZ, _CORS_HEADERS if self.origin else b"")
            return
        req = _Request(_DISPATCH, keep_alive)
        req.json_ct = self.json_ct
        req.origin = self.origin
        req.gzip_ok = self.gzip_ok
        self.busy = True
        self.server.inflight += 1
        self.task = self.loop.create_task(self._finish(coro, waiting, req, rid))

    def _run_queue(self) -> None:
        queue = self.queue
        while queue and not self.busy and not self.closed:
            req = queue.popleft()
            if req.kind == _DISPATCH or req.kind == _ROUTE:
                rid = f"{self.rid_prefix}{next(self.rid_counter):012X}"
                if req.route is not None:
                    coro = req.route(req.target or b"")
                else:
                    coro = self.dispatcher.handle(req.target, req.body, rid, req.signed)
                try:
                    waiting = coro.send(None)
                except StopIteration as done:
                    status, body = done.value
                    self._respond(req, status, body, rid)
                    continue
                except BaseException:
                    log.exception("request %s failed outside the dispatcher", rid)
                    self._respond(req, 500, _INTERNAL_BODY, rid)
                    continue
                self.busy = True
                self.server.inflight += 1
                self.task = self.loop.create_task(self._finish(coro, waiting, req, rid))
                return
            rid = f"{self.rid_prefix}{next(self.rid_counter):012X}"
            if req.kind == _HEALTH:
                self._respond(req, 200, _HEALTH_BODY, rid, content_type=b"text/plain")
            elif req.kind == _PREFLIGHT:
                self._respond(req, 200, b"", rid, content_type=b"text/plain")
            elif req.kind == _NOT_FOUND:
                self._respond(req, 404, _UNKNOWN_OP_BODY, rid, content_type=b"text/xml")
            else:
                self._respond(req, req.status, req.reply, rid)
        if not queue and not self.busy:
            self._idle()
        else:
            self._update_reading()

    def _idle(self) -> None:
        if self.reading_paused:
            self._update_reading()
        if self.deferred_continue and self.in_message and self.transport is not None and not self.closed:
            self.deferred_continue = False
            self.transport.write(_CONTINUE)
        if self.closing_after_idle and not self.in_message and self.transport is not None:
            self.transport.close()

    async def _finish(self, coro: Coroutine[Any, Any, tuple[int, bytes]], waiting: Any, req: _Request, rid: str) -> None:
        """Drive a dispatcher coroutine that had to wait, as a Task would, then answer it."""
        try:
            while True:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    # As Task.__step does: the coroutine marked the future as blocking when it
                    # yielded it; clear that before waiting on it here.
                    waiting._asyncio_future_blocking = False
                    try:
                        await waiting
                    except asyncio.CancelledError:
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            raise  # we are being cancelled, not just the awaited future
                    except Exception:
                        pass  # the coroutine reads the future's outcome itself
                try:
                    waiting = coro.send(None)
                except StopIteration as done:
                    status, body = done.value
                    break
        except asyncio.CancelledError:
            coro.close()
            raise
        except BaseException:
            log.exception("request %s failed outside the dispatcher", rid)
            status, body = 500, _INTERNAL_BODY
        finally:
            self.server.inflight -= 1
            self.busy = False
            self.task = None
        if not self.closed:
            self._respond(req, status, body, rid)
            self._run_queue()

    def _respond(self, req: _Request, status: int, body: bytes, rid: str, content_type: bytes | None = None) -> None:
        if content_type is None:
            content_type = _CT_JSON if req.json_ct else _CT_AMZ
        extra = b""
        if req.origin:
            extra = _CORS_HEADERS
            if req.kind == _PREFLIGHT and req.cors is not None:
                hdrs, meth = req.cors
                if hdrs:
                    extra += b"Access-Control-Allow-Headers: " + hdrs + b"\r\n"
                if meth:
                    extra += b"Access-Control-Allow-Methods: " + meth + b"\r\n"
                extra += b"Access-Control-Max-Age: 172800\r\n"
        self._send(
            status, body, rid, req.keep_alive, content_type, extra, req.head_only, req.kind == _REJECT,
            gzip_ok=req.gzip_ok,
        )

    def _send(
        self,
        status: int,
        body: bytes,
        rid: str,
        keep_alive: bool,
        content_type: bytes,
        extra: bytes,
        head_only: bool = False,
        refused: bool = False,
        *,
        gzip_ok: bool = False,
    ) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        if not keep_alive or (self.closing_after_idle and not self.queue):
            keep_alive = False
            extra += b"Connection: close\r\n"
        if gzip_ok and len(body) >= GZIP_MIN_BYTES:
            # x-amz-crc32 is of the bytes sent (what the SDKs check), so of the gzipped body.
            body = zlib.compress(body, GZIP_LEVEL, wbits=31)
            extra += b"Content-Encoding: gzip\r\n"
        head = (
            b"%sContent-Type: %s\r\nContent-Length: %d\r\nx-amzn-RequestId: %s\r\nx-amz-crc32: %d\r\n%s%s\r\n"
            % (
                _STATUS_LINES.get(status) or b"HTTP/1.1 %d Error\r\n" % status,
                content_type,
                len(body),
                rid.encode(),
                zlib.crc32(body),
                self.server.date_line,
                extra,
            )
        )
        if head_only:
            transport.write(head)
        elif len(body) <= SMALL_BODY_BYTES:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        if not keep_alive:
            self.stop_reading = True
            self.queue.clear()
            if refused and transport.can_write_eof():
                # Lingering close: the client may still be sending what we refused; closing
                # now would reset the connection and could destroy the answer before it is
                # read. Send FIN, discard what still arrives, close when the client does.
                self.lingering = True
                transport.write_eof()
                self._update_reading()
                self.loop.call_later(LINGER_S, transport.close)
            else:
                transport.close()

    # -- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop taking requests: close now if idle, else after the requests already received."""
        self.closing_after_idle = True
        if not self.busy and not self.queue and not self.in_message and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()


class SigningHttpProtocol(HttpProtocol):
    """A connection of a server that checks signatures: also keeps every header of a request."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers: list[tuple[str, str]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def _signed_request(self, body: bytes) -> SignedRequest | None:
        url = self.url.decode("latin-1")
        path, _, query = url.partition("?")
        return SignedRequest(
            method="POST",
            path=path,
            query=query,
            headers=tuple(self.headers),
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )


class _Refused(Exception):
    """Raised in an httptools callback to stop parsing a request that was refused."""


def accepts_gzip(value: bytes) -> bool:
    """Whether an Accept-Encoding value accepts gzip (``gzip`` or ``*``, without ``q=0``)."""
    if b"gzip" not in value and b"*" not in value:  # e.g. botocore's "identity"
        return False
    for item in value.lower().split(b","):
        coding, _, params = item.partition(b";")
        coding = coding.strip()
        if coding == b"gzip" or coding == b"*":
            q = params.strip()
            if q.startswith(b"q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def decode_body(body: bytes, encoding: int) -> bytes:
    """Inflate a gzip (possibly several members) or deflate (zlib or raw) request body.

    At most ``MAX_BODY_BYTES`` come out (else RequestEntityTooLargeError, without inflating the
    rest); a broken or truncated stream, or an unsupported coding, is a SerializationError.
    """
    if encoding == _UNSUPPORTED_ENCODING:
        raise SerializationError("Unsupported Content-Encoding (only gzip and deflate are)")
    if encoding == _GZIP:
        wbits = 31
    else:  # deflate: zlib-wrapped as the RFC says, but raw deflate is common too
        wbits = 15 if len(body) >= 2 and (body[0] & 0x0F) == 8 and (body[0] << 8 | body[1]) % 31 == 0 else -15
    out: list[bytes] = []
    room = MAX_BODY_BYTES + 1
    data = body
    while True:
        d = zlib.decompressobj(wbits)
        try:
            chunk = d.decompress(data, room)
        except zlib.error:
            raise SerializationError("The request body could not be decompressed") from None
        room -= len(chunk)
        if room <= 0:
            raise RequestEntityTooLargeError(
                f"Request payload exceeds the maximum of {MAX_BODY_BYTES} bytes once decompressed"
            )
        out.append(chunk)
        if not d.eof:
            raise SerializationError("The request body could not be decompressed")
        data = d.unused_data
        if not data:
            break
        if encoding != _GZIP:
            raise SerializationError("The request body could not be decompressed")
    return out[0] if len(out) == 1 else b"".join(out)


def date_line(now: float) -> bytes:
    """The ``Date`` header line (RFC 7231) for the wall-clock time ``now``."""
    return b"Date: %s\r\n" % formatdate(int(now), usegmt=True).encode()


# Headers the server looks at, keyed by lower-case name and by the spellings clients send, so
# the usual header costs one dict lookup; None marks headers seen often and ignored.
_HEADER_HANDLERS: dict[bytes, Callable[[HttpProtocol, bytes], None] | None] = {}
for _name, _fn in (
    (b"x-amz-target", HttpProtocol._h_target),
    (b"content-length", HttpProtocol._h_length),
    (b"content-type", HttpProtocol._h_type),
    (b"expect", HttpProtocol._h_expect),
    (b"content-encoding", HttpProtocol._h_encoding),
    (b"accept-encoding", HttpProtocol._h_accept_encoding),
    (b"origin", HttpProtocol._h_origin),
    (b"access-control-request-headers", HttpProtocol._h_cors_headers),
    (b"access-control-request-method", HttpProtocol._h_cors_method),
    (b"host", None),
    (b"authorization", None),
    (b"user-agent", None),
    (b"x-amz-date", None),
    (b"x-amz-security-token", None),
    (b"x-amz-content-sha256", None),
    (b"amz-sdk-invocation-id", None),
    (b"amz-sdk-request", None),
    (b"accept", None),
    (b"connection", None),
):
    _HEADER_HANDLERS[_name] = _fn
    _HEADER_HANDLERS[_name.title()] = _fn
_HEADER_HANDLERS[b"X-Amz-Target"] = HttpProtocol._h_target
_HEADER_HANDLERS[b"X-AMZ-TARGET"] = HttpProtocol._h_target
_HEADER_HANDLERS[b"X-Amz-Date"] = None
_HEADER_HANDLERS[b"X-Amz-Security-Token"] = None
_HEADER_HANDLERS[b"X-Amz-Content-SHA256"] = None


class Server:
    """The listening HTTP server of one process."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.loop = asyncio.get_running_loop()
        self.connections: set[HttpProtocol] = set()
        self.inflight = 0
        self.ids = _RequestIds()
        # The Date header of every response, renewed by the event loop at each new second
        # (so answering a request does not read the clock).
        self.date_line = date_line(time.time())
        self._date_timer: asyncio.TimerHandle | None = None
        self._server: asyncio.AbstractServer | None = None
        self._drained: asyncio.Event | None = None
        self.host = ""
        self.port = 0
        self.routes: dict[bytes, Route] = {}  # GET path -> handler (none on a single node)

    def _renew_date(self) -> None:
        now = time.time()
        self.date_line = date_line(now)
        self._date_timer = self.loop.call_later(1.0 - now % 1.0 + 0.001, self._renew_date)

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        protocol = HttpProtocol if self.dispatcher.verifier is None else SigningHttpProtocol
        self._renew_date()
        self._server = await self.loop.create_server(
            lambda: protocol(self),
            host=host,
            port=port,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = host, int(sockname[1])
        control.set_endpoint_address(f"{_host_for_url(host)}:{self.port}")

    @property
    def url(self) -> str:
        return f"http://{_host_for_url(self.host)}:{self.port}"

    def connection_gone(self) -> None:
        if self._drained is not None and not self.connections:
            self._drained.set()

    async def close(self, *, timeout_s: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``timeout_s``), close connections."""
        if self._server is not None:
            self._server.close()
        if self._date_timer is not None:
            self._date_timer.cancel()
        self._drained = asyncio.Event()
        for conn in list(self.connections):
            conn.shutdown()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout_s)
            except TimeoutError:
                log.warning("closing %d connections that did not finish in %.0f s", len(self.connections), timeout_s)
                for conn in list(self.connections):
                    conn.abort()
        if self._server is not None:
            await self._server.wait_closed()


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def serve(
    host: str,
    port: int,
    data_dir: str | None,
    in_memory: bool,
    reuse_port: bool = False,
    *,
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    verifier: Verifier | None = None,
) -> None:
    """Run one server process until SIGINT/SIGTERM (or ``stop`` is set), then shut down cleanly.

    Several processes may call this with ``reuse_port=True`` on the same port and data
    directory (they then share the port and the LMDB environment). With a ``verifier`` every
    request must be signed with one of its keys.
    """
    from quorumdb.db import open_local  # the storage layer; imported here so the API stays light

    path = None if in_memory else os.path.abspath(data_dir or "quorumdb-data")
    # Requests may nest up to orjson's 1024 levels, and expressions up to 4 KB of parentheses;
    # the recursive walks over them need more than Python's default 1000 frames (Python-to-
    # Python calls do not grow the C stack, so this is safe).
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    options: dict[str, Any] = {}
    ttl_interval = os.environ.get("QUORUMDB_TTL_INTERVAL_SECONDS")
    if ttl_interval:  # how often the TTL expirer looks for expired items (default 5 s)
        options["ttl_interval_s"] = float(ttl_interval)
    db = open_local(path, **options)
    await db.start()
    try:
        throttle = throttle_from_env(db)
        server = Server(Dispatcher(db, verifier=verifier, throttle=throttle))
        await server.start(host, port, reuse_port=reuse_port)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        if early_stop.requested():  # stopped while starting: shut down cleanly at once
            stop.set()
        # Everything loaded so far (modules, specs, the catalog) lives for the whole process:
        # keep it out of the garbage collector's full passes.
        gc.collect()
        gc.freeze()
        where = "in memory" if path is None else f"data: {path}, LMDB"
        if verifier is not None:
            where += f", SigV4 auth with {len(verifier.keys)} keys"
        if throttle.on:
            where += ", provisioned capacity enforced"
        if not stop.is_set():
            (announce or _print_line)(f"QuorumDB listening on {server.url} ({where})")
        await stop.wait()
        log.info("shutting down")
        # One more SIGTERM (e.g. the whole process group signalled, then a supervisor
        # forwarding it) must not cut the graceful shutdown short; SIGINT still can.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await server.close()
    finally:
        await db.close()


def _print_line(line: str) -> None:
    print(line, flush=True)


def run(
    host: str,
    port: int,
    data_dir: str | None,
    in_memory: bool,
    reuse_port: bool = False,
    verifier: Verifier | None = None,
) -> int:
    """Blocking entry point: ``serve`` on uvloop (plain asyncio where uvloop is unavailable)."""
    main = serve(host, port, data_dir, in_memory, reuse_port, verifier=verifier)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(main)
    else:
        uvloop.run(main)
    return 0


def run_workers(
    host: str,
    port: int,
    data_dir: str,
    workers: int,
    log_level: str = "warning",
    extra_args: Sequence[str] = (),
) -> int:
    """Serve with ``workers`` processes sharing one port (SO_REUSEPORT) and one LMDB directory.

    This process only supervises: it starts the workers (``quorumdb serve --reuse-port``),
    prints one line once all of them listen, forwards SIGINT/SIGTERM to them, and exits 0 when
    they all stopped cleanly. If a worker dies on its own, the others are stopped and the exit
    status is 1. ``extra_args`` are passed on to every worker (e.g. ``--auth``).
    """
    assert workers >= 1
    path = os.path.abspath(data_dir)
    reserve: socket.socket | None = None
    if port == 0:
        # Pick the port once for all workers; holding it (bound, SO_REUSEPORT) until they
        # listen keeps anyone else from taking it meanwhile.
        reserve = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserve.bind((host, 0))
        port = reserve.getsockname()[1]
    cmd = [
        sys.executable, "-m", "quorumdb", "serve", "--host", host, "--port", str(port),
        "--data-dir", path, "--log-level", log_level, "--reuse-port", *extra_args,
    ]
    clean = True
    with Supervisor(early_stop.STOP_SIGNALS) as sup:
        if early_stop.requested():
            sup.stopping = True
        for _ in range(workers):
            if sup.stopping:
                break
            sup.start(cmd)
        if sup.stopping:  # also reaches a worker started while the signal was handled
            sup.stop_all()
        for p in sup.procs:
            assert p.stdout is not None
            if not p.stdout.readline():  # the worker ended before listening
                clean = sup.stopping  # asked to stop meanwhile: not a failure
                sup.stop_all()
                break
        else:
            if not sup.stopping:
                where = f"data: {path}, LMDB, {workers} worker processes"
                _print_line(f"QuorumDB listening on http://{_host_for_url(host)}:{port} ({where})")
        if reserve is not None:
            reserve.close()
        clean = sup.wait() and clean
    return 0 if clean else 1
