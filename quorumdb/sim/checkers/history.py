"""Recorded client histories: what clients asked for and what they were told.

A history is a list of operations, each with an invocation sequence number and, when the client
learned the outcome, a completion sequence number. Outcomes are ``ok`` (it took effect, with this
result), ``fail`` (it certainly did not take effect) or ``unknown`` (the client timed out or its
node crashed: it may or may not have taken effect, at any moment after its invocation).

This module only records; it never judges (see ``linearizability``) and never reads a clock:
callers pass the virtual or real time they want kept for the report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OpKind", "Outcome", "Operation", "History"]


class OpKind(enum.StrEnum):
    PUT = "put"
    GET = "get"
    CAS = "cas"
    DELETE = "delete"


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One client operation on one key.

    ``value`` is the written value (put), ``(expected, new)`` (cas) or None (get, delete).
    ``result`` is what the client was told: the value read (get; None = absent), whether the
    swap happened (cas), None otherwise. ``complete`` is None while the outcome is unknown.
    """

    op_id: int
    process: int
    key: str
    kind: OpKind
    value: Any = None
    invoke: int
    complete: int | None = None
    outcome: Outcome = Outcome.UNKNOWN
    result: Any = None
    invoke_time: float = 0.0
    complete_time: float | None = None

    def __post_init__(self) -> None:
        if self.kind is OpKind.CAS and not (isinstance(self.value, tuple) and len(self.value) == 2):
            raise ValueError("a cas operation's value is (expected, new)")
        if self.outcome is Outcome.UNKNOWN:
            if self.complete is not None:
                raise ValueError("an unknown outcome has no completion")
        elif self.complete is None or self.complete <= self.invoke:
            raise ValueError("a known outcome completes after its invocation")

    def to_record(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {
            "op_id": self.op_id,
            "process": self.process,
            "key": self.key,
            "kind": str(self.kind),
            "value": value,
            "invoke": self.invoke,
            "complete": self.complete,
            "outcome": str(self.outcome),
            "result": self.result,
            "invoke_time": self.invoke_time,
            "complete_time": self.complete_time,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Operation:
        kind = OpKind(rec["kind"])
        value = rec.get("value")
        if kind is OpKind.CAS:
            assert value is not None
            value = tuple(value)
        return cls(
            op_id=rec["op_id"],
            process=rec["process"],
            key=rec["key"],
            kind=kind,
            value=value,
            invoke=rec["invoke"],
            complete=rec.get("complete"),
            outcome=Outcome(rec["outcome"]),
            result=rec.get("result"),
            invoke_time=rec.get("invoke_time", 0.0),
            complete_time=rec.get("complete_time"),
        )


@dataclass(slots=True)
class _Pending:
    process: int
    key: str
    kind: OpKind
    value: Any
    invoke: int
    invoke_time: float


@dataclass(slots=True)
class History:
    """An append-only recorder. Every event takes the next sequence number, so the order of
    recording is the real-time order the checker trusts (no two events ever tie)."""

    ops: list[Operation] = field(default_factory=list)
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _seq: int = 0
    _next_id: int = 0
    _busy: set[int] = field(default_factory=set)

    def invoke(self, process: int, kind: OpKind, key: str, value: Any = None, *, time: float = 0.0) -> int:
        if process in self._busy:
            raise ValueError(f"process {process} already has an operation in flight")
        self._seq += 1
        op_id = self._next_id
        self._next_id += 1
        self._pending[op_id] = _Pending(process, key, kind, value, self._seq, time)
        self._busy.add(process)
        return op_id

    def ok(self, op_id: int, result: Any = None, *, time: float = 0.0) -> None:
        self._finish(op_id, Outcome.OK, result, time)

    def fail(self, op_id: int, *, time: float = 0.0) -> None:
        self._finish(op_id, Outcome.FAIL, None, time)

    def unknown(self, op_id: int) -> None:
        p = self._pending.pop(op_id)
        self._busy.discard(p.process)
        self.ops.append(
            Operation(op_id=op_id, process=p.process, key=p.key, kind=p.kind, value=p.value,
                      invoke=p.invoke, invoke_time=p.invoke_time)
        )

    def close(self) -> None:
        """Every operation still in flight ends with an unknown outcome."""
        for op_id in sorted(self._pending):
            self.unknown(op_id)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _finish(self, op_id: int, outcome: Outcome, result: Any, time: float) -> None:
        p = self._pending.pop(op_id)
        self._busy.discard(p.process)
        self._seq += 1
        self.ops.append(
            Operation(op_id=op_id, process=p.process, key=p.key, kind=p.kind, value=p.value,
                      invoke=p.invoke, complete=self._seq, outcome=outcome, result=result,
                      invoke_time=p.invoke_time, complete_time=time)
        )
