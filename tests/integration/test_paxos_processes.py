"""Three real Multi-Paxos KV node processes on loopback: kill -9 the leader under load, a new
leader takes over and commits continue; the old leader restarts and catches up; no acknowledged
write is lost — the whole recorded history is checked by the linearizability checker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from quorumdb.runtime.framing import FrameDecoder, encode_frame
from quorumdb.sim.checkers import History, OpKind, check_history
from tests.integration.helpers import free_ports

NODES = ["n1", "n2", "n3"]
REQUEST_TIMEOUT_S = 3.0


class Cluster:
    def __init__(self, root: Path) -> None:
        ports = free_ports(6)
        self.peer_ports = dict(zip(NODES, ports[:3], strict=True))
        self.client_ports = dict(zip(NODES, ports[3:], strict=True))
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, nid: str) -> None:
        peers = ",".join(f"{n}=127.0.0.1:{p}" for n, p in self.peer_ports.items())
        log = open(self.root / f"{nid}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[nid] = subprocess.Popen(
            [sys.executable, "-m", "quorumdb.runtime", "--node-id", nid, "--peers", peers,
             "--client-port", str(self.client_ports[nid]), "--data-dir", str(self.root / nid), "--secret", "t0p"],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def kill9(self, nid: str) -> None:
        self.procs[nid].send_signal(signal.SIGKILL)
        self.procs[nid].wait()

    def pause(self, nid: str) -> None:
        self.procs[nid].send_signal(signal.SIGSTOP)

    def resume(self, nid: str) -> None:
        self.procs[nid].send_signal(signal.SIGCONT)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


class NotSent(Exception):
    """The request never reached a node (connection refused): it certainly did not happen."""


async def call(port: int, req: dict[str, Any], timeout_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
    """One request on a fresh connection."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError) as exc:
        raise NotSent(str(exc)) from exc
    try:
        writer.write(encode_frame({**req, "id": 1}))
        await writer.drain()
        dec = FrameDecoder()

        async def read_one() -> dict[str, Any]:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionResetError("closed")
                frames = dec.feed(data)
                if frames:
                    resp: dict[str, Any] = frames[0]
                    return resp

        return await asyncio.wait_for(read_one(), timeout_s)
    finally:
        writer.close()


async def status_all(cluster: Cluster) -> dict[str, dict[str, Any]]:
    out = {}
    for nid, port in cluster.client_ports.items():
        try:
            resp = await call(port, {"op": "status"}, 1.0)
            out[nid] = resp["result"]
        except (NotSent, OSError, TimeoutError):
            pass
    return out


async def wait_leader(cluster: Cluster, exclude: str | None = None, timeout_s: float = 30) -> str:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        st = await status_all(cluster)
        leaders = [n for n, s in st.items() if s["role"] == "leader" and n != exclude]
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no leader elected")


class Load:
    """Closed-loop clients writing unique values, recording a history for the checker."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.history = History()
        self.leader: str | None = None
        self.stop = False
        self.acked_writes: list[tuple[float, str]] = []  # (monotonic time, node that acked)

    async def client(self, cid: int) -> None:
        n = 0
        seen: dict[str, Any] = {}
        while not self.stop:
            n += 1
            key = f"k{(cid + n) % 3}"
            pick = n % 3
            node = self.leader or NODES[n % 3]
            value: Any
            req: dict[str, Any]
            if pick == 0:
                kind, value, req = OpKind.GET, None, {"op": "get", "key": key}
            elif pick == 1:
                v = f"c{cid}.{n}"
                kind, value, req = OpKind.PUT, v, {"op": "put", "key": key, "value": v}
            else:
                v = f"c{cid}.{n}"
                exp = seen.get(key)
                kind, value, req = OpKind.CAS, (exp, v), {"op": "cas", "key": key, "value": v, "expected": exp}
            op_id = self.history.invoke(cid, kind, key, value)
            try:
                resp = await call(self.cluster.client_ports[node], req)
            except NotSent:
                self.history.fail(op_id)
                self.leader = None
                await asyncio.sleep(0.05)
                continue
            except (OSError, TimeoutError):  # sent, but no answer: it may or may not happen
                self.history.unknown(op_id)
                self.leader = None
                await asyncio.sleep(0.05)
                continue
            if resp.get("ok"):
                self.history.ok(op_id, resp.get("result"))
                if kind is OpKind.GET:
                    seen[key] = resp.get("result")
                elif kind is OpKind.CAS and resp.get("result"):
                    seen[key] = value[1]
                if kind is not OpKind.GET:
                    self.acked_writes.append((time.monotonic(), node))
            elif resp.get("error") == "dropped":
                self.history.unknown(op_id)
            else:
                self.history.fail(op_id)
                self.leader = resp.get("leader")
                await asyncio.sleep(0.02)


@pytest.mark.parametrize("fault", ["kill9", "sigstop"])
def test_leader_failure_under_load_failover_and_catch_up(tmp_path: Path, fault: str) -> None:
    """kill9: the leader dies and restarts from its disk. sigstop: the leader freezes (a long GC
    pause) and then resumes believing it still leads; its stale lease must not serve reads."""
    cluster = Cluster(tmp_path)
    for nid in NODES:
        cluster.start(nid)

    async def scenario() -> None:
        leader = await wait_leader(cluster)
        load = Load(cluster)
        load.leader = leader
        clients = [asyncio.create_task(load.client(i)) for i in range(4)]
        await asyncio.sleep(2.0)
        before = len(load.acked_writes)
        assert before > 0, "no commits before the kill"
        killed_at = time.monotonic()
        if fault == "kill9":
            cluster.kill9(leader)
        else:
            cluster.pause(leader)
        new_leader = await wait_leader(cluster, exclude=leader)
        end = time.monotonic() + 30
        while not any(t > killed_at and n != leader for t, n in load.acked_writes):
            assert time.monotonic() < end, "commits did not resume after the leader was killed"
            await asyncio.sleep(0.02)
        first_commit = min(t for t, n in load.acked_writes if t > killed_at and n != leader)
        print(f"\nfailover ({fault}): leader {leader} stopped -> first commit by {new_leader} after "
              f"{first_commit - killed_at:.2f}s")
        await asyncio.sleep(1.0)
        # the old leader comes back and must catch up
        if fault == "kill9":
            cluster.start(leader)
        else:
            cluster.resume(leader)
        end = time.monotonic() + 30
        target = 0  # what was committed when the old leader came back: it must apply all of it
        while True:
            st = await status_all(cluster)
            if not target and new_leader in st:
                target = st[new_leader]["commit_index"]
            if target and leader in st and st[leader]["applied_index"] >= target:
                break
            assert time.monotonic() < end, f"restarted node did not catch up to {target}: {st}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        load.stop = True
        await asyncio.gather(*clients)
        load.history.close()
        ops = load.history.ops
        res = check_history(ops)
        acked = sum(1 for o in ops if o.outcome == "ok" and o.kind is not OpKind.GET)
        print(f"history: {len(ops)} ops, {acked} acknowledged writes; {res.describe()}")
        assert res.ok is True, res.describe()
        # every node is up again and a leader still serves reads
        final = await wait_leader(cluster)
        end = time.monotonic() + 10
        while not (await call(cluster.client_ports[final], {"op": "get", "key": "k0"})).get("ok"):
            assert time.monotonic() < end, "the leader does not serve reads after the test"
            await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        cluster.stop_all()
