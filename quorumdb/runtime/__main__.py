"""``python -m quorumdb.runtime``: run one Multi-Paxos key-value node (for tests and demos).

Example (three nodes on loopback)::

    python -m quorumdb.runtime --node-id n1 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,\
n3=127.0.0.1:7003 --client-port 8001 --data-dir /tmp/n1 --secret s3cret

Prints ``ready <node-id>`` once it listens. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from quorumdb.runtime.node import NodeConfig, PaxosKVNode


def _peers(text: str) -> dict[str, tuple[str, int]]:
    out = {}
    for part in text.split(","):
        nid, _, addr = part.partition("=")
        host, _, port = addr.rpartition(":")
        out[nid] = (host, int(port))
    return out


async def _run(cfg: NodeConfig) -> None:
    node = PaxosKVNode(cfg)
    await node.start()
    print(f"ready {cfg.node_id}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await node.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quorumdb.runtime")
    p.add_argument("--node-id", required=True)
    p.add_argument("--peers", required=True, help="id=host:port,... for every voter, this node included")
    p.add_argument("--client-host", default="127.0.0.1")
    p.add_argument("--client-port", type=int, required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--secret", default="")
    a = p.parse_args(argv)
    cfg = NodeConfig(node_id=a.node_id, peers=_peers(a.peers), client_address=(a.client_host, a.client_port),
                     data_dir=a.data_dir, secret=a.secret.encode())
    asyncio.run(_run(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
