"""Provisioned-capacity arithmetic: token buckets, burst, per-partition ceilings, partition count.

Pure code: time comes in as ``now`` (seconds, any monotonic origin), nothing here reads a
clock, touches a request or raises a DynamoDB error. ``quorumdb.api.throttle`` keeps one
bucket per (table or GSI, logical partition, read|write) and turns a refusal into
ProvisionedThroughputExceededException.

Rules (DynamoDB's published figures, with QuorumDB's choices where DynamoDB publishes none):

- A bucket refills at its partition's share of the provisioned units per second, capped by the
  per-partition ceiling (3,000 RCU, 1,000 WCU), and holds at most 300 s of that rate (burst).
  A new bucket starts full.
- ``admit(units)``: a request whose cost is known before it runs (a write of a known item) is
  admitted when the bucket holds its cost, or a full burst when the cost is larger than the
  burst (so an item bigger than the burst is not refused for ever); the cost is taken at once.
  A request whose cost is known only after it ran (a read) is admitted on its minimum cost
  and ``charge``\\ s the rest afterwards: the balance may go negative, and that debt delays the
  requests that follow, as in DynamoDB.
- Logical partitions: ``partition_count`` is DynamoDB's rule,
  ``ceil(max(RCU / 3000 + WCU / 1000, size / 10 GB))``, at least 1; a partition owns an equal
  slice of the 64-bit partition-key hash space (``partition_of``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BURST_S",
    "PARTITION_RCU_MAX",
    "PARTITION_WCU_MAX",
    "PARTITION_BYTES_MAX",
    "HASH_SPACE",
    "TokenBucket",
    "partition_count",
    "partition_of",
    "partition_rate",
]

BURST_S = 300.0
PARTITION_RCU_MAX = 3000.0
PARTITION_WCU_MAX = 1000.0
PARTITION_BYTES_MAX = 10 * 1024**3
HASH_SPACE = 1 << 64


def partition_count(read_units: float, write_units: float, size_bytes: int) -> int:
    """How many partitions DynamoDB gives a provisioned table (or GSI) of this throughput and
    size: enough that no partition needs more than the ceilings or holds more than 10 GB."""
    assert read_units >= 0 and write_units >= 0 and size_bytes >= 0
    by_throughput = read_units / PARTITION_RCU_MAX + write_units / PARTITION_WCU_MAX
    by_size = size_bytes / PARTITION_BYTES_MAX
    return max(1, math.ceil(max(by_throughput, by_size)))


def partition_of(hash_position: int, count: int) -> int:
    """The partition (0..count-1) owning ``hash_position`` when the hash space is cut evenly."""
    assert 0 <= hash_position < HASH_SPACE and count >= 1
    return hash_position * count >> 64


def partition_rate(units: float, count: int, ceiling: float) -> float:
    """One partition's share of ``units`` per second, capped by the per-partition ceiling."""
    assert count >= 1
    return min(units / count, ceiling)


@dataclass(slots=True, kw_only=True)
class TokenBucket:
    """Units available to one partition; ``tokens`` may be negative (debt after a large read)."""

    rate_per_s: float
    tokens: float
    at: float  # when ``tokens`` was last brought up to date

    @classmethod
    def full(cls, rate_per_s: float, now: float) -> TokenBucket:
        assert rate_per_s >= 0
        return cls(rate_per_s=rate_per_s, tokens=rate_per_s * BURST_S, at=now)

    @property
    def burst_max(self) -> float:
        return self.rate_per_s * BURST_S

    def refill(self, now: float) -> None:
        elapsed = now - self.at
        if elapsed > 0:  # a clock that steps back refills nothing
            self.tokens = min(self.burst_max, self.tokens + elapsed * self.rate_per_s)
            self.at = now

    def admits(self, units: float, now: float) -> bool:
        """Whether a request that costs ``units`` up front may run now (nothing is taken)."""
        self.refill(now)
        need = min(units, self.burst_max)
        return self.tokens > 0 and self.tokens >= need

    def take(self, units: float, now: float) -> bool:
        """Admit and take ``units``, or refuse and take nothing."""
        if not self.admits(units, now):
            return False
        self.tokens -= units
        return True

    def charge(self, units: float, now: float) -> None:
        """Take ``units`` unconditionally (the part of a cost known only afterwards)."""
        self.refill(now)
        self.tokens -= units

    def resize(self, rate_per_s: float, now: float) -> None:
        """A new rate (UpdateTable): unused burst is kept up to the new cap, debt is kept."""
        assert rate_per_s >= 0
        self.refill(now)
        self.rate_per_s = rate_per_s
        self.tokens = min(self.tokens, self.burst_max)
