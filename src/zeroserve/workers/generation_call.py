"""The server's side of one `mode: generate` invocation in flight on a worker: the tokens it streamed so far,
the reply that ends it, and the way to stop it.

The connection's reader pushes tokens and resolves the reply; whoever waits for them (the router) takes what
arrived whenever `ready()` resolves, so a slow reader never blocks the connection's other requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from zeroserve.runtimes.base import GeneratedToken

if TYPE_CHECKING:
    from zeroserve.workers.connection import WorkerReply


class GenerationCall:
    def __init__(self, reply: asyncio.Future[WorkerReply], send_cancel: Callable[[], None]) -> None:
        self.reply = reply  # resolved by the `result` frame, or WorkerGone
        self._send_cancel = send_cancel
        self._tokens: deque[GeneratedToken] = deque()
        self._wake: asyncio.Future[None] | None = None
        reply.add_done_callback(lambda _: self._wake_up())

    def push(self, token: GeneratedToken) -> None:
        self._tokens.append(token)
        self._wake_up()

    def ready(self) -> asyncio.Future[None]:
        """Resolved once a token is waiting in `take()` or the reply is done."""
        if self._wake is None or self._wake.done():
            self._wake = asyncio.get_running_loop().create_future()
            if self._tokens or self.reply.done():
                self._wake.set_result(None)
        return self._wake

    def take(self) -> list[GeneratedToken]:
        """The tokens that arrived since the last call, in order. Every token precedes the reply on the
        socket, so once the reply is done a last `take()` has them all."""
        tokens = list(self._tokens)
        self._tokens.clear()
        return tokens

    def cancel(self) -> None:
        """Stop the generation (its client went away, or its time ran out): the worker is told and stops
        within a token; the call stops counting as in flight at once."""
        if not self.reply.done():
            self._send_cancel()
            self.reply.cancel()

    def _wake_up(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
