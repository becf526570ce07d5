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
