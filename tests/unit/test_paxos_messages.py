"""Table-driven tests of the paxos vocabulary: validation when built, and the msgpack wire form."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.core.paxos import (
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Command,
    ConfigChange,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatAck,
    InstallSnapshot,
    Membership,
    PaxosConfig,
    Prepare,
    Promise,
    Snapshot,
    from_wire,
    to_wire,
)

B1 = Ballot(round=1, node_id="n1")
B2 = Ballot(round=2, node_id="n2")
M3 = Membership.of(["n1", "n2", "n3"])
M4 = Membership.of(["n1", "n2", "n3", "n4"])
E1 = Entry(index=1, ballot=B1, kind=EntryKind.NOOP)
E2 = Entry(index=2, ballot=B2, kind=EntryKind.COMMANDS,
           commands=(Command(request_id="r1", data=b"\x00put"), Command(request_id=7, data=b"")))
E3 = Entry(index=3, ballot=B2, kind=EntryKind.CONFIG, config=ConfigChange(base=M3, new=M4))
SNAP = Snapshot(index=9, ballot=B1, membership=M4, data=b"state\xff")
ENV = {"group_id": "t1/p0", "src": "n1", "dst": "n2"}

MESSAGES = [
    Prepare(**ENV, ballot=B2, first_index=4),
    Promise(**ENV, ballot=B2, ok=True, promised=B2, commit_index=2, snapshot_index=0,
            entries=(E1, E2, E3)),
    Promise(**ENV, ballot=B1, ok=False, promised=B2, commit_index=0, snapshot_index=0,
            reason="ballot"),
    Accept(**ENV, ballot=B2, entries=(E1, E2, E3), commit_index=1),
    Accept(**ENV, ballot=B2, entries=(), commit_index=0),
    Accepted(**ENV, ballot=B2, ok=True, promised=B2, match_index=3, hole=True),
    Heartbeat(**ENV, ballot=B2, commit_index=3, sent_ms=12345),
    HeartbeatAck(**ENV, ballot=B2, ok=False, promised=Ballot(round=5, node_id="n3"),
                 sent_ms=12345, match_index=0),
    InstallSnapshot(**ENV, ballot=B2, snapshot=SNAP, commit_index=10),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_wire_round_trip_through_msgpack(msg: Any) -> None:
    raw = msgpack.packb(to_wire(msg))
    again = from_wire(msgpack.unpackb(raw))
    assert again == msg
    assert again.group_id == "t1/p0"


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [99, "g", "a", "b", [1, "a"]],  # unknown tag
        [1, "g", "a", "b", [1, "a"]],  # Prepare without first_index
        [1, "g", "a", "b", [1, "a"], 0],  # first_index 0
        [1, "g", "", "b", [1, "a"], 1],  # empty src
        [1, "g", "a", "b", [0, "a"], 1],  # round 0 with a node id
        [4, "g", "a", "b", [1, "a"], 1, [1, "a"], 0, False],  # ok must be a bool
        [3, "g", "a", "b", [1, "a"], [[2, [1, "a"], 0, [], None], [1, [1, "a"], 0, [], None]], 0],
        [3, "g", "a", "b", [2, "a"], [[1, [1, "a"], 0, [], None]], 0],  # old ballot, uncommitted
        [2, "g", "a", "b", [1, "a"], True, [1, "a"], 0, 0, [], "ballot"],  # ok with a reason
    ],
)
def test_from_wire_rejects_malformed(raw: Any) -> None:
    with pytest.raises(ValueError):
        from_wire(raw)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Ballot(round=-1, node_id="a"),
        lambda: Ballot(round=1, node_id=""),
        lambda: Entry(index=0, ballot=B1, kind=EntryKind.NOOP),
        lambda: Entry(index=1, ballot=ZERO_BALLOT, kind=EntryKind.NOOP),
        lambda: Entry(index=1, ballot=B1, kind=EntryKind.COMMANDS),  # no commands
        lambda: Entry(index=1, ballot=B1, kind=EntryKind.NOOP,
                      commands=(Command(request_id=1, data=b""),)),
        lambda: Entry(index=1, ballot=B1, kind=EntryKind.CONFIG),  # no change
        lambda: Command(request_id=True, data=b""),
        lambda: Command(request_id=1, data="text"),
        lambda: Membership(voters=()),
        lambda: Membership(voters=("b", "a")),
        lambda: ConfigChange(base=M3, new=M3),
        lambda: ConfigChange(base=M3, new=Membership.of(["n1"])),  # two removed at once
        lambda: HardState(promised=B1, commit_index=-1),
        lambda: Snapshot(index=1, ballot=B1, membership=M3, data="x"),
        lambda: Accept(**ENV, ballot=B1, entries=(E2,), commit_index=1),  # E2 uncommitted, B2
        lambda: Prepare(group_id="g", src="a", dst="", ballot=B1, first_index=1),
    ],
)
def test_values_validate_when_built(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_ballot_order_is_round_then_node() -> None:
    ballots = [Ballot(round=2, node_id="a"), Ballot(round=1, node_id="z"),
               Ballot(round=2, node_id="b"), ZERO_BALLOT]
    assert sorted(ballots) == [ZERO_BALLOT, Ballot(round=1, node_id="z"),
                               Ballot(round=2, node_id="a"), Ballot(round=2, node_id="b")]


def test_membership_quorum_sizes() -> None:
    assert [Membership.of([f"n{i}" for i in range(k)]).quorum for k in range(1, 7)] == [
        1, 2, 2, 3, 3, 4]
    assert M4.is_quorum({"n1", "n2", "n4"}) and not M4.is_quorum({"n1", "n5", "n6"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_interval_ms": 0},
        {"heartbeat_interval_ms": 1000, "lease_ms": 1000},
        {"lease_ms": 1500},  # election_timeout_min_ms < lease + drift
        {"election_timeout_max_ms": 1500},
        {"max_clock_drift_ms": -1},
        {"max_inflight_slots": 0},
    ],
)
def test_config_rejects_unsafe_relations(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        PaxosConfig(**kwargs)


# --- property: any well-formed message survives the msgpack wire form ------------------------

_nodes = st.sampled_from(["n1", "n2", "n3", "node-with-a-long-name"])
_ballots = st.builds(lambda r, n: Ballot(round=r, node_id=n), st.integers(1, 2**40), _nodes)
_commands = st.builds(
    lambda rid, data: Command(request_id=rid, data=data),
    st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=8)), st.binary(max_size=16),
)


@st.composite
def _accepts(draw: st.DrawFn) -> Accept:
    ballot = draw(_ballots)
    indices = sorted(draw(st.sets(st.integers(1, 10_000), max_size=6)))
    commit = draw(st.integers(0, 10_000))
    entries = []
    for i in indices:
        b = draw(_ballots) if i <= commit else ballot
        kind = draw(st.sampled_from([EntryKind.NOOP, EntryKind.COMMANDS, EntryKind.CONFIG]))
        if kind is EntryKind.COMMANDS:
            entries.append(Entry(index=i, ballot=b, kind=kind,
                                 commands=tuple(draw(st.lists(_commands, min_size=1, max_size=3)))))
        elif kind is EntryKind.CONFIG:
            entries.append(Entry(index=i, ballot=b, kind=kind,
                                 config=ConfigChange(base=M3, new=M4)))
        else:
            entries.append(Entry(index=i, ballot=b, kind=kind))
    return Accept(group_id=draw(st.text(max_size=10)), src=draw(_nodes), dst=draw(_nodes),
                  ballot=ballot, entries=tuple(entries), commit_index=commit)


@settings(max_examples=200, deadline=None)
@given(_accepts())
def test_any_accept_round_trips(msg: Accept) -> None:
    assert from_wire(msgpack.unpackb(msgpack.packb(to_wire(msg)))) == msg
