"""Tunables of a Multi-Paxos replica (timeouts, windows, batch sizes, the lease).

All durations are milliseconds of the driver's clock (``tick(now_ms)``). ``PaxosConfig``
validates the relations the safety and liveness arguments rely on when it is built. This module
must never read a clock or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PaxosConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PaxosConfig:
    """Per-replica settings; every replica of a group should use the same values.

    Lease: a leader's lease lasts ``lease_ms`` from the *send* time of the heartbeats a majority
    acknowledged. A replica that acknowledges refuses other candidates for
    ``lease_ms + max_clock_drift_ms`` of its own clock, where ``max_clock_drift_ms`` bounds how
    much two replicas' clocks can disagree about the length of one lease interval: rate
    differences plus any time a clock stood still (a suspend the clock does not count). The
    simulator draws clock rates and clock freezes within that bound
    (``quorumdb.sim.clock.clock_budget``); the runtime's clock counts suspends.
    """

    heartbeat_interval_ms: int = 100
    lease_ms: int = 1000
    max_clock_drift_ms: int = 100
    # A follower campaigns after a random delay in [min, max) without hearing from a leader.
    election_timeout_min_ms: int = 1500
    election_timeout_max_ms: int = 3000
    # A leader resends to a follower that made no progress for this long.
    retransmit_ms: int = 300
    # Pipelining: at most this many proposed-but-uncommitted slots.
    max_inflight_slots: int = 64
    # Batching: commands per slot and bytes per slot (a single larger command still fits).
    max_batch_commands: int = 64
    max_batch_bytes: int = 256 * 1024
    # Entries per Accept message, and unacknowledged entries in flight per follower.
    max_entries_per_message: int = 64
    max_inflight_per_follower: int = 256
    # Proposals waiting for a slot; beyond this, propose() is refused with BUSY.
    max_queued_proposals: int = 10_000
    # Ready.compact_hint is raised when this many applied entries sit above the snapshot.
    compact_threshold_entries: int = 10_000

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_interval_ms", "lease_ms", "election_timeout_min_ms",
            "election_timeout_max_ms", "retransmit_ms", "max_inflight_slots",
            "max_batch_commands", "max_batch_bytes", "max_entries_per_message",
            "max_inflight_per_follower", "max_queued_proposals", "compact_threshold_entries",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.max_clock_drift_ms, int) or self.max_clock_drift_ms < 0:
            raise ValueError("max_clock_drift_ms must be an int >= 0")
        if self.heartbeat_interval_ms >= self.lease_ms:
            raise ValueError("heartbeat_interval_ms must be below lease_ms")
        if self.election_timeout_min_ms < self.lease_ms + self.max_clock_drift_ms:
            raise ValueError("election_timeout_min_ms must be >= lease_ms + max_clock_drift_ms")
        if self.election_timeout_max_ms <= self.election_timeout_min_ms:
            raise ValueError("election_timeout_max_ms must be above election_timeout_min_ms")
