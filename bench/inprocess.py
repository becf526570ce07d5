"""Model latency without a server: zeroserve's own handler (`load_handler`) called in this process, as a
worker calls it. The difference between this and an HTTP round trip is what the server adds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.workload import body


def load(bundle_dir: Path, threads: int | None = None) -> tuple[Any, float]:
    """(handler, load seconds), warmed up as a worker does before it reports ready."""
    from zeroserve.runtimes.loader import load_handler

    started = time.perf_counter()
    handler = load_handler(bundle_dir, threads=threads)
    handler.warm_up()
    return handler, time.perf_counter() - started


def latencies_ms(handler: Any, text: str | list[str], count: int, max_s: float = 20.0) -> list[float]:
    """`count` timed calls (bounded by `max_s`) of one invocation, after two untimed ones."""
    from zeroserve.runtimes.base import Invocation

    invocation = Invocation(body(text))
    for _ in range(2):
        _check(handler.handle_batch([invocation]))
    out: list[float] = []
    deadline = time.monotonic() + max_s
    while len(out) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        outcomes = handler.handle_batch([invocation])
        out.append((time.perf_counter() - started) * 1000)
        _check(outcomes)
    return out


def classify(handler: Any, texts: list[str], batch_size: int = 16) -> list[str]:
    """The top label of each text, batched (one invocation with a list of inputs per batch); over-long
    texts are truncated to the model's window (IMDB reviews run past 512 tokens)."""
    import json

    from zeroserve.runtimes.base import Invocation

    labels: list[str] = []
    for start in range(0, len(texts), batch_size):
        request = {"inputs": texts[start : start + batch_size], "parameters": {"truncation": True}}
        outcomes = handler.handle_batch([Invocation(json.dumps(request).encode())])
        _check(outcomes)
        for answer in json.loads(outcomes[0].body):
            top = answer[0] if isinstance(answer, list) else answer
            labels.append(str(top["label"]))
    return labels


def _check(outcomes: list[Any]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _floor_worker(
    bundle_dir: str, texts: list[str], threads: int, batch: int, duration_s: float, start: Any, out: Any
) -> None:
    """One process of the floor: load, warm up, wait for the others, then run batches for `duration_s`."""
    from zeroserve.runtimes.base import Invocation

    handler, _ = load(Path(bundle_dir), threads=threads)
    invocations = [Invocation(body(text)) for text in texts]
    batches = [invocations[i : i + batch] for i in range(0, len(invocations) - batch + 1, batch)]
    _check(handler.handle_batch(batches[0]))
    start.wait()
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    deadline = started + duration_s
    while time.perf_counter() < deadline:
        _check(handler.handle_batch(batches[(done // batch) % len(batches)]))
        done += batch
    out.put((done, time.perf_counter() - started, time.process_time() - cpu_started))


def floor_rps(
    bundle_dir: Path, texts: list[str], *, processes: int, threads: int, batch: int, duration_s: float
) -> tuple[float, float]:
    """Requests per second with no server at all: `processes` processes of `threads` runtime threads each,
    each calling zeroserve's handler on batches of `batch` invocations (one text each, as a worker receives
    them) back to back. The most any server could get out of these cores for this model and batch size.
    Returns (requests/s, CPU ms per request): the second does not depend on what else the machine runs."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no runtime thread pool from a fork
    start, out = context.Barrier(processes + 1), context.Queue()
    children = [
        context.Process(
            target=_floor_worker, args=(str(bundle_dir), texts, threads, batch, duration_s, start, out)
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        start.wait(timeout=120)
        results = [out.get(timeout=duration_s + 60) for _ in children]
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
    done = sum(count for count, _, _ in results)
    return done / max(elapsed for _, elapsed, _ in results), sum(cpu for _, _, cpu in results) * 1000 / done
