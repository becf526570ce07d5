"""The log store's writer: stores batches of log events a transaction at a time, on the store's writer
thread (metrics/background.py), and bounds the store's growth.

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
from collections import defaultdict
from dataclasses import dataclass

from zeroserve.logs.sink import LogEvent

EVENT_OVERHEAD_BYTES = 26  # CloudWatch's per-event accounting
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
DEFAULT_MAX_GROUP_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
_TRIM_TO = 0.9  # trimming goes a little below the cap, so a busy stream does not trim on every batch
_TRIM_CHUNK = 2000


@dataclass(frozen=True)
class Put:
    """One LogSink.put, queued for the writer with the time it arrived."""

    group: str
    stream: str
    events: tuple[LogEvent, ...]
    ingestion_ms: int


@dataclass
class _StreamState:
    id: int
    group: str
    last_event_ms: int | None


def clip(message: str) -> tuple[str, int]:
    """`message` cut to CloudWatch's event limit, and the bytes it counts for."""
    data = message.encode("utf-8", "replace")
    if len(data) > MAX_EVENT_BYTES:
        data = data[:MAX_EVENT_BYTES]
        message = data.decode("utf-8", "ignore")
        data = message.encode()
    return message, len(data) + EVENT_OVERHEAD_BYTES


class LogWriter:
    """Owns the write connection and what the writer believes: stream ids and newest timestamps, bytes per
    group and in all. Only the writer thread calls it (after it is made, before it is closed)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        max_group_bytes: int = DEFAULT_MAX_GROUP_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self._db = db
        self.max_group_bytes = max_group_bytes
        self.max_total_bytes = max_total_bytes
        self._streams: dict[tuple[str, str], _StreamState] = {}
        self._group_ids: dict[str, int] = {}
        self._group_bytes: dict[str, int] = defaultdict(int)
        self._total_bytes = 0
        self._reload_state()

    def close(self) -> None:
        self._db.close()

    def write(self, puts: list[Put]) -> None:
        """Store `puts` in one transaction, then trim what went over a cap; on failure nothing is kept."""
        db = self._db
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
                    message, size = clip(raw)
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
        db = self._db
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
        db = self._db
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
        row = self._db.execute(
            "SELECT g.name FROM log_stream s JOIN log_group g ON g.id = s.group_id WHERE s.id = ?",
            (stream_id,),
        ).fetchone()
        return str(row[0])

    def _reload_state(self) -> None:
        """What the writer believes, read from the file (at open, and after a failed batch)."""
        self._streams.clear()
        self._group_ids.clear()
        self._group_bytes.clear()
        for name, group_id, stored in self._db.execute(
            "SELECT g.name, g.id, COALESCE(SUM(s.stored_bytes), 0) FROM log_group g "
            "LEFT JOIN log_stream s ON s.group_id = g.id GROUP BY g.id"
        ):
            self._group_ids[name] = group_id
            self._group_bytes[name] = stored
        self._total_bytes = sum(self._group_bytes.values())
