"""``python -m quorumdb.sim --seed N [--steps K] [...]``: run one seeded simulation (or a sweep).

Prints the seed and every setting first, then a summary (operations, commits, faults injected,
checker verdicts, trace hash). The same seed and settings reproduce the same run exactly. With
``--seeds M`` it sweeps seeds N..N+M-1 and prints one line per seed plus totals; any failing
seed is printed so it can be rerun alone. Exit status 1 when any run fails a checker.

``--mutant NAME`` runs a deliberately broken core (``quorumdb.sim.mutants``);
``--catalogue [--seeds M]`` prints, for every mutant, the first seed of its sweep (0..M-1) that
a checker catches (exit status 1 if one is never caught).
"""

from __future__ import annotations

import argparse
import sys
import time

from quorumdb.sim.mutants import MUTANTS, first_catch, mutant
from quorumdb.sim.runner import settings_parser, sweep
from quorumdb.sim.world import SimConfig, SimReport, run


def _parser() -> argparse.ArgumentParser:
    return settings_parser("python -m quorumdb.sim", __doc__ or "", SimConfig)


def catalogue(name: str, seeds: int) -> int:
    """One line per mutant: its first catching seed within ``seeds`` (an equivalent mutant must
    instead survive them all while being exercised). Exit status 1 on any other outcome."""
    chosen = [m for m in MUTANTS if not name or m.name == name]
    print(f"{'mutant':<30} {'first catching seed':>19}  {'checkers':<30} wall", flush=True)
    wrong = 0
    for m in chosen:
        t0 = time.perf_counter()
        seed, report = first_catch(m, range(seeds))
        wall = time.perf_counter() - t0
        if seed is None:
            caught, checkers = "not caught", "equivalent" if m.equivalent else "-"
        else:
            caught, checkers = str(seed), report.failed_checkers() if report is not None else "-"
        wrong += (seed is None) != bool(m.equivalent)
        print(f"{m.name:<30} {caught:>19}  {checkers:<30} {wall:.1f}s", flush=True)
    return 1 if wrong else 0


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    seeds = args.pop("seeds")
    quiet = args.pop("quiet")
    if args.pop("catalogue"):
        return catalogue(args["mutant"], seeds)
    mutant(args["mutant"])  # an unknown name fails here, before any run
    base = SimConfig(**args)
    print("settings: " + " ".join(f"{k}={v}" for k, v in base.settings().items()), flush=True)
    totals = {"ops": 0, "commits": 0, "virtual_ms": 0.0}
    started = time.perf_counter()

    def count(report: SimReport) -> None:
        totals["ops"] += report.ops
        totals["commits"] += report.commits
        totals["virtual_ms"] += report.virtual_ms

    def line(seed: int, report: SimReport, elapsed: float) -> str:
        faults = sum(v for k, v in report.faults.items() if k in ("crash", "pause", "partition", "power_loss"))
        return (f"seed={seed} {'PASS' if report.ok else 'FAIL'} ops={report.ops} commits={report.commits} "
                f"faults={faults} trace={report.trace_hash} wall={elapsed:.2f}s")

    failed = sweep(base, seeds, run=run, prog="python -m quorumdb.sim", quiet=quiet, line=line, on_report=count,
                   footer=lambda r, elapsed: f"wall time: {elapsed:.2f}s, commits per wall second: "
                                             f"{r.commits / max(elapsed, 1e-9):.0f}")
    wall = time.perf_counter() - started
    if seeds > 1:
        print(f"seeds={seeds} failed={len(failed)} ops={totals['ops']} commits={totals['commits']} "
              f"virtual={totals['virtual_ms'] / 1000:.0f}s wall={wall:.1f}s "
              f"commits_per_wall_s={totals['commits'] / max(wall, 1e-9):.0f}")
        if failed:
            print("failing seeds: " + " ".join(map(str, failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
