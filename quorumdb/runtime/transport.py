"""Inter-node messaging over persistent TCP connections (asyncio).

Each node dials one outbound connection to every peer and keeps it: on any error it reconnects
with capped exponential backoff. Messages to a peer wait in a bounded queue; when the queue is
full, or the peer is unreachable, the oldest messages are dropped — the consensus core already
tolerates lost messages, and an unbounded queue would hide a dead peer as growing memory.

Wire: length-prefixed msgpack frames (``framing``). A connection starts with a handshake: the
acceptor sends a random challenge, the dialer answers with its node id, the group id, a nonce
of its own, the address it listens on (so the acceptor can dial back a peer it did not know)
and HMAC-SHA256(secret, challenge | group | node | nonce | address). Both sides then derive a
session key from the secret and both nonces, and every later frame is
``[body, tag]`` where body is the msgpack of ``{"g": group, "f": from, "m": payload}`` and tag
is HMAC-SHA256(session key, frame number | body) truncated to 16 bytes; frame numbers count
from 0 per connection and are not sent, so a forged, altered, replayed, dropped or reordered
frame fails the check and the connection is dropped. Frames for another group are dropped.

This module never interprets payloads and never pickles.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack

from quorumdb.runtime.framing import FrameDecoder, FrameError, decode_body, encode_frame

__all__ = ["Transport", "Address", "session_key", "frame_tag", "hello_frame"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
_READ_BYTES = 256 * 1024


_TAG_BYTES = 16
_SEQ = struct.Struct(">Q")


def _mac(secret: bytes, nonce: bytes, group: str, node: str, dialer_nonce: bytes, addr: Any) -> bytes:
    msg = b"|".join((nonce, group.encode(), node.encode(), dialer_nonce, repr(addr).encode()))
    return hmac.new(secret, msg, hashlib.sha256).digest()


def session_key(secret: bytes, acceptor_nonce: bytes, dialer_nonce: bytes) -> bytes:
    return hmac.new(secret, b"session|" + acceptor_nonce + b"|" + dialer_nonce, hashlib.sha256).digest()


def frame_tag(key: bytes, seq: int, body: bytes) -> bytes:
    return hmac.new(key, _SEQ.pack(seq) + body, hashlib.sha256).digest()[:_TAG_BYTES]


def hello_frame(secret: bytes, challenge: bytes, *, node: str, group: str, nonce: bytes,
                addr: Address | None) -> dict[str, Any]:
    """The dialer's answer to the acceptor's challenge."""
    wire_addr = list(addr) if addr is not None else None
    return {"node": node, "group": group, "nonce": nonce, "addr": wire_addr,
            "mac": _mac(secret, challenge, group, node, nonce, wire_addr)}


class _Peer:
    __slots__ = ("node_id", "address", "queue", "wakeup", "task", "connected", "dropped")

    def __init__(self, node_id: str, address: Address, queue_frames_max: int) -> None:
        self.node_id = node_id
        self.address = address
        self.queue: collections.deque[bytes] = collections.deque(maxlen=queue_frames_max)  # bodies
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
        advertise: Address | None = None,
        learn_peers: bool = False,
        fault_file: str | None = None,
    ) -> None:
        """``advertise``: the address peers should dial us at, sent in the handshake (default:
        ``listen``). ``learn_peers``: add an authenticated dialer we do not know yet as a peer
        at the address it advertises (a cluster node learns joiners this way).

        ``fault_file`` (fault injection, for tests): a JSON file ``{"cut": [node ids]}``; while
        it lists a peer, every message to or from that peer is dropped, as if the network
        between the two were cut. Re-read at most every 50 ms; absent means no cut."""
        if node_id in peers:
            raise ValueError("peers must not include this node")
        self.node_id = node_id
        self.group = group
        self.listen = listen
        self.secret = secret
        self.on_message = on_message
        self.backoff_ms_max = backoff_ms_max
        self.advertise = advertise
        self.learn_peers = learn_peers
        self._queue_frames_max = queue_frames_max
        self._peers = {pid: _Peer(pid, addr, queue_frames_max) for pid, addr in peers.items()}
        self._server: asyncio.Server | None = None
        self._inbound: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._started = False
        self._closing = False
        self.rejected_frames = 0
        self._fault_file = fault_file
        self._cut: frozenset[str] = frozenset()
        self._cut_read = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen[0], self.listen[1])
        self._started = True
        for peer in self._peers.values():
            self._start_dialing(peer)

    def _start_dialing(self, peer: _Peer) -> None:
        peer.task = asyncio.create_task(self._dial_loop(peer), name=f"dial-{peer.node_id}")

    def peers(self) -> dict[str, Address]:
        return {pid: p.address for pid, p in self._peers.items()}

    def add_peer(self, node_id: str, address: Address) -> None:
        """Start talking to ``node_id`` at ``address`` (a new address replaces the old link)."""
        if node_id == self.node_id:
            return
        old = self._peers.get(node_id)
        if old is not None:
            if old.address == address:
                return
            self.remove_peer(node_id)
        peer = self._peers[node_id] = _Peer(node_id, address, self._queue_frames_max)
        if self._started and not self._closing:
            self._start_dialing(peer)

    def remove_peer(self, node_id: str) -> None:
        peer = self._peers.pop(node_id, None)
        if peer is not None and peer.task is not None:
            peer.task.cancel()

    @property
    def bound_address(self) -> Address:
        assert self._server is not None and self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [p.task for p in self._peers.values() if p.task is not None]
        for t in tasks:
            t.cancel()
        # Inbound links end by closing their sockets: cancelling a stream server's handler task
        # makes asyncio log the cancellation as an error.
        inbound = list(self._inbound)
        for w in self._inbound.values():
            w.close()
        if inbound:
            _, late = await asyncio.wait(inbound, timeout=1.0)
            tasks += list(late)
            for t in late:
                t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- sending ---------------------------------------------------------------------------------

    def _is_cut(self, peer_id: str) -> bool:
        if self._fault_file is None:
            return False
        now = time.monotonic()
        if now - self._cut_read > 0.05:
            self._cut_read = now
            try:
                with open(self._fault_file, "rb") as f:
                    self._cut = frozenset(str(n) for n in json.loads(f.read()).get("cut", []))
            except (OSError, ValueError, AttributeError):
                self._cut = frozenset()
        return peer_id in self._cut

    def send(self, to: str, payload: Any) -> None:
        """Queue ``payload`` for ``to``; never blocks. Dropped when the queue is full."""
        peer = self._peers.get(to)
        if peer is None:
            raise KeyError(f"unknown peer {to!r}")
        if self._is_cut(to):
            return
        if len(peer.queue) == peer.queue.maxlen:
            peer.dropped += 1
        peer.queue.append(msgpack.packb({"g": self.group, "f": self.node_id, "m": payload}, use_bin_type=True))
        peer.wakeup.set()

    def connected(self, peer: str) -> bool:
        return self._peers[peer].connected

    async def _dial_loop(self, peer: _Peer) -> None:
        backoff_ms = 10
        watcher: asyncio.Task[None] | None = None
        while not self._closing:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, writer = await asyncio.open_connection(*peer.address)
                decoder = FrameDecoder()
                challenge = await self._read_frame(reader, decoder)
                if not isinstance(challenge, dict) or not isinstance(challenge.get("nonce"), bytes):
                    raise FrameError("bad challenge")
                nonce = os.urandom(16)
                addr = self.advertise or self.bound_address
                writer.write(encode_frame(hello_frame(self.secret, challenge["nonce"], node=self.node_id,
                                                      group=self.group, nonce=nonce, addr=addr)))
                await writer.drain()
                key = session_key(self.secret, challenge["nonce"], nonce)
                seq = 0
                peer.connected = True
                backoff_ms = 10
                # The link is one-way: we never read from it, so a peer that died (kill -9, a
                # restart on the same port) shows up only as end-of-stream here. Watch for it,
                # or a write into a half-dead socket may be the only way to find out.
                watcher = asyncio.create_task(self._watch_eof(reader, writer, peer))
                while not self._closing:
                    if writer.is_closing() or watcher.done():
                        raise EOFError("the peer closed the link")
                    if not peer.queue:
                        peer.wakeup.clear()
                        await peer.wakeup.wait()
                        if writer.is_closing() or watcher.done():
                            raise EOFError("the peer closed the link")
                    chunk: list[bytes] = []
                    while peer.queue and len(chunk) < 256:
                        body = peer.queue.popleft()
                        chunk.append(encode_frame([body, frame_tag(key, seq, body)]))
                        seq += 1
                    writer.write(b"".join(chunk))
                    await writer.drain()
            except asyncio.CancelledError:
                raise
            except (OSError, FrameError, asyncio.IncompleteReadError, EOFError) as exc:
                log.debug("%s: link to %s failed: %s", self.node_id, peer.node_id, exc)
            finally:
                peer.connected = False
                if watcher is not None:
                    watcher.cancel()
                    watcher = None
                if writer is not None:
                    writer.close()
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(backoff_ms * 2, self.backoff_ms_max)

    @staticmethod
    async def _watch_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: _Peer) -> None:
        """Read (and discard) until the peer closes the link, then wake the dial loop."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(_READ_BYTES):
                pass
        writer.close()
        peer.wakeup.set()

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
        self._inbound[task] = writer
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
                or not isinstance(frame.get("nonce"), bytes)
                or not isinstance(frame.get("mac"), bytes)
                or not hmac.compare_digest(frame["mac"], _mac(self.secret, nonce, self.group, frame["node"],
                                                              frame["nonce"], frame.get("addr")))
            ):
                log.warning("%s: refused a peer that failed the handshake", self.node_id)
                return
            peer_id: str = frame["node"]
            addr = frame.get("addr")
            if (self.learn_peers and peer_id not in self._peers and isinstance(addr, list) and len(addr) == 2
                    and isinstance(addr[0], str) and isinstance(addr[1], int)):
                self.add_peer(peer_id, (addr[0], addr[1]))
            key = session_key(self.secret, nonce, frame["nonce"])
            seq = 0
            frames = rest
            while True:
                for f in frames:
                    self._deliver(peer_id, self._verify(key, seq, f))
                    seq += 1
                data = await reader.read(_READ_BYTES)
                if not data:
                    return
                frames = decoder.feed(data)
        except (OSError, FrameError, asyncio.IncompleteReadError, EOFError, TimeoutError) as exc:
            log.debug("%s: inbound link failed: %s", self.node_id, exc)
        finally:
            self._inbound.pop(task, None)
            writer.close()

    async def _read_frame_keep(self, reader: asyncio.StreamReader, decoder: FrameDecoder) -> tuple[Any, list[Any]]:
        while True:
            data = await reader.read(_READ_BYTES)
            if not data:
                raise EOFError("connection closed during handshake")
            frames = decoder.feed(data)
            if frames:
                return frames[0], frames[1:]

    def _verify(self, key: bytes, seq: int, frame: Any) -> Any:
        """The body of an authenticated frame; FrameError (the link is dropped) otherwise."""
        if (not isinstance(frame, list) or len(frame) != 2 or not isinstance(frame[0], bytes)
                or not isinstance(frame[1], bytes)
                or not hmac.compare_digest(frame[1], frame_tag(key, seq, frame[0]))):
            self.rejected_frames += 1
            log.warning("%s: dropped a link on a frame that failed authentication", self.node_id)
            raise FrameError("frame failed authentication")
        return decode_body(frame[0])

    def _deliver(self, peer_id: str, frame: Any) -> None:
        if not isinstance(frame, dict) or frame.get("g") != self.group or frame.get("f") != peer_id:
            return
        if self._is_cut(peer_id):
            return
        try:
            self.on_message(peer_id, frame.get("m"))
        except Exception:  # a bad payload must not take the link down
            log.exception("%s: handler failed on a message from %s", self.node_id, peer_id)
