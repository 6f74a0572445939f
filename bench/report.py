"""Turn a benchmark run (raw.json) into RESULTS.md and PNG plots."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

NAMES = {
    "put": "PutItem (~200 B, random keys)",
    "get": "GetItem (random keys, 100k items)",
    "update": "UpdateItem ADD counter",
    "query": "Query returning 10 items",
    "batch": "BatchWriteItem of 25 items",
    "scan": "Scan, one 1 MB page",
    "ycsba": "YCSB A (50% read / 50% update, zipfian)",
    "ycsbb": "YCSB B (95% read / 5% update, zipfian)",
}
PEERS = ["dynalite-mem", "dynalite-disk", "moto"]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def _get(res: dict[str, Any], target: str, w: str, c: str) -> dict[str, Any] | None:
    return res["targets"].get(target, {}).get("workloads", {}).get(w, {}).get(c)


def write_report(res: dict[str, Any], out: Path) -> None:
    m = res["machine"]
    lines = [
        "# QuorumDB benchmark results",
        "",
        f"Machine: {m['cores']} cores, {m['cpu_model'] or 'unknown CPU'}; Python {m['python']}; "
        f"{m['platform']}; run {m['date']}.",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Settings: {res['settings']['duration_s']} s per run, median of {res['settings']['reps']} "
        f"repetitions, {res['settings']['keys']:,} preloaded items, server pinned to core "
        f"{res['settings']['server_core']}, load generator (wrk + bench/lua/dynamo.lua, one thread) "
        f"pinned to core {res['settings']['load_core']}. Every response is checked for HTTP 200 and "
        "a correct body; errors are counted in the tables.",
        "",
        "## Targets",
        "",
    ]
    for name, t in res["targets"].items():
        lines.append(f"- **{name}**: {t['description']}")
    ceil = res.get("generator_ceiling", {})
    if ceil:
        lines += ["", "## Load generator ceiling", "",
                  "wrk with the same Lua script (request building and response checks) against a bare "
                  "uvloop + httptools server that answers a fixed GetItem body: "
                  + ", ".join(f"{_fmt(v['rps'])} req/s at {c} connections" for c, v in ceil.items())
                  + ". Any target figure well below this was not limited by the load generator."]
    lines += ["", "## Ratios (QuorumDB / peer, throughput, same run)", ""]
    header = "| workload | conns | " + " | ".join(f"vs {p}" for p in PEERS + ["redis"]) + " | p99 QuorumDB / dynalite-mem |"
    lines += [header, "|" + "---|" * (len(PEERS) + 4)]
    for w in NAMES:
        for c in ("16", "64"):
            q = _get(res, "quorumdb", w, c)
            if q is None:
                continue
            cells = []
            for p in PEERS + ["redis"]:
                o = _get(res, p, w, c)
                cells.append(f"{q['rps'] / o['rps']:.1f}x" if o and o["rps"] > 0 else "n/a")
            d = _get(res, "dynalite-mem", w, c)
            p99 = f"{q['p99_ms'] / d['p99_ms']:.2f}" if d and d["p99_ms"] > 0 else "n/a"
            lines.append(f"| {w} | {c} | " + " | ".join(cells) + f" | {p99} |")
    lines += ["", "## Targets of the benchmark issue", ""]
    lines += _targets_check(res)
    lines += ["", "## Throughput and latency per workload", ""]
    for w, title in NAMES.items():
        rows = []
        for tname in res["targets"]:
            for c in map(str, res["settings"]["connections"]):
                r = _get(res, tname, w, c)
                if r is None:
                    continue
                rows.append(f"| {tname} | {c} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} | "
                            f"{_fmt(r['p99_ms'])} | {_fmt(r['p999_ms'])} | {r['errors']} |")
        if rows:
            lines += [f"### {title}", "", "| target | conns | req/s | p50 ms | p99 ms | p99.9 ms | errors |",
                      "|---|---|---|---|---|---|---|", *rows, ""]
    if res.get("scaling"):
        lines += ["## Multi-worker scaling (server may use every core; wrk shares them)", "",
                  "| workers | workload | conns | req/s | p99 ms |", "|---|---|---|---|---|"]
        for workers, t in res["scaling"].items():
            for w, per in t["workloads"].items():
                for c, r in per.items():
                    lines.append(f"| {workers} | {w} | {c} | {_fmt(r['rps'])} | {_fmt(r['p99_ms'])} |")
        lines.append("")
    errs = [(t, w, c, r["last_error"]) for t, tv in res["targets"].items()
            for w, per in tv["workloads"].items() for c, r in per.items() if r["errors"]]
    if errs:
        lines += ["## Errors seen", ""]
        lines += [f"- {t} {w} c={c}: {e}" for t, w, c, e in errs]
        lines.append("")
    lines += ["## Plots", "", "![throughput](throughput.png)", "", "![p99 latency](latency.png)", ""]
    (out / "RESULTS.md").write_text("\n".join(lines))
    _plots(res, out)


def _targets_check(res: dict[str, Any]) -> list[str]:
    out = ["| check | conns | result |", "|---|---|---|"]

    def ratio(w: str, c: str, peer: str) -> float | None:
        q, o = _get(res, "quorumdb", w, c), _get(res, peer, w, c)
        return q["rps"] / o["rps"] if q and o and o["rps"] > 0 else None

    for c in ("16", "64"):
        for w in ("get", "put", "query"):
            for peer, goal in (("dynalite-mem", 3.0), ("moto", 30.0)):
                r = ratio(w, c, peer)
                if r is not None:
                    out.append(f"| {w} >= {goal:g}x {peer} | {c} | {r:.1f}x {'met' if r >= goal else 'MISSED'} |")
        for w in ("get", "put"):
            r = ratio(w, c, "redis")
            if r is not None:
                out.append(f"| {w} within 4x of redis | {c} | {1 / r:.1f}x slower {'met' if r >= 0.25 else 'MISSED'} |")
        for w in NAMES:
            q, d = _get(res, "quorumdb", w, c), _get(res, "dynalite-mem", w, c)
            if q and d:
                ok = q["p99_ms"] <= d["p99_ms"]
                out.append(f"| {w} p99 <= dynalite-mem | {c} | {q['p99_ms']:.2f} vs {d['p99_ms']:.2f} ms "
                           f"{'met' if ok else 'MISSED'} |")
    return out


def _plots(res: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for fname, key, ylabel, logy in (("throughput.png", "rps", "requests / s", True),
                                     ("latency.png", "p99_ms", "p99 latency (ms)", True)):
        ws = [w for w in NAMES if any(_get(res, t, w, "16") for t in res["targets"])]
        cols = 4
        rows = max(1, math.ceil(len(ws) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        for ax, w in zip(axes.flat, ws, strict=False):
            for t in res["targets"]:
                pts = [(int(c), r[key]) for c, r in res["targets"][t]["workloads"].get(w, {}).items()
                       if r[key] == r[key] and r[key] > 0]
                if pts:
                    pts.sort()
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=t)
            ax.set_title(NAMES[w], fontsize=8)
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("log")
            ax.set_xlabel("connections", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(ws):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    d = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    write_report(json.loads((d / "raw.json").read_text()), d)
