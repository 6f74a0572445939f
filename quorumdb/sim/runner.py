"""What the simulators' command lines share: flags from a config dataclass, and the seed sweep.

``settings_parser`` turns every field of a frozen config dataclass into a ``--flag`` (booleans
as ``--x/--no-x``) plus ``--seeds``, ``--quiet`` and ``--catalogue``. ``sweep`` runs seeds
``base.seed .. base.seed + seeds - 1`` with ``dataclasses.replace(base, seed=...)``: one line
per seed in a sweep (the full summary of a failing one), the whole summary for a single seed,
and a rerun hint for a seed that raised. It returns the failing seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["settings_parser", "sweep"]


class _Report(Protocol):
    @property
    def ok(self) -> bool: ...

    def summary(self) -> str: ...


class _Config(Protocol):
    @property
    def seed(self) -> int: ...


C = TypeVar("C", bound=_Config)
R = TypeVar("R", bound=_Report)


def settings_parser(prog: str, doc: str, config_cls: Callable[..., Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0] if doc else prog)
    defaults = config_cls(seed=0)
    for f in dataclasses.fields(defaults):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            p.add_argument(flag, type=type(default), default=default)
    p.add_argument("--seeds", type=int, default=1, help="sweep this many consecutive seeds")
    p.add_argument("--quiet", action="store_true", help="one line per seed")
    p.add_argument("--catalogue", action="store_true",
                   help="first catching seed of every mutant (or of --mutant) within --seeds")
    return p


def sweep(
    base: C,
    seeds: int,
    *,
    run: Callable[[C], R],
    prog: str,
    quiet: bool,
    line: Callable[[int, R, float], str],
    on_report: Callable[[R], None] = lambda r: None,
    footer: Callable[[R, float], str] = lambda r, wall: f"wall time: {wall:.2f}s",
) -> list[int]:
    failed: list[int] = []
    first: int = base.seed
    for seed in range(first, first + seeds):
        cfg = dataclasses.replace(base, seed=seed)  # type: ignore[type-var]
        t0 = time.perf_counter()
        try:
            report = run(cfg)
        except Exception:
            failed.append(seed)
            print(f"seed={seed} ERROR (rerun: {prog} --seed {seed} ...)", flush=True)
            traceback.print_exc()
            continue
        wall = time.perf_counter() - t0
        on_report(report)
        if not report.ok:
            failed.append(seed)
        if quiet or seeds > 1:
            print(line(seed, report, wall), flush=True)
            if not report.ok:
                print(report.summary(), flush=True)
        else:
            print(f"seed: {seed}")
            print(report.summary())
            print(footer(report, wall))
    return failed
