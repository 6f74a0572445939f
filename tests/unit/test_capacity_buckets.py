"""The token-bucket arithmetic of provisioned capacity (quorumdb.core.capacity), on a fake clock."""

from __future__ import annotations

import pytest

from quorumdb.core.capacity import (
    BURST_S,
    HASH_SPACE,
    PARTITION_BYTES_MAX,
    PARTITION_RCU_MAX,
    PARTITION_WCU_MAX,
    TokenBucket,
    partition_count,
    partition_of,
    partition_rate,
)


def test_a_new_bucket_holds_300_seconds_of_burst() -> None:
    b = TokenBucket.full(5.0, now=100.0)
    assert b.tokens == 5.0 * BURST_S == 1500.0


def test_refill_at_the_rate_and_burst_capped_at_300_seconds() -> None:
    b = TokenBucket.full(5.0, now=0.0)
    assert b.take(1500.0, now=0.0)
    assert b.tokens == 0.0
    assert not b.take(1.0, now=0.1)  # 0.5 units there: not enough for 1
    assert b.take(1.0, now=0.2)  # 1.0 unit after 0.2 s
    b.refill(now=10.2)
    assert b.tokens == pytest.approx(50.0)
    b.refill(now=10_000.0)  # idle far longer than 300 s: only 300 s are kept
    assert b.tokens == 1500.0


def test_a_refused_take_takes_nothing() -> None:
    b = TokenBucket.full(1.0, now=0.0)
    assert b.take(299.5, now=0.0)
    assert not b.take(1.0, now=0.0)
    assert b.tokens == pytest.approx(0.5)


def test_a_cost_larger_than_the_burst_runs_on_a_full_bucket_only() -> None:
    b = TokenBucket.full(1.0, now=0.0)  # burst: 300 units
    assert b.take(1.0, now=0.0)
    assert not b.take(400.0, now=0.0)  # 299 < min(400, 300)
    assert b.take(400.0, now=1.0)  # full again: admitted, and leaves a debt
    assert b.tokens == -100.0


def test_a_large_read_leaves_a_debt_that_delays_later_requests() -> None:
    b = TokenBucket.full(1.0, now=0.0)
    assert b.take(0.5, now=0.0)  # a Query's minimum cost up front
    b.charge(255.5, now=0.0)  # the rest of a 1 MB page, known afterwards
    assert b.tokens == pytest.approx(44.0)
    assert b.take(0.5, now=0.0)
    b.charge(255.5, now=0.0)
    assert b.tokens == pytest.approx(-212.0)
    assert not b.take(0.5, now=212.0)  # the debt is repaid, but nothing is there yet
    assert not b.take(0.5, now=212.4)
    assert b.take(0.5, now=212.5)


def test_a_clock_stepping_back_refills_nothing() -> None:
    b = TokenBucket.full(2.0, now=100.0)
    assert b.take(600.0, now=100.0)
    b.refill(now=50.0)
    assert b.tokens == 0.0
    b.refill(now=101.0)
    assert b.tokens == 2.0


def test_resize_keeps_burst_up_to_the_new_cap_and_keeps_debt() -> None:
    b = TokenBucket.full(10.0, now=0.0)  # 3000 units
    b.resize(5.0, now=0.0)
    assert b.tokens == 1500.0 and b.burst_max == 1500.0
    b.resize(100.0, now=0.0)
    assert b.tokens == 1500.0  # a larger cap adds no tokens at once
    b.refill(now=1.0)
    assert b.tokens == 1600.0
    b.charge(2000.0, now=1.0)
    b.resize(1.0, now=1.0)
    assert b.tokens == -400.0


@pytest.mark.parametrize(
    ("rcu", "wcu", "size", "count"),
    [
        (1, 1, 0, 1),
        (3000, 0, 0, 1),
        (3001, 0, 0, 2),
        (0, 1000, 0, 1),
        (1000, 1000, 0, 2),  # 1/3 + 1
        (6000, 2000, 0, 4),
        (5, 5, 25 * 1024**3, 3),  # by size: 25 GB / 10 GB
        (5, 5, PARTITION_BYTES_MAX, 1),
        (40_000, 40_000, 0, 54),  # 13.3 + 40
    ],
)
def test_partition_count_is_dynamodbs_rule(rcu: int, wcu: int, size: int, count: int) -> None:
    assert partition_count(rcu, wcu, size) == count


def test_partitions_cut_the_hash_space_evenly() -> None:
    assert partition_of(0, 1) == 0 and partition_of(HASH_SPACE - 1, 1) == 0
    assert [partition_of(p, 4) for p in (0, HASH_SPACE // 4 - 1, HASH_SPACE // 4, HASH_SPACE - 1)] == [0, 0, 1, 3]
    counts = [0] * 3
    for i in range(3000):
        counts[partition_of((2 * i + 1) * HASH_SPACE // 6000, 3)] += 1  # slot midpoints
    assert counts == [1000, 1000, 1000]


def test_partition_share_and_ceilings() -> None:
    assert partition_rate(1000.0, 2, PARTITION_WCU_MAX) == 500.0
    assert partition_rate(5000.0, 2, PARTITION_WCU_MAX) == 1000.0  # capped
    assert partition_rate(9000.0, 1, PARTITION_RCU_MAX) == 3000.0
    # With DynamoDB's partition count no partition's share reaches past a ceiling.
    for rcu, wcu in [(3000, 1000), (12_345, 999), (1, 40_000)]:
        n = partition_count(rcu, wcu, 0)
        assert rcu / n <= PARTITION_RCU_MAX and wcu / n <= PARTITION_WCU_MAX
