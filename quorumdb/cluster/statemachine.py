"""What a replication group applies its committed commands to: the ``StateMachine`` protocol.

The node runtime hands every committed command of a group, in log order, to that group's state
machine: ``apply(index, command_bytes) -> result``; the result goes back to whoever proposed
the command on this node. Groups run with one command per log slot, so ``index`` identifies a
command and a durable state machine can skip what it applied before a restart (a restarted
replica replays its log from its last snapshot). A snapshot must carry its own index. ``snapshot()`` / ``restore(data)`` let the log be compacted and a
lagging replica be caught up by snapshot. The meta group runs ``MetadataStateMachine``;
partition groups run whatever ``PartitionStateMachine`` factory the node is given
(``KVStateMachine`` here, a tiny key-value map for tests and demos; the DynamoDB data plane
plugs its own in).

Implementations must be deterministic: the same commands give the same state and results on
every replica. This module must never do I/O or read a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgpack

from quorumdb.cluster.metadata import Metadata, PartitionInfo

__all__ = [
    "StateMachine",
    "PartitionStateMachine",
    "PartitionFactory",
    "GroupHandle",
    "MetadataStateMachine",
    "KVStateMachine",
    "pack",
    "unpack",
]


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class StateMachine(Protocol):
    def apply(self, index: int, command: bytes) -> Any:
        """Apply the committed ``command`` at log ``index``; return the proposer's result
        (msgpack-able). Must not raise on a malformed command: refuse it in the result."""
        ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a ``snapshot()`` (b"" means the empty state)."""
        ...


# A partition group's state machine is a StateMachine; the name documents the seam.
PartitionStateMachine = StateMachine


class GroupHandle(Protocol):
    """What a partition's state machine gets from the node runtime for its own group
    (``ClusterNode.handle(group_id)``; see ``node._Handle`` for the errors it raises)."""

    def leader(self) -> str | None: ...

    def is_leader(self) -> bool: ...

    async def propose(self, command: bytes) -> Any: ...

    async def lease_read(self) -> None: ...


# Builds the state machine of a partition group when a node starts hosting one.
PartitionFactory = Callable[[PartitionInfo, GroupHandle], PartitionStateMachine]


class MetadataStateMachine:
    """The meta group's state machine: msgpack commands applied to a ``Metadata``."""

    def __init__(self) -> None:
        self.metadata = Metadata()

    def apply(self, index: int, command: bytes) -> Any:
        try:
            decoded = unpack(command)
        except Exception:  # msgpack raises several unrelated types
            decoded = None
        return self.metadata.apply(index, decoded)

    def snapshot(self) -> bytes:
        return self.metadata.snapshot()

    def restore(self, data: bytes) -> None:
        self.metadata = Metadata.restore(data) if data else Metadata()


class KVStateMachine:
    """A key-value map: commands ``{"op": "put", "key", "value"}``, ``{"op": "get", "key"}``,
    ``{"op": "delete", "key"}`` (msgpack); ``put``/``delete`` return the previous value."""

    def __init__(self, partition: PartitionInfo | None = None, handle: GroupHandle | None = None) -> None:
        self.partition = partition
        self.handle = handle
        self.data: dict[str, Any] = {}
        self.applied_index = 0

    def apply(self, index: int, command: bytes) -> Any:
        self.applied_index = index
        try:
            c = unpack(command)
            op, key = c["op"], c["key"]
        except Exception:
            return {"ok": False, "error": "invalid command"}
        if not isinstance(key, str):
            return {"ok": False, "error": "invalid key"}
        if op == "put":
            old = self.data.get(key)
            self.data[key] = c.get("value")
            return {"ok": True, "result": old}
        if op == "delete":
            return {"ok": True, "result": self.data.pop(key, None)}
        if op == "get":
            return {"ok": True, "result": self.data.get(key)}
        return {"ok": False, "error": "invalid op"}

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        return pack([self.applied_index, self.data])

    def restore(self, data: bytes) -> None:
        self.applied_index, raw = unpack(data) if data else (0, {})
        self.data = dict(raw)
