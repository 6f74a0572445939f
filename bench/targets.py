"""The servers a benchmark run measures: install, start pinned to a core, wait, stop.

Every target is started by this module on a free loopback port and stopped at the end of its
section of the run, also when the run fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
DYNALITE_VERSION = "4.0.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout_s}s")


def pin(core: int | None) -> list[str]:
    return [] if core is None else ["taskset", "-c", str(core)]


def ensure_tools() -> None:
    """Install what the run needs from Debian's packages and npm, if missing."""
    missing = [p for p, exe in (("wrk", "wrk"), ("redis-server", "redis-server"),
                                ("redis-tools", "redis-benchmark"), ("util-linux", "taskset"))
               if shutil.which(exe) is None]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for dynalite (apt-get install nodejs npm)")
    cli = WORK / "node_modules" / "dynalite" / "cli.js"
    if not cli.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        print(f"installing dynalite@{DYNALITE_VERSION} with npm", flush=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                        f"dynalite@{DYNALITE_VERSION}"], cwd=WORK, check=True)


@dataclass
class Target:
    """One server under test. ``kind`` is 'dynamo' (HTTP API) or 'redis'."""

    name: str
    kind: str
    argv_fn: object  # Callable[[int, Path], list[str]]
    description: str
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    tmp: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, core: int | None) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"qdb-bench-{self.name}-"))
        argv = self.argv_fn(self.port, self.tmp)  # type: ignore[operator]
        log = open(self.tmp / "server.log", "wb")
        self.proc = subprocess.Popen(pin(core) + argv, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.env), start_new_session=True)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def _serve_accepts_workers() -> bool:
    """Whether this checkout's `quorumdb serve` has a --workers option (added with multi-worker serving)."""
    out = subprocess.run([sys.executable, "-m", "quorumdb", "serve", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    return "--workers" in out.stdout


def quorumdb_target(workers: int | None = 1, name: str = "quorumdb") -> Target:
    def argv(port: int, tmp: Path) -> list[str]:
        out = [sys.executable, "-m", "quorumdb", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(tmp / "data")]
        if workers is not None and _serve_accepts_workers():
            out += ["--workers", str(workers)]
        return out

    desc = "QuorumDB, durable LMDB (fsync per group commit)"
    if workers is not None:
        desc += f", {workers} worker process{'es' if workers > 1 else ''}"
    return Target(name=name, kind="dynamo", argv_fn=argv, description=desc)


def dynalite_target(on_disk: bool) -> Target:
    def argv(port: int, tmp: Path) -> list[str]:
        out = ["node", str(WORK / "node_modules" / "dynalite" / "cli.js"), "--port", str(port),
               "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if on_disk:
            out += ["--path", str(tmp / "dynalite-data")]
        return out

    return Target(name="dynalite-disk" if on_disk else "dynalite-mem", kind="dynamo", argv_fn=argv,
                  description=f"dynalite {DYNALITE_VERSION} ({'LevelDB on disk' if on_disk else 'in memory'})")


def moto_target() -> Target:
    def argv(port: int, tmp: Path) -> list[str]:
        exe = Path(sys.executable).parent / "moto_server"
        return [str(exe), "-H", "127.0.0.1", "-p", str(port)]

    return Target(name="moto", kind="dynamo", argv_fn=argv, description="moto server (in memory)")


def redis_target() -> Target:
    def argv(port: int, tmp: Path) -> list[str]:
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(tmp)]

    return Target(name="redis", kind="redis", argv_fn=argv,
                  description="redis-server GET/SET (in memory, no persistence): the raw key-value ceiling")
