from zeroserve.scheduler.autoscaler import (
    ScalingConfig,
    WorkerView,
    choose_evictions,
    idle_workers_to_stop,
    next_scale_in_check_s,
    should_scale_out,
    workers_below_floor,
)

CONFIG = ScalingConfig(idle_timeout_s=60, min_workers=0, max_workers=2, target_inflight_per_worker=4)


def worker(worker_id: str, inflight: int = 0, last_used_s: float = 0.0, memory_mb: int = 1024) -> WorkerView:
    return WorkerView(worker_id, inflight, last_used_s, memory_mb)


def test_a_waiting_request_with_no_worker_starts_one() -> None:
    assert should_scale_out(CONFIG, [], starting=0, waiting=1)


def test_no_second_spawn_while_one_is_starting() -> None:
    assert not should_scale_out(CONFIG, [], starting=1, waiting=5)


def test_scale_out_only_when_every_worker_is_at_target_load() -> None:
    assert not should_scale_out(CONFIG, [worker("a", inflight=3)], starting=0, waiting=1)
    assert should_scale_out(CONFIG, [worker("a", inflight=4)], starting=0, waiting=1)


def test_scale_out_respects_max_workers() -> None:
    busy = [worker("a", inflight=9), worker("b", inflight=9)]
    assert not should_scale_out(CONFIG, busy, starting=0, waiting=1)


def test_idle_endpoint_scales_to_zero_after_timeout() -> None:
    workers = [worker("a", last_used_s=100.0)]
    assert idle_workers_to_stop(CONFIG, workers, now_s=159.0) == []
    assert idle_workers_to_stop(CONFIG, workers, now_s=160.0) == ["a"]


def test_busy_worker_is_never_stopped() -> None:
    assert idle_workers_to_stop(CONFIG, [worker("a", inflight=1, last_used_s=0.0)], now_s=1000.0) == []


def test_provisioned_concurrency_keeps_the_floor_warm() -> None:
    provisioned = ScalingConfig(idle_timeout_s=60, min_workers=1, max_workers=3)
    workers = [worker("a", last_used_s=0.0), worker("b", last_used_s=10.0)]
    assert idle_workers_to_stop(provisioned, workers, now_s=1000.0) == ["a"]
    assert workers_below_floor(provisioned, [], starting=0) == 1
    assert next_scale_in_check_s(provisioned, [worker("a")]) is None


def test_next_check_is_the_earliest_idle_deadline() -> None:
    workers = [worker("a", last_used_s=30.0), worker("b", last_used_s=10.0), worker("c", inflight=1)]
    assert next_scale_in_check_s(CONFIG, workers) == 70.0


def test_evictions_take_least_recently_used_idle_workers_first() -> None:
    candidates = [worker("new", last_used_s=50.0), worker("old", last_used_s=5.0), worker("busy", inflight=2)]
    assert choose_evictions(needed_mb=2048, free_mb=1024, candidates=candidates) == ["old"]
    assert choose_evictions(needed_mb=1024, free_mb=1024, candidates=candidates) == []
    assert choose_evictions(needed_mb=8192, free_mb=0, candidates=candidates) is None
