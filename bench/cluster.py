"""`make bench-cluster`: a 3-node QuorumDB cluster beside the single node, in the same run.

Both run on this machine: the single node (one process) and the three cluster nodes are all
pinned to core 0, wrk to core 1, so the figure is what replication costs (three copies, a
majority fsync and a network round trip per write, requests forwarded to partition leaders),
not extra hardware. The cluster is addressed through node 1's endpoint, as an application
would; writes whose partition another node leads are forwarded there. Results go to
bench/results/CLUSTER.md and cluster.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, machine, run_dynamo_target
from bench.targets import Target, ensure_tools, quorumdb_target

WORKLOADS = ["put", "get", "update", "query"]
CONNECTIONS = [16, 64]


def cluster_target(nodes: int = 3) -> Target:
    def argv(port: int, tmp: Path) -> list[str]:
        return [sys.executable, "-m", "quorumdb", "cluster", "up", "--nodes", str(nodes),
                "--data-dir", str(tmp / "cluster"), "--base-port", str(port)]

    return Target(name=f"cluster{nodes}", kind="dynamo", argv_fn=argv,
                  description=f"QuorumDB cluster of {nodes} nodes (Multi-Paxos, 3 replicas), via node 1")


def report(res: dict[str, Any]) -> str:
    single, cluster = res["targets"]["quorumdb"], res["targets"]["cluster3"]
    lines = ["# QuorumDB: 3-node cluster vs single node, same machine, same run", "",
             f"Machine: {res['machine']['cores']} cores, {res['machine']['cpu_model']}; run {res['machine']['date']}.",
             "Every process pinned to core 0, wrk to core 1; medians of the repetitions.", "",
             "| workload | conns | single req/s | cluster req/s | cluster/single | single p50/p99 ms | cluster p50/p99 ms | errors (cluster) |",
             "|---|---|---|---|---|---|---|---|"]
    for w in WORKLOADS:
        for c in map(str, res["settings"]["connections"]):
            s, k = single["workloads"][w][c], cluster["workloads"][w][c]
            lines.append(f"| {w} | {c} | {s['rps']:,.0f} | {k['rps']:,.0f} | {k['rps'] / s['rps']:.2f}x | "
                         f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} | {k['p50_ms']:.2f} / {k['p99_ms']:.2f} | {k['errors']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--qkeys", type=int, default=500)
    ap.add_argument("--connections", default=",".join(map(str, CONNECTIONS)))
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    ensure_tools()
    conns = [int(c) for c in args.connections.split(",")]
    res: dict[str, Any] = {"machine": machine(), "targets": {},
                           "settings": {"duration_s": args.duration, "reps": args.reps, "keys": args.keys,
                                        "connections": conns}}
    for t in (quorumdb_target(1), cluster_target(3)):
        res["targets"][t.name] = run_dynamo_target(t, args, 0, 1, WORKLOADS, conns)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(res, indent=1))
    (out / "CLUSTER.md").write_text(report(res))
    print((out / "CLUSTER.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
