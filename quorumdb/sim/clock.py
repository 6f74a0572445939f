"""Virtual time for the simulator: one global clock and per-node drifting, freezable clocks.

The world owns ``VirtualClock`` (milliseconds since the run started); nothing in the simulator
reads the wall clock. Each node sees time through ``DriftingClock``: its local time runs at
``1 + rate`` times global time (``|rate|`` within the bound the world derives from the Paxos
drift margin), and ``freeze``/``thaw`` stop it for a while, as a VM suspend stops a guest clock
that does not count suspended time. ``clock_budget`` says how much of each a lease can absorb.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VirtualClock", "DriftingClock", "clock_budget"]


def clock_budget(lease_ms: int, drift_ms: int, rate_share: float) -> tuple[float, float]:
    """The per-node rate bound (fraction) and the longest clock freeze (ms) that a lease with
    this drift margin tolerates, spending ``rate_share`` of the margin on rates.

    The safety argument (see ``replica.py``): a follower's refusal window, ``lease + drift`` on
    its own clock, must outlast the leader's lease, ``lease`` on the leader's clock, in real
    time. With the follower running fast by ``r`` and the leader slow by ``r`` and frozen for
    ``F`` meanwhile: ``(lease + drift) / (1 + r) >= lease / (1 - r) + F``. The rate bound is
    ``rate_share`` of the largest ``r`` with ``F = 0``; the freeze gets what is left, less 10%.
    """
    if not 0 <= rate_share <= 1:
        raise ValueError("rate_share must be within [0, 1]")
    d = drift_ms / lease_ms
    rate = rate_share * d / (2 + d)
    freeze = 0.9 * ((lease_ms + drift_ms) / (1 + rate) - lease_ms / (1 - rate))
    return rate, max(0.0, freeze)


@dataclass(slots=True)
class VirtualClock:
    now_ms: float = 0.0

    def advance_to(self, t_ms: float) -> None:
        if t_ms < self.now_ms:
            raise AssertionError(f"time must not go backwards ({t_ms} < {self.now_ms})")
        self.now_ms = t_ms


@dataclass(slots=True)
class DriftingClock:
    world: VirtualClock
    rate_ppm: float = 0.0
    offset_ms: float = 0.0
    frozen_total_ms: float = 0.0  # global time spent frozen (not counted locally)
    frozen_at: float | None = None  # global time of the current freeze

    def __post_init__(self) -> None:
        if abs(self.rate_ppm) > 1_000_000:
            raise ValueError("drift rate must stay below 100%")

    def now_ms(self) -> float:
        t = self.world.now_ms if self.frozen_at is None else self.frozen_at
        return self.offset_ms + (t - self.frozen_total_ms) * (1.0 + self.rate_ppm / 1e6)

    def freeze(self) -> None:
        if self.frozen_at is None:
            self.frozen_at = self.world.now_ms

    def thaw(self) -> None:
        if self.frozen_at is not None:
            self.frozen_total_ms += self.world.now_ms - self.frozen_at
            self.frozen_at = None

    def global_delay_ms(self, local_delay_ms: float) -> float:
        """How much global time passes while this node's clock advances ``local_delay_ms``."""
        return local_delay_ms / (1.0 + self.rate_ppm / 1e6)
