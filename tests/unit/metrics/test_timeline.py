"""The dashboard's recent past: buckets per endpoint over a window, and the latest errors."""

from __future__ import annotations

from metric_records import T0_S, record
from zeroserve.metrics.timeline import Timeline


def test_invocations_land_in_the_bucket_they_finished_in() -> None:
    timeline = Timeline(bucket_s=5, window_buckets=4, clock=lambda: T0_S + 19)
    timeline.invocation(record(timestamp_s=T0_S + 1, total_ms=2))
    timeline.invocation(record(timestamp_s=T0_S + 2, total_ms=6, cold_start=True))
    timeline.invocation(record(timestamp_s=T0_S + 4.5, total_ms=1000))  # finishes in the next bucket

    series = timeline.snapshot()["series"]["sentiment"]
    assert [b["start_s"] for b in series] == [T0_S, T0_S + 5, T0_S + 10, T0_S + 15]
    assert [b["invocations"] for b in series] == [2, 1, 0, 0]
    assert series[0]["cold_starts"] == 1
    assert series[0]["mean_ms"] == 4.0
    assert series[1]["max_ms"] == 1000.0


def test_old_buckets_leave_the_window_and_idle_endpoints_leave_the_charts() -> None:
    now = [T0_S]
    timeline = Timeline(bucket_s=1, window_buckets=3, clock=lambda: now[0])
    for second in range(10):
        timeline.invocation(record(timestamp_s=T0_S + second, total_ms=1))
    now[0] = T0_S + 9
    assert [b["invocations"] for b in timeline.snapshot()["series"]["sentiment"]] == [1, 1, 1]
    now[0] = T0_S + 60
    assert timeline.snapshot()["series"] == {}


def test_errors_are_kept_newest_first_and_bounded() -> None:
    timeline = Timeline(max_errors=2, clock=lambda: T0_S)
    timeline.invocation(record(status_code=424, error_code="ModelError", timestamp_s=T0_S + 1))
    timeline.invocation(record(status_code=200))
    timeline.invocation(record(status_code=400, error_code="ThrottlingException", timestamp_s=T0_S + 2))
    timeline.invocation(record(status_code=500, error_code="InternalFailure", timestamp_s=T0_S + 3))

    errors = timeline.snapshot()["errors"]
    assert [e["error"] for e in errors] == ["InternalFailure", "ThrottlingException"]
