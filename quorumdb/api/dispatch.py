"""From a parsed HTTP request to a response body: the one place errors become DynamoDB JSON.

``Dispatcher.handle(target, body, request_id, signed)`` decodes the JSON body, finds the
operation named by ``X-Amz-Target`` in the routes table (one entry per target prefix in
``SERVICES``: ``DynamoDB_20120810.`` -> ``quorumdb.api.registry.OPERATIONS``,
``DynamoDBStreams_20120810.`` -> ``STREAMS_OPERATIONS``, each with its specs), checks the
request's signature when the server runs with ``--auth`` (a ``quorumdb.api.auth.Verifier``),
validates the body against the operation's declarative spec, runs the handler with a
``RequestContext`` and encodes its result. The faults come in DynamoDB's order: unparseable
JSON, unknown operation, signature, missing body, JSON types, constraints. Every
``quorumdb.errors.DynamoError`` turns into
its ``__type``/``message`` body here (HTTP 400, or its own status); anything else is logged
with the request id and answered as InternalServerError (HTTP 500).

It knows nothing of sockets or HTTP framing (that is ``quorumdb.api.server``) and never
touches storage except through the handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson

import quorumdb.api.ops  # noqa: F401  (registers the handlers)
from quorumdb.api.auth import SignedRequest, Verifier
from quorumdb.api.registry import OPERATIONS, STREAMS_OPERATIONS, Handler, RequestContext
from quorumdb.api.spec import SPECS, STREAMS_SPECS, OperationSpec
from quorumdb.api.throttle import Throttle
from quorumdb.db.contract import DataPlane, Forward
from quorumdb.errors import (
    DynamoError,
    InternalServerError,
    SerializationError,
    UnknownOperationError,
    ValidationError,
)

__all__ = ["Dispatcher", "Route", "Service", "TARGET_PREFIX", "STREAMS_TARGET_PREFIX", "SERVICES", "error_body"]

log = logging.getLogger(__name__)

TARGET_PREFIX = "DynamoDB_20120810."
STREAMS_TARGET_PREFIX = "DynamoDBStreams_20120810."

# One API served on the port: its operations' handlers and request specs.
Service = tuple[Mapping[str, Handler], Mapping[str, OperationSpec]]

# X-Amz-Target prefix -> the API served under it (another API adds an entry here).
SERVICES: dict[str, Service] = {
    TARGET_PREFIX: (OPERATIONS, SPECS),
    STREAMS_TARGET_PREFIX: (STREAMS_OPERATIONS, STREAMS_SPECS),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    name: str
    handler: Handler
    spec: OperationSpec | None


def error_body(err: DynamoError) -> bytes:
    return orjson.dumps(err.body())


_INTERNAL_BODY = error_body(InternalServerError("Internal server error"))
_TOO_DEEP_BODY = error_body(ValidationError("Nesting Levels have exceeded supported limits"))
_UNSIGNED = SignedRequest(method="POST", path="/", query="", headers=(), payload_sha256="")


# Passes a whole request on to another node (the cluster's request forwarding):
# (node id, target, body, request id) -> (HTTP status, body).
ForwardHook = Callable[[str, bytes | None, bytes, str], Awaitable[tuple[int, bytes]]]


class Dispatcher:
    """Routes requests of one server to the handlers, over one data plane."""

    __slots__ = ("db", "clock", "forward", "verifier", "throttle", "_routes")

    def __init__(
        self,
        db: DataPlane,
        *,
        clock: Callable[[], float] = time.time,
        forward: ForwardHook | None = None,
        verifier: Verifier | None = None,
        services: Mapping[str, Service] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.forward = forward
        self.verifier = verifier  # None: any credentials are accepted (as DynamoDB Local)
        self.throttle = throttle  # None: capacity is never enforced
        self._routes: dict[bytes, Route] = {
            (prefix + name).encode(): Route(name=name, handler=h, spec=specs.get(name))
            for prefix, (ops, specs) in (SERVICES if services is None else services).items()
            for name, h in ops.items()
        }

    def route(self, target: bytes | None) -> Route | None:
        return None if target is None else self._routes.get(target)

    async def handle(
        self,
        target: bytes | None,
        body: bytes,
        request_id: str,
        signed: SignedRequest | None = None,
        *,
        verified: bool = False,
    ) -> tuple[int, bytes]:
        """Answer one request: (HTTP status, JSON body). ``signed`` is needed with a verifier,
        unless ``verified`` (a request another cluster node verified and forwarded here)."""
        try:
            req = None
            if body:
                try:
                    req = orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise SerializationError() from None  # DynamoDB sends no text here
            route = self._routes.get(target) if target is not None else None
            if route is None:
                raise UnknownOperationError()
            if self.verifier is not None and not verified:
                self.verifier.verify(signed or _UNSIGNED)
            if req is None:
                raise SerializationError()
            if route.spec is not None:
                route.spec.validate(req)
            elif req.__class__ is not dict:
                raise SerializationError("Start of structure or map found where not expected")
            ctx = RequestContext(db=self.db, request_id=request_id, now=self.clock, capacity=self.throttle)
            try:
                out = await route.handler(ctx, req)
            except ValidationError:
                if route.spec is not None:
                    # A JSON type error anywhere in the request comes first, as in DynamoDB
                    # (the handler may have reported a rule before walking every value).
                    route.spec.check_types(orjson.loads(body))
                raise
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
        except RecursionError:
            # Only a request nested deeper than the walks over it allow gets here (the server
            # raises Python's recursion limit well above what a 16 MB request can reach).
            log.warning("request %s: nested too deeply", request_id)
            return ValidationError.http_status, _TOO_DEEP_BODY
        except Exception:
            log.exception("request %s: internal error", request_id)
            return InternalServerError.http_status, _INTERNAL_BODY
