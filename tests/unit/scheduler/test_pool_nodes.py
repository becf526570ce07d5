"""The pool with several nodes (a Ray cluster's, here fakes): placement across nodes, a node leaving (its
workers gone, its spawns failed and placed again, floors filled elsewhere) and joining, without processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fakes import FakeClock, FakeHub, settle
from test_pool import deployment

from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.scheduler.nodes import Node
from zeroserve.scheduler.pool import Pool

Scenario = Callable[[Pool, FakeHub, dict[str, FakeHub]], Awaitable[None]]


def remote(node_id: str, budget_mb: int = 2048) -> tuple[Node, FakeHub]:
    hub = FakeHub()
    return Node(node_id, "10.0.0.9", hub, MemoryLedger(budget_mb)), hub


def run(scenario: Scenario, head_budget_mb: int = 1024, nodes: tuple[str, ...] = ("a", "b")) -> None:
    async def main() -> None:
        head = FakeHub()
        pool = Pool(
            head, idle_timeout_s=60, memory_budget_mb=head_budget_mb, spawn_timeout_s=5, clock=FakeClock()
        )
        hubs = {}
        for node_id in nodes:
            node, hubs[node_id] = remote(node_id)
            pool.add_node(node)
        try:
            await scenario(pool, head, hubs)
        finally:
            await pool.close()

    asyncio.run(main())


def nodes_of(pool: Pool, key: str) -> list[str]:
    return sorted(slot.node_id for slot in pool.variants[key].workers.values())


def test_provisioned_workers_go_one_per_node_head_first() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", min_workers=3, max_workers=3))
        await settle()
        assert nodes_of(pool, variant.key) == ["a", "b", "local"]
        assert pool.memory_budget_mb == 1024 + 2 * 2048 and pool.reserved_mb == 3 * 1024

    run(scenario)


def test_a_worker_that_fits_nowhere_else_goes_to_a_node_without_the_bundle() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", max_workers=2))
        first, _ = await pool.acquire(variant, pool.clock.now() + 30)
        assert first.node_id == "local"  # the head holds every bundle and has room
        assert pool._start_worker(variant)
        await settle()
        assert nodes_of(pool, variant.key) == ["a", "local"]  # the head is full
        pool.release(first)

    run(scenario)


def test_a_lost_node_takes_its_workers_and_the_floor_is_filled_elsewhere() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", min_workers=3, max_workers=3))
        await settle()
        lost = next(s for s in variant.workers.values() if s.node_id == "a")
        pool.remove_node("a")
        await settle()
        assert lost.connection.killed  # type: ignore[attr-defined]
        assert "a" not in pool.nodes
        assert nodes_of(pool, variant.key) == ["b", "b", "local"]
        assert variant.spawn_failures == 0

    run(scenario)


def test_a_spawn_on_a_node_that_leaves_is_placed_again_without_failing_the_model() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        hubs["a"].hold = True  # the spawn on a never finishes: its agent died mid-fork
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        assert variant.starting == 1 and nodes_of(pool, variant.key) == ["local"]
        pool.remove_node("a")
        await settle()
        assert nodes_of(pool, variant.key) == ["b", "local"]
        assert variant.spawn_failures == 0 and variant.starting == 0

    run(scenario)


def test_a_node_that_joins_fills_a_floor_that_had_no_room() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        assert nodes_of(pool, variant.key) == ["local"]
        node, _ = remote("c")
        pool.add_node(node)
        await settle()
        assert nodes_of(pool, variant.key) == ["c", "local"]

    run(scenario, nodes=())


def test_a_node_where_a_worker_crashed_takes_nothing_until_it_is_heard_from() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        crashed = next(s for s in variant.workers.values() if s.node_id == "a")
        clock = pool.clock
        assert isinstance(clock, FakeClock)
        sent_before_s = clock.now()
        await clock.advance(1)
        crashed.connection.crash()  # type: ignore[attr-defined]
        await settle()
        assert pool.nodes["a"].suspect_since_s == clock.now(), "stamped on the pool's clock"
        assert nodes_of(pool, variant.key) == ["local"]  # the only other node is suspect: nothing placed
        pool.vouch("a", sent_s=sent_before_s)
        await settle()
        assert nodes_of(pool, variant.key) == ["local"]  # an answer to an older check proves nothing
        await clock.advance(1)
        pool.vouch("a", sent_s=clock.now())
        await settle()
        assert nodes_of(pool, variant.key) == ["a", "local"]

    run(scenario, nodes=("a",))


def test_a_node_whose_worker_was_stopped_on_purpose_is_not_suspect() -> None:
    async def scenario(pool: Pool, head: FakeHub, hubs: dict[str, FakeHub]) -> None:
        variant = pool.deploy(deployment("e", min_workers=2, max_workers=2))
        await settle()
        pool.remove(variant.key)  # retired: its workers are stopped, their sockets close
        await settle()
        assert pool.nodes["a"].suspect_since_s is None

    run(scenario, nodes=("a",))
