"""Nodes join and leave a running cluster under boto3 load (real processes).

A 3-node cluster grows to 5 and shrinks back to 3 while writers put unique items through
boto3 (standard retry mode, as an application's client). The metadata service moves replicas
one at a time (a membership change adding the new replica, a snapshot, a change removing the
old one). Checked: no acknowledged write lost, no request failed with a 5xx, every partition
ends with 3 replicas on distinct live nodes, replicas balanced within one of the mean, and
the group memberships equal the map.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from tests.cluster.harness import LocalCluster
from tests.cluster.workload import Ledger


def _settled(st: dict[str, Any], nodes: list[str], table: str) -> bool:
    parts = LocalCluster.partitions(st, table)
    if not parts or any(p["moving"] or len(p["replicas"]) != 3 or len(set(p["replicas"])) != 3
                        or not set(p["replicas"]) <= set(nodes) or len(p["voters"]) != 3
                        or not p["leader"] for p in parts):
        return False
    count = {n: 0 for n in nodes}
    for p in st["partitions"]:
        for r in p["replicas"]:
            count[r] = count.get(r, 0) + 1
    mean = sum(count.values()) / len(nodes)
    up = {n["node"] for n in st["nodes"] if n["up"]}
    return (all(abs(c - mean) <= 1 for c in count.values()) and set(nodes) <= up
            and len(st["meta"]["voters"]) == (5 if len(nodes) >= 5 else 3))


def _p99(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100)[98] * 1000, 1) if len(samples) >= 100 else float("nan")


def test_grow_to_five_and_shrink_back_to_three_under_load(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster")
    cluster.start_all()
    try:
        cluster.create_table("reg")
        ledger = Ledger(cluster.endpoints, "reg", writers=3, retries=True)
        ledger.start()
        time.sleep(2.0)
        t0 = time.monotonic()
        added = [cluster.add_node(), cluster.add_node()]
        five = ["n1", "n2", "n3", *added]
        st = cluster.wait(lambda s: _settled(s, five, "reg"), 180, "replicas spread over 5 nodes")
        t1 = time.monotonic()
        grown = {p["group"]: sorted(p["replicas"]) for p in cluster.partitions(st, "reg")}
        assert any(set(r) & set(added) for r in grown.values()), "replicas moved to the new nodes"
        for node in added:
            answer = cluster.remove_node(node, via="n1")
            assert answer.get("ok"), answer
        st = cluster.wait(lambda s: _settled(s, ["n1", "n2", "n3"], "reg"), 180, "back on 3 nodes")
        t2 = time.monotonic()
        assert all(n not in p["replicas"] for p in cluster.partitions(st, "reg") for n in added)
        time.sleep(1.0)
        ledger.stop()
        lost = ledger.missing(cluster.endpoint("n1"))
    finally:
        cluster.stop_all()
    before = [d for end, d in ledger.latencies if end < t0]
    joining = [d for end, d in ledger.latencies if t0 <= end < t1]
    leaving = [d for end, d in ledger.latencies if t1 <= end < t2]
    print(f"\nelastic: grow 3->5 in {t1 - t0:.1f} s, shrink 5->3 in {t2 - t1:.1f} s; "
          f"{len(ledger.acked)} acknowledged writes, {ledger.failed} failed ({ledger.failed_5xx} with a 5xx), "
          f"lost {len(lost)}; put p99 ms before/joining/leaving: {_p99(before)}/{_p99(joining)}/{_p99(leaving)}")
    assert lost == []
    assert ledger.failed_5xx == 0, ledger.errors_5xx[:5]
    assert len(ledger.acked) > 0


def test_a_node_down_too_long_is_declared_dead_and_its_replicas_are_recreated(tmp_path: Path) -> None:
    """kill -9 of a node that holds replicas, for good: after the configured time the meta
    leader declares it dead and the planner re-creates its replicas on the other nodes from the
    surviving ones (add by membership change + snapshot, then remove the dead replica)."""
    cluster = LocalCluster(tmp_path / "cluster", nodes=4, env={"QUORUMDB_DEAD_AFTER_SECONDS": "3"})
    cluster.start_all()
    try:
        cluster.create_table("reg")
        st = cluster.status()
        held = {n["node"]: n["partitions"] for n in st["nodes"]}
        victim = max((n for n in held if n != st["meta"]["leader"]), key=lambda n: held[n])
        assert held[victim] > 0
        ledger = Ledger(cluster.endpoints, "reg", writers=2, retries=True)
        ledger.start()
        time.sleep(1.0)
        cluster.kill9(victim)
        t0 = time.monotonic()
        rest = [s.node_id for s in cluster.specs if s.node_id != victim]
        st = cluster.wait(lambda s: _settled(s, rest, "reg"), 120, f"{victim}'s replicas re-created")
        took = time.monotonic() - t0
        assert {n["node"]: n["state"] for n in st["nodes"]}[victim] == "left"
        time.sleep(1.0)
        ledger.stop()
        lost = ledger.missing(cluster.endpoint(rest[0]))
    finally:
        cluster.stop_all()
    print(f"\ndead node: {victim} (held {held[victim]} replicas) re-created elsewhere {took:.1f} s after kill -9 "
          f"(declared dead after 3 s); {len(ledger.acked)} acknowledged writes, lost {len(lost)}")
    assert lost == []
