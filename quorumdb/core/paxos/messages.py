"""Messages between the replicas of one Multi-Paxos group, and their wire form.

Every message is its own envelope: it names its ``group_id`` (many groups share one node's
transport), its sender ``src`` and its destination ``dst``. Messages are frozen, slotted,
keyword-only dataclasses that validate when built. ``to_wire(msg)`` turns one into a plain list
(``[tag, group_id, src, dst, *fields]``) that msgpack can encode; ``from_wire(raw)`` validates
and rebuilds it. The tags are part of the wire format and never change meaning.

The vocabulary (b is a ballot):

* ``Prepare(b, first_index)``: phase 1a for every slot >= first_index at once.
* ``Promise(b, ok, ...)``: phase 1b; carries every entry the acceptor accepted at slots
  >= first_index and its commit index (entries up to it are chosen).
* ``Accept(b, entries, commit_index)``: phase 2a for a batch of slots; also catch-up. Entries at
  or below ``commit_index`` are chosen values; the others carry ballot b.
* ``Accepted(b, ok, match_index, hole)``: phase 2b; ``match_index`` is the highest slot up to
  which the acceptor holds ballot-b (or chosen) values with no gap.
* ``Heartbeat(b, commit_index, sent_ms)`` / ``HeartbeatAck``: leader liveness, commit index
  propagation and the leader lease (``sent_ms`` is the leader's clock, echoed back).
* ``InstallSnapshot(b, snapshot, commit_index)``: catch-up below the leader's compaction point;
  answered with ``Accepted``.

This module must never do I/O or import from ``runtime``, ``sim`` or ``api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .values import Ballot, Entry, Snapshot, _check_index, _check_node

__all__ = [
    "Message",
    "Prepare",
    "Promise",
    "Accept",
    "Accepted",
    "Heartbeat",
    "HeartbeatAck",
    "InstallSnapshot",
    "RejectReason",
    "to_wire",
    "from_wire",
]


class RejectReason:
    """Why an acceptor refused a Prepare (``Promise.reason``); plain strings on the wire."""

    BALLOT = "ballot"  # it promised a higher ballot (see ``Promise.promised``)
    LEASE = "lease"  # it still honours another leader's lease
    BEHIND = "behind"  # the candidate's commit index is below the acceptor's snapshot


_REASONS = {"", RejectReason.BALLOT, RejectReason.LEASE, RejectReason.BEHIND}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Envelope:
    group_id: str
    src: str
    dst: str
    ballot: Ballot

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, str):
            raise ValueError("group_id must be a str")
        _check_node("src", self.src)
        _check_node("dst", self.dst)
        if not isinstance(self.ballot, Ballot):
            raise ValueError("ballot must be a Ballot")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare(_Envelope):
    first_index: int

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("first_index", self.first_index, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Promise(_Envelope):
    """Answer to ``Prepare``. ``ballot`` echoes the prepare; ``promised`` is the acceptor's
    current promise (above ``ballot`` when refused for that reason)."""

    ok: bool
    promised: Ballot
    commit_index: int
    snapshot_index: int
    entries: tuple[Entry, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("commit_index", self.commit_index)
        _check_index("snapshot_index", self.snapshot_index)
        if self.reason not in _REASONS or (self.ok and self.reason):
            raise ValueError(f"bad Promise.reason {self.reason!r}")
        _check_entries(self.entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept(_Envelope):
    entries: tuple[Entry, ...]
    commit_index: int

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("commit_index", self.commit_index)
        _check_entries(self.entries)
        for e in self.entries:
            if e.index > self.commit_index and e.ballot != self.ballot:
                raise ValueError("uncommitted entries in an Accept must carry its ballot")


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(_Envelope):
    """Answer to ``Accept`` and ``InstallSnapshot``. ``hole`` means the acceptor misses slots
    below the ones just sent, so the leader should resend from ``match_index + 1``."""

    ok: bool
    promised: Ballot
    match_index: int
    hole: bool = False

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("match_index", self.match_index)


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(_Envelope):
    commit_index: int
    sent_ms: int

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("commit_index", self.commit_index)
        if not isinstance(self.sent_ms, int):
            raise ValueError("sent_ms must be an int")


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatAck(_Envelope):
    ok: bool
    promised: Ballot
    sent_ms: int
    match_index: int

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("match_index", self.match_index)
        if not isinstance(self.sent_ms, int):
            raise ValueError("sent_ms must be an int")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot(_Envelope):
    snapshot: Snapshot
    commit_index: int

    def __post_init__(self) -> None:
        _Envelope.__post_init__(self)
        _check_index("commit_index", self.commit_index)
        if not isinstance(self.snapshot, Snapshot):
            raise ValueError("snapshot must be a Snapshot")


Message = Prepare | Promise | Accept | Accepted | Heartbeat | HeartbeatAck | InstallSnapshot


def _check_entries(entries: object) -> None:
    if not isinstance(entries, tuple):
        raise ValueError("entries must be a tuple")
    last = 0
    for e in entries:
        if not isinstance(e, Entry):
            raise ValueError("entries must hold Entry values")
        if e.index <= last:
            raise ValueError("entries must be in increasing index order")
        last = e.index


# --- wire form ---------------------------------------------------------------------------------
# Tag -> (class, field encoders after the common ballot). Tags are stable forever.

_TAGS: dict[type, int] = {
    Prepare: 1,
    Promise: 2,
    Accept: 3,
    Accepted: 4,
    Heartbeat: 5,
    HeartbeatAck: 6,
    InstallSnapshot: 7,
}
_CLASSES = {tag: cls for cls, tag in _TAGS.items()}


def _body(msg: Message) -> list[Any]:
    match msg:
        case Prepare():
            return [msg.first_index]
        case Promise():
            return [
                msg.ok, msg.promised.to_wire(), msg.commit_index, msg.snapshot_index,
                [e.to_wire() for e in msg.entries], msg.reason,
            ]
        case Accept():
            return [[e.to_wire() for e in msg.entries], msg.commit_index]
        case Accepted():
            return [msg.ok, msg.promised.to_wire(), msg.match_index, msg.hole]
        case Heartbeat():
            return [msg.commit_index, msg.sent_ms]
        case HeartbeatAck():
            return [msg.ok, msg.promised.to_wire(), msg.sent_ms, msg.match_index]
        case InstallSnapshot():
            return [msg.snapshot.to_wire(), msg.commit_index]
    raise TypeError(f"not a paxos message: {msg!r}")


def to_wire(msg: Message) -> list[Any]:
    """``[tag, group_id, src, dst, ballot, *fields]`` with only lists, ints, strs, bools, bytes."""
    return [_TAGS[type(msg)], msg.group_id, msg.src, msg.dst, msg.ballot.to_wire(), *_body(msg)]


def _entries(raw: Any) -> tuple[Entry, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError("entries must be a list")
    return tuple(Entry.from_wire(e) for e in raw)


def from_wire(raw: Any) -> Message:
    """Rebuild and validate a message from ``to_wire`` output; raises ValueError when malformed."""
    if not isinstance(raw, list | tuple) or len(raw) < 5:
        raise ValueError("a paxos message is a list [tag, group, src, dst, ballot, ...]")
    tag, group_id, src, dst, ballot_raw, *rest = raw
    cls = _CLASSES.get(tag)
    if cls is None:
        raise ValueError(f"unknown paxos message tag {tag!r}")
    head: dict[str, Any] = {
        "group_id": group_id, "src": src, "dst": dst, "ballot": Ballot.from_wire(ballot_raw),
    }
    try:
        if cls is Prepare:
            (first,) = rest
            return Prepare(**head, first_index=first)
        if cls is Promise:
            ok, promised, commit, snap, entries, reason = rest
            return Promise(
                **head, ok=_bool(ok), promised=Ballot.from_wire(promised), commit_index=commit,
                snapshot_index=snap, entries=_entries(entries), reason=reason,
            )
        if cls is Accept:
            entries, commit = rest
            return Accept(**head, entries=_entries(entries), commit_index=commit)
        if cls is Accepted:
            ok, promised, match, hole = rest
            return Accepted(
                **head, ok=_bool(ok), promised=Ballot.from_wire(promised), match_index=match,
                hole=_bool(hole),
            )
        if cls is Heartbeat:
            commit, sent = rest
            return Heartbeat(**head, commit_index=commit, sent_ms=sent)
        if cls is HeartbeatAck:
            ok, promised, sent, match = rest
            return HeartbeatAck(
                **head, ok=_bool(ok), promised=Ballot.from_wire(promised), sent_ms=sent,
                match_index=match,
            )
        (snapshot, commit) = rest
        return InstallSnapshot(**head, snapshot=Snapshot.from_wire(snapshot), commit_index=commit)
    except (TypeError, KeyError) as exc:  # wrong arity or types inside
        raise ValueError(f"malformed {cls.__name__}: {exc}") from exc


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a bool, got {value!r}")
    return value
