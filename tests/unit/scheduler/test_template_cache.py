"""Templates in the pool, on a fake clock with fake processes: built after a plain cold start of a 1-thread
variant and used by the next, held in the memory ledger, evicted least recently used before any idle worker
when a worker needs the memory, dropped after the idle TTL on the pool's clock, and dropped (then rebuilt on
the next cold start) when it dies. The LRU choice itself is checked on the pure policy."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from fakes import FakeClock, FakeConnection, FakeHub, settle

from observers import Events
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.templates import TemplateEntry, TemplatePolicy, estimate_mb, holder
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.template_link import TemplateFailed, TemplateInfo

IDLE_S = 1.0
TTL_S = 600.0
TEMPLATE_MB = 100


class TemplateHub(FakeHub):
    """A FakeHub that builds fake templates: each `build_template` gets a pid and a `closed` future."""

    templates_supported = True

    def __init__(self) -> None:
        super().__init__()
        self.built: list[str] = []
        self.dropped: list[str] = []
        self.live: dict[str, asyncio.Future[None]] = {}
        self.fail_templates = False
        self._template_pids = itertools.count(500)

    async def build_template(self, key: str, spec: WorkerSpec, timeout_s: float) -> TemplateInfo:
        assert spec.threads == 1
        self.built.append(key)
        if self.fail_templates:
            raise TemplateFailed("left a thread running")
        self.live[key] = asyncio.get_running_loop().create_future()
        return TemplateInfo(key, next(self._template_pids), 50.0, float(TEMPLATE_MB), 200.0)

    def template_closed(self, key: str) -> asyncio.Future[None] | None:
        return self.live.get(key)

    def drop_template(self, key: str) -> None:
        if key in self.live:
            self.dropped.append(key)
            self.die(key)

    def die(self, key: str) -> None:
        closed = self.live.pop(key)
        if not closed.done():
            closed.set_result(None)

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[FakeConnection, dict[str, Any]]:
        connection, ready = await super().spawn(spec, timeout_s)
        if spec.template and spec.template in self.live:
            ready["template_pid"] = 500
        return connection, ready


def deployment(name: str, memory_mb: int = 1024, threads: int = 1) -> VariantDeployment:
    return VariantDeployment(
        endpoint=name, variant="v", bundle_dir="/nonexistent", memory_mb=memory_mb, max_concurrency=10,
        threads=threads,
    )


def run(scenario: Any, budget_mb: int = 4096) -> None:
    async def main() -> None:
        clock, hub, events = FakeClock(), TemplateHub(), Events()
        pool = Pool(
            hub, idle_timeout_s=IDLE_S, memory_budget_mb=budget_mb, spawn_timeout_s=5, observer=events,
            clock=clock, template_idle_timeout_s=TTL_S,
        )
        try:
            await scenario(pool, hub, clock, events)
        finally:
            await pool.close()

    asyncio.run(main())


async def cold_start(pool: Pool, name: str) -> None:
    variant = next(v for v in pool.variants.values() if v.deployment.endpoint == name)
    slot, cold = await pool.acquire(variant, pool.clock.now() + 30)
    assert cold
    pool.release(slot)
    await settle()


async def go_idle(pool: Pool, clock: FakeClock) -> None:
    await clock.advance(IDLE_S)
    assert all(not v.workers for v in pool.variants.values())


def test_a_plain_cold_start_builds_a_template_and_the_next_cold_start_forks_from_it() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("e"))
        await cold_start(pool, "e")
        assert hub.specs[-1].template == "", "the first cold start has no template: the zygote's path"
        assert len(hub.built) == 1 and "template_ready" in events.kinds
        key = hub.built[0]
        assert pool.ledger.holds(holder(key)) and pool.reserved_mb == 1024 + TEMPLATE_MB
        await go_idle(pool, clock)
        assert pool.reserved_mb == TEMPLATE_MB, "the template outlives the idle worker, counted in the budget"
        await cold_start(pool, "e")
        assert hub.specs[-1].template == key
        assert len(hub.built) == 1, "a cold start from the template builds no other"

    run(scenario)


def test_a_template_unused_for_its_ttl_is_dropped_on_the_pools_clock() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("e"))
        await cold_start(pool, "e")
        await go_idle(pool, clock)
        await clock.advance(TTL_S - IDLE_S - 1)
        assert pool.templates is not None and len(pool.templates.entries()) == 1
        await clock.advance(1)
        assert pool.templates.entries() == [] and hub.dropped == hub.built
        assert pool.reserved_mb == 0, "an endpoint unused for long costs nothing"
        assert "template_dropped" in events.kinds

    run(scenario)


def test_a_worker_needing_memory_evicts_the_least_recently_used_template_before_any_idle_worker() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("a"))
        await cold_start(pool, "a")
        await go_idle(pool, clock)
        b = pool.deploy(deployment("b"))
        await cold_start(pool, "b")  # b's worker stays, idle; b's template is newer than a's
        key_a, key_b = hub.built
        assert pool.reserved_mb == 2 * TEMPLATE_MB + 1024
        pool.ledger.budget_mb = pool.reserved_mb + 1000  # c's 1024 MB fit only if something goes
        hub.fail_templates = True  # c builds none, which could evict b's too
        pool.deploy(deployment("c"))
        await cold_start(pool, "c")
        assert hub.dropped == [key_a], "the least recently used template went, and only as many as needed"
        assert not pool.ledger.holds(holder(key_a)) and pool.ledger.holds(holder(key_b))
        assert len(b.workers) == 1 and not hub.spawned[1].stopped, "no idle worker was stopped for it"

    run(scenario)


def test_a_dead_template_is_dropped_and_the_next_cold_start_takes_the_plain_path_and_rebuilds_it() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("e"))
        await cold_start(pool, "e")
        await go_idle(pool, clock)
        key = hub.built[0]
        hub.die(key)
        await settle()
        assert not pool.ledger.holds(holder(key)) and pool.reserved_mb == 0
        await cold_start(pool, "e")
        assert hub.specs[-1].template == "", "no template: the zygote's plain path"
        assert hub.built == [key, key], "rebuilt after that cold start"

    run(scenario)


def test_a_variant_with_more_runtime_threads_gets_no_template() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("e", threads=2))
        await cold_start(pool, "e")
        assert hub.built == [] and pool.reserved_mb == 1024

    run(scenario)


def test_a_template_that_fails_to_load_releases_its_memory_and_is_not_retried_at_every_cold_start() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        hub.fail_templates = True
        pool.deploy(deployment("e"))
        await cold_start(pool, "e")
        assert len(hub.built) == 1 and pool.reserved_mb == 1024
        await go_idle(pool, clock)
        await cold_start(pool, "e")
        assert len(hub.built) == 1

    run(scenario)


def test_replacing_a_variant_drops_its_template() -> None:
    async def scenario(pool: Pool, hub: TemplateHub, clock: FakeClock, events: Events) -> None:
        pool.deploy(deployment("e"))
        await cold_start(pool, "e")
        [key] = hub.built
        assert pool.templates is not None
        [entry] = pool.templates.entries()
        assert (entry.key, entry.ready, entry.pid) == (key, True, 500), "a template was built and is ready"
        assert key in hub.live and pool.ledger.holds(holder(key))
        pool.deploy(deployment("e"))
        await settle()
        assert hub.dropped == [key] and key not in hub.live, "its process was told to go"
        assert pool.templates.entries() == [] and not pool.ledger.holds(holder(key))

    run(scenario)


def test_policy_evicts_least_recently_used_first_and_only_as_many_as_needed() -> None:
    policy = TemplatePolicy(idle_ttl_s=TTL_S)
    for key, used_s in (("old", 1.0), ("new", 3.0), ("mid", 2.0)):
        policy.add(TemplateEntry(key, key, "v", 100, used_s, ready=True))
    assert policy.evictions(50, 100) == []
    assert policy.evictions(150, 100) == ["old"]
    assert policy.evictions(250, 100) == ["old", "mid"]
    assert policy.evictions(250, 100, keep="mid") == ["old", "new"]
    assert policy.evictions(500, 100) is None
    assert policy.expired(1.0 + TTL_S) == ["old"] and policy.next_expiry_s() == 1.0 + TTL_S


def test_the_estimate_before_loading_grows_with_the_bundle(tmp_path: Any) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\0" * (4 * 1024 * 1024))
    assert estimate_mb(str(tmp_path)) > estimate_mb(str(tmp_path / "missing")) + 4
