"""Log safety of a replicated log: what was committed stays committed, identically, everywhere.

Three properties are checked from observations a driver reports as the run goes:

* agreement — never two different entries committed (chosen, applied) at one index, by any
  node, at any time, across crashes, restarts and snapshot installs;
* durability — an entry once committed is never lost: every later look at a node's durable log
  finds either that same entry at its index or a snapshot that covers the index, and a snapshot
  installed at index i carries the state digest the committed prefix up to i produces (when the
  driver can compute it);
* ballot uniqueness — a ballot wins phase 1 at most once: a proposer that wins the same ballot
  again has forgotten its promise (and what it proposed under that ballot).

Entries are compared by digest (any hashable: bytes, a tuple of the command), so the checker
stays independent of the core's message types. It never drives a cluster; it only judges.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

__all__ = ["LogViolation", "LogSafetyChecker"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogViolation:
    kind: str  # "conflict" | "lost" | "snapshot" | "gap" | "ballot"
    index: int
    node: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at index {self.index} on node {self.node}: {self.detail}"


@dataclass(slots=True)
class LogSafetyChecker:
    committed: dict[int, Hashable] = field(default_factory=dict)
    first_seen: dict[int, str] = field(default_factory=dict)
    violations: list[LogViolation] = field(default_factory=list)
    applied_upto: dict[str, int] = field(default_factory=dict)
    ballots: dict[Hashable, str] = field(default_factory=dict)
    max_violations: int = 100

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def commit_index(self) -> int:
        """The highest index known committed (by anyone)."""
        return max(self.committed, default=0)

    def _flag(self, kind: str, index: int, node: str, detail: str) -> None:
        if len(self.violations) < self.max_violations:
            self.violations.append(LogViolation(kind=kind, index=index, node=node, detail=detail))

    def observe_commit(self, node: str, index: int, digest: Hashable) -> None:
        """``node`` learned that ``digest`` is committed at ``index`` (or applied it there)."""
        if index <= 0:
            raise ValueError("log indices start at 1")
        known = self.committed.get(index)
        if known is None:
            self.committed[index] = digest
            self.first_seen[index] = node
        elif known != digest:
            self._flag("conflict", index, node,
                       f"committed {digest!r}, but {self.first_seen[index]} committed {known!r}")

    def observe_apply(self, node: str, index: int, digest: Hashable) -> None:
        """``node`` applied ``digest`` at ``index`` to its state machine; applies on one node must be
        in index order without gaps, except that a restart or a snapshot resets the cursor."""
        last = self.applied_upto.get(node)
        if last is not None and index != last + 1:
            self._flag("gap", index, node, f"applied index {index} right after {last}")
        self.applied_upto[node] = index
        self.observe_commit(node, index, digest)

    def reset_apply(self, node: str, applied_index: int) -> None:
        """``node`` restarted or installed a snapshot: its state machine now stands at ``applied_index``."""
        self.applied_upto[node] = applied_index

    def observe_log(
        self,
        node: str,
        entries: Mapping[int, Hashable],
        *,
        snapshot_index: int = 0,
        upto: int | None = None,
    ) -> None:
        """Look at ``node``'s durable log (e.g. right after it restarts).

        Every committed index at or below ``upto`` (default: the node's highest entry) that is not
        covered by the snapshot must be present with the committed digest; entries at committed
        indexes must match even above ``upto``.
        """
        top = upto if upto is not None else max(entries, default=snapshot_index)
        for index, digest in entries.items():
            known = self.committed.get(index)
            if known is not None and index > snapshot_index and known != digest:
                self._flag("lost", index, node, f"log holds {digest!r} where {known!r} was committed")
        for index in range(snapshot_index + 1, top + 1):
            if index in self.committed and index not in entries:
                self._flag("lost", index, node, "committed entry missing from the durable log")

    def observe_snapshot(self, node: str, index: int, state_digest: Hashable, expected: Hashable | None) -> None:
        """``node`` installed (or restored) a snapshot at ``index``; ``expected`` is the digest the
        committed prefix yields there, if the driver knows it."""
        if expected is not None and state_digest != expected:
            self._flag("snapshot", index, node, f"snapshot digest {state_digest!r} != expected {expected!r}")
        self.reset_apply(node, index)

    def observe_leader(self, node: str, ballot: Hashable) -> None:
        """``node`` won phase 1 with ``ballot``."""
        if ballot in self.ballots:
            self._flag("ballot", 0, node,
                       f"ballot {ballot!r} won a second time (first by {self.ballots[ballot]})")
        else:
            self.ballots[ballot] = node

    def check_prefix_known(self, upto: int) -> None:
        """Every index up to ``upto`` should be known committed (no hole in the chosen log)."""
        for index in range(1, upto + 1):
            if index not in self.committed:
                self._flag("gap", index, "*", "no committed entry seen at this index")
                return

    def describe(self) -> str:
        if self.ok:
            return f"log safe ({len(self.committed)} committed indexes)"
        return "; ".join(str(v) for v in self.violations[:5])
