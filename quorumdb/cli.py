"""The ``quorumdb`` command line: ``quorumdb serve`` starts a single-node server, or with
``--node-id`` a cluster node; ``quorumdb cluster up`` / ``status`` run and inspect a local
cluster.

It only parses options and hands them to ``quorumdb.api.server.run``,
``quorumdb.cluster.serve.run_node`` or ``quorumdb.cluster.launcher``; it never opens storage
or sockets itself.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from quorumdb.api.auth import Verifier

__all__ = ["main", "serve"]

LOG_LEVELS = ["debug", "info", "warning", "error"]
STATUS_DELAY_ENV = "QUORUMDB_TABLE_STATUS_DELAY_MS"  # quorumdb.api.lifecycle reads it


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="quorumdb")
def main() -> None:
    """QuorumDB: a durable, DynamoDB-compatible database."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0 picks a free one)."
)
@click.option(
    "--data-dir",
    default="./quorumdb-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of the LMDB data files.",
)
@click.option("--in-memory", is_flag=True, help="Keep all data in memory (lost on exit).")
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False)
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 256),
    help="Worker processes sharing the port and the data directory "
    "[default: one per core; 1 with --in-memory].",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Check AWS Signature V4 on every request, as DynamoDB does, against the keys of "
    "--credentials and $QUORUMDB_CREDENTIALS (\"AKID:SECRET,...\"). Default: any credentials.",
)
@click.option(
    "--credentials",
    "credentials_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="File of access keys for --auth: AKID:SECRET[:TOKEN] entries, or an AWS credentials file.",
)
@click.option(
    "--table-status-delay-ms",
    default=None,
    type=click.IntRange(0, 3_600_000),
    help="How long tables and indexes report CREATING / UPDATING / DELETING (as DynamoDB does "
    "while it works) [default: 0, or $QUORUMDB_TABLE_STATUS_DELAY_MS].",
)
@click.option("--reuse-port", is_flag=True, hidden=True, help="Internal: a worker of --workers.")
@click.option("--node-id", default=None, help="Run as this node of a cluster (with --peer-port).")
@click.option(
    "--peer-port", default=None, type=click.IntRange(0, 65535), help="Cluster: port for inter-node traffic."
)
@click.option("--join", "join", default="", metavar="HOST:P,...", help="Cluster: peer addresses of running nodes.")
@click.option(
    "--cluster-secret-file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Cluster: file holding the secret shared by all nodes (authenticates inter-node traffic).",
)
def serve(
    host: str,
    port: int,
    data_dir: str,
    in_memory: bool,
    log_level: str,
    workers: int | None,
    table_status_delay_ms: int | None,
    auth: bool,
    credentials_file: str | None,
    reuse_port: bool,
    node_id: str | None,
    peer_port: int | None,
    join: str,
    cluster_secret_file: str | None,
) -> None:
    """Serve the DynamoDB API on HTTP until SIGINT/SIGTERM."""
    if node_id is not None or peer_port is not None or join or cluster_secret_file:
        _serve_cluster_node(host, port, data_dir, in_memory, log_level, workers, node_id, peer_port, join,
                            cluster_secret_file)
        return
    from quorumdb.api import early_stop

    early_stop.install()  # (again) for the ``quorumdb`` script, which skips ``__main__``
    if table_status_delay_ms is not None:
        # Read by the handlers; worker processes inherit it with the environment.
        os.environ[STATUS_DELAY_ENV] = str(table_status_delay_ms)
    if workers is None:
        workers = 1 if in_memory or reuse_port else (os.cpu_count() or 1)
    if workers > 1 and in_memory:
        raise click.UsageError("--workers needs a data directory: in-memory data cannot be shared")
    verifier = _verifier(auth, credentials_file)
    if reuse_port:
        _die_with_supervisor()
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from quorumdb.api.server import run, run_workers

    try:
        if workers > 1:
            extra = ["--auth"] if auth else []
            if credentials_file is not None:
                extra += ["--credentials", os.path.abspath(credentials_file)]
            code = run_workers(host, port, data_dir, workers, log_level.lower(), extra)
        else:
            code = run(host, port, data_dir, in_memory, reuse_port=reuse_port, verifier=verifier)
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


def _addresses(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.BadParameter(f"{part!r} is not HOST:PORT", param_hint="--join")
        out.append((host.strip("[]"), int(port)))
    return tuple(out)


def _serve_cluster_node(
    host: str,
    port: int,
    data_dir: str,
    in_memory: bool,
    log_level: str,
    workers: int | None,
    node_id: str | None,
    peer_port: int | None,
    join: str,
    secret_file: str | None,
) -> None:
    if node_id is None or peer_port is None:
        raise click.UsageError("a cluster node needs both --node-id and --peer-port")
    if in_memory or (workers or 1) > 1:
        raise click.UsageError("a cluster node runs as one process with a data directory "
                               "(no --in-memory, no --workers)")
    secret = b""
    if secret_file is not None:
        with open(secret_file, "rb") as f:
            secret = f.read().strip()
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format=f"%(asctime)s {node_id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from quorumdb.cluster.node import DEAD_AFTER_ENV, ClusterConfig
    from quorumdb.cluster.serve import free_port, run_node

    api_port = port or free_port(host)
    config = ClusterConfig(
        node_id=node_id, peer_address=(host, peer_port), api_address=(host, api_port),
        data_dir=os.path.abspath(data_dir), join=_addresses(join), secret=secret,
        dead_after_ms=int(1000 * float(os.environ.get(DEAD_AFTER_ENV, "600") or 600)),
    )
    try:
        code = run_node(config, host)
    except (OSError, ValueError) as exc:  # a port is taken, the data dir belongs to another node
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.group()
def cluster() -> None:
    """Run and inspect a QuorumDB cluster."""


@cluster.command("up")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 64), help="How many nodes.")
@click.option("--data-dir", default="./cluster", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--base-port",
    default=None,
    type=click.IntRange(1, 65000),
    help="API ports BASE.., peer ports BASE+100.. [default: free ports]",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False)
)
def cluster_up(nodes: int, data_dir: str, base_port: int | None, host: str, log_level: str) -> None:
    """Start a local cluster in the foreground (Ctrl-C stops every node)."""
    from quorumdb.cluster.launcher import up

    try:
        code = up(nodes, data_dir, host=host, base_port=base_port, log_level=log_level.lower(),
                  echo=lambda s: click.echo(s))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@cluster.command("add-node")
@click.option("--data-dir", default="./cluster", show_default=True, type=click.Path(file_okay=False),
              help="The directory of a cluster started with `cluster up`.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False)
)
def cluster_add_node(data_dir: str, host: str, log_level: str) -> None:
    """Start one more node (in the foreground); replicas move to it in the background."""
    from quorumdb.cluster.launcher import add_node

    try:
        code = add_node(data_dir, host=host, log_level=log_level.lower(), echo=lambda s: click.echo(s))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@cluster.command("remove-node")
@click.argument("node")
@click.option("--data-dir", default="./cluster", show_default=True, type=click.Path(file_okay=False),
              help="The cluster's directory (its secret authorizes the request; the node leaves its plan).")
@click.option("--endpoint", default=None, help="Any other node's HTTP endpoint [default: from the plan].")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True, help="Seconds to wait for the hand-off.")
def cluster_remove_node(node: str, data_dir: str, endpoint: str | None, timeout_s: float) -> None:
    """Remove NODE: its replicas move to the other nodes (one at a time), then it holds
    nothing and can be stopped. Works for a node that is down too (its replicas are re-created
    from the surviving ones)."""
    import time

    from quorumdb.cluster.launcher import (
        SECRET_FILE,
        admin_token,
        drop_node_spec,
        fetch_status,
        plan,
        post_admin,
        read_secret,
    )

    try:
        secret = read_secret(os.path.join(data_dir, SECRET_FILE))
        specs = plan(0, data_dir, "127.0.0.1", None)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"no cluster in {data_dir}: {exc}") from exc
    endpoints = [endpoint] if endpoint else [f"http://127.0.0.1:{s.api_port}" for s in specs if s.node_id != node]
    answer: dict[str, Any] | None = None
    for e in endpoints:
        try:
            answer = post_admin(e, "leave", node, admin_token(secret, "leave", node))
            endpoint = e
            break
        except OSError:
            continue
    if answer is None or endpoint is None:
        raise click.ClickException("no node of the cluster answered")
    if not answer.get("ok"):
        raise click.ClickException(f"refused: {answer.get('error')}")
    from rich.progress import Progress

    deadline = time.monotonic() + timeout_s
    with Progress() as bar:
        task = bar.add_task(f"moving {node}'s replicas away", total=None)
        while True:
            try:
                status = fetch_status(endpoint)
            except (OSError, ValueError):
                time.sleep(0.5)
                continue
            held = sum(1 for p in status["partitions"] if node in p["replicas"])
            voter = node in status["meta"]["voters"]
            total = max(held, int(bar.tasks[0].total or 0))
            bar.update(task, total=total, completed=total - held)
            if held == 0 and not voter:
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"{node} still holds {held} replicas after {timeout_s:.0f} s")
            time.sleep(0.5)
    drop_node_spec(data_dir, node)
    click.echo(f"{node} holds no replica and no metadata vote: it can be stopped now.")


@cluster.command("status")
@click.option("--endpoint", default="http://127.0.0.1:8000", show_default=True, help="Any node's HTTP endpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status JSON.")
def cluster_status(endpoint: str, as_json: bool) -> None:
    """Print the cluster's nodes and partitions."""
    import json

    from quorumdb.cluster.launcher import fetch_status

    try:
        status = fetch_status(endpoint)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the cluster status from {endpoint}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(status, indent=1))
        return
    _print_status(status)


def _print_status(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)  # piped or captured: do not cut addresses at 80 columns
    meta = status.get("meta", {})
    console.print(f"[bold]Cluster[/bold] (as seen by {status.get('node')}): metadata epoch {status.get('epoch')}, "
                  f"meta leader {meta.get('leader') or '[red]none[/red]'}, voters {', '.join(meta.get('voters', []))}")
    nodes = Table(title="Nodes")
    for col in ("node", "up", "state", "peer", "api", "meta", "partitions", "leaders"):
        nodes.add_column(col)
    for n in status.get("nodes", []):
        name = n["node"] if n.get("life", 1) == 1 else f"{n['node']}@{n['life']}"
        nodes.add_row(name, "[green]up[/green]" if n["up"] else "[red]down[/red]", n["state"],
                      ":".join(map(str, n["peer"])), ":".join(map(str, n["api"])), n["meta"],
                      str(n["partitions"]), str(n["leaders"]))
    console.print(nodes)
    parts = Table(title="Partitions")
    for col in ("table", "group", "hash range", "replicas", "leader", "commit", "lag"):
        parts.add_column(col)
    for p in status.get("partitions", []):
        lag = ", ".join(f"{r}:{v}" for r, v in p["lag"].items() if v) or "0"
        name = p["table"] + (f"/{p['index']}" if p.get("index") else "")  # a global index's partitions
        parts.add_row(name, p["group"], f"{p['hash_lo']:016x}-{p['hash_last']:016x}",
                      ", ".join(p.get("voters") or p["replicas"]),
                      p["leader"] or "[red]none[/red]", str(p["commit"]), lag)
    console.print(parts if status.get("partitions") else "No partitions (no tables yet).")
    moves = [p for p in status.get("partitions", []) if p.get("moving")]
    if moves:
        console.print("[bold]Replica moves in progress[/bold]")
        for p in moves:
            m = p["moving"]
            done = int(30 * m["progress"])
            console.print(f"  {p['table']} {p['group']}: {m['from'] or '(new)'} -> {m['to']}  "
                          f"[{'#' * done}{'.' * (30 - done)}] {100 * m['progress']:.0f}%")
def _verifier(auth: bool, credentials_file: str | None) -> Verifier | None:
    """The signature checker of ``--auth`` (None without it); bad or no keys are a usage error."""
    if not auth:
        if credentials_file is not None:
            raise click.UsageError("--credentials is only used with --auth")
        return None
    from quorumdb.api.auth import CREDENTIALS_ENV, Verifier, load_credentials

    try:
        keys = load_credentials(credentials_file)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot read the credentials: {exc}") from exc
    if not keys:
        raise click.UsageError(f"--auth needs access keys: --credentials FILE or ${CREDENTIALS_ENV}")
    return Verifier(keys)


def _die_with_supervisor() -> None:
    """A worker of ``--workers`` is killed with its supervisor (Linux PR_SET_PDEATHSIG), so a
    kill -9 of the server is a crash of the whole server, never orphaned workers that keep
    serving the port."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM forwarding remains
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
