"""The linearizability checker accepts real linearizable histories and rejects known-bad ones."""

from __future__ import annotations

import random
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.sim.checkers import History, Operation, OpKind, Outcome, check_history


def op(op_id: int, kind: str, invoke: int, complete: int | None, *, key: str = "k", value: Any = None,
       result: Any = None, outcome: str | None = None) -> Operation:
    if outcome is None:
        outcome = "ok" if complete is not None else "unknown"
    return Operation(op_id=op_id, process=op_id, key=key, kind=OpKind(kind), value=value, invoke=invoke,
                     complete=complete, outcome=Outcome(outcome), result=result)


def test_sequential_history_is_linearizable() -> None:
    h = [op(0, "put", 1, 2, value=1), op(1, "get", 3, 4, result=1), op(2, "cas", 5, 6, value=(1, 2), result=True),
         op(3, "get", 7, 8, result=2), op(4, "cas", 9, 10, value=(1, 3), result=False), op(5, "delete", 11, 12),
         op(6, "get", 13, 14, result=None)]
    assert check_history(h).ok is True


def test_stale_read_after_acknowledged_write_is_a_violation() -> None:
    h = [op(0, "put", 1, 2, value=1), op(1, "put", 3, 4, value=2), op(2, "get", 5, 6, result=1)]
    res = check_history(h)
    assert res.ok is False
    assert res.violations[0].key == "k"
    assert "not linearizable" in res.describe()


def test_lost_acknowledged_write_is_a_violation() -> None:
    # the write was acknowledged, then a later read sees the initial (absent) value
    h = [op(0, "put", 1, 2, value="a"), op(1, "get", 3, 4, result=None)]
    assert check_history(h).ok is False


def test_concurrent_read_may_see_either_value() -> None:
    for seen in (1, 2):
        h = [op(0, "put", 1, 2, value=1), op(1, "put", 3, 6, value=2), op(2, "get", 4, 5, result=seen)]
        assert check_history(h).ok is True


def test_reads_must_not_go_back_in_time() -> None:
    # two sequential reads during one slow write: new value then old value is not linearizable
    h = [op(0, "put", 1, 2, value=1), op(1, "put", 3, 10, value=2), op(2, "get", 4, 5, result=2),
         op(3, "get", 6, 7, result=1)]
    assert check_history(h).ok is False


def test_failed_write_must_not_be_visible() -> None:
    h = [op(0, "put", 1, 2, value=1, outcome="fail"), op(1, "get", 3, 4, result=1)]
    assert check_history(h).ok is False


def test_unknown_write_may_or_may_not_take_effect() -> None:
    took = [op(0, "put", 1, None, value=1), op(1, "get", 3, 4, result=1)]
    assert check_history(took).ok is True
    did_not = [op(0, "put", 1, None, value=1), op(1, "get", 3, 4, result=None)]
    assert check_history(did_not).ok is True
    flip_flop = [op(0, "put", 1, None, value=1), op(1, "get", 3, 4, result=1), op(2, "get", 5, 6, result=None)]
    assert check_history(flip_flop).ok is False


def test_unknown_write_cannot_take_effect_before_its_invocation() -> None:
    h = [op(0, "get", 1, 2, result=7), op(1, "put", 3, None, value=7)]
    assert check_history(h).ok is False


def test_cas_results_must_be_consistent() -> None:
    bad = [op(0, "put", 1, 2, value=1), op(1, "cas", 3, 4, value=(1, 2), result=False)]
    assert check_history(bad).ok is False
    two_winners = [op(0, "put", 1, 2, value=0), op(1, "cas", 3, 6, value=(0, 1), result=True),
                   op(2, "cas", 4, 7, value=(0, 2), result=True)]
    assert check_history(two_winners).ok is False
    unknown_cas = [op(0, "put", 1, 2, value=0), op(1, "cas", 3, None, value=(0, 1)), op(2, "get", 4, 5, result=1)]
    assert check_history(unknown_cas).ok is True


def test_keys_are_independent() -> None:
    h = [op(0, "put", 1, 2, key="a", value=1), op(1, "put", 3, 4, key="b", value=2),
         op(2, "get", 5, 6, key="a", result=1), op(3, "get", 7, 8, key="b", result=1)]
    res = check_history(h)
    assert res.ok is False
    assert [v.key for v in res.violations] == ["b"]


def test_initial_state_is_respected() -> None:
    h = [op(0, "get", 1, 2, result=5)]
    assert check_history(h).ok is False
    assert check_history(h, initial={"k": 5}).ok is True


def test_budget_exhaustion_is_undecided_not_a_pass() -> None:
    h = [op(i, "put", 1 + i, 1000, value=i) for i in range(12)] + [op(99, "get", 1001, 1002, result=-1)]
    res = check_history(h, budget_per_key=50)
    assert res.ok is None


def test_history_recorder_assigns_ordered_sequence_numbers() -> None:
    h = History()
    a = h.invoke(0, OpKind.PUT, "k", 1)
    b = h.invoke(1, OpKind.GET, "k")
    h.ok(b, None)
    h.ok(a)
    c = h.invoke(0, OpKind.CAS, "k", (1, 2))
    h.close()
    by_id = {o.op_id: o for o in h.ops}
    assert by_id[c].outcome is Outcome.UNKNOWN
    done_b, done_a = by_id[b].complete, by_id[a].complete
    assert done_b is not None and done_a is not None and done_b < done_a
    assert check_history(h.ops).ok is True
    assert Operation.from_record(by_id[c].to_record()) == by_id[c]


def random_linearizable_history(rng: random.Random, n_ops: int, keys: int, *, unknown_p: float = 0.05,
                                fail_p: float = 0.02) -> list[Operation]:
    """Ops with random overlapping intervals and a hidden linearization point inside each."""
    raw = []
    t = 0.0
    for i in range(n_ops):
        t += rng.expovariate(1.0)
        lin = t + rng.uniform(0, 3)
        end = lin + rng.uniform(0, 3)
        raw.append((t, lin, end, i))
    state: dict[str, Any] = {}
    results: dict[int, tuple[str, str, Any, Any, bool]] = {}
    for _, _lin, _, i in sorted(raw, key=lambda r: r[1]):
        key = f"k{rng.randrange(keys)}"
        kind = rng.choice(["put", "get", "cas", "cas", "delete"])
        failed = rng.random() < fail_p and kind != "get"
        cur = state.get(key)
        value: Any = None
        result: Any = None
        if kind == "put":
            value = rng.randrange(5)
            if not failed:
                state[key] = value
        elif kind == "get":
            result = cur
        elif kind == "cas":
            value = (rng.choice([cur, rng.randrange(5)]), rng.randrange(5))
            result = cur == value[0]
            if result and not failed:
                state[key] = value[1]
        else:
            if not failed:
                state.pop(key, None)
        results[i] = (key, kind, value, result, failed)
    times = sorted([(r[0], 0, r[3]) for r in raw] + [(r[2], 1, r[3]) for r in raw])
    seq = {}
    for n, (_, what, i) in enumerate(times):
        seq[(what, i)] = n + 1
    ops = []
    for i in range(n_ops):
        key, kind, value, result, failed = results[i]
        outcome = "fail" if failed else ("unknown" if rng.random() < unknown_p else "ok")
        complete = None if outcome == "unknown" else seq[(1, i)]
        ops.append(op(i, kind, seq[(0, i)], complete, key=key, value=value,
                      result=result if outcome == "ok" else None, outcome=outcome))
    return ops


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 120), st.integers(1, 4))
def test_generated_linearizable_histories_pass(seed: int, n: int, keys: int) -> None:
    ops = random_linearizable_history(random.Random(seed), n, keys)
    res = check_history(ops)
    assert res.ok is True, res.describe()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 80))
def test_corrupting_an_isolated_read_is_caught(seed: int, n: int) -> None:
    rng = random.Random(seed)
    ops = random_linearizable_history(rng, n, 1, unknown_p=0.0, fail_p=0.0)
    # a read strictly after everything that returns a value nobody ever wrote
    last = max(o.complete or o.invoke for o in ops)
    liar = op(10_001, "get", last + 1, last + 2, result="never-written")
    assert check_history([*ops, liar]).ok is False


def test_ten_thousand_operations_check_in_seconds() -> None:
    ops = random_linearizable_history(random.Random(7), 10_000, 10)
    started = time.perf_counter()
    res = check_history(ops)
    elapsed = time.perf_counter() - started
    assert res.ok is True
    assert res.operations == 10_000
    print(f"10k ops checked in {elapsed:.2f}s")


def test_unobserved_values_are_merged_without_changing_verdicts() -> None:
    # the two unknown puts are never read; a failed cas is explained by either of them
    ok = [op(0, "put", 1, 2, value="p"), op(1, "put", 3, None, value="u1"), op(2, "put", 4, None, value="u2"),
          op(3, "cas", 5, 6, value=("p", "x"), result=False)]
    assert check_history(ok).ok is True
    # without them, the failed cas is impossible
    assert check_history([ok[0], ok[3]]).ok is False
    # an unobserved value is still never equal to an observed one
    bad = [op(0, "put", 1, 2, value="u"), op(1, "get", 3, 4, result="v")]
    assert check_history(bad).ok is False
