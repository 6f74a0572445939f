"""The transaction simulation: reproducible runs, a seeded slice passing every checker while
exercising every fault and outcome, and the mutant catalogue (each broken core caught within its
bound, the real cores passing the same seeds).

``make test`` runs the short slice here; ``make sim`` (slow) runs the long sweeps below and
``python -m quorumdb.sim.txn --seeds 300`` / ``--catalogue --seeds 100``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections import Counter

import pytest

from quorumdb.sim.txn import TxnSimConfig, TxnSimReport, TxnWorld, run
from quorumdb.sim.txn.mutants import TXN_MUTANTS, TxnMutant, first_catch, sweep_config, txn_mutant

SLICE_STEPS = 6000
SLICE_SEEDS = 80


@functools.cache
def slice_run(seed: int) -> TxnSimReport:
    return run(TxnSimConfig(seed=seed, steps=SLICE_STEPS))


def test_same_seed_same_trace_and_different_seed_differs() -> None:
    a = run(TxnSimConfig(seed=11, steps=3000))
    b = run(TxnSimConfig(seed=11, steps=3000))
    c = run(TxnSimConfig(seed=12, steps=3000))
    assert a.trace_hash == b.trace_hash and a.summary() == b.summary()
    assert c.trace_hash != a.trace_hash


def test_cli_prints_settings_and_reproduces_across_processes() -> None:
    outs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run(
            [sys.executable, "-m", "quorumdb.sim.txn", "--seed", "5", "--steps", "3000",
             "--drop", "0.05"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outs.append(proc.stdout)
    first = outs[0].splitlines()[0]
    assert first.startswith("settings: seed=5 steps=3000 partitions=4")
    assert "drop=0.05" in first and "mutant=" in first
    trace = [ln for ln in outs[0].splitlines() if ln.startswith("trace hash")]
    assert trace and trace == [ln for ln in outs[1].splitlines() if ln.startswith("trace hash")]
    assert "verdict: PASS (seed 5)" in outs[0]


@pytest.mark.parametrize("seed", range(SLICE_SEEDS))
def test_seeded_slice_passes_every_checker(seed: int) -> None:
    report = slice_run(seed)
    assert report.ok, report.summary()
    assert report.settled and report.committed > 0


def test_the_slice_exercises_every_fault_and_every_outcome() -> None:
    """A slice that passes while exercising nothing proves nothing: over the slice, every fault
    kind happened, recovery ran, conflicts were reported as TransactionConflict, conditions
    failed, reads were checked, tokens were replayed and mismatched."""
    faults: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    committed = reads = 0
    for seed in range(SLICE_SEEDS):
        r = slice_run(seed)
        faults.update(r.faults)
        faults.update({k: v for k, v in r.network.items() if k in ("dropped", "duplicated", "slowed")})
        stats.update(r.stats)
        committed += r.committed
        reads += r.reads_checked
    for kind in ("coordinator_crash", "crash_mid_commit", "participant_crash", "ledger_outage",
                 "link_cut", "recoveries", "ledger_sweeps", "lost_unsynced_records", "dropped",
                 "duplicated", "slowed"):
        assert faults[kind] > 0, kind
    for what in ("write_conflicts", "read_conflicts", "plain_conflicts", "write_condition_failed",
                 "transfer_success_replayed", "replay_success_replayed",
                 "replay_cancelled_replayed", "mismatch_parameter_mismatch", "write_in_progress",
                 "plain_ok"):
        assert stats[what] > 0, what
    assert committed > 1000 and reads > 400


def test_a_run_settles_with_nothing_left_open() -> None:
    world = TxnWorld(TxnSimConfig(seed=3, steps=SLICE_STEPS))
    report = world.run()
    assert report.settled and not world._leftovers()
    for node in world.pnodes.values():
        assert node.core is not None and not node.core.prepared and not node.disk.durable.prepared
    assert all(r.state.decided and r.completed_ms is not None for r in world.ledger.records())
    total = sum(v.item["b"] for n in world.pnodes.values() for v in n.disk.durable.items.values())
    assert total == world.config.initial_balance * world.config.accounts


# -- the mutant catalogue --------------------------------------------------------------------------


@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in TXN_MUTANTS])
def test_mutant_is_caught_and_the_real_cores_pass_the_same_seeds(m: TxnMutant) -> None:
    """Caught within its bound; the real cores pass every seed of that bound."""
    seed, report = first_catch(m, range(m.seeds))
    assert seed is not None and report is not None, f"{m.name} survived {m.seeds} seeds"
    assert report.failed_checkers(), report.summary()
    for s in range(m.seeds):
        real = run(sweep_config(m, s, mutated=False))
        assert real.ok, f"the real cores fail seed {s} of {m.name}'s sweep:\n{real.summary()}"


def test_mutants_are_test_only_hooks_not_production_flags() -> None:
    from quorumdb.core.txn import TxnConfig

    assert not [f for f in TxnConfig.__dataclass_fields__ if "unsafe" in f or "mutant" in f]
    world = TxnWorld(sweep_config(TXN_MUTANTS[0], 0, mutated=False))
    assert world.mutant is None
    assert txn_mutant("") is None
    with pytest.raises(ValueError, match="unknown mutant"):
        txn_mutant("no-such-mutant")


def test_cli_catalogue_prints_the_first_catching_seed(capsys: pytest.CaptureFixture[str]) -> None:
    from quorumdb.sim.txn.__main__ import main

    assert main(["--catalogue", "--mutant", "recovery-without-cas", "--seeds", "3"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("recovery-without")]
    assert line and line[0].split()[1] == "0" and "decision-changed" in line[0]
    assert main(["--mutant", "recovery-without-cas", "--seed", "0", "--steps", "6000",
                 "--crash-mid-commit-weight", "4", "--fault-interval-ms", "200"]) == 1
    assert "verdict: FAIL (seed 0)" in capsys.readouterr().out


# -- make sim: long sweeps ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_long_sweep_passes_every_checker() -> None:
    failed = [s for s in range(300) if not run(TxnSimConfig(seed=s)).ok]
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in TXN_MUTANTS])
def test_long_sweep_real_cores_pass_every_mutant_profile(m: TxnMutant) -> None:
    failed = [s for s in range(100) if not run(sweep_config(m, s, mutated=False)).ok]
    assert not failed, failed
