"""A real S3 for tests: moto's server on a free local port, with dummy credentials.

Plain functions, no pytest import, so integration tests, e2e tests and benchmarks can all use it:

    with s3_server() as endpoint_url:
        put_object(endpoint_url, "models", "sentiment/model.tar.gz", data)
        ...  # point boto3 (or AWS_ENDPOINT_URL_S3) at endpoint_url
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

REGION = "us-east-1"

# Dummy credentials, set for the life of the server so that no test ever signs with real ones; the config and
# credentials file variables point nowhere so that a developer's ~/.aws cannot leak in either.
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# Unset while the server runs: a profile would take precedence over the dummy credentials, and a global
# endpoint override would send clients elsewhere.
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@contextmanager
def dummy_aws_env() -> Iterator[None]:
    """Dummy AWS credentials in os.environ for the duration, restoring what was there before."""
    saved = {name: os.environ.get(name) for name in (*_ENV, *_UNSET)}
    os.environ.update(_ENV)
    for name in _UNSET:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def s3_server() -> Iterator[str]:
    """Run moto's S3 on 127.0.0.1, a free port, with empty state; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with dummy_aws_env():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint_url = f"http://{host}:{port}"
            # moto keeps state per process, not per server: start from nothing.
            reset = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).close()
            yield endpoint_url
        finally:
            server.stop()


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the server at `endpoint_url`, with the dummy credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def put_object(endpoint_url: str, bucket: str, key: str, data: bytes) -> str:
    """Upload `data` to s3://bucket/key, creating the bucket if needed; return that s3:// URL."""
    client = s3_client(endpoint_url)
    with suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"
