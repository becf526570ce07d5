"""The log store behind the CloudWatch Logs API: groups, streams and events in their own SQLite file
(`logs.sqlite3` in the data dir, WAL), so it survives a restart and a burst of log lines never makes a
control-plane write wait.

`put` (the LogSink contract) only queues the batch with its ingestion time; a background thread writes the
queue a transaction at a time (metrics/background.py, logs/log_writer.py, which also keeps arrival order
and bounds growth). Every read first flushes that queue, so a line put before a read is visible to it.
Groups and streams are created by their first event. The tables and the rows reads return are in
logs/log_records.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from zeroserve.logs.log_records import (
    END,
    SCHEMA,
    START,
    GroupInfo,
    Position,
    StoredEvent,
    StreamInfo,
    connect,
)
from zeroserve.logs.log_writer import DEFAULT_MAX_GROUP_BYTES, DEFAULT_MAX_TOTAL_BYTES, LogWriter, Put
from zeroserve.logs.sink import LogEvent
from zeroserve.metrics.background import BatchWriter

LOGS_DB_NAME = "logs.sqlite3"


class LogStore:
    """Implements LogSink. Reads block (SQLite): call them off the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        max_group_bytes: int = DEFAULT_MAX_GROUP_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        batch_window_s: float = 0.05,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        write_db = connect(path)
        write_db.executescript(SCHEMA)
        self._read_db = connect(path)
        self._read_lock = threading.Lock()
        self._ingest = LogWriter(write_db, max_group_bytes=max_group_bytes, max_total_bytes=max_total_bytes)
        self._writer: BatchWriter[Put] = BatchWriter("logs", self._ingest.write, batch_window_s)

    # --- LogSink (any thread, the event loop included) ----------------------------------------------

    def put(self, group: str, stream: str, events: Sequence[LogEvent]) -> None:
        if events:
            self._writer.put(Put(group, stream, tuple(events), int(self.clock() * 1000)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
        with self._read_lock:
            self._read_db.close()
        self._ingest.close()

    # --- reading -------------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        self._writer.flush()
        with self._read_lock:
            return self._read_db.execute(sql, args).fetchall()

    def groups(
        self, *, prefix: str = "", contains: str = "", after: str = "", limit: int = 50
    ) -> list[GroupInfo]:
        """Groups by name: starting with `prefix`, holding `contains` (case-insensitive), after `after`."""
        rows = self._query(
            "SELECT g.id, g.name, g.created_ms, COALESCE(SUM(s.stored_bytes), 0) FROM log_group g "
            "LEFT JOIN log_stream s ON s.group_id = g.id "
            "WHERE substr(g.name, 1, ?) = ? AND instr(lower(g.name), lower(?)) > 0 AND g.name > ? "
            "GROUP BY g.id ORDER BY g.name LIMIT ?",
            (len(prefix), prefix, contains, after, limit),
        )
        return [GroupInfo(*row) for row in rows]  # type: ignore[arg-type]

    def group(self, name: str) -> GroupInfo | None:
        found = self.groups(prefix=name, limit=1)
        return found[0] if found and found[0].name == name else None

    def streams(
        self,
        group_id: int,
        *,
        prefix: str = "",
        by_last_event: bool = False,
        descending: bool = False,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[StreamInfo]:
        """Streams of a group by name, or by last event time (then name); `after` is the sort key of the
        last stream of the previous page."""
        columns = ["COALESCE(last_event_ms, 0)", "name"] if by_last_event else ["name"]
        where = ["group_id = ?", "substr(name, 1, ?) = ?"]
        args: list[object] = [group_id, len(prefix), prefix]
        if after is not None:
            marks = ", ".join("?" * len(columns))
            where.append(f"({', '.join(columns)}) {'<' if descending else '>'} ({marks})")
            args.extend(after[-len(columns) :])
        order = ", ".join(f"{column} {'DESC' if descending else 'ASC'}" for column in columns)
        rows = self._query(
            "SELECT id, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes "
            f"FROM log_stream WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            (*args, limit),
        )
        return [StreamInfo(*row) for row in rows]  # type: ignore[arg-type]

    def stream(self, group_id: int, name: str) -> StreamInfo | None:
        found = self.streams(group_id, prefix=name, limit=1)
        return found[0] if found and found[0].name == name else None

    def events(
        self,
        stream_id: int,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        at: Position = START,
        backward: bool = False,
        limit: int = 10_000,
    ) -> list[StoredEvent]:
        """Up to `limit` events of one stream in [start_ms, end_ms), oldest first: the first ones after
        position `at`, or with `backward` the last ones before it."""
        end = END[0] if end_ms is None else end_ms
        compare, order = ("<", "DESC") if backward else (">=", "ASC")
        rows = self._query(
            "SELECT id, stream_id, timestamp_ms, ingestion_ms, message FROM log_event "
            "WHERE stream_id = ? AND timestamp_ms >= ? AND timestamp_ms < ? "
            f"AND (timestamp_ms, id) {compare} (?, ?) ORDER BY timestamp_ms {order}, id {order} LIMIT ?",
            (stream_id, start_ms, end, *at, limit),
        )
        found = [StoredEvent(*row) for row in rows]  # type: ignore[arg-type]
        return found[::-1] if backward else found

    def scan(
        self,
        stream_ids: Sequence[int],
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        at: Position = START,
        chunk: int = 1000,
    ) -> Iterator[StoredEvent]:
        """Events of several streams from position `at`, in timestamp order across them, read a chunk at a
        time (the caller stops when it has enough)."""
        end = END[0] if end_ms is None else end_ms
        marks = ", ".join("?" * len(stream_ids))
        while stream_ids:
            rows = self._query(
                "SELECT id, stream_id, timestamp_ms, ingestion_ms, message FROM log_event "
                f"WHERE stream_id IN ({marks}) AND timestamp_ms >= ? AND timestamp_ms < ? "
                "AND (timestamp_ms, id) >= (?, ?) ORDER BY timestamp_ms, id LIMIT ?",
                (*stream_ids, start_ms, end, *at, chunk),
            )
            for row in rows:
                event = StoredEvent(*row)  # type: ignore[arg-type]
                yield event
                at = event.after
            if len(rows) < chunk:
                return
