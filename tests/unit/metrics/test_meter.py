"""The cost meter sums records per endpoint into SQLite, filters by period and survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_records import T0_S, record
from zeroserve.metrics.billing import Charge, Prices
from zeroserve.metrics.meter import Meter, Usage


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meter.sqlite3"


@pytest.fixture
def meter(db_path: Path) -> Iterator[Meter]:
    opened = Meter(db_path, batch_window_s=0.01)
    yield opened
    opened.close()


def test_usage_per_endpoint_sums_invocations_cold_starts_errors_and_charges(meter: Meter) -> None:
    meter.invocation(record(model_ms=10.0, memory_mb=1024, cold_start=True, bytes_in=100, bytes_out=40))
    meter.invocation(record(model_ms=2.2, memory_mb=1024, bytes_in=50, bytes_out=20))
    meter.invocation(record(status_code=424, error_code="ModelError", model_ms=0.5, memory_mb=1024,
                            bytes_in=7, bytes_out=90))
    meter.invocation(record(status_code=400, error_code="ThrottlingException", model_ms=0.0, bytes_in=1000))
    meter.invocation(record(status_code=500, error_code="InternalFailure", model_ms=0.0))
    meter.invocation(record(endpoint="other", model_ms=1.0, memory_mb=6144))

    usages = {u.endpoint: u for u in meter.report()}

    assert usages["sentiment"] == Usage(
        "sentiment", invocations=5, cold_starts=1, errors_4xx=2, errors_5xx=1,
        # 10 + 3 + 1 ms at 1 GB; the throttled and failed-before-the-model requests bill nothing
        charge=Charge(billed_ms=14, mb_ms=14 * 1024, bytes_in=157, bytes_out=150),
    )
    assert usages["other"].charge == Charge(billed_ms=1, mb_ms=6144, bytes_in=100, bytes_out=50)


def test_report_in_dollars_uses_the_prices_given() -> None:
    usage = Usage("e", invocations=1, charge=Charge(billed_ms=1000, mb_ms=2048 * 1000))
    shown = usage.as_dict(Prices(gb_second_usd=0.00002))
    assert shown["gb_seconds"] == 2.0
    assert shown["cost_usd"] == pytest.approx(0.00004)


def test_usage_survives_a_restart(db_path: Path) -> None:
    first = Meter(db_path, batch_window_s=10.0)  # a long window: close() must write what is buffered
    for _ in range(3):
        first.invocation(record(model_ms=1.0))
    first.close()

    second = Meter(db_path)
    second.invocation(record(model_ms=1.0))
    [usage] = second.report()
    second.close()
    assert usage.invocations == 4
    assert usage.charge.billed_ms == 4


def test_since_keeps_the_minutes_from_its_own_minute_on(meter: Meter) -> None:
    meter.invocation(record(timestamp_s=T0_S - 3600))
    meter.invocation(record(timestamp_s=T0_S + 10))
    meter.invocation(record(timestamp_s=T0_S + 70))

    assert meter.report(since_s=T0_S + 30)[0].invocations == 2  # rounded down to T0_S's minute
    assert meter.report(since_s=T0_S + 60)[0].invocations == 1
    assert meter.report(since_s=T0_S + 120) == []
    assert meter.report()[0].invocations == 3


def test_report_can_be_narrowed_to_one_endpoint(meter: Meter) -> None:
    meter.invocation(record(endpoint="a"))
    meter.invocation(record(endpoint="b"))
    assert [u.endpoint for u in meter.report()] == ["a", "b"]
    assert [u.endpoint for u in meter.report(endpoint="b")] == ["b"]


def test_many_invocations_in_one_minute_are_one_row(meter: Meter, db_path: Path) -> None:
    for i in range(500):
        meter.invocation(record(timestamp_s=T0_S + i / 10))
    assert meter.report()[0].invocations == 500
    import sqlite3

    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM meter_usage").fetchone()[0] == 1
