"""The operation handlers. Importing this package registers every handler in ``OPERATIONS``.

``control`` (tables, tags, TTL, limits, endpoints) must import; the item modules are guarded
while they are being written, so a missing one leaves its operations answering
UnknownOperationException and is named loudly in the log instead of stopping the server.
Handlers never format HTTP responses.
"""

from __future__ import annotations

import importlib
import logging

__all__ = ["MODULES", "MISSING"]

log = logging.getLogger(__name__)

MODULES = ("control", "items", "reads", "transactions")
MISSING: dict[str, str] = {}  # module -> why it could not be imported

importlib.import_module(f"{__name__}.control")
for _name in MODULES[1:]:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ImportError as exc:  # only while the item handlers are under construction
        MISSING[_name] = f"{type(exc).__name__}: {exc}"
        log.error(
            "quorumdb.api.ops.%s could not be imported (%s); its operations are unavailable",
            _name,
            MISSING[_name],
        )
