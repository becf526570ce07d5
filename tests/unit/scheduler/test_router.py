"""The router on a fake clock with fake workers: the invocation timeout kills a hung worker (no sleeping: the
timeout is a timer on the pool's clock), and a worker that dies with a request in flight gets it retried
once on a fresh worker, then InternalFailure."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeClock, FakeHub, RouterScenario, run_router, settle

from zeroserve.errors import InternalFailure, ModelError
from zeroserve.runtimes.base import Invocation
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.router import InvocationTrace, Router

TIMEOUT_S = 60.0
REQUEST = Invocation(b'{"inputs": "x"}', "application/json", "application/json", None)


def run(scenario: RouterScenario) -> None:
    run_router(scenario, max_concurrency=5, invocation_timeout_s=TIMEOUT_S)


def test_a_hung_worker_hits_the_invocation_timeout_on_the_clock_and_is_killed() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        hub.hang = True
        call = asyncio.ensure_future(router.invoke("e", REQUEST, InvocationTrace()))
        await clock.advance(TIMEOUT_S - 1)
        assert not call.done()
        await clock.advance(1)
        with pytest.raises(ModelError) as caught:
            await call
        assert caught.value.original_status == 408 and "timed out" in caught.value.message
        assert hub.spawned[0].killed
        hub.hang = False
        answer = await router.invoke("e", REQUEST, InvocationTrace())
        assert answer.body == REQUEST.body and len(hub.spawned) == 2, "a fresh worker answers"

    run(scenario)


def test_a_request_in_flight_on_a_dying_worker_is_retried_once_on_a_fresh_one() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await router.invoke("e", REQUEST, InvocationTrace())
        hub.spawned[0].crash_on_invoke = True
        answer = await router.invoke("e", REQUEST, InvocationTrace())
        assert answer.body == REQUEST.body and len(hub.spawned) == 2

    run(scenario)


def test_a_second_death_is_an_internal_failure() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        hub.crashing = True
        with pytest.raises(InternalFailure, match="exited"):
            await router.invoke("e", REQUEST, InvocationTrace())
        await settle()
        assert len(hub.spawned) == 2 and all(c.closed.done() for c in hub.spawned)
        assert router.pool.reserved_mb == 0

    run(scenario)


def test_a_request_on_a_worker_stopped_by_an_update_is_retried_on_the_new_variant() -> None:
    async def scenario(router: Router, hub: FakeHub, clock: FakeClock) -> None:
        await router.invoke("e", REQUEST, InvocationTrace())
        old = hub.spawned[0]
        old.gate = asyncio.Event()  # the next request is in flight on the old worker...
        call = asyncio.ensure_future(router.invoke("e", REQUEST, InvocationTrace()))
        await settle()
        green = VariantDeployment(
            endpoint="e", variant="v", bundle_dir="/b2", memory_mb=1024, max_concurrency=5, generation=2
        )
        router.set_endpoint("e", [green])  # ...when an update switches the endpoint and retires the old one
        old.gate.set()
        answer = await call
        assert answer.body == REQUEST.body
        assert hub.specs[-1].bundle_dir == "/b2", "the retry went to the new variant"

    run(scenario)
