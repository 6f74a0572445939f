"""Placement (Dynamo strategy 3): balance, determinism, minimal movement, distinct replicas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.cluster.placement import (
    HASH_SPACE,
    preference_list,
    rebalance,
    ring_position,
    shares,
    table_salt,
    token_of,
)

node_sets = st.lists(st.text("abcdefghij", min_size=1, max_size=3), min_size=1, max_size=12, unique=True)
token_counts = st.sampled_from([16, 64, 256])


def _balanced(tokens: tuple[str, ...], nodes: list[str]) -> bool:
    q = len(tokens)
    s = shares(tokens)
    mean = q / len(nodes)
    return set(s) == set(nodes) and all(abs(s[n] - mean) < 1 for n in nodes)


@given(node_sets, token_counts)
def test_a_fresh_table_is_balanced_within_one_of_the_mean(nodes: list[str], q: int) -> None:
    tokens = rebalance((), nodes, q)
    assert len(tokens) == q
    if len(nodes) <= q:
        assert _balanced(tokens, nodes)


@given(node_sets, token_counts, st.randoms(use_true_random=False))
def test_placement_is_deterministic_given_the_membership(nodes: list[str], q: int, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert rebalance((), nodes, q) == rebalance((), shuffled, q), "the order nodes are listed in does not matter"
    t = rebalance((), sorted(nodes), q)
    assert rebalance(t, nodes, q) == t, "a balanced table is left alone"


@settings(max_examples=200)
@given(node_sets, st.text("klmnop", min_size=1, max_size=3), token_counts)
def test_adding_a_node_moves_only_its_share_and_only_to_it(nodes: list[str], new: str, q: int) -> None:
    before = rebalance((), nodes, q)
    after = rebalance(before, nodes + [new], q)
    moved = [i for i in range(q) if before[i] != after[i]]
    assert all(after[i] == new for i in moved), "every moved range goes to the new node"
    assert len(moved) == shares(after).get(new, 0), "the new node gets exactly the moved ranges"
    assert len(moved) in (q // (len(nodes) + 1), q // (len(nodes) + 1) + 1), "no more than its share moves"
    if len(nodes) + 1 <= q:
        assert _balanced(after, nodes + [new])


@settings(max_examples=200)
@given(node_sets.filter(lambda ns: len(ns) >= 2), token_counts, st.data())
def test_removing_a_node_moves_only_its_ranges(nodes: list[str], q: int, data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(nodes))
    before = rebalance((), nodes, q)
    rest = [n for n in nodes if n != gone]
    after = rebalance(before, rest, q)
    moved = [i for i in range(q) if before[i] != after[i]]
    assert gone not in after
    # Only the departed node's ranges move, plus at most one per node to even out the quotas.
    assert len(moved) <= shares(before)[gone] + len(rest)
    if len(rest) <= q:
        assert _balanced(after, rest)


@given(node_sets, token_counts, st.integers(0, HASH_SPACE - 1), st.integers(1, 5))
def test_preference_lists_are_distinct_nodes_walking_the_ring(nodes: list[str], q: int, pos: int, n: int) -> None:
    tokens = rebalance((), nodes, q)
    pl = preference_list(tokens, pos, n)
    assert len(pl) == min(n, len(nodes))
    assert len(set(pl)) == len(pl)
    assert pl[0] == tokens[token_of(pos, q)], "the first replica owns the range"
    # Walking the ring: every owner met before the last pick is already in the list.
    start = token_of(pos, q)
    seen = []
    for step in range(q):
        o = tokens[(start + step) % q]
        if o not in seen:
            seen.append(o)
        if len(seen) == len(pl):
            break
    assert tuple(seen) == pl


def test_every_node_carries_replicas_and_tables_are_spread() -> None:
    nodes = [f"n{i}" for i in range(1, 7)]
    tokens = rebalance((), nodes, 256)
    load = dict.fromkeys(nodes, 0)
    for i in range(256):
        for r in preference_list(tokens, i * HASH_SPACE // 256, 3):
            load[r] += 1
    assert sum(load.values()) == 3 * 256
    mean = 3 * 256 / len(nodes)
    assert all(0.5 * mean <= v <= 1.5 * mean for v in load.values()), load
    # Different tables put their first partition on different rings positions.
    assert ring_position(table_salt("a"), 0) != ring_position(table_salt("b"), 0)
    assert table_salt("a") == table_salt("a")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        rebalance((), [], 16)
    with pytest.raises(ValueError):
        rebalance((), ["a", "a"], 16)
    with pytest.raises(ValueError):
        rebalance(("a",) * 8, ["a"], 16)
