"""Dynamic batching inside a worker.

Requests that arrive while the model is busy pile up in the socket; the next batch takes all of them (up to
`max_batch_size`). A lone request never waits for a timer unless `max_batch_wait_ms` asks for it, so batching
costs nothing at low load and amortizes the forward pass at high load.
"""

from __future__ import annotations

import select
import time

from zeroserve.workers.protocol import FrameSocket, Header

Frame = tuple[Header, bytes]


class BatchCollector:
    def __init__(self, channel: FrameSocket, max_batch_size: int, max_batch_wait_ms: float) -> None:
        self.channel = channel
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_wait_s = max(0.0, max_batch_wait_ms) / 1000.0
        self._pending: list[Frame] = []

    def next_batch(self) -> list[Frame] | None:
        """Block for at least one frame, then take what else is ready. None when the server hung up."""
        if not self._pending:
            first = self.channel.recv()
            if first is None:
                return None
            self._pending.append(first)
        self._pending.extend(self.channel.recv_ready())
        if self.max_batch_wait_s and len(self._pending) < self.max_batch_size:
            self._wait_for_more()
        batch, self._pending = self._pending[: self.max_batch_size], self._pending[self.max_batch_size :]
        return batch

    def _wait_for_more(self) -> None:
        deadline = time.monotonic() + self.max_batch_wait_s
        while len(self._pending) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.channel.sock], [], [], remaining)
            if not readable:
                return
            self._pending.extend(self.channel.recv_ready())
