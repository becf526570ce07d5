"""What a SageMaker SDK user's shell looks like: no AWS configuration of their own, a `zeroserve serve
--s3` started from it, and the environment after `eval "$(zeroserve env)"`. Plain functions, no pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from server import ServerProcess

# A user with no AWS configuration at all: no keys, no profile, no endpoint, no config files.
_AWS_UNSET = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
_AWS_NOWHERE = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _AWS_UNSET}
    return {**env, **_AWS_NOWHERE, **extra}


def start_s3_server(data_dir: Path, **env: str) -> ServerProcess:
    saved = {name: os.environ.pop(name) for name in _AWS_UNSET if name in os.environ}
    try:  # ServerProcess starts from os.environ
        return ServerProcess(data_dir, env={**_AWS_NOWHERE, **env}, args=["--s3"]).start()
    finally:
        os.environ.update(saved)


def s3_status(server: ServerProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/zeroserve/status", timeout=5).json()["s3"]
    return answer


def zeroserve_env(url: str, env: dict[str, str]) -> dict[str, str]:
    """The environment a shell has after `eval "$(zeroserve env)"`, read back from a real bash."""
    script = f'eval "$({sys.executable} -m zeroserve env --url {url})" && env -0'
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True, timeout=60)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
