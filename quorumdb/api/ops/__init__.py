"""The operation handlers. Importing this package registers every handler in ``OPERATIONS``
(and the DynamoDB Streams ones in ``STREAMS_OPERATIONS``).

Every module must import: a server that silently lacked its item operations would be worse
than one that does not start. Handlers never format HTTP responses.
"""

from __future__ import annotations

from quorumdb.api.ops import backups, control, items, partiql, reads, streams, transactions

__all__ = ["MODULES"]

MODULES = (backups, control, items, reads, streams, transactions, partiql)
