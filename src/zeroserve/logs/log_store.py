"""The log store behind the CloudWatch Logs API: groups, streams and events in their own SQLite file
(`logs.sqlite3` in the data dir, WAL), so it survives a restart and a burst of log lines never makes a
control-plane write wait.

`put` (the LogSink contract) only queues the batch with its ingestion time; a background thread writes the
queue a transaction at a time (metrics/background.py). Every read first flushes that queue, so a line put
before a read is visible to it. Groups and streams are created by their first event.

Ordering: events of a stream are kept in arrival order, and an event whose timestamp is older than the
stream's newest is stored at the newest timestamp (CloudWatch refuses such a batch instead). That keeps
timestamp order and arrival order the same, so a reader holding a position never misses a line that arrived
late.

Growth is bounded by bytes, as CloudWatch bills them (UTF-8 message + 26 bytes per event): a group past
`max_group_bytes` and the whole store past `max_total_bytes` lose their oldest events first, down to 90% of
the cap. Streams and groups stay (CloudWatch keeps an empty stream until its retention deletes it).
A message longer than CloudWatch's 256 KB event limit is cut to it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from zeroserve.logs.sink import LogEvent
from zeroserve.metrics.background import BatchWriter

EVENT_OVERHEAD_BYTES = 26  # CloudWatch's per-event accounting
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
DEFAULT_MAX_GROUP_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
_TRIM_TO = 0.9  # trimming goes a little below the cap, so a busy stream does not trim on every batch
_TRIM_CHUNK = 2000
LOGS_DB_NAME = "logs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_group (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_stream (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES log_group(id),
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, name)
);
CREATE TABLE IF NOT EXISTS log_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    ingestion_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_event_position ON log_event (stream_id, timestamp_ms, id);
"""

# A position between events: (timestamp_ms, id) of the first event after it.
Position = tuple[int, int]
START: Position = (0, 0)
END: Position = (2**62, 2**62)


@dataclass(frozen=True)
class GroupInfo:
    id: int
    name: str
    created_ms: int
    stored_bytes: int


@dataclass(frozen=True)
class StreamInfo:
    id: int
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    last_ingestion_ms: int | None
    stored_bytes: int


@dataclass(frozen=True)
class StoredEvent:
    id: int
    stream_id: int
    timestamp_ms: int
    ingestion_ms: int
    message: str

    @property
    def position(self) -> Position:
        return (self.timestamp_ms, self.id)

    @property
    def after(self) -> Position:
        return (self.timestamp_ms, self.id + 1)


@dataclass(frozen=True)
class _Put:
    group: str
    stream: str
    events: tuple[LogEvent, ...]
    ingestion_ms: int


@dataclass
class _StreamState:  # owned by the writer thread
    id: int
    group: str
    last_event_ms: int | None


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


def _clip(message: str) -> tuple[str, int]:
    data = message.encode("utf-8", "replace")
    if len(data) > MAX_EVENT_BYTES:
        data = data[:MAX_EVENT_BYTES]
        message = data.decode("utf-8", "ignore")
        data = message.encode()
    return message, len(data) + EVENT_OVERHEAD_BYTES


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
        self.max_group_bytes = max_group_bytes
        self.max_total_bytes = max_total_bytes
        self._write_db = _connect(path)
        self._write_db.executescript(_SCHEMA)
        self._read_db = _connect(path)
        self._read_lock = threading.Lock()
        # Writer-thread state: stream ids and newest timestamps, bytes per group and in all.
        self._streams: dict[tuple[str, str], _StreamState] = {}
        self._group_ids: dict[str, int] = {}
        self._group_bytes: dict[str, int] = defaultdict(int)
        self._total_bytes = 0
        self._reload_state()
        self._writer: BatchWriter[_Put] = BatchWriter("logs", self._write, batch_window_s)

    # --- LogSink (any thread, the event loop included) ----------------------------------------------

    def put(self, group: str, stream: str, events: Sequence[LogEvent]) -> None:
        if events:
            self._writer.put(_Put(group, stream, tuple(events), int(self.clock() * 1000)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
        with self._read_lock:
            self._read_db.close()
        self._write_db.close()

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

    # --- writing (the writer thread) -----------------------------------------------------------------

    def _write(self, puts: list[_Put]) -> None:
        db = self._write_db
        touched: set[str] = set()
        db.execute("BEGIN IMMEDIATE")
        try:
            for put in puts:
                state = self._stream_state(put.group, put.stream, put.ingestion_ms)
                rows = []
                newest = state.last_event_ms
                added_bytes = 0
                for timestamp_ms, raw in sorted(put.events, key=lambda event: event[0]):
                    stamp = max(int(timestamp_ms), newest if newest is not None else 0, 0)
                    message, size = _clip(raw)
                    rows.append((state.id, stamp, put.ingestion_ms, size, message))
                    newest = stamp
                    added_bytes += size
                db.executemany(
                    "INSERT INTO log_event (stream_id, timestamp_ms, ingestion_ms, bytes, message) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute(
                    "UPDATE log_stream SET first_event_ms = COALESCE(first_event_ms, ?), last_event_ms = ?, "
                    "last_ingestion_ms = ?, stored_bytes = stored_bytes + ? WHERE id = ?",
                    (rows[0][1], newest, put.ingestion_ms, added_bytes, state.id),
                )
                state.last_event_ms = newest
                self._group_bytes[put.group] += added_bytes
                self._total_bytes += added_bytes
                touched.add(put.group)
            for group in touched:
                if self._group_bytes[group] > self.max_group_bytes:
                    self._trim(self._group_ids[group], self._group_bytes[group] - self.max_group_bytes)
            if self._total_bytes > self.max_total_bytes:
                self._trim(None, self._total_bytes - self.max_total_bytes)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._reload_state()
            raise

    def _stream_state(self, group: str, stream: str, now_ms: int) -> _StreamState:
        state = self._streams.get((group, stream))
        if state is not None:
            return state
        db = self._write_db
        group_id = self._group_ids.get(group)
        if group_id is None:
            db.execute("INSERT OR IGNORE INTO log_group (name, created_ms) VALUES (?, ?)", (group, now_ms))
            group_id = db.execute("SELECT id FROM log_group WHERE name = ?", (group,)).fetchone()[0]
            self._group_ids[group] = group_id
        db.execute(
            "INSERT OR IGNORE INTO log_stream (group_id, name, created_ms) VALUES (?, ?, ?)",
            (group_id, stream, now_ms),
        )
        stream_id, last_event_ms = db.execute(
            "SELECT id, last_event_ms FROM log_stream WHERE group_id = ? AND name = ?", (group_id, stream)
        ).fetchone()
        state = self._streams[(group, stream)] = _StreamState(stream_id, group, last_event_ms)
        return state

    def _trim(self, group_id: int | None, excess_bytes: int) -> None:
        """Delete the oldest events (of one group, or of all) until `excess_bytes` and the slack are freed."""
        db = self._write_db
        cap = self.max_total_bytes if group_id is None else self.max_group_bytes
        goal = excess_bytes + int(cap * (1 - _TRIM_TO))
        freed = 0
        names = {state.id: state.group for state in self._streams.values()}
        while freed < goal:
            if group_id is None:
                rows = db.execute(
                    "SELECT id, stream_id, bytes FROM log_event ORDER BY id LIMIT ?", (_TRIM_CHUNK,)
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT e.id, e.stream_id, e.bytes FROM log_event e "
                    "JOIN log_stream s ON s.id = e.stream_id WHERE s.group_id = ? ORDER BY e.id LIMIT ?",
                    (group_id, _TRIM_CHUNK),
                ).fetchall()
            if not rows:
                break
            chosen = []
            for event_id, stream_id, size in rows:
                chosen.append((event_id, stream_id, size))
                freed += size
                if freed >= goal:
                    break
            per_stream: dict[int, int] = defaultdict(int)
            for _, stream_id, size in chosen:
                per_stream[stream_id] += size
            db.executemany("DELETE FROM log_event WHERE id = ?", [(event_id,) for event_id, _, _ in chosen])
            for stream_id, size in per_stream.items():
                db.execute(
                    "UPDATE log_stream SET stored_bytes = stored_bytes - ? WHERE id = ?", (size, stream_id)
                )
                group = names.get(stream_id) or self._group_of(stream_id)
                self._group_bytes[group] -= size
                self._total_bytes -= size

    def _group_of(self, stream_id: int) -> str:
        row = self._write_db.execute(
            "SELECT g.name FROM log_stream s JOIN log_group g ON g.id = s.group_id WHERE s.id = ?",
            (stream_id,),
        ).fetchone()
        return str(row[0])

    def _reload_state(self) -> None:
        """What the writer believes, read from the file (at open, and after a failed batch)."""
        self._streams.clear()
        self._group_ids.clear()
        self._group_bytes.clear()
        for name, group_id, stored in self._write_db.execute(
            "SELECT g.name, g.id, COALESCE(SUM(s.stored_bytes), 0) FROM log_group g "
            "LEFT JOIN log_stream s ON s.group_id = g.id GROUP BY g.id"
        ):
            self._group_ids[name] = group_id
            self._group_bytes[name] = stored
        self._total_bytes = sum(self._group_bytes.values())
