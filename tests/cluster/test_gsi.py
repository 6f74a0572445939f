"""Global secondary indexes on real cluster processes, through boto3.

Writers own disjoint keys and remember the last state of each key that a write acknowledged
(PutItem, UpdateItem with ALL_NEW, DeleteItem). A write whose answer was lost may still take
effect later, even after a later write was acknowledged (it may wait out an election while its
client gives up), so its key is retired: its state is unknown and the writer moves on to a new
key. Once the writers stop:

- the table holds exactly the acknowledged state of every known key (no acknowledged write lost,
  nothing partial);
- each global index equals the table, once propagation has settled: the same keys, each entry
  the projection of its item (KEYS_ONLY / INCLUDE / ALL), no entry twice, none left over (items
  without the index key, or deleted, or moved, are not in it).

One test adds an index while writes go on (online backfill: CREATING with Backfilling, then
ACTIVE) and deletes one (its partitions leave the map, their data is swept from every node).
The other kills -9 the leader of a base partition and then the leader of an index partition
while changes are in flight (propagation is slowed down so that the outboxes are never empty),
restarts them, and checks again. ``make test`` runs one kill of each; ``make test-faults``
(marker ``slow``) runs several cycles.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from quorumdb.cluster.wiring import stored_groups
from quorumdb.model.keys import partition_hash
from quorumdb.storage.lmdb_engine import LmdbEngine
from tests.cluster.harness import LocalCluster
from tests.cluster.workload import client_for

TABLE = "gsi"
PARTITIONS = 4
ATTRS = [{"AttributeName": n, "AttributeType": t} for n, t in (("pk", "S"), ("g", "S"), ("n", "N"), ("h", "S"))]


def _attrs(indexes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The attribute definitions of the table with ``indexes`` (exactly the key attributes)."""
    used = {"pk"} | {k["AttributeName"] for ix in indexes for k in ix["KeySchema"]}
    return [a for a in ATTRS if a["AttributeName"] in used]


def _gsi(name: str, keys: list[tuple[str, str]], projection: str, non_key: tuple[str, ...] = ()) -> dict[str, Any]:
    proj: dict[str, Any] = {"ProjectionType": projection}
    if non_key:
        proj["NonKeyAttributes"] = list(non_key)
    return {"IndexName": name, "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k in keys], "Projection": proj}


G_ALL = _gsi("g_all", [("g", "HASH"), ("n", "RANGE")], "ALL")
G_KEYS = _gsi("g_keys", [("g", "HASH")], "KEYS_ONLY")
H_INCL = _gsi("h_incl", [("h", "HASH"), ("g", "RANGE")], "INCLUDE", ("color",))


def projection(item: dict[str, Any], ix: dict[str, Any]) -> dict[str, Any] | None:
    """The entry ``item`` has in index ``ix`` (None: not indexed)."""
    keys = ["pk"] + [k["AttributeName"] for k in ix["KeySchema"]]
    if any(k not in item for k in keys):
        return None
    kind = ix["Projection"]["ProjectionType"]
    if kind == "ALL":
        return item
    names = set(keys) | set(ix["Projection"].get("NonKeyAttributes", ()) if kind == "INCLUDE" else ())
    return {k: v for k, v in item.items() if k in names}


def scan_all(client: Any, **kw: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    args = dict(TableName=TABLE, **kw)
    while True:
        page = client.scan(**args)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def index_equals_table(endpoint: str, indexes: list[dict[str, Any]], deadline_s: float = 90) -> dict[str, int]:
    """Wait until every index equals the table (writes have stopped); the entries per index.
    Fails with the last difference if propagation does not settle in ``deadline_s``. The table
    is read again each time: an unanswered write may still land after the writers stopped."""
    client = client_for(endpoint, timeout_s=10)
    deadline = time.monotonic() + deadline_s
    while True:
        table = {it["pk"]["S"]: it for it in scan_all(client, ConsistentRead=True)}
        problems: list[str] = []
        figures: dict[str, int] = {}
        for ix in indexes:
            want = {pk: e for pk, e in ((pk, projection(it, ix)) for pk, it in table.items()) if e is not None}
            got = scan_all(client, IndexName=ix["IndexName"])
            pks = [e["pk"]["S"] for e in got]
            figures[ix["IndexName"]] = len(got)
            if len(pks) != len(set(pks)):
                problems.append(f"{ix['IndexName']}: an item is in it twice")
            extra, missing = set(pks) - set(want), set(want) - set(pks)
            if extra or missing:
                problems.append(f"{ix['IndexName']}: {len(extra)} left over, {len(missing)} missing")
            wrong = [e["pk"]["S"] for e in got if e["pk"]["S"] in want and e != want[e["pk"]["S"]]]
            if wrong:
                problems.append(f"{ix['IndexName']}: {len(wrong)} entries differ from their item's projection")
        if not problems:
            return figures
        if time.monotonic() > deadline:
            raise AssertionError("; ".join(problems))
        time.sleep(0.2)


@dataclass
class Writers:
    """Threads writing their own keys; ``state`` is the last acknowledged state of each key
    (None: deleted); keys retired after an unanswered write are in ``unknown``."""

    endpoints: list[str]
    threads_n: int = 3
    keys_per_writer: int = 25
    seed: int = 7
    state: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    acked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _run_ok: threading.Event = field(default_factory=threading.Event)  # cleared: pause
    _paused: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._run_ok.set()
        for w in range(self.threads_n):
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._run_ok.set()
        for t in self._threads:
            t.join(timeout=60)

    def pause(self) -> None:
        """Return once every writer has finished its current write and waits."""
        self._run_ok.clear()
        for _ in self._threads:
            assert self._paused.acquire(timeout=60), "a writer did not pause"

    def resume(self) -> None:
        self._run_ok.set()

    @property
    def checked_keys(self) -> int:
        return sum(1 for pk in self.state if pk not in self.unknown)

    def _run(self, w: int) -> None:
        rng = random.Random(self.seed * 100 + w)
        clients = [client_for(e) for e in self.endpoints]
        generation = [0] * self.keys_per_writer
        while not self._stop.is_set():
            if not self._run_ok.is_set():
                self._paused.release()
                self._run_ok.wait()
                continue
            slot = rng.randrange(self.keys_per_writer)
            pk = f"w{w}-{slot}.{generation[slot]}"
            client = rng.choice(clients)
            r = rng.random()
            try:
                if r < 0.6:
                    item: dict[str, Any] | None = {"pk": {"S": pk}, "n": {"N": str(rng.randrange(100))},
                                                   "v": {"S": "x" * rng.randrange(1, 40)}}
                    assert item is not None
                    if rng.random() < 0.85:
                        item["g"] = {"S": f"g{rng.randrange(6)}"}
                    if rng.random() < 0.7:
                        item["h"] = {"S": f"h{rng.randrange(6)}"}
                    if rng.random() < 0.5:
                        item["color"] = {"S": rng.choice(["red", "green", "blue"])}
                    client.put_item(TableName=TABLE, Item=item)
                elif r < 0.85:
                    expr, values = ("SET g = :g", {":g": {"S": f"g{rng.randrange(6)}"}}) if rng.random() < 0.6 else (
                        "REMOVE h", None)
                    kw: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
                    got = client.update_item(TableName=TABLE, Key={"pk": {"S": pk}}, UpdateExpression=expr,
                                             ReturnValues="ALL_NEW", **kw)
                    item = got.get("Attributes")
                else:
                    client.delete_item(TableName=TABLE, Key={"pk": {"S": pk}})
                    item = None
            except Exception as e:  # noqa: BLE001 - unanswered (a fault): the key's state is unknown
                code = (getattr(e, "response", None) or {}).get("Error", {}).get("Code", "")
                generation[slot] += 1
                with self._lock:
                    self.failed += 1
                    self.unknown.add(pk)
                    if code in ("ValidationException", "ResourceNotFoundException", "SerializationException"):
                        self.errors.append(f"{pk}: {e}")
                continue
            with self._lock:
                self.acked += 1
                self.state[pk] = item

    def lost(self, endpoint: str) -> list[str]:
        """Known keys whose stored item is not their last acknowledged state."""
        table = {it["pk"]["S"]: it for it in scan_all(client_for(endpoint, timeout_s=10), ConsistentRead=True)}
        return [pk for pk, item in self.state.items() if pk not in self.unknown and table.get(pk) != item]


def start_cluster(root: Path, env: dict[str, str] | None = None) -> LocalCluster:
    cluster = LocalCluster(root, env={"QUORUMDB_PARTITIONS_PER_TABLE": str(PARTITIONS), **(env or {})})
    cluster.start_all()
    return cluster


def create_table(cluster: LocalCluster, indexes: list[dict[str, Any]]) -> None:
    client_for(cluster.endpoints[0], timeout_s=30).create_table(
        TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=_attrs(indexes), BillingMode="PAY_PER_REQUEST", GlobalSecondaryIndexes=indexes)
    groups = PARTITIONS * (1 + len(indexes))
    cluster.wait(lambda st: len([p for p in st["partitions"] if p["table"] == TABLE]) == groups
                 and all(p.get("leader") for p in st["partitions"] if p["table"] == TABLE), 60,
                 "a leader for every partition of the table and its indexes")


def describe_index(client: Any, name: str) -> dict[str, Any] | None:
    table = client.describe_table(TableName=TABLE)["Table"]
    return next((ix for ix in table.get("GlobalSecondaryIndexes", []) if ix["IndexName"] == name), None)


def index_status(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint + "/cluster/indexes", timeout=3) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def test_index_equals_table_through_backfill_and_deletion(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "cluster")
    try:
        create_table(cluster, [G_ALL, G_KEYS])
        client = client_for(cluster.endpoints[1], timeout_s=30)
        writers = Writers(cluster.endpoints)
        writers.start()
        time.sleep(2.0)
        # Online backfill: the index is CREATING (Backfilling) until it has caught up.
        client.update_table(TableName=TABLE, AttributeDefinitions=_attrs([G_ALL, G_KEYS, H_INCL]),
                            GlobalSecondaryIndexUpdates=[{"Create": H_INCL}])
        seen: set[tuple[str, bool | None]] = set()
        deadline = time.monotonic() + 90
        while True:
            ix = describe_index(client, "h_incl")
            assert ix is not None
            seen.add((ix["IndexStatus"], ix.get("Backfilling")))
            if ix["IndexStatus"] == "ACTIVE":
                break
            assert time.monotonic() < deadline, ix
            time.sleep(0.05)
        assert all(backfilling is True for status, backfilling in seen if status == "CREATING"), seen
        time.sleep(1.0)  # writes go on against the finished index too
        writers.stop()
        assert writers.errors == [], writers.errors[:5]
        assert writers.acked > 0 and writers.lost(cluster.endpoints[2]) == []
        figures = index_equals_table(cluster.endpoints[0], [G_ALL, G_KEYS, H_INCL])
        assert figures["g_all"] > 0 and figures["h_incl"] > 0

        def counts_agree() -> bool:
            return all((describe_index(client, n) or {}).get("ItemCount") == figures[n] for n in figures)

        deadline = time.monotonic() + 30
        while not counts_agree():  # ItemCount adds up the index partitions' counters
            assert time.monotonic() < deadline, [describe_index(client, n) for n in figures]
            time.sleep(0.2)
        # Deleting an index removes its partitions from the map and its data from every node.
        doomed = {p["group"] for p in cluster.status()["partitions"] if p.get("index") == "g_keys"}
        assert len(doomed) == PARTITIONS
        client.update_table(TableName=TABLE, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "g_keys"}}])
        cluster.wait(lambda st: not doomed & {p["group"] for p in st["partitions"]}, 30, "the index's groups gone")
        assert describe_index(client, "g_keys") is None

        def swept() -> bool:
            for s in cluster.specs:
                engine = LmdbEngine(str(Path(s.data_dir) / "data"))
                try:
                    if doomed & set(stored_groups(engine)):
                        return False
                finally:
                    engine.close()
            return True

        deadline = time.monotonic() + 30
        while not swept():
            assert time.monotonic() < deadline, "the deleted index's data is still on some node"
            time.sleep(0.5)
        index_equals_table(cluster.endpoints[0], [G_ALL, H_INCL])
        print(f"\nbackfill+delete: writes acked {writers.acked}, unanswered {writers.failed}, entries {figures}")
    finally:
        cluster.stop_all()


def _leader_of_group(cluster: LocalCluster, group: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = next((p for p in cluster.status()["partitions"] if p["group"] == group), None)
        if p is not None and p.get("leader"):
            return str(p["leader"])
        time.sleep(0.2)
    raise AssertionError(f"no leader for {group}")


def _wait_backlog(cluster: LocalCluster, node: str | None, timeout_s: float = 30) -> int:
    """Changes in flight in the outboxes led by ``node`` (any node if None), waiting for some."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        nodes = [node] if node else [s.node_id for s in cluster.specs if s.node_id in cluster.procs]
        backlog = 0
        for n in nodes:
            try:
                backlog += int(index_status(cluster.endpoint(n))["backlog"])
            except OSError:
                continue
        if backlog > 0:
            return backlog
        time.sleep(0.05)
    raise AssertionError("no change in flight to kill in the middle of")


def _restart(cluster: LocalCluster, victim: str) -> None:
    cluster.start(victim)
    cluster.wait(lambda st: all(n["up"] for n in st["nodes"]), 60, f"{victim} back")


def _settled_check(cluster: LocalCluster, writers: Writers, checks: list[dict[str, int]]) -> None:
    """With the writers paused: nothing acknowledged is lost and every index equals the table."""
    writers.pause()
    try:
        lost = writers.lost(cluster.endpoints[0])
        assert lost == [], f"acknowledged writes lost: {lost[:10]}"
        checks.append(index_equals_table(cluster.endpoints[0], [G_ALL, G_KEYS, H_INCL]))
    finally:
        writers.resume()


def _kill_cycles(tmp_path: Path, cycles: int) -> dict[str, Any]:
    cluster = start_cluster(tmp_path / "cluster", env={"QUORUMDB_GSI_BATCH_DELAY_MS": "100"})
    kills: list[dict[str, Any]] = []
    checks: list[dict[str, int]] = []
    try:
        create_table(cluster, [G_ALL, G_KEYS, H_INCL])
        writers = Writers(cluster.endpoints, threads_n=4)
        writers.start()
        rng = random.Random(11)
        for cycle in range(cycles):
            time.sleep(1.0)
            # The leader of the base partition holding some written key, with changes in flight.
            h = int.from_bytes(partition_hash({"S": f"w0-{cycle}.0"}), "big")
            st = cluster.status()
            base = next(p for p in LocalCluster.partitions(st, TABLE) if p["hash_lo"] <= h <= p["hash_last"])
            victim = _leader_of_group(cluster, base["group"])
            backlog = _wait_backlog(cluster, victim)
            cluster.kill9(victim)
            kills.append({"kind": "base", "group": base["group"], "node": victim, "backlog": backlog})
            _leader_of_group(cluster, base["group"])  # a new leader took over
            _restart(cluster, victim)
            time.sleep(1.0)
            # The leader of an index partition, while base partitions still have changes for it.
            st = cluster.status()
            ix_part = rng.choice([p for p in st["partitions"] if p["table"] == TABLE and p.get("index")])
            victim = _leader_of_group(cluster, ix_part["group"])
            backlog = _wait_backlog(cluster, None)
            cluster.kill9(victim)
            kills.append({"kind": "index", "group": ix_part["group"], "node": victim, "backlog": backlog})
            _leader_of_group(cluster, ix_part["group"])
            _restart(cluster, victim)
            _settled_check(cluster, writers, checks)
        time.sleep(1.0)
        writers.stop()
        lost = writers.lost(cluster.endpoints[0])
        checks.append(index_equals_table(cluster.endpoints[0], [G_ALL, G_KEYS, H_INCL]))
    finally:
        cluster.stop_all()
    result = {"cycles": cycles, "kills": kills, "writes_acked": writers.acked, "writes_unanswered": writers.failed,
              "keys_checked": writers.checked_keys, "lost": lost, "index_checks": len(checks),
              "index_entries_last": checks[-1]}
    print(f"\ngsi kill -9: {result}")
    assert writers.errors == [], writers.errors[:5]
    assert lost == [], f"acknowledged writes lost: {lost[:10]}"
    assert writers.acked > 0 and writers.checked_keys > 0 and all(k["backlog"] > 0 for k in kills)
    return result


def test_kill9_base_and_index_leaders_mid_propagation(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 1)


@pytest.mark.slow
def test_kill9_base_and_index_leaders_many_cycles(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 6)
