"""Replica placement: Dynamo's strategy 3 (fixed equal-size token ranges, several per node).

The 64-bit hash space is cut into ``Q`` equal token ranges, once and for all. Each range has an
owner node; ``rebalance`` keeps every node's share within one of the mean ``Q / S`` and moves
as few ranges as possible when nodes come or go (a new node takes exactly its share, every
range it takes comes from a node above its quota; the other ranges stay where they are). A
partition's replicas are the first ``n`` distinct owners met walking the ring clockwise from
the range that holds the partition's ring position.

The token table is state (it lives in the metadata, like Dynamo's token map), and every
function here is pure and deterministic: same inputs, same placement, on every node.
This module must never do I/O, read a clock or draw randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SPACE",
    "TOKENS_DEFAULT",
    "Tokens",
    "rebalance",
    "token_of",
    "ring_position",
    "preference_list",
    "shares",
    "table_salt",
]

HASH_SPACE = 1 << 64
TOKENS_DEFAULT = 256

# Tokens[i] is the node owning token range i, i.e. hashes [i * 2**64 / Q, (i + 1) * 2**64 / Q).
Tokens = tuple[str, ...]


def shares(tokens: Tokens) -> dict[str, int]:
    """How many token ranges each node owns."""
    out: dict[str, int] = {}
    for owner in tokens:
        out[owner] = out.get(owner, 0) + 1
    return out


def _quotas(current: dict[str, int], nodes: Sequence[str], q: int) -> dict[str, int]:
    """Each node's target share: floor or ceil of Q / S; the ceilings go to the nodes that own
    the most already (ties by id), so a rebalance never moves a range it does not have to."""
    base, extra = divmod(q, len(nodes))
    ranked = sorted(nodes, key=lambda n: (-current.get(n, 0), n))
    return {n: base + (1 if i < extra else 0) for i, n in enumerate(ranked)}


def rebalance(tokens: Tokens, nodes: Sequence[str], q: int = TOKENS_DEFAULT) -> Tokens:
    """The token table for ``nodes``, moving as few ranges of ``tokens`` as possible.

    ``tokens`` may be empty (a brand-new cluster) or name nodes that left: their ranges are
    handed out again. Freed ranges go, in ring order, round-robin to the nodes below quota
    (sorted by id), which spreads a new node's ranges around the ring.
    """
    if not nodes:
        raise ValueError("placement needs at least one node")
    if len(set(nodes)) != len(nodes):
        raise ValueError("node ids must be unique")
    if tokens and len(tokens) != q:
        raise ValueError(f"a token table of {len(tokens)} ranges cannot be rebalanced to {q}")
    members = set(nodes)
    owners: list[str | None] = list(tokens) if tokens else [None] * q
    owners = [o if o in members else None for o in owners]
    held = shares(tuple(o for o in owners if o is not None))
    quota = _quotas(held, nodes, q)
    # Release the excess of nodes above quota: their last ranges in ring order.
    for node in sorted(held):
        excess = held[node] - quota[node]
        for i in range(q - 1, -1, -1):
            if excess <= 0:
                break
            if owners[i] == node:
                owners[i] = None
                excess -= 1
        held[node] = min(held[node], quota[node])
    hungry = [n for n in sorted(nodes) if held.get(n, 0) < quota[n]]
    turn = 0
    for i in range(q):
        if owners[i] is not None:
            continue
        while held.get(hungry[turn % len(hungry)], 0) >= quota[hungry[turn % len(hungry)]]:
            turn += 1
        node = hungry[turn % len(hungry)]
        owners[i] = node
        held[node] = held.get(node, 0) + 1
        turn += 1
    out = tuple(o for o in owners if o is not None)
    assert len(out) == q
    return out


def ring_position(salt: int, hash_lo: int) -> int:
    """Where a partition starting at ``hash_lo`` sits on the ring. ``salt`` (per table) keeps
    the first partitions of every table from landing on the same nodes."""
    return (hash_lo + salt) % HASH_SPACE


def table_salt(table_name: str) -> int:
    """A stable per-table ring offset (not Python's randomized ``hash``)."""
    return int.from_bytes(hashlib.blake2b(table_name.encode(), digest_size=8).digest(), "big")


def token_of(position: int, q: int) -> int:
    """The token range holding ring ``position``."""
    assert 0 <= position < HASH_SPACE
    return position * q // HASH_SPACE


def preference_list(tokens: Tokens, position: int, n: int) -> tuple[str, ...]:
    """The first ``n`` distinct nodes walking the ring from ``position`` (fewer if the cluster
    has fewer nodes)."""
    q = len(tokens)
    start = token_of(position, q)
    out: list[str] = []
    for step in range(q):
        owner = tokens[(start + step) % q]
        if owner not in out:
            out.append(owner)
            if len(out) == n:
                break
    return tuple(out)

