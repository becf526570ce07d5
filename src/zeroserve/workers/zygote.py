"""The zygote: a long-lived process that imports the runtime stack once and forks workers on demand.

Forking a warm process costs milliseconds where a fresh interpreter with onnxruntime costs hundreds of them.
Fork safety: nothing here creates an onnxruntime session, a thread pool or an event loop before forking;
only modules are imported. Run as `python -m zeroserve.workers.zygote` with ZEROSERVE_SOCKET set.
When the server adopts orphans (ZEROSERVE_ADOPT_WORKERS=1), each worker is forked twice so that it is the
server's child, not ours: a zygote crash then leaves warm workers serving (workers/supervisor.py).
A worker's stdout and stderr go to the server over a socket of their own (workers/output.py), which lands
them in its endpoint's log group; the zygote's own output (its startup errors) stays on the server's stderr.
A spawn with role `template` forks a template instead (workers/template.py): a process that loads one bundle
and then forks that variant's workers itself, through `_become_worker` as here. Templates exist only when the
server adopts orphans, so that a worker never dies with the template it came from.

On another machine of a Ray cluster the zygote belongs to that node's agent (zeroserve/cluster/agent.py):
its workers then connect over TCP to the server (ZEROSERVE_WORKER_CONNECT, "tcp:host:port") and present the
server's token (ZEROSERVE_WORKER_TOKEN) in their hellos.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import os
import resource
import signal
import socket
import sys
import time
import traceback
from typing import NoReturn

from zeroserve.runtimes.base import Handler
from zeroserve.workers import template
from zeroserve.workers.protocol import FrameSocket, Header
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.worker import flush_output

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGKILL us when our parent dies, so no process outlives the server."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def preimport() -> None:
    """Import what every ONNX worker needs, so each fork inherits it already loaded."""
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401

    import zeroserve.runtimes.loader
    import zeroserve.workers.worker  # noqa: F401


# Set from the environment in main(), then dropped from it, so the model's code does not find it there.
_worker_token = ""


def connect(address: str) -> socket.socket:
    if address.startswith("tcp:"):  # a worker on another machine than the server
        host, _, port = address[4:].rpartition(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    return sock


def _hello(fields: Header) -> Header:
    return {**fields, "token": _worker_token} if _worker_token else fields


# Address space a worker may add beyond what it maps at fork, per MB of MemorySizeInMB. Virtual size
# overcounts (each runtime thread's malloc arena reserves 64 MB it may never touch; measured: a tiny model's
# worker maps ~270 MB more than at fork while resident only ~70 MB), so the cap is a backstop at twice the
# size, and the RSS check on every reply (scheduler/router.py) is what holds a worker to MemorySizeInMB.
ADDRESS_SPACE_FACTOR = 2


def _limit_memory(memory_mb: int) -> None:
    """Cap address space at what the process maps now plus twice its memory size: a runaway allocation
    fails (MemoryError) instead of taking the machine down; growth past MemorySizeInMB in resident memory
    gets the worker killed by the server."""
    with open("/proc/self/statm", "rb") as statm:
        mapped_bytes = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped_bytes + ADDRESS_SPACE_FACTOR * memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _detach(server_pid: int) -> None:
    """Fork once more and let the middle process exit: the worker is then adopted by the server (its
    subreaper), so it survives a zygote crash yet still dies with the server."""
    middle = os.getpid()
    if os.fork() != 0:
        os._exit(0)
    deadline = time.monotonic() + 1.0
    while os.getppid() == middle and time.monotonic() < deadline:  # sub-millisecond: the exit is under way
        time.sleep(0.0001)
    die_with_parent()
    if os.getppid() != server_pid:  # the server died meanwhile, or did not adopt us
        os._exit(1)


def _redirect_output(address: str, spec: WorkerSpec) -> None:
    """Put a socket to the server in place of fds 1 and 2, so that all the worker writes (Python or C, and
    any child it starts) is read by the server until the very last line before it dies. Line-buffered: a
    print() is on its way at once, and none waits in a buffer that os._exit() or a kill would discard."""
    sock = connect(address)
    FrameSocket(sock).send(
        _hello(
            {
                "type": "hello",
                "role": "output",
                "worker_id": spec.worker_id,
                "endpoint": spec.endpoint,
                "variant": spec.variant,
            }
        )
    )
    os.dup2(sock.fileno(), 1)
    os.dup2(sock.fileno(), 2)
    sock.close()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
        else:  # none (the zygote was started without it) or replaced: a fresh one on the socket
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False))  # noqa: SIM115


def _become_worker(
    address: str,
    spec: WorkerSpec,
    server_pid: int | None,
    forked_at: float,
    handler: Handler | None = None,
    template_pid: int | None = None,
) -> NoReturn:
    """`forked_at`: perf_counter() just before the fork (the clock is system-wide), for the ready header's
    setup phases; `handler`: the template's, already loaded."""
    try:
        phases = {"fork": (time.perf_counter() - forked_at) * 1000}
        _redirect_output(address, spec)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
        if server_pid is not None:
            _detach(server_pid)
        else:
            die_with_parent()
        _limit_memory(spec.memory_mb)
        channel = FrameSocket(connect(address))
        channel.send(
            _hello({"type": "hello", "role": "worker", "worker_id": spec.worker_id, "pid": os.getpid()})
        )
        phases["connect"] = (time.perf_counter() - forked_at) * 1000 - phases["fork"]
        from zeroserve.workers.worker import serve

        serve(channel, spec, handler=handler, phases_ms=phases, template_pid=template_pid)
    except BaseException:
        with contextlib.suppress(BaseException):  # say why on the way out: it lands in the endpoint's log
            traceback.print_exc()
            flush_output()
        os._exit(1)


def _become_template(address: str, spec: WorkerSpec, server_pid: int) -> NoReturn:
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _detach(server_pid)  # the server's child, like its workers: it reaps us and we die with it
        channel = FrameSocket(connect(address))
        template_pid = os.getpid()

        def fork_worker(worker: WorkerSpec, handler: Handler) -> None:
            flush_output()
            forked_at = time.perf_counter()
            if os.fork() == 0:
                channel.sock.close()
                _become_worker(address, worker, server_pid, forked_at, handler, template_pid)

        template.serve(channel, spec, fork_worker)
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            flush_output()
        os._exit(1)


def run(
    address: str, server_pid: int | None, worker_address: str = "", parent_pid: int | None = None
) -> None:
    """`parent_pid`: the process that started us, as it said; if we already have another parent, it died
    before PDEATHSIG took effect and nothing would ever kill us, so we exit instead."""
    die_with_parent()
    if parent_pid is not None and os.getppid() != parent_pid:
        sys.exit("zeroserve zygote: the process that started it has exited")
    preimport()
    # Move everything imported so far out of the collector's sight: a forked worker's garbage collections
    # then never write to (and so copy) the pages it shares with the zygote.
    gc.collect()
    gc.freeze()
    # Our children (the short-lived middle processes, or workers when the server adopts none) are reaped by
    # the kernel; the server learns of a worker's death from its closed socket and reaps the ones it adopted.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = connect(address)
    channel = FrameSocket(control)
    channel.send({"type": "hello", "role": "zygote", "pid": os.getpid()})
    while (frame := channel.recv()) is not None:
        header: Header = frame[0]
        if header.get("type") == "spawn":
            spec = WorkerSpec.from_json(header["spec"])
            as_template = header.get("role") == "template" and server_pid is not None
            flush_output()  # else a child would inherit, and write again, what our buffers hold
            forked_at = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                control.close()
                worker_connect = worker_address or address
                if as_template:
                    assert server_pid is not None
                    _become_template(worker_connect, spec, server_pid)
                _become_worker(worker_connect, spec, server_pid, forked_at)
            channel.send({"type": "spawned", "worker_id": spec.worker_id})
    # The server closed us: take every worker we forked down with us (they share our process group).
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main() -> None:
    address = os.environ.get("ZEROSERVE_SOCKET")
    if not address:
        sys.exit("zeroserve zygote: ZEROSERVE_SOCKET is not set")
    # Set by the server when it adopts orphans (PR_SET_CHILD_SUBREAPER): workers then detach from us.
    adopt = os.environ.get("ZEROSERVE_ADOPT_WORKERS") == "1" and os.environ.get("ZEROSERVE_SERVER_PID")
    server_pid = int(os.environ["ZEROSERVE_SERVER_PID"]) if adopt else None
    global _worker_token
    _worker_token = os.environ.pop("ZEROSERVE_WORKER_TOKEN", "")
    worker_address = os.environ.get("ZEROSERVE_WORKER_CONNECT", "")
    parent = os.environ.get("ZEROSERVE_PARENT_PID")
    run(
        address.replace("@", "\0", 1) if address.startswith("@") else address,
        server_pid,
        worker_address,
        int(parent) if parent else None,
    )


if __name__ == "__main__":
    main()
