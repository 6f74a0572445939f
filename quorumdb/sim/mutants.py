"""A catalogue of deliberately broken cores, to prove the simulator's checkers have teeth.

Each ``Mutant`` breaks one rule the safety argument relies on, through a test-only hook the
simulator injects: a ``Replica`` subclass that overrides one small method of the real core, or
a driver/storage fault the world applies. Production code carries no mutant flags: the hooks
are ordinary methods of ``Replica`` (``has_lease``, ``_lease_promise_ms``,
``_config_change_ready``, ``_config_change_pending``, ``_advance_leader_commit``), and the
simulator uses the real ``Replica`` unless ``SimConfig.mutant`` names an entry here.

Every mutant also names the sweep ``profile`` (extra ``SimConfig`` settings) that exposes it;
the unmutated core must pass the very same seeds. ``python -m quorumdb.sim --catalogue``
runs the catalogue and prints each mutant's first catching seed (``--seeds N`` bounds the
search); ``python -m quorumdb.sim --mutant NAME --seed S`` reruns one.

This module is only ever imported by the simulator and by tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quorumdb.core.paxos import ZERO_BALLOT, HardState, Membership, Replica, Role, StoredState
from quorumdb.sim.storage import SimLogStorage

if TYPE_CHECKING:
    from quorumdb.sim.world import SimConfig, SimReport

__all__ = ["Mutant", "MUTANTS", "mutant", "first_catch", "sweep_config"]


class _Counting(Replica):
    """Counts how often the mutation changed the core's decision (``SimReport.faults``
    reports the total as ``mutant_activations``), so a mutant that survives a sweep can be
    told apart from one the sweep never exercised."""

    activations = 0

    def _mutated(self, real: bool, mutated: bool) -> bool:
        if real != mutated:
            self.activations += 1
        return mutated


class NoLeaseCheck(_Counting):
    """The leader serves lease reads whether or not its lease is still valid."""

    def has_lease(self, now_ms: int) -> bool:
        return self._mutated(super().has_lease(now_ms), self.role is Role.LEADER)


class NoDriftMargin(Replica):
    """A follower's promise to the leader lasts ``lease_ms`` of its own clock, without the
    drift margin: a fast follower clock releases it before a slow leader's lease ends."""

    def _lease_promise_ms(self) -> int:
        return self._cfg.lease_ms


class NoNoopBeforeConfigChange(_Counting):
    """A new leader proposes a membership change before an entry of its own ballot commits."""

    def _config_change_ready(self) -> bool:
        return self._mutated(super()._config_change_ready(), True)


class TwoConfigChangesPending(_Counting):
    """A leader proposes a membership change while another one is still uncommitted, based on
    the membership that one produces (so both take effect, as two pending changes would)."""

    def _config_change_pending(self) -> bool:
        return self._mutated(super()._config_change_pending(), False)

    def _config_change_base(self) -> Membership:
        return self._chain()[-1]


class CommitWithoutMajority(Replica):
    """The leader counts a slot committed as soon as it holds it itself."""

    def _advance_leader_commit(self) -> None:
        self._set_commit(self.last_index)


class ForgetfulLogStorage(SimLogStorage):
    """The promised ballot never survives a restart (the hard state reloads as never promised)."""

    def load(self) -> StoredState:
        st = super().load()
        hs = HardState(promised=ZERO_BALLOT, commit_index=st.hard_state.commit_index)
        return dataclasses.replace(st, hard_state=hs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutant:
    name: str
    description: str
    replica_class: type[Replica] = Replica
    storage_class: type[SimLogStorage] = SimLogStorage
    send_before_sync: bool = False  # the driver sends, applies and replies before the fsync
    amnesiac_rejoin: bool = False  # a wiped founder restarts under its old id, as a voter
    suspend_stops_clock: bool = False  # clock freezes last up to two leases (beyond the margin)
    profile: dict[str, Any] = field(default_factory=dict)  # SimConfig settings that expose it
    seeds: int = 30  # the short sweep (make test) must catch it within this many seeds
    # Why this mutant cannot break this core (a rule it relies on elsewhere makes the broken one
    # redundant): the sweep must exercise it and every checker must still pass.
    equivalent: str = ""


# Sweep profiles. "leases": clients read continuously, the drift margin is wide (so the
# clock-rate spread and the frozen-clock pauses it covers are wide too), and links are cut
# one at a time, so a candidate can campaign while the leader still holds its followers.
LEASES: dict[str, Any] = {
    "lease_ms": 600, "max_clock_drift_ms": 600, "election_timeout_min_ms": 1200,
    "election_timeout_spread_ms": 600, "retransmit_ms": 40, "readers": 2, "keys": 2,
    "delay_ms_max": 5.0, "reader_think_ms_max": 10.0,
    "crash_weight": 0.0, "pause_weight": 0.0, "partition_weight": 0.0, "power_loss_weight": 0.0,
    "wipe_weight": 0.0, "link_cut_weight": 0.0, "reconfig_interval_ms": 0.0, "spares": 0,
    "freeze_weight": 1.0, "depose_weight": 3.0, "fault_interval_ms": 500.0,
    "client_timeout_ms": 300.0, "tick_ms": 20, "steps": 30_000,
    # No compaction: a campaigner that was cut off must not be refused as BEHIND a snapshot.
    "compact_threshold_entries": 1_000_000,
}
RECONFIG: dict[str, Any] = {"reconfig_interval_ms": 300.0, "steps": 8000}
WIPES: dict[str, Any] = {
    "wipe_weight": 6.0, "fault_interval_ms": 500.0, "downtime_ms_max": 1000.0, "readers": 0,
    "steps": 12_000,
}
SLOW_DISK: dict[str, Any] = {
    "fsync_ms_min": 20.0, "fsync_ms_max": 60.0, "delay_ms_max": 5.0, "power_loss_weight": 1.0,
    "readers": 0, "steps": 12_000,
}

MUTANTS: tuple[Mutant, ...] = (
    Mutant(name="no-lease-check", description=NoLeaseCheck.__doc__ or "",
           replica_class=NoLeaseCheck, profile=LEASES, seeds=10),
    Mutant(name="no-drift-margin", description=NoDriftMargin.__doc__ or "",
           replica_class=NoDriftMargin, profile=LEASES, seeds=10),
    Mutant(name="no-noop-before-config-change", description=NoNoopBeforeConfigChange.__doc__ or "",
           replica_class=NoNoopBeforeConfigChange, profile=RECONFIG, seeds=8,
           equivalent="a change governs only the slots after it once committed, and "
                      "CONFIG_PENDING already covers the new leader's whole log (the slots it "
                      "re-proposed included), so the base it starts from is the membership every "
                      "replica will fold to; waiting for the no-op adds nothing (Ongaro's Raft "
                      "counterexample replayed on this mutant: tests/unit/"
                      "test_paxos_config_counterexamples.py)"),
    Mutant(name="two-config-changes-pending", description=TwoConfigChangesPending.__doc__ or "",
           replica_class=TwoConfigChangesPending, profile=RECONFIG, seeds=8,
           equivalent="a membership governs slot j only as the fold of the committed slots "
                      "below j, and a candidate needs a majority of every membership along its "
                      "merged log, so phase 1 chases every chosen change however many are in "
                      "flight (the disjoint-majorities trace replayed on this mutant: tests/unit/"
                      "test_paxos_config_counterexamples.py)"),
    Mutant(name="commit-without-majority", description=CommitWithoutMajority.__doc__ or "",
           replica_class=CommitWithoutMajority),
    Mutant(name="send-before-fsync",
           description="The driver sends, applies and replies before the fsync completes.",
           send_before_sync=True, profile=SLOW_DISK),
    Mutant(name="lost-promise-after-restart", description=ForgetfulLogStorage.__doc__ or "",
           storage_class=ForgetfulLogStorage, profile=SLOW_DISK),
    Mutant(name="suspend-stops-clock",
           description="The lease clock stops while the node is suspended, for longer than the "
                       "drift margin covers (CLOCK_MONOTONIC across a VM suspend): why the "
                       "runtime reads CLOCK_BOOTTIME.",
           suspend_stops_clock=True, profile=LEASES, seeds=10),
    Mutant(name="amnesiac-rejoin",
           description="A node whose disk was wiped comes back under its old id as a founding "
                       "voter (no new incarnation): it has forgotten its promises and votes.",
           amnesiac_rejoin=True, profile=WIPES),
)

_BY_NAME = {m.name: m for m in MUTANTS}


def mutant(name: str) -> Mutant | None:
    """The catalogue entry called ``name``; None for "" (the real core)."""
    if not name:
        return None
    if name not in _BY_NAME:
        raise ValueError(f"unknown mutant {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def sweep_config(m: Mutant, seed: int, *, mutated: bool = True, **overrides: Any) -> SimConfig:
    """The simulation of ``seed`` in ``m``'s sweep, with the mutant (or the real core)."""
    from quorumdb.sim.world import SimConfig

    settings = {**m.profile, **overrides, "seed": seed, "mutant": m.name if mutated else ""}
    return SimConfig(**settings)


def first_catch(
    m: Mutant, seeds: range, **overrides: Any
) -> tuple[int | None, SimReport | None]:
    """The first seed in ``seeds`` whose run of ``m`` fails a checker, and its report."""
    from quorumdb.sim.world import run

    for seed in seeds:
        report = run(sweep_config(m, seed, **overrides))
        if not report.ok:
            return seed, report
    return None, None
