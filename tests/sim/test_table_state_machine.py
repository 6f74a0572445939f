"""The simulator on the real partition state machine (the cluster's table-write path).

Clients' puts and compare-and-sets are evaluated on the leader by ``PartitionStore`` into raw
effects and replicated; replicas apply effects only. The checkers (linearizability, log safety,
liveness, convergence) must pass, and must fail when the store's one safety rule — apply a
command only on the state it was evaluated on — is removed.
"""

from __future__ import annotations

import pytest

from quorumdb.db.replicated import PartitionStore
from quorumdb.sim.world import SimConfig, World

# Contended settings: one key, many writers, the leader deposed while it still answers.
HARSH = {"keys": 1, "clients": 6, "depose_weight": 2.0}
CATCHING_SEED = 24  # the first seed of HARSH at which the unguarded store is caught


def config(seed: int, **over: object) -> SimConfig:
    return SimConfig(seed=seed, state_machine="table", **over)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_table_state_machine_passes_every_checker(seed: int) -> None:
    world = World(config(seed))
    report = world.run()
    assert report.ok, report.describe() if hasattr(report, "describe") else report
    assert world.commits > 0


def test_stale_evaluations_happen_and_are_skipped_without_harm() -> None:
    skipped = 0
    for seed in range(CATCHING_SEED - 2, CATCHING_SEED + 1):
        world = World(config(seed, **HARSH))
        assert world.run().ok
        skipped += world.faults["skipped_commands"]
    assert skipped > 0  # the guard was exercised, not idle


def test_without_the_base_guard_the_checkers_catch_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PartitionStore, "_fits", staticmethod(lambda cmd, last: True))
    report = World(config(CATCHING_SEED, **HARSH)).run()
    assert not report.ok


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_long_sweep_table(chunk: int) -> None:
    for seed in range(chunk * 25, chunk * 25 + 25):
        assert World(config(seed, **HARSH)).run().ok, seed
