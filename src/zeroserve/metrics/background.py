"""A writer thread that takes items from the event loop and hands them to a sink in batches.

Observers run on the event loop's hot path, where a file write or an SQLite commit could stall every request.
They `put` instead (O(1), no lock held across I/O) and this thread does the I/O: it sleeps on the queue while
idle (no polling, ~0% CPU), and once an item arrives it waits up to `batch_window_s` so one write covers many
requests. `flush()` lets a reader see everything put before it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("zeroserve.metrics")


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Stop:
    pass


class BatchWriter(Generic[T]):
    def __init__(self, name: str, sink: Callable[[list[T]], None], batch_window_s: float) -> None:
        self._sink = sink
        self._window_s = batch_window_s
        self._queue: queue.SimpleQueue[T | _Barrier | _Stop] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"zeroserve-{name}", daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        if not self._closed:
            self._queue.put(item)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until every item put before this call reached the sink."""
        if self._closed:
            return
        barrier = _Barrier()
        self._queue.put(barrier)
        self._wake.set()
        barrier.done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Stop())
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            # Gather a batch: the window is cut short by flush() or close().
            self._wake.wait(self._window_s)
            self._wake.clear()
            pending = [first]
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in pending if not isinstance(item, _Barrier | _Stop)]
            if items:
                try:
                    self._sink(items)
                except Exception:  # a full disk must not kill the thread; the next batch retries the I/O
                    log.exception("writing %d metric records failed", len(items))
            for item in pending:
                if isinstance(item, _Barrier):
                    item.done.set()
            if any(isinstance(item, _Stop) for item in pending):
                return
