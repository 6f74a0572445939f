"""QuorumDB as a cluster: placement, the metadata state machine, and the node runtime.

``placement``, ``metadata`` and ``statemachine`` are pure (no I/O, no clock, no asyncio);
``node`` and ``rpc`` are the asyncio runtime that drives them; ``serve`` and ``launcher`` are
the process entry points (``quorumdb serve --node-id``, ``quorumdb cluster up``).
"""
