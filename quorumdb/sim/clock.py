"""Virtual time for the simulator: one global clock and per-node drifting local clocks.

The world owns ``VirtualClock`` (milliseconds since the run started); nothing in the simulator
reads the wall clock. Each node sees time through ``DriftingClock``: local = offset + (1 + rate)
* global, with ``|rate|`` within the configured drift bound (parts per million), so timeouts on
different nodes run at slightly different speeds, as on real machines.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VirtualClock", "DriftingClock"]


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

    def __post_init__(self) -> None:
        if abs(self.rate_ppm) > 1_000_000:
            raise ValueError("drift rate must stay below 100%")

    def now_ms(self) -> float:
        return self.offset_ms + self.world.now_ms * (1.0 + self.rate_ppm / 1e6)

    def global_delay_ms(self, local_delay_ms: float) -> float:
        """How much global time passes while this node's clock advances ``local_delay_ms``."""
        return local_delay_ms / (1.0 + self.rate_ppm / 1e6)
