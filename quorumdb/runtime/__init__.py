"""The asyncio driver: the same sans-I/O cores over real TCP, real disks and real time.

``framing`` (length-prefixed msgpack frames), ``transport`` (persistent, authenticated,
reconnecting peer connections with bounded queues), ``storage`` (the Paxos log storage on
LMDB, one fsync per Ready), ``clock`` (monotonic milliseconds), ``node`` (a Multi-Paxos
key-value node and its tiny client protocol) and ``python -m quorumdb.runtime`` to run one.
This package holds no protocol logic of its own: decisions belong to the cores.
"""
