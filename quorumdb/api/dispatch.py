"""From a parsed HTTP request to a response body: the one place errors become DynamoDB JSON.

``Dispatcher.handle(target, body, request_id)`` decodes the JSON body, finds the operation
named by ``X-Amz-Target`` in the routes table (``quorumdb.api.registry.OPERATIONS``), validates
the body against the operation's declarative spec, runs the handler with a
``RequestContext`` and encodes its result. Every ``quorumdb.errors.DynamoError`` turns into
its ``__type``/``message`` body here (HTTP 400, or its own status); anything else is logged
with the request id and answered as InternalServerError (HTTP 500).

It knows nothing of sockets or HTTP framing (that is ``quorumdb.api.server``) and never
touches storage except through the handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

import quorumdb.api.ops  # noqa: F401  (registers the handlers)
from quorumdb.api.registry import OPERATIONS, Handler, RequestContext
from quorumdb.api.spec import OperationSpec, spec_for
from quorumdb.db.contract import DataPlane, Forward
from quorumdb.errors import (
    DynamoError,
    InternalServerError,
    SerializationError,
    UnknownOperationError,
)

__all__ = ["Dispatcher", "Route", "TARGET_PREFIX", "error_body"]

log = logging.getLogger(__name__)

TARGET_PREFIX = "DynamoDB_20120810."


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    name: str
    handler: Handler
    spec: OperationSpec | None


def error_body(err: DynamoError) -> bytes:
    return orjson.dumps(err.body())


_INTERNAL_BODY = error_body(InternalServerError("Internal server error"))


# Passes a whole request on to another node (the cluster's request forwarding):
# (node id, target, body, request id) -> (HTTP status, body).
ForwardHook = Callable[[str, bytes | None, bytes, str], Awaitable[tuple[int, bytes]]]


class Dispatcher:
    """Routes requests of one server to the handlers, over one data plane."""

    __slots__ = ("db", "clock", "forward", "_routes")

    def __init__(
        self, db: DataPlane, *, clock: Callable[[], float] = time.time, forward: ForwardHook | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.forward = forward
        self._routes: dict[bytes, Route] = {
            (TARGET_PREFIX + name).encode(): Route(name=name, handler=h, spec=spec_for(name))
            for name, h in OPERATIONS.items()
        }

    def route(self, target: bytes | None) -> Route | None:
        return None if target is None else self._routes.get(target)

    async def handle(self, target: bytes | None, body: bytes, request_id: str) -> tuple[int, bytes]:
        """Answer one request: (HTTP status, JSON body)."""
        try:
            req = None
            if body:
                try:
                    req = orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise SerializationError("Start of structure or map found where not expected") from None
            route = self._routes.get(target) if target is not None else None
            if route is None:
                raise UnknownOperationError("")
            if req is None:
                raise SerializationError("Start of structure or map found where not expected")
            if route.spec is not None:
                route.spec.validate(req)
            elif req.__class__ is not dict:
                raise SerializationError("Start of structure or map found where not expected")
            ctx = RequestContext(db=self.db, request_id=request_id, now=self.clock)
            out = await route.handler(ctx, req)
            if out.__class__ is bytes:
                return 200, out
            return 200, orjson.dumps(out)
        except Forward as f:
            if self.forward is None:
                log.error("request %s: a single node cannot forward to %s", request_id, f.node_id)
                return InternalServerError.http_status, _INTERNAL_BODY
            return await self.forward(f.node_id, target, body, request_id)
        except DynamoError as err:
            if err.http_status >= 500:
                log.error("request %s failed: %s", request_id, err.message)
            return err.http_status, error_body(err)
        except Exception:
            log.exception("request %s: internal error", request_id)
            return InternalServerError.http_status, _INTERNAL_BODY
