"""A Multi-Paxos key-value node on asyncio: the same core the simulator drives, over real TCP
and a real disk.

The Ready loop is the simulator's: persist (LMDB, one fsync per Ready) -> send (``Transport``)
-> apply (``KVStateMachine``) -> reply to waiting clients. Clients speak a tiny protocol on a
separate port: length-prefixed msgpack frames ``{"id", "op": put|get|cas|delete|status, "key",
"value", "expected"}`` answered by ``{"id", "ok", "result"}`` or ``{"id", "ok": False, "error",
"leader"}`` where error ``"dropped"`` means the outcome is unknown (it may still commit) and
any other error means it certainly did not happen.

Identity: the node runs as the node id its log storage records. With an empty storage it
bootstraps the founding group (``peers``) only when ``bootstrap`` is set; a node restarted with
``bootstrap=False`` on an empty (e.g. wiped) disk comes up as a new incarnation
(``name@<random>``) that no membership contains, so it never votes with promises it forgot.
(Re-adding it takes a membership change; this toy client protocol has no operation for that.)
Peers are addressed by name, whatever the incarnation.

This module holds no consensus logic; it only moves bytes and time in and out of the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

from quorumdb.core.kv import KVStateMachine, decode_command, encode_command
from quorumdb.core.paxos import (
    Entry,
    PaxosConfig,
    ProposalCommitted,
    ProposalRejected,
    ReadGranted,
    ReadRejected,
    Replica,
    ReplyReason,
    from_wire,
    node_name,
    persist_ready,
    start_identity,
    to_wire,
)
from quorumdb.runtime.clock import monotonic_ms
from quorumdb.runtime.framing import FrameDecoder, FrameError, encode_frame
from quorumdb.runtime.storage import LMDBLogStorage
from quorumdb.runtime.transport import Address, Transport

__all__ = ["NodeConfig", "PaxosKVNode"]

log = logging.getLogger(__name__)
GROUP = "kv"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node_id: str
    peers: dict[str, Address]  # every voter, this node included
    client_address: Address
    data_dir: str
    secret: bytes = b""
    tick_ms: int = 10
    paxos: PaxosConfig = PaxosConfig()
    compact_every_entries: int = 5000
    cluster_id: str = GROUP
    # Whether an empty storage may bootstrap the founding group. Set it only when the cluster is
    # first formed: a founder whose disk was wiped must restart with bootstrap=False.
    bootstrap: bool = True


class PaxosKVNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.storage = LMDBLogStorage(os.path.join(config.data_dir, "paxos"))
        self.kv = KVStateMachine()
        stored = self.storage.load()
        if stored.snapshot is not None and stored.snapshot.data:
            self.kv.restore(stored.snapshot.data)
        self.kv.applied_index = stored.snapshot.index if stored.snapshot is not None else 0
        self._compacted = self.kv.applied_index
        rng = random.Random(os.urandom(16))
        node_id, initial_voters = start_identity(
            stored, name=config.node_id, founders=tuple(config.peers) if config.bootstrap else None,
            fresh_incarnation=lambda: rng.randrange(2, 1 << 62),
        )
        self.replica = Replica(
            GROUP, node_id, config.paxos, self.storage, rng,
            initial_voters=initial_voters, cluster_id=config.cluster_id,
        )
        others = {k: v for k, v in config.peers.items() if k != config.node_id}
        self.transport = Transport(
            node_id=config.node_id, group=GROUP, listen=config.peers[config.node_id], peers=others,
            on_message=self._on_message, secret=config.secret,
        )
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reads: dict[str, str] = {}
        self._results: dict[str, Any] = {}
        self._ids = itertools.count()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.transport.start()
        self._server = await asyncio.start_server(self._serve_client, *self.config.client_address)
        self._ticker = asyncio.create_task(self._tick_loop())
        self._drain()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
        await self.transport.close()
        self.storage.close()

    # -- the Ready loop ----------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            self.replica.tick(monotonic_ms())
            self._drain()

    def _on_message(self, src: str, payload: Any) -> None:
        try:
            msg = from_wire(payload)
        except ValueError:
            log.warning("%s: malformed message from %s", self.config.node_id, src)
            return
        if node_name(msg.src) != src or msg.dst != self.replica.node_id:
            return  # forged, or for another incarnation of this node
        self.replica.step(msg, monotonic_ms())
        self._drain()

    def _drain(self) -> None:
        while True:
            ready = self.replica.ready()
            if not ready:
                return
            persist_ready(self.storage, ready)  # durable (fsync) before anything is sent
            for m in ready.messages:
                self.transport.send(node_name(m.dst), to_wire(m))
            if ready.apply_snapshot is not None:
                snap = ready.apply_snapshot
                self.kv = KVStateMachine()
                if snap.data:
                    self.kv.restore(snap.data)
                self.kv.applied_index = snap.index
                self._compacted = max(self._compacted, snap.index)
            for e in ready.committed:
                self._apply(e)
            for reply in ready.replies:
                self._reply(reply)
            if (ready.compact_hint and self.kv.applied_index > self._compacted
                    and self.kv.applied_index == self.replica.applied_index):
                self.replica.compact(self.kv.applied_index, self.kv.snapshot())
                self._compacted = self.kv.applied_index

    def _apply(self, e: Entry) -> None:
        assert self.kv.applied_index == e.index - 1, (self.kv.applied_index, e.index)
        self.kv.applied_index = e.index
        for c in e.commands:
            try:
                result = self.kv.execute(decode_command(c.data))
            except ValueError:
                result = None
            rid = str(c.request_id)
            if rid in self._waiting:
                self._results[rid] = result

    def _reply(self, reply: Any) -> None:
        rid = str(reply.request_id)
        fut = self._waiting.pop(rid, None)
        if fut is None or fut.done():
            self._results.pop(rid, None)
            return
        match reply:
            case ProposalCommitted():
                if rid in self._results:
                    fut.set_result({"ok": True, "result": self._results.pop(rid)})
                else:
                    fut.set_result({"ok": False, "error": "dropped", "leader": None})
            case ReadGranted():
                key = self._reads.pop(rid)
                fut.set_result({"ok": True, "result": self.kv.read(key)})
            case ProposalRejected() | ReadRejected():
                self._reads.pop(rid, None)
                fut.set_result({"ok": False, "error": reply.reason.value, "leader": reply.leader_hint})

    # -- clients -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        r = self.replica
        return {
            "node": self.config.node_id, "role": r.role.value, "leader": r.leader_id,
            "ballot": str(r.ballot), "commit_index": r.commit_index, "applied_index": self.kv.applied_index,
        }

    async def execute(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "status":
            return {"ok": True, "result": self.status()}
        key = req.get("key")
        if not isinstance(key, str):
            return {"ok": False, "error": ReplyReason.INVALID.value, "leader": None}
        rid = f"{self.config.node_id}.{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        if op == "get":
            self._reads[rid] = key
            self.replica.read(rid, monotonic_ms())
        elif op in ("put", "cas", "delete"):
            self.replica.propose(encode_command(op, key, value=req.get("value"), expected=req.get("expected")), rid)
        else:
            del self._waiting[rid]
            return {"ok": False, "error": ReplyReason.INVALID.value, "leader": None}
        self._drain()
        try:
            return await fut
        finally:
            self._waiting.pop(rid, None)
            self._reads.pop(rid, None)
            self._results.pop(rid, None)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(frame_size_bytes_max=1 << 20)
        tasks: set[asyncio.Task[None]] = set()

        async def answer(req: dict[str, Any]) -> None:
            resp = await self.execute(req)
            resp["id"] = req.get("id")
            writer.write(encode_frame(resp))

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for req in decoder.feed(data):
                    if isinstance(req, dict):
                        t = asyncio.create_task(answer(req))
                        tasks.add(t)
                        t.add_done_callback(tasks.discard)
        except (OSError, FrameError):
            pass
        finally:
            for t in tasks:
                t.cancel()
            writer.close()
