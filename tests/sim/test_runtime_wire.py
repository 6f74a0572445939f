"""Framing and the asyncio transport (the runtime's wire), tested on loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.runtime.framing import FrameDecoder, FrameError, encode_frame
from quorumdb.runtime.transport import Transport

payloads = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


@given(st.lists(payloads, max_size=6), st.data())
def test_frames_survive_any_split(objs: list[Any], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(o) for o in objs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    dec = FrameDecoder()
    out: list[Any] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += dec.feed(stream[prev:c])
        prev = c
    assert out == objs
    assert dec.buffered_bytes == 0


def test_oversized_and_garbage_frames_are_refused() -> None:
    with pytest.raises(FrameError):
        FrameDecoder(frame_size_bytes_max=10).feed((1000).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        encode_frame(b"x" * 100, frame_size_bytes_max=10)
    with pytest.raises(FrameError):
        FrameDecoder().feed((1).to_bytes(4, "big") + b"\xc1")
    ext = msgpack.packb(msgpack.ExtType(1, b"pickle?"))
    with pytest.raises(FrameError):
        FrameDecoder().feed(len(ext).to_bytes(4, "big") + ext)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


async def _until(pred: Any, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_transport_delivers_reconnects_and_authenticates() -> None:
    async def main() -> None:
        pa, pb, pc = _free_ports(3)
        got_a: list[tuple[str, Any]] = []
        got_b: list[tuple[str, Any]] = []
        got_c: list[tuple[str, Any]] = []
        addrs = {"a": ("127.0.0.1", pa), "b": ("127.0.0.1", pb)}
        a = Transport(node_id="a", group="g1", listen=addrs["a"], peers={"b": addrs["b"]},
                      on_message=lambda f, m: got_a.append((f, m)), secret=b"s3cret")
        b = Transport(node_id="b", group="g1", listen=addrs["b"], peers={"a": addrs["a"]},
                      on_message=lambda f, m: got_b.append((f, m)), secret=b"s3cret")
        await a.start()
        await b.start()
        for i in range(100):
            a.send("b", {"n": i})
        b.send("a", [1, 2])
        await _until(lambda: len(got_b) == 100 and len(got_a) == 1)
        assert [m["n"] for _, m in got_b] == list(range(100))
        assert got_a == [("b", [1, 2])]
        # b restarts: a reconnects and keeps delivering
        await b.close()
        b = Transport(node_id="b", group="g1", listen=addrs["b"], peers={"a": addrs["a"]},
                      on_message=lambda f, m: got_b.append((f, m)), secret=b"s3cret")
        await b.start()
        got_b.clear()

        async def pump() -> None:
            while not got_b:
                a.send("b", "again")
                await asyncio.sleep(0.02)

        await asyncio.wait_for(pump(), 10)
        assert got_b[0] == ("a", "again")
        # a node with the wrong secret is refused
        c = Transport(node_id="c", group="g1", listen=("127.0.0.1", pc), peers={"b": addrs["b"]},
                      on_message=lambda f, m: got_c.append((f, m)), secret=b"wrong")
        await c.start()
        for _ in range(20):
            c.send("b", "intruder")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert all(m != "intruder" for _, m in got_b)
        for t in (a, b, c):
            await t.close()

    asyncio.run(main())
