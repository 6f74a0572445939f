"""Multi-Paxos replication core: a pure state machine per replication group (sans-I/O).

Drive a ``Replica`` with ``step(msg, now_ms)``, ``tick(now_ms)``, ``propose(...)``,
``read(...)``, ``change_membership(...)``, ``compact(...)``; then take ``ready()`` and do what it
says in order: persist (``persist_ready(storage, ready)``) -> send ``ready.messages`` -> apply
``ready.apply_snapshot`` / ``ready.committed`` -> answer ``ready.replies``. Messages travel as
``to_wire(msg)`` / ``from_wire(raw)`` lists (msgpack-ready); each names its group, src and dst.

This package never imports asyncio, reads a clock or uses unseeded randomness; it imports
nothing from ``runtime``, ``sim`` or ``api``.
"""

from .config import PaxosConfig
from .log import LogStorage, MemoryLogStorage, StoredState, persist_ready, start_identity
from .messages import (
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatAck,
    InstallSnapshot,
    Message,
    Prepare,
    Promise,
    RejectReason,
    from_wire,
    to_wire,
)
from .ready import (
    PersistAction,
    ProposalCommitted,
    ProposalRejected,
    PutEntries,
    ReadGranted,
    ReadRejected,
    Ready,
    Reply,
    ReplyReason,
    SaveHardState,
    SaveIdentity,
    SaveSnapshot,
)
from .replica import Replica, Role
from .values import (
    ZERO_BALLOT,
    Ballot,
    Command,
    ConfigChange,
    Entry,
    EntryKind,
    GroupId,
    HardState,
    Identity,
    Membership,
    NodeId,
    RequestId,
    Snapshot,
    incarnation_id,
    node_incarnation,
    node_name,
)

__all__ = [
    "PaxosConfig",
    "LogStorage",
    "MemoryLogStorage",
    "StoredState",
    "persist_ready",
    "start_identity",
    "Accept",
    "Accepted",
    "Heartbeat",
    "HeartbeatAck",
    "InstallSnapshot",
    "Message",
    "Prepare",
    "Promise",
    "RejectReason",
    "from_wire",
    "to_wire",
    "PersistAction",
    "ProposalCommitted",
    "ProposalRejected",
    "PutEntries",
    "ReadGranted",
    "ReadRejected",
    "Ready",
    "Reply",
    "ReplyReason",
    "SaveHardState",
    "SaveIdentity",
    "SaveSnapshot",
    "Replica",
    "Role",
    "ZERO_BALLOT",
    "Ballot",
    "Command",
    "ConfigChange",
    "Entry",
    "EntryKind",
    "GroupId",
    "HardState",
    "Identity",
    "Membership",
    "NodeId",
    "RequestId",
    "Snapshot",
    "incarnation_id",
    "node_incarnation",
    "node_name",
]
