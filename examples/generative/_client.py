"""Where the examples' clients point: a running `zeroserve serve` (or, unchanged, SageMaker itself).

The URL comes from `--url`, else ZEROSERVE_URL, else http://127.0.0.1:8080. Credentials and region are
whatever boto3 finds (`eval "$(zeroserve env)"` sets dummy ones); a server without ZEROSERVE_ACCESS_KEYS
checks no signature, so any work.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

DEFAULT_URL = "http://127.0.0.1:8080"
ENDPOINT = "smollm2"


def server_url(url: str | None) -> str:
    return (url or os.environ.get("ZEROSERVE_URL") or DEFAULT_URL).rstrip("/")


def _credentials() -> dict[str, str]:
    # Dummy keys and a region only where the shell has none, as `zeroserve env` does.
    session = boto3.Session()
    settings: dict[str, str] = {}
    if session.get_credentials() is None:
        settings.update(aws_access_key_id="zeroserve", aws_secret_access_key="zeroserve")
    if session.region_name is None:
        settings["region_name"] = "us-east-1"
    return settings


def client(service: str, url: str | None) -> Any:
    return boto3.client(service, endpoint_url=server_url(url), **_credentials())
