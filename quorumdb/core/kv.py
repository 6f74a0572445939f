"""A tiny key-value state machine replicated by the consensus core (run by both drivers: the
simulator and the asyncio runtime, which is why it lives in core).

Commands are msgpack bytes ``{"op": "put"|"get"|"cas"|"delete", "key", "value", "expected",
"id"}``; the log carries them opaquely. ``apply`` is deterministic, so every replica that applies
the same log reaches the same state (its ``digest``). ``id`` is the client's request id, echoed
back so a driver can match the result to the waiting client.

This module never does I/O; snapshots are bytes the driver stores where it likes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

__all__ = ["KVStateMachine", "encode_command", "decode_command"]


def encode_command(op: str, key: str, *, value: Any = None, expected: Any = None, req_id: Any = None) -> bytes:
    if op not in ("put", "get", "cas", "delete"):
        raise ValueError(f"unknown kv op {op!r}")
    return msgpack.packb({"op": op, "key": key, "value": value, "expected": expected, "id": req_id},
                         use_bin_type=True)


def decode_command(data: bytes) -> dict[str, Any]:
    cmd = msgpack.unpackb(data, raw=False)
    if not isinstance(cmd, dict) or "op" not in cmd:
        raise ValueError("not a kv command")
    return cmd


@dataclass(slots=True)
class KVStateMachine:
    data: dict[str, Any] = field(default_factory=dict)
    applied_index: int = 0

    def apply(self, index: int, command: bytes | None) -> Any:
        """Apply the command committed at ``index`` (None or non-kv bytes: a no-op)."""
        if index != self.applied_index + 1:
            raise AssertionError(f"apply out of order: {index} after {self.applied_index}")
        self.applied_index = index
        if not command:
            return None
        try:
            cmd = decode_command(command)
        except (ValueError, msgpack.UnpackException):
            # Not a kv command (e.g. a foreign payload in the shared log): a deliberate no-op,
            # identical on every replica. Anything else is a bug and must surface.
            return None
        return self.execute(cmd)

    def execute(self, cmd: dict[str, Any]) -> Any:
        op, key = cmd["op"], cmd["key"]
        if op == "put":
            self.data[key] = cmd["value"]
            return None
        if op == "delete":
            self.data.pop(key, None)
            return None
        if op == "get":
            return self.data.get(key)
        if op == "cas":
            if self.data.get(key) == cmd["expected"]:
                self.data[key] = cmd["value"]
                return True
            return False
        raise ValueError(f"unknown kv op {op!r}")

    def prepare(self, command: bytes, ballot: Any) -> bytes:
        """What the leader proposes for a client's command: the command itself (replicas
        execute it); the simulator's table state machine proposes evaluated effects instead."""
        return command

    def apply_command(self, index: int, position: int, data: bytes) -> Any:
        """Execute one command of the entry at ``index`` (the caller advances applied_index)."""
        try:
            return self.execute(decode_command(data))
        except (ValueError, msgpack.UnpackException):
            return None

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        return msgpack.packb({"i": self.applied_index, "d": self.data}, use_bin_type=True)

    def restore(self, blob: bytes) -> None:
        snap = msgpack.unpackb(blob, raw=False)
        self.applied_index = snap["i"]
        self.data = dict(snap["d"])

    def digest(self) -> str:
        return hashlib.sha256(msgpack.packb(sorted(self.data.items()), use_bin_type=True)).hexdigest()[:16]
