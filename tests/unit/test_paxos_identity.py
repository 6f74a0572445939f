"""Cluster id and incarnation: a storage records whose log it holds, and a node whose disk was
wiped comes back as a new incarnation (a different node id) instead of a voter with amnesia."""

from __future__ import annotations

import random

import pytest

from quorumdb.core.paxos import (
    Identity,
    MemoryLogStorage,
    PaxosConfig,
    Replica,
    SaveIdentity,
    incarnation_id,
    node_incarnation,
    node_name,
    persist_ready,
    start_identity,
)


def replica(storage: MemoryLogStorage, node_id: str = "n1", cluster_id: str = "c1",
            voters: tuple[str, ...] | None = ("n1", "n2", "n3")) -> Replica:
    return Replica("g", node_id, PaxosConfig(), storage, random.Random(0), initial_voters=voters,
                   cluster_id=cluster_id)


def test_first_ready_records_the_identity_once_and_a_restart_checks_it() -> None:
    storage = MemoryLogStorage()
    r = replica(storage)
    ready = r.ready()
    assert ready.persist[0] == SaveIdentity(identity=Identity(cluster_id="c1", node_id="n1"))
    persist_ready(storage, ready)
    assert storage.load().identity == Identity(cluster_id="c1", node_id="n1")
    r.tick(0)
    assert not any(isinstance(a, SaveIdentity) for a in r.ready().persist)
    replica(storage)  # same identity: fine
    with pytest.raises(ValueError, match="belongs to"):
        replica(storage, cluster_id="other")
    with pytest.raises(ValueError, match="belongs to"):
        replica(storage, node_id=incarnation_id("n1", 2))


def test_incarnation_ids_route_by_name() -> None:
    assert incarnation_id("n1", 1) == "n1"
    assert incarnation_id("n1", 3) == "n1@3"
    assert node_name("n1@3") == "n1" and node_incarnation("n1@3") == 3
    assert node_name("n1") == "n1" and node_incarnation("n1") == 1
    with pytest.raises(ValueError):
        incarnation_id("n@1", 2)
    with pytest.raises(ValueError):
        incarnation_id("n1", 0)


def test_start_identity_never_makes_an_empty_disk_a_voter_it_was() -> None:
    empty = MemoryLogStorage().load()
    assert empty.empty
    # The operator bootstraps a new cluster: founders are voters.
    assert start_identity(empty, name="n1", founders=["n2", "n1", "n3"],
                          fresh_incarnation=lambda: 9) == ("n1", ("n1", "n2", "n3"))
    # Any other empty disk (new node or wiped one): a fresh incarnation, no initial voters.
    assert start_identity(empty, name="n1", founders=None, fresh_incarnation=lambda: 7) == ("n1@7", None)
    with pytest.raises(ValueError):
        start_identity(empty, name="n1", founders=None, fresh_incarnation=lambda: 1)
    with pytest.raises(ValueError):
        start_identity(empty, name="n9", founders=["n1"], fresh_incarnation=lambda: 2)
    # A storage that knows its identity keeps it, founders or not.
    storage = MemoryLogStorage()
    persist_ready(storage, replica(storage, node_id="n1@7", voters=None).ready())
    assert start_identity(storage.load(), name="n1", founders=["n1"],
                          fresh_incarnation=lambda: 8) == ("n1@7", None)
