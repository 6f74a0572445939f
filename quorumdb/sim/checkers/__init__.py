"""Checkers: judges of recorded runs (linearizability, log safety, liveness).

Checkers only read what drivers recorded; they never drive a cluster, and they must be able to
fail — tests feed them known-bad histories and logs.
"""

from quorumdb.sim.checkers.history import History, Operation, OpKind, Outcome
from quorumdb.sim.checkers.linearizability import LinearizabilityResult, check_history, check_key
from quorumdb.sim.checkers.liveness import LivenessChecker, LivenessResult
from quorumdb.sim.checkers.logsafety import LogSafetyChecker, LogViolation

__all__ = [
    "History",
    "Operation",
    "OpKind",
    "Outcome",
    "LinearizabilityResult",
    "check_history",
    "check_key",
    "LivenessChecker",
    "LivenessResult",
    "LogSafetyChecker",
    "LogViolation",
]
