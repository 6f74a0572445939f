"""Liveness after faults stop: a leader is elected and commits resume within a bound.

The driver reports when faults stop with a majority connected (``quiet``), every leader election
and every commit; the checker then answers whether the first leader and the first commit after
quiet came within ``bound``. Time is whatever unit the driver uses (virtual ms in the simulator,
real seconds in the runtime tests). It never drives a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LivenessResult", "LivenessChecker"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LivenessResult:
    ok: bool
    quiet_at: float | None
    leader_after: float | None  # delay from quiet to the first leader seen
    commit_after: float | None  # delay from quiet to the first commit
    bound: float

    def describe(self) -> str:
        if self.quiet_at is None:
            return "liveness not checked (faults never stopped)"
        if self.ok:
            return f"live: leader after {self.leader_after}, commit after {self.commit_after} (bound {self.bound})"
        return (f"NOT live: leader after {self.leader_after}, commit after {self.commit_after} "
                f"(bound {self.bound}, quiet at {self.quiet_at})")


@dataclass(slots=True)
class LivenessChecker:
    bound: float
    quiet_at: float | None = None
    leaders: list[tuple[float, str]] = field(default_factory=list)
    first_commit_after_quiet: float | None = None
    first_leader_after_quiet: float | None = None
    current_leader: str | None = None

    def quiet(self, now: float, current_leader: str | None = None) -> None:
        """Faults stopped at ``now`` and a majority is connected. A leader already in place (and
        still able to lead) counts as elected at ``now``."""
        self.quiet_at = now
        self.first_commit_after_quiet = None
        self.first_leader_after_quiet = now if current_leader is not None else None

    def leader(self, now: float, node: str) -> None:
        self.leaders.append((now, node))
        self.current_leader = node
        if self.quiet_at is not None and self.first_leader_after_quiet is None and now >= self.quiet_at:
            self.first_leader_after_quiet = now

    def commit(self, now: float) -> None:
        if self.quiet_at is not None and self.first_commit_after_quiet is None and now >= self.quiet_at:
            self.first_commit_after_quiet = now

    def result(self) -> LivenessResult:
        q = self.quiet_at
        if q is None:
            return LivenessResult(ok=True, quiet_at=None, leader_after=None, commit_after=None, bound=self.bound)
        la = None if self.first_leader_after_quiet is None else self.first_leader_after_quiet - q
        ca = None if self.first_commit_after_quiet is None else self.first_commit_after_quiet - q
        ok = la is not None and ca is not None and la <= self.bound and ca <= self.bound
        return LivenessResult(ok=ok, quiet_at=q, leader_after=la, commit_after=ca, bound=self.bound)
