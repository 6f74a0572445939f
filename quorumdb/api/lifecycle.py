"""Table and index statuses as DynamoDB reports them: CREATING -> ACTIVE, UPDATING, DELETING.

QuorumDB applies a table change at once. The transitional status DynamoDB shows while it works
is reported until a deadline stored with the definition (``TableDef.status_until``,
``IndexDef.status_until``): now + the status delay, ``--table-status-delay-ms`` (environment
``QUORUMDB_TABLE_STATUS_DELAY_MS``, default 0, i.e. over at once). Being stored, the deadline
is the same for every worker process. CreateTable, UpdateTable and DeleteTable always answer
with the transitional status itself, as DynamoDB does.

While a table is CREATING or DELETING, item operations answer ResourceNotFoundException; a
table change (UpdateTable, DeleteTable) on a table that is not ACTIVE answers
ResourceInUseException. This module never touches storage.
"""

from __future__ import annotations

import os

from quorumdb.errors import ResourceInUseError
from quorumdb.model.schema import GONE, TableDef

__all__ = ["STATUS_DELAY_ENV", "status_delay_s", "status_deadline", "in_use_error", "serves_items", "GONE"]

STATUS_DELAY_ENV = "QUORUMDB_TABLE_STATUS_DELAY_MS"

_BEING = {"CREATING": "created", "UPDATING": "updated", "DELETING": "deleted"}


def status_delay_s() -> float:
    """How long a table or index stays in a transitional status, in seconds (0 if unset or bad)."""
    raw = os.environ.get(STATUS_DELAY_ENV, "").strip()
    try:
        ms = float(raw) if raw else 0.0
    except ValueError:
        return 0.0
    return ms / 1000.0 if ms > 0 else 0.0


def status_deadline(now: float) -> float | None:
    """When a transition starting at ``now`` ends; None without a delay (it is over at once,
    and nothing is stored that a clock stepping back could make look unfinished)."""
    delay = status_delay_s()
    return now + delay if delay > 0 else None


def in_use_error(name: str, status: str) -> ResourceInUseError:
    """The error of a table change on a table that is CREATING, UPDATING or DELETING."""
    return ResourceInUseError(
        f"Attempt to change a resource which is still in use: Table is being {_BEING[status]}: {name}"
    )


def serves_items(table: TableDef, now: float) -> bool:
    """Whether item operations may use ``table`` at ``now`` (ACTIVE or UPDATING)."""
    return table.status_at(now) in ("ACTIVE", "UPDATING")
