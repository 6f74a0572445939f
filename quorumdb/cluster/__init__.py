"""The cluster: nodes, the metadata service, partitions replicated by Multi-Paxos.

``placement``, ``metadata`` and ``statemachine`` are pure (no I/O, no clock, no asyncio);
``node`` and ``rpc`` are the asyncio runtime that drives them; ``dataplane`` routes DynamoDB
requests over it; ``wiring`` plugs the data plane into a node; ``serve`` and ``launcher`` are
the process entry points (``quorumdb serve --node-id``, ``quorumdb cluster up``).
"""
