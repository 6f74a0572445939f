"""The bank-transfer workload, in FoundationDB's setup / run / check shape (check is the
world's ``BankChecker``).

* Movers send TransactWriteItems transfers: debit one account (only if its balance covers the
  amount), credit another, and sometimes also check a third account's balance, in random action
  order, under a fresh ClientRequestToken. A request with no final answer (timeout,
  UNAVAILABLE, IN_PROGRESS) is retried under the same token, to a random coordinator, up to
  ``attempts`` times. After an answer a mover sometimes sends the very same request again (a
  replay: it must get the same result) or a different one under the same token (it must get a
  mismatch).
* Readers send TransactGetItems over every account (in random order) and hand each successful
  read to the checker.
* Touchers send plain (non-transactional) writes to single accounts, straight to the account's
  partition: refused with TransactionConflict while a transaction holds the account.

Clients talk to nodes through the world's network (same delays, losses and partitions as the
servers' own traffic). All randomness is the world's seeded RNG; nothing reads the wall clock.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quorumdb.core.txn import (
    ActionKind,
    ReadItem,
    ReadRequest,
    ReasonCode,
    TxnAction,
    TxnResult,
    TxnStatus,
    WriteReply,
    WriteRequest,
)
from quorumdb.sim.checkers.transactions import WriteOutcome
from quorumdb.sim.txn.bank import Account

if TYPE_CHECKING:
    from quorumdb.sim.txn.world import TxnWorld

__all__ = ["WorkloadConfig", "BankWorkload", "ClientRequest", "ClientAnswer", "PlainRequest",
           "PlainAnswer"]


# -- what clients and servers say to each other (sim only) ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRequest:
    client: str
    seq: int
    write: WriteRequest | None = None
    read: ReadRequest | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAnswer:
    client: str
    seq: int
    result: TxnResult


@dataclass(frozen=True, slots=True, kw_only=True)
class PlainRequest:
    client: str
    seq: int
    action: TxnAction


@dataclass(frozen=True, slots=True, kw_only=True)
class PlainAnswer:
    client: str
    seq: int
    reply: WriteReply


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadConfig:
    movers: int = 4
    readers: int = 2
    touchers: int = 1
    amount_max: int = 60
    check_weight: float = 0.3
    replay_weight: float = 0.08
    mismatch_weight: float = 0.05
    return_item_weight: float = 0.5
    think_ms_max: float = 20.0
    timeout_ms: float = 1500.0
    attempts: int = 4


@dataclass(slots=True)
class _Client:
    name: str
    role: str  # "mover" | "reader" | "toucher"
    seq: int = 0  # of the request in flight (answers to older ones are ignored)
    busy: bool = False
    counter: int = 0
    # the write in flight
    token: str = ""
    kind: str = ""
    request: WriteRequest | None = None
    original: TxnResult | None = None
    tries: int = 0
    last: TxnResult | None = None
    # a follow-up to send next (replay or mismatch of the last answered request)
    follow: tuple[str, WriteRequest, TxnResult] | None = None
    order: tuple[int, ...] = field(default_factory=tuple)  # a read's account order


class BankWorkload:
    def __init__(self, world: TxnWorld, config: WorkloadConfig, accounts: tuple[Account, ...]) -> None:
        self.world = world
        self.cfg = config
        self.accounts = accounts
        self.clients: dict[str, _Client] = {}
        for i in range(config.movers):
            self.clients[f"m{i}"] = _Client(name=f"m{i}", role="mover")
        for i in range(config.readers):
            self.clients[f"r{i}"] = _Client(name=f"r{i}", role="reader")
        for i in range(config.touchers):
            self.clients[f"t{i}"] = _Client(name=f"t{i}", role="toucher")
        self.stopped = False
        self.stats: collections.Counter[str] = collections.Counter()

    @property
    def idle(self) -> bool:
        return not any(c.busy for c in self.clients.values())

    def setup(self) -> None:
        for name in self.clients:
            self._wake_later(name)

    def stop(self) -> None:
        """Start no new request (those in flight finish)."""
        self.stopped = True

    # -- events ---------------------------------------------------------------------------------

    def _wake_later(self, name: str) -> None:
        self.world.schedule(self.world.rng.uniform(0, self.cfg.think_ms_max), "client", name)

    def on_wake(self, name: str) -> None:
        c = self.clients[name]
        if c.busy:
            return
        if c.role == "mover" and c.request is not None and c.tries > 0:
            self._send_write(c)  # a retry of the request in flight
            return
        if self.stopped:
            return
        if c.role == "mover":
            self._start_write(c)
        elif c.role == "reader":
            self._start_read(c)
        else:
            self._start_touch(c)

    def on_answer(self, answer: ClientAnswer | PlainAnswer) -> None:
        c = self.clients[answer.client]
        if not c.busy or answer.seq != c.seq:
            return  # an answer to a request the client gave up on
        c.busy = False
        if isinstance(answer, PlainAnswer):
            self._touched(c, answer.reply)
        elif c.role == "reader":
            self._read_done(c, answer.result)
        else:
            self._write_answered(c, answer.result)

    def on_timeout(self, payload: tuple[str, int]) -> None:
        name, seq = payload
        c = self.clients[name]
        if not c.busy or c.seq != seq:
            return
        c.busy = False
        self.stats["timeouts"] += 1
        if c.role == "mover":
            self._write_answered(c, None)
        else:
            self._wake_later(name)

    # -- movers ---------------------------------------------------------------------------------

    def _transfer(self, src: Account, dst: Account, amount: int,
                  third: tuple[Account, int] | None) -> WriteRequest:
        rng = self.world.rng
        specs: list[tuple[Account, ActionKind, dict[str, Any]]] = [
            (src, ActionKind.UPDATE, {"add": -amount, "min": amount}),
            (dst, ActionKind.UPDATE, {"add": amount}),
        ]
        if third is not None:
            specs.append((third[0], ActionKind.CHECK, {"min": third[1]}))
        rng.shuffle(specs)
        actions = tuple(
            TxnAction(index=i, partition=a.partition, ref=a.ref, kind=kind, payload=payload,
                      return_item_on_failure=rng.random() < self.cfg.return_item_weight)
            for i, (a, kind, payload) in enumerate(specs)
        )
        fingerprint = repr([(a.ref.key, a.kind.value, sorted(a.payload.items())) for a in actions])
        return WriteRequest(actions=actions, fingerprint=fingerprint)

    def _start_write(self, c: _Client) -> None:
        rng = self.world.rng
        if c.follow is not None:
            c.kind, req, c.original = c.follow
            c.follow = None
            c.request = req
        else:
            c.counter += 1
            c.token = f"{c.name}-{c.counter}"
            src, dst = rng.sample(self.accounts, 2)
            third = None
            if len(self.accounts) > 2 and rng.random() < self.cfg.check_weight:
                other = rng.choice([a for a in self.accounts if a not in (src, dst)])
                third = (other, rng.randint(0, 150))
            req = self._transfer(src, dst, rng.randint(1, self.cfg.amount_max), third)
            c.kind, c.original = "transfer", None
        c.request = WriteRequest(actions=req.actions, token=c.token, fingerprint=req.fingerprint)
        c.tries = 0
        c.last = None
        self._send_write(c)

    def _send_write(self, c: _Client) -> None:
        assert c.request is not None
        c.tries += 1
        c.seq += 1
        c.busy = True
        node = self.world.rng.choice(self.world.coordinators)
        self.world.client_send(c.name, node, ClientRequest(client=c.name, seq=c.seq, write=c.request))
        self.world.schedule(self.cfg.timeout_ms, "client_timeout", (c.name, c.seq))
        self.stats["write_requests"] += 1

    def _write_answered(self, c: _Client, result: TxnResult | None) -> None:
        if result is not None:
            c.last = result
        final = result is not None and result.status in (
            TxnStatus.SUCCESS, TxnStatus.CANCELLED, TxnStatus.PARAMETER_MISMATCH)
        if not final and c.tries < self.cfg.attempts:
            if result is not None:
                self.stats[f"write_{result.status.value}"] += 1
            self._wake_later(c.name)  # retry under the same token
            return
        assert c.request is not None
        answer = result if final else None
        self.world.checker.outcome(WriteOutcome(client=c.name, token=c.token, kind=c.kind,
                                                actions=c.request.actions, result=answer,
                                                original=c.original))
        self._count(c.kind, answer)
        request = c.request
        c.request = None
        c.tries = 0
        rng = self.world.rng
        if answer is not None and c.kind == "transfer":
            if rng.random() < self.cfg.replay_weight:
                c.follow = ("replay", request, answer)
            elif answer.status is TxnStatus.SUCCESS and rng.random() < self.cfg.mismatch_weight:
                first = request.actions[0]
                changed = dict(first.payload)
                changed["min"] = changed.get("min", 0) + 1
                actions = (TxnAction(index=0, partition=first.partition, ref=first.ref,
                                     kind=first.kind, payload=changed),) + request.actions[1:]
                other = WriteRequest(actions=actions, fingerprint=request.fingerprint + "'")
                c.follow = ("mismatch", other, answer)
        self._wake_later(c.name)

    def _count(self, kind: str, r: TxnResult | None) -> None:
        s = self.stats
        if r is None:
            s["writes_unknown"] += 1
            return
        s[f"{kind}_{r.status.value}{'_replayed' if r.replayed else ''}"] += 1
        if r.status is TxnStatus.CANCELLED:
            codes = {x.code for x in r.reasons}
            if ReasonCode.TRANSACTION_CONFLICT in codes:
                s["write_conflicts"] += 1
            if ReasonCode.CONDITIONAL_CHECK_FAILED in codes:
                s["write_condition_failed"] += 1

    # -- readers --------------------------------------------------------------------------------

    def _start_read(self, c: _Client) -> None:
        order = list(range(len(self.accounts)))
        self.world.rng.shuffle(order)
        c.order = tuple(order)
        items = tuple(ReadItem(partition=self.accounts[i].partition, ref=self.accounts[i].ref)
                      for i in order)
        c.seq += 1
        c.busy = True
        node = self.world.rng.choice(self.world.coordinators)
        self.world.client_send(c.name, node, ClientRequest(client=c.name, seq=c.seq,
                                                           read=ReadRequest(items=items)))
        self.world.schedule(self.cfg.timeout_ms, "client_timeout", (c.name, c.seq))

    def _read_done(self, c: _Client, r: TxnResult) -> None:
        if r.status is TxnStatus.SUCCESS:
            images: list[Any] = [None] * len(self.accounts)
            for pos, i in enumerate(c.order):
                images[i] = r.items[pos]
            self.world.checker.read(tuple(images))
            self.stats["reads_ok"] += 1
        elif r.status is TxnStatus.CANCELLED:
            self.stats["read_conflicts"] += 1
        else:
            self.stats[f"reads_{r.status.value}"] += 1
        self._wake_later(c.name)

    # -- touchers -------------------------------------------------------------------------------

    def _start_touch(self, c: _Client) -> None:
        a = self.world.rng.choice(self.accounts)
        action = TxnAction(index=0, partition=a.partition, ref=a.ref, kind=ActionKind.UPDATE,
                           payload={"touch": 1})
        c.seq += 1
        c.busy = True
        self.world.client_send(c.name, a.partition, PlainRequest(client=c.name, seq=c.seq,
                                                                 action=action))
        self.world.schedule(self.cfg.timeout_ms, "client_timeout", (c.name, c.seq))

    def _touched(self, c: _Client, reply: WriteReply) -> None:
        if reply.ok:
            self.stats["plain_ok"] += 1
        elif reply.reason.code is ReasonCode.TRANSACTION_CONFLICT:
            self.stats["plain_conflicts"] += 1
        else:
            self.stats["plain_failed"] += 1
        self._wake_later(c.name)
