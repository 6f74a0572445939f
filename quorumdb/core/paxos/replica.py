"""A Multi-Paxos replica of one replication group, as a pure state machine (sans-I/O).

Every replica is an acceptor and a learner; the leader is also the distinguished proposer.
Inputs: ``step(msg, now_ms)``, ``tick(now_ms)``, ``propose``, ``read``, ``change_membership``,
``compact``. Output: ``ready()`` (see ``ready.py`` for the persist -> send -> apply -> reply
rules). Time only comes in as ``now_ms`` arguments and randomness only from the injected
``random.Random``; this module must never import asyncio, read a clock, or do I/O.

Protocol summary
----------------
*Election (phase 1).* A follower that hears no leader for a random election timeout picks a
ballot ``(round, node_id)`` above every round it has seen, promises it to itself (durably) and
sends ``Prepare(b, first_index = commit_index + 1)``: one phase 1 for all uncommitted slots.
Acceptors promise if ``b`` is above their promise, they honour no other leader's lease, and
their snapshot does not cover slots the candidate lacks; they answer with every entry they
accepted at slots >= first_index plus their commit index. The candidate merges, per slot: a
value some promiser knows chosen, else the value with the highest ballot, else a no-op; it wins
once its promisers form a majority of *every* membership in force over the merged log (see
Membership), then re-proposes the merged slots at its ballot, appends a no-op of its own ballot
and becomes leader.

*Normal case (phase 2).* The leader batches queued proposals into slots (up to
``max_batch_commands`` per slot), keeps up to ``max_inflight_slots`` slots uncommitted
(pipelining) and streams ``Accept`` batches to each follower within a per-follower window.
Acceptors report ``match_index``: the highest slot up to which they hold, without a gap, values
that are chosen or accepted at the leader's ballot. A slot is committed when a majority of the
membership governing it has a match at or above it (commit is a contiguous prefix). Followers
learn the commit index from ``Accept`` and ``Heartbeat`` messages; a follower marks slot i
committed only if i <= the leader's commit index and it holds the value of the leader's ballot
at i (one ballot proposes at most one value per slot, and the leader only reports as committed
values it saw chosen), or the value came in a message whose commit index covers it (the leader
only sends chosen values below its commit index).

*Leader lease.* The leader stamps each heartbeat with its clock (``sent_ms``); followers echo
it. The lease lasts until ``q + lease_ms`` where q is the newest send time acknowledged by a
majority (the leader counting itself at its last heartbeat). A follower that acknowledges a
heartbeat at its local time t refuses to promise any other candidate until
``t + lease_ms + max_clock_drift_ms`` (the leader refuses too, counting itself). Why two
valid leases never overlap: the follower received the heartbeat after it was sent, and its
refusal window, measured on its own clock, is longer than the leader's lease by the maximum
drift between the two clocks over one lease, so it outlasts the leader's lease in real time.
A new leader needs promises from a majority, which intersects the majority behind the old lease,
and someone in the intersection refuses until the old lease expired. So a new leader is elected
(and can gain its own lease) only after the old lease ended. A restarted replica does not know
what it acknowledged before the crash, so it refuses (and does not campaign) for
``lease_ms + max_clock_drift_ms`` after its first tick. Lease reads are granted only when the
leader also committed an entry of its own ballot, so its commit index is the group's.

*Catch-up.* A follower reporting a hole is resent slots from its match index; one that made no
progress for ``retransmit_ms`` is probed with a single message. Slots below the leader's
snapshot are replaced by ``InstallSnapshot`` (not resent sooner than ``4 * retransmit_ms``).
A joining replica commits nothing before it knows the membership (the snapshot tells it).

*Membership.* A CONFIG entry ``(base, new)`` changes one voter. It governs the slots *after*
it once it is committed: slot j is decided by the membership produced by the committed slots
below j (commit is contiguous, so that is always known when j is decided). The leader proposes
a change only when no other change is uncommitted and it has committed its own no-op, so at any
moment at most two memberships are in play and they differ by one voter: any majority of one
intersects any majority of the other (|M| and |M|+1 voters: two majorities have more than
|M|+1 members together). A change whose base is not the membership in force at its slot is a
no-op, so a stale change re-proposed by a later leader cannot skip a step. Candidates need a
majority of every membership along their merged log, which includes every chosen change (each
was chosen by a majority that intersects the candidate's), so phase 1 always intersects the
quorum that chose any slot. A new voter receives slots (as a learner) from the moment the
change is appended, and a snapshot first (the bootstrap one at index 0 tells it the membership).
A removed voter keeps receiving heartbeats until it acknowledges one sent after the commit (or
for an election timeout), so it learns it is out and does not campaign; a removed leader sends
one last heartbeat with the commit index and steps down.

*Known limits.* There is no pre-vote: a replica that was cut off campaigns with ever higher
rounds, and when it reconnects it refuses the leader's (lower) ballot. A leader that still holds
its lease then immediately re-runs phase 1 with a higher ballot (its followers exempt their own
leader from the lease promise), so this costs one round trip, not an election timeout; a leader
without a lease steps down and waits like everyone else. Lease reads are granted or refused at
once (never queued): the caller retries a NOT_READY or NO_LEASE refusal.

*Persistence.* State changes are returned as ``PersistAction``s in the next ``Ready``; every
message that depends on them is in the same Ready and is sent only after they are durable.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .config import PaxosConfig
from .log import LogStorage
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
)

__all__ = ["Replica", "Role"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


def fold_memberships(base: Membership | None, entries: Iterable[Entry]) -> list[Membership]:
    """The memberships in force along ``entries`` (in index order), starting from ``base``.

    A change applies only if its base is the membership in force at its slot. Without a known
    base (a joining replica before its first snapshot) the result is empty.
    """
    if base is None:
        return []
    chain = [base]
    for e in entries:
        if e.config is not None and e.config.base == chain[-1]:
            chain.append(e.config.new)
    return chain


@dataclass(slots=True, kw_only=True)
class _Progress:
    """The leader's view of one follower."""

    next_index: int
    match_index: int
    progress_ms: int  # when match_index last grew, or we last rewound next_index
    lease_ack_ms: int | None = None  # newest heartbeat send time it acknowledged
    hole_reset_at: int = -1  # match index for which we already rewound next_index
    bootstrap_sent: bool = False
    snapshot_sent: tuple[int, int] | None = None  # (snapshot index, time) of the last one sent


@dataclass(slots=True, kw_only=True)
class _Campaign:
    ballot: Ballot
    first_index: int
    promises: dict[NodeId, Promise] = field(default_factory=dict)
    prepared: set[NodeId] = field(default_factory=set)
    last_send_ms: int = 0


Handler = Callable[["Replica", Any, int], None]


class Replica:
    """One replica (acceptor + learner, and proposer when leader) of group ``group_id``.

    Build it over ``storage`` (``storage.load()`` is read once; a restarted replica is rebuilt
    the same way). ``initial_voters`` bootstraps a brand-new group when the storage is empty
    (every founding replica passes the same voters); a replica joining an existing group passes
    ``None`` and waits to be caught up by the leader.

    Identity: the first Ready over an empty storage records ``(cluster_id, node_id)`` in it, and a
    storage that records another identity is refused (``ValueError``). ``node_id`` includes the
    incarnation (``incarnation_id``): a driver whose storage is empty although the node was a
    member before (wiped disk) must start it under a new incarnation and without
    ``initial_voters``, so it joins as a new member through a membership change and never votes
    with promises it forgot. ``start_identity`` makes that choice for both drivers.

    Call ``tick(now_ms)`` regularly (every few ms of the driver's clock) and ``step(msg,
    now_ms)`` for every message addressed to this replica; ``now_ms`` must never go backwards.
    After any input, ``ready()`` returns the work to do (possibly empty).

    A few rules the safety argument rests on are small methods of their own (``has_lease``,
    ``_lease_promise_ms``, ``_config_change_ready``, ``_config_change_base``,
    ``_config_change_pending``, ``_advance_leader_commit``) so the simulator's mutant catalogue
    (``quorumdb.sim.mutants``) can break each one in a subclass; production code never does.
    """

    def __init__(
        self,
        group_id: GroupId,
        node_id: NodeId,
        config: PaxosConfig,
        storage: LogStorage,
        rng: random.Random,
        *,
        initial_voters: Iterable[NodeId] | None = None,
        cluster_id: str = "",
    ) -> None:
        if not node_id:
            raise ValueError("node_id must be non-empty")
        self.group_id = group_id
        self.node_id = node_id
        self._cfg = config
        self._rng = rng

        stored = storage.load()
        identity = Identity(cluster_id=cluster_id, node_id=node_id)
        if stored.identity is not None and stored.identity != identity:
            # Another cluster's or another incarnation's log: running on it would answer with
            # promises this replica never made (or forget the ones it did).
            raise ValueError(f"storage belongs to {stored.identity}, not to {identity}")
        self._out_identity: Identity | None = identity if stored.identity is None else None
        self._promised: Ballot = stored.hard_state.promised
        self._snapshot: Snapshot | None = stored.snapshot
        self._out_snapshots: list[Snapshot] = []
        if self._snapshot is None and not stored.entries and initial_voters is not None:
            self._snapshot = Snapshot(
                index=0, ballot=ZERO_BALLOT, membership=Membership.of(initial_voters)
            )
            self._out_snapshots.append(self._snapshot)
        snap_index = self._snap_index
        self._log: dict[int, Entry] = {e.index: e for e in stored.entries if e.index > snap_index}
        self._last = max(self._log, default=snap_index)  # highest slot held (monotonic)
        commit = max(snap_index, min(stored.hard_state.commit_index, self._contiguous_from(
            snap_index)))
        self._commit = commit
        # Application state is volatile: replay from the snapshot.
        self._applied = snap_index
        self._apply_snapshot: Snapshot | None = (
            self._snapshot if self._snapshot is not None and snap_index > 0 else None
        )
        self._committed_config: Membership | None = self._fold_committed_config()

        self._role = Role.FOLLOWER
        self._leader: NodeId | None = None
        self._leader_ballot: Ballot = ZERO_BALLOT  # ballot whose commit index we track
        self._leader_commit = 0
        self._max_round_seen = self._promised.round
        self._now_ms: int | None = None
        self._election_deadline_ms: int | None = None
        # Until when this replica refuses to promise other candidates (lease promise). None
        # means "not yet known": set conservatively on the first tick (restart guard).
        self._lease_until_ms: int | None = None
        self._campaign: _Campaign | None = None
        # Leader state.
        self._progress: dict[NodeId, _Progress] = {}
        self._pending: dict[int, list[RequestId]] = {}
        self._queue: deque[Command] = deque()
        self._own_first_index = 0
        # Voters removed by a committed change, still told about it until they acknowledge a
        # heartbeat sent after the commit (so they stop campaigning): node -> (index, time).
        self._departing: dict[NodeId, tuple[int, int]] = {}
        self._next_heartbeat_ms = 0
        self._last_heartbeat_ms = 0
        self._elected_ms = 0
        # Outputs accumulated until ready().
        self._out_entries: dict[int, Entry] = {}
        self._hs_dirty = False
        self._out_msgs: list[Message] = []
        self._out_replies: list[Reply] = []

    # --- inspection -------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def ballot(self) -> Ballot:
        """The highest ballot promised (the leader's own ballot while leading)."""
        return self._promised

    @property
    def leader_id(self) -> NodeId | None:
        """Who this replica believes leads (itself when leader), or None."""
        return self._leader

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        """Highest index handed to the driver for applying (by the last ``ready()``)."""
        return self._applied

    @property
    def last_index(self) -> int:
        """Highest slot this replica holds a value for (contiguous on a leader)."""
        return self._last

    @property
    def snapshot_index(self) -> int:
        return self._snap_index

    @property
    def membership(self) -> Membership | None:
        """The membership governing the next uncommitted slot (None before a joining replica
        learns it)."""
        return self._committed_config

    @property
    def leader_ready(self) -> bool:
        """Leader that has committed an entry of its own ballot (its commit index is current)."""
        return self._role is Role.LEADER and self._commit >= self._own_first_index

    def entry(self, index: int) -> Entry | None:
        """The value this replica accepted at ``index`` (None if absent or compacted)."""
        return self._log.get(index)

    def has_lease(self, now_ms: int) -> bool:
        """Whether this replica is leader with a lease valid at ``now_ms``."""
        expiry = self._lease_expiry_ms()
        return expiry is not None and now_ms < expiry

    # --- inputs -----------------------------------------------------------------------------

    def step(self, msg: Message, now_ms: int) -> None:
        """Handle one message addressed to this replica."""
        if msg.group_id != self.group_id or msg.dst != self.node_id:
            raise ValueError(f"message for {msg.group_id}/{msg.dst} stepped into "
                             f"{self.group_id}/{self.node_id}")
        self._advance_clock(now_ms)
        self._observe(msg.ballot)
        promised = getattr(msg, "promised", None)
        if isinstance(promised, Ballot):
            self._observe(promised)
        handler = _DISPATCH[self._role].get(type(msg))
        if handler is not None:
            handler(self, msg, now_ms)

    def tick(self, now_ms: int) -> None:
        """Advance time: elections, heartbeats, retransmissions, lease bookkeeping."""
        self._advance_clock(now_ms)
        _TICK[self._role](self, now_ms)

    def propose(self, command: bytes, request_id: RequestId) -> None:
        """Queue a command; the outcome arrives later as a reply carrying ``request_id``."""
        if self._role is not Role.LEADER:
            self._reject(request_id, ReplyReason.NOT_LEADER)
        elif len(self._queue) >= self._cfg.max_queued_proposals:
            self._reject(request_id, ReplyReason.BUSY)
        else:
            self._queue.append(Command(request_id=request_id, data=command))

    def read(self, request_id: RequestId, now_ms: int) -> None:
        """Ask for a lease read: ``ReadGranted(read_index)`` or ``ReadRejected`` in replies."""
        self._advance_clock(now_ms)
        reason: ReplyReason | None = None
        if self._role is not Role.LEADER:
            reason = ReplyReason.NOT_LEADER
        elif not self.leader_ready:
            reason = ReplyReason.NOT_READY
        elif not self.has_lease(now_ms):
            reason = ReplyReason.NO_LEASE
        if reason is None:
            self._out_replies.append(ReadGranted(request_id=request_id, read_index=self._commit))
        else:
            self._out_replies.append(
                ReadRejected(request_id=request_id, reason=reason, leader_hint=self._hint())
            )

    def change_membership(
        self, request_id: RequestId, *, add: NodeId | None = None, remove: NodeId | None = None
    ) -> None:
        """Propose adding or removing one voter (exactly one of ``add`` / ``remove``)."""
        if (add is None) == (remove is None):
            raise ValueError("pass exactly one of add= or remove=")
        if self._role is not Role.LEADER:
            self._reject(request_id, ReplyReason.NOT_LEADER)
            return
        if not self._config_change_ready():
            self._reject(request_id, ReplyReason.NOT_READY)
            return
        if self._config_change_pending():
            self._reject(request_id, ReplyReason.CONFIG_PENDING)
            return
        base = self._config_change_base()
        voters = set(base.voters)
        if add is not None and add not in voters:
            voters.add(add)
        elif remove is not None and remove in voters and len(voters) > 1:
            voters.discard(remove)
        else:
            self._reject(request_id, ReplyReason.INVALID)
            return
        change = ConfigChange(base=base, new=Membership.of(voters))
        index = self._append(EntryKind.CONFIG, config=change)
        self._pending[index] = [request_id]
        self._sync_progress()
        self._leader_after_append()

    def compact(self, index: int, snapshot_bytes: bytes) -> None:
        """Record the application's snapshot at applied ``index`` and drop the log below it."""
        if not self._snap_index < index <= self._applied:
            raise ValueError(f"compact index {index} must be in ({self._snap_index}, "
                             f"{self._applied}]")
        assert self._snapshot is not None, "a replica with applied entries knows its membership"
        chain = fold_memberships(
            self._snapshot.membership, (self._log[i] for i in range(self._snap_index + 1,
                                                                    index + 1))
        )
        snap = Snapshot(index=index, ballot=self._log[index].ballot, membership=chain[-1],
                        data=snapshot_bytes)
        self._install_local_snapshot(snap)

    # --- output -----------------------------------------------------------------------------

    def ready(self) -> Ready:
        """Collect everything to persist, send, apply and answer since the last call."""
        if self._role is Role.LEADER:
            self._flush_proposals()
        persist: list[PersistAction] = []
        if self._out_identity is not None:
            persist.append(SaveIdentity(identity=self._out_identity))
            self._out_identity = None
        persist += [SaveSnapshot(snapshot=s) for s in self._out_snapshots]
        floor = self._snap_index
        entries = tuple(self._out_entries[i] for i in sorted(self._out_entries) if i > floor)
        if entries:
            persist.append(PutEntries(entries=entries))
        if self._hs_dirty:
            persist.append(SaveHardState(
                hard_state=HardState(promised=self._promised, commit_index=self._commit)))
        apply_snapshot = self._apply_snapshot
        committed = tuple(self._log[i] for i in range(self._applied + 1, self._commit + 1))
        self._applied = self._commit
        ready = Ready(
            persist=tuple(persist),
            messages=tuple(self._out_msgs),
            apply_snapshot=apply_snapshot,
            committed=committed,
            replies=tuple(self._out_replies),
            compact_hint=self._applied - floor >= self._cfg.compact_threshold_entries,
        )
        self._out_snapshots = []
        self._out_entries = {}
        self._hs_dirty = False
        self._out_msgs = []
        self._out_replies = []
        self._apply_snapshot = None
        return ready

    # --- helpers: log and state -------------------------------------------------------------

    @property
    def _snap_index(self) -> int:
        return self._snapshot.index if self._snapshot is not None else 0

    def _contiguous_from(self, index: int) -> int:
        while index + 1 in self._log:
            index += 1
        return index

    def _fold_committed_config(self) -> Membership | None:
        if self._snapshot is None:
            return None
        chain = fold_memberships(
            self._snapshot.membership,
            (self._log[i] for i in range(self._snap_index + 1, self._commit + 1)),
        )
        return chain[-1]

    def _chain(self) -> list[Membership]:
        """Memberships in force from the next uncommitted slot along this replica's log."""
        entries = []
        i = self._commit + 1
        while i in self._log:
            entries.append(self._log[i])
            i += 1
        return fold_memberships(self._committed_config, entries)

    def _peers(self, chain: list[Membership]) -> list[NodeId]:
        nodes = {v for m in chain for v in m.voters}
        nodes.discard(self.node_id)
        return sorted(nodes)

    def _put(self, entry: Entry) -> None:
        self._log[entry.index] = entry
        self._last = max(self._last, entry.index)
        self._out_entries[entry.index] = entry

    def _set_promised(self, ballot: Ballot) -> None:
        assert ballot >= self._promised
        if ballot != self._promised:
            self._promised = ballot
            self._hs_dirty = True

    def _observe(self, ballot: Ballot) -> None:
        self._max_round_seen = max(self._max_round_seen, ballot.round)

    def _advance_clock(self, now_ms: int) -> None:
        if self._now_ms is not None and now_ms < self._now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms
        if self._lease_until_ms is None:
            self._lease_until_ms = now_ms + self._lease_promise_ms()
        if self._election_deadline_ms is None:
            self._reset_election_timer(now_ms)

    def _reset_election_timer(self, now_ms: int) -> None:
        self._election_deadline_ms = now_ms + self._rng.randrange(
            self._cfg.election_timeout_min_ms, self._cfg.election_timeout_max_ms
        )

    def _defer_election(self) -> None:
        # Still bound by a lease promise: retry at a random moment after it ends, so replicas
        # that acknowledged the same heartbeats do not all campaign on the same tick.
        assert self._lease_until_ms is not None
        spread = self._cfg.election_timeout_max_ms - self._cfg.election_timeout_min_ms
        self._election_deadline_ms = self._lease_until_ms + self._rng.randrange(spread)

    def _lease_active(self, now_ms: int) -> bool:
        return self._lease_until_ms is None or now_ms < self._lease_until_ms

    def _lease_promise_ms(self) -> int:
        """How long (own clock) an acknowledgement binds this replica: longer than the lease by
        the drift bound, so it outlasts the leader's lease in real time."""
        return self._cfg.lease_ms + self._cfg.max_clock_drift_ms

    def _extend_lease_promise(self, now_ms: int) -> None:
        until = now_ms + self._lease_promise_ms()
        self._lease_until_ms = max(self._lease_until_ms or 0, until)

    def _hint(self) -> NodeId | None:
        return self._leader if self._leader != self.node_id or self._role is Role.LEADER else None

    def _reject(self, request_id: RequestId, reason: ReplyReason) -> None:
        self._out_replies.append(
            ProposalRejected(request_id=request_id, reason=reason, leader_hint=self._hint())
        )

    def _send(self, msg: Message) -> None:
        self._out_msgs.append(msg)

    def _env(self, dst: NodeId) -> dict[str, Any]:
        return {"group_id": self.group_id, "src": self.node_id, "dst": dst}

    def _match_for(self, ballot: Ballot) -> int:
        """Highest slot up to which this replica holds chosen or ``ballot`` values, gap-free (0
        for a joining replica that has not learned the membership yet: it must be sent it)."""
        if self._snapshot is None:
            return 0
        m = self._commit
        while (e := self._log.get(m + 1)) is not None and e.ballot == ballot:
            m += 1
        return m

    def _set_commit(self, new_commit: int) -> None:
        if new_commit <= self._commit:
            return
        old = self._commit
        self._commit = new_commit
        self._hs_dirty = True
        before = self._committed_config
        chain = fold_memberships(before,
                                 (self._log[i] for i in range(old + 1, new_commit + 1)))
        if chain:
            self._committed_config = chain[-1]
        if self._role is Role.LEADER and before is not None and chain:
            for gone in set(before.voters) - set(chain[-1].voters) - {self.node_id}:
                self._departing[gone] = (new_commit, self._now_ms or 0)
        if self._role is Role.LEADER:
            for i in range(old + 1, new_commit + 1):
                for rid in self._pending.pop(i, ()):
                    self._out_replies.append(ProposalCommitted(request_id=rid, index=i))
            self._sync_progress()
            if self._committed_config is not None and self.node_id not in self._committed_config:
                # Removed from the group: tell everyone the commit index once, stop leading.
                self._send_heartbeats(self._now_ms or 0)
                self._become_follower(None)

    def _install_local_snapshot(self, snap: Snapshot) -> None:
        self._snapshot = snap
        self._out_snapshots.append(snap)
        for i in [i for i in self._log if i <= snap.index]:
            del self._log[i]
        self._last = max(self._last, snap.index)

    # --- roles ------------------------------------------------------------------------------

    def _become_follower(self, leader: NodeId | None) -> None:
        was_leader = self._role is Role.LEADER
        self._role = Role.FOLLOWER
        self._leader = leader
        self._campaign = None
        if was_leader:
            for i in sorted(self._pending):
                for rid in self._pending[i]:
                    self._out_replies.append(ProposalRejected(
                        request_id=rid, reason=ReplyReason.DROPPED, leader_hint=leader))
            while self._queue:
                self._out_replies.append(ProposalRejected(
                    request_id=self._queue.popleft().request_id,
                    reason=ReplyReason.NOT_LEADER, leader_hint=leader))
        self._pending = {}
        self._progress = {}
        self._departing = {}
        self._own_first_index = 0
        if self._now_ms is not None:
            self._reset_election_timer(self._now_ms)

    def _can_campaign(self) -> bool:
        chain = self._chain()
        return bool(chain) and self.node_id in chain[0] and self.node_id in chain[-1]

    def _campaign_now(self, now_ms: int) -> None:
        ballot = Ballot(round=max(self._promised.round, self._max_round_seen) + 1,
                        node_id=self.node_id)
        self._observe(ballot)
        self._set_promised(ballot)
        self._role = Role.CANDIDATE
        self._leader = None
        first = self._commit + 1
        own = Promise(
            **self._env(self.node_id), ballot=ballot, ok=True, promised=ballot,
            commit_index=self._commit, snapshot_index=self._snap_index,
            entries=tuple(self._log[i] for i in sorted(self._log) if i >= first),
        )
        self._campaign = _Campaign(ballot=ballot, first_index=first,
                                   promises={self.node_id: own}, last_send_ms=now_ms)
        self._reset_election_timer(now_ms)
        self._campaign_progress(now_ms)

    def _merged(self, c: _Campaign) -> tuple[list[Entry | None], int]:
        """Per slot from ``first_index``: the value to re-propose (None = gap), and the highest
        commit index among promisers (slots up to it are chosen)."""
        chosen: dict[int, Entry] = {}
        accepted: dict[int, Entry] = {}
        max_commit = c.first_index - 1
        for p in c.promises.values():
            max_commit = max(max_commit, p.commit_index)
            for e in p.entries:
                if e.index < c.first_index:
                    continue
                if e.index <= p.commit_index:
                    chosen[e.index] = e
                elif e.index not in accepted or e.ballot > accepted[e.index].ballot:
                    accepted[e.index] = e
        top = max([max_commit, *chosen, *accepted])
        merged: list[Entry | None] = []
        for i in range(c.first_index, top + 1):
            if i <= max_commit:
                assert i in chosen, "a promiser's chosen prefix above first_index is complete"
            merged.append(chosen.get(i) or accepted.get(i))
        return merged, max_commit

    def _campaign_progress(self, now_ms: int) -> None:
        c = self._campaign
        assert c is not None
        merged, max_commit = self._merged(c)
        chain = fold_memberships(self._committed_config, (e for e in merged if e is not None))
        for peer in self._peers(chain):
            if peer not in c.prepared:
                c.prepared.add(peer)
                self._send(Prepare(**self._env(peer), ballot=c.ballot,
                                   first_index=c.first_index))
        if all(m.is_quorum(c.promises) for m in chain):
            self._become_leader(now_ms, merged, max_commit)

    def _become_leader(self, now_ms: int, merged: list[Entry | None], max_commit: int) -> None:
        c = self._campaign
        assert c is not None
        b = c.ballot
        for offset, e in enumerate(merged):
            index = c.first_index + offset
            if e is None:
                self._put(Entry(index=index, ballot=b, kind=EntryKind.NOOP))
            else:
                self._put(e.with_ballot(b))
        self._role = Role.LEADER
        self._leader = self.node_id
        self._elected_ms = now_ms
        self._own_first_index = self._append(EntryKind.NOOP)
        promises = c.promises
        self._campaign = None
        self._progress = {}
        self._sync_progress()
        for node, p in self._progress.items():
            if node in promises:
                p.match_index = min(promises[node].commit_index, max_commit)
            p.next_index = p.match_index + 1 if node in promises else max_commit + 1
        self._set_commit(max_commit)
        self._send_heartbeats(now_ms)
        self._leader_after_append()

    def _sync_progress(self) -> None:
        """Track every voter of every membership in play (learners included), no one else."""
        peers = set(self._peers(self._chain())) | set(self._departing)
        for node in list(self._progress):
            if node not in peers:
                del self._progress[node]
        for node in sorted(peers - set(self._progress)):
            self._progress[node] = _Progress(next_index=self._commit + 1, match_index=0,
                                             progress_ms=self._now_ms or 0)

    # --- leader: proposals, replication, commit, lease ----------------------------------------

    def _append(self, kind: EntryKind, *, commands: tuple[Command, ...] = (),
                config: ConfigChange | None = None) -> int:
        index = self.last_index + 1
        self._put(Entry(index=index, ballot=self._promised, kind=kind, commands=commands,
                        config=config))
        return index

    def _flush_proposals(self) -> None:
        cfg = self._cfg
        appended = False
        while self._queue and self.last_index - self._commit < cfg.max_inflight_slots:
            batch: list[Command] = []
            size = 0
            while self._queue and len(batch) < cfg.max_batch_commands:
                nxt = self._queue[0]
                if batch and size + len(nxt.data) > cfg.max_batch_bytes:
                    break
                batch.append(self._queue.popleft())
                size += len(nxt.data)
            index = self._append(EntryKind.COMMANDS, commands=tuple(batch))
            self._pending[index] = [c.request_id for c in batch]
            appended = True
        if appended:
            self._leader_after_append()

    def _leader_after_append(self) -> None:
        self._advance_leader_commit()
        if self._role is not Role.LEADER:
            return
        for node in self._progress:
            self._replicate(node, self._now_ms or 0)

    def _config_change_ready(self) -> bool:
        """A membership change waits until this leader committed an entry of its own ballot."""
        return self._commit >= self._own_first_index

    def _config_change_base(self) -> Membership:
        """The membership a new change starts from: the committed one (with no change pending,
        also the newest in this leader's log)."""
        assert self._committed_config is not None
        return self._committed_config

    def _config_change_pending(self) -> bool:
        """Whether a membership change sits uncommitted in this leader's log."""
        return any(self._log[i].config is not None
                   for i in range(self._commit + 1, self.last_index + 1))

    def _advance_leader_commit(self) -> None:
        last = self.last_index
        new = self._commit
        governing = self._committed_config
        assert governing is not None
        while new < last:
            j = new + 1
            acks = [n for n in governing.voters if self._match_of(n) >= j]
            if not governing.is_quorum(acks):
                break
            new = j
            governing = fold_memberships(governing, [self._log[j]])[-1]
        self._set_commit(new)

    def _match_of(self, node: NodeId) -> int:
        if node == self.node_id:
            return self.last_index
        p = self._progress.get(node)
        return p.match_index if p is not None else 0

    def _replicate(self, node: NodeId, now_ms: int, *, max_messages: int | None = None) -> None:
        """Send what ``node`` is missing, within its in-flight window (a probe of a silent
        follower sends at most ``max_messages``)."""
        p = self._progress[node]
        cfg = self._cfg
        snap = self._snapshot
        assert snap is not None
        if p.next_index <= snap.index or (p.next_index == 1 and not p.bootstrap_sent):
            # Below our compaction point (or a brand-new replica that must learn the bootstrap
            # membership): send the snapshot, but not the same one again too soon (it may be big).
            if (snap.index > 0 and p.snapshot_sent is not None and p.snapshot_sent[0] == snap.index
                    and now_ms - p.snapshot_sent[1] < 4 * cfg.retransmit_ms):
                return
            p.bootstrap_sent = True
            p.snapshot_sent = (snap.index, now_ms)
            self._send(InstallSnapshot(**self._env(node), ballot=self._promised, snapshot=snap,
                                       commit_index=self._commit))
            p.next_index = snap.index + 1
        last = self.last_index
        budget = max_messages if max_messages is not None else last + 1
        while (budget > 0 and p.next_index <= last
               and p.next_index - p.match_index <= cfg.max_inflight_per_follower):
            budget -= 1
            hi = min(last, p.next_index + cfg.max_entries_per_message - 1,
                     p.match_index + cfg.max_inflight_per_follower)
            entries = tuple(self._log[i] for i in range(p.next_index, hi + 1))
            self._send(Accept(**self._env(node), ballot=self._promised, entries=entries,
                              commit_index=self._commit))
            p.next_index = hi + 1

    def _send_heartbeats(self, now_ms: int) -> None:
        self._last_heartbeat_ms = now_ms
        self._next_heartbeat_ms = now_ms + self._cfg.heartbeat_interval_ms
        self._extend_lease_promise(now_ms)  # the leader counts itself in its lease majority
        for node in self._progress:
            self._send(Heartbeat(**self._env(node), ballot=self._promised,
                                 commit_index=self._commit, sent_ms=now_ms))

    def _quorum_time(self, membership: Membership) -> int | None:
        """Newest heartbeat send time acknowledged by a majority of ``membership``."""
        times: list[int] = []
        for v in membership.voters:
            if v == self.node_id:
                times.append(self._last_heartbeat_ms)
            elif (p := self._progress.get(v)) is not None and p.lease_ack_ms is not None:
                times.append(p.lease_ack_ms)
        if len(times) < membership.quorum:
            return None
        return sorted(times, reverse=True)[membership.quorum - 1]

    def _lease_expiry_ms(self) -> int | None:
        if self._role is not Role.LEADER:
            return None
        chain = self._chain()
        expiry: int | None = None
        for m in (chain[0], chain[-1]):
            q = self._quorum_time(m)
            if q is None:
                return None
            expiry = q + self._cfg.lease_ms if expiry is None else min(expiry,
                                                                      q + self._cfg.lease_ms)
        return expiry

    # --- ticks --------------------------------------------------------------------------------

    def _tick_follower(self, now_ms: int) -> None:
        assert self._election_deadline_ms is not None
        if now_ms < self._election_deadline_ms:
            return
        if not self._can_campaign():
            self._reset_election_timer(now_ms)
        elif self._lease_active(now_ms):
            self._defer_election()
        else:
            self._campaign_now(now_ms)

    def _tick_candidate(self, now_ms: int) -> None:
        c = self._campaign
        assert c is not None and self._election_deadline_ms is not None
        if now_ms >= self._election_deadline_ms:
            if self._lease_active(now_ms):
                self._defer_election()
            else:
                self._campaign_now(now_ms)
        elif now_ms - c.last_send_ms >= self._cfg.retransmit_ms:
            c.last_send_ms = now_ms
            for peer in sorted(c.prepared - set(c.promises)):
                self._send(Prepare(**self._env(peer), ballot=c.ballot,
                                   first_index=c.first_index))

    def _tick_leader(self, now_ms: int) -> None:
        if now_ms >= self._next_heartbeat_ms:
            self._send_heartbeats(now_ms)
        # Check quorum: a leader cut off from a majority for an election timeout steps down, so
        # proposals sent to it fail fast instead of hanging.
        chain = self._chain()
        times = [self._quorum_time(m) for m in (chain[0], chain[-1])]
        contact = min(self._elected_ms if t is None else max(t, self._elected_ms) for t in times)
        if now_ms - contact >= self._cfg.election_timeout_max_ms:
            self._become_follower(None)
            return
        for node, (_, since_ms) in list(self._departing.items()):
            if now_ms - since_ms >= self._cfg.election_timeout_max_ms:
                del self._departing[node]
                self._sync_progress()
        # Retransmit to followers that made no progress for a while (lost or reordered sends).
        last = self.last_index
        for node, p in self._progress.items():
            if p.match_index < last and now_ms - p.progress_ms >= self._cfg.retransmit_ms:
                p.next_index = p.match_index + 1
                p.progress_ms = now_ms
                if p.match_index == 0:
                    p.bootstrap_sent = False  # the membership may not have reached it
                self._replicate(node, now_ms, max_messages=1)

    # --- message handlers -------------------------------------------------------------------

    def _on_prepare(self, msg: Prepare, now_ms: int) -> None:
        b = msg.ballot
        reason = ""
        if b < self._promised:
            reason = RejectReason.BALLOT
        elif (b != self._promised and self._lease_active(now_ms)
              and msg.src != self._leader):
            reason = RejectReason.LEASE
        elif msg.first_index - 1 < self._snap_index:
            reason = RejectReason.BEHIND
        if reason:
            self._send(Promise(**self._env(msg.src), ballot=b, ok=False, promised=self._promised,
                               commit_index=self._commit, snapshot_index=self._snap_index,
                               reason=reason))
            return
        if b != self._promised:
            self._set_promised(b)
            if self._role is not Role.FOLLOWER:
                self._become_follower(None)
            self._leader = None
            self._reset_election_timer(now_ms)
        entries = tuple(self._log[i] for i in sorted(self._log) if i >= msg.first_index)
        self._send(Promise(**self._env(msg.src), ballot=b, ok=True, promised=self._promised,
                           commit_index=self._commit, snapshot_index=self._snap_index,
                           entries=entries))

    def _on_promise(self, msg: Promise, now_ms: int) -> None:
        c = self._campaign
        if c is None or msg.ballot != c.ballot:
            return
        if not msg.ok:
            if msg.promised > c.ballot:
                self._become_follower(None)
            return
        c.promises[msg.src] = msg
        self._campaign_progress(now_ms)

    def _accept_leader(self, ballot: Ballot, now_ms: int) -> bool:
        """Common acceptor check for leader traffic; False if the ballot is stale."""
        if ballot < self._promised:
            return False
        self._set_promised(ballot)
        if self._role is not Role.FOLLOWER:
            assert self._role is not Role.LEADER or ballot.node_id != self.node_id
            self._become_follower(ballot.node_id)
        if self._leader_ballot != ballot:
            self._leader_ballot = ballot
            self._leader_commit = 0
        self._leader = ballot.node_id
        self._reset_election_timer(now_ms)
        return True

    def _learn_commit(self, ballot: Ballot, commit_index: int) -> None:
        self._leader_commit = max(self._leader_commit, commit_index)
        if self._snapshot is None:
            return  # a joining replica commits nothing before it learns the membership
        new = self._commit
        while new < self._leader_commit:
            e = self._log.get(new + 1)
            if e is None or e.ballot != ballot:
                break
            new += 1
        self._set_commit(new)

    def _on_accept(self, msg: Accept, now_ms: int) -> None:
        b = msg.ballot
        if not self._accept_leader(b, now_ms):
            self._send(Accepted(**self._env(msg.src), ballot=b, ok=False,
                                promised=self._promised, match_index=0))
            return
        floor = max(self._commit, self._snap_index)
        for e in msg.entries:
            if e.index <= floor:
                continue
            # Below the leader's commit index a value is chosen: hold it at this ballot.
            self._put(e if e.ballot == b else e.with_ballot(b))
        self._learn_commit(b, msg.commit_index)
        match = self._match_for(b)
        hole = bool(msg.entries) and msg.entries[-1].index > match
        self._send(Accepted(**self._env(msg.src), ballot=b, ok=True, promised=self._promised,
                            match_index=match, hole=hole))

    def _on_heartbeat(self, msg: Heartbeat, now_ms: int) -> None:
        b = msg.ballot
        if not self._accept_leader(b, now_ms):
            self._send(HeartbeatAck(**self._env(msg.src), ballot=b, ok=False,
                                    promised=self._promised, sent_ms=msg.sent_ms, match_index=0))
            return
        self._extend_lease_promise(now_ms)
        self._learn_commit(b, msg.commit_index)
        self._send(HeartbeatAck(**self._env(msg.src), ballot=b, ok=True, promised=self._promised,
                                sent_ms=msg.sent_ms, match_index=self._match_for(b)))

    def _on_install_snapshot(self, msg: InstallSnapshot, now_ms: int) -> None:
        b = msg.ballot
        if not self._accept_leader(b, now_ms):
            self._send(Accepted(**self._env(msg.src), ballot=b, ok=False,
                                promised=self._promised, match_index=0))
            return
        snap = msg.snapshot
        if snap.index > self._commit:
            self._install_local_snapshot(snap)
            self._commit = self._applied = snap.index
            self._hs_dirty = True
            self._committed_config = snap.membership
            self._apply_snapshot = snap if snap.index > 0 else None
        elif self._snapshot is None:
            # A joining replica learns the bootstrap membership (it committed nothing yet).
            self._snapshot = snap
            self._out_snapshots.append(snap)
            self._committed_config = self._fold_committed_config()
        self._learn_commit(b, msg.commit_index)
        self._send(Accepted(**self._env(msg.src), ballot=b, ok=True, promised=self._promised,
                            match_index=self._match_for(b)))

    def _leader_reply_ok(self, ballot: Ballot, ok: bool, promised: Ballot, now_ms: int) -> bool:
        if not ok:
            if promised > self._promised:
                # A higher ballot exists (often a replica that campaigned while cut off). A leader
                # that still holds its lease re-runs phase 1 at once with a higher ballot: its
                # followers exempt it from their lease promise, so leadership is not lost for an
                # election timeout. Its old lease ends here either way.
                had_lease = self.has_lease(now_ms)
                self._become_follower(None)
                if had_lease and self._can_campaign():
                    self._campaign_now(now_ms)
            return False
        return ballot == self._promised

    def _on_accepted(self, msg: Accepted, now_ms: int) -> None:
        if not self._leader_reply_ok(msg.ballot, msg.ok, msg.promised, now_ms):
            return
        p = self._progress.get(msg.src)
        if p is None:
            return
        if msg.match_index > p.match_index:
            p.match_index = msg.match_index
            p.progress_ms = now_ms
        if p.next_index <= p.match_index:
            p.next_index = p.match_index + 1
        if msg.hole and p.hole_reset_at != p.match_index:
            p.hole_reset_at = p.match_index
            p.next_index = p.match_index + 1
        self._advance_leader_commit()
        if self._role is Role.LEADER and msg.src in self._progress:
            self._replicate(msg.src, now_ms)

    def _on_heartbeat_ack(self, msg: HeartbeatAck, now_ms: int) -> None:
        if not self._leader_reply_ok(msg.ballot, msg.ok, msg.promised, now_ms):
            return
        p = self._progress.get(msg.src)
        if p is None:
            return
        gone = self._departing.get(msg.src)
        if gone is not None and msg.match_index >= gone[0] and msg.sent_ms >= gone[1]:
            del self._departing[msg.src]  # it has learned that it was removed
            self._sync_progress()
            return
        if p.lease_ack_ms is None or msg.sent_ms > p.lease_ack_ms:
            p.lease_ack_ms = msg.sent_ms
        if msg.match_index > p.match_index:
            p.match_index = msg.match_index
            p.progress_ms = now_ms
            if p.next_index <= p.match_index:
                p.next_index = p.match_index + 1
            self._advance_leader_commit()


# Transitions as data: which handler runs for which message in which role. Every role is an
# acceptor (Prepare, Accept, Heartbeat, InstallSnapshot); only a candidate counts promises and
# only a leader counts acceptances. Messages not listed for a role are stale and ignored.
_ACCEPTOR: dict[type, Handler] = {
    Prepare: Replica._on_prepare,
    Accept: Replica._on_accept,
    Heartbeat: Replica._on_heartbeat,
    InstallSnapshot: Replica._on_install_snapshot,
}
_DISPATCH: dict[Role, dict[type, Handler]] = {
    Role.FOLLOWER: dict(_ACCEPTOR),
    Role.CANDIDATE: {**_ACCEPTOR, Promise: Replica._on_promise},
    Role.LEADER: {**_ACCEPTOR, Accepted: Replica._on_accepted,
                  HeartbeatAck: Replica._on_heartbeat_ack},
}
_TICK: dict[Role, Callable[[Replica, int], None]] = {
    Role.FOLLOWER: Replica._tick_follower,
    Role.CANDIDATE: Replica._tick_candidate,
    Role.LEADER: Replica._tick_leader,
}
