"""A catalogue of deliberately broken transaction cores, to prove the checkers have teeth.

Each ``TxnMutant`` breaks one rule the safety argument of ``quorumdb.core.txn`` relies on,
through a subclass that overrides one small hook method of the real core (``WriteTxn._decide``,
``Participant._lock_items`` / ``_unlock_items`` / ``_timestamp_ok``, ``ReadTxn._needs_verify``,
``TxnLedger._may_decide``) or a driver fault (a participant whose prepared records do not survive
a restart). Production code carries no mutant flags; the simulation uses the real cores unless
``TxnSimConfig.mutant`` names an entry here.

Every mutant names the sweep ``profile`` (extra ``TxnSimConfig`` settings) that exposes it and
the number of seeds within which the short sweep (``make test``) must catch it; the real core must
pass the very same seeds. ``python -m quorumdb.sim.txn --catalogue`` prints each mutant's first
catching seed; ``python -m quorumdb.sim.txn --mutant NAME --seed S`` reruns one.

This module is only ever imported by the simulator and by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quorumdb.core.txn import (
    Decision,
    LedgerDecide,
    LedgerRecord,
    Participant,
    PreparedTxn,
    ReadTxn,
    Timestamp,
    TxnLedger,
    TxnState,
    WriteTxn,
)

if TYPE_CHECKING:
    from quorumdb.sim.txn.world import TxnSimConfig, TxnSimReport

__all__ = ["TxnMutant", "TXN_MUTANTS", "txn_mutant", "sweep_config", "first_catch"]


class CommitBeforeLedgerWrite(WriteTxn):
    """The coordinator sends its commit to the participants before the ledger holds the
    decision: a recovery coordinator that finds the ledger undecided cancels what some
    participants already applied."""

    def _decide(self, decision: TxnState, now_ms: int) -> None:
        if decision is TxnState.COMMITTED:
            for p in self.participants:
                self._send(Decision(src=self.node, dst=p, txn_id=self.txn_id, commit=True))
        super()._decide(decision, now_ms)


class IgnoreTimestampOrder(Participant):
    """A participant accepts a transaction whatever the timestamp of the item's last writer."""

    def _timestamp_ok(self, ts: Timestamp, write_ts: Timestamp) -> bool:
        return True


class ReleaseOnVote(Participant):
    """A participant keeps the prepared effects but releases its items as soon as it votes:
    another transaction (or a plain write, or a read) may use them before the decision."""

    def _lock_items(self, rec: PreparedTxn) -> None:
        pass

    def _unlock_items(self, rec: PreparedTxn) -> None:
        pass


class RecoveryWithoutCas(TxnLedger):
    """The ledger lets a recovery coordinator's CANCEL overwrite any decision (a blind write
    instead of a compare-and-set)."""

    def _may_decide(self, rec: LedgerRecord, req: LedgerDecide) -> bool:
        return req.by_recovery or super()._may_decide(rec, req)


class SinglePhaseRead(ReadTxn):
    """A read-only transaction trusts its first round: no verification that nothing changed
    between the reads on different partitions."""

    def _needs_verify(self) -> bool:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnMutant:
    name: str
    description: str
    write_class: type[WriteTxn] = WriteTxn
    read_class: type[ReadTxn] = ReadTxn
    participant_class: type[Participant] = Participant
    ledger_class: type[TxnLedger] = TxnLedger
    forget_prepared: bool = False  # a restarted participant finds no prepared records on disk
    profile: dict[str, Any] = field(default_factory=dict)
    seeds: int = 10  # the short sweep (make test) must catch it within this many seeds


# Sweep profiles. "crashy": coordinators die often, many of them in the middle of a commit, so
# recovery races the coordinator. "contended": few accounts, many movers and readers.
CRASHY: dict[str, Any] = {"steps": 6000, "coordinator_crash_weight": 1.0,
                          "crash_mid_commit_weight": 4.0, "participant_crash_weight": 0.3,
                          "ledger_outage_weight": 0.3, "fault_interval_ms": 200.0}
# "late-duplicates": messages are often duplicated or held up for long, and participants keep no
# cache of recent decisions (as after a restart), so a Prepare can arrive after its transaction
# committed: only timestamp order stops it from being prepared, and applied, a second time.
LATE_DUPLICATES: dict[str, Any] = {"steps": 6000, "duplicate": 0.1, "slow": 0.05,
                                   "decided_cache": 0}
CONTENDED: dict[str, Any] = {"steps": 4000, "accounts": 4, "movers": 6, "readers": 3,
                             "fault_interval_ms": 800.0}
# "flaky-links": only cut links, often and briefly: a read's request to one partition is held up
# (and resent) while a transfer commits, so its reads of different partitions straddle the commit.
FLAKY_LINKS: dict[str, Any] = {"steps": 4000, "readers": 4, "touchers": 0, "amount_max": 20,
                               "coordinator_crash_weight": 0.0, "crash_mid_commit_weight": 0.0,
                               "participant_crash_weight": 0.0, "ledger_outage_weight": 0.0,
                               "link_cut_weight": 1.0, "fault_interval_ms": 50.0,
                               "downtime_ms_max": 200.0}
# "participant-crashes": participants die often, half of the time right after a write and before
# its fsync, with slow disks.
PARTICIPANT_CRASHES: dict[str, Any] = {"steps": 6000, "participant_crash_weight": 4.0,
                                       "coordinator_crash_weight": 0.2, "fsync_ms_max": 10.0,
                                       "fault_interval_ms": 200.0}

TXN_MUTANTS: tuple[TxnMutant, ...] = (
    TxnMutant(name="commit-before-ledger-write", description=CommitBeforeLedgerWrite.__doc__ or "",
              write_class=CommitBeforeLedgerWrite, profile=CRASHY),
    TxnMutant(name="ignore-timestamp-order", description=IgnoreTimestampOrder.__doc__ or "",
              participant_class=IgnoreTimestampOrder, profile=LATE_DUPLICATES),
    TxnMutant(name="release-on-vote", description=ReleaseOnVote.__doc__ or "",
              participant_class=ReleaseOnVote, profile=CONTENDED),
    TxnMutant(name="recovery-without-cas", description=RecoveryWithoutCas.__doc__ or "",
              ledger_class=RecoveryWithoutCas, profile=CRASHY),
    TxnMutant(name="single-phase-read", description=SinglePhaseRead.__doc__ or "",
              read_class=SinglePhaseRead, profile=FLAKY_LINKS),
    TxnMutant(name="prepared-not-durable",
              description="A participant's prepared records do not survive a restart: it "
                          "voted yes, crashed, and comes back holding nothing.",
              forget_prepared=True, profile=PARTICIPANT_CRASHES),
)

_BY_NAME = {m.name: m for m in TXN_MUTANTS}


def txn_mutant(name: str) -> TxnMutant | None:
    """The catalogue entry called ``name``; None for "" (the real cores)."""
    if not name:
        return None
    if name not in _BY_NAME:
        raise ValueError(f"unknown mutant {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def sweep_config(m: TxnMutant, seed: int, *, mutated: bool = True, **overrides: Any) -> TxnSimConfig:
    """The simulation of ``seed`` in ``m``'s sweep, with the mutant (or the real cores)."""
    from quorumdb.sim.txn.world import TxnSimConfig

    settings = {**m.profile, **overrides, "seed": seed, "mutant": m.name if mutated else ""}
    return TxnSimConfig(**settings)


def first_catch(m: TxnMutant, seeds: range, **overrides: Any) -> tuple[int | None, TxnSimReport | None]:
    """The first seed in ``seeds`` whose run of ``m`` fails a checker, and its report."""
    from quorumdb.sim.txn.world import run

    for seed in seeds:
        report = run(sweep_config(m, seed, **overrides))
        if not report.ok:
            return seed, report
    return None, None
