"""Storage engines: the narrow ``Engine`` protocol, the in-memory and the LMDB engine."""

from quorumdb.storage.engine import Engine, ReadTxn, StorageFullError, WriteTxn

__all__ = ["Engine", "ReadTxn", "WriteTxn", "StorageFullError"]
