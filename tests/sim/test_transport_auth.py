"""Every frame after the handshake is authenticated: a tampered, replayed or forged frame is
refused and the link dropped; an authenticated dialer is learned as a peer; RPC over it."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest

from quorumdb.cluster.rpc import Rpc, RpcError, RpcTimeout
from quorumdb.runtime.framing import FrameDecoder, encode_frame
from quorumdb.runtime.transport import Transport, frame_tag, hello_frame, session_key
from tests.sim.test_runtime_wire import _free_ports, _until

SECRET = b"s3cret"


class _RawDialer:
    """A hand-driven dialer: does the real handshake, then sends whatever frames we say."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes) -> None:
        self.reader, self.writer, self.key, self.seq = reader, writer, key, 0

    @classmethod
    async def connect(cls, port: int, *, secret: bytes = SECRET, node: str = "x") -> _RawDialer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        decoder = FrameDecoder()
        frames: list[Any] = []
        while not frames:
            frames = decoder.feed(await reader.read(4096))
        nonce = b"n" * 16
        writer.write(encode_frame(hello_frame(secret, frames[0]["nonce"], node=node, group="g", nonce=nonce,
                                              addr=None)))
        return cls(reader, writer, session_key(secret, frames[0]["nonce"], nonce))

    @staticmethod
    def body(payload: Any, node: str = "x") -> bytes:
        return msgpack.packb({"g": "g", "f": node, "m": payload}, use_bin_type=True)

    def send(self, body: bytes, *, tag: bytes | None = None, seq: int | None = None) -> None:
        self.writer.write(encode_frame([body, tag if tag is not None else frame_tag(self.key, self.seq if seq is None else seq, body)]))
        self.seq += 1

    async def closed_by_peer(self) -> bool:
        await self.writer.drain()
        try:
            return await asyncio.wait_for(self.reader.read(1), 5) == b""
        except ConnectionResetError:
            return True


def test_tampered_replayed_and_forged_frames_are_refused() -> None:
    async def main() -> None:
        (port,) = _free_ports(1)
        got: list[tuple[str, Any]] = []
        t = Transport(node_id="b", group="g", listen=("127.0.0.1", port), peers={},
                      on_message=lambda f, m: got.append((f, m)), secret=SECRET)
        await t.start()
        try:
            # An honest frame is delivered; the same frame with one byte flipped is not, and the
            # link is dropped (nothing after it is read either).
            d = await _RawDialer.connect(port)
            d.send(d.body("hello"))
            await _until(lambda: got == [("x", "hello")])
            body = bytearray(d.body("pay 100"))
            good_tag = frame_tag(d.key, d.seq, bytes(body))
            body[body.index(b"1")] = ord("9")
            d.send(bytes(body), tag=good_tag)
            d.send(d.body("after"))
            assert await d.closed_by_peer()
            assert got == [("x", "hello")] and t.rejected_frames == 1

            # A replay: the first frame sent again (a valid tag, for frame number 0) is refused.
            d = await _RawDialer.connect(port)
            d.send(d.body("once"))
            await _until(lambda: got[-1] == ("x", "once"))
            d.send(d.body("once"), seq=0)
            assert await d.closed_by_peer()
            assert [m for _, m in got].count("once") == 1 and t.rejected_frames == 2

            # A frame MACed with a key from another secret (and an untagged frame) are refused.
            d = await _RawDialer.connect(port)
            d.writer.write(encode_frame([d.body("forged"), frame_tag(session_key(b"other", b"a", b"b"), 0, d.body("forged"))]))
            assert await d.closed_by_peer()
            d = await _RawDialer.connect(port)
            d.writer.write(encode_frame({"g": "g", "f": "x", "m": "plain"}))
            assert await d.closed_by_peer()
            assert all(m not in ("forged", "plain") for _, m in got) and t.rejected_frames == 4

            # A wrong secret fails the handshake itself.
            d = await _RawDialer.connect(port, secret=b"wrong")
            d.send(d.body("intruder"))
            assert await d.closed_by_peer()
            assert all(m != "intruder" for _, m in got)
        finally:
            await t.close()

    asyncio.run(main())


def test_a_dialer_is_learned_and_rpc_round_trips_with_errors_and_timeouts() -> None:
    async def main() -> None:
        pa, pb = _free_ports(2)
        rpcs: dict[str, Rpc] = {}

        def on_message(me: str) -> Any:
            return lambda src, m: rpcs[me].on_frame(src, m)

        # a knows b; b knows nobody and learns a from its handshake (learn_peers).
        a = Transport(node_id="a", group="g", listen=("127.0.0.1", pa), peers={"b": ("127.0.0.1", pb)},
                      on_message=on_message("a"), secret=SECRET)
        b = Transport(node_id="b", group="g", listen=("127.0.0.1", pb), peers={},
                      on_message=on_message("b"), secret=SECRET, learn_peers=True)
        rpcs["a"], rpcs["b"] = Rpc(a.send), Rpc(b.send)

        async def echo(src: str, payload: Any) -> Any:
            return {"from": src, "echo": payload}

        async def refuse(src: str, payload: Any) -> Any:
            raise RpcError("not_leader", "n7")

        async def crash(src: str, payload: Any) -> Any:
            raise RuntimeError("boom")

        async def hang(src: str, payload: Any) -> Any:
            await asyncio.sleep(30)

        for name, h in (("echo", echo), ("refuse", refuse), ("crash", crash), ("hang", hang)):
            rpcs["b"].register(name, h)
        with pytest.raises(ValueError):
            rpcs["b"].register("echo", echo)
        await a.start()
        await b.start()
        try:
            assert await rpcs["a"].call("b", "echo", [1, b"x"]) == {"from": "a", "echo": [1, b"x"]}
            assert b.peers() == {"a": ("127.0.0.1", pa)}, "b learned a's advertised address"
            many = await asyncio.gather(*(rpcs["a"].call("b", "echo", i) for i in range(50)))
            assert [r["echo"] for r in many] == list(range(50))
            with pytest.raises(RpcError) as err:
                await rpcs["a"].call("b", "refuse")
            assert (err.value.code, err.value.message) == ("not_leader", "n7")
            with pytest.raises(RpcError) as err:
                await rpcs["a"].call("b", "crash")
            assert err.value.code == "internal"
            with pytest.raises(RpcError) as err:
                await rpcs["a"].call("b", "nope")
            assert err.value.code == "no_method"
            with pytest.raises(RpcTimeout):
                await rpcs["a"].call("b", "hang", timeout_s=0.2)
            with pytest.raises(RpcError) as err:
                await rpcs["a"].call("zz", "echo")
            assert err.value.code == "unknown_peer"
            # and the other direction, over b's own outbound link to a
            rpcs["a"].register("echo", echo)
            assert (await rpcs["b"].call("a", "echo", "back"))["from"] == "b"
        finally:
            rpcs["a"].close()
            rpcs["b"].close()
            await a.close()
            await b.close()

    asyncio.run(main())
