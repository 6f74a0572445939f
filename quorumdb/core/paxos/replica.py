"""A Multi-Paxos replica of one replication group, as a pure state machine (sans-I/O).

(Interface published first; the implementation follows in the next commit.)
"""

from __future__ import annotations

import enum
import random

from .config import PaxosConfig
from .log import LogStorage
from .messages import Message
from .ready import Ready
from .values import Ballot, GroupId, Membership, NodeId, RequestId

__all__ = ["Replica", "Role"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


class Replica:
    """One replica (acceptor + learner, and proposer when leader) of group ``group_id``.

    Build it over ``storage`` (``storage.load()`` is read once; a restarted replica is rebuilt
    the same way). ``initial_voters`` bootstraps a brand-new group when the storage is empty; a
    replica joining an existing group passes ``None`` and waits to be caught up by the leader.
    """

    def __init__(
        self,
        group_id: GroupId,
        node_id: NodeId,
        config: PaxosConfig,
        storage: LogStorage,
        rng: random.Random,
        *,
        initial_voters: tuple[NodeId, ...] | None = None,
    ) -> None:
        raise NotImplementedError

    # --- inputs ---
    def step(self, msg: Message, now_ms: int) -> None:
        raise NotImplementedError

    def tick(self, now_ms: int) -> None:
        raise NotImplementedError

    def propose(self, command: bytes, request_id: RequestId) -> None:
        raise NotImplementedError

    def read(self, request_id: RequestId, now_ms: int) -> None:
        raise NotImplementedError

    def change_membership(
        self, request_id: RequestId, *, add: NodeId | None = None, remove: NodeId | None = None
    ) -> None:
        raise NotImplementedError

    def compact(self, index: int, snapshot_bytes: bytes) -> None:
        raise NotImplementedError

    # --- outputs ---
    def ready(self) -> Ready:
        raise NotImplementedError

    # --- inspection ---
    @property
    def role(self) -> Role:
        raise NotImplementedError

    @property
    def ballot(self) -> Ballot:
        raise NotImplementedError

    @property
    def leader_id(self) -> NodeId | None:
        raise NotImplementedError

    @property
    def commit_index(self) -> int:
        raise NotImplementedError

    @property
    def applied_index(self) -> int:
        raise NotImplementedError

    @property
    def membership(self) -> Membership:
        raise NotImplementedError

    def has_lease(self, now_ms: int) -> bool:
        raise NotImplementedError
