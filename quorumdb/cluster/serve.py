"""A cluster node process: the ``ClusterNode`` plus the DynamoDB HTTP API on its port.

``quorumdb serve --node-id ...`` lands here. The HTTP server answers DynamoDB requests through
``make_dataplane(node)``, ``GET /cluster/status`` with the cluster's status as JSON (every
member asked, see ``ClusterNode.cluster_status``), ``GET /cluster/indexes`` with this node's
global-index outboxes and ``POST /cluster/leave?node=N&token=T``
(an operator removing node N: its replicas move to the other nodes first; T is
``launcher.admin_token`` of the cluster secret). Prints one ``QuorumDB node ... listening``
line once both the peer and the HTTP ports listen; stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from quorumdb.api import early_stop
from quorumdb.api.dispatch import Dispatcher
from quorumdb.api.server import RECURSION_LIMIT, Server
from quorumdb.cluster.launcher import admin_token
from quorumdb.cluster.metadata import cmd_leave
from quorumdb.cluster.node import ClusterConfig, ClusterNode, GroupError
from quorumdb.cluster.rpc import RpcError
from quorumdb.cluster.wiring import MAX_HOPS, hops, make_dataplane
from quorumdb.errors import InternalServerError

__all__ = ["serve_node", "run_node", "STATUS_PATH", "INDEXES_PATH"]

log = logging.getLogger(__name__)

STATUS_PATH = b"/cluster/status"
INDEXES_PATH = b"/cluster/indexes"  # this node's global-index outboxes (``IndexWork.status``)
LEAVE_PATH = b"/cluster/leave"
FORWARD_WAIT_S = 10.0  # how long a request may wait for its partition's leader to settle
RETRY_PAUSE_S = 0.2
# When the request being served must be answered by (its local event-loop time).
deadline: contextvars.ContextVar[float] = contextvars.ContextVar("quorumdb_forward_deadline", default=0.0)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def serve_node(
    config: ClusterConfig,
    host: str,
    *,
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a cluster node until SIGINT/SIGTERM (or ``stop``); ``config.api_address`` is where the
    HTTP API listens."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))  # as the single node
    node = ClusterNode(config)
    db = make_dataplane(node)  # before start: it may set the partition factory, register RPCs
    await node.start()
    await db.start()
    dispatcher = Dispatcher(db)
    wire_forwarding(node, dispatcher)
    server = Server(dispatcher)

    async def status(target: bytes) -> tuple[int, bytes]:
        try:
            return 200, orjson.dumps(await node.cluster_status())
        except Exception:
            log.exception("cluster status failed")
            return 503, orjson.dumps({"error": "status unavailable"})

    async def leave(target: bytes) -> tuple[int, bytes]:
        query = parse_qs(urlsplit(target.decode("latin-1")).query)
        name, token = (query.get("node") or [""])[0], (query.get("token") or [""])[0]
        if not name or not config.secret or not hmac.compare_digest(token, admin_token(config.secret, "leave", name)):
            return 403, orjson.dumps({"error": "a valid token for this node is required"})
        try:
            result = await node.meta_propose(cmd_leave(name))
        except GroupError as exc:
            return 503, orjson.dumps({"error": f"the metadata group did not answer ({exc.reason})"})
        return (200 if result.get("ok") else 409), orjson.dumps(result)

    async def indexes(target: bytes) -> tuple[int, bytes]:
        return 200, orjson.dumps(db.indexes.status())

    server.routes[STATUS_PATH] = status
    server.routes[LEAVE_PATH] = leave
    server.routes[INDEXES_PATH] = indexes
    try:
        await server.start(host, config.api_address[1])
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if early_stop.requested():  # stopped while starting
            stop.set()
        peer = node.peer_address
        line = (f"QuorumDB node {config.node_id} listening on {server.url} "
                f"(peer {peer[0]}:{peer[1]}, data: {config.data_dir})")
        (announce or (lambda s: print(s, flush=True)))(line)
        await stop.wait()
        await server.close()
    finally:
        await db.close()
        await node.close()


def wire_forwarding(node: ClusterNode, dispatcher: Dispatcher) -> None:
    """Requests a data plane says belong to another node go there whole (``Forward``)."""

    async def forward(node_id: str, target: bytes | None, body: bytes, request_id: str) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        until = deadline.get() or loop.time() + FORWARD_WAIT_S
        if hops.get() >= MAX_HOPS or node_id == node.node_id:
            # The nodes disagree on who leads (an election or a replica move is under way):
            # wait a little and serve the request again from here, until the deadline. (In a
            # context of its own: the HTTP server runs a connection's requests in one context.)
            if loop.time() + RETRY_PAUSE_S >= until:
                err = InternalServerError("Internal server error (the partition's leader is moving)")
                return err.http_status, orjson.dumps(err.body())
            await asyncio.sleep(RETRY_PAUSE_S)
            ctx = contextvars.copy_context()
            ctx.run(hops.set, 0)
            ctx.run(deadline.set, until)
            return await loop.create_task(dispatcher.handle(target, body, request_id, verified=True), context=ctx)
        try:
            status, out = await node.call(node_id, "api.forward",
                                          {"t": target, "b": body, "r": request_id, "h": hops.get() + 1,
                                           "w": max(0.0, until - loop.time())},
                                          timeout_s=FORWARD_WAIT_S + 5.0)
        except RpcError:
            err = InternalServerError("Internal server error (the partition's leader did not answer)")
            return err.http_status, orjson.dumps(err.body())
        return int(status), bytes(out)

    async def serve_forward(src: str, payload: Any) -> Any:
        hops.set(int(payload["h"]))
        deadline.set(asyncio.get_running_loop().time() + float(payload.get("w", FORWARD_WAIT_S)))
        status, out = await dispatcher.handle(payload["t"], payload["b"], payload["r"], verified=True)
        return [status, out]

    dispatcher.forward = forward
    node.register("api.forward", serve_forward)


def run_node(config: ClusterConfig, host: str) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(serve_node(config, host))
    else:
        uvloop.run(serve_node(config, host))
    return 0
