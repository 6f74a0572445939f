"""The seam between a cluster node and the DynamoDB API: ``make_dataplane(node)``.

The process entry point (``serve``) builds the ``ClusterNode``, calls ``make_dataplane(node)``
*before* ``node.start()`` (so the data plane can set ``node.partition_factory`` and register its
RPC handlers with ``node.register`` before any partition group exists), then serves every
DynamoDB request through the ``DataPlane`` it returns.

The routing data plane (``cluster.dataplane.ClusterDataPlane``, over the node as its
``ClusterHost``) is plugged in here; until it is, every operation is refused with a
ValidationException naming the missing piece, never an internal error.
"""

from __future__ import annotations

from typing import Any, NoReturn, cast

from quorumdb.cluster.node import ClusterNode
from quorumdb.db.contract import DataPlane
from quorumdb.errors import ValidationError

__all__ = ["make_dataplane", "NOT_READY"]

NOT_READY = "The cluster data plane is not available on this node yet"


def make_dataplane(node: ClusterNode) -> DataPlane:
    """The DataPlane a cluster node serves the DynamoDB API with."""
    return cast(DataPlane, _NotReady(node))


class _NotReady:
    """Refuses every data-plane call (start/close are no-ops)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise ValidationError(NOT_READY)

        return refuse
