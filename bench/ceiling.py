"""A bare uvloop + httptools server answering every request with one fixed GetItem body.

It does no work at all, so wrk against it measures the load generator's own ceiling: the
benchmark shows this figure next to the targets' to prove wrk was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

BODY = b'{"Item":{"pk":{"S":"user00000001"},"data":{"S":"' + b"x" * 160 + b'"},"n":{"N":"1"}}}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"x-amzn-RequestId: 0\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class Proto(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.write(RESPONSE)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Proto, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
