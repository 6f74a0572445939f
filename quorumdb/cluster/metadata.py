"""The cluster metadata: membership, table catalog and partition map, as a pure state machine.

Every replica of the system Multi-Paxos group ``meta`` applies the same committed commands in
the same order to a ``Metadata`` and so holds the same state. Commands are plain msgpack-able
dicts (``{"op": ..., ...}``, built with the ``cmd_*`` helpers); ``apply`` returns a result
dict (``{"ok": True, ...}`` or ``{"ok": False, "error": ...}``) for the proposer and never
raises on a bad command: a refused command changes nothing. Every change bumps ``epoch``; a
partition carries the epoch of its last change, so a router can tell a stale map.

Routers query it: ``partition_for(table, hash)``, ``partitions(table)`` (hash order),
``groups_of(node)``, ``epoch``. ``snapshot()`` / ``restore()`` serialize the whole state.

A global secondary index is partitioned by its own key and replicated like a table: it has its
own partitions (``PartitionInfo.index`` names it), cut and placed as its table's are, created
with the table or by the UpdateTable that adds the index, removed with the index or the table
(``index_partitions(table, index)``). The metadata also gives new global indexes their ids
(never reused within a table, so a change left over for a dropped index cannot reach a new
one) and keeps their backfill state: an index added to a table is CREATING and backfilling
until ``index_ready`` says it has caught up; a table record sent by a client cannot undo that.

This module must never do I/O, read a clock or draw randomness: ``apply`` is deterministic.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgpack

from quorumdb.cluster.placement import (
    HASH_SPACE,
    TOKENS_DEFAULT,
    Tokens,
    preference_list,
    rebalance,
    ring_position,
    table_salt,
)
from quorumdb.core.paxos import incarnation_id

__all__ = [
    "META_GROUP",
    "REPLICATION_DEFAULT",
    "NodeInfo",
    "PartitionInfo",
    "Metadata",
    "cmd_join",
    "cmd_claim_life",
    "cmd_leave",
    "cmd_create_table",
    "cmd_update_table",
    "cmd_delete_table",
    "cmd_set_replicas",
    "cmd_index_ready",
    "index_space",
    "cmd_move",
    "cmd_finish_move",
    "meta_voter_target",
    "next_voter_change",
]

META_GROUP = "meta"
REPLICATION_DEFAULT = 3
ACTIVE = "active"
LEFT = "left"

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """A member. ``life`` counts the node's durable states: a node whose data directory was
    lost comes back with a new life, so its replicas have a new id (``pid``) that no group
    counts as a voter until a membership change adds it. ``incarnation`` counts process starts."""

    node_id: str
    incarnation: int
    peer_address: Address
    api_address: Address
    state: str = ACTIVE  # active | left
    life: int = 1

    @property
    def pid(self) -> str:
        """The replica id this node's current life runs every group under."""
        return incarnation_id(self.node_id, self.life)

    def to_wire(self) -> dict[str, Any]:
        return {"node": self.node_id, "incarnation": self.incarnation, "peer": list(self.peer_address),
                "api": list(self.api_address), "state": self.state, "life": self.life}

    @staticmethod
    def from_wire(raw: dict[str, Any]) -> NodeInfo:
        return NodeInfo(node_id=raw["node"], incarnation=raw["incarnation"], peer_address=_addr(raw["peer"]),
                        api_address=_addr(raw["api"]), state=raw["state"], life=raw.get("life", 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionInfo:
    """One partition: the hashes [hash_lo, hash_hi) of ``table``, replicated by group ``group_id``."""

    table: str
    group_id: str
    hash_lo: int
    hash_hi: int
    replicas: tuple[str, ...]
    epoch: int
    # The replica ids (``NodeInfo.pid``: node and life) the group was created with: they
    # bootstrap it with themselves as voters; a replica added later (or a founder's later life)
    # starts empty and is caught up by the group.
    founders: tuple[str, ...] = ()
    # The replica id of each of ``replicas`` (same order): the voters the group's leader
    # converges its membership to. A node placed on the group again later gets a new id, so a
    # replica never comes back as a voter that forgot its promises. Default: the founders.
    voters: tuple[str, ...] = ()
    # A replica move in progress: (node leaving or None for a pure addition, node arriving).
    # The arriving node is already in ``replicas``; ``finish_move`` drops the leaving one.
    moving: tuple[str | None, str] | None = None
    index: str = ""  # a global secondary index of ``table`` (its hash ranges are of the index key)

    def __post_init__(self) -> None:
        assert 0 <= self.hash_lo < self.hash_hi <= HASH_SPACE, (self.hash_lo, self.hash_hi)
        assert self.replicas and len(set(self.replicas)) == len(self.replicas)
        if not self.voters:
            object.__setattr__(self, "voters", self.founders if len(self.founders) == len(self.replicas)
                               else self.replicas)
        assert len(self.voters) == len(self.replicas)

    @property
    def replication(self) -> int:
        """How many replicas the partition should have (those it was created with)."""
        return len(self.founders) or len(self.replicas)

    def replica_id(self, node_id: str) -> str:
        """The replica id ``node_id`` runs this group under (it must be one of ``replicas``)."""
        return self.voters[self.replicas.index(node_id)]

    @property
    def space(self) -> str:
        return index_space(self.table, self.index)

    def to_wire(self) -> dict[str, Any]:
        # "last" (inclusive) because 2**64 does not fit a msgpack integer.
        out = {"table": self.table, "group": self.group_id, "lo": self.hash_lo, "last": self.hash_hi - 1,
               "replicas": list(self.replicas), "epoch": self.epoch,
               "founders": list(self.founders), "voters": list(self.voters),
               "moving": list(self.moving) if self.moving else None}
        if self.index:
            out["index"] = self.index
        return out

    @staticmethod
    def from_wire(raw: dict[str, Any]) -> PartitionInfo:
        return PartitionInfo(table=raw["table"], group_id=raw["group"], hash_lo=raw["lo"], hash_hi=raw["last"] + 1,
                             replicas=tuple(raw["replicas"]), epoch=raw["epoch"],
                             founders=tuple(raw["founders"]), voters=tuple(raw.get("voters") or ()),
                             moving=(raw["moving"][0], raw["moving"][1]) if raw.get("moving") else None,
                             index=raw.get("index", ""))


def index_space(table: str, index: str = "") -> str:
    """The partition map's name for a table's partitions ("" index) or a global index's. Table
    and index names have no "/", so the names never collide."""
    return f"{table}/{index}" if index else table


def _addr(raw: Any) -> Address:
    if not isinstance(raw, list | tuple) or len(raw) != 2 or not isinstance(raw[0], str) or not isinstance(raw[1], int):
        raise ValueError(f"bad address {raw!r}")
    return raw[0], raw[1]


# -- commands ------------------------------------------------------------------------------------


def cmd_join(node_id: str, incarnation: int, peer: Address, api: Address, life: int = 1) -> dict[str, Any]:
    return {"op": "join", "node": node_id, "incarnation": incarnation, "peer": list(peer), "api": list(api),
            "life": life}


def cmd_claim_life(node_id: str) -> dict[str, Any]:
    """A node starting over an empty data directory claims a life never used by its name
    (the result's ``life``): 1 for a name the cluster never saw, else one above every life
    claimed before. Committed through the meta group, so two claims never get the same life."""
    return {"op": "claim_life", "node": node_id}


def cmd_leave(node_id: str) -> dict[str, Any]:
    return {"op": "leave", "node": node_id}


def cmd_create_table(table_record: dict[str, Any], partitions: int, replication: int = REPLICATION_DEFAULT) -> dict[str, Any]:
    """Create a table (``TableDef.to_record()``) cut into ``partitions`` equal hash ranges. The
    metadata assigns ``table_id`` (the record's is ignored)."""
    return {"op": "create_table", "table": table_record, "partitions": partitions, "replication": replication}


def cmd_update_table(table_record: dict[str, Any]) -> dict[str, Any]:
    return {"op": "update_table", "table": table_record}


def cmd_delete_table(name: str) -> dict[str, Any]:
    return {"op": "delete_table", "name": name}


def cmd_set_replicas(group_id: str, replicas: Sequence[str]) -> dict[str, Any]:
    return {"op": "set_replicas", "group": group_id, "replicas": list(replicas)}


def cmd_index_ready(table: str, index: str, index_id: int) -> dict[str, Any]:
    """The backfill of global index ``index`` (id ``index_id``) has caught up: make it ACTIVE."""
    return {"op": "index_ready", "table": table, "index": index, "index_id": index_id}


def cmd_move(group_id: str, src: str | None, dst: str) -> dict[str, Any]:
    """Start moving ``group_id``'s replica from node ``src`` (None: add one) to node ``dst``:
    ``dst`` joins the replicas at once (with a new replica id); ``src`` stays until
    ``cmd_finish_move``, so the group never has fewer replicas than it should."""
    return {"op": "move", "group": group_id, "src": src, "dst": dst}


def cmd_finish_move(group_id: str) -> dict[str, Any]:
    return {"op": "finish_move", "group": group_id}


def _refuse(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


# -- the state machine ---------------------------------------------------------------------------


class Metadata:
    """The metadata state; mutate only through ``apply`` (or ``restore``)."""

    def __init__(self, *, token_count: int = TOKENS_DEFAULT) -> None:
        self.epoch = 0
        self.applied_index = 0
        self.token_count = token_count
        self.nodes: dict[str, NodeInfo] = {}  # in join order
        self.tokens: Tokens = ()
        self.tables: dict[str, dict[str, Any]] = {}  # name -> TableDef record
        self._parts: dict[str, list[PartitionInfo]] = {}  # table -> partitions in hash order
        self._los: dict[str, list[int]] = {}
        self.next_table_id = 1
        self.next_group = 1
        self.lives: dict[str, int] = {}  # node -> highest life claimed

    # -- apply -------------------------------------------------------------------------------

    def apply(self, index: int, command: Any) -> dict[str, Any]:
        """Apply the committed command at log ``index``; deterministic, never raises."""
        assert index >= self.applied_index, (index, self.applied_index)
        self.applied_index = index
        if not isinstance(command, dict) or command.get("op") not in _OPS:
            return _refuse("invalid: unknown command")
        try:
            return _OPS[command["op"]](self, command)
        except (KeyError, TypeError, ValueError) as exc:
            return _refuse(f"invalid: {exc!r}")

    def _bump(self) -> int:
        self.epoch += 1
        return self.epoch

    def _join(self, c: dict[str, Any]) -> dict[str, Any]:
        life = _int(c.get("life", 1))
        node = NodeInfo(node_id=_str(c["node"]), incarnation=_int(c["incarnation"]), peer_address=_addr(c["peer"]),
                        api_address=_addr(c["api"]), life=life)
        old = self.nodes.get(node.node_id)
        if old == node:
            return {"ok": True, "epoch": self.epoch}
        if life < 1 or (old is not None and life < old.life):
            # An older copy of the node's data came back after a newer life joined: its
            # replicas were replaced, and its promises are no longer anyone's to keep.
            return _refuse(f"stale life {life} < {old.life if old else 1}")
        if old is not None and old.state == LEFT and life == old.life:
            return _refuse("this node left the cluster; start it over an empty data directory to join again")
        if old is not None and life == old.life and node.incarnation < old.incarnation:
            return _refuse(f"stale incarnation {node.incarnation} < {old.incarnation}")
        self.nodes[node.node_id] = node
        self.lives[node.node_id] = max(self.lives.get(node.node_id, 0), life)
        if old is not None and life > old.life:
            # Its data is gone: each of its replicas comes back as the new life's replica id,
            # which the group's leader adds as a voter (caught up by snapshot) before it removes
            # the old one.
            for p in self.groups_of(node.node_id):
                self._replace_part(p, voters=tuple(node.pid if r == node.node_id else v
                                                   for r, v in zip(p.replicas, p.voters, strict=True)),
                                   epoch=self.epoch + 1)  # the epoch this command ends at
        if old is None or old.state != ACTIVE:
            self._retoken()
        return {"ok": True, "epoch": self._bump()}

    def _claim_life(self, c: dict[str, Any]) -> dict[str, Any]:
        name = _str(c["node"])
        old = self.nodes.get(name)
        life = max(self.lives.get(name, 0), old.life if old is not None else 0) + 1
        self.lives[name] = life
        return {"ok": True, "epoch": self._bump(), "life": life}

    def _leave(self, c: dict[str, Any]) -> dict[str, Any]:
        old = self.nodes.get(_str(c["node"]))
        if old is None:
            return _refuse("unknown node")
        if old.state == LEFT:
            return {"ok": True, "epoch": self.epoch}
        if len(self.active_nodes()) == 1:
            return _refuse("the last node cannot leave")
        self.nodes[old.node_id] = replace(old, state=LEFT)
        self._retoken()
        return {"ok": True, "epoch": self._bump()}

    def _retoken(self) -> None:
        self.tokens = rebalance(self.tokens, self.active_nodes(), self.token_count)

    def _create_table(self, c: dict[str, Any]) -> dict[str, Any]:
        rec = dict(c["table"])
        name = _str(rec["name"])
        count = _int(c["partitions"])
        n = _int(c.get("replication", REPLICATION_DEFAULT))
        if name in self.tables:
            return _refuse("table exists")
        if not 1 <= count <= 1 << 16 or n < 1:
            return _refuse("invalid: partitions or replication out of range")
        if not self.tokens:
            return _refuse("no nodes")
        epoch = self._bump()
        rec["table_id"] = self.next_table_id
        self.next_table_id += 1
        # A new table has no items: its global indexes need no backfill.
        rec["indexes"] = [dict(ix, status="ACTIVE", backfilling=False) if not ix["local"] else ix
                          for ix in rec.get("indexes", [])]
        rec[_NEXT_INDEX] = 1 + max((_int(ix["index_id"]) for ix in rec["indexes"]), default=0)
        self.tables[name] = rec
        self._place(name, "", count, n, epoch)
        for ix in rec["indexes"]:
            if not ix["local"]:
                self._place(name, _str(ix["name"]), count, n, epoch)
        return {"ok": True, "epoch": epoch, "table": rec}

    def _place(self, table: str, index: str, count: int, n: int, epoch: int) -> None:
        """Cut the table's (or its global index's) hash space into ``count`` partitions of ``n``
        replicas each, placed on the ring."""
        space = index_space(table, index)
        salt = table_salt(space)
        parts = []
        for i in range(count):
            lo, hi = i * HASH_SPACE // count, (i + 1) * HASH_SPACE // count
            replicas = preference_list(self.tokens, ring_position(salt, lo), n)
            parts.append(PartitionInfo(table=table, group_id=f"g{self.next_group}", hash_lo=lo, hash_hi=hi,
                                       replicas=replicas, epoch=epoch,
                                       founders=tuple(self.nodes[r].pid for r in replicas), index=index))
            self.next_group += 1
        self._set_parts(space, parts)

    def _drop_space(self, space: str) -> None:
        self._parts.pop(space, None)
        self._los.pop(space, None)

    def _update_table(self, c: dict[str, Any]) -> dict[str, Any]:
        rec = dict(c["table"])
        old = self.tables.get(_str(rec["name"]))
        if old is None:
            return _refuse("no such table")
        rec["table_id"] = old["table_id"]
        name = _str(rec["name"])
        rec["indexes"], added, dropped = _merge_indexes(old, rec)
        rec[_NEXT_INDEX] = max([old.get(_NEXT_INDEX, 1)] + [_int(ix["index_id"]) + 1 for ix in rec["indexes"]])
        epoch = self._bump()
        self.tables[name] = rec
        base = self._parts.get(name, [])
        for ix_name in dropped:
            self._drop_space(index_space(name, ix_name))
        for ix_name in added:
            # As many partitions as the table, as many replicas as its first partition.
            self._place(name, ix_name, max(1, len(base)), len(base[0].replicas) if base else REPLICATION_DEFAULT, epoch)
        return {"ok": True, "epoch": epoch, "table": rec}

    def _index_ready(self, c: dict[str, Any]) -> dict[str, Any]:
        rec = self.tables.get(_str(c["table"]))
        if rec is None:
            return _refuse("no such table")
        name, iid = _str(c["index"]), _int(c["index_id"])
        ix = next((ix for ix in rec["indexes"] if ix["name"] == name and ix["index_id"] == iid), None)
        if ix is None:
            return _refuse("no such index")
        if not ix["backfilling"]:
            return {"ok": True, "epoch": self.epoch, "table": rec}
        rec = dict(rec, version=_int(rec["version"]) + 1,
                   indexes=[dict(i, status="ACTIVE", backfilling=False) if i is ix else i for i in rec["indexes"]])
        self.tables[rec["name"]] = rec
        return {"ok": True, "epoch": self._bump(), "table": rec}

    def _delete_table(self, c: dict[str, Any]) -> dict[str, Any]:
        name = _str(c["name"])
        rec = self.tables.pop(name, None)
        if rec is None:
            return _refuse("no such table")
        self._drop_space(name)
        for ix in rec.get("indexes", []):
            self._drop_space(index_space(name, ix["name"]))
        return {"ok": True, "epoch": self._bump(), "table": rec}

    def _set_replicas(self, c: dict[str, Any]) -> dict[str, Any]:
        replicas = tuple(_str(r) for r in c["replicas"])
        if not replicas or len(set(replicas)) != len(replicas):
            return _refuse("invalid: replicas must be distinct and non-empty")
        if any(self.nodes.get(r) is None for r in replicas):
            return _refuse("unknown node")
        found = self.partition(_str(c["group"]))
        if found is None:
            return _refuse("no such group")
        epoch = self._bump()
        voters = tuple(found.replica_id(r) if r in found.replicas else self._fresh_replica_id(r, epoch)
                       for r in replicas)
        self._replace_part(found, replicas=replicas, voters=voters, moving=None, epoch=epoch)
        return {"ok": True, "epoch": epoch}

    def _move(self, c: dict[str, Any]) -> dict[str, Any]:
        p = self.partition(_str(c["group"]))
        src = None if c.get("src") is None else _str(c["src"])
        dst = _str(c["dst"])
        if p is None:
            return _refuse("no such group")
        if p.moving is not None:
            return _refuse("a move of this group is in progress")
        if src is not None and src not in p.replicas:
            return _refuse(f"{src} holds no replica of {p.group_id}")
        info = self.nodes.get(dst)
        if info is None or info.state != ACTIVE or dst in p.replicas:
            return _refuse(f"{dst} cannot take a replica of {p.group_id}")
        epoch = self._bump()
        self._replace_part(p, replicas=(*p.replicas, dst), voters=(*p.voters, self._fresh_replica_id(dst, epoch)),
                           moving=(src, dst), epoch=epoch)
        return {"ok": True, "epoch": epoch}

    def _finish_move(self, c: dict[str, Any]) -> dict[str, Any]:
        p = self.partition(_str(c["group"]))
        if p is None or p.moving is None:
            return _refuse("no move in progress")
        src = p.moving[0]
        keep = [i for i, r in enumerate(p.replicas) if r != src]
        epoch = self._bump()
        self._replace_part(p, replicas=tuple(p.replicas[i] for i in keep), voters=tuple(p.voters[i] for i in keep),
                           moving=None, epoch=epoch)
        return {"ok": True, "epoch": epoch}

    def _fresh_replica_id(self, node_id: str, epoch: int) -> str:
        """A replica id never used before: the node's current life, qualified by the epoch."""
        return f"{node_id}@{self.nodes[node_id].life}.{epoch}"

    def _replace_part(self, p: PartitionInfo, **changes: Any) -> None:
        changes.setdefault("epoch", self.epoch)
        parts = self._parts[p.space]
        parts[parts.index(p)] = replace(p, **changes)

    def _set_parts(self, space: str, parts: list[PartitionInfo]) -> None:
        parts.sort(key=lambda p: p.hash_lo)
        assert parts[0].hash_lo == 0 and parts[-1].hash_hi == HASH_SPACE
        assert all(a.hash_hi == b.hash_lo for a, b in zip(parts, parts[1:], strict=False))
        assert all(p.space == space for p in parts)
        self._parts[space] = parts
        self._los[space] = [p.hash_lo for p in parts]

    # -- queries -----------------------------------------------------------------------------

    def pid_of(self, node_id: str) -> str | None:
        """The replica id of ``node_id``'s current life (None for a node that never joined)."""
        info = self.nodes.get(node_id)
        return info.pid if info is not None else None

    def left_nodes(self) -> list[str]:
        return [n for n, info in self.nodes.items() if info.state == LEFT]

    def active_nodes(self) -> list[str]:
        """Active node ids in join order."""
        return [n for n, info in self.nodes.items() if info.state == ACTIVE]

    def table_record(self, name: str) -> dict[str, Any] | None:
        return self.tables.get(name)

    def table_names(self) -> list[str]:
        return sorted(self.tables)

    def partitions(self, table: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[PartitionInfo]:
        """The partitions of ``table`` overlapping [hash_lo, hash_hi), in hash order."""
        parts = self._parts.get(table, [])
        return [p for p in parts if p.hash_lo < hash_hi and hash_lo < p.hash_hi]

    def index_partitions(self, table: str, index: str, hash_lo: int = 0, hash_hi: int = HASH_SPACE) -> list[PartitionInfo]:
        """The partitions of global index ``index`` of ``table`` overlapping [hash_lo, hash_hi)
        (of the index key's hash), in hash order."""
        return self.partitions(index_space(table, index), hash_lo, hash_hi)

    def partition_for(self, table: str, hash_value: int) -> PartitionInfo | None:
        """The partition of ``table`` holding partition-key hash ``hash_value`` (None: no table)."""
        los = self._los.get(table)
        if not los:
            return None
        return self._parts[table][bisect.bisect_right(los, hash_value) - 1]

    def partition(self, group_id: str) -> PartitionInfo | None:
        for parts in self._parts.values():
            for p in parts:
                if p.group_id == group_id:
                    return p
        return None

    def all_partitions(self) -> list[PartitionInfo]:
        return [p for t in sorted(self._parts) for p in self._parts[t]]

    def groups_of(self, node_id: str) -> list[PartitionInfo]:
        """The partitions ``node_id`` holds a replica of."""
        return [p for p in self.all_partitions() if node_id in p.replicas]

    # -- snapshots ---------------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "applied": self.applied_index, "q": self.token_count,
            "nodes": [n.to_wire() for n in self.nodes.values()], "tokens": list(self.tokens),
            "tables": self.tables, "parts": [p.to_wire() for p in self.all_partitions()],
            "next_table_id": self.next_table_id, "next_group": self.next_group, "lives": self.lives,
        }

    @staticmethod
    def from_wire(raw: dict[str, Any]) -> Metadata:
        m = Metadata(token_count=raw["q"])
        m.epoch = raw["epoch"]
        m.applied_index = raw["applied"]
        for n in raw["nodes"]:
            info = NodeInfo.from_wire(n)
            m.nodes[info.node_id] = info
        m.tokens = tuple(raw["tokens"])
        m.tables = dict(raw["tables"])
        by_table: dict[str, list[PartitionInfo]] = {}
        for p in raw["parts"]:
            info_p = PartitionInfo.from_wire(p)
            by_table.setdefault(info_p.space, []).append(info_p)
        for table, parts in by_table.items():
            m._set_parts(table, parts)
        m.next_table_id = raw["next_table_id"]
        m.next_group = raw["next_group"]
        m.lives = dict(raw.get("lives", {}))
        return m

    def snapshot(self) -> bytes:
        return msgpack.packb(self.to_wire(), use_bin_type=True)

    @staticmethod
    def restore(data: bytes) -> Metadata:
        return Metadata.from_wire(msgpack.unpackb(data, raw=False, strict_map_key=False))


_NEXT_INDEX = "next_index_id"  # in a table record: the id the next global index added gets


def _merge_indexes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The indexes of an updated table record, and the global indexes it adds and drops. An
    index kept keeps its id and its backfill state (the cluster owns them; a client's copy of
    the definition may be older); a global index added gets a fresh id and starts CREATING and
    backfilling."""
    before = {ix["name"]: ix for ix in old.get("indexes", [])}
    next_id = max([_int(old.get(_NEXT_INDEX, 1))] + [_int(ix["index_id"]) + 1 for ix in before.values()])
    out: list[dict[str, Any]] = []
    added: list[str] = []
    for ix in new.get("indexes", []):
        prev = before.get(_str(ix["name"]))
        if prev is None:
            if ix["local"]:
                raise ValueError("local secondary indexes cannot be added to a table")
            ix = dict(ix, index_id=next_id, status="CREATING", backfilling=True)
            next_id += 1
            added.append(ix["name"])
        elif prev["backfilling"]:
            ix = dict(ix, index_id=prev["index_id"], status=prev["status"], backfilling=True)
        else:
            status = prev["status"] if ix["status"] == "CREATING" else ix["status"]
            ix = dict(ix, index_id=prev["index_id"], status=status, backfilling=False)
        out.append(ix)
    kept = {ix["name"] for ix in out}
    dropped = [name for name, ix in before.items() if name not in kept and not ix["local"]]
    return out, added, dropped


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"expected an int, got {v!r}")
    return v


_OPS = {
    "join": Metadata._join,
    "claim_life": Metadata._claim_life,
    "leave": Metadata._leave,
    "create_table": Metadata._create_table,
    "update_table": Metadata._update_table,
    "delete_table": Metadata._delete_table,
    "set_replicas": Metadata._set_replicas,
    "index_ready": Metadata._index_ready,
    "move": Metadata._move,
    "finish_move": Metadata._finish_move,
}


# -- the meta group's own voters -----------------------------------------------------------------


def meta_voter_target(active: Sequence[str], current: Sequence[str], left: Collection[str] = ()) -> tuple[str, ...]:
    """The voters the meta group should have: 3 (5 once there are 5+ nodes), keeping current
    voters unless they ``left`` (a founding voter that has not registered yet is kept), then
    the earliest joined nodes."""
    keep = [n for n in current if n not in left]
    nodes = keep + [n for n in active if n not in keep]
    size = 5 if len(nodes) >= 5 else min(3, len(nodes))
    keep.sort(key=lambda n: (n in active, active.index(n) if n in active else 0))
    pick = keep[:size] + [n for n in active if n not in keep][: max(0, size - len(keep))]
    return tuple(sorted(pick))


def next_voter_change(current: Sequence[str], target: Sequence[str]) -> tuple[str, str] | None:
    """The next one-voter step from ``current`` towards ``target``: ("add", n), ("remove", n)
    or None. Adds come first, so a replacement never shrinks the group below its size."""
    for n in sorted(target):
        if n not in current:
            return "add", n
    for n in sorted(current):
        if n not in target:
            return "remove", n
    return None
