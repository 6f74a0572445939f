"""`make bench`: QuorumDB against the servers users pick instead, on this machine, in one run.

Every target is installed and started here on loopback, pinned to core 0 while the load
generator (wrk with bench/lua/dynamo.lua, which checks every response) is pinned to core 1.
Each figure is the median of ``--reps`` repetitions. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import client
from bench.targets import (
    ROOT,
    Target,
    dynalite_target,
    ensure_tools,
    free_port,
    moto_target,
    pin,
    quorumdb_target,
    redis_target,
    wait_port,
)

LUA = ROOT / "bench" / "lua" / "dynamo.lua"
RESULTS = ROOT / "bench" / "results"
WORKLOADS = ["put", "get", "update", "query", "batch", "ycsba", "ycsbb", "scan"]
CONNECTIONS = [1, 16, 64]


def wrk(url: str, workload: str, conns: int, duration_s: float, core: int | None,
        keys: int, qkeys: int, seed: int) -> dict[str, Any]:
    argv = pin(core) + ["wrk", "-t1", f"-c{conns}", f"-d{int(duration_s)}s", "--timeout", "10s",
                        "-s", str(LUA), url, "--", f"workload={workload}", f"keys={keys}",
                        f"qkeys={qkeys}", f"seed={seed}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    m = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk produced no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(m.group(1))


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the repetitions; errors are summed, never dropped."""
    out: dict[str, Any] = {}
    for k in ("rps", "p50_ms", "p99_ms", "p999_ms"):
        out[k] = statistics.median(r[k] for r in runs)
    for k in ("requests", "errors", "bad_status", "bad_body", "socket_errors", "timeouts"):
        out[k] = sum(r[k] for r in runs)
    out["reps"] = len(runs)
    out["rps_each"] = [round(r["rps"], 1) for r in runs]
    out["last_error"] = next((r["last_error"] for r in runs if r["last_error"]), "")
    return out


def run_dynamo_target(t: Target, args: argparse.Namespace, server_core: int | None,
                      load_core: int | None, workloads: list[str], conns: list[int]) -> dict[str, Any]:
    print(f"== {t.name}: {t.description}", flush=True)
    t.start(server_core)
    try:
        client.create_tables(t.port)
        secs = client.preload(t.port, args.keys, args.qkeys)
        print(f"   preloaded {args.keys} + {args.qkeys * 10} items in {secs:.1f}s", flush=True)
        res: dict[str, Any] = {"description": t.description, "workloads": {}}
        for w in workloads:
            # Warm-up (not recorded): JIT-free, but caches, connections and allocators settle.
            wrk(t.url, w, 16, min(2, args.duration), load_core, args.keys, args.qkeys, 99)
            res["workloads"][w] = {}
            for c in conns:
                runs = [wrk(t.url, w, c, args.duration, load_core, args.keys, args.qkeys, rep + 1)
                        for rep in range(args.reps)]
                m = median_run(runs)
                res["workloads"][w][str(c)] = m
                print(f"   {w:7s} c={c:<3d} {m['rps']:>10.1f} req/s  p50 {m['p50_ms']:.2f} ms  "
                      f"p99 {m['p99_ms']:.2f} ms  p99.9 {m['p999_ms']:.2f} ms  errors {m['errors']}",
                      flush=True)
        return res
    finally:
        t.stop()


def run_redis(args: argparse.Namespace, server_core: int | None, load_core: int | None,
              conns: list[int]) -> dict[str, Any]:
    t = redis_target()
    print(f"== redis: {t.description}", flush=True)
    t.start(server_core)
    try:
        base = pin(load_core) + ["redis-benchmark", "-p", str(t.port), "-d", "200",
                                 "-r", str(args.keys), "--csv"]
        subprocess.run(base + ["-c", "16", "-n", str(args.keys * 2), "-t", "set"],
                       check=True, capture_output=True)
        res: dict[str, Any] = {"description": t.description, "workloads": {"get": {}, "put": {}}}
        for c in conns:
            runs: dict[str, list[dict[str, Any]]] = {"get": [], "put": []}
            for _ in range(args.reps):
                n = max(20000, int(args.duration * 60000))
                out = subprocess.run(base + ["-c", str(c), "-n", str(n), "-t", "get,set"],
                                     check=True, capture_output=True, text=True).stdout
                for line in out.splitlines():
                    cells = [x.strip('"') for x in line.split(",")]
                    if cells[0] in ("GET", "SET"):
                        runs["get" if cells[0] == "GET" else "put"].append({
                            "rps": float(cells[1]), "p50_ms": float(cells[4]),
                            "p99_ms": float(cells[6]), "p999_ms": float("nan"), "requests": n,
                            "errors": 0, "bad_status": 0, "bad_body": 0, "socket_errors": 0,
                            "timeouts": 0, "last_error": ""})
            for w in ("get", "put"):
                m = median_run(runs[w])
                res["workloads"][w][str(c)] = m
                print(f"   {w:7s} c={c:<3d} {m['rps']:>10.1f} req/s  p50 {m['p50_ms']:.2f} ms  "
                      f"p99 {m['p99_ms']:.2f} ms", flush=True)
        return res
    finally:
        t.stop()


def generator_ceiling(args: argparse.Namespace, server_core: int | None,
                      load_core: int | None) -> dict[str, Any]:
    """How fast the load generator itself goes: wrk + the same Lua script against a bare
    uvloop/httptools server answering a fixed, valid GetItem body."""
    port = free_port()
    proc = subprocess.Popen(pin(server_core) + [sys.executable, "-m", "bench.ceiling", str(port)],
                            start_new_session=True)
    try:
        wait_port(port, proc)
        out = {}
        for c in (16, 64):
            runs = [wrk(f"http://127.0.0.1:{port}", "get", c, args.duration, load_core,
                        args.keys, args.qkeys, rep + 1) for rep in range(args.reps)]
            out[str(c)] = median_run(runs)
            print(f"   generator ceiling c={c}: {out[str(c)]['rps']:.0f} req/s", flush=True)
        return out
    finally:
        proc.terminate()
        proc.wait()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0],
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per figure (median)")
    ap.add_argument("--keys", type=int, default=100_000, help="items preloaded into bench_kv")
    ap.add_argument("--qkeys", type=int, default=1000, help="partitions of 10 items in bench_q")
    ap.add_argument("--targets", default="quorumdb,dynalite-mem,dynalite-disk,moto,redis")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--connections", default=",".join(map(str, CONNECTIONS)))
    ap.add_argument("--no-scaling", action="store_true", help="skip the multi-worker run")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    ensure_tools()
    ncores = os.cpu_count() or 1
    server_core, load_core = (0, 1) if ncores >= 2 else (None, None)
    targets = args.targets.split(",")
    workloads = args.workloads.split(",")
    conns = [int(c) for c in args.connections.split(",")]
    result: dict[str, Any] = {
        "machine": machine(),
        "command": "make bench  (python -m bench " + " ".join(map(shlex.quote, sys.argv[1:])) + ")",
        "settings": {"duration_s": args.duration, "reps": args.reps, "keys": args.keys,
                     "query_partitions": args.qkeys, "connections": conns,
                     "server_core": server_core, "load_core": load_core},
        "targets": {},
    }
    print(json.dumps(result["machine"]), flush=True)
    result["generator_ceiling"] = generator_ceiling(args, server_core, load_core)
    makers = {"quorumdb": quorumdb_target, "dynalite-mem": lambda: dynalite_target(False),
              "dynalite-disk": lambda: dynalite_target(True), "moto": moto_target}
    for name in targets:
        if name == "redis":
            result["targets"]["redis"] = run_redis(args, server_core, load_core, conns)
        else:
            t = makers[name]()
            result["targets"][name] = run_dynamo_target(t, args, server_core, load_core,
                                                        workloads, conns)
    if not args.no_scaling and ncores >= 2 and "quorumdb" in targets:
        # Multi-worker scaling: the server may use every core (the load generator shares them).
        scaling: dict[str, Any] = {}
        for workers in (1, ncores):
            t = quorumdb_target(workers, name=f"quorumdb-w{workers}")
            scaling[str(workers)] = run_dynamo_target(t, args, None, None, ["get", "put", "query"], [64])
        result["scaling"] = scaling
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw.json").write_text(json.dumps(result, indent=1))
    from bench.report import write_report
    write_report(result, out)
    print(f"results in {out}/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
