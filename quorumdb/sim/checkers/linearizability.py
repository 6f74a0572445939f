"""A linearizability checker for key-value histories (Wing & Gong, with Lowe's memoisation).

The search is the one Porcupine and Knossos use: walk the call/return events in real-time order,
try to linearize each pending call against a sequential model of one register, backtrack on a
return whose call has not been linearized yet, and memoise every (linearized set, state) pair
already explored so that no configuration is searched twice. Keys are independent registers,
so a history is split per key first: each key's sub-history is far smaller than the whole, and
the search is exponential only in the concurrency of one key.

Outcomes: ``fail`` operations certainly did not happen and are dropped; ``unknown`` operations
may have happened at any time after their invocation, so they never return (their return event
sits after every other event) and their result is unconstrained; an unknown ``get`` has no
effect and is dropped.

This module never runs a cluster and never mutates the history it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from quorumdb.sim.checkers.history import Operation, OpKind, Outcome

__all__ = ["KeyVerdict", "LinearizabilityResult", "check_history", "check_key"]

_ABSENT: Any = None
_INFINITY = float("inf")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyVerdict:
    key: str
    ok: bool | None  # None: the search budget ran out before a verdict
    operations: int
    explored: int
    stuck_at: Operation | None = None  # the first return that could not be linearized


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearizabilityResult:
    ok: bool | None
    operations: int
    keys: tuple[KeyVerdict, ...] = field(default=())

    @property
    def violations(self) -> list[KeyVerdict]:
        return [k for k in self.keys if k.ok is False]

    def describe(self) -> str:
        if self.ok:
            return f"linearizable ({self.operations} operations, {len(self.keys)} keys)"
        if self.ok is None:
            undecided = [k.key for k in self.keys if k.ok is None]
            return f"undecided: search budget exhausted on keys {undecided}"
        parts = []
        for v in self.violations:
            op = v.stuck_at
            where = f" stuck at op {op.op_id} ({op.kind} {op.value!r} -> {op.result!r})" if op else ""
            parts.append(f"key {v.key!r}: not linearizable{where}")
        return "; ".join(parts)


class _Unseen:
    """Stands for every value no operation ever observes (see ``_Model``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unseen>"


_UNSEEN: Any = _Unseen()


class _Model:
    """The sequential register, with one state-space reduction.

    A value that no get returns and no cas expects can never be told apart from any other such
    value by a later operation, so all of them map to one ``_UNSEEN`` state. This is exact (it
    changes no step's outcome) and lets the memo table merge the many configurations that differ
    only in which unobserved write (typically an UNKNOWN one) happened last.
    """

    __slots__ = ("observed",)

    def __init__(self, ops: list[Operation], initial: Any) -> None:
        self.observed: set[Any] | None = None
        observed: set[Any] = {initial}
        for op in ops:
            try:
                if op.kind is OpKind.GET and op.outcome is Outcome.OK:
                    observed.add(op.result)
                elif op.kind is OpKind.CAS:
                    observed.add(op.value[0])
            except TypeError:  # unhashable values: no reduction
                return
        self.observed = observed

    def canon(self, value: Any) -> Any:
        if self.observed is None:
            return value
        try:
            return value if value in self.observed else _UNSEEN
        except TypeError:
            return value

    def step(self, state: Any, op: Operation) -> tuple[bool, Any]:
        """May ``op`` happen in ``state``, and what state follows."""
        unknown = op.outcome is Outcome.UNKNOWN
        kind = op.kind
        if kind is OpKind.PUT:
            return True, self.canon(op.value)
        if kind is OpKind.DELETE:
            return True, self.canon(_ABSENT)
        if kind is OpKind.GET:
            return unknown or op.result == state, state
        if kind is OpKind.CAS:
            expected, new = op.value
            swapped = state is not _UNSEEN and state == expected
            if not unknown and bool(op.result) != swapped:
                return False, state
            return True, (self.canon(new) if swapped else state)
        raise AssertionError(f"unknown op kind {kind}")


class _Entry:
    __slots__ = ("op", "index", "is_call", "match", "prev", "next", "time")

    def __init__(self, op: Operation | None, index: int, is_call: bool, time: float) -> None:
        self.op = op
        self.index = index
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None
        self.time = time


def _relevant(ops: Iterable[Operation]) -> list[Operation]:
    out = []
    for op in ops:
        if op.outcome is Outcome.FAIL:
            continue
        if op.outcome is Outcome.UNKNOWN and op.kind is OpKind.GET:
            continue
        out.append(op)
    return out


def check_key(key: str, ops: list[Operation], *, initial: Any = _ABSENT, budget: int = 20_000_000) -> KeyVerdict:
    """Check one key's operations; ``budget`` bounds the number of search steps."""
    ops = _relevant(ops)
    if not ops:
        return KeyVerdict(key=key, ok=True, operations=0, explored=0)
    events: list[tuple[float, int, _Entry]] = []
    for i, op in enumerate(ops):
        call = _Entry(op, i, True, op.invoke)
        ret_time = _INFINITY if op.complete is None else float(op.complete)
        ret = _Entry(op, i, False, ret_time)
        call.match = ret
        # At equal times calls sort first, so touching operations count as concurrent.
        events.append((float(op.invoke), 0, call))
        events.append((ret_time, 1, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2].index))
    head = _Entry(None, -1, False, -1.0)
    prev = head
    for _, _, e in events:
        prev.next = e
        e.prev = prev
        prev = e

    def lift(e: _Entry) -> None:
        assert e.prev is not None and e.match is not None
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev
        m = e.match
        assert m.prev is not None
        m.prev.next = m.next
        if m.next is not None:
            m.next.prev = m.prev

    def unlift(e: _Entry) -> None:
        m = e.match
        assert m is not None and m.prev is not None and e.prev is not None
        m.prev.next = m
        if m.next is not None:
            m.next.prev = m
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e

    model = _Model(ops, initial)
    cache: set[tuple[int, Any]] = set()
    calls: list[tuple[_Entry, Any]] = []
    state: Any = model.canon(initial)
    linearized = 0
    entry = head.next
    explored = 0
    stuck: Operation | None = None
    deepest = -1
    while head.next is not None:
        explored += 1
        if explored > budget:
            return KeyVerdict(key=key, ok=None, operations=len(ops), explored=explored)
        assert entry is not None
        if entry.is_call:
            assert entry.op is not None
            ok, new_state = model.step(state, entry.op)
            if ok:
                new_linearized = linearized | (1 << entry.index)
                memo = (new_linearized, new_state)
                if memo not in cache:
                    cache.add(memo)
                    calls.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(calls) > deepest:
                deepest = len(calls)
                stuck = entry.op
            if not calls:
                return KeyVerdict(key=key, ok=False, operations=len(ops), explored=explored, stuck_at=stuck)
            top, state = calls.pop()
            linearized &= ~(1 << top.index)
            unlift(top)
            entry = top.next
    return KeyVerdict(key=key, ok=True, operations=len(ops), explored=explored)


def check_history(
    ops: Iterable[Operation], *, initial: dict[str, Any] | None = None, budget_per_key: int = 20_000_000
) -> LinearizabilityResult:
    """Check a whole key-value history, one key at a time."""
    by_key: dict[str, list[Operation]] = {}
    total = 0
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
        total += 1
    initial = initial or {}
    verdicts = tuple(
        check_key(k, by_key[k], initial=initial.get(k, _ABSENT), budget=budget_per_key) for k in sorted(by_key)
    )
    if any(v.ok is False for v in verdicts):
        ok: bool | None = False
    elif any(v.ok is None for v in verdicts):
        ok = None
    else:
        ok = True
    return LinearizabilityResult(ok=ok, operations=total, keys=verdicts)
