"""Running the ASGI app under uvicorn: bind (port 0 allowed), announce the address, drain on SIGTERM."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from zeroserve.api.app import create_app
from zeroserve.api.auth import parse_keys
from zeroserve.config import Settings
from zeroserve.local_s3.server_s3 import check_s3
from zeroserve.wiring import Services

_M_ARENA_MAX = -8
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class InsecureBind(Exception):
    pass


def check_bind(settings: Settings) -> None:
    """Refuse settings that would serve insecurely or fail on the first request (malformed keys)."""
    try:
        parse_keys(settings.access_keys)
    except ValueError as exc:
        raise InsecureBind(str(exc)) from None
    if settings.host not in LOOPBACK_HOSTS and not settings.access_keys and not settings.insecure:
        raise InsecureBind(
            f"refusing to listen on {settings.host} without authentication: set ZEROSERVE_ACCESS_KEYS "
            "(SigV4) or pass --insecure"
        )


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, answer 503 to new requests at once while in-flight ones finish."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._app.state.draining = True
        super().handle_exit(sig, frame)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates (artifact hashing, SQLite, to_thread work) its own malloc arena;
    a server whose hot path is one event loop needs two, and idle RSS stays lower for it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the listening socket's
    # proto says TCP; without it Nagle + delayed ACK add ~40 ms to every response (measured by bench/).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings,
    *,
    port_file: Path | None = None,
    on_ready: Callable[[Services, str], Awaitable[None]] | None = None,
) -> None:
    check_bind(settings)
    check_s3(settings)
    limit_malloc_arenas()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is the request log's job
    app = create_app(settings)
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    app.state.url = url
    if on_ready is not None:
        app.state.on_ready = lambda services: on_ready(services, url)
    if port_file is not None:
        port_file.write_text(str(port))
    config = uvicorn.Config(
        app,
        log_level="warning" if settings.log_level == "info" else settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.invocation_timeout_s) + 5,
        lifespan="on",
    )
    _DrainingServer(config, app).run(sockets=[sock])
