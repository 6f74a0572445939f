"""``quorumdb cluster up``: a local N-node cluster on loopback, in the foreground.

Generates the cluster secret into the data directory (once), starts one ``quorumdb serve
--node-id nI`` process per node (node 1 bootstraps, the others join it), waits until the meta
group has a leader and every node is a member, prints the endpoints, and stops every node on
Ctrl-C/SIGTERM (or when one of them dies). Started again on the same directory it restarts the
same cluster (same ids, same ports, same data).

Also the client side of ``quorumdb cluster status``: fetch ``GET /cluster/status``.
This module starts processes and speaks HTTP; it never touches a node's storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from quorumdb.supervise import Supervisor

__all__ = ["NodeSpec", "plan", "ensure_secret", "fetch_status", "cluster_ready", "up"]

SECRET_FILE = "cluster.secret"
PLAN_FILE = "cluster.json"
PEER_PORT_OFFSET = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSpec:
    node_id: str
    api_port: int
    peer_port: int
    data_dir: str


def _free_ports(host: str, n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def plan(n: int, data_dir: str, host: str, base_port: int | None) -> list[NodeSpec]:
    """The nodes of the cluster in ``data_dir``: the saved plan if the cluster was started
    before (same ports), else API ports base_port.. and peer ports base_port+100.. (free ports
    when ``base_port`` is None)."""
    path = os.path.join(data_dir, PLAN_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = [NodeSpec(**spec) for spec in json.load(f)]
        if len(saved) >= n:
            return saved  # the cluster as it is now (nodes may have been added since)
        raise ValueError(f"{data_dir} holds a cluster of {len(saved)} nodes, not {n}: "
                         "add nodes with `quorumdb cluster add-node`")
    if base_port is None:
        ports = _free_ports(host, 2 * n)
        api, peer = ports[:n], ports[n:]
    else:
        api = [base_port + i for i in range(n)]
        peer = [base_port + PEER_PORT_OFFSET + i for i in range(n)]
    specs = [NodeSpec(node_id=f"n{i + 1}", api_port=api[i], peer_port=peer[i],
                      data_dir=os.path.join(data_dir, f"n{i + 1}")) for i in range(n)]
    os.makedirs(data_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump([_spec_dict(s) for s in specs], f, indent=1)
    return specs


def save_plan(data_dir: str, specs: list[NodeSpec]) -> None:
    path = os.path.join(data_dir, PLAN_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump([_spec_dict(s) for s in specs], f, indent=1)
    os.replace(tmp, path)


def add_node_spec(data_dir: str, host: str) -> tuple[list[NodeSpec], NodeSpec]:
    """Add the next node (free ports) to the plan of the cluster in ``data_dir``."""
    if not os.path.exists(os.path.join(data_dir, PLAN_FILE)):
        raise ValueError(f"no cluster in {data_dir} (start one with `quorumdb cluster up`)")
    specs = plan(0, data_dir, host, None)
    taken = {s.node_id for s in specs}
    i = next(i for i in itertools.count(1) if f"n{i}" not in taken)
    api, peer = _free_ports(host, 2)
    spec = NodeSpec(node_id=f"n{i}", api_port=api, peer_port=peer, data_dir=os.path.join(data_dir, f"n{i}"))
    specs = [*specs, spec]
    save_plan(data_dir, specs)
    return specs, spec


def drop_node_spec(data_dir: str, node_id: str) -> None:
    """Forget a removed node in the plan (its data directory is kept)."""
    specs = plan(0, data_dir, "127.0.0.1", None)
    save_plan(data_dir, [s for s in specs if s.node_id != node_id])


def add_node(data_dir: str, *, host: str = "127.0.0.1", log_level: str = "warning", echo: Any = print) -> int:
    """Start one more node of the cluster in ``data_dir`` in the foreground: it joins the
    cluster, and the metadata service moves replicas to it."""
    data_dir = os.path.abspath(data_dir)
    specs, spec = add_node_spec(data_dir, host)
    secret_file = ensure_secret(data_dir)
    with Supervisor() as sup:
        proc = sup.start(_command(spec, host, secret_file, seeds_for(specs, specs.index(spec), host, False), log_level))
        assert proc.stdout is not None
        if not proc.stdout.readline():
            echo(f"node {spec.node_id} failed to start (exit status {proc.wait()})")
            return 1
        echo(f"node {spec.node_id} joined: http://{host}:{spec.api_port}  (peer {host}:{spec.peer_port}); "
             f"replicas move to it in the background (`quorumdb cluster status`). Ctrl-C stops it.")
        clean = sup.wait(lambda code: echo(f"node {spec.node_id} exited (status {code})"))
        return 0 if clean else 1


def _spec_dict(s: NodeSpec) -> dict[str, Any]:
    return {"node_id": s.node_id, "api_port": s.api_port, "peer_port": s.peer_port, "data_dir": s.data_dir}


def admin_token(secret: bytes, action: str, node_id: str) -> str:
    """What an operator command sent to a node's HTTP port must carry to be obeyed: only who
    holds the cluster secret can ask a node to be removed."""
    return hmac.new(secret, f"{action}:{node_id}".encode(), hashlib.sha256).hexdigest()


def read_secret(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read().strip()


def ensure_secret(data_dir: str) -> str:
    """The path of the cluster's shared secret, generated (owner-only) on first use."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, SECRET_FILE)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path


def post_admin(endpoint: str, action: str, node_id: str, token: str, *, timeout_s: float = 15.0) -> dict[str, Any]:
    """Send an operator command (``/cluster/<action>``) to a node; its JSON answer."""
    url = f"{endpoint}/cluster/{action}?{urllib.parse.urlencode({'node': node_id, 'token': token})}"
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            data: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        data = json.loads(exc.read() or b"{}")
        data.setdefault("ok", False)
    return data


def fetch_status(endpoint: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
    """``GET {endpoint}/cluster/status`` as a dict (OSError / ValueError when unreachable)."""
    with urllib.request.urlopen(endpoint.rstrip("/") + "/cluster/status", timeout=timeout_s) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def cluster_ready(status: dict[str, Any], node_ids: list[str]) -> bool:
    """The meta group has a leader and every node is an active member and up."""
    members = {n["node"]: n for n in status.get("nodes", [])}
    return bool(status.get("meta", {}).get("leader")) and all(
        n in members and members[n]["state"] == "active" and members[n]["up"] for n in node_ids)


def seeds_for(specs: list[NodeSpec], i: int, host: str, first_start: bool) -> str | None:
    """``--join`` for node ``i``: every other node, except for the first node on the cluster's
    first start (it bootstraps the cluster). A node restarted over a lost data directory then
    rejoins the cluster it was in (with a new life) instead of bootstrapping a new one."""
    if i == 0 and first_start:
        return None
    return ",".join(f"{host}:{s.peer_port}" for j, s in enumerate(specs) if j != i)


def _command(spec: NodeSpec, host: str, secret_file: str, join: str | None, log_level: str) -> list[str]:
    cmd = [sys.executable, "-m", "quorumdb", "serve", "--node-id", spec.node_id, "--host", host,
           "--port", str(spec.api_port), "--peer-port", str(spec.peer_port), "--data-dir", spec.data_dir,
           "--cluster-secret-file", secret_file, "--log-level", log_level]
    if join:
        cmd += ["--join", join]
    return cmd


def up(n: int, data_dir: str, *, host: str = "127.0.0.1", base_port: int | None = None,
       log_level: str = "warning", ready_timeout_s: float = 60.0, echo: Any = print) -> int:
    """Run the cluster in the foreground until SIGINT/SIGTERM; 0 on a clean stop."""
    data_dir = os.path.abspath(data_dir)
    secret_file = ensure_secret(data_dir)
    first_start = not os.path.exists(os.path.join(data_dir, PLAN_FILE))
    specs = plan(n, data_dir, host, base_port)
    with Supervisor() as sup:
        for i, spec in enumerate(specs):
            sup.start(_command(spec, host, secret_file, seeds_for(specs, i, host, first_start), log_level))
        for spec, p in zip(specs, sup.procs, strict=True):
            assert p.stdout is not None
            if not p.stdout.readline():
                echo(f"node {spec.node_id} failed to start (exit status {p.wait()})")
                sup.stop_all()
                return 1
        endpoint = f"http://{host}:{specs[0].api_port}"
        deadline = time.monotonic() + ready_timeout_s
        status: dict[str, Any] = {}
        while not sup.stopping:
            with contextlib.suppress(OSError, ValueError):
                status = fetch_status(endpoint, timeout_s=2.0)
                if cluster_ready(status, [s.node_id for s in specs]):
                    break
            if time.monotonic() > deadline or any(p.poll() is not None for p in sup.procs):
                echo("the cluster did not come up in time; stopping it")
                sup.stop_all()
                return 1
            time.sleep(0.2)
        if not sup.stopping:
            echo(f"QuorumDB cluster of {len(specs)} nodes is up (data: {data_dir}, meta leader: {status['meta']['leader']})")
            for spec in specs:
                echo(f"  {spec.node_id}  http://{host}:{spec.api_port}  (peer {host}:{spec.peer_port})")
            echo(f"status: quorumdb cluster status --endpoint {endpoint}    stop: Ctrl-C")
        clean = sup.wait(lambda code: echo(f"a node exited on its own (status {code}); stopping the cluster"))
        return 0 if clean else 1
