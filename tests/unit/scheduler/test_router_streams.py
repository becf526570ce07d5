"""The router's generations on a fake clock with fake workers: a stream yields tokens then its Generation,
holds its MaxConcurrency slot for its whole life, is cancelled in the worker when its reader stops, is retried
on a fresh worker only before its first token, and has its own time ceiling instead of the 60 s timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from fakes import FakeClock, FakeHub, RouterScenario, run_router, settle

from zeroserve.errors import InternalFailure, ModelError, Throttled
from zeroserve.runtimes.base import GeneratedToken, Generation, Invocation
from zeroserve.scheduler.router import InvocationTrace, Router, StreamEvent

INVOCATION_TIMEOUT_S, STREAM_TIMEOUT_S = 60.0, 600.0
PROMPT = Invocation(b"one two three", "application/json", "application/json", None)


def run(scenario: RouterScenario, idle_timeout_s: float = 600) -> None:
    run_router(
        scenario, max_concurrency=1, idle_timeout_s=idle_timeout_s, queue_limit=0,
        invocation_timeout_s=INVOCATION_TIMEOUT_S, stream_timeout_s=STREAM_TIMEOUT_S,
    )


def inflight(router: Router) -> int:
    return router.endpoints["e"][0].gate.inflight


async def drain(stream: AsyncGenerator[StreamEvent, None]) -> list[StreamEvent]:
    return [event async for event in stream]


def test_a_stream_yields_each_token_then_the_generation_and_traces_ttft_and_tokens() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        trace = InvocationTrace()
        events = await drain(router.invoke_stream("e", PROMPT, trace))
        assert [e.text for e in events if isinstance(e, GeneratedToken)] == ["one", "two", "three"]
        assert isinstance(events[-1], Generation) and events[-1].sequences[0].text == "one two three"
        assert trace.tokens_generated == 3 and trace.cold_start and trace.variant == "v"
        assert trace.model_ms == 0.005, "the worker's time for the whole stream"
        assert inflight(router) == 0 and hub.spawned[0].inflight == 0

    run(scenario)


def test_max_concurrency_counts_a_stream_for_its_whole_life() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))  # a warm worker
        hub.spawned[0].token_steps = steps = asyncio.Queue()
        stream = router.invoke_stream("e", PROMPT, InvocationTrace())
        steps.put_nowait(None)
        first = await anext(stream)
        assert isinstance(first, GeneratedToken) and inflight(router) == 1
        with pytest.raises(Throttled):
            await router.invoke("e", PROMPT, InvocationTrace())
        for _ in range(2):
            steps.put_nowait(None)
        rest = await drain(stream)
        assert isinstance(rest[-1], Generation) and inflight(router) == 0
        hub.spawned[0].token_steps = None
        assert (await router.invoke_generate("e", PROMPT, InvocationTrace())).generation.prompt_tokens == 1

    run(scenario)


def test_closing_a_stream_cancels_it_in_the_worker_and_frees_the_slot_and_the_worker() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        worker = hub.spawned[0]
        worker.token_steps = steps = asyncio.Queue()
        trace = InvocationTrace()
        stream = router.invoke_stream("e", PROMPT, trace)
        steps.put_nowait(None)
        await anext(stream)
        await stream.aclose()  # what the route does when its client disconnects
        await settle()  # the reply's done-callbacks
        assert worker.cancels == 1 and worker.inflight == 0 and inflight(router) == 0
        assert trace.tokens_generated == 1 and not worker.killed

    run(scenario)


def test_a_reader_cancelled_while_waiting_for_a_token_cancels_the_generation_too() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        worker = hub.spawned[0]
        worker.token_steps = asyncio.Queue()
        stream = router.invoke_stream("e", PROMPT, InvocationTrace())
        waiting = asyncio.ensure_future(anext(stream))
        await settle()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert worker.cancels == 1 and worker.inflight == 0 and inflight(router) == 0

    run(scenario)


def test_a_worker_that_dies_before_the_first_token_is_retried_on_a_fresh_one() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        hub.spawned[0].crash_after_tokens = 0
        events = await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        assert len(hub.spawned) == 2 and isinstance(events[-1], Generation) and len(events) == 4

    run(scenario)


def test_a_worker_that_dies_after_the_first_token_fails_the_stream_and_frees_the_slot() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        hub.spawned[0].crash_after_tokens = 1
        stream = router.invoke_stream("e", PROMPT, InvocationTrace())
        assert isinstance(await anext(stream), GeneratedToken)
        with pytest.raises(InternalFailure, match="exited"):
            await anext(stream)
        assert inflight(router) == 0 and len(hub.spawned) == 1, "not retried once a token went out"
        await settle()
        assert isinstance((await drain(router.invoke_stream("e", PROMPT, InvocationTrace())))[-1], Generation)

    run(scenario)


def test_a_stream_outlives_the_invocation_timeout_but_not_its_own_ceiling() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))
        worker = hub.spawned[0]
        worker.token_steps = steps = asyncio.Queue()
        stream = router.invoke_stream("e", PROMPT, InvocationTrace())
        steps.put_nowait(None)
        await anext(stream)
        pending = asyncio.ensure_future(anext(stream))
        await clock.advance(INVOCATION_TIMEOUT_S + 1)
        assert not pending.done() and not worker.killed
        await clock.advance(STREAM_TIMEOUT_S)
        with pytest.raises(ModelError) as caught:
            await pending
        assert caught.value.original_status == 408 and worker.killed and inflight(router) == 0

    run(scenario)


def test_a_generation_not_streamed_has_the_invocation_timeout() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        hub.hang = True
        call = asyncio.ensure_future(router.invoke_generate("e", PROMPT, InvocationTrace()))
        await clock.advance(INVOCATION_TIMEOUT_S)
        with pytest.raises(ModelError) as caught:
            await call
        assert caught.value.original_status == 408 and hub.spawned[0].killed

    run(scenario)


def test_a_worker_whose_stream_was_left_early_is_stopped_once_idle_for_the_timeout() -> None:
    # The reader leaves while the worker still generates: the slot is released while the worker is busy,
    # and the worker only goes idle when its reply comes in later. It must still be stopped after the timeout.
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await drain(router.invoke_stream("e", PROMPT, InvocationTrace()))  # a warm worker
        worker = hub.spawned[0]
        worker.token_steps = steps = asyncio.Queue()
        stream = router.invoke_stream("e", PROMPT, InvocationTrace())
        steps.put_nowait(None)
        await anext(stream)
        await clock.advance(5.0)  # an idle check while it is busy finds nothing to stop
        await stream.aclose()  # the client went away; the worker has two tokens to go
        for _ in range(2):
            steps.put_nowait(None)
        await settle()
        assert worker.inflight == 0 and not worker.stopped
        await clock.advance(1.5)
        await settle()
        assert worker.stopped, "idle for longer than the timeout"

    run(scenario, idle_timeout_s=1.0)
