import asyncio

import pytest

from zeroserve.scheduler.admission import AdmissionCounter, AdmissionGate, Decision


def test_requests_beyond_max_concurrency_queue_then_get_rejected() -> None:
    counter = AdmissionCounter(max_concurrency=2, queue_limit=1)
    assert [counter.arrive() for _ in range(4)] == [
        Decision.ADMIT,
        Decision.ADMIT,
        Decision.QUEUE,
        Decision.REJECT,
    ]
    assert (counter.inflight, counter.queued) == (2, 1)


def test_a_finished_request_promotes_the_queued_one() -> None:
    counter = AdmissionCounter(max_concurrency=1, queue_limit=1)
    counter.arrive()
    counter.arrive()
    assert counter.finish() is True
    counter.promote()
    assert (counter.inflight, counter.queued) == (1, 0)
    assert counter.finish() is False


def test_newcomer_does_not_overtake_queued_requests() -> None:
    counter = AdmissionCounter(max_concurrency=1, queue_limit=2)
    counter.arrive()
    counter.arrive()  # queued
    counter.inflight -= 1  # a slot frees, but the queued request has not been promoted yet
    assert counter.arrive() is Decision.QUEUE


async def _hold(gate: AdmissionGate, release: asyncio.Event, order: list[int], tag: int) -> None:
    await gate.enter()
    order.append(tag)
    await release.wait()
    gate.leave()


def test_gate_admits_queued_requests_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        gate = AdmissionGate(max_concurrency=1, queue_limit=5)
        release = asyncio.Event()
        order: list[int] = []
        tasks = [asyncio.create_task(_hold(gate, release, order, i)) for i in range(4)]
        for _ in range(100):  # each task runs to its first wait within a few turns of the loop
            if gate.queued == 3:
                break
            await asyncio.sleep(0)
        assert order == [0] and gate.queued == 3
        release.set()
        await asyncio.gather(*tasks)
        assert gate.inflight == 0 and gate.queued == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3]


def test_gate_rejects_when_queue_is_full() -> None:
    async def scenario() -> None:
        gate = AdmissionGate(max_concurrency=1, queue_limit=0)
        await gate.enter()
        with pytest.raises(AdmissionGate.Rejected):
            await gate.enter()
        gate.leave()
        await gate.enter()

    asyncio.run(scenario())


def test_cancelled_waiter_gives_its_place_back() -> None:
    async def scenario() -> None:
        gate = AdmissionGate(max_concurrency=1, queue_limit=1)
        await gate.enter()
        waiter = asyncio.create_task(gate.enter())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert gate.queued == 0
        gate.leave()
        assert gate.inflight == 0

    asyncio.run(scenario())
