"""The runtime's clock: milliseconds that keep counting through a suspend, the only time source
cores see in production.

Cores take ``now_ms`` as an argument; this is where the runtime gets it. Never the wall clock
(it jumps). On Linux it is ``CLOCK_BOOTTIME``: monotonic like ``CLOCK_MONOTONIC`` but it also
counts the time the machine (or VM) was suspended. That matters for the leader lease: a leader
whose clock stopped during a suspend would believe, after resuming, that its lease still runs
although, in real time, its followers' promises ran out long ago and a new leader may be serving
writes (the simulator's frozen-clock pauses show why the drift margin can only absorb a short
stop). Elsewhere ``time.monotonic`` is the fallback, and a suspend longer than the drift margin
is then outside the lease's safety argument. Never used by the simulator (virtual time).
"""

from __future__ import annotations

import time

__all__ = ["monotonic_ms"]

_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def monotonic_ms() -> int:
    if _BOOTTIME is not None:
        return time.clock_gettime_ns(_BOOTTIME) // 1_000_000
    return time.monotonic_ns() // 1_000_000
