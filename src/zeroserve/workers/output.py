"""A worker's own output (stdout and stderr: tracebacks, print() in inference.py, library warnings), read by
the server from the Unix socket the worker put in place of its fds 1 and 2 (zygote.py `_redirect_output`).

Nothing is lost to a crash: every line the worker wrote before dying is in the kernel's socket buffer, and
the server reads until EOF, which comes only once the worker (and any child it started) is gone. Read on
the event loop a chunk at a time (an event, never a poll). `OutputLines` keeps a chatty worker from flooding
the log store: a line is cut at `max_line_bytes`, and a token bucket holds each worker to `lines_per_s` in
bursts of `burst_lines`. Lines over that are counted, not kept, except the newest `tail_lines`: at EOF they
are written anyway after a note of how many were dropped, so the traceback a flooding worker dies with
still lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from zeroserve.workers.protocol import Header

log = logging.getLogger("zeroserve.worker")
CHUNK_BYTES = 64 * 1024


class OutputSink(Protocol):
    """Where a worker's lines go (logs/endpoint_logs.py): (timestamp_ms, line) pairs, called on the loop."""

    def worker_output(
        self, endpoint: str, variant: str, worker_id: str, lines: Sequence[tuple[int, str]]
    ) -> None: ...


class OutputLines:
    """Bytes in, capped lines out. Pure: the caller passes the time (seconds, any monotonic-ish clock)."""

    def __init__(
        self,
        *,
        max_line_bytes: int = 8 * 1024,
        lines_per_s: float = 200.0,
        burst_lines: int = 2000,
        tail_lines: int = 200,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.lines_per_s = lines_per_s
        self.burst_lines = burst_lines
        self._partial = bytearray()
        self._cut_bytes = 0  # what was cut off the (over-long) line in _partial
        self._tokens = float(burst_lines)
        self._refilled_s: float | None = None
        self._dropped = 0
        self._tail: deque[bytes] = deque(maxlen=tail_lines)

    def feed(self, data: bytes, now_s: float) -> list[str]:
        return self._admit(self._split(data), now_s)

    def close(self, now_s: float) -> list[str]:
        """At EOF: the unterminated last line, then what was dropped since lines last passed, if any."""
        last = [self._finish(b"")] if self._partial or self._cut_bytes else []
        lines = self._admit(last, now_s)
        if self._dropped:
            kept = len(self._tail)
            lines.append(self._note(self._dropped, f"; its last {kept} lines follow" if kept else ""))
            lines += [_text(line) for line in self._tail if line.strip()]
            self._dropped = 0
            self._tail.clear()
        return [line for line in lines if line]

    # --- splitting ----------------------------------------------------------------------------------

    def _split(self, data: bytes) -> list[bytes]:
        pieces = data.split(b"\n")
        lines: list[bytes] = []
        if len(pieces) > 1:  # the first piece ends the line begun in earlier chunks, the last begins one
            middle = pieces[1:-1]
            if middle and max(map(len, middle)) > self.max_line_bytes:
                middle = [self._clip(line) for line in middle]
            lines = [self._finish(pieces[0]), *middle]
        self._extend(pieces[-1])
        return lines

    def _extend(self, piece: bytes) -> None:
        room = max(0, self.max_line_bytes - len(self._partial))
        self._partial += piece[:room]
        self._cut_bytes += max(0, len(piece) - room)

    def _finish(self, piece: bytes) -> bytes:
        self._extend(piece)
        line = bytes(self._partial)
        if self._cut_bytes:
            line += f" [... {self._cut_bytes} bytes cut]".encode()
        self._partial.clear()
        self._cut_bytes = 0
        return line

    def _clip(self, line: bytes) -> bytes:
        extra = len(line) - self.max_line_bytes
        return line if extra <= 0 else line[: self.max_line_bytes] + f" [... {extra} bytes cut]".encode()

    # --- the rate cap -------------------------------------------------------------------------------

    def _admit(self, lines: list[bytes], now_s: float) -> list[str]:
        if not lines:
            return []
        if self._refilled_s is not None:
            elapsed_s = max(0.0, now_s - self._refilled_s)
            self._tokens = min(float(self.burst_lines), self._tokens + elapsed_s * self.lines_per_s)
        self._refilled_s = now_s
        out: list[str] = []
        if self._tokens >= 1:  # while none may pass, a flood costs a count and a slice, not a loop per line
            lines = [line for line in lines if line.strip()]  # blank lines carry nothing
            if self._dropped:
                # Lines pass again: say how many went missing, then let the newest dropped ones compete
                # with these for the tokens, so a traceback split across the moment never loses its head.
                revived = list(self._tail)
                self._tail.clear()
                if lost := self._dropped - len(revived):
                    out.append(self._note(lost, ""))
                self._dropped = 0
                lines = revived + lines
        take = min(len(lines), int(self._tokens))
        self._tokens -= take
        out += [_text(line) for line in lines[:take]]
        dropped = lines[take:]
        if dropped:
            self._dropped += len(dropped)
            if self._tail.maxlen:
                self._tail.extend(dropped[-self._tail.maxlen :])
        return out

    def _note(self, count: int, suffix: str) -> str:
        return (
            f"zeroserve: {count} lines of this worker's output were dropped "
            f"(over {self.lines_per_s:.0f} lines/s){suffix}"
        )


def _text(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", "replace")


async def pump(
    hello: Header,
    reader: asyncio.StreamReader,
    sink: OutputSink | None,
    *,
    clock: Callable[[], float] = time.time,
    lines: OutputLines | None = None,
) -> None:
    """Read one worker's output connection until EOF, handing its lines to the sink and copying them to the
    server log (logger `zeroserve.worker`, INFO: `--log-level warning` turns the copy off)."""
    worker_id = str(hello.get("worker_id", ""))
    endpoint = str(hello.get("endpoint", ""))
    variant = str(hello.get("variant", ""))
    splitter = lines or OutputLines()
    prefix = f"[{endpoint}/{variant} {worker_id}]"

    def deliver(found: list[str]) -> None:
        if not found:
            return
        stamp_ms = int(clock() * 1000)
        if sink is not None and endpoint:
            sink.worker_output(endpoint, variant, worker_id, [(stamp_ms, line) for line in found])
        if log.isEnabledFor(logging.INFO):
            for line in found:
                log.info("%s %s", prefix, line)

    try:
        while chunk := await reader.read(CHUNK_BYTES):
            deliver(splitter.feed(chunk, clock()))
    except (ConnectionError, OSError):
        pass
    deliver(splitter.close(clock()))
