"""The local store's S3 port: a byte pipe to weed's own S3 port that changes one thing, SSE-KMS requests.

SeaweedFS answers `x-amz-server-side-encryption: aws:kms` with InternalError unless a KMS is configured, and
the only place weed 4.48 reads a KMS from is the `-s3.config` JSON, whose presence turns authentication on:
every request signed with keys it does not list then fails with InvalidAccessKeyId (and a file with no
identities denies everything). Its one local provider also makes a random master key in memory at each
start, so objects it encrypted could not be read after the store restarts. SSE-S3 (`AES256`) has neither
problem: its key-encryption key lives in the filer (/etc/s3/sse_kek), under the data dir.

So requests asking for SSE-KMS get SSE-S3 instead: `aws:kms` (and `aws:kms:dsse`) becomes `AES256` and the
KMS key id, encryption context and bucket-key headers are dropped, before weed sees them. The object is
encrypted at rest and reads back after any restart; responses say `AES256`, not `aws:kms`. weed checks no
signatures here (no identities), so the changed headers do not break a client's SigV4 signature.

Only request heads are parsed (to find those headers and where each body ends, for keep-alive); bodies and
everything weed sends back are copied as they come. While weed is down (restarting) a connection is closed at
once and clients retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from zeroserve.local_s3.weed import HOST

log = logging.getLogger(__name__)

SSE_HEADER = b"x-amz-server-side-encryption"
_KMS_ALGORITHMS = {b"aws:kms", b"aws:kms:dsse"}
_KMS_ONLY_HEADERS = {
    b"x-amz-server-side-encryption-aws-kms-key-id",
    b"x-amz-server-side-encryption-context",
    b"x-amz-server-side-encryption-bucket-key-enabled",
}
_MAX_HEAD_BYTES = 1 << 20
_COPY_BYTES = 1 << 16
_CONNECT_TIMEOUT_S = 5.0


def rewrite_head(head: bytes) -> bytes:
    """A request head (request line + header lines + blank line) with SSE-KMS turned into SSE-S3; any other
    head comes back unchanged, byte for byte."""
    lines = head.split(b"\r\n")
    fields = [(line.split(b":", 1)[0].strip().lower(), line) for line in lines[1:] if b":" in line]
    if not any(name == SSE_HEADER and _value(line).lower() in _KMS_ALGORITHMS for name, line in fields):
        return head
    kept = [lines[0]]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower() if b":" in line else None
        if name == SSE_HEADER:
            kept.append(SSE_HEADER + b": AES256")
        elif name not in _KMS_ONLY_HEADERS:
            kept.append(line)
    return b"\r\n".join(kept)


def _value(line: bytes) -> bytes:
    return line.split(b":", 1)[1].strip()


def body_framing(head: bytes) -> tuple[bool, int]:
    """(chunked, content length) of the request whose head this is; (False, 0): no body."""
    chunked, length = False, 0
    for line in head.split(b"\r\n")[1:]:
        if b":" not in line:
            continue
        name = line.split(b":", 1)[0].strip().lower()
        if name == b"transfer-encoding" and b"chunked" in _value(line).lower():
            chunked = True
        elif name == b"content-length":
            length = int(_value(line))
    return chunked, length


class Front:
    """Listens on 127.0.0.1:`port` and forwards each connection to weed's S3 port, `target_port()` (None
    while no weed answers)."""

    def __init__(self, port: int, target_port: Callable[[], int | None]) -> None:
        self.port = port
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, HOST, self.port, limit=_MAX_HEAD_BYTES, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            port = self._target_port()
            if port is None:
                return
            try:
                weed_r, weed_w = await asyncio.wait_for(
                    asyncio.open_connection(HOST, port, limit=_MAX_HEAD_BYTES), _CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                return
            try:
                back = asyncio.ensure_future(_copy(weed_r, client_w))
                forth = asyncio.ensure_future(_forward_requests(client_r, weed_w))
                await asyncio.wait([back, forth], return_when=asyncio.FIRST_COMPLETED)
                for side in (back, forth):
                    side.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await side
            finally:
                await _close(weed_w)
        finally:
            await _close(client_w)
            self._connections.discard(task)


async def _forward_requests(client: asyncio.StreamReader, weed: asyncio.StreamWriter) -> None:
    """Request after request: the head, rewritten, then its body as it is."""
    while True:
        try:
            head = await client.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return  # the client is done, or sent no HTTP we can frame
        weed.write(rewrite_head(head))
        try:
            chunked, length = body_framing(head)
        except ValueError:
            return
        if chunked:
            await _copy_chunked(client, weed)
        else:
            await _copy_exactly(client, weed, length)
        await weed.drain()


async def _copy_exactly(source: asyncio.StreamReader, sink: asyncio.StreamWriter, length: int) -> None:
    while length > 0:
        data = await source.read(min(length, _COPY_BYTES))
        if not data:
            raise ConnectionError("request body cut short")
        sink.write(data)
        await sink.drain()
        length -= len(data)


async def _copy_chunked(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while True:
        size_line = await source.readuntil(b"\r\n")
        sink.write(size_line)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailer fields, then the blank line
                line = await source.readuntil(b"\r\n")
                sink.write(line)
                if line == b"\r\n":
                    return
        await _copy_exactly(source, sink, size + 2)  # the chunk and its CRLF


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(_COPY_BYTES):
        sink.write(data)
        await sink.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
