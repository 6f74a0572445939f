"""A cluster node process: the ``ClusterNode`` plus the DynamoDB HTTP API on its port.

``quorumdb serve --node-id ...`` lands here. The HTTP server answers DynamoDB requests through
``make_dataplane(node)`` and ``GET /cluster/status`` with the cluster's status as JSON (every
member asked, see ``ClusterNode.cluster_status``); ``GET /cluster/indexes`` with this node's
global-index outboxes. Prints one ``QuorumDB node ... listening``
line once both the peer and the HTTP ports listen; stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import orjson

from quorumdb.api import early_stop
from quorumdb.api.dispatch import Dispatcher
from quorumdb.api.server import RECURSION_LIMIT, Server
from quorumdb.cluster.node import ClusterConfig, ClusterNode
from quorumdb.cluster.rpc import RpcError
from quorumdb.cluster.wiring import MAX_HOPS, hops, make_dataplane
from quorumdb.errors import InternalServerError

__all__ = ["serve_node", "run_node", "STATUS_PATH", "INDEXES_PATH"]

log = logging.getLogger(__name__)

STATUS_PATH = b"/cluster/status"
INDEXES_PATH = b"/cluster/indexes"  # this node's global-index outboxes (``IndexWork.status``)


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

    async def status() -> tuple[int, bytes]:
        try:
            return 200, orjson.dumps(await node.cluster_status())
        except Exception:
            log.exception("cluster status failed")
            return 503, orjson.dumps({"error": "status unavailable"})

    async def indexes() -> tuple[int, bytes]:
        return 200, orjson.dumps(db.indexes.status())

    server.routes[STATUS_PATH] = status
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
        done = hops.get()
        if done >= MAX_HOPS or node_id == node.node_id:
            err = InternalServerError("Internal server error (the partition's leader is moving)")
            return err.http_status, orjson.dumps(err.body())
        try:
            status, out = await node.call(node_id, "api.forward",
                                          {"t": target, "b": body, "r": request_id, "h": done + 1},
                                          timeout_s=15.0)
        except RpcError:
            err = InternalServerError("Internal server error (the partition's leader did not answer)")
            return err.http_status, orjson.dumps(err.body())
        return int(status), bytes(out)

    async def serve_forward(src: str, payload: Any) -> Any:
        hops.set(int(payload["h"]))
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
