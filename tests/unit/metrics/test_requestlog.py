"""The request log writes one JSON line per invocation, per endpoint file, and reads back tails and pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_records import T0_S, record
from zeroserve.errors import ValidationError
from zeroserve.metrics.requestlog import RequestLog, entry


@pytest.fixture
def log(tmp_path: Path) -> Iterator[RequestLog]:
    opened = RequestLog(tmp_path / "requests", batch_window_s=0.01)
    yield opened
    opened.close()


def test_each_invocation_is_one_json_line_with_the_fields_people_need(log: RequestLog) -> None:
    log.invocation(record(status_code=424, error_code="ModelError", cold_start=True, queue_ms=120.5,
                          model_ms=3.2004, overhead_ms=121.1, total_ms=124.3, bytes_in=31, bytes_out=17))
    log.close()

    [line] = (log.folder / "sentiment.jsonl").read_text().splitlines()
    assert json.loads(line) == {
        "timestamp_s": T0_S, "endpoint": "sentiment", "variant": "AllTraffic", "status": 424,
        "error": "ModelError", "cold": True, "queue_ms": 120.5, "model_ms": 3.2, "overhead_ms": 121.1,
        "total_ms": 124.3, "billed_ms": 4, "memory_mb": 2048, "bytes_in": 31, "bytes_out": 17,
    }


def test_endpoints_get_their_own_files(log: RequestLog) -> None:
    log.invocation(record(endpoint="a"))
    log.invocation(record(endpoint="b"))
    log.invocation(record(endpoint="a"))
    assert len(log.read("a").lines) == 2
    assert len(log.read("b").lines) == 1


def test_tail_returns_the_last_lines_in_order(log: RequestLog) -> None:
    for i in range(50):
        log.invocation(record(bytes_in=i))
    page = log.read("sentiment", tail=5)
    assert [line["bytes_in"] for line in page.lines] == [45, 46, 47, 48, 49]


def test_tail_reads_backwards_across_blocks(log: RequestLog) -> None:
    for i in range(3000):  # ~700 KB: many 64 KB blocks
        log.invocation(record(bytes_in=i))
    assert [line["bytes_in"] for line in log.read("sentiment", tail=1000).lines] == list(range(2000, 3000))


def test_a_cursor_pages_through_new_lines_only(log: RequestLog) -> None:
    log.invocation(record(bytes_in=1))
    first = log.read("sentiment", tail=10)
    assert log.read("sentiment", after=first.cursor).lines == []
    log.invocation(record(bytes_in=2))
    log.invocation(record(bytes_in=3))
    following = log.read("sentiment", after=first.cursor)
    assert [line["bytes_in"] for line in following.lines] == [2, 3]
    assert log.read("sentiment", after=following.cursor).lines == []


def test_a_full_file_is_rotated_and_a_cursor_from_before_continues_in_the_rotated_file(
    tmp_path: Path,
) -> None:
    line_bytes = len(json.dumps(entry(record(bytes_in=100))) + "\n")
    log = RequestLog(tmp_path / "requests", batch_window_s=60, max_file_bytes=6 * line_bytes)
    for i in range(100, 105):
        log.invocation(record(bytes_in=i))
    cursor = log.read("sentiment", tail=0).cursor  # reading flushes: these 5 lines are one write
    for i in range(105, 108):
        log.invocation(record(bytes_in=i))
    log.read("sentiment", tail=0)  # 8 lines now: over the limit, so the next write rotates first
    log.invocation(record(bytes_in=200))
    page = log.read("sentiment", after=cursor)
    log.close()

    assert (log.folder / "sentiment.jsonl.1").exists()
    assert [line["bytes_in"] for line in page.lines] == [105, 106, 107, 200]
    assert [line["bytes_in"] for line in log.read("sentiment", tail=2).lines] == [107, 200]


def test_an_unknown_endpoint_has_an_empty_log(log: RequestLog) -> None:
    page = log.read("nothing-here")
    assert page.lines == [] and page.cursor == 0


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", "-x", "a" * 64])
def test_names_that_are_not_endpoint_names_are_refused(log: RequestLog, name: str) -> None:
    with pytest.raises(ValidationError):
        log.read(name)
