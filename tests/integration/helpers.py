"""Helpers for the black-box tests: server processes, raw HTTP, error assertions, table setup.

These tests see QuorumDB only from outside (a real ``quorumdb serve`` process spoken to over
HTTP), so this module must never import anything from the ``quorumdb`` package.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT_ENV = "QUORUMDB_TEST_ENDPOINT"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDQUORUMTEST", "aws_secret_access_key": "quorum-secret"}
# The server is asked to run its TTL expirer often so the TTL test need not wait long.
TTL_INTERVAL_ENV = "QUORUMDB_TTL_INTERVAL_SECONDS"
LISTEN_RE = re.compile(r"listening on (http://[0-9A-Za-z.\-\[\]:]+:\d+)")
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


CLUSTER_ENV = "QUORUMDB_TEST_CLUSTER"  # run the suite against a local cluster of N nodes
CLUSTER_NODE_RE = re.compile(r"^\s+(n\d+)\s+(http://\S+)")
# What a cluster answers for what it does not do yet (Streams, backups, ...):
# a test that meets it is reported as skipped, with the answer as the reason.
CLUSTER_REFUSAL = "not supported by this QuorumDB cluster yet"


def cluster_size() -> int:
    value = os.environ.get(CLUSTER_ENV, "").strip()
    return int(value) if value else 0


def external_endpoint() -> str | None:
    """The endpoint of an already running server (e.g. dynalite) or None."""
    value = os.environ.get(ENDPOINT_ENV, "").strip()
    return value.rstrip("/") or None


def against_quorumdb() -> bool:
    return external_endpoint() is None


def boto_config() -> Config:
    # No retries: errors must surface directly. No client-side parameter validation: the
    # server's own validation (and its messages) is what these tests check.
    return Config(
        retries={"max_attempts": 1, "mode": "standard"},
        parameter_validation=False,
        connect_timeout=10,
        read_timeout=60,
    )


def make_client(endpoint: str, service: str = "dynamodb") -> Any:
    """A low-level boto3 client (``service="dynamodbstreams"`` for DynamoDB Streams)."""
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, config=boto_config(), **CREDENTIALS
    )


def make_resource(endpoint: str) -> Any:
    return boto3.resource(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=boto_config(), **CREDENTIALS
    )


# --------------------------------------------------------------------------- server process


@dataclass(kw_only=True)
class ServerProcess:
    """One ``quorumdb serve`` child process on a random free port."""

    data_dir: str
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # e.g. ["--workers", "3"]
    proc: subprocess.Popen[str] | None = None
    endpoint: str = ""
    output: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start(self) -> str:
        env = dict(os.environ)
        env.setdefault(TTL_INTERVAL_ENV, "1")
        env.update(self.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [
            sys.executable, "-m", "quorumdb", "serve",
            "--host", "127.0.0.1", "--port", "0", "--data-dir", self.data_dir, *self.extra_args,
        ]
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError("server did not print its address in time:\n" + self.log())
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(
                    f"server exited with {self.proc.wait()} before listening:\n" + self.log()
                )
            match = LISTEN_RE.search(line)
            if match:
                self.endpoint = match.group(1)
                break
        wait_until_serving(self.endpoint, deadline)
        return self.endpoint

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def log(self) -> str:
        return "".join(self.output[-200:])

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL at once (a crash), and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ClusterProcess(ServerProcess):
    """``quorumdb cluster up --nodes N`` as a child process; ``endpoints`` lists every node's."""

    nodes: int = 3
    endpoints: list[str] = field(default_factory=list)

    def start(self) -> str:
        env = dict(os.environ)
        env.setdefault(TTL_INTERVAL_ENV, "1")
        env.update(self.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "quorumdb", "cluster", "up", "--nodes", str(self.nodes),
               "--data-dir", self.data_dir]
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S * 2
        while len(self.endpoints) < self.nodes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError("the cluster did not print its endpoints in time:\n" + self.log())
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"cluster up exited with {self.proc.wait()}:\n" + self.log())
            match = CLUSTER_NODE_RE.match(line)
            if match:
                self.endpoints.append(match.group(2))
        self.endpoint = self.endpoints[0]
        for e in self.endpoints:
            wait_until_serving(e, deadline)
        return self.endpoint


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that were free a moment ago (all bound at once, so no
    two are the same; another process may still take one before it is used)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_until_serving(endpoint: str, deadline: float) -> None:
    body = b"{}"
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            status, _, _ = raw_request(endpoint, "DynamoDB_20120810.ListTables", body, timeout=2)
            if status == 200:
                return
        except OSError as exc:
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"server at {endpoint} did not answer ListTables: {last_error}")


def aws_cli(endpoint: str, tmp_path: Path, service: str, *args: str) -> Any:
    """Run ``aws <service> <args>`` (the AWS CLI, as a subprocess) against ``endpoint``; the
    parsed JSON output."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "awscli", service, *args, "--endpoint-url", endpoint, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


# --------------------------------------------------------------------------- raw HTTP


FAKE_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDQUORUMTEST/20240101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef"
)


def raw_request(
    endpoint: str,
    target: str | None,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
    content_type: str = "application/x-amz-json-1.0",
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as-is; returns (status, lower-cased headers, body)."""
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)
    try:
        hdrs = {
            "Content-Type": content_type,
            "X-Amz-Date": "20240101T000000Z",
            "Authorization": FAKE_AUTH,
        }
        if target is not None:
            hdrs["X-Amz-Target"] = target
        hdrs.update(headers or {})
        conn.request("POST", "/", body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_call(endpoint: str, operation: str, payload: Any) -> tuple[int, dict[str, str], Any]:
    """Send ``payload`` (any JSON value, deliberately unchecked) to ``operation``."""
    status, headers, data = raw_request(
        endpoint, f"DynamoDB_20120810.{operation}", json.dumps(payload).encode()
    )
    return status, headers, json.loads(data) if data else None


def error_type(body: dict[str, Any]) -> str:
    return str(body.get("__type", "")).rsplit("#", 1)[-1]


def error_message(body: dict[str, Any]) -> str:
    # DynamoDB uses "message" for most errors and "Message" for a few (SerializationException).
    return str(body.get("message", body.get("Message", "")))


def check_crc32(headers: dict[str, str], body: bytes) -> None:
    assert "x-amz-crc32" in headers, headers
    assert int(headers["x-amz-crc32"]) == zlib.crc32(body) & 0xFFFFFFFF


# --------------------------------------------------------------------------- errors


@contextlib.contextmanager
def expect_error(
    code: str, message_part: str | tuple[str, ...] | None = None, *, status: int = 400
) -> Iterator[Any]:
    """Assert the block raises a ClientError with ``code``, ``message_part`` and ``status``.

    ``message_part`` may be a tuple of alternatives, only where DynamoDB is known to have used
    more than one wording for the same error.
    """

    class Box:
        error: ClientError | None = None
        response: dict[str, Any] = {}

    box = Box()
    try:
        yield box
    except ClientError as exc:
        box.error = exc
        box.response = exc.response
        got = exc.response["Error"]["Code"]
        msg = exc.response["Error"].get("Message", "")
        assert got == code, f"expected {code}, got {got}: {msg}"
        if message_part is not None:
            parts = (message_part,) if isinstance(message_part, str) else message_part
            assert any(p in msg for p in parts), f"expected {message_part!r} in {msg!r}"
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == status
    else:
        raise AssertionError(f"expected {code} ({message_part!r}) but the call succeeded")


# --------------------------------------------------------------------------- tables


def unique_name(prefix: str = "it") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def wait_active(client: Any, name: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        desc = client.describe_table(TableName=name)["Table"]
        if desc["TableStatus"] == "ACTIVE":
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"table {name} not ACTIVE: {desc['TableStatus']}")
        time.sleep(0.02)


def wait_gone(client: Any, name: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.describe_table(TableName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        time.sleep(0.02)
    raise AssertionError(f"table {name} still exists")


def key_schema(hash_key: tuple[str, str], range_key: tuple[str, str] | None = None) -> dict[str, Any]:
    """CreateTable arguments for a table keyed by (name, type) pairs."""
    ks = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    ad = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
    if range_key is not None:
        ks.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        ad.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
    return {"KeySchema": ks, "AttributeDefinitions": ad}


class TableFactory:
    """Creates uniquely named tables and deletes all of them on ``cleanup``."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.names: list[str] = []

    def __call__(
        self,
        hash_key: tuple[str, str] = ("pk", "S"),
        range_key: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> str:
        name = unique_name(self.prefix)
        args: dict[str, Any] = {"TableName": name, **key_schema(hash_key, range_key)}
        if "ProvisionedThroughput" not in kwargs and "BillingMode" not in kwargs:
            args["BillingMode"] = "PAY_PER_REQUEST"
        args.update(kwargs)
        self.client.create_table(**args)
        self.names.append(name)
        wait_active(self.client, name)
        return name

    def cleanup(self) -> None:
        for name in self.names:
            with contextlib.suppress(ClientError):
                self.client.delete_table(TableName=name)
        self.names.clear()


def collect_pages(call: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a Query/Scan to the end; returns (all items, every page response)."""
    items: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    args = dict(kwargs)
    for _ in range(10_000):
        page = call(**args)
        pages.append(page)
        items.extend(page.get("Items", []))
        lek = page.get("LastEvaluatedKey")
        if not lek:
            return items, pages
        args["ExclusiveStartKey"] = lek
    raise AssertionError("pagination did not end")


# How long a test waits for a global secondary index to reflect the writes it made.
GSI_SETTLE_S = 30.0
T = TypeVar("T")


def eventually(check: Callable[[], T], timeout_s: float = GSI_SETTLE_S) -> T:
    """``check()`` (which asserts), run again until it passes or ``timeout_s`` is over (then its
    last AssertionError is raised). Global secondary indexes are eventually consistent, in
    DynamoDB and in a QuorumDB cluster: a write reaches them shortly after it is acknowledged,
    not with it, so a test reading an index right after writing waits for it to settle."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def index_settled(client: Any, table: str, index: str, count: int, timeout_s: float = GSI_SETTLE_S) -> None:
    """Wait until a Scan of global secondary index ``index`` finds ``count`` entries."""

    def check() -> None:
        items, _ = collect_pages(client.scan, TableName=table, IndexName=index)
        assert len(items) == count, f"{index} of {table}: {len(items)} entries, expected {count}"

    eventually(check, timeout_s)
