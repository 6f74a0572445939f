"""Real cluster node processes on loopback, started one by one so a test can kill -9, SIGSTOP,
restart and inspect each (``quorumdb serve --node-id ...``, the same command ``cluster up`` runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quorumdb.cluster.launcher import (
    NodeSpec,
    add_node_spec,
    admin_token,
    cluster_ready,
    ensure_secret,
    fetch_status,
    plan,
    post_admin,
    read_secret,
    seeds_for,
)
from quorumdb.model.keys import partition_hash
from tests.cluster.workload import client_for

__all__ = ["LocalCluster"]


@dataclass
class LocalCluster:
    root: Path
    nodes: int = 3
    env: dict[str, str] = field(default_factory=dict)
    specs: list[NodeSpec] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)  # SIGSTOPped
    started: set[str] = field(default_factory=set)  # started at least once

    def __post_init__(self) -> None:
        self.secret = ensure_secret(str(self.root))
        self.specs = plan(self.nodes, str(self.root), "127.0.0.1", None)

    def endpoint(self, node: str) -> str:
        return f"http://127.0.0.1:{self.spec(node).api_port}"

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint(s.node_id) for s in self.specs]

    def spec(self, node: str) -> NodeSpec:
        return next(s for s in self.specs if s.node_id == node)

    def start(self, node: str) -> None:
        s = self.spec(node)
        cmd = [os.environ.get("PYTHON", __import__("sys").executable), "-m", "quorumdb", "serve",
               "--node-id", s.node_id, "--host", "127.0.0.1", "--port", str(s.api_port),
               "--peer-port", str(s.peer_port), "--data-dir", s.data_dir,
               "--cluster-secret-file", self.secret, "--log-level", os.environ.get("QUORUMDB_TEST_NODE_LOG", "warning")]
        i = self.specs.index(s)
        seeds = seeds_for(self.specs, i, "127.0.0.1", first_start=node not in self.started)
        if seeds:
            cmd += ["--join", seeds]
        self.started.add(node)
        log = open(Path(s.data_dir + ".log"), "ab")
        self.procs[node] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            env=dict(os.environ, **self.env))

    def start_all(self, timeout_s: float = 60) -> None:
        for s in self.specs:
            self.start(s.node_id)
        self.wait(lambda st: cluster_ready(st, [s.node_id for s in self.specs]), timeout_s, "cluster ready")

    def add_node(self) -> str:
        """Start one more node (``quorumdb cluster add-node``'s plan change); its name."""
        self.specs, spec = add_node_spec(str(self.root), "127.0.0.1")
        self.started.add(spec.node_id)  # a new node joins through its seeds, never bootstraps
        self.start(spec.node_id)
        return spec.node_id

    def remove_node(self, node: str, via: str) -> dict[str, Any]:
        """Ask (through node ``via``) for ``node`` to be removed, as ``cluster remove-node``."""
        secret = read_secret(self.secret)
        return post_admin(self.endpoint(via), "leave", node, admin_token(secret, "leave", node))

    def kill9(self, node: str) -> None:
        p = self.procs.pop(node)
        p.kill()
        p.wait()

    def sigstop(self, node: str) -> None:
        self.procs[node].send_signal(signal.SIGSTOP)
        self.stopped.add(node)

    def sigcont(self, node: str) -> None:
        self.procs[node].send_signal(signal.SIGCONT)
        self.stopped.discard(node)

    def isolate(self, node: str) -> None:
        """Cut ``node`` off from every other node, both ways (needs QUORUMDB_FAULT_INJECTION=1
        in ``env``: each node drops traffic with the peers its data dir's faults.json lists)."""
        others = [s.node_id for s in self.specs if s.node_id != node]
        self._write_cut(node, others)
        for o in others:
            self._write_cut(o, [node])

    def heal(self) -> None:
        for s in self.specs:
            Path(s.data_dir, "faults.json").unlink(missing_ok=True)

    def _write_cut(self, node: str, peers: list[str]) -> None:
        path = Path(self.spec(node).data_dir, "faults.json")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cut": peers}))
        tmp.replace(path)

    def stop_all(self) -> None:
        for node in list(self.stopped):
            self.sigcont(node)
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def status(self, via: str | None = None) -> dict[str, Any]:
        nodes = [via] if via else [n for n in self.procs if n not in self.stopped]
        last: Exception | None = None
        for n in nodes:
            try:
                return fetch_status(self.endpoint(n), timeout_s=3)
            except (OSError, ValueError) as e:
                last = e
        raise RuntimeError(f"no node answered the status: {last}")

    def wait(self, pred: Any, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                st = self.status()
                if pred(st):
                    return st
            except RuntimeError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {st}")

    def create_table(self, name: str) -> None:
        client_for(self.endpoints[0], timeout_s=30).create_table(
            TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        self.wait(lambda st: all(p.get("leader") for p in self.partitions(st, name)) and self.partitions(st, name),
                  60, f"leaders for every partition of {name}")

    @staticmethod
    def partitions(st: dict[str, Any], table: str, index: str = "") -> list[dict[str, Any]]:
        """The partitions of ``table`` (or of its global index ``index``) in a status."""
        return [p for p in st.get("partitions", []) if p.get("table") == table and p.get("index", "") == index]

    def leader_of_key(self, table: str, key: str, timeout_s: float = 30) -> str:
        """The node leading the partition of ``key`` (waiting out an election in progress)."""
        h = int.from_bytes(partition_hash({"S": key}), "big")
        deadline = time.monotonic() + timeout_s
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            st = self.status()
            for p in self.partitions(st, table):
                if p["hash_lo"] <= h <= p["hash_last"] and p.get("leader"):
                    return str(p["leader"])
            time.sleep(0.2)
        raise AssertionError(f"no leader known for {key}: {st}")

    def probe_key(self, table: str, key: str) -> str:
        """A key of the same partition as ``key`` (to probe that partition without touching it)."""
        def part(k: str) -> int:
            h = int.from_bytes(partition_hash({"S": k}), "big")
            st = self.status()
            return next(i for i, p in enumerate(self.partitions(st, table)) if p["hash_lo"] <= h <= p["hash_last"])

        home = part(key)
        return next(f"probe-{key}-{i}" for i in range(10_000) if part(f"probe-{key}-{i}") == home)
