"""Request/response calls between cluster nodes, over the same authenticated connections as
the consensus traffic.

``await rpc.call(peer, method, payload, timeout_s=...)`` sends ``["q", id, method, payload]``
and waits for ``["r", id, ok, result]`` (``ok`` False: ``result`` is ``[code, message]`` and
``RpcError`` is raised). The peer runs the handler registered for ``method``:
``async def handler(src_node_id, payload) -> result``; a handler raising ``RpcError`` answers
with its code, any other exception with ``"internal"``, an unknown method with
``"no_method"``. A call that gets no answer in ``timeout_s`` raises ``RpcTimeout`` (the request
may still have run on the peer). Payloads and results are anything msgpack can carry.

The reply goes back to the calling node by its authenticated node id, not by the connection it
came on (connections are one-way), so the callee must know the caller as a peer: a cluster node
learns every authenticated dialer's address from the handshake.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Rpc", "RpcError", "RpcTimeout", "RpcHandler"]

log = logging.getLogger(__name__)

RpcHandler = Callable[[str, Any], Awaitable[Any]]
_REQUEST = "q"
_RESPONSE = "r"
KINDS = (_REQUEST, _RESPONSE)


class RpcError(Exception):
    """The peer answered with an error (``code``: a short machine-readable word)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class RpcTimeout(RpcError):
    """No answer in time (the peer may be down, or slow: the call may still have run)."""

    def __init__(self, message: str = "") -> None:
        super().__init__("timeout", message)


class Rpc:
    def __init__(self, send: Callable[[str, Any], None], *, pending_calls_max: int = 10_000) -> None:
        self._send = send
        self._handlers: dict[str, RpcHandler] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_calls_max = pending_calls_max

    def register(self, method: str, handler: RpcHandler) -> None:
        if method in self._handlers:
            raise ValueError(f"a handler for {method!r} is already registered")
        self._handlers[method] = handler

    def handler(self, method: str) -> RpcHandler:
        """The handler of ``method`` (RpcError "no_method" if none): for a call to oneself."""
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError("no_method", method)
        return handler

    async def call(self, peer: str, method: str, payload: Any = None, *, timeout_s: float = 5.0) -> Any:
        if len(self._pending) >= self._pending_calls_max:
            raise RpcError("busy", "too many calls in flight")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            try:
                self._send(peer, [_REQUEST, rid, method, payload])
            except KeyError as exc:
                raise RpcError("unknown_peer", str(peer)) from exc
            try:
                return await asyncio.wait_for(fut, timeout_s)
            except TimeoutError as exc:
                raise RpcTimeout(f"{method} to {peer} after {timeout_s} s") from exc
        finally:
            self._pending.pop(rid, None)

    def on_frame(self, src: str, frame: list[Any]) -> None:
        """Handle one RPC frame (``frame[0]`` is one of ``KINDS``)."""
        if frame[0] == _RESPONSE:
            if len(frame) != 4:
                return
            _, rid, ok, result = frame
            fut = self._pending.get(rid) if isinstance(rid, int) else None
            if fut is None or fut.done():
                return
            if ok:
                fut.set_result(result)
            elif isinstance(result, list) and len(result) == 2:
                fut.set_exception(RpcError(str(result[0]), str(result[1])))
            else:
                fut.set_exception(RpcError("internal", "malformed error"))
            return
        if len(frame) != 4 or not isinstance(frame[2], str):
            return
        _, rid, method, payload = frame
        task = asyncio.create_task(self._serve(src, rid, method, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, src: str, rid: Any, method: str, payload: Any) -> None:
        handler = self._handlers.get(method)
        if handler is None:
            reply = [_RESPONSE, rid, False, ["no_method", method]]
        else:
            try:
                reply = [_RESPONSE, rid, True, await handler(src, payload)]
            except RpcError as exc:
                reply = [_RESPONSE, rid, False, [exc.code, exc.message]]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("rpc %s from %s failed", method, src)
                reply = [_RESPONSE, rid, False, ["internal", repr(exc)]]
        try:
            self._send(src, reply)
        except KeyError:
            log.debug("cannot answer %s: %s is not a known peer", method, src)

    def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RpcError("closed", "the node is shutting down"))
