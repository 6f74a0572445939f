"""Fixtures for the black-box suite: one shared ``quorumdb serve`` process, clients, tables.

Set QUORUMDB_TEST_ENDPOINT=http://127.0.0.1:NNNN to run the suite against a server that is
already running (e.g. dynalite, to check the suite's expectations); tests that need their own
process (crash and restart) are skipped then. Set QUORUMDB_TEST_CLUSTER=3 to run it against a
local 3-node cluster (``quorumdb cluster up``) through node 1's endpoint; a test that meets
something the cluster refuses for now (global secondary indexes) is reported as skipped with
the cluster's answer. Never imports the ``quorumdb``
package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    CLUSTER_REFUSAL,
    ClusterProcess,
    ServerProcess,
    TableFactory,
    cluster_size,
    external_endpoint,
    make_client,
    make_resource,
)


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the server every test shares."""
    external = external_endpoint()
    if external is not None:
        yield external
        return
    data_dir = str(tmp_path_factory.mktemp("quorumdb-shared"))
    nodes = cluster_size()
    server = ClusterProcess(data_dir=data_dir, nodes=nodes) if nodes else ServerProcess(data_dir=data_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Against a cluster, a test stopped by a refusal the cluster documents is a skip."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if cluster_size() and call.excinfo is not None and report.failed and CLUSTER_REFUSAL in str(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, "cluster refusal: " + CLUSTER_REFUSAL)


@pytest.fixture(scope="session")
def ddb(endpoint: str) -> Any:
    """A low-level boto3 DynamoDB client."""
    return make_client(endpoint)


@pytest.fixture(scope="session")
def ddb_resource(endpoint: str) -> Any:
    """A boto3 DynamoDB service resource."""
    return make_resource(endpoint)


@pytest.fixture()
def make_table(ddb: Any, request: pytest.FixtureRequest) -> Iterator[TableFactory]:
    """Create tables for one test; they are deleted afterwards."""
    factory = TableFactory(ddb, "it_" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name[5:25]))
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture(scope="module")
def module_tables(ddb: Any, request: pytest.FixtureRequest) -> Iterator[TableFactory]:
    """Create tables shared by one test module; deleted after the module."""
    factory = TableFactory(ddb, "it_" + request.module.__name__.rsplit(".", 1)[-1][5:20])
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture()
def own_server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start private server processes (for crash/restart tests); all are stopped afterwards."""
    if external_endpoint() is not None:
        pytest.skip("needs its own quorumdb process (QUORUMDB_TEST_ENDPOINT is set)")
    if cluster_size():
        pytest.skip("needs its own single-node quorumdb process (QUORUMDB_TEST_CLUSTER is set)")
    servers: list[ServerProcess] = []

    def start(data_dir: Path | None = None, extra_args: tuple[str, ...] = (), **env: str) -> ServerProcess:
        server = ServerProcess(data_dir=str(data_dir or tmp_path / "data"), extra_env=env, extra_args=list(extra_args))
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
