"""Length-prefixed msgpack frames: the byte format of every inter-node connection.

A frame is a 4-byte big-endian body length followed by a msgpack body. ``encode_frame`` makes
one; ``FrameDecoder`` is sans-I/O: feed it whatever bytes arrived and it returns the complete
frames so far, keeping the remainder. Frames above ``frame_size_bytes_max`` are refused, so a
corrupt or hostile peer cannot make us buffer without bound.

This module never touches sockets, never pickles, and never decodes msgpack extension types.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

__all__ = ["FrameError", "FrameDecoder", "encode_frame", "decode_body", "FRAME_SIZE_BYTES_MAX"]

FRAME_SIZE_BYTES_MAX = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames; the connection must be dropped."""


def encode_frame(obj: Any, *, frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    if len(body) > frame_size_bytes_max:
        raise FrameError(f"frame of {len(body)} bytes exceeds {frame_size_bytes_max}")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    __slots__ = ("_buf", "_max")

    def __init__(self, *, frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX) -> None:
        self._buf = bytearray()
        self._max = frame_size_bytes_max

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        out: list[Any] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > self._max:
                raise FrameError(f"incoming frame of {size} bytes exceeds {self._max}")
            end = pos + _HEADER.size + size
            if end > len(buf):
                break
            out.append(decode_body(bytes(buf[pos + _HEADER.size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


def decode_body(body: bytes) -> Any:
    """One msgpack body (no extension types); FrameError if it is not one."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_refuse_ext)
    except FrameError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise FrameError(f"undecodable frame: {exc}") from exc


def _refuse_ext(code: int, data: bytes) -> Any:
    raise FrameError(f"msgpack extension type {code} is not allowed")
