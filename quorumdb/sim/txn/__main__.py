"""``python -m quorumdb.sim.txn --seed N [--seeds M] [...]``: the transaction simulation.

Prints the seed and every setting first, then, per seed, the figures (transactions committed,
cancelled, conflicts, reads checked, faults injected) and the checkers' verdicts. The same seed
and settings reproduce the same run exactly (the trace hash proves it). With ``--seeds M`` it
sweeps seeds N..N+M-1, one line per seed plus totals, and lists failing seeds so each can be
rerun alone. Exit status 1 when any run fails a checker.

``--mutant NAME`` runs a deliberately broken core (``quorumdb.sim.txn.mutants``);
``--catalogue [--seeds M]`` prints, for every mutant (or just ``--mutant``), the first seed of
its sweep (0..M-1) that a checker catches (exit status 1 if one is never caught).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from quorumdb.sim.runner import settings_parser, sweep
from quorumdb.sim.txn.mutants import TXN_MUTANTS, first_catch, txn_mutant
from quorumdb.sim.txn.world import TxnSimConfig, TxnSimReport, run


def _parser() -> argparse.ArgumentParser:
    return settings_parser("python -m quorumdb.sim.txn", __doc__ or "", TxnSimConfig)


def catalogue(name: str, seeds: int) -> int:
    """One line per mutant: its first catching seed within ``seeds`` and the checkers that
    caught it. Exit status 1 if any mutant survives."""
    chosen = [m for m in TXN_MUTANTS if not name or m.name == name]
    print(f"{'mutant':<28} {'first catching seed':>19}  {'checkers':<40} wall", flush=True)
    missed = 0
    for m in chosen:
        t0 = time.perf_counter()
        seed, report = first_catch(m, range(seeds))
        wall = time.perf_counter() - t0
        checkers = report.failed_checkers() if report is not None else "-"
        missed += seed is None
        print(f"{m.name:<28} {'not caught' if seed is None else seed:>19}  {checkers:<40} "
              f"{wall:.1f}s", flush=True)
    return 1 if missed else 0


def _line(seed: int, r: TxnSimReport, wall: float) -> str:
    return (f"seed={seed} {'PASS' if r.ok else 'FAIL'} committed={r.committed} "
            f"cancelled={r.cancelled} conflicts={r.conflicts} reads_checked={r.reads_checked} "
            f"faults={r.faults_injected} recoveries={r.faults.get('recoveries', 0)} "
            f"virtual={r.virtual_ms / 1000:.1f}s trace={r.trace_hash} wall={wall:.2f}s")


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    seeds = args.pop("seeds")
    quiet = args.pop("quiet")
    if args.pop("catalogue"):
        return catalogue(args["mutant"], seeds)
    txn_mutant(args["mutant"])  # an unknown name fails here, before any run
    base = TxnSimConfig(**args)
    print("settings: " + " ".join(f"{k}={v}" for k, v in base.settings().items()), flush=True)
    totals: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()

    def count(report: TxnSimReport) -> None:
        totals.update(committed=report.committed, cancelled=report.cancelled,
                      conflicts=report.conflicts, reads_checked=report.reads_checked,
                      faults=report.faults_injected, steps=report.steps)
        totals.update({f"fault:{k}": v for k, v in report.faults.items()})
        totals.update({f"stat:{k}": v for k, v in report.stats.items()})
        totals.update({f"net:{k}": v for k, v in report.network.items()})

    failed = sweep(base, seeds, run=run, prog="python -m quorumdb.sim.txn", quiet=quiet, line=_line,
                   on_report=count)
    if seeds > 1:
        wall = time.perf_counter() - started
        print(f"seeds={seeds} failed={len(failed)} committed={totals['committed']} "
              f"cancelled={totals['cancelled']} conflicts={totals['conflicts']} "
              f"reads_checked={totals['reads_checked']} faults={totals['faults']} "
              f"steps={totals['steps']} wall={wall:.1f}s")
        print("faults: " + " ".join(f"{k[6:]}={v}" for k, v in sorted(totals.items())
                                    if k.startswith("fault:")))
        print("workload: " + " ".join(f"{k[5:]}={v}" for k, v in sorted(totals.items())
                                      if k.startswith("stat:")))
        print("network: " + " ".join(f"{k[4:]}={v}" for k, v in sorted(totals.items())
                                     if k.startswith("net:")))
        if failed:
            print("failing seeds: " + " ".join(map(str, failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
