"""What the log store keeps and hands back: the SQLite schema (groups, streams, events), the rows readers
get, and positions between events.

Both sides open the file the same way (`connect`): the writer thread (logs/log_writer.py) and the readers
(logs/log_store.py) each hold their own connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
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


def connect(path: Path) -> sqlite3.Connection:
    """WAL, so readers never wait for the writer's transaction (nor it for them)."""
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


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
