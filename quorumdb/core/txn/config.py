"""Tunables of the transaction cores (timeouts, retries, bounds, the idempotency window).

All durations are milliseconds of the driver's clock (the ``now_ms`` the cores are given).
``TxnConfig`` validates when built. None of these values matters to safety: every one only
trades latency, load or memory against how soon a stuck transaction is recovered. This module
must never read a clock or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TxnConfig", "TOKEN_TTL_MS"]

TOKEN_TTL_MS = 10 * 60 * 1000  # DynamoDB keeps a ClientRequestToken for 10 minutes


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnConfig:
    # A coordinator resends an unanswered request (Begin, Prepare, Decision, a read) this often.
    retransmit_ms: int = 100
    # Before the decision: a coordinator that has not heard from the ledger (Begin) or from
    # every participant (votes) for this long gives up and cancels.
    prepare_timeout_ms: int = 1000
    # After a no vote, a coordinator waits this long for the other votes before it cancels, so
    # that CancellationReasons show every action's reason (as DynamoDB's do); 0: cancel at once.
    no_vote_wait_ms: int = 50
    # A participant holding a prepared transaction this long asks a recovery coordinator, then
    # asks again every ``recovery_retry_ms`` until the decision arrives.
    recovery_after_ms: int = 3000
    recovery_retry_ms: int = 1000
    # A read-only transaction tries this many times (a prepared or changed item fails an
    # attempt), ``read_retry_ms`` apart, then is cancelled with TransactionConflict; it gives up
    # as UNAVAILABLE after ``read_timeout_ms`` without an answer.
    read_attempts_max: int = 3
    read_retry_ms: int = 50
    read_timeout_ms: int = 2000
    # The ledger: a ClientRequestToken is honoured for ``token_ttl_ms`` after its transaction
    # completed; completed records are forgotten after ``ledger_retention_ms``; an unfinished
    # record untouched for ``ledger_stale_ms`` is handed to recovery by the ledger's driver.
    token_ttl_ms: int = TOKEN_TTL_MS
    ledger_retention_ms: int = TOKEN_TTL_MS
    ledger_stale_ms: int = 6000
    ledger_records_max: int = 1_000_000
    # A participant holds at most this many prepared transactions (more: voted down as
    # ThrottlingError) and remembers this many recent decisions (to refuse a late Prepare).
    prepared_max: int = 10_000
    decided_cache_max: int = 10_000

    def __post_init__(self) -> None:
        for name in (
            "retransmit_ms", "prepare_timeout_ms", "recovery_after_ms", "recovery_retry_ms",
            "read_attempts_max", "read_retry_ms", "read_timeout_ms", "token_ttl_ms",
            "ledger_retention_ms", "ledger_stale_ms", "ledger_records_max", "prepared_max",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("decided_cache_max", "no_vote_wait_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.no_vote_wait_ms >= self.prepare_timeout_ms:
            raise ValueError("no_vote_wait_ms must be below prepare_timeout_ms")
        if self.prepare_timeout_ms <= self.retransmit_ms:
            raise ValueError("prepare_timeout_ms must be above retransmit_ms")
        # Liveness, not safety: a live coordinator should normally decide before its
        # participants call for recovery, and the ledger sweep should come after both.
        if self.recovery_after_ms <= self.prepare_timeout_ms:
            raise ValueError("recovery_after_ms must be above prepare_timeout_ms")
        if self.ledger_stale_ms < self.recovery_after_ms:
            raise ValueError("ledger_stale_ms must be at least recovery_after_ms")
        if self.ledger_retention_ms < self.token_ttl_ms:
            raise ValueError("ledger_retention_ms must cover token_ttl_ms")
