"""The simulated network: delays (with an optional long tail), reorders, drops, duplicates and
partitions messages.

Every choice comes from the world's one seeded ``random.Random``. A message sent at time t is
delivered at t + a random delay (so messages overtake each other — reordering), unless it is
dropped; with a small probability a second copy is delivered too. A partition is a set of
blocked directed links; a blocked link drops at send time and again at delivery time (a
partition that starts while a message is in flight cuts it). ``heal`` removes every partition.
The number of messages in flight is bounded; beyond it new messages are dropped.

This module never delivers anything itself: it only decides, and the world schedules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["NetworkConfig", "SimNetwork"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig:
    delay_ms_min: float = 1.0
    delay_ms_max: float = 15.0
    drop: float = 0.0
    duplicate: float = 0.0
    # A long tail: with probability ``slow`` a copy is held up to ``slow_ms_max`` more (a
    # retransmission deep in TCP, a paused switch queue). Off by default; when off it draws no
    # randomness, so runs without it keep their traces.
    slow: float = 0.0
    slow_ms_max: float = 0.0
    in_flight_max: int = 100_000

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms_min <= self.delay_ms_max:
            raise ValueError("need 0 <= delay_ms_min <= delay_ms_max")
        if not (0 <= self.drop < 1 and 0 <= self.duplicate < 1 and 0 <= self.slow < 1):
            raise ValueError("drop, duplicate and slow are probabilities below 1")
        if self.slow_ms_max < 0:
            raise ValueError("slow_ms_max must be >= 0")


@dataclass(slots=True)
class SimNetwork:
    config: NetworkConfig
    rng: random.Random
    blocked: set[tuple[str, str]] = field(default_factory=set)
    in_flight: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    slowed: int = 0
    delivered: int = 0

    def plan(self, src: str, dst: str) -> list[float]:
        """Delays (ms) at which copies of a message from ``src`` to ``dst`` arrive; [] = dropped."""
        self.sent += 1
        if (src, dst) in self.blocked or self.in_flight >= self.config.in_flight_max:
            self.dropped += 1
            return []
        if self.config.drop and self.rng.random() < self.config.drop:
            self.dropped += 1
            return []
        copies = 1
        if self.config.duplicate and self.rng.random() < self.config.duplicate:
            copies = 2
            self.duplicated += 1
        delays = [self.rng.uniform(self.config.delay_ms_min, self.config.delay_ms_max) for _ in range(copies)]
        if self.config.slow:
            for i in range(copies):
                if self.rng.random() < self.config.slow:
                    delays[i] += self.rng.uniform(0, self.config.slow_ms_max)
                    self.slowed += 1
        self.in_flight += copies
        return delays

    def arrive(self, src: str, dst: str) -> bool:
        """A planned copy reaches ``dst`` now; False when a partition cut it meanwhile."""
        self.in_flight -= 1
        assert self.in_flight >= 0
        if (src, dst) in self.blocked:
            self.dropped += 1
            return False
        self.delivered += 1
        return True

    def partition(self, side_a: Iterable[str], side_b: Iterable[str]) -> frozenset[tuple[str, str]]:
        """Cut every link between the two sides; returns the links this cut added."""
        a, b = list(side_a), list(side_b)
        added = set()
        for x in a:
            for y in b:
                for link in ((x, y), (y, x)):
                    if link not in self.blocked:
                        self.blocked.add(link)
                        added.add(link)
        return frozenset(added)

    def isolate(self, node: str, others: Iterable[str]) -> frozenset[tuple[str, str]]:
        return self.partition([node], [o for o in others if o != node])

    def heal(self, links: Iterable[tuple[str, str]] | None = None) -> None:
        """Restore ``links`` (one earlier cut), or every link."""
        if links is None:
            self.blocked.clear()
        else:
            self.blocked.difference_update(links)

    def connected(self, a: str, b: str) -> bool:
        return (a, b) not in self.blocked and (b, a) not in self.blocked
