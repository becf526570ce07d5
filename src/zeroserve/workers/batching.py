"""Dynamic batching inside a worker, and the frames that arrive while it works.

Requests that arrive while the model is busy pile up in the socket; the next batch takes all of them (up to
`max_batch_size`). A lone request never waits for a timer unless `max_batch_wait_ms` asks for it, so batching
costs nothing at low load and amortizes the forward pass at high load.

The collector is the one reader of the worker's socket. A generation polls it between tokens (`poll`): a
`cancel` frame is remembered for the generation it names, every other frame is kept for the next batch, so
nothing read while a generation runs is lost.
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
        self._cancelled: set[int] = set()

    def next_batch(self) -> list[Frame] | None:
        """Block for at least one frame, then take what else is ready. None when the server hung up.
        Called only once the previous batch is answered, so a cancel for no invocation still open is stale."""
        while not self._pending:
            first = self.channel.recv()
            if first is None:
                return None
            self._keep([first])
        self._keep(self.channel.recv_ready())
        if self.max_batch_wait_s and len(self._pending) < self.max_batch_size:
            self._wait_for_more()
        batch, self._pending = self._pending[: self.max_batch_size], self._pending[self.max_batch_size :]
        open_ids = {header.get("id") for header, _ in batch + self._pending}
        self._cancelled = {i for i in self._cancelled if i in open_ids}
        return batch

    def poll(self) -> None:
        """Take what the socket holds now, without blocking (between two tokens of a generation)."""
        self._keep(self.channel.recv_ready())

    def cancelled(self, request_id: int) -> bool:
        """Whether the server asked to stop the invocation `request_id` (its client went away)."""
        return request_id in self._cancelled

    def done(self, request_id: int) -> None:
        self._cancelled.discard(request_id)

    def _keep(self, frames: list[Frame]) -> None:
        for header, body in frames:
            if header.get("type") == "cancel":
                self._cancelled.add(int(header.get("id", -1)))
            else:
                self._pending.append((header, body))

    def _wait_for_more(self) -> None:
        deadline = time.monotonic() + self.max_batch_wait_s
        while len(self._pending) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.channel.sock], [], [], remaining)
            if not readable:
                return
            self._keep(self.channel.recv_ready())
