"""What a replica asks its driver to do: persist, send, apply, reply (``Ready``).

The driver loop (asyncio runtime and simulator alike) is::

    ready = replica.ready()
    persist_ready(storage, ready)   # 1. make ready.persist durable (in order), then
    for m in ready.messages: send(m) # 2. send
    if ready.apply_snapshot: restore(ready.apply_snapshot.data)   # 3. apply
    for e in ready.committed: apply(e)
    for r in ready.replies: answer(r) # 4. reply

Ordering rules (like etcd raft's ``Ready``):

1. ``persist`` must be durable before any message of the same Ready is sent. A Promise or
   Accepted tells another replica "I will remember this"; sending it first would let a crash
   forget a promise that a quorum was counted on. Readies are processed strictly in order: a
   Ready's messages may go out only after the persist actions of it and of every earlier Ready
   are durable.
2. ``apply_snapshot`` (if any) replaces the application state, then ``committed`` entries are
   applied in order, each exactly once (the core never hands out an index twice, except that a
   restarted replica replays from its snapshot: application state is assumed volatile).
3. ``replies`` come last: a ``ProposalCommitted`` or ``ReadGranted(read_index=X)`` is answered
   only once every entry up to X has been applied by step 2, so a read is served from applied
   state that includes every write committed before it.
4. Messages may be dropped, duplicated or reordered by the network: the core tolerates that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .messages import Message
from .values import Entry, HardState, Identity, NodeId, RequestId, Snapshot

__all__ = [
    "SaveIdentity",
    "SaveHardState",
    "PutEntries",
    "SaveSnapshot",
    "PersistAction",
    "ReplyReason",
    "ProposalCommitted",
    "ProposalRejected",
    "ReadGranted",
    "ReadRejected",
    "Reply",
    "Ready",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveIdentity:
    """Record whose log this storage holds (first Ready over an empty storage only)."""

    identity: Identity


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveHardState:
    hard_state: HardState


@dataclass(frozen=True, slots=True, kw_only=True)
class PutEntries:
    """Insert or overwrite these slots (by index). Slots are never deleted except by a snapshot."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveSnapshot:
    """Store the snapshot and drop every log entry at or below ``snapshot.index``."""

    snapshot: Snapshot


PersistAction = SaveIdentity | SaveHardState | PutEntries | SaveSnapshot


class ReplyReason(enum.Enum):
    NOT_LEADER = "not_leader"  # ask leader_hint instead (None when unknown)
    BUSY = "busy"  # too many queued proposals
    DROPPED = "dropped"  # leadership lost while in flight: outcome UNKNOWN, it may still commit
    NO_LEASE = "no_lease"  # leader without a valid lease cannot serve a lease read
    NOT_READY = "not_ready"  # new leader has not yet committed an entry of its ballot
    CONFIG_PENDING = "config_pending"  # another membership change is still uncommitted
    INVALID = "invalid"  # e.g. adding a voter that is already a member


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalCommitted:
    """The proposal (a command or a membership change) was chosen at ``index``."""

    request_id: RequestId
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalRejected:
    request_id: RequestId
    reason: ReplyReason
    leader_hint: NodeId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadGranted:
    """Serve the read from applied state at index ``read_index`` (already applied when this
    reply is handled, by the Ready ordering rules)."""

    request_id: RequestId
    read_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRejected:
    request_id: RequestId
    reason: ReplyReason
    leader_hint: NodeId | None = None


Reply = ProposalCommitted | ProposalRejected | ReadGranted | ReadRejected


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """One batch of work for the driver; see the module docstring for the ordering rules."""

    persist: tuple[PersistAction, ...] = ()
    messages: tuple[Message, ...] = ()
    apply_snapshot: Snapshot | None = None
    committed: tuple[Entry, ...] = ()
    replies: tuple[Reply, ...] = ()
    # Policy hint: enough applied entries sit above the last snapshot; the driver should call
    # replica.compact(applied_index, snapshot_bytes) when convenient.
    compact_hint: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.persist or self.messages or self.apply_snapshot or self.committed or self.replies
        )
