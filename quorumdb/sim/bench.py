"""``python -m quorumdb.sim.bench``: how fast the Paxos core runs inside the simulator.

Runs fault-free seeded simulations with many closed-loop clients and reports, per cluster size,
log entries committed and client operations completed per second of wall time (the cost of the
core plus the simulator's own bookkeeping, excluding the linearizability check) and per second
of virtual time. Numbers for the closing note; not a test.
"""

from __future__ import annotations

import argparse
import heapq
import time

from quorumdb.sim.world import SimConfig, World


def measure(nodes: int, clients: int, steps: int, seed: int) -> dict[str, float]:
    cfg = SimConfig(seed=seed, steps=steps, nodes=nodes, clients=clients, keys=16, drop=0.0, duplicate=0.0,
                    crash_weight=0.0, pause_weight=0.0, partition_weight=0.0, think_ms_max=1.0,
                    fault_fraction=0.0)
    world = World(cfg)
    # Time the event loop only: stop before report() runs the checkers.
    for nid in world.node_ids:
        world._start_node(nid)

    def step() -> None:
        t, _, kind, payload = heapq.heappop(world._queue)
        world.clock.advance_to(t)
        world.steps += 1
        world._handlers[kind](payload)

    while world._current_leader() is None or world.commits == 0:  # the first election
        step()
    world.workload.setup()
    commits0, ops0, vt0, steps0 = world.commits, len(world.history.ops), world.clock.now_ms, world.steps
    t0 = time.perf_counter()
    while world._queue and world.steps - steps0 < steps:
        step()
    wall = time.perf_counter() - t0
    commits = world.commits - commits0
    ops = sum(1 for o in world.history.ops[ops0:] if o.outcome == "ok")
    virtual_s = (world.clock.now_ms - vt0) / 1000
    return {
        "nodes": nodes, "clients": clients, "wall_s": wall, "commits": commits, "ops_ok": ops,
        "commits_per_wall_s": commits / wall, "ops_per_wall_s": ops / wall, "ops_per_virtual_s": ops / virtual_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m quorumdb.sim.bench")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    print(f"settings: steps={a.steps} seed={a.seed} faults=none drop=0")
    for nodes in (3, 5):
        for clients in (1, 16, 128):
            r = measure(nodes, clients, a.steps, a.seed)
            print(f"nodes={nodes} clients={clients:>3}: commits/wall-s={r['commits_per_wall_s']:>7.0f} "
                  f"ops/wall-s={r['ops_per_wall_s']:>7.0f} ops/virtual-s={r['ops_per_virtual_s']:>7.0f} "
                  f"(commits={r['commits']:.0f} ops={r['ops_ok']:.0f} wall={r['wall_s']:.2f}s)", flush=True)


if __name__ == "__main__":
    main()
