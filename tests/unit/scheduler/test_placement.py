"""Where a new worker goes: room first (templates dropped before any idle worker is evicted), then spread
(provisioned workers), then the bundle, then memory."""

from __future__ import annotations

from zeroserve.scheduler.autoscaler import WorkerView
from zeroserve.scheduler.placement import NodeView, choose_node


def node(
    node_id: str, free_mb: int, *, bundle: bool = False, mine: int = 0, idle: int = 0, templates_mb: int = 0
) -> NodeView:
    evictable = tuple(WorkerView(f"{node_id}-idle{i}", 0, float(i), 1024, "other") for i in range(idle))
    return NodeView(node_id, free_mb, bundle, mine, evictable, droppable_mb=templates_mb)


def test_a_node_with_room_beats_one_that_must_evict() -> None:
    chosen = choose_node(1024, [node("full", 0, bundle=True, idle=1), node("roomy", 1024)], spread=False)
    assert chosen is not None and chosen.node_id == "roomy" and chosen.evictions == []


def test_idle_workers_are_evicted_when_no_node_has_room() -> None:
    chosen = choose_node(1024, [node("a", 0, idle=2), node("b", 512)], spread=False)
    assert chosen is not None and chosen.node_id == "a" and chosen.evictions == ["a-idle0"]


def test_no_node_when_nothing_fits_even_after_evictions() -> None:
    assert choose_node(2048, [node("a", 1024), node("b", 512, idle=0)], spread=False) is None


def test_a_node_holding_the_bundle_is_preferred_over_more_free_memory() -> None:
    chosen = choose_node(1024, [node("big", 8192), node("cached", 2048, bundle=True)], spread=False)
    assert chosen is not None and chosen.node_id == "cached"


def test_provisioned_workers_spread_over_nodes_even_away_from_the_bundle() -> None:
    nodes = [node("head", 4096, bundle=True, mine=1), node("other", 4096)]
    spread = choose_node(1024, nodes, spread=True)
    assert spread is not None and spread.node_id == "other"
    on_demand = choose_node(1024, nodes, spread=False)
    assert on_demand is not None and on_demand.node_id == "head"


def test_among_equals_the_most_free_memory_wins_then_the_node_id() -> None:
    chosen = choose_node(1024, [node("a", 2048), node("b", 4096)], spread=False)
    assert chosen is not None and chosen.node_id == "b"
    tie = choose_node(1024, [node("b", 2048), node("a", 2048)], spread=False)
    assert tie is not None and tie.node_id == "a"


def test_dropping_templates_beats_evicting_an_idle_worker() -> None:
    nodes = [node("head", 0, bundle=True, templates_mb=1024), node("busy", 0, idle=1)]
    chosen = choose_node(1024, nodes, spread=False)
    assert chosen is not None and chosen.node_id == "head" and chosen.evictions == []


def test_a_node_with_free_room_beats_one_that_must_drop_templates() -> None:
    nodes = [node("head", 0, bundle=True, templates_mb=1024), node("other", 1024)]
    chosen = choose_node(1024, nodes, spread=False)
    assert chosen is not None and chosen.node_id == "other"
