"""The routes tables: operation name -> handler, one table per API (DynamoDB, DynamoDB Streams).

A handler is ``async def handler(ctx, request) -> dict | bytes``. ``request`` is the decoded JSON
body, already checked against the operation's declarative spec (types, required members,
lengths, enums) by the dispatcher, so a handler does the semantic validation and the work.
It returns the response body as a dict (encoded with orjson) or as ready JSON bytes (fast paths
that splice stored item bytes). It raises ``quorumdb.errors`` types for every failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quorumdb.db.contract import DataPlane

if TYPE_CHECKING:
    from quorumdb.api.throttle import Throttle

__all__ = ["RequestContext", "Handler", "OPERATIONS", "STREAMS_OPERATIONS", "operation", "streams_operation"]


@dataclass(slots=True, kw_only=True)
class RequestContext:
    db: DataPlane
    request_id: str
    now: Callable[[], float]  # wall clock, seconds since the epoch; injected for tests
    # Provisioned-capacity enforcement (``quorumdb.api.throttle``); None: nothing is throttled.
    capacity: Throttle | None = None


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any] | bytes]]

OPERATIONS: dict[str, Handler] = {}
STREAMS_OPERATIONS: dict[str, Handler] = {}  # target prefix DynamoDBStreams_20120810.


def _registrar(table: dict[str, Handler], name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        assert name not in table, f"operation {name} registered twice"
        table[name] = handler
        return handler

    return register


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for the DynamoDB operation ``name`` (e.g. ``"PutItem"``)."""
    return _registrar(OPERATIONS, name)


def streams_operation(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for the DynamoDB Streams operation ``name`` (e.g. ``"GetRecords"``)."""
    return _registrar(STREAMS_OPERATIONS, name)
