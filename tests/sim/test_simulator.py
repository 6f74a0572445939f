"""The deterministic simulator: reproducible runs, checkers passing on the real core (the
mutant catalogue, broken cores the checkers must catch, is in test_mutants.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from quorumdb.sim.disk import SimDisk
from quorumdb.sim.network import NetworkConfig, SimNetwork
from quorumdb.sim.world import SimConfig, World, run

FAST_STEPS = 6000
SEEDS_IN_MAKE_TEST = 80


def test_same_seed_same_trace_and_different_seed_differs() -> None:
    a = run(SimConfig(seed=11, steps=FAST_STEPS))
    b = run(SimConfig(seed=11, steps=FAST_STEPS))
    c = run(SimConfig(seed=12, steps=FAST_STEPS))
    assert a.trace_hash == b.trace_hash
    assert a.summary() == b.summary()
    assert c.trace_hash != a.trace_hash


def test_cli_prints_settings_and_reproduces_across_processes() -> None:
    outs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run(
            [sys.executable, "-m", "quorumdb.sim", "--seed", "5", "--steps", "3000", "--drop", "0.05"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outs.append(proc.stdout)
    first = outs[0].splitlines()[0]
    assert first.startswith("settings: seed=5 steps=3000 nodes=3")
    assert "drop=0.05" in first and "mutant=" in first
    trace = [line for line in outs[0].splitlines() if line.startswith("trace hash")]
    assert trace and trace == [line for line in outs[1].splitlines() if line.startswith("trace hash")]
    assert "verdict: PASS (seed 5)" in outs[0]


@pytest.mark.parametrize("seed", range(SEEDS_IN_MAKE_TEST))
def test_seeded_sweep_passes_every_checker(seed: int) -> None:
    report = run(SimConfig(seed=seed, steps=FAST_STEPS))
    assert report.ok, report.summary()
    assert report.commits > 0 and report.ops > 0


def test_five_node_cluster_with_heavy_faults() -> None:
    for seed in range(3):
        report = run(SimConfig(seed=seed, steps=FAST_STEPS, nodes=5, drop=0.1, duplicate=0.05,
                               fault_interval_ms=500))
        assert report.ok, report.summary()


def test_snapshot_installs_under_partitions_keep_every_invariant() -> None:
    installs = 0
    for seed in range(6):
        report = run(SimConfig(seed=seed, steps=FAST_STEPS, clients=8, compact_threshold_entries=30,
                               crash_weight=0.3, pause_weight=0.3, partition_weight=2.0, fault_interval_ms=700))
        assert report.ok, report.summary()
        installs += report.faults.get("snapshot_installs", 0)
    assert installs > 0, "no replica was ever caught up by a snapshot"


def slow_disk(seed: int, steps: int) -> SimConfig:
    """fsync slower than a network round trip, and whole-cluster power losses."""
    return SimConfig(seed=seed, steps=steps, fsync_ms_min=20.0, fsync_ms_max=60.0, delay_ms_max=5.0,
                     power_loss_weight=1.0)


def test_slow_disk_and_power_losses_keep_every_invariant() -> None:
    lost = 0
    for seed in range(4):
        report = run(slow_disk(seed, FAST_STEPS * 2))
        assert report.ok, report.summary()
        lost += report.faults.get("lost_unsynced_writes", 0)
    assert lost > 0, "no crash ever hit an unsynced write"


def test_disk_loses_only_unsynced_writes() -> None:
    d = SimDisk()
    d.put("a", 1)
    d.sync()
    d.put("b", 2)
    d.delete("a")
    assert d.get("b") == 2 and "a" not in d
    assert d.crash() == 2
    assert d.get("a") == 1 and d.get("b") is None
    rng = random.Random(3)
    for _ in range(20):
        d.put("x", 1)
        d.put("y", 2)
        d.crash(rng, torn=True)
        # a torn crash keeps a prefix: y never survives without x
        assert not ("y" in d and "x" not in d)
        d = SimDisk()


def test_network_partitions_cut_in_flight_messages() -> None:
    net = SimNetwork(NetworkConfig(drop=0.0, duplicate=0.0), random.Random(1))
    assert len(net.plan("a", "b")) == 1
    net.partition(["a"], ["b", "c"])
    assert not net.arrive("a", "b")
    assert net.plan("b", "a") == []
    assert net.plan("b", "c") != []
    net.heal()
    assert net.connected("a", "b")


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("chunk", range(40))
def test_long_sweep(chunk: int) -> None:
    """make sim: 2000 seeds of 20k steps, a quarter of them with 5 nodes (50 seeds per chunk)."""
    failed = []
    for seed in range(1000 + chunk * 50, 1000 + (chunk + 1) * 50):
        report = run(SimConfig(seed=seed, steps=20_000, nodes=5 if seed % 4 == 0 else 3))
        if not report.ok:
            failed.append((seed, report.summary()))
    assert not failed, failed[:3]


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("chunk", range(4))
def test_long_sweep_harsh(chunk: int) -> None:
    """make sim: 5 nodes, 10% drop, 5% duplicates, a fault every 400 ms on average."""
    failed = []
    for seed in range(5000 + chunk * 50, 5000 + (chunk + 1) * 50):
        report = run(SimConfig(seed=seed, steps=20_000, nodes=5, drop=0.1, duplicate=0.05, fault_interval_ms=400))
        if not report.ok:
            failed.append((seed, report.summary()))
    assert not failed, failed[:3]


def test_wiped_disks_rejoin_as_new_incarnations_through_membership_changes() -> None:
    """A node that lost its disk never answers as the voter it was: messages for its old id are
    dropped, the operator adds the new incarnation and removes the old one, and every checker
    still passes."""
    wipes = replaced = stale = 0
    for seed in range(6):
        world = World(SimConfig(seed=seed, steps=FAST_STEPS * 2, wipe_weight=2.0, reconfig_interval_ms=500.0))
        report = world.run()
        assert report.ok, report.summary()
        wipes += report.faults.get("wipe", 0)
        stale += report.faults.get("stale_incarnation_msgs", 0)
        replaced += sum(1 for v in world.membership.voters if "@" in v)
    assert wipes > 0 and stale > 0 and replaced > 0, (wipes, stale, replaced)


def test_membership_changes_are_driven_under_crashes_and_lossy_disks() -> None:
    changes = 0
    for seed in range(4):
        report = run(SimConfig(seed=seed, steps=FAST_STEPS * 2, reconfig_interval_ms=300.0, fsync_ms_min=20.0,
                               fsync_ms_max=60.0, power_loss_weight=1.0))
        assert report.ok, report.summary()
        changes += report.faults.get("config_changes", 0)
    assert changes >= 4, changes


def test_clock_rates_and_freezes_stay_within_the_drift_budget() -> None:
    world = World(SimConfig(seed=3, max_clock_drift_ms=400))
    rate, freeze = world.rate_max, world.freeze_ms_max
    lease, drift = 1000, 400
    assert all(abs(n.clock.rate_ppm) <= rate * 1e6 + 1e-6 for n in world.nodes.values())
    # A fast follower's refusal window outlasts a slow, frozen leader's lease in real time.
    assert (lease + drift) / (1 + rate) >= lease / (1 - rate) + freeze > lease
    clock = world.nodes["n1"].clock
    before = clock.now_ms()
    clock.freeze()
    world.clock.advance_to(100.0)
    assert clock.now_ms() == before
    clock.thaw()
    world.clock.advance_to(200.0)
    assert clock.now_ms() == pytest.approx(before + 100.0 * (1 + clock.rate_ppm / 1e6))
