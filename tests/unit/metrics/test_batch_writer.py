"""The writer thread hands items to its sink in batches, in order, and never loses what was put."""

from __future__ import annotations

import threading
import time

from zeroserve.metrics.background import BatchWriter


def test_items_put_within_the_window_reach_the_sink_as_one_batch() -> None:
    batches: list[list[int]] = []
    writer: BatchWriter[int] = BatchWriter("test", batches.append, batch_window_s=0.2)
    for i in range(100):
        writer.put(i)
    writer.flush()
    writer.close()
    assert batches == [list(range(100))]


def test_flush_returns_without_waiting_for_the_window() -> None:
    batches: list[list[int]] = []
    writer: BatchWriter[int] = BatchWriter("test", batches.append, batch_window_s=30)
    writer.put(1)
    started = time.perf_counter()
    writer.flush()
    assert time.perf_counter() - started < 5
    assert batches == [[1]]
    writer.close()


def test_close_writes_what_is_still_queued_then_drops_later_puts() -> None:
    seen: list[int] = []
    writer: BatchWriter[int] = BatchWriter("test", seen.extend, batch_window_s=30)
    writer.put(1)
    writer.put(2)
    writer.close()
    writer.put(3)
    assert seen == [1, 2]


def test_a_failing_sink_does_not_stop_the_writer() -> None:
    seen: list[int] = []

    def sink(items: list[int]) -> None:
        if items == [1]:
            raise OSError("disk full")
        seen.extend(items)

    writer: BatchWriter[int] = BatchWriter("test", sink, batch_window_s=0.01)
    writer.put(1)
    writer.flush()
    writer.put(2)
    writer.flush()
    writer.close()
    assert seen == [2]


def test_an_idle_writer_sleeps_on_its_queue() -> None:
    writer: BatchWriter[int] = BatchWriter("idle-test", lambda items: None, batch_window_s=0.01)
    thread = next(t for t in threading.enumerate() if t.name == "zeroserve-idle-test")
    assert thread.native_id is not None
    before = _cpu_ticks(thread.native_id)
    time.sleep(0.5)
    assert _cpu_ticks(thread.native_id) - before <= 1  # no polling: at most one clock tick in half a second
    writer.close()


def _cpu_ticks(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
