"""A worker: one forked process serving one endpoint variant.

It loads its bundle (or finds it loaded already, when forked from a template: workers/template.py), runs a
warm-up forward pass, and only then says `ready` (a worker that answered before its model was loaded would
turn a cold start into an error). The ready header says where its setup time went (`phases_ms`). Then it
answers batches of invocations until the server hangs up or says `stop`.

An invocation whose header says `"mode": "generate"` is answered by the handler's `generate` (a
`Generation` as JSON) instead of the toolkit's answer; with `"stream": true` one `token` frame per token goes
first. Between two tokens the worker looks at its socket without blocking: a `cancel` for that invocation
stops it within a token (anything else read there waits for the next batch).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

from zeroserve.runtimes.base import (
    ClientInputError,
    GeneratedToken,
    Generation,
    GenerativeHandler,
    Handler,
    Invocation,
    Outcome,
    Reply,
)
from zeroserve.workers.batching import BatchCollector, Frame
from zeroserve.workers.protocol import FrameSocket, Header
from zeroserve.workers.spec import WorkerSpec

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE / (1024 * 1024)


def serve(
    channel: FrameSocket,
    spec: WorkerSpec,
    *,
    handler: Handler | None = None,
    phases_ms: dict[str, float] | None = None,
    template_pid: int | None = None,
) -> NoReturn:
    """`handler`: already loaded (a template's); `phases_ms`: setup so far (fork -> hello), reported on."""
    started = time.perf_counter()
    phases = dict(phases_ms or {})
    try:
        if handler is None:
            handler = _load(spec)
            loaded = time.perf_counter()
            phases["load"] = (loaded - started) * 1000
        else:
            loaded = started
        handler.warm_up()
        phases["warm_up"] = (time.perf_counter() - loaded) * 1000
    except BaseException as exc:  # anything, including SystemExit from user code, fails the load
        traceback.print_exc()  # the whole story for the endpoint's log group; the reply carries its last line
        flush_output()
        channel.send({"type": "failed", "error": _describe(exc)})
        os._exit(1)
    setup_ms = (time.perf_counter() - started) * 1000
    ready: dict[str, object] = {
        "type": "ready",
        "setup_ms": setup_ms + sum(v for k, v in phases.items() if k not in ("load", "warm_up")),
        "rss_mb": rss_mb(),
        "pid": os.getpid(),
        "phases_ms": {k: round(v, 2) for k, v in phases.items()},
    }
    if template_pid is not None:
        ready["template_pid"] = template_pid
    channel.send(ready)

    collector = BatchCollector(channel, spec.max_batch_size, spec.max_batch_wait_ms)
    while (batch := collector.next_batch()) is not None:
        invokes = [frame for frame in batch if frame[0].get("type") == "invoke"]
        answers = [frame for frame in invokes if frame[0].get("mode") != "generate"]
        if answers:
            _answer(channel, handler, answers)
        for frame in invokes:
            if frame[0].get("mode") == "generate":
                _generate(channel, collector, handler, frame, spec)
        if any(frame[0].get("type") == "stop" for frame in batch):
            break
    flush_output()
    os._exit(0)


def flush_output() -> None:
    """os._exit() skips Python's flush: write what print() left without a newline first."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _load(spec: WorkerSpec) -> Handler:
    # The model's Environment (HF_TASK, SAGEMAKER_PROGRAM, ...) is the worker's, as in a container.
    os.environ.update(spec.env)
    if spec.threads:
        os.environ["ZEROSERVE_WORKER_THREADS"] = str(spec.threads)
    from zeroserve.runtimes.loader import load_handler

    return load_handler(Path(spec.bundle_dir))


def _invocation(header: Header, body: bytes) -> Invocation:
    return Invocation(
        body=body,
        content_type=header.get("content_type") or "application/json",
        accept=header.get("accept") or "application/json",
        custom_attributes=header.get("custom_attributes"),
    )


def _answer(channel: FrameSocket, handler: Handler, invokes: list[Frame]) -> None:
    invocations = [_invocation(header, body) for header, body in invokes]
    started = time.perf_counter()
    try:
        outcomes: list[Outcome] = handler.handle_batch(invocations)
    except Exception as exc:  # a handler bug fails the whole batch, not the worker
        outcomes = [exc] * len(invocations)
    model_us = int((time.perf_counter() - started) * 1_000_000)
    memory = rss_mb()
    for (header, _), outcome in zip(invokes, outcomes, strict=True):
        reply: dict[str, object] = {
            "type": "result",
            "id": header["id"],
            "model_us": model_us,
            "rss_mb": memory,
            "batch_size": len(invocations),
        }
        if isinstance(outcome, Reply):
            reply.update(status="ok", content_type=outcome.content_type)
            channel.send(reply, outcome.body)
        else:
            client = isinstance(outcome, ClientInputError)
            reply.update(status="client_error" if client else "error", error=_describe(outcome))
            channel.send(reply)


def _generate(
    channel: FrameSocket, collector: BatchCollector, handler: Handler, frame: Frame, spec: WorkerSpec
) -> None:
    """One `mode: generate` invocation: its tokens as frames when streamed, then its `Generation`."""
    header, body = frame
    request_id = int(header["id"])
    streamed = bool(header.get("stream"))

    def on_token(token: GeneratedToken) -> bool:
        # The token's own fields sit under "token": its `id` is the vocabulary id, the frame's the request's.
        channel.send({"type": "token", "id": request_id, "token": asdict(token)})
        collector.poll()
        return not collector.cancelled(request_id)

    started = time.perf_counter()
    outcome: Generation | BaseException
    try:
        if not isinstance(handler, GenerativeHandler):
            raise ClientInputError(_not_generative(spec))
        if collector.cancelled(request_id):  # its client left while it waited behind others
            raise ClientInputError("The invocation was cancelled before it started.")
        outcome = handler.generate(_invocation(header, body), on_token if streamed else None)
    except Exception as exc:  # a failed generation fails its request, not the worker
        outcome = exc
    finally:
        collector.done(request_id)
    reply: dict[str, object] = {
        "type": "result",
        "id": request_id,
        "model_us": max(1, int((time.perf_counter() - started) * 1_000_000)),
        "rss_mb": rss_mb(),
        "batch_size": 1,
    }
    if isinstance(outcome, Generation):
        reply.update(status="ok", content_type="application/json")
        channel.send(reply, outcome.to_json())
    else:
        client = isinstance(outcome, ClientInputError)
        reply.update(status="client_error" if client else "error", error=_describe(outcome))
        channel.send(reply)


def _not_generative(spec: WorkerSpec) -> str:
    """The error for streaming or chatting with a model that does not generate, naming its task (the
    bundle's, else the model's HF_TASK)."""
    try:
        from zeroserve.runtimes.manifest import read_manifest

        task: str | None = read_manifest(Path(spec.bundle_dir)).task
    except Exception:  # only the wording depends on it
        task = spec.env.get("HF_TASK")
    subject = f"This endpoint's task, {task}," if task else "This endpoint's model"
    return (
        f"{subject} does not generate text: only text-generation, text2text-generation, summarization and "
        "translation models can stream or answer chat and completion requests."
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientInputError):
        return str(exc)
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last
