"""The benchmark sections, in report order. Each module has NAME, TITLE and `run(ctx) -> Section`."""

from __future__ import annotations

from types import ModuleType

from bench import (
    burst,
    cluster,
    coldstart,
    cost,
    gate,
    generation,
    length,
    localstore,
    recovery,
    runtimes,
    size,
    throughput,
    training,
    warm,
)

SECTIONS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        coldstart,
        warm,
        burst,
        length,
        size,
        runtimes,
        throughput,
        cost,
        recovery,
        localstore,
        gate,
        training,
        cluster,
        generation,
    )
}
