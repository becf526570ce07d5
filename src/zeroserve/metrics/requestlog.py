"""The structured request log: one JSON line per invocation in `<logs_dir>/requests/<endpoint>.jsonl`.

Lines are formatted and appended by a background thread, a batch at a time, so the event loop never waits on
the disk. A file past `max_file_bytes` is rotated to `<endpoint>.jsonl.1` (one previous file is kept).
Readers page through a file by byte cursor: `read(tail=N)` gives the last N lines and a cursor, and
`read(after=cursor)` what was written since, which is how `zeroserve logs --follow` tails it; a cursor
from before a rotation is continued in the rotated file.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zeroserve.errors import ValidationError
from zeroserve.metrics import billing
from zeroserve.metrics.background import BatchWriter
from zeroserve.metrics.events import InvocationRecord, NullObserver

# SageMaker's endpoint name pattern: also what makes a name safe as a file name.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_READ_BLOCK_BYTES = 64 * 1024
MAX_PAGE_BYTES = 1024 * 1024  # one read(after=...) returns at most this much; the cursor says where to go on


def entry(record: InvocationRecord) -> dict[str, Any]:
    """The fields of one log line, in the order people read them; a generation's adds its time to first
    token (streams) and tokens generated."""
    line = {
        "timestamp_s": round(record.timestamp_s, 6),
        "endpoint": record.endpoint,
        "variant": record.variant,
        "status": record.status_code,
        "error": record.error_code,
        "cold": record.cold_start,
        "queue_ms": round(record.queue_ms, 3),
        "model_ms": round(record.model_ms, 3),
        "overhead_ms": round(record.overhead_ms, 3),
        "total_ms": round(record.total_ms, 3),
        "billed_ms": billing.charge(record).billed_ms,
        "memory_mb": record.memory_mb,
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
    }
    if record.tokens_generated or record.time_to_first_token_ms:
        line["ttft_ms"] = round(record.time_to_first_token_ms, 3)
        line["tokens"] = record.tokens_generated
    return line


@dataclass(frozen=True)
class LogPage:
    lines: list[dict[str, Any]]
    cursor: int  # byte offset to pass as `after` for what comes next


class RequestLog(NullObserver):  # only invocations matter here
    """An Observer writing invocation records; worker and concurrency reports are not logged here."""

    def __init__(
        self, folder: Path, batch_window_s: float = 0.2, max_file_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self._writer: BatchWriter[InvocationRecord] = BatchWriter("requestlog", self._write, batch_window_s)
        self._repaired: set[Path] = set()  # files whose tail this process checked (writer thread only)

    def path_for(self, endpoint: str) -> Path:
        if not _ENDPOINT_NAME.match(endpoint):
            raise ValidationError(f"{endpoint!r} is not a valid endpoint name.")
        return self.folder / f"{endpoint}.jsonl"

    # --- Observer ------------------------------------------------------------------------------

    def invocation(self, record: InvocationRecord) -> None:
        self._writer.put(record)

    # --- reading (blocking: call off the event loop) -------------------------------------------

    def read(self, endpoint: str, *, tail: int = 100, after: int | None = None) -> LogPage:
        """The last `tail` lines, or, with `after`, the lines written since that cursor (a cursor that no
        longer fits the current file was given out before a rotation: the rest of the rotated file comes
        first)."""
        path = self.path_for(endpoint)
        rotated = path.with_name(path.name + ".1")
        self._writer.flush()
        if after is None:
            newer = _last_lines(path, tail)
            older = _last_lines(rotated, tail - newer.count(b"\n")) if newer.count(b"\n") < tail else b""
            data, cursor = older + newer, _size(path)
        elif _is_line_start(path, after):
            data, cursor = _read_from(path, after)
        else:
            older = _read_from(rotated, after)[0] if _is_line_start(rotated, after) else b""
            newer, cursor = _read_from(path, 0)
            data = older + newer
        return LogPage([json.loads(line) for line in data.splitlines() if line.strip()], cursor)

    def close(self) -> None:
        self._writer.close()

    # --- writing (background thread) -----------------------------------------------------------

    def _write(self, records: list[InvocationRecord]) -> None:
        by_endpoint: dict[str, list[str]] = defaultdict(list)
        for record in records:
            by_endpoint[record.endpoint].append(json.dumps(entry(record)) + "\n")
        for endpoint, lines in by_endpoint.items():
            path = self.folder / f"{endpoint}.jsonl"
            # Rotating before a write (not after) keeps the newest lines in the current file for tails.
            if _size(path) >= self.max_file_bytes:
                path.replace(path.with_name(path.name + ".1"))
            if path not in self._repaired:
                _drop_partial_line(path)
                self._repaired.add(path)
            with path.open("a", encoding="utf-8") as file:
                file.writelines(lines)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _drop_partial_line(path: Path) -> None:
    """A server killed mid-write leaves a line without its newline: cut it, so the next line starts clean
    (what was lost is only what was not yet flushed)."""
    try:
        with path.open("r+b") as file:
            end = file.seek(0, os.SEEK_END)
            if end == 0:
                return
            file.seek(max(0, end - _READ_BLOCK_BYTES))
            tail = file.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            file.truncate(end - len(tail) + cut + 1 if cut >= 0 else (0 if end <= _READ_BLOCK_BYTES else end))
    except FileNotFoundError:
        return


def _is_line_start(path: Path, offset: int) -> bool:
    """Whether a cursor can belong to this file: within it, at the start of a line."""
    if offset == 0:
        return True
    try:
        with path.open("rb") as file:
            if offset > file.seek(0, os.SEEK_END):
                return False
            file.seek(offset - 1)
            return file.read(1) == b"\n"
    except FileNotFoundError:
        return False


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """Whole lines from `offset`, up to MAX_PAGE_BYTES, and the cursor after them."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            data = file.read(MAX_PAGE_BYTES)
    except FileNotFoundError:
        return b"", offset
    data = data[: data.rfind(b"\n") + 1]  # a partial last line comes next time
    return data, offset + len(data)


def _last_lines(path: Path, count: int) -> bytes:
    """The last `count` whole lines of a file, reading backwards a block at a time."""
    if count <= 0:
        return b""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return b""
    with file:
        end = file.seek(0, os.SEEK_END)
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - _READ_BLOCK_BYTES)
            file.seek(start)
            data = file.read(end - start) + data
            end = start
    return b"".join(data.splitlines(keepends=True)[-count:])
