"""Where worker processes come from: the socket workers call back on and the supervised zygote.

The server listens on an abstract Unix socket (no path-length or cleanup trouble). The zygote connects and
says hello; `spawn()` asks it to fork, and the new worker connects on its own and says hello with its id.
Each worker first opens a second connection, its stdout and stderr (role `output`), read by workers/output.py.
Workers are adopted by the server (subreaper) so they outlive a zygote crash; the hub reaps them and kills
any still alive when it closes.
Templates (workers/template.py) connect here too (role `template`): `build_template()` has the zygote fork
one, and `spawn()` forks from the live template its spec names, or from the zygote when there is none or
it fails to answer. Templates are made only where orphans are adopted (`templates_supported`).

On a Ray cluster the hub also listens on TCP (`listen_tcp`) for workers on other machines: they connect
here directly (no relay), and each hello must carry the per-server-start token, else it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from zeroserve.metrics.events import Observer
from zeroserve.workers.connection import WorkerConnection
from zeroserve.workers.output import OutputSink, pump
from zeroserve.workers.protocol import Header, read_frame
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.supervisor import ZygoteSupervisor, ZygoteUnavailable, adopt_orphans, kill_quietly
from zeroserve.workers.template_link import TemplateFailed, TemplateInfo, TemplateLink

log = logging.getLogger("zeroserve.hub")
HELLO_TIMEOUT_S = 10.0


class SpawnFailed(Exception):
    """The worker could not start or load its model; the message says why."""


class WorkerHub:
    def __init__(
        self,
        observer: Observer | None = None,
        zygote_ack_timeout_s: float = 3.0,
        output: OutputSink | None = None,
    ) -> None:
        self.address = f"\0zeroserve-{os.getpid()}-{secrets.token_hex(6)}"
        self._observer = observer
        self._output = output
        self._ack_timeout_s = zygote_ack_timeout_s
        self._server: asyncio.Server | None = None
        self._tcp_server: asyncio.Server | None = None
        self._token = b""
        self.zygote: ZygoteSupervisor | None = None
        self._hellos: dict[str, asyncio.Future[WorkerConnection]] = {}
        self._template_hellos: dict[str, asyncio.Future[TemplateLink]] = {}
        # Live templates by key: the hub owns the links; what to keep is the pool's choice (TemplateCache).
        self.templates: dict[str, TemplateLink] = {}
        self.templates_supported = False
        # Live worker pid -> its pidfd: how we learn of its exit (to reap it) without polling.
        self._pidfds: dict[int, int] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._on_connect, path=self.address)
        env = dict(os.environ, ZEROSERVE_SOCKET="@" + self.address[1:], ZEROSERVE_SERVER_PID=str(os.getpid()))
        if adopt_orphans():
            env["ZEROSERVE_ADOPT_WORKERS"] = "1"
            self.templates_supported = True
        self.zygote = ZygoteSupervisor(env, observer=self._observer, ack_timeout_s=self._ack_timeout_s)
        await self.zygote.start()

    @property
    def zygote_pid(self) -> int | None:
        return self.zygote.pid if self.zygote is not None else None

    async def listen_tcp(self, host: str, port: int, token: str) -> tuple[str, int]:
        """Also accept workers of other machines on TCP (host, port); returns the bound address."""
        self._token = token.encode()
        self._tcp_server = await asyncio.start_server(self._on_tcp_connect, host, port)
        bound: tuple[str, int] = self._tcp_server.sockets[0].getsockname()[:2]
        return bound

    async def _on_tcp_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            hello, _ = await asyncio.wait_for(read_frame(reader), HELLO_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError, TimeoutError):
            writer.close()
            return
        token = str(hello.get("token", "")).encode()
        if not self._token or not hmac.compare_digest(token, self._token) or hello.get("role") == "zygote":
            log.warning("refused a worker connection from %s: bad token", writer.get_extra_info("peername"))
            writer.close()
            return
        await self._dispatch(hello, reader, writer, local=False)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello, _ = await read_frame(reader)
        except (asyncio.IncompleteReadError, ValueError):
            writer.close()
            return
        await self._dispatch(hello, reader, writer, local=True)

    async def _dispatch(
        self, hello: Header, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, local: bool
    ) -> None:
        if hello.get("role") == "zygote" and self.zygote is not None:
            await self.zygote.serve(hello, reader, writer)
            return
        if hello.get("role") == "output":  # read until the worker and whatever it started are gone
            await pump(hello, reader, self._output)
            writer.close()
            return
        if hello.get("role") == "template":
            template_waiter = self._template_hellos.pop(str(hello.get("worker_id")), None)
            if template_waiter is None or template_waiter.done():
                writer.close()  # one no longer wanted: it exits on EOF
                return
            pid = int(hello["pid"])
            self._track(pid)
            template_waiter.set_result(TemplateLink(str(hello["worker_id"]), pid, reader, writer))
            return
        waiter = self._hellos.pop(str(hello.get("worker_id")), None)
        if hello.get("role") != "worker" or waiter is None or waiter.done():
            writer.close()  # e.g. the twin of a spawn re-sent after its zygote died mid-fork: it exits on EOF
            return
        pid = int(hello["pid"])
        if local:  # a remote pid is another machine's: its agent reaps it
            self._track(pid)
        waiter.set_result(WorkerConnection(str(hello["worker_id"]), pid, reader, writer))

    def _track(self, pid: int) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return
        self._pidfds[pid] = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._reap, pid)

    def _reap(self, pid: int) -> None:
        pidfd = self._pidfds.pop(pid, None)
        if pidfd is None:
            return
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        with contextlib.suppress(ChildProcessError):  # the zygote's child, not ours: it reaps it
            os.waitpid(pid, os.WNOHANG)

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[WorkerConnection, Header]:
        """Fork a worker and wait until its model is loaded and warmed up. Returns the connection and the
        ready header (setup_ms, rss_mb). From the template `spec.template` names if one is alive and answers,
        else from the zygote."""
        assert self.zygote is not None, "start() first"
        zygote = self.zygote
        template = self.templates.get(spec.template) if spec.template else None
        loop = asyncio.get_running_loop()

        async def fork(deadline: float) -> None:
            ack_s = max(0.0, min(self._ack_timeout_s, deadline - loop.time()))
            if template is None or not await template.fork(spec, ack_s):
                await zygote.request_spawn(spec.worker_id, spec.to_json(), deadline)

        return await self.spawn_with(spec, timeout_s, fork)

    async def spawn_with(
        self,
        spec: WorkerSpec,
        timeout_s: float,
        request: Callable[[float], Awaitable[None]],
        killer: Callable[[int], None] | None = None,
    ) -> tuple[WorkerConnection, Header]:
        """Have `request(deadline)` fork the worker somewhere (this machine's zygote, or another node's
        agent), then wait for its hello here and for its model to load. `killer`: how to kill it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waiter: asyncio.Future[WorkerConnection] = loop.create_future()
        self._hellos[spec.worker_id] = waiter
        try:
            await request(deadline)
            connection = await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
        except ZygoteUnavailable as exc:
            raise SpawnFailed(str(exc)) from None
        except TimeoutError:
            raise SpawnFailed(f"worker {spec.worker_id} did not start within {timeout_s:.0f} s") from None
        finally:
            self._hellos.pop(spec.worker_id, None)
        if killer is not None:
            connection.killer = killer
        try:
            ready = await asyncio.wait_for(connection.wait_ready(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            connection.kill()
            raise SpawnFailed(f"model did not load within {timeout_s:.0f} s") from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise SpawnFailed("worker exited while loading the model") from None
        if ready.get("type") != "ready":
            connection.kill()
            raise SpawnFailed(str(ready.get("error", "worker failed to load the model")))
        connection.start()
        return connection, ready

    async def build_template(self, key: str, spec: WorkerSpec, timeout_s: float) -> TemplateInfo:
        """Have the zygote fork a template that loads `spec`'s bundle under `key`; returns once it is ready
        to fork workers. TemplateFailed if it cannot be made; the live link is in `templates[key]` until
        its `closed` resolves (a later build for the same key replaces it)."""
        assert self.zygote is not None, "start() first"
        if not self.templates_supported:
            raise TemplateFailed("templates need the server to adopt orphaned workers (a Linux subreaper)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waiter: asyncio.Future[TemplateLink] = loop.create_future()
        self._template_hellos[key] = waiter
        try:
            await self.zygote.request_spawn(key, spec.to_json(), deadline, role="template")
            link = await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
        except ZygoteUnavailable as exc:
            raise TemplateFailed(str(exc)) from None
        except TimeoutError:
            raise TemplateFailed(f"the template did not start within {timeout_s:.0f} s") from None
        finally:
            self._template_hellos.pop(key, None)
        try:
            info = await asyncio.wait_for(link.wait_ready(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            link.kill()
            raise TemplateFailed(f"the template did not load within {timeout_s:.0f} s") from None
        except BaseException:
            link.kill()
            raise
        old = self.templates.get(key)
        if old is not None:
            old.kill()
        self.templates[key] = link
        link.closed.add_done_callback(lambda _: self._forget_template(link))
        return info

    def _forget_template(self, link: TemplateLink) -> None:
        if self.templates.get(link.key) is link:
            del self.templates[link.key]

    def template_closed(self, key: str) -> asyncio.Future[None] | None:
        """Resolved when the live template under `key` exits; None if there is none."""
        link = self.templates.get(key)
        return link.closed if link is not None else None

    def drop_template(self, key: str) -> None:
        link = self.templates.pop(key, None)
        if link is not None:
            link.kill()

    async def close(self) -> None:
        for link in list(self.templates.values()):
            link.kill()
        if self.zygote is not None:
            await self.zygote.close()
        # Workers a dead zygote left behind are not in its successor's process group: kill them here.
        for pid in list(self._pidfds):
            kill_quietly(pid)
        if self._server is not None:
            self._server.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
