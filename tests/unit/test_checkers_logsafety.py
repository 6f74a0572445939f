"""The log-safety and liveness checkers flag known-bad logs and stalls."""

from __future__ import annotations

from quorumdb.sim.checkers import LivenessChecker, LogSafetyChecker


def test_agreeing_commits_are_safe() -> None:
    c = LogSafetyChecker()
    for node in ("a", "b", "c"):
        for i, d in enumerate(["x", "y", "z"], start=1):
            c.observe_apply(node, i, d)
    c.observe_log("a", {1: "x", 2: "y", 3: "z"})
    c.check_prefix_known(3)
    assert c.ok, c.describe()
    assert c.commit_index == 3


def test_two_entries_committed_at_one_index_is_a_conflict() -> None:
    c = LogSafetyChecker()
    c.observe_commit("a", 1, "x")
    c.observe_commit("b", 1, "y")
    assert not c.ok
    assert c.violations[0].kind == "conflict"
    assert "index 1" in c.describe()


def test_committed_entry_missing_after_restart_is_lost() -> None:
    c = LogSafetyChecker()
    c.observe_commit("a", 1, "x")
    c.observe_commit("a", 2, "y")
    c.observe_log("b", {1: "x", 3: "w"})  # hole at a committed index
    assert [v.kind for v in c.violations] == ["lost"]
    assert c.violations[0].index == 2


def test_committed_entry_overwritten_in_durable_log_is_lost() -> None:
    c = LogSafetyChecker()
    c.observe_commit("a", 1, "x")
    c.observe_log("b", {1: "other"})
    assert c.violations[0].kind == "lost"


def test_snapshot_covers_compacted_entries() -> None:
    c = LogSafetyChecker()
    for i in range(1, 6):
        c.observe_commit("a", i, f"e{i}")
    c.observe_log("b", {5: "e5"}, snapshot_index=4)
    assert c.ok, c.describe()
    c.observe_snapshot("b", 4, "digest-good", "digest-good")
    assert c.ok
    c.observe_snapshot("c", 4, "digest-bad", "digest-good")
    assert c.violations[0].kind == "snapshot"


def test_apply_gap_is_flagged_and_restart_resets_cursor() -> None:
    c = LogSafetyChecker()
    c.observe_apply("a", 1, "x")
    c.reset_apply("a", 0)  # restarted, replays from scratch
    c.observe_apply("a", 1, "x")
    c.observe_apply("a", 2, "y")
    assert c.ok
    c.observe_apply("a", 4, "w")
    assert c.violations[0].kind == "gap"


def test_hole_in_committed_prefix_is_flagged() -> None:
    c = LogSafetyChecker()
    c.observe_commit("a", 1, "x")
    c.observe_commit("a", 3, "z")
    c.check_prefix_known(3)
    assert c.violations[0].kind == "gap" and c.violations[0].index == 2


def test_liveness_within_bound() -> None:
    lc = LivenessChecker(bound=1000)
    lc.leader(10, "a")
    lc.commit(20)
    lc.quiet(5000)
    lc.leader(5300, "b")
    lc.commit(5400)
    res = lc.result()
    assert res.ok, res.describe()
    assert res.leader_after == 300 and res.commit_after == 400


def test_no_commit_after_quiet_is_not_live() -> None:
    lc = LivenessChecker(bound=1000)
    lc.commit(20)
    lc.quiet(5000)
    lc.leader(5300, "b")
    res = lc.result()
    assert not res.ok
    assert "NOT live" in res.describe()


def test_late_commit_is_not_live() -> None:
    lc = LivenessChecker(bound=1000)
    lc.quiet(0, current_leader="a")
    lc.commit(2500)
    assert not lc.result().ok


def test_liveness_unchecked_without_quiet() -> None:
    assert LivenessChecker(bound=1).result().ok
