"""Test doubles for the pool: a clock whose time moves only when told, and workers that are not processes."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from zeroserve.runtimes.base import GeneratedSequence, GeneratedToken, Generation
from zeroserve.workers.connection import WorkerGone, WorkerReply
from zeroserve.workers.generation_call import GenerationCall
from zeroserve.workers.hub import SpawnFailed
from zeroserve.workers.spec import WorkerSpec

if TYPE_CHECKING:
    from zeroserve.scheduler.router import Router


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """`now()` and `call_at()` like LoopClock, but time moves only in `advance()`."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self._timers: list[tuple[float, int, FakeTimer, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.now_s

    def call_at(self, when_s: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self._timers, (when_s, next(self._order), timer, callback))
        return timer

    @property
    def pending(self) -> list[float]:
        return sorted(when for when, _, timer, _ in self._timers if not timer.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move time forward, running each due timer at its own time, and let the tasks it woke run."""
        target = self.now_s + seconds
        await settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now_s = max(self.now_s, when)
            callback()
            await settle()
        self.now_s = target
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class FakeConnection:
    """A worker that answers at once (or when the test says), and can be made to crash."""

    def __init__(self, worker_id: str, pid: int) -> None:
        self.worker_id = worker_id
        self.pid = pid
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.active = 0
        self.stopped = False
        self.killed = False
        self.gate: asyncio.Event | None = None  # set: invocations wait for it
        self.crash_on_invoke = False  # the worker dies with the request in flight
        # Generations: one word of the body is one token. With `token_steps`, each token waits for a put.
        self.token_steps: asyncio.Queue[None] | None = None
        self.crash_after_tokens: int | None = None  # the worker dies after sending this many tokens
        self.cancels = 0  # cancel frames it was sent

    @property
    def inflight(self) -> int:
        return self.active

    def submit(
        self, body: bytes, content_type: str, accept: str, custom: str | None
    ) -> asyncio.Future[WorkerReply]:
        if self.closed.done() or self.stopped:
            raise WorkerGone(self.worker_id)
        self.active += 1  # in flight from the moment it is sent, as a real connection counts it
        return asyncio.ensure_future(self._answer(body))

    async def _answer(self, body: bytes) -> WorkerReply:
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.crash_on_invoke:
                self.crash()
            if self.closed.done():
                raise WorkerGone(self.worker_id)
            return WorkerReply("ok", body, "application/json", "", model_us=1, rss_mb=10.0)
        finally:
            self.active -= 1

    def submit_generate(
        self, body: bytes, content_type: str, accept: str, custom: str | None, *, stream: bool
    ) -> GenerationCall:
        if self.closed.done() or self.stopped:
            raise WorkerGone(self.worker_id)
        self.active += 1
        reply: asyncio.Future[WorkerReply] = asyncio.get_running_loop().create_future()
        call = GenerationCall(reply, self._count_cancel)
        task = asyncio.ensure_future(self._generate(call, body.decode().split(), stream))
        reply.add_done_callback(lambda _: task.cancel())  # cancelled: this worker stops at once
        reply.add_done_callback(self._one_less)  # in flight until its reply, as a real connection counts
        return call

    def _one_less(self, _: object) -> None:
        self.active -= 1

    def _count_cancel(self) -> None:
        self.cancels += 1

    async def _generate(self, call: GenerationCall, words: list[str], stream: bool) -> None:
        try:
            if self.gate is not None:
                await self.gate.wait()
            for index, word in enumerate(words, start=1):
                if self.token_steps is not None:
                    await self.token_steps.get()
                if self.crash_after_tokens is not None and index > self.crash_after_tokens:
                    self.crash()
                if self.crash_on_invoke:
                    self.crash()
                if self.closed.done():
                    raise WorkerGone(self.worker_id)
                if stream:
                    call.push(GeneratedToken(index, index, word, None, False))
            generation = Generation([GeneratedSequence(" ".join(words), "eos_token", len(words))], 1)
            call.reply.set_result(WorkerReply("ok", generation.to_json(), "application/json", "", 5, 10.0))
        except WorkerGone as gone:
            if not call.reply.done():
                call.reply.set_exception(gone)

    def crash(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def stop(self) -> None:
        self.stopped = True
        self.crash()

    def kill(self) -> None:
        self.killed = True
        self.crash()


class FakeHub:
    """Spawns FakeConnections. A spawn waits for `release_spawns` when `hold` is set; `fail_with` fails it."""

    def __init__(self) -> None:
        self.spawned: list[FakeConnection] = []
        self.specs: list[WorkerSpec] = []
        self.hold = False
        self._released = asyncio.Event()
        self.fail_with = ""
        self.crashing = False  # every new worker dies on its first request
        self.hang = False  # every new worker never answers
        self._pids = itertools.count(100)

    def release_spawns(self) -> None:
        self._released.set()

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[FakeConnection, dict[str, Any]]:
        self.specs.append(spec)
        if self.hold:
            await self._released.wait()
        if self.fail_with:
            raise SpawnFailed(self.fail_with)
        connection = FakeConnection(spec.worker_id, next(self._pids))
        connection.crash_on_invoke = self.crashing
        if self.hang:
            connection.gate = asyncio.Event()
        self.spawned.append(connection)
        return connection, {"type": "ready", "setup_ms": 1.0, "rss_mb": 10.0}


RouterScenario = Callable[["Router", FakeHub, FakeClock], Awaitable[None]]


def run_router(
    scenario: RouterScenario, *, max_concurrency: int, idle_timeout_s: float = 600, **router_options: Any
) -> None:
    """One endpoint `e` with one variant `v` behind a real Router and Pool, on fake workers and a fake
    clock; `router_options` go to the Router (timeouts, queue limit)."""
    from zeroserve.scheduler.deployment import VariantDeployment
    from zeroserve.scheduler.pool import Pool
    from zeroserve.scheduler.router import Router

    async def main() -> None:
        clock, hub = FakeClock(), FakeHub()
        pool = Pool(hub, idle_timeout_s=idle_timeout_s, memory_budget_mb=8192, spawn_timeout_s=5, clock=clock)
        router = Router(pool, account_id="1", region="r", wait_budget_s=30, **router_options)
        deployment = VariantDeployment(
            endpoint="e", variant="v", bundle_dir="/b", memory_mb=1024, max_concurrency=max_concurrency
        )
        router.set_endpoint("e", [deployment])
        try:
            await scenario(router, hub, clock)
        finally:
            await router.close()

    asyncio.run(main())
