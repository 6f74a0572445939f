"""Domain values of the Multi-Paxos core: ballots, log entries, memberships, snapshots.

These are frozen, slotted, keyword-only dataclasses that validate when built. They are shared by
the messages (``messages.py``), the outputs (``ready.py``), the storage protocol (``log.py``) and the
replica (``replica.py``). Each value converts to and from plain lists (``to_wire`` /
``from_wire``) so a message can travel as msgpack. This module must never do I/O, read a clock,
or import anything from ``runtime``, ``sim`` or ``api``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NodeId",
    "GroupId",
    "RequestId",
    "Ballot",
    "ZERO_BALLOT",
    "Command",
    "EntryKind",
    "Membership",
    "ConfigChange",
    "Entry",
    "Snapshot",
    "HardState",
    "Identity",
    "incarnation_id",
    "node_name",
    "node_incarnation",
]

NodeId = str
GroupId = str
# A proposal's or read's identity, chosen by the driver; echoed in replies and kept in the log.
RequestId = int | str


_INCARNATION_SEP = "@"


def incarnation_id(name: str, incarnation: int) -> NodeId:
    """The node id of the ``incarnation``-th life of the node called ``name``.

    An incarnation is one life of a node's durable state. A node whose disk was wiped has
    forgotten its promises and accepted values, so it must never answer as the voter it was: it
    comes back under a new incarnation, i.e. as a *different* node id, which is not in any
    membership until a membership change adds it. Incarnation 1 (a founding member's first life)
    is the bare name, so single-life deployments keep plain ids.
    """
    _check_node("name", name)
    if _INCARNATION_SEP in name:
        raise ValueError(f"a node name must not contain {_INCARNATION_SEP!r}: {name!r}")
    _check_index("incarnation", incarnation, 1)
    return name if incarnation == 1 else f"{name}{_INCARNATION_SEP}{incarnation}"


def node_name(node_id: NodeId) -> str:
    """The node (machine) an id belongs to, whatever its incarnation: what drivers route by."""
    return node_id.split(_INCARNATION_SEP, 1)[0]


def node_incarnation(node_id: NodeId) -> int:
    _, sep, inc = node_id.partition(_INCARNATION_SEP)
    return int(inc) if sep else 1


def _check_node(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")


def _check_index(name: str, value: object, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_request_id(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"request_id must be an int or str, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Ballot:
    """A Paxos ballot ``(round, node_id)``; totally ordered, unique per proposer.

    ``ZERO_BALLOT`` (round 0, empty node id) is below every real ballot and is never used to
    propose. Real ballots have ``round >= 1`` and a non-empty ``node_id``.
    """

    round: int
    node_id: str

    def __post_init__(self) -> None:
        _check_index("round", self.round)
        if not isinstance(self.node_id, str):
            raise ValueError(f"node_id must be a str, got {self.node_id!r}")
        if (self.round == 0) != (self.node_id == ""):
            raise ValueError("only the zero ballot may have round 0 or an empty node_id")

    def to_wire(self) -> list[Any]:
        return [self.round, self.node_id]

    @classmethod
    def from_wire(cls, raw: Any) -> Ballot:
        rnd, node = _unpack(raw, 2, "Ballot")
        return cls(round=rnd, node_id=node)

    def __str__(self) -> str:
        return f"{self.round}.{self.node_id}" if self.round else "0"


ZERO_BALLOT = Ballot(round=0, node_id="")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One client command inside a log entry: opaque ``data`` plus the proposer's request id."""

    request_id: RequestId
    data: bytes

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        if not isinstance(self.data, bytes):
            raise ValueError("Command.data must be bytes")

    def to_wire(self) -> list[Any]:
        return [self.request_id, self.data]

    @classmethod
    def from_wire(cls, raw: Any) -> Command:
        rid, data = _unpack(raw, 2, "Command")
        return cls(request_id=rid, data=data)


class EntryKind(enum.IntEnum):
    """What a log slot holds. The integer values are part of the wire and disk format."""

    NOOP = 0  # fills a gap or marks a new leader's ballot; applies to nothing
    COMMANDS = 1  # a batch of one or more client commands, applied in order
    CONFIG = 2  # a single-replica membership change


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """The voters of a replication group (sorted, unique, non-empty)."""

    voters: tuple[NodeId, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.voters, tuple) or not self.voters:
            raise ValueError("Membership.voters must be a non-empty tuple")
        for v in self.voters:
            _check_node("voter", v)
        if list(self.voters) != sorted(set(self.voters)):
            raise ValueError("Membership.voters must be sorted and unique")

    @classmethod
    def of(cls, voters: Any) -> Membership:
        return cls(voters=tuple(sorted(set(voters))))

    def __contains__(self, node: object) -> bool:
        return node in self.voters

    @property
    def quorum(self) -> int:
        """Size of a majority."""
        return len(self.voters) // 2 + 1

    def is_quorum(self, nodes: Any) -> bool:
        return sum(1 for v in self.voters if v in nodes) >= self.quorum

    def to_wire(self) -> list[Any]:
        return list(self.voters)

    @classmethod
    def from_wire(cls, raw: Any) -> Membership:
        if not isinstance(raw, list | tuple):
            raise ValueError("Membership must be a list")
        return cls(voters=tuple(raw))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChange:
    """A membership change from ``base`` to ``new``, differing by exactly one voter.

    The change takes effect (for the slots after it) only if ``base`` equals the membership in
    force at its slot; otherwise it is a no-op. That makes a stale change, re-proposed by a later
    leader, harmless: every replica folds the same chosen log to the same memberships.
    """

    base: Membership
    new: Membership

    def __post_init__(self) -> None:
        diff = set(self.base.voters) ^ set(self.new.voters)
        if len(diff) != 1:
            raise ValueError("a ConfigChange must add or remove exactly one voter")

    def to_wire(self) -> list[Any]:
        return [self.base.to_wire(), self.new.to_wire()]

    @classmethod
    def from_wire(cls, raw: Any) -> ConfigChange:
        base, new = _unpack(raw, 2, "ConfigChange")
        return cls(base=Membership.from_wire(base), new=Membership.from_wire(new))


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """The value accepted in one log slot, with the ballot it was accepted at."""

    index: int
    ballot: Ballot
    kind: EntryKind
    commands: tuple[Command, ...] = ()
    config: ConfigChange | None = None

    def __post_init__(self) -> None:
        _check_index("index", self.index, 1)
        if not isinstance(self.ballot, Ballot) or self.ballot == ZERO_BALLOT:
            raise ValueError("Entry.ballot must be a real Ballot")
        if not isinstance(self.kind, EntryKind):
            raise ValueError("Entry.kind must be an EntryKind")
        if (self.kind is EntryKind.COMMANDS) != bool(self.commands):
            raise ValueError("only COMMANDS entries carry commands, and they carry at least one")
        if (self.kind is EntryKind.CONFIG) != (self.config is not None):
            raise ValueError("only CONFIG entries carry a config change, and they must")

    def with_ballot(self, ballot: Ballot) -> Entry:
        return Entry(
            index=self.index, ballot=ballot, kind=self.kind, commands=self.commands,
            config=self.config,
        )

    def size_bytes(self) -> int:
        return 32 + sum(len(c.data) + 16 for c in self.commands)

    def to_wire(self) -> list[Any]:
        return [
            self.index,
            self.ballot.to_wire(),
            int(self.kind),
            [c.to_wire() for c in self.commands],
            self.config.to_wire() if self.config is not None else None,
        ]

    @classmethod
    def from_wire(cls, raw: Any) -> Entry:
        index, ballot, kind, commands, config = _unpack(raw, 5, "Entry")
        if not isinstance(commands, list | tuple):
            raise ValueError("Entry.commands must be a list")
        return cls(
            index=index,
            ballot=Ballot.from_wire(ballot),
            kind=EntryKind(kind),
            commands=tuple(Command.from_wire(c) for c in commands),
            config=ConfigChange.from_wire(config) if config is not None else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The application's state after applying every slot up to ``index`` (inclusive).

    ``membership`` is the membership in force for slot ``index + 1``. ``data`` is opaque bytes
    produced by the application (the core never looks inside). Index 0 is the bootstrap snapshot
    of a new group: empty data, the initial membership.
    """

    index: int
    ballot: Ballot
    membership: Membership
    data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_index("index", self.index)
        if not isinstance(self.data, bytes):
            raise ValueError("Snapshot.data must be bytes")

    def to_wire(self) -> list[Any]:
        return [self.index, self.ballot.to_wire(), self.membership.to_wire(), self.data]

    @classmethod
    def from_wire(cls, raw: Any) -> Snapshot:
        index, ballot, membership, data = _unpack(raw, 4, "Snapshot")
        return cls(
            index=index,
            ballot=Ballot.from_wire(ballot),
            membership=Membership.from_wire(membership),
            data=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """What an acceptor must remember across restarts besides its log and snapshot.

    ``promised`` is the highest ballot this replica promised (or used as a candidate): it must be
    durable before any Promise/Accepted/Prepare that relies on it is sent. ``commit_index`` is a
    hint that lets a restarted replica re-apply its log without waiting for a leader.
    """

    promised: Ballot
    commit_index: int

    def __post_init__(self) -> None:
        _check_index("commit_index", self.commit_index)

    def to_wire(self) -> list[Any]:
        return [self.promised.to_wire(), self.commit_index]

    @classmethod
    def from_wire(cls, raw: Any) -> HardState:
        promised, commit = _unpack(raw, 2, "HardState")
        return cls(promised=Ballot.from_wire(promised), commit_index=commit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Whose log a storage holds: the cluster and the node id (incarnation included).

    Written once, by the first Ready of a replica over an empty storage, and checked on every
    restart: a storage is never reused by another cluster or another incarnation.
    """

    cluster_id: str
    node_id: NodeId

    def __post_init__(self) -> None:
        if not isinstance(self.cluster_id, str):
            raise ValueError("cluster_id must be a str")
        _check_node("node_id", self.node_id)

    def to_wire(self) -> list[Any]:
        return [self.cluster_id, self.node_id]

    @classmethod
    def from_wire(cls, raw: Any) -> Identity:
        cluster_id, node_id = _unpack(raw, 2, "Identity")
        return cls(cluster_id=cluster_id, node_id=node_id)


def _unpack(raw: Any, n: int, what: str) -> list[Any]:
    if not isinstance(raw, list | tuple) or len(raw) != n:
        raise ValueError(f"{what} must be a list of {n} items, got {raw!r}")
    return list(raw)
