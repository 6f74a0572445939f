"""Inter-node messaging over persistent TCP connections (asyncio).

Each node dials one outbound connection to every peer and keeps it: on any error it reconnects
with capped exponential backoff. Messages to a peer wait in a bounded queue; when the queue is
full, or the peer is unreachable, the oldest messages are dropped — the consensus core already
tolerates lost messages, and an unbounded queue would hide a dead peer as growing memory.

Wire: length-prefixed msgpack frames (``framing``). A connection starts with a handshake: the
acceptor sends a random challenge, the dialer answers with its node id, the group id and
HMAC-SHA256(secret, challenge | group | node). After that every frame is
``{"g": group, "f": from, "m": payload}``; frames for another group are dropped.

This module never interprets payloads and never pickles.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from typing import Any

from quorumdb.runtime.framing import FrameDecoder, FrameError, encode_frame

__all__ = ["Transport", "Address"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
_READ_BYTES = 256 * 1024


def _mac(secret: bytes, nonce: bytes, group: str, node: str) -> bytes:
    return hmac.new(secret, nonce + b"|" + group.encode() + b"|" + node.encode(), hashlib.sha256).digest()


class _Peer:
    __slots__ = ("node_id", "address", "queue", "wakeup", "task", "connected", "dropped")

    def __init__(self, node_id: str, address: Address, queue_frames_max: int) -> None:
        self.node_id = node_id
        self.address = address
        self.queue: collections.deque[bytes] = collections.deque(maxlen=queue_frames_max)
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.connected = False
        self.dropped = 0


class Transport:
    def __init__(
        self,
        *,
        node_id: str,
        group: str,
        listen: Address,
        peers: dict[str, Address],
        on_message: Callable[[str, Any], None],
        secret: bytes = b"",
        queue_frames_max: int = 4096,
        backoff_ms_max: int = 1000,
    ) -> None:
        if node_id in peers:
            raise ValueError("peers must not include this node")
        self.node_id = node_id
        self.group = group
        self.listen = listen
        self.secret = secret
        self.on_message = on_message
        self.backoff_ms_max = backoff_ms_max
        self._peers = {pid: _Peer(pid, addr, queue_frames_max) for pid, addr in peers.items()}
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen[0], self.listen[1])
        for peer in self._peers.values():
            peer.task = asyncio.create_task(self._dial_loop(peer), name=f"dial-{peer.node_id}")

    @property
    def bound_address(self) -> Address:
        assert self._server is not None and self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [p.task for p in self._peers.values() if p.task is not None] + list(self._inbound)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, to: str, payload: Any) -> None:
        """Queue ``payload`` for ``to``; never blocks. Dropped when the queue is full."""
        peer = self._peers.get(to)
        if peer is None:
            raise KeyError(f"unknown peer {to!r}")
        if len(peer.queue) == peer.queue.maxlen:
            peer.dropped += 1
        peer.queue.append(encode_frame({"g": self.group, "f": self.node_id, "m": payload}))
        peer.wakeup.set()

    def connected(self, peer: str) -> bool:
        return self._peers[peer].connected

    async def _dial_loop(self, peer: _Peer) -> None:
        backoff_ms = 10
        while not self._closing:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, writer = await asyncio.open_connection(*peer.address)
                decoder = FrameDecoder()
                challenge = await self._read_frame(reader, decoder)
                if not isinstance(challenge, dict) or not isinstance(challenge.get("nonce"), bytes):
                    raise FrameError("bad challenge")
                hello = {
                    "node": self.node_id,
                    "group": self.group,
                    "mac": _mac(self.secret, challenge["nonce"], self.group, self.node_id),
                }
                writer.write(encode_frame(hello))
                await writer.drain()
                peer.connected = True
                backoff_ms = 10
                while not self._closing:
                    if not peer.queue:
                        peer.wakeup.clear()
                        await peer.wakeup.wait()
                    chunk: list[bytes] = []
                    while peer.queue and len(chunk) < 256:
                        chunk.append(peer.queue.popleft())
                    writer.write(b"".join(chunk))
                    await writer.drain()
            except asyncio.CancelledError:
                raise
            except (OSError, FrameError, asyncio.IncompleteReadError, EOFError) as exc:
                log.debug("%s: link to %s failed: %s", self.node_id, peer.node_id, exc)
            finally:
                peer.connected = False
                if writer is not None:
                    writer.close()
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(backoff_ms * 2, self.backoff_ms_max)

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader, decoder: FrameDecoder) -> Any:
        while True:
            data = await reader.read(_READ_BYTES)
            if not data:
                raise EOFError("connection closed during handshake")
            frames = decoder.feed(data)
            if frames:
                if len(frames) > 1:
                    raise FrameError("unexpected frames during handshake")
                return frames[0]

    # -- receiving -------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inbound.add(task)
        try:
            nonce = os.urandom(16)
            writer.write(encode_frame({"nonce": nonce}))
            await writer.drain()
            decoder = FrameDecoder()
            hello = await asyncio.wait_for(self._read_frame_keep(reader, decoder), timeout=5)
            frame, rest = hello
            if (
                not isinstance(frame, dict)
                or frame.get("group") != self.group
                or not isinstance(frame.get("node"), str)
                or not isinstance(frame.get("mac"), bytes)
                or not hmac.compare_digest(frame["mac"], _mac(self.secret, nonce, self.group, frame["node"]))
            ):
                log.warning("%s: refused a peer that failed the handshake", self.node_id)
                return
            peer_id: str = frame["node"]
            for f in rest:
                self._deliver(peer_id, f)
            while True:
                data = await reader.read(_READ_BYTES)
                if not data:
                    return
                for f in decoder.feed(data):
                    self._deliver(peer_id, f)
        except (OSError, FrameError, asyncio.IncompleteReadError, EOFError, TimeoutError) as exc:
            log.debug("%s: inbound link failed: %s", self.node_id, exc)
        finally:
            self._inbound.discard(task)
            writer.close()

    async def _read_frame_keep(self, reader: asyncio.StreamReader, decoder: FrameDecoder) -> tuple[Any, list[Any]]:
        while True:
            data = await reader.read(_READ_BYTES)
            if not data:
                raise EOFError("connection closed during handshake")
            frames = decoder.feed(data)
            if frames:
                return frames[0], frames[1:]

    def _deliver(self, peer_id: str, frame: Any) -> None:
        if not isinstance(frame, dict) or frame.get("g") != self.group or frame.get("f") != peer_id:
            return
        try:
            self.on_message(peer_id, frame.get("m"))
        except Exception:  # a bad payload must not take the link down
            log.exception("%s: handler failed on a message from %s", self.node_id, peer_id)
