"""The pool on a fake clock with fake workers: scale from zero, scale-in, provisioned concurrency, eviction
for memory, supervision (a crashed worker is replaced) and the wait budget, without sleeping and without
processes. Every timer the pool sets is on the clock it was given."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fakes import FakeClock, FakeHub, settle

from observers import Events
from zeroserve.errors import ModelNotReady, Throttled
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.pool import Pool
from zeroserve.workers.hub import SpawnFailed

IDLE_S = 60.0


def deployment(name: str, **overrides: Any) -> VariantDeployment:
    fields: dict[str, Any] = dict(
        endpoint=name, variant="v", bundle_dir="/b", memory_mb=1024, max_concurrency=10, max_batch_size=2
    )
    return VariantDeployment(**(fields | overrides))


Scenario = Callable[[Pool, FakeHub, FakeClock, Events], Awaitable[None]]


def run(scenario: Scenario, budget_mb: int = 4096) -> None:
    async def main() -> None:
        clock, hub, events = FakeClock(), FakeHub(), Events()
        pool = Pool(
            hub,
            idle_timeout_s=IDLE_S,
            memory_budget_mb=budget_mb,
            spawn_timeout_s=5,
            observer=events,
            clock=clock,
        )
        try:
            await scenario(pool, hub, clock, events)
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_request_to_an_idle_variant_starts_one_worker_and_gets_it_cold() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        assert hub.spawned == []
        slot, cold = await pool.acquire(variant, clock.now() + 30)
        assert cold and len(hub.spawned) == 1 and slot.connection is hub.spawned[0]
        pool.release(slot)
        again, cold = await pool.acquire(variant, clock.now() + 30)
        assert again is slot and not cold
        pool.release(again)
        assert pool.reserved_mb == 1024

    run(scenario)


def test_an_idle_worker_stops_after_the_idle_timeout_on_the_pools_clock() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        slot, _ = await pool.acquire(variant, clock.now() + 30)
        pool.release(slot)
        assert clock.pending == [clock.now() + IDLE_S], "the scale-in timer is on the injected clock"
        await clock.advance(IDLE_S - 1)
        assert len(variant.workers) == 1
        await clock.advance(1)
        assert variant.workers == {} and hub.spawned[0].stopped
        assert pool.reserved_mb == 0
        assert ("e", "stopped") in events.log

    run(scenario)


def test_use_postpones_scale_in() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        slot, _ = await pool.acquire(variant, clock.now() + 30)
        pool.release(slot)
        await clock.advance(IDLE_S / 2)
        slot, _ = await pool.acquire(variant, clock.now() + 30)
        pool.release(slot)
        await clock.advance(IDLE_S / 2 + 1)
        assert len(variant.workers) == 1, "used half-way through: not idle long enough"
        await clock.advance(IDLE_S / 2)
        assert variant.workers == {}

    run(scenario)


def test_provisioned_workers_start_at_deploy_and_never_scale_in() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        assert len(variant.workers) == 2
        await clock.advance(IDLE_S * 10)
        assert len(variant.workers) == 2 and not any(c.stopped for c in hub.spawned)

    run(scenario)


def test_a_crashed_provisioned_worker_is_replaced() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", min_workers=1))
        await settle()
        first = hub.spawned[0]
        first.crash()
        await settle()
        assert ("e", "crashed") in events.log
        assert len(hub.spawned) == 2 and list(variant.workers) == [hub.spawned[1].worker_id]
        assert pool.reserved_mb == 1024, "the dead worker's memory went back to the budget"

    run(scenario)


def test_a_crashed_serverless_worker_is_not_replaced_until_needed() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        slot, _ = await pool.acquire(variant, clock.now() + 30)
        pool.release(slot)
        hub.spawned[0].crash()
        await settle()
        assert variant.workers == {} and len(hub.spawned) == 1 and pool.reserved_mb == 0

    run(scenario)


def test_memory_pressure_evicts_the_least_recently_used_idle_worker_of_another_variant() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        a, b, c = (pool.deploy(deployment(name)) for name in "abc")
        for variant in (a, b):
            slot, _ = await pool.acquire(variant, clock.now() + 30)
            pool.release(slot)
            await clock.advance(1)
        slot, _ = await pool.acquire(c, clock.now() + 30)  # budget 2048: one of a, b must go
        assert a.workers == {} and len(b.workers) == 1, "a was used longest ago"
        assert ("a", "stopped") in events.log
        assert pool.reserved_mb == 2048
        pool.release(slot)

    run(scenario, budget_mb=2048)


def test_no_room_and_nothing_idle_to_evict_is_throttled() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        a, b = pool.deploy(deployment("a")), pool.deploy(deployment("b"))
        busy, _ = await pool.acquire(a, clock.now() + 30)  # held: in flight, so not evictable
        busy.connection.active = 1  # type: ignore[attr-defined]
        with pytest.raises(Throttled):
            await pool.acquire(b, clock.now() + 30)
        assert pool.reserved_mb == 1024

    run(scenario, budget_mb=1024)


def test_a_request_waits_for_a_slow_start_until_its_deadline_on_the_clock() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        hub.hold = True
        waiting = asyncio.ensure_future(pool.acquire(variant, clock.now() + 30))
        await clock.advance(29)
        assert not waiting.done() and variant.starting == 1
        await clock.advance(1)
        with pytest.raises(ModelNotReady, match="still loading"):
            await waiting
        hub.release_spawns()
        await settle()
        assert len(variant.workers) == 1, "the late worker is kept for the next request"

    run(scenario)


def test_a_failed_start_is_reported_to_the_waiting_request_and_frees_its_memory() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e"))
        hub.fail_with = "bad weights"
        with pytest.raises(ModelNotReady, match="could not be loaded: bad weights"):
            await pool.acquire(variant, clock.now() + 30)
        assert (variant.starting, pool.reserved_mb) == (0, 0)
        assert ("e", "failed") in events.log

    run(scenario)


def test_a_retired_variant_stops_its_workers_and_returns_their_memory() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        pool.remove(variant.key)
        assert variant.retired and variant.workers == {}
        assert all(c.stopped for c in hub.spawned) and pool.reserved_mb == 0

    run(scenario)


def test_busy_workers_scale_out_up_to_max_workers() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", max_workers=2, max_batch_size=1))
        first, _ = await pool.acquire(variant, clock.now() + 30)
        first.connection.active = 1  # type: ignore[attr-defined]
        second, _ = await pool.acquire(variant, clock.now() + 30)
        assert second is not first and len(hub.spawned) == 2
        second.connection.active = 1  # type: ignore[attr-defined]
        third, _ = await pool.acquire(variant, clock.now() + 30)  # at the cap: shares a busy worker
        assert len(hub.spawned) == 2 and third in (first, second)

    run(scenario)


def test_busy_workers_scale_out_though_their_batches_have_room() -> None:
    # Batches hold 16, yet one request in flight is enough: with one worker, requests would queue behind its
    # batches while the other core idles.
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", max_workers=2, max_batch_size=16))
        first, _ = await pool.acquire(variant, clock.now() + 30)
        first.connection.active = 1  # type: ignore[attr-defined]
        second, cold = await pool.acquire(variant, clock.now() + 30)
        assert second is first and not cold, "it joins the busy worker's batch rather than wait"
        await settle()
        assert len(hub.spawned) == 2, "and a second worker started for the next ones"
        third, _ = await pool.acquire(variant, clock.now() + 30)
        assert third is not first

    run(scenario)


def test_proving_a_deployment_reuses_the_provisioned_worker_instead_of_forking_another() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        variant = pool.deploy(deployment("e", min_workers=1))
        slot = await pool.start_and_wait(variant)
        assert len(hub.spawned) == 1 and list(variant.workers) == [slot.worker_id]
        serverless = pool.deploy(deployment("f"))
        await pool.start_and_wait(serverless)
        assert len(hub.spawned) == 2 and len(serverless.workers) == 1

    run(scenario)


def test_proving_a_model_that_cannot_load_raises_its_reason() -> None:
    async def scenario(pool: Pool, hub: FakeHub, clock: FakeClock, events: Events) -> None:
        hub.fail_with = "no weights"
        with pytest.raises(SpawnFailed, match="no weights"):
            await pool.start_and_wait(pool.deploy(deployment("e", min_workers=1)))
        assert pool.reserved_mb == 0

    run(scenario)
