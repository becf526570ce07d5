"""The one place the server makes S3 clients.

A client follows boto3's own configuration of this process: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, the
credential chain, the region. When `--s3` runs the local store, the server has pointed exactly those
variables at it (local_s3/server_s3.py), so every client made here, and every client a subprocess makes,
talks to it. A fresh boto3 session per client: boto3's default session caches the credentials it found first,
which may predate those variables.
"""

from __future__ import annotations

from typing import Any


def s3_client() -> Any:
    # Imported here so that servers without S3 artifacts never pay for importing boto3.
    import boto3

    return boto3.session.Session().client("s3")
