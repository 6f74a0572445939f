"""Child processes that live and stop together (``serve --workers N`` and ``cluster up``).

Inside ``with Supervisor(signals) as sup``: SIGINT/SIGTERM (or ``sup.stop_all()``) send SIGTERM to
every child and mark the group as stopping; ``sup.wait()`` reaps every child, stops the others
when one ends on its own (unless stopping) and says whether all ended cleanly (status 0, or
SIGTERM while stopping). On leaving the block the old signal handlers come back and any child
still running is killed.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Sequence
from types import TracebackType

__all__ = ["Supervisor"]


class Supervisor:
    def __init__(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> Supervisor:
        self._old = {sig: signal.signal(sig, self._on_signal) for sig in self.signals}
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop_all()

    def start(self, cmd: Sequence[str]) -> subprocess.Popen[bytes]:
        """A child whose stdout is a pipe (its first line tells it is ready)."""
        p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        self.stopping = True
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)

    def wait(self, on_own_exit: Callable[[int], None] | None = None) -> bool:
        """Reap every child; True if each ended cleanly. A child that ends while the group is
        not stopping is a failure (``on_own_exit(status)`` is told) and stops the others."""
        clean = True
        remaining = list(self.procs)
        while remaining:
            for p in list(remaining):
                try:
                    code = p.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                remaining.remove(p)
                if not self.stopping:
                    clean = False
                    if on_own_exit is not None:
                        on_own_exit(code)
                    self.stop_all()
                elif code not in (0, -signal.SIGTERM):
                    clean = False
        return clean
