"""The deterministic simulator: whole clusters of sans-I/O cores in one process.

``python -m quorumdb.sim --seed N [--steps K] [...]`` runs one seeded simulation (or a sweep
with ``--seeds M``) and prints the seed, every setting and the checkers' verdicts; the same seed
reproduces the same run (the ``trace hash`` proves it). ``python -m quorumdb.sim --catalogue``
prints the first seed at which a checker catches each deliberately broken core of ``mutants``;
``python -m quorumdb.sim.bench`` measures the core's commit rate inside the simulator.

Modules: ``world`` (event loop, faults, the Ready loop), ``network``, ``disk``, ``clock``,
``storage`` (the core's log storage on the simulated disk), ``workloads``, ``mutants``
(test-only broken cores) and ``checkers`` (linearizability, log safety, liveness).
Nothing in this package reads the wall clock (except to report wall time), sleeps, does real
I/O, or draws unseeded randomness.
"""

from quorumdb.sim.world import SimConfig, SimReport, World, run

__all__ = ["SimConfig", "SimReport", "World", "run"]
