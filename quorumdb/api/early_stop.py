"""A stop request (SIGTERM/SIGINT) that arrives before the server can act on it.

``python -m quorumdb`` installs ``note`` as the handler of both signals before anything else
is imported, so a server stopped at any moment of its start (opening storage, starting
workers, binding the port) does not die of the default action: ``serve`` and ``run_workers``
check ``requested()`` once their own handlers are in place and then stop cleanly (exit 0).
Nothing here may import more than the standard library: it runs before the rest is loaded.
"""

from __future__ import annotations

import signal

__all__ = ["install", "requested", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested = False


def _note(signum: int, frame: object) -> None:
    global _requested
    _requested = True


def install() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _note)


def requested() -> bool:
    """Whether a stop signal arrived while ``_note`` was the handler."""
    return _requested
