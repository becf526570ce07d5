"""SQLite: one table per resource kind, each row a SageMaker-shaped JSON document plus the columns that
List* calls filter and sort on. WAL mode so readers never wait for a writer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

KINDS = ("model", "endpoint_config", "endpoint", "training_job")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {kind} (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    modified_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {kind}_created ON {kind}(created_at);
"""


def connect(path: Path | str) -> sqlite3.Connection:
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    for kind in KINDS:
        connection.executescript(_SCHEMA.format(kind=kind))
    return connection


class Database:
    """A connection shared by the event loop and deploy threads; a lock serialises statements."""

    def __init__(self, path: Path | str) -> None:
        self.connection = connect(path)
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self.connection.close()
