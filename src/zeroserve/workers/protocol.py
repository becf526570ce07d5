"""Frames between the server, the zygote and workers over Unix sockets.

A frame is `!II` (header length, body length), a JSON header, then the raw body. The body stays raw bytes
so a request payload crosses the socket without being re-encoded; the header carries ids and metadata.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_PREFIX = struct.Struct("!II")
MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 64 << 20

Header = dict[str, Any]


class ProtocolError(Exception):
    """The peer sent something that is not a frame."""


def encode(header: Header, body: bytes = b"") -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(raw), len(body)) + raw + body


def _check(header_len: int, body_len: int) -> None:
    if header_len > MAX_HEADER_BYTES or body_len > MAX_BODY_BYTES:
        raise ProtocolError(f"frame too large: header {header_len} B, body {body_len} B")


async def read_frame(reader: asyncio.StreamReader) -> tuple[Header, bytes]:
    """Read one frame; raises asyncio.IncompleteReadError at EOF."""
    header_len, body_len = _PREFIX.unpack(await reader.readexactly(_PREFIX.size))
    _check(header_len, body_len)
    header = json.loads(await reader.readexactly(header_len))
    body = await reader.readexactly(body_len) if body_len else b""
    return header, body


class FrameSocket:
    """Blocking frame reader/writer for the worker and zygote side (no event loop there)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def send(self, header: Header, body: bytes = b"") -> None:
        self.sock.sendall(encode(header, body))

    def _take_frame(self) -> tuple[Header, bytes] | None:
        if len(self._buffer) < _PREFIX.size:
            return None
        header_len, body_len = _PREFIX.unpack_from(self._buffer)
        _check(header_len, body_len)
        end = _PREFIX.size + header_len + body_len
        if len(self._buffer) < end:
            return None
        header = json.loads(bytes(self._buffer[_PREFIX.size : _PREFIX.size + header_len]))
        body = bytes(self._buffer[_PREFIX.size + header_len : end])
        del self._buffer[:end]
        return header, body

    def _fill(self, block: bool) -> bool:
        """Read what the socket has; False at EOF."""
        self.sock.setblocking(block)
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        finally:
            self.sock.setblocking(True)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def recv(self) -> tuple[Header, bytes] | None:
        """Block for one frame; None at EOF."""
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            if not self._fill(block=True):
                return None

    def recv_ready(self) -> list[tuple[Header, bytes]]:
        """Every complete frame available right now, without blocking (what piled up while busy)."""
        self._fill(block=False)
        frames = []
        while (frame := self._take_frame()) is not None:
            frames.append(frame)
        return frames
