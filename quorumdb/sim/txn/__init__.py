"""The deterministic simulation of the transaction protocol (``quorumdb.core.txn``).

``python -m quorumdb.sim.txn --seed N [--seeds M] [...]`` runs the bank-transfer workload over
several partitions, coordinators and the ledger with crashes, outages and a lossy network, and
prints the seed, every setting, the figures and the checkers' verdicts; the same seed reproduces
the same run (``trace hash``). ``--catalogue`` prints the first seed at which a checker catches
each deliberately broken core of ``mutants``.

Modules: ``world`` (event loop, faults, the Ready loops of the three cores), ``bank`` (accounts,
evaluator, item store and simulated disk), ``workload`` (movers, readers, plain writers),
``mutants`` (test-only broken cores); the checkers are ``quorumdb.sim.checkers.transactions``.
Nothing here reads the wall clock (except to report wall time), sleeps, does real I/O, or draws
unseeded randomness.
"""

from quorumdb.sim.txn.world import TxnSimConfig, TxnSimReport, TxnWorld, run

__all__ = ["TxnSimConfig", "TxnSimReport", "TxnWorld", "run"]
