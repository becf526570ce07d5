"""The cost meter: billable usage per endpoint, variant and minute, persisted in SQLite (survives restarts).

Its own SQLite file (`meter.sqlite3` in the data dir, table `meter_usage`), written by a background thread in
one transaction per batch; a file of its own so a meter commit never makes a control-plane write wait on the
database lock (that wait would be on the event loop).

One row per (endpoint, variant, minute) keeps the table small however many requests arrive, at the price of
`since` resolving to the minute (it is rounded down). Amounts are the exact integers of `billing.Charge`;
dollars are computed when reported, with the prices of the day.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zeroserve.metrics import billing
from zeroserve.metrics.background import BatchWriter
from zeroserve.metrics.events import InvocationRecord, NullObserver

BUCKET_S = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_usage (
    endpoint TEXT NOT NULL,
    variant TEXT NOT NULL,
    minute_s INTEGER NOT NULL,
    invocations INTEGER NOT NULL DEFAULT 0,
    cold_starts INTEGER NOT NULL DEFAULT 0,
    errors_4xx INTEGER NOT NULL DEFAULT 0,
    errors_5xx INTEGER NOT NULL DEFAULT 0,
    billed_ms INTEGER NOT NULL DEFAULT 0,
    mb_ms INTEGER NOT NULL DEFAULT 0,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    bytes_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, variant, minute_s)
);
CREATE INDEX IF NOT EXISTS meter_usage_minute ON meter_usage(minute_s);
"""
_COUNTS = (
    "invocations", "cold_starts", "errors_4xx", "errors_5xx", "billed_ms", "mb_ms", "bytes_in", "bytes_out",
)
_UPSERT = (
    f"INSERT INTO meter_usage (endpoint, variant, minute_s, {', '.join(_COUNTS)}) "
    f"VALUES (?, ?, ?, {', '.join('?' for _ in _COUNTS)}) "
    "ON CONFLICT (endpoint, variant, minute_s) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTS)
)


@dataclass(frozen=True)
class Usage:
    """Usage of one endpoint over a period: what `zeroserve cost` and `/zeroserve/cost` report."""

    endpoint: str
    invocations: int = 0
    cold_starts: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    charge: billing.Charge = field(default_factory=billing.Charge)

    @classmethod
    def of(cls, record: InvocationRecord) -> Usage:
        return cls(
            record.endpoint,
            invocations=1,
            cold_starts=int(record.cold_start),
            errors_4xx=int(400 <= record.status_code < 500),
            errors_5xx=int(record.status_code >= 500),
            charge=billing.charge(record),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.endpoint,
            self.invocations + other.invocations,
            self.cold_starts + other.cold_starts,
            self.errors_4xx + other.errors_4xx,
            self.errors_5xx + other.errors_5xx,
            self.charge + other.charge,
        )

    def counts(self) -> tuple[int, ...]:
        c = self.charge
        return (self.invocations, self.cold_starts, self.errors_4xx, self.errors_5xx,
                c.billed_ms, c.mb_ms, c.bytes_in, c.bytes_out)

    def as_dict(self, prices: billing.Prices) -> dict[str, Any]:
        c = self.charge
        return {
            "endpoint": self.endpoint,
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "billed_ms": c.billed_ms,
            "gb_seconds": c.gb_seconds,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "compute_usd": c.compute_usd(prices),
            "data_usd": c.data_usd(prices),
            "cost_usd": c.cost_usd(prices),
        }


class Meter(NullObserver):  # only invocations matter here
    """An Observer: every invocation record becomes usage; worker and concurrency reports are not billed."""

    def __init__(self, db_path: Path | str, batch_window_s: float = 1.0) -> None:
        self._connection = _open(db_path)
        self._lock = threading.Lock()  # the writer thread and report readers share the connection
        self._writer: BatchWriter[InvocationRecord] = BatchWriter("meter", self._write, batch_window_s)

    # --- Observer ------------------------------------------------------------------------------

    def invocation(self, record: InvocationRecord) -> None:
        self._writer.put(record)

    # --- reading -------------------------------------------------------------------------------

    def report(self, since_s: float | None = None, endpoint: str | None = None) -> list[Usage]:
        """Usage per endpoint since `since_s` (epoch seconds, rounded down to the minute; None: all of it).
        Blocks until records already observed are written, so call it off the event loop."""
        self._writer.flush()
        where = ["minute_s >= ?"]
        params: list[object] = [_bucket(since_s) if since_s is not None else 0]
        if endpoint is not None:
            where.append("endpoint = ?")
            params.append(endpoint)
        sums = ", ".join(f"SUM({c})" for c in _COUNTS)
        query = (
            f"SELECT endpoint, {sums} FROM meter_usage WHERE {' AND '.join(where)} "
            "GROUP BY endpoint ORDER BY endpoint"
        )
        with self._lock:
            rows = self._connection.execute(query, params).fetchall()
        return [_usage(row) for row in rows]

    def close(self) -> None:
        self._writer.close()
        with self._lock:
            self._connection.close()

    # --- writing (background thread) -----------------------------------------------------------

    def _write(self, records: list[InvocationRecord]) -> None:
        batch: dict[tuple[str, str, int], Usage] = {}
        for record in records:
            key = (record.endpoint, record.variant, _bucket(record.timestamp_s))
            usage = Usage.of(record)
            batch[key] = batch[key] + usage if key in batch else usage
        rows = [(*key, *usage.counts()) for key, usage in batch.items()]
        with self._lock:
            try:
                self._connection.execute("BEGIN")
                self._connection.executemany(_UPSERT, rows)
                self._connection.execute("COMMIT")
            except sqlite3.Error:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise


def _open(path: Path | str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Shared by the writer thread and report readers, serialised by Meter._lock.
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last second, never corrupt
    connection.executescript(_SCHEMA)
    return connection


def _bucket(timestamp_s: float) -> int:
    return int(timestamp_s // BUCKET_S) * BUCKET_S


def _usage(row: tuple[Any, ...]) -> Usage:
    endpoint, invocations, cold, e4, e5, billed_ms, mb_ms, bytes_in, bytes_out = row
    return Usage(endpoint, invocations, cold, e4, e5, billing.Charge(billed_ms, mb_ms, bytes_in, bytes_out))
