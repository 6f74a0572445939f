"""Cluster nodes as real processes on loopback, driven as a user would drive them:
``quorumdb serve --node-id`` (bootstrap, join, kill -9 of the meta leader) and ``quorumdb
cluster up`` / ``quorumdb cluster status``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.helpers import free_ports

QUORUMDB = [sys.executable, "-m", "quorumdb"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1")


def status(api_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/cluster/status", timeout=3) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def wait_status(api_port: int, pred: Any, timeout_s: float = 45.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = status(api_port)
            if pred(last):
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"cluster status never matched; last: {last}")


def all_up(st: dict[str, Any], nodes: list[str]) -> bool:
    got = {n["node"]: n["up"] for n in st["nodes"]}
    return st["meta"]["leader"] is not None and all(got.get(n) for n in nodes) and len(st["meta"]["voters"]) == len(nodes)


class Nodes:
    def __init__(self, root: Path, names: list[str]) -> None:
        ports = free_ports(2 * len(names))
        self.api = dict(zip(names, ports[: len(names)], strict=True))
        self.peer = dict(zip(names, ports[len(names):], strict=True))
        self.root = root
        self.secret = root / "secret"
        self.secret.write_text("t0p-s3cret\n")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, join: str | None) -> None:
        cmd = QUORUMDB + ["serve", "--node-id", name, "--port", str(self.api[name]), "--peer-port",
                          str(self.peer[name]), "--data-dir", str(self.root / name), "--cluster-secret-file",
                          str(self.secret)]
        if join is not None:
            cmd += ["--join", join]
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=ENV)
        assert p.stdout is not None
        line = p.stdout.readline().decode()
        assert f"QuorumDB node {name} listening on http://127.0.0.1:{self.api[name]}" in line, line

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


def test_three_nodes_join_elect_and_survive_a_kill_9_of_the_meta_leader(tmp_path: Path) -> None:
    names = ["n1", "n2", "n3"]
    c = Nodes(tmp_path, names)
    try:
        c.start("n1", None)
        seed = f"127.0.0.1:{c.peer['n1']}"
        c.start("n2", seed)
        c.start("n3", seed)
        st = wait_status(c.api["n2"], lambda s: all_up(s, names))
        leader = st["meta"]["leader"]
        assert sorted(st["meta"]["voters"]) == names
        assert {n["node"]: n["peer"] for n in st["nodes"]} == {n: ["127.0.0.1", c.peer[n]] for n in names}
        assert [n["meta"] for n in st["nodes"] if n["node"] == leader] == ["leader"]

        # Every node serves the DynamoDB API: a table created on one, written on another, read
        # consistently on the third.
        def client(name: str) -> Any:
            return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{c.api[name]}", region_name="us-east-1",
                                aws_access_key_id="x", aws_secret_access_key="x",
                                config=Config(retries={"max_attempts": 0}, read_timeout=30))

        client("n3").create_table(TableName="Tbl", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                  BillingMode="PAY_PER_REQUEST")
        client("n1").put_item(TableName="Tbl", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        got = client("n2").get_item(TableName="Tbl", Key={"pk": {"S": "a"}}, ConsistentRead=True)
        assert got["Item"] == {"pk": {"S": "a"}, "v": {"N": "1"}}
        with pytest.raises(ClientError) as err:
            client("n2").get_item(TableName="nope", Key={"pk": {"S": "a"}})
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        st = wait_status(c.api["n1"], lambda s: bool(s["partitions"]) and all(p["leader"] for p in s["partitions"]))
        assert {p["table"] for p in st["partitions"]} == {"Tbl"}

        c.procs[leader].send_signal(signal.SIGKILL)
        c.procs[leader].wait()
        survivor = next(n for n in names if n != leader)
        st = wait_status(c.api[survivor], lambda s: s["meta"]["leader"] not in (None, leader)
                         and not next(n for n in s["nodes"] if n["node"] == leader)["up"])
        assert st["meta"]["leader"] in names and st["meta"]["leader"] != leader
        ups = {n["node"]: n["up"] for n in st["nodes"]}
        assert ups == {n: n != leader for n in names}

        # The killed node comes back (same data dir), rejoins with a new incarnation.
        c.start(leader, f"127.0.0.1:{c.peer[survivor]}" if leader == "n1" else f"127.0.0.1:{c.peer['n1']}")
        st = wait_status(c.api[survivor], lambda s: all_up(s, names)
                         and next(n for n in s["nodes"] if n["node"] == leader)["incarnation"] == 2)
    finally:
        c.stop_all()
    assert all(p.returncode == 0 for p in c.procs.values()), {n: p.returncode for n, p in c.procs.items()}


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_up_and_cluster_status_as_a_new_user_runs_them(tmp_path: Path) -> None:
    data = tmp_path / "cluster"
    up = subprocess.Popen(QUORUMDB + ["cluster", "up", "--nodes", "3", "--data-dir", str(data)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    try:
        assert up.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line, f"cluster up ended early: {up.wait()} {up.stderr.read() if up.stderr else ''}"
            lines.append(line)
            if line.startswith("status:"):
                break
        out = "".join(lines)
        assert "QuorumDB cluster of 3 nodes is up" in out
        endpoints = [ln.split()[1] for ln in lines if ln.strip().startswith("n") and "http://" in ln]
        assert len(endpoints) == 3
        assert (data / "cluster.secret").stat().st_mode & 0o077 == 0, "the secret is readable by its owner only"

        res = subprocess.run(QUORUMDB + ["cluster", "status", "--endpoint", endpoints[1]], capture_output=True,
                             text=True, env=dict(ENV, COLUMNS="200"), timeout=30)
        assert res.returncode == 0, res.stderr
        assert "Nodes" in res.stdout and "meta leader n" in res.stdout
        for n in ("n1", "n2", "n3"):
            assert n in res.stdout
        assert res.stdout.count(" up ") >= 3 and "down" not in res.stdout
        res = subprocess.run(QUORUMDB + ["cluster", "status", "--endpoint", endpoints[0], "--json"],
                             capture_output=True, text=True, env=ENV, timeout=30)
        st = json.loads(res.stdout)
        assert sorted(n["node"] for n in st["nodes"]) == ["n1", "n2", "n3"] and st["meta"]["leader"]

        bad = subprocess.run(QUORUMDB + ["cluster", "status", "--endpoint", f"http://127.0.0.1:{free_ports(1)[0]}"],
                             capture_output=True, text=True, env=ENV, timeout=30)
        assert bad.returncode != 0 and "cannot read the cluster status" in bad.stderr
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=30)
    assert code == 0
    ports = [int(e.rsplit(":", 1)[1]) for e in endpoints]
    assert not any(_port_open(p) for p in ports), "every node stopped with the launcher"
