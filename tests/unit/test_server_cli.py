"""``quorumdb serve`` as a real process: the announced line, serving, and a clean SIGTERM/SIGINT exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

LINE = re.compile(r"^QuorumDB listening on http://127\.0\.0\.1:(\d+) \((.*)\)$")


def start(
    *args: str, cwd: Path, new_session: bool = False, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "quorumdb", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        start_new_session=new_session,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().rstrip("\n")
    m = LINE.match(line)
    if m is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"unexpected first line {line!r}; stderr: {err.decode()}")
    return proc, int(m.group(1)), m.group(2)


def post(port: int, op: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=orjson.dumps(body),
        headers={"X-Amz-Target": f"DynamoDB_20120810.{op}", "Content-Type": "application/x-amz-json-1.0"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        out: dict[str, object] = orjson.loads(resp.read())
        return out


def stop(proc: subprocess.Popen[bytes], sig: int) -> int:
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=20)
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_in_memory_announces_the_real_port_and_exits_cleanly(tmp_path: Path) -> None:
    proc, port, where = start("--in-memory", cwd=tmp_path)
    try:
        assert port > 0
        assert where == "in memory"
        assert post(port, "ListTables", {}) == {"TableNames": []}
    finally:
        code = stop(proc, signal.SIGTERM)
    assert code == 0
    assert not (tmp_path / "quorumdb-data").exists()


def test_serve_on_disk_keeps_tables_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, port, where = start("--data-dir", str(data), cwd=tmp_path)
    try:
        # One worker per core by default: the line then also says how many.
        assert re.fullmatch(rf"data: {re.escape(os.path.abspath(data))}, LMDB(, \d+ worker processes)?", where)
        post(
            port,
            "CreateTable",
            {
                "TableName": "kept",
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
    finally:
        assert stop(proc, signal.SIGINT) == 0
    proc, port, _ = start("--data-dir", str(data), cwd=tmp_path)
    try:
        assert post(port, "ListTables", {}) == {"TableNames": ["kept"]}
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_default_data_dir_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    proc, _, where = start(cwd=tmp_path)
    try:
        assert re.fullmatch(rf"data: {re.escape(str(tmp_path / 'quorumdb-data'))}, LMDB(, \d+ worker processes)?", where)
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "quorumdb", "serve", "--help"], capture_output=True, check=True, timeout=30
    ).stdout.decode()
    for opt in ("--host", "--port", "--data-dir", "--in-memory", "--log-level", "--auth", "--credentials"):
        assert opt in out


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_port_in_use_is_a_clear_error(tmp_path: Path, sig: int) -> None:
    proc, port, _ = start("--in-memory", cwd=tmp_path)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "quorumdb", "serve", "--in-memory", "--port", str(port)],
            capture_output=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert second.returncode != 0
        assert b"Error" in second.stderr
    finally:
        assert stop(proc, sig) == 0


def test_workers_share_the_port_and_the_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, port, where = start("--data-dir", str(data), "--workers", "2", cwd=tmp_path, new_session=True)
    try:
        assert where == f"data: {os.path.abspath(data)}, LMDB, 2 worker processes"
        post(
            port,
            "CreateTable",
            {
                "TableName": "shared",
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
        for _ in range(12):  # a new connection each time: both workers answer some
            assert post(port, "ListTables", {}) == {"TableNames": ["shared"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # as a supervisor stopping the whole group would
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    import socket

    with socket.socket() as s:  # no worker listens any more (TIME_WAIT leftovers are fine)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_workers_need_a_data_directory(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "quorumdb", "serve", "--in-memory", "--workers", "2"],
        capture_output=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert b"--workers needs a data directory" in out.stderr


# -- --auth ------------------------------------------------------------------------------------


def boto(port: int, akid: str, secret: str, service: str = "dynamodb") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def error_code(call: Any) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as exc:
        call()
    code: str = exc.value.response["Error"]["Code"]
    return code


def test_auth_checks_signatures_with_keys_from_env_and_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = fileSecret\n")
    env = {"QUORUMDB_CREDENTIALS": "AKIDENV:envSecret,AKIDTWO:twoSecret"}
    proc, port, where = start("--in-memory", "--auth", "--credentials", str(creds), cwd=tmp_path, env=env)
    try:
        assert where == "in memory, SigV4 auth with 3 keys"
        for akid, secret in (("AKIDFILE", "fileSecret"), ("AKIDENV", "envSecret"), ("AKIDTWO", "twoSecret")):
            assert boto(port, akid, secret).list_tables()["TableNames"] == []
        assert error_code(boto(port, "AKIDENV", "wrong").list_tables) == "InvalidSignatureException"
        assert error_code(boto(port, "AKIDOTHER", "envSecret").list_tables) == "UnrecognizedClientException"
        # DynamoDB Streams signs as "dynamodb" too.
        assert boto(port, "AKIDENV", "envSecret", "dynamodbstreams").list_streams()["Streams"] == []
        assert error_code(boto(port, "AKIDENV", "wrong", "dynamodbstreams").list_streams) == "InvalidSignatureException"
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            post(port, "ListTables", {})
        assert orjson.loads(unsigned.value.read())["__type"].endswith("#MissingAuthenticationTokenException")
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_without_auth_any_credentials_do(tmp_path: Path) -> None:
    proc, port, _ = start("--in-memory", cwd=tmp_path, env={"QUORUMDB_CREDENTIALS": "AKIDENV:envSecret"})
    try:
        assert boto(port, "anything", "at all").list_tables()["TableNames"] == []
        assert post(port, "ListTables", {}) == {"TableNames": []}
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_auth_workers_check_signatures_too(tmp_path: Path) -> None:
    env = {"QUORUMDB_CREDENTIALS": "AKIDENV:envSecret"}
    proc, port, _ = start("--data-dir", str(tmp_path / "d"), "--workers", "2", "--auth", cwd=tmp_path,
                          new_session=True, env=env)
    try:
        for _ in range(6):  # new connections: both workers answer some
            assert boto(port, "AKIDENV", "envSecret").list_tables()["TableNames"] == []
            assert error_code(boto(port, "AKIDENV", "bad").list_tables) == "InvalidSignatureException"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--auth"], {"QUORUMDB_CREDENTIALS": ""}, b"--auth needs access keys"),
        (["--auth"], {"QUORUMDB_CREDENTIALS": "nocolon"}, b"cannot read the credentials"),
        (["--credentials", "__FILE__"], {}, b"--credentials is only used with --auth"),
    ],
)
def test_auth_usage_errors(tmp_path: Path, args: list[str], env: dict[str, str], message: bytes) -> None:
    f = tmp_path / "creds"
    f.write_text("AKID:SECRET\n")
    out = subprocess.run(
        [sys.executable, "-m", "quorumdb", "serve", "--in-memory", *[str(f) if a == "__FILE__" else a for a in args]],
        capture_output=True, timeout=30, cwd=tmp_path, env={**os.environ, **env},
    )
    assert out.returncode == 2
    assert message in out.stderr


# -- stopped while starting -----------------------------------------------------------------------

_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM (Linux: SigCgt in /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    m = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)
    return m is not None and bool(int(m.group(1), 16) & _SIGTERM_BIT)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_for(what: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.002)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    "point",
    ["handler installed", "workers spawned", "workers catch signals", "data opened", "listening", "after 0.5 s"],
)
def test_sigterm_at_any_point_of_startup_exits_cleanly(tmp_path: Path, point: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "quorumdb", "serve", "--port", "0", "--workers", "2", "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    workers: list[int] = []
    try:
        _wait_for(lambda: _catches_sigterm(proc.pid))
        if point == "workers spawned":
            _wait_for(lambda: len(_children(proc.pid)) == 2)
        elif point == "workers catch signals":
            _wait_for(lambda: len(_children(proc.pid)) == 2 and all(map(_catches_sigterm, _children(proc.pid))))
        elif point == "data opened":
            _wait_for(lambda: len(_children(proc.pid)) == 2 and (tmp_path / "d" / "data.mdb").exists())
        elif point == "listening":
            assert proc.stdout is not None
            assert LINE.match(proc.stdout.readline().decode().rstrip("\n"))
        elif point == "after 0.5 s":
            time.sleep(0.5)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        for w in workers:  # every worker is gone too (reaped by the supervisor)
            assert not Path(f"/proc/{w}").exists() or "State:\tZ" in Path(f"/proc/{w}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("args", [("--workers", "1"), ("--in-memory",)])
@pytest.mark.parametrize("point", ["handler installed", "data opened", "listening"])
def test_sigterm_while_a_single_process_server_starts_exits_cleanly(
    tmp_path: Path, args: tuple[str, ...], point: str
) -> None:
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "quorumdb", "serve", "--port", "0", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        _wait_for(lambda: _catches_sigterm(proc.pid))
        if point == "data opened" and args[0] != "--in-memory":
            _wait_for(lambda: (data / "data.mdb").exists())
        elif point == "listening":
            assert proc.stdout is not None
            assert LINE.match(proc.stdout.readline().decode().rstrip("\n"))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# -- --enforce-capacity ------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "env"), [(["--enforce-capacity"], {}), ([], {"QUORUMDB_ENFORCE_CAPACITY": "1"})])
def test_enforce_capacity_runs_one_process_and_says_so(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    proc, _, where = start("--data-dir", str(tmp_path / "d"), *args, cwd=tmp_path, env=env)
    try:
        # On disk without --workers: one process (token buckets live in a process).
        assert where == f"data: {tmp_path / 'd'}, LMDB, provisioned capacity enforced"
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_enforce_capacity_is_off_by_default(tmp_path: Path) -> None:
    proc, _, where = start("--in-memory", cwd=tmp_path, env={"QUORUMDB_ENFORCE_CAPACITY": ""})
    try:
        assert where == "in memory"
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def test_enforce_capacity_is_refused_on_a_cluster_node(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "quorumdb", "serve", "--enforce-capacity", "--node-id", "n1", "--peer-port", "0"],
        capture_output=True, timeout=30, cwd=tmp_path,
    )
    assert out.returncode == 2
    assert b"--enforce-capacity is not available on a cluster node yet" in out.stderr
