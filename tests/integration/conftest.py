"""Fixtures for the black-box suite: one shared ``quorumdb serve`` process, clients, tables.

Set QUORUMDB_TEST_ENDPOINT=http://127.0.0.1:NNNN to run the suite against a server that is
already running (e.g. dynalite, to check the suite's expectations); tests that need their own
process (crash and restart) are skipped then. Never imports the ``quorumdb`` package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    ServerProcess,
    TableFactory,
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
    server = ServerProcess(data_dir=str(tmp_path_factory.mktemp("quorumdb-shared")))
    try:
        yield server.start()
    finally:
        server.stop()


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
    servers: list[ServerProcess] = []

    def start(data_dir: Path | None = None, extra_args: tuple[str, ...] = (), **env: str) -> ServerProcess:
        server = ServerProcess(data_dir=str(data_dir or tmp_path / "data"), extra_env=env, extra_args=extra_args)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
