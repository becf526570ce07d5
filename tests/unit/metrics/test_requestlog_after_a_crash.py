"""A server killed mid-write leaves half a line in the request log; the next server cuts it before it
appends, so every line still parses and only the unflushed record is lost."""

from __future__ import annotations

from pathlib import Path

from metric_records import record
from zeroserve.metrics.requestlog import RequestLog


def test_a_partial_last_line_is_cut_before_new_lines_are_appended(tmp_path: Path) -> None:
    first = RequestLog(tmp_path, batch_window_s=0.01)
    first.invocation(record(status_code=200))
    first.close()
    path = tmp_path / "sentiment.jsonl"
    path.write_bytes(path.read_bytes() + b'{"timestamp_s": 17172')  # the kill -9, mid-line

    second = RequestLog(tmp_path, batch_window_s=0.01)
    second.invocation(record(status_code=500))
    second.close()
    page = RequestLog(tmp_path).read("sentiment", tail=10)
    assert [line["status"] for line in page.lines] == [200, 500]
    assert path.read_bytes().endswith(b"\n")
