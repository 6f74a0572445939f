"""The runtime's clock: monotonic milliseconds, the only time source cores see in production.

Cores take ``now_ms`` as an argument; this is where the runtime gets it. Never the wall clock
(it jumps); never used by the simulator (which has virtual time).
"""

from __future__ import annotations

import time

__all__ = ["monotonic_ms"]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000
