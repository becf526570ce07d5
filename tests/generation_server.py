"""A real HTTP server (uvicorn on port 0, in a thread) running zeroserve's generation routes over a real
Router and Pool, whose workers are in-process stand-ins running a fake generative handler in a thread: the
routes, admission, the stream's lifetime and cancellation are the real ones, only the process and the model
are not. When the real generative handler lands, the same clients (boto3, the SDK's predict_stream, openai)
point at `zeroserve serve` instead (tests/server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from fake_generation import FakeGenerativeHandler
from zeroserve.api import openai_routes, public, response_stream, runtime
from zeroserve.config import Settings
from zeroserve.metrics.events import InvocationRecord, NullObserver
from zeroserve.runtimes.base import GeneratedToken, Invocation, Reply
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.router import Router
from zeroserve.workers.connection import WorkerGone, WorkerReply
from zeroserve.workers.generation_call import GenerationCall
from zeroserve.workers.spec import WorkerSpec


class ThreadWorker:
    """A worker's connection whose handler runs in a thread of this process, one invocation at a time, with
    the real protocol's semantics: tokens pushed as made, a cancel seen at the next token."""

    def __init__(self, worker_id: str, handler: Any) -> None:
        self.worker_id = worker_id
        self.pid = 0
        self.handler = handler
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.active = 0
        self.cancelled_ids: set[int] = set()
        self.stopped_at_token: dict[int, int] = {}  # request id -> tokens made when a cancel stopped it
        # Tokens after this many wait until their request is cancelled (a client that leaves mid-stream).
        self.hold_after_tokens: int | None = None
        self.generation_ended = threading.Event()
        self._cancel_seen: dict[int, threading.Event] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one generation at a time, as a worker process

    @property
    def inflight(self) -> int:
        return self.active

    def _future(self) -> asyncio.Future[WorkerReply]:
        if self.closed.done():
            raise WorkerGone(self.worker_id)
        self.active += 1
        future: asyncio.Future[WorkerReply] = self.loop.create_future()
        future.add_done_callback(lambda _: setattr(self, "active", self.active - 1))
        return future

    def submit(
        self, body: bytes, content_type: str, accept: str, custom: str | None
    ) -> asyncio.Future[WorkerReply]:
        future = self._future()
        outcome = self.handler.handle_batch([Invocation(body, content_type, accept, custom)])[0]
        assert isinstance(outcome, Reply)
        future.set_result(WorkerReply("ok", outcome.body, outcome.content_type, "", 1, 10.0))
        return future

    def submit_generate(
        self, body: bytes, content_type: str, accept: str, custom: str | None, *, stream: bool
    ) -> GenerationCall:
        future = self._future()
        request_id = next(self._ids)
        self._cancel_seen[request_id] = threading.Event()
        call = GenerationCall(future, lambda: self._cancel(request_id))
        invocation = Invocation(body, content_type, accept, custom)
        args = (request_id, call, invocation, stream)
        threading.Thread(target=self._generate, args=args, daemon=True).start()
        return call

    def _cancel(self, request_id: int) -> None:
        self.cancelled_ids.add(request_id)
        self._cancel_seen[request_id].set()

    def _generate(self, request_id: int, call: GenerationCall, invocation: Invocation, stream: bool) -> None:
        def on_token(token: GeneratedToken) -> bool:
            self.loop.call_soon_threadsafe(call.push, token)
            if self.hold_after_tokens is not None and token.index > self.hold_after_tokens:
                self._cancel_seen[request_id].wait(timeout=30)
            if request_id in self.cancelled_ids:
                self.stopped_at_token[request_id] = token.index
                return False
            return True

        with self._lock:
            try:
                generation = self.handler.generate(invocation, on_token if stream else None)
                reply = WorkerReply("ok", generation.to_json(), "application/json", "", 1000, 10.0)
            except Exception as exc:  # relayed as the worker relays it
                error = f"{type(exc).__name__}: {exc}"
                reply = WorkerReply("error", b"", "application/json", error, 1000, 10.0)
        self.loop.call_soon_threadsafe(_resolve, call.reply, reply)
        self.generation_ended.set()

    def stop(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def kill(self) -> None:
        self.stop()


def _resolve(future: asyncio.Future[WorkerReply], reply: WorkerReply) -> None:
    if not future.done():
        future.set_result(reply)


@dataclass
class ThreadHub:
    handler_factory: Callable[[], Any]
    workers: list[ThreadWorker] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[ThreadWorker, dict[str, Any]]:
        worker = ThreadWorker(spec.worker_id, self.handler_factory())
        self.workers.append(worker)
        return worker, {"type": "ready", "setup_ms": 1.0, "rss_mb": 10.0}


class Records(NullObserver):
    def __init__(self) -> None:
        self.records: list[InvocationRecord] = []

    def invocation(self, record: InvocationRecord) -> None:
        self.records.append(record)


@dataclass
class GenerationServer:
    url: str
    hub: ThreadHub
    records: Records
    app: Starlette

    @property
    def router(self) -> Router:
        router: Router = self.app.state.router
        return router


def generation_app(
    hub: ThreadHub, records: Records, max_concurrency: int = 2, **settings: Any
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = Pool(hub, idle_timeout_s=600, memory_budget_mb=8192, spawn_timeout_s=5)
        router = Router(
            pool, account_id="000000000000", region="us-east-1", wait_budget_s=5, invocation_timeout_s=60,
            stream_timeout_s=app.state.settings.stream_timeout_s, queue_limit=0,
        )
        deployment = VariantDeployment(
            endpoint="gen", variant="AllTraffic", bundle_dir="/fake", memory_mb=1024,
            max_concurrency=max_concurrency,
        )
        router.set_endpoint("gen", [deployment])
        app.state.router = router
        app.state.observer = records
        yield
        await router.close()

    routes = [
        Route("/endpoints/{endpoint_name}/invocations", runtime.invoke_endpoint, methods=["POST"]),
        Route(
            "/endpoints/{endpoint_name}/invocations-response-stream",
            response_stream.invoke_endpoint_stream,
            methods=["POST"],
        ),
        *openai_routes.routes,
        *public.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = Settings(**settings)
    app.state.draining = False
    return app


@contextlib.contextmanager
def generation_server(
    handler_factory: Callable[[], Any] = FakeGenerativeHandler, max_concurrency: int = 2, **settings: Any
) -> Iterator[GenerationServer]:
    hub, records = ThreadHub(handler_factory), Records()
    app = generation_app(hub, records, max_concurrency, **settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:  # the lifespan (router, pool) runs before the first request
            threading.Event().wait(0.01)
        yield GenerationServer(f"http://127.0.0.1:{sock.getsockname()[1]}", hub, records, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
