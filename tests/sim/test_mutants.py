"""The mutant catalogue: every deliberately broken core is caught by a checker within a bounded
number of seeds of its sweep, and the real core passes those same seeds.

``make test`` searches each mutant's first ``Mutant.seeds`` seeds (stopping at the first catch);
``make sim`` (slow) runs the real core over 100 seeds of every sweep profile and searches
longer. ``python -m quorumdb.sim --catalogue`` prints the first catching seed of each mutant.
"""

from __future__ import annotations

import pytest

from quorumdb.core.paxos import PaxosConfig
from quorumdb.sim.mutants import MUTANTS, Mutant, first_catch, mutant, sweep_config
from quorumdb.sim.world import World, run

CAUGHT = [m for m in MUTANTS if not m.equivalent]
EQUIVALENT = [m for m in MUTANTS if m.equivalent]


@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in CAUGHT])
def test_mutant_is_caught_and_the_real_core_passes_the_same_seeds(m: Mutant) -> None:
    seed, report = first_catch(m, range(m.seeds))
    assert seed is not None and report is not None, f"{m.name} survived {m.seeds} seeds"
    assert report.failed_checkers(), report.summary()
    for s in range(seed + 1):
        real = run(sweep_config(m, s, mutated=False))
        assert real.ok, f"the real core fails seed {s} of {m.name}'s sweep:\n{real.summary()}"


@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in EQUIVALENT])
def test_equivalent_mutants_are_exercised_and_every_checker_still_passes(m: Mutant) -> None:
    """A mutant of a rule this core does not depend on (``Mutant.equivalent`` says why): the
    sweep exercises the mutation (``mutant_activations``) and every checker still passes."""
    activations = 0
    for s in range(m.seeds):
        report = run(sweep_config(m, s))
        assert report.ok, report.summary()
        activations += report.faults.get("mutant_activations", 0)
    assert activations > 0, f"the sweep never exercised {m.name}"


def test_mutants_are_test_only_hooks_not_production_flags() -> None:
    assert not [f for f in PaxosConfig.__dataclass_fields__ if "unsafe" in f or "mutant" in f]
    world = World(sweep_config(MUTANTS[0], 0, mutated=False))
    assert world.mutant is None
    assert mutant("") is None
    with pytest.raises(ValueError, match="unknown mutant"):
        mutant("no-such-mutant")


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in MUTANTS])
def test_long_sweep_real_core_passes_every_mutant_profile(m: Mutant) -> None:
    """make sim: 100 seeds of each mutant's sweep profile pass on the real core, and the
    mutant (unless equivalent) is caught by some seed among them."""
    failed = [s for s in range(100) if not run(sweep_config(m, s, mutated=False)).ok]
    assert not failed, failed
    if not m.equivalent:
        assert first_catch(m, range(100))[0] is not None


def test_cli_catalogue_prints_the_first_catching_seed(capsys: pytest.CaptureFixture[str]) -> None:
    from quorumdb.sim.__main__ import main

    assert main(["--catalogue", "--mutant", "lost-promise-after-restart", "--seeds", "3"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("lost-promise")]
    assert line and line[0].split()[1] == "0" and "log-safety" in line[0]
    assert main(["--mutant", "lost-promise-after-restart", "--seed", "0", "--steps", "12000",
                 "--readers", "0", "--fsync-ms-min", "20", "--fsync-ms-max", "60",
                 "--delay-ms-max", "5", "--power-loss-weight", "1"]) == 1
    assert "verdict: FAIL (seed 0)" in capsys.readouterr().out
