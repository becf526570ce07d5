"""Resource documents by kind and name. Inserting an existing name fails (so of two concurrent creates,
exactly one wins); every write is one statement, so a failed call changes nothing."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zeroserve.database.sqlite import KINDS, Database

Document = dict[str, Any]


class AlreadyExists(Exception):
    pass


@dataclass(frozen=True)
class Row:
    name: str
    created_at: float
    modified_at: float
    status: str
    raw_doc: str

    @functools.cached_property
    def doc(self) -> Document:
        # Parsed on first use: a List* call filters and sorts thousands of rows by their columns and
        # reads the documents of one page only.
        parsed: Document = json.loads(self.raw_doc)
        return parsed


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _table(kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        return kind

    def insert(self, kind: str, name: str, doc: Document, *, created_at: float, status: str = "") -> None:
        with self.db.lock:
            try:
                self.db.connection.execute(
                    f"INSERT INTO {self._table(kind)} (name, created_at, modified_at, status, doc) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, created_at, created_at, status, json.dumps(doc)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(name) from None

    def get(self, kind: str, name: str) -> Row | None:
        with self.db.lock:
            found = self.db.connection.execute(
                f"SELECT name, created_at, modified_at, status, doc FROM {self._table(kind)} WHERE name = ?",
                (name,),
            ).fetchone()
        return _row(found) if found else None

    def update(self, kind: str, name: str, doc: Document, *, modified_at: float, status: str = "") -> bool:
        with self.db.lock:
            cursor = self.db.connection.execute(
                f"UPDATE {self._table(kind)} SET doc = ?, modified_at = ?, status = ? WHERE name = ?",
                (json.dumps(doc), modified_at, status, name),
            )
        return cursor.rowcount == 1

    def delete(self, kind: str, name: str) -> bool:
        with self.db.lock:
            cursor = self.db.connection.execute(f"DELETE FROM {self._table(kind)} WHERE name = ?", (name,))
        return cursor.rowcount == 1

    def all(self, kind: str) -> Iterator[Row]:
        with self.db.lock:
            rows = self.db.connection.execute(
                f"SELECT name, created_at, modified_at, status, doc FROM {self._table(kind)} "
                "ORDER BY created_at"
            ).fetchall()
        return (_row(r) for r in rows)

    def count(self, kind: str) -> int:
        with self.db.lock:
            return int(self.db.connection.execute(f"SELECT COUNT(*) FROM {self._table(kind)}").fetchone()[0])


def _row(found: tuple[Any, ...]) -> Row:
    name, created_at, modified_at, status, doc = found
    return Row(name, created_at, modified_at, status, doc)
