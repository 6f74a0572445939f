"""Clients that drive a cluster through the DynamoDB API and record what they were told.

``RegisterClients`` run read/write/compare-and-set operations on a few keys (one item per key,
attribute ``v``) with boto3, each operation's invocation and completion recorded in a
``History`` in real-time order, for the linearizability checker
(``quorumdb.sim.checkers.linearizability``): a consistent GetItem is a read, a PutItem a
write, an UpdateItem with ``ConditionExpression v = :expected`` a compare-and-set whose
ConditionalCheckFailedException is a swap that did not happen. Anything else that goes wrong
(timeouts, connection errors, 5xx) leaves the operation's outcome unknown, as it must be.

``Ledger`` writes unique items and remembers which were acknowledged, to check afterwards that
not one of them was lost.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from quorumdb.sim.checkers.history import History, OpKind

__all__ = ["Recorder", "RegisterClients", "Ledger", "client_for"]


def client_for(endpoint: str, *, timeout_s: float = 3.0, retries: bool = False) -> Any:
    """A boto3 client that never retries (a retry would hide the outcome of the first try), or
    with ``retries`` one in boto3's standard retry mode, as an application would use."""
    retry = {"mode": "standard"} if retries else {"total_max_attempts": 1}
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="AKIDQUORUMTEST", aws_secret_access_key="secret",
        config=Config(retries=retry, connect_timeout=timeout_s,  # type: ignore[arg-type]
                      read_timeout=timeout_s, max_pool_connections=4),
    )


class Recorder:
    """A ``History`` shared by client threads: events recorded under one lock, so the
    recorded order is a real-time order."""

    def __init__(self) -> None:
        self.history = History()
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def invoke(self, process: int, kind: OpKind, key: str, value: Any = None) -> int:
        with self._lock:
            return self.history.invoke(process, kind, key, value, time=self._now())

    def ok(self, op_id: int, result: Any = None) -> None:
        with self._lock:
            self.history.ok(op_id, result, time=self._now())

    def unknown(self, op_id: int) -> None:
        with self._lock:
            self.history.unknown(op_id)


def _is_condition_failure(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _is_client_bug(e: ClientError) -> bool:
    code = e.response.get("Error", {}).get("Code", "")
    return code in ("ValidationException", "SerializationException", "ResourceNotFoundException")


@dataclass
class RegisterClients:
    endpoints: Sequence[str]
    table: str
    keys: Sequence[str]
    processes: int = 4
    seed: int = 1
    recorder: Recorder = field(default_factory=Recorder)
    errors: list[str] = field(default_factory=list)  # answers that are bugs, not faults
    done: int = 0
    unknown: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    # Values recently written or read per key: the expected values of compare-and-sets.
    _recent: dict[str, list[Any]] = field(default_factory=dict)

    def start(self) -> None:
        for p in range(self.processes):
            t = threading.Thread(target=self._run, args=(p,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> History:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.recorder.history

    def _run(self, process: int) -> None:
        rng = random.Random(self.seed * 1000 + process)
        clients = [client_for(e) for e in self.endpoints]
        counter = 0
        while not self._stop.is_set():
            client = rng.choice(clients)
            key = rng.choice(self.keys)
            r = rng.random()
            counter += 1
            value = process * 1_000_000 + counter
            if r < 0.45:
                self._op(process, OpKind.GET, key, None, functools.partial(self._get, client, key))
            elif r < 0.75:
                self._op(process, OpKind.PUT, key, value, functools.partial(self._put, client, key, value))
            else:
                expected = rng.choice(self._recent.get(key, [None]) or [None])
                self._op(process, OpKind.CAS, key, (expected, value), functools.partial(self._cas, client, key, expected, value))

    def _op(self, process: int, kind: OpKind, key: str, value: Any, call: Callable[[], Any]) -> None:
        op = self.recorder.invoke(process, kind, key, value)
        try:
            result = call()
        except ClientError as e:
            if kind is OpKind.CAS and _is_condition_failure(e):
                self.recorder.ok(op, False)
                self.done += 1
                return
            if _is_client_bug(e):
                self.errors.append(f"{kind} {key}: {e}")
            self.recorder.unknown(op)
            self.unknown += 1
            return
        except Exception:  # noqa: BLE001 - timeouts, connection resets: outcome unknown
            self.recorder.unknown(op)
            self.unknown += 1
            return
        self.recorder.ok(op, result)
        self.done += 1
        if kind is not OpKind.GET:
            new = value[1] if kind is OpKind.CAS else value
            self._recent.setdefault(key, []).append(new)
            del self._recent[key][:-4]
        elif result is not None:
            self._recent.setdefault(key, []).append(result)
            del self._recent[key][:-4]

    def _get(self, client: Any, key: str) -> Any:
        got = client.get_item(TableName=self.table, Key={"k": {"S": key}}, ConsistentRead=True)
        item = got.get("Item")
        return None if item is None else int(item["v"]["N"])

    def _put(self, client: Any, key: str, value: int) -> None:
        client.put_item(TableName=self.table, Item={"k": {"S": key}, "v": {"N": str(value)}})

    def _cas(self, client: Any, key: str, expected: Any, value: int) -> bool:
        if expected is None:
            client.put_item(TableName=self.table, Item={"k": {"S": key}, "v": {"N": str(value)}},
                            ConditionExpression="attribute_not_exists(k)")
        else:
            client.update_item(TableName=self.table, Key={"k": {"S": key}}, UpdateExpression="SET v = :n",
                               ConditionExpression="v = :e",
                               ExpressionAttributeValues={":n": {"N": str(value)}, ":e": {"N": str(expected)}})
        return True


@dataclass
class Ledger:
    """Writers of unique items; ``acked`` holds the keys whose PutItem answered 200."""

    endpoints: Sequence[str]
    table: str
    writers: int = 2
    retries: bool = False  # boto3's standard retry mode (an application's client)
    acked: set[str] = field(default_factory=set)
    failed: int = 0
    failed_5xx: int = 0  # failures whose (last) answer was an HTTP 5xx
    errors_5xx: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (end time, seconds) of acked puts
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for w in range(self.writers):
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, writer: int) -> None:
        clients = [client_for(e, retries=self.retries) for e in self.endpoints]
        n = 0
        while not self._stop.is_set():
            n += 1
            key = f"w{writer}-{n}"
            client = clients[n % len(clients)]
            start = time.monotonic()
            try:
                client.put_item(TableName=self.table, Item={"k": {"S": key}, "v": {"N": str(n)}})
            except Exception as exc:  # noqa: BLE001 - not acknowledged: it may or may not be there
                response = getattr(exc, "response", None) or {}
                status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                with self._lock:
                    self.failed += 1
                    self.failed_5xx += status >= 500
                    if status >= 500:
                        self.errors_5xx.append(str(exc))
                continue
            end = time.monotonic()
            with self._lock:
                self.acked.add(key)
                self.latencies.append((end, end - start))

    def missing(self, endpoint: str) -> list[str]:
        """Acknowledged keys a consistent read cannot find now."""
        client = client_for(endpoint, timeout_s=10)
        lost = []
        for key in sorted(self.acked):
            for _attempt in range(20):
                try:
                    got = client.get_item(TableName=self.table, Key={"k": {"S": key}}, ConsistentRead=True)
                    break
                except Exception:  # noqa: BLE001 - the cluster may still be electing
                    time.sleep(0.5)
            else:
                raise RuntimeError(f"could not read {key}")
            if "Item" not in got:
                lost.append(key)
        return lost
