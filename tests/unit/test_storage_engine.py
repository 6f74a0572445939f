"""Conformance tests every Engine must pass (memory and LMDB), plus LMDB durability."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quorumdb.storage.engine import Engine, StorageFullError, prefix_successor
from quorumdb.storage.lmdb_engine import LmdbEngine
from quorumdb.storage.memory import MemoryEngine


@pytest.fixture(params=["memory", "lmdb"])
def engine(request: Any, tmp_path: Any) -> Iterator[Engine]:
    e: Engine = MemoryEngine() if request.param == "memory" else LmdbEngine(str(tmp_path / "db"))
    yield e
    e.close()


def keys_of(it: Iterator[tuple[bytes, bytes]]) -> list[bytes]:
    return [k for k, _ in it]


def test_get_put_delete(engine: Engine) -> None:
    assert engine.get(b"a") is None
    engine.write_batch([(b"a", b"1"), (b"b", b"2")])
    assert engine.get(b"a") == b"1"
    engine.write_batch([(b"a", b"3")], [b"b"])
    assert engine.get(b"a") == b"3"
    assert engine.get(b"b") is None


def test_ordering_is_bytewise(engine: Engine) -> None:
    ks = [b"\x00", b"\x00\x00", b"\x01", b"a", b"ab", b"b", b"\xff", b"\xff\xff"]
    engine.write_batch([(k, k) for k in reversed(ks)])
    with engine.snapshot() as s:
        assert keys_of(s.iterate()) == ks
        assert keys_of(s.iterate(reverse=True)) == ks[::-1]


def test_bounds_both_directions(engine: Engine) -> None:
    ks = [bytes([i]) for i in range(0, 20, 2)]  # 0,2,...,18
    engine.write_batch([(k, b"v") for k in ks])
    with engine.snapshot() as s:
        assert keys_of(s.iterate(b"\x04", b"\x0a")) == [b"\x04", b"\x06", b"\x08"]
        assert keys_of(s.iterate(b"\x04", b"\x0a", lo_inclusive=False, hi_inclusive=True)) == [
            b"\x06",
            b"\x08",
            b"\x0a",
        ]
        assert keys_of(s.iterate(b"\x03", b"\x09")) == [b"\x04", b"\x06", b"\x08"]
        assert keys_of(s.iterate(b"\x04", b"\x0a", reverse=True)) == [b"\x08", b"\x06", b"\x04"]
        assert keys_of(s.iterate(b"\x04", b"\x0a", lo_inclusive=False, hi_inclusive=True, reverse=True)) == [
            b"\x0a",
            b"\x08",
            b"\x06",
        ]
        assert keys_of(s.iterate(b"\x03", b"\x09", reverse=True)) == [b"\x08", b"\x06", b"\x04"]
        assert keys_of(s.iterate(None, b"\x04", reverse=True)) == [b"\x02", b"\x00"]
        assert keys_of(s.iterate(b"\x10", None)) == [b"\x10", b"\x12"]
        assert keys_of(s.iterate(b"\x13", None)) == []
        assert keys_of(s.iterate(None, b"\x00")) == []
        assert keys_of(s.iterate(b"\x30", None, reverse=True)) == []
        assert keys_of(s.iterate(None, b"\x30", reverse=True))[:2] == [b"\x12", b"\x10"]


def test_empty_engine(engine: Engine) -> None:
    with engine.snapshot() as s:
        assert list(s.iterate()) == []
        assert list(s.iterate(reverse=True)) == []
        assert list(s.iterate(b"a", b"b", reverse=True)) == []


def test_snapshot_isolated_from_later_writes(engine: Engine) -> None:
    engine.write_batch([(b"k%03d" % i, b"old") for i in range(100)])
    snap = engine.snapshot()
    it = snap.iterate()
    first = next(it)
    engine.write_batch([(b"k%03d" % i, b"new") for i in range(100) if i != 50] + [(b"k999", b"new")], [b"k050"])
    rest = list(it)
    assert first == (b"k000", b"old")
    assert len(rest) == 99 and all(v == b"old" for _, v in rest)
    assert snap.get(b"k050") == b"old"
    assert snap.get(b"k999") is None
    snap.close()
    assert engine.get(b"k050") is None
    assert engine.get(b"k001") == b"new"


def test_write_txn_reads_own_writes_and_aborts(engine: Engine) -> None:
    engine.write_batch([(b"a", b"1"), (b"c", b"3")])
    txn = engine.begin_write()
    txn.put(b"b", b"2")
    assert txn.delete(b"c") is True
    assert txn.delete(b"zz") is False
    assert txn.get(b"b") == b"2"
    assert txn.get(b"c") is None
    assert list(txn.iterate()) == [(b"a", b"1"), (b"b", b"2")]
    assert list(txn.iterate(reverse=True)) == [(b"b", b"2"), (b"a", b"1")]
    assert engine.get(b"b") is None  # not visible before commit
    txn.abort()
    assert engine.get(b"b") is None and engine.get(b"c") == b"3"
    txn = engine.begin_write()
    txn.put(b"b", b"2")
    txn.commit()
    assert engine.get(b"b") == b"2"


def test_batch_is_atomic_for_snapshots(engine: Engine) -> None:
    txn = engine.begin_write()
    for i in range(2000):
        txn.put(b"%05d" % i, b"x")
    with engine.snapshot() as s:
        assert list(s.iterate()) == []
    txn.commit()
    with engine.snapshot() as s:
        assert len(list(s.iterate())) == 2000


def test_prefix_successor() -> None:
    assert prefix_successor(b"ab") == b"ac"
    assert prefix_successor(b"a\xff") == b"b"
    assert prefix_successor(b"\xff\xff") is None


class _Model:
    def __init__(self) -> None:
        self.d: dict[bytes, bytes] = {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.binary(min_size=1, max_size=4), st.binary(max_size=2)),
        max_size=120,
    ),
    lo=st.none() | st.binary(min_size=1, max_size=4),
    hi=st.none() | st.binary(min_size=1, max_size=4),
    lo_inc=st.booleans(),
    hi_inc=st.booleans(),
    reverse=st.booleans(),
)
def test_engines_match_a_dict(
    tmp_path_factory: Any,
    ops: list[tuple[bool, bytes, bytes]],
    lo: bytes | None,
    hi: bytes | None,
    lo_inc: bool,
    hi_inc: bool,
    reverse: bool,
) -> None:
    from quorumdb.storage import memory

    old = memory.CHUNK_MAX
    memory.CHUNK_MAX = 4  # force many chunks, splits and empty chunks
    try:
        check_against_dict(MemoryEngine(), ops, lo, hi, lo_inc, hi_inc, reverse)
        lm = LmdbEngine(str(tmp_path_factory.mktemp("lmdb")), durable=False)
        lm._dbs.inline_max = 2  # every key longer than 2 bytes goes through a bucket
        try:
            check_against_dict(lm, ops, lo, hi, lo_inc, hi_inc, reverse)
        finally:
            lm.close()
    finally:
        memory.CHUNK_MAX = old


def check_against_dict(
    e: Engine,
    ops: list[tuple[bool, bytes, bytes]],
    lo: bytes | None,
    hi: bytes | None,
    lo_inc: bool,
    hi_inc: bool,
    reverse: bool,
) -> None:
    model: dict[bytes, bytes] = {}
    for start in range(0, len(ops), 3):  # three changes per transaction
        txn = e.begin_write()
        for is_put, k, v in ops[start : start + 3]:
            if is_put:
                txn.put(k, v)
                model[k] = v
            else:
                txn.delete(k)
                model.pop(k, None)
            # the transaction's own view merges pending changes over the committed state
            assert list(txn.iterate()) == sorted(model.items())
            assert list(txn.iterate(reverse=True)) == sorted(model.items(), reverse=True)
        txn.commit()
    want = sorted(
        (k, v)
        for k, v in model.items()
        if (lo is None or k > lo or (k == lo and lo_inc)) and (hi is None or k < hi or (k == hi and hi_inc))
    )
    if reverse:
        want.reverse()
    with e.snapshot() as s:
        got = list(s.iterate(lo, hi, lo_inclusive=lo_inc, hi_inclusive=hi_inc, reverse=reverse))
    assert got == want
    for k, v in model.items():
        assert e.get(k) == v


def test_lmdb_durable_across_reopen(tmp_path: Any) -> None:
    path = str(tmp_path / "db")
    e = LmdbEngine(path)
    e.write_batch([(b"k%d" % i, b"v%d" % i) for i in range(100)])
    e.close()
    e = LmdbEngine(path)
    assert e.get(b"k42") == b"v42"
    with e.snapshot() as s:
        assert len(list(s.iterate())) == 100
    e.close()


def test_lmdb_map_grows_when_full(tmp_path: Any) -> None:
    e = LmdbEngine(str(tmp_path / "db"), map_size=1 << 20)
    before = e.map_size
    e.write_batch([(b"k%06d" % i, b"x" * 1000) for i in range(3000)])  # ~3 MB
    assert e.map_size > before
    assert e.get(b"k002999") == b"x" * 1000
    txn = e.begin_write()
    with pytest.raises(StorageFullError):
        for i in range(100_000):
            txn.put(b"z%06d" % i, b"y" * 1000)
    txn.abort()
    e.close()


def test_lmdb_shared_between_processes(tmp_path: Any) -> None:
    path = str(tmp_path / "db")
    e = LmdbEngine(path)
    e.write_batch([(b"mine", b"1")])
    code = (
        "import sys; from quorumdb.storage.lmdb_engine import LmdbEngine\n"
        "e = LmdbEngine(sys.argv[1]); assert e.get(b'mine') == b'1'\n"
        "e.write_batch([(b'theirs', b'2')]); e.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, path], check=True, env=dict(os.environ))
    assert e.get(b"theirs") == b"2"
    e.close()


def test_long_keys_keep_order(engine: Engine) -> None:
    base = b"p" * 505
    ks = sorted(
        [b"p" * 400, base, base + b"\x00", base + b"a" * 10, base + b"b" * 700, base + b"b" * 700 + b"c"]
        + [b"p" * 510 + bytes([i]) * 100 for i in range(0, 256, 51)]
        + [b"p" * 509 + b"q" * 600, b"p" * 511, b"p" * 512, b"p" * 520, b"q" * 800, b"o" * 900]
    )
    engine.write_batch([(k, b"v%d" % len(k)) for k in reversed(ks)])
    for k in ks:
        assert engine.get(k) == b"v%d" % len(k)
    with engine.snapshot() as s:
        assert keys_of(s.iterate()) == ks
        assert keys_of(s.iterate(reverse=True)) == ks[::-1]
        for i in range(len(ks)):
            for j in range(i, len(ks)):
                assert keys_of(s.iterate(ks[i], ks[j], lo_inclusive=False, hi_inclusive=True)) == ks[i + 1 : j + 1]
                assert keys_of(s.iterate(ks[i], ks[j], reverse=True)) == ks[i:j][::-1]
    engine.write_batch([], ks[::2])
    with engine.snapshot() as s:
        assert keys_of(s.iterate()) == ks[1::2]
    assert engine.get(ks[0]) is None and engine.get(ks[1]) is not None
