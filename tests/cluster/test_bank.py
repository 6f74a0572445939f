"""The bank-transfer invariant on real cluster processes, with kill -9 of partition leaders, of the
transaction ledger's leader and of coordinating nodes.

Accounts spread over every partition of a table; mover threads send TransactWriteItems transfers
(a conditional debit and a credit, on two partitions most of the time) to random nodes, half of
them with a ClientRequestToken that they retry when the outcome is unknown; reader threads sum
every account with TransactGetItems. A fault loop kills -9 the leader of an account's partition,
the ledger's leader, or a node picked at random (every node coordinates the requests it
receives), and restarts it. Every read must see the starting total, and so must the final state
once recovery has finished every transaction whose coordinator died. The figures are printed.

``make test`` runs the short variant; ``make test-faults`` (marker ``slow``) the long one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.cluster.harness import LocalCluster
from tests.cluster.workload import client_for

TABLE = "bank"
LEDGER_TABLE = "quorumdb:txn-ledger"
ACCOUNTS = [f"acct-{i:02d}" for i in range(16)]
START_BALANCE = 1000
TOTAL = START_BALANCE * len(ACCOUNTS)
_UNKNOWN = ("InternalServerError", "TransactionInProgressException", "ServiceUnavailable",
            "ThrottlingException", "ProvisionedThroughputExceededException")


@dataclass
class Figures:
    committed: int = 0
    cancelled: int = 0  # a failed condition (insufficient funds)
    conflicted: int = 0  # cancelled with TransactionConflict
    unknown: int = 0  # no answer, or a retryable error: the transfer may or may not have happened
    retried_ok: int = 0  # committed on a retry with the same token (the first try unanswered)
    reads_checked: int = 0
    reads_cancelled: int = 0
    reads_unavailable: int = 0
    kills: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response["Error"]["Code"])
    return type(exc).__name__


def _transfer_items(a: str, b: str, amount: int) -> list[dict[str, Any]]:
    m = {":m": {"N": str(amount)}}
    return [
        {"Update": {"TableName": TABLE, "Key": {"k": {"S": a}}, "UpdateExpression": "SET balance = balance - :m",
                    "ConditionExpression": "balance >= :m", "ExpressionAttributeValues": m}},
        {"Update": {"TableName": TABLE, "Key": {"k": {"S": b}}, "UpdateExpression": "SET balance = balance + :m",
                    "ExpressionAttributeValues": m}},
    ]


def _mover(seed: int, endpoints: list[str], stop: threading.Event, figs: Figures) -> None:
    rng = random.Random(seed)
    clients = [client_for(e, timeout_s=10) for e in endpoints]
    with_token = seed % 2 == 0
    while not stop.is_set():
        # A pause between transfers: a read of every account needs a moment when none is held by
        # a transaction in progress (else it is cancelled with TransactionConflict, as DynamoDB's is).
        time.sleep(rng.uniform(0, 0.4))
        a, b = rng.sample(ACCOUNTS, 2)
        request: dict[str, Any] = {"TransactItems": _transfer_items(a, b, rng.randint(1, 300))}
        if with_token:
            request["ClientRequestToken"] = uuid.uuid4().hex
        for attempt in range(3 if with_token else 1):
            try:
                rng.choice(clients).transact_write_items(**request)
                figs.add("committed")
                if attempt:
                    figs.add("retried_ok")
                break
            except ClientError as exc:
                code = _code(exc)
                if code == "TransactionCanceledException":
                    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                    figs.add("cancelled" if "ConditionalCheckFailed" in reasons else "conflicted")
                    break
                if code not in _UNKNOWN:
                    figs.fail(f"transfer: {code}: {exc}")
                    return
            except BotoCoreError:
                pass  # no answer (a killed node, a timeout)
            if attempt == (2 if with_token else 0):
                figs.add("unknown")
            else:
                time.sleep(0.2)


def _reader(seed: int, endpoints: list[str], stop: threading.Event, figs: Figures) -> None:
    rng = random.Random(seed)
    clients = [client_for(e, timeout_s=10) for e in endpoints]
    gets = [{"Get": {"TableName": TABLE, "Key": {"k": {"S": a}}}} for a in ACCOUNTS]
    while not stop.is_set():
        try:
            out = rng.choice(clients).transact_get_items(TransactItems=gets)
        except ClientError as exc:
            code = _code(exc)
            if code == "TransactionCanceledException":
                figs.add("reads_cancelled")
            elif code in _UNKNOWN:
                figs.add("reads_unavailable")
            else:
                figs.fail(f"read: {code}: {exc}")
                return
            continue
        except BotoCoreError:
            figs.add("reads_unavailable")
            continue
        balances = [int(r["Item"]["balance"]["N"]) for r in out["Responses"] if "Item" in r]
        figs.add("reads_checked")
        if len(balances) != len(ACCOUNTS) or sum(balances) != TOTAL or min(balances) < 0:
            figs.fail(f"a read saw {len(balances)} accounts summing to {sum(balances)}: {balances}")


def _leader(cluster: LocalCluster, table: str, key: str | None = None) -> str | None:
    try:
        if key is not None:
            return cluster.leader_of_key(table, key, timeout_s=10)
        st = cluster.status()
        return next((p["leader"] for p in cluster.partitions(st, table) if p.get("leader")), None)
    except (AssertionError, RuntimeError):
        return None


def _final_balances(cluster: LocalCluster, deadline_s: float = 90) -> list[int]:
    """Every balance by consistent reads, once no transaction is left half-delivered (the
    recovery of transactions whose coordinator died takes a few seconds): the reads are taken
    again until two rounds agree and no read failed."""
    client = client_for(cluster.endpoints[0], timeout_s=10, retries=True)
    deadline = time.monotonic() + deadline_s
    last: list[int] | None = None
    while time.monotonic() < deadline:
        try:
            now = [int(client.get_item(TableName=TABLE, Key={"k": {"S": a}}, ConsistentRead=True)
                       ["Item"]["balance"]["N"]) for a in ACCOUNTS]
        except (ClientError, BotoCoreError):
            time.sleep(1.0)
            continue
        if now == last:
            return now
        last = now
        time.sleep(3.0)
    raise AssertionError(f"the balances did not settle: {last}")


def _run_bank(tmp_path: Path, duration_s: float, kill_every_s: float) -> Figures:
    cluster = LocalCluster(tmp_path / "cluster")
    cluster.start_all()
    figs = Figures()
    try:
        cluster.create_table(TABLE)
        setup = client_for(cluster.endpoints[0], timeout_s=10, retries=True)
        for a in ACCOUNTS:
            setup.put_item(TableName=TABLE, Item={"k": {"S": a}, "balance": {"N": str(START_BALANCE)}})
        # The first transaction creates the ledger table: wait for its leader before the run.
        setup.transact_write_items(TransactItems=_transfer_items(ACCOUNTS[0], ACCOUNTS[1], 1))
        cluster.wait(lambda st: bool(cluster.partitions(st, LEDGER_TABLE))
                     and all(p.get("leader") for p in cluster.partitions(st, LEDGER_TABLE)), 60, "the ledger")
        stop = threading.Event()
        threads = [threading.Thread(target=_mover, args=(s, cluster.endpoints, stop, figs)) for s in range(6)]
        threads += [threading.Thread(target=_reader, args=(100 + s, cluster.endpoints, stop, figs)) for s in range(2)]
        for t in threads:
            t.start()
        rng = random.Random(7)
        start = time.monotonic()
        kinds = ["partition leader", "ledger leader", "any node"]
        while time.monotonic() - start < duration_s - kill_every_s:
            time.sleep(kill_every_s / 2)
            kind = kinds[len(figs.kills) % len(kinds)]
            if kind == "partition leader":
                victim = _leader(cluster, TABLE, rng.choice(ACCOUNTS))
            elif kind == "ledger leader":
                victim = _leader(cluster, LEDGER_TABLE)
            else:
                victim = rng.choice([s.node_id for s in cluster.specs])
            if victim is None or victim not in cluster.procs:
                continue
            cluster.kill9(victim)
            figs.kills.append(f"{kind} {victim}")
            time.sleep(kill_every_s / 2)
            cluster.start(victim)
            cluster.wait(lambda st: all(n["up"] for n in st["nodes"]), 60, f"{victim} back")
        remaining = duration_s - (time.monotonic() - start)
        if remaining > 0:
            time.sleep(remaining)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        final = _final_balances(cluster)
    finally:
        cluster.stop_all()
    print(f"\nbank over {duration_s:.0f}s: committed {figs.committed}, cancelled {figs.cancelled}, "
          f"conflicted {figs.conflicted}, unknown outcome {figs.unknown}, committed on a token retry "
          f"{figs.retried_ok}; reads checked {figs.reads_checked}, reads cancelled "
          f"{figs.reads_cancelled}, reads unavailable {figs.reads_unavailable}; kills "
          f"{len(figs.kills)} {figs.kills}; final total {sum(final)} (expected {TOTAL})")
    assert figs.failures == [], figs.failures[:5]
    assert sum(final) == TOTAL and min(final) >= 0, final
    assert figs.committed > 0 and figs.reads_checked > 0 and figs.kills
    return figs


def test_bank_transfers_keep_the_total_through_kills(tmp_path: Path) -> None:
    _run_bank(tmp_path, duration_s=40, kill_every_s=8)


@pytest.mark.slow
def test_bank_transfers_keep_the_total_through_many_kills(tmp_path: Path) -> None:
    _run_bank(tmp_path, duration_s=240, kill_every_s=10)
