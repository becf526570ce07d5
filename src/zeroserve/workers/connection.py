"""The server's side of one worker: sends invocations, matches results to waiting requests by id, and hands
the tokens of a streamed generation to its `GenerationCall` as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from zeroserve.runtimes.base import GeneratedToken
from zeroserve.workers.generation_call import GenerationCall
from zeroserve.workers.protocol import Header, encode, read_frame


@dataclass(frozen=True)
class WorkerReply:
    status: str  # "ok" | "client_error" | "error"
    body: bytes
    content_type: str
    error: str
    model_us: int
    rss_mb: float
    batch_size: int = 1


class WorkerGone(Exception):
    """The worker's socket closed (it crashed, was killed or stopped) before it answered."""


class WorkerConnection:
    def __init__(
        self,
        worker_id: str,
        pid: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        killer: Callable[[int], None] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.pid = pid
        # How to SIGKILL the process: os.kill here; through its node's agent for a worker on another machine.
        self.killer = killer or _kill_local
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[WorkerReply]] = {}
        self._calls: dict[int, GenerationCall] = {}  # streamed generations, by request id
        self.closed = asyncio.get_running_loop().create_future()
        self._read_task: asyncio.Task[None] | None = None
        self._stopping = False

    async def wait_ready(self) -> Header:
        """The first frame after hello: `ready` (with setup_ms) or `failed` (with error)."""
        header, _ = await read_frame(self._reader)
        return header

    def start(self) -> None:
        self._read_task = asyncio.get_running_loop().create_task(self._read_replies())

    @property
    def inflight(self) -> int:
        return len(self._waiting)

    def submit(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> asyncio.Future[WorkerReply]:
        """Send one invocation now (no await between choosing this worker and writing to it, so it cannot be
        stopped in between) and return the future of its reply. WorkerGone if it is gone or stopping."""
        return self._send(body, content_type, accept, custom_attributes, {})[1]

    def submit_generate(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None, *, stream: bool
    ) -> GenerationCall:
        """Send one invocation for the handler's `generate` (its reply body is a `Generation`); `stream`:
        its tokens arrive in the call as they are generated. In flight (`inflight`) until it ends."""
        extra: Header = {"mode": "generate", "stream": True} if stream else {"mode": "generate"}
        request_id, future = self._send(body, content_type, accept, custom_attributes, extra)
        call = GenerationCall(future, lambda: self._cancel(request_id))
        if stream:
            self._calls[request_id] = call
            future.add_done_callback(lambda _: self._calls.pop(request_id, None))
        return call

    def _send(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None, extra: Header
    ) -> tuple[int, asyncio.Future[WorkerReply]]:
        if self.closed.done() or self._stopping:
            raise WorkerGone(self.worker_id)
        request_id = next(self._ids)
        future: asyncio.Future[WorkerReply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        future.add_done_callback(lambda _: self._waiting.pop(request_id, None))
        header: Header = {"type": "invoke", "id": request_id, "content_type": content_type, "accept": accept}
        if custom_attributes:
            header["custom_attributes"] = custom_attributes
        header.update(extra)
        self._writer.write(encode(header, body))
        return request_id, future

    def _cancel(self, request_id: int) -> None:
        # A stopping worker's writing side is half-closed already; it finishes the generation on its own.
        if not self._stopping and not self._writer.is_closing():
            self._writer.write(encode({"type": "cancel", "id": request_id}))

    async def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> WorkerReply:
        return await self.submit(body, content_type, accept, custom_attributes)

    async def _read_replies(self) -> None:
        try:
            while True:
                header, body = await read_frame(self._reader)
                if header.get("type") == "token":
                    call = self._calls.get(header.get("id", -1))
                    if call is not None:  # else: a token of a call cancelled meanwhile
                        call.push(GeneratedToken(**header["token"]))
                    continue
                # Out of the count before anyone learns of the reply (a done-callback would run later): a
                # stream's consumer sees the reply done at once and releases the worker, and the next request
                # must find it free, not in flight.
                future = self._waiting.pop(header.get("id", -1), None)
                self._calls.pop(header.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(
                        WorkerReply(
                            status=header.get("status", "error"),
                            body=body,
                            content_type=header.get("content_type", "application/json"),
                            error=header.get("error", ""),
                            model_us=int(header.get("model_us", 0)),
                            rss_mb=float(header.get("rss_mb", 0.0)),
                            batch_size=int(header.get("batch_size", 1)),
                        )
                    )
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError, TypeError, KeyError):
            pass
        finally:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(WorkerGone(self.worker_id))

    def stop(self) -> None:
        """Ask the worker to exit once it has answered what it holds. Half-close only: its replies to
        in-flight requests still come back, then its exit closes the socket."""
        self._stopping = True
        if not self._writer.is_closing():
            self._writer.write(encode({"type": "stop"}))
            if self._writer.can_write_eof():
                self._writer.write_eof()

    def kill(self) -> None:
        """For a worker that must not finish what it is doing (over its memory, past its timeout)."""
        self._stopping = True
        self.killer(self.pid)
        self._writer.close()


def _kill_local(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
