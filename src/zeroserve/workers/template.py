"""A template: a process forked from the zygote that has loaded one bundle, and forks that variant's workers.

A cold start from a template skips what costs most (reading the bundle, building the tokenizer, creating
the onnxruntime session): the worker inherits them, copy-on-write, and only warms up. What makes that safe
is that the template holds no thread at fork: a session with one intra-op thread and sequential execution
creates no thread pool, the tokenizer has not run (its rayon pool starts at first use), and the loader's own
thread has ended. The template checks that before it says ready and refuses to serve otherwise; it never
runs the model itself. Workers forked from it are the server's children like any other (workers/zygote.py
detaches them), so killing a template never takes a worker with it.

Protocol on its socket to the server: hello (role `template`, its id and pid), then `ready` (setup_ms,
private_mb: the memory it holds that the zygote does not share) or `failed` (error); then it answers each
`spawn` with `spawned` once it has forked, and exits on `stop` or EOF.
"""

from __future__ import annotations

import gc
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from zeroserve.runtimes.base import Handler
from zeroserve.workers.protocol import FrameSocket
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.worker import flush_output, rss_mb

# A template's sessions: one intra-op thread, the only kind that forks safely (see above).
TEMPLATE_THREADS = 1


def private_mb() -> float:
    """Memory only this process holds (not shared with the zygote or anyone): what a template costs."""
    total_kb = 0
    with open("/proc/self/smaps_rollup", "rb") as rollup:
        for line in rollup:
            if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def load(spec: WorkerSpec) -> Handler:
    """The bundle's handler, loaded as a worker would with one runtime thread. Raises when the process is
    left with a thread, which a fork would not carry over, or when the bundle's own model_fn loads the model:
    what user code opened (a connection, a file) must not be shared by every worker forked from here."""
    from zeroserve.runtimes.loader import load_handler
    from zeroserve.runtimes.manifest import read_manifest

    if "model_fn" in read_manifest(Path(spec.bundle_dir)).custom_functions:
        raise RuntimeError("the bundle's model_fn loads the model; its workers start without a template")
    os.environ.update(spec.env)  # the model's Environment, inherited by every worker forked from here

    handler = load_handler(Path(spec.bundle_dir), threads=TEMPLATE_THREADS, parallel=False)
    if (threads := thread_count()) != 1:
        raise RuntimeError(f"the loaded bundle left {threads - 1} thread(s) running; it cannot be forked")
    return handler


def serve(
    channel: FrameSocket, spec: WorkerSpec, fork_worker: Callable[[WorkerSpec, Handler], None]
) -> NoReturn:
    """Load `spec`'s bundle, then call `fork_worker` (which forks; the parent returns) per spawn request."""
    started = time.perf_counter()
    channel.send({"type": "hello", "role": "template", "worker_id": spec.worker_id, "pid": os.getpid()})
    try:
        handler = load(spec)
    except BaseException as exc:
        traceback.print_exc()
        flush_output()
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        channel.send({"type": "failed", "error": last})
        os._exit(1)
    # As in the zygote: workers' collections then never touch (and so copy) the pages loaded here.
    gc.collect()
    gc.freeze()
    channel.send(
        {
            "type": "ready",
            "setup_ms": (time.perf_counter() - started) * 1000,
            "private_mb": round(private_mb(), 1),
            "rss_mb": round(rss_mb(), 1),
        }
    )
    while (frame := channel.recv()) is not None:
        header = frame[0]
        if header.get("type") == "spawn":
            worker = WorkerSpec.from_json(header["spec"])
            fork_worker(worker, handler)
            channel.send({"type": "spawned", "worker_id": worker.worker_id})
        elif header.get("type") == "stop":
            break
    os._exit(0)
