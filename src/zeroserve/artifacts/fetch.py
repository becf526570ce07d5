"""Getting an artifact's bytes: parse a ModelDataUrl, and stream an S3 object or a local file into a file of
ours while hashing it (sha256), never holding a whole model in memory."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from zeroserve.errors import ArtifactError

CHUNK_BYTES = 1024 * 1024

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_model_data_url(url: str) -> S3Location | Path:
    """`s3://bucket/key`, `file:///abs/path` or a plain local path (anything without `scheme://`)."""
    if not url.strip():
        raise ArtifactError("is empty")
    match = _SCHEME.match(url)
    if match is None:
        return Path(url).expanduser().absolute()
    scheme = match.group(1).lower()
    if scheme == "s3":
        # Split by hand: urlsplit would cut a key at '?' or '#', which are legal in S3 keys.
        bucket, _, key = url[len(match.group(0)) :].partition("/")
        if not bucket or not key:
            raise ArtifactError("an S3 URL needs a bucket and a key: s3://bucket/path/model.tar.gz")
        return S3Location(bucket, key)
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ArtifactError(f"file URL names host {parts.netloc!r}; only local files can be read")
        if not parts.path:
            raise ArtifactError("file URL has no path: file:///abs/path/model.tar.gz")
        return Path(unquote(parts.path))
    raise ArtifactError(f"unsupported URL scheme {scheme!r}; use s3://, file:// or a local path")


def copy_hashing(src: BinaryIO, dest: BinaryIO | None, max_bytes: int) -> str:
    """Copy `src` to `dest` (or just read it, for None) in chunks; return the sha256 hex digest of the bytes.
    Stops with ArtifactError past `max_bytes`."""
    digest = hashlib.sha256()
    copied = 0
    while chunk := src.read(CHUNK_BYTES):
        copied += len(chunk)
        if copied > max_bytes:
            raise ArtifactError(_too_big(max_bytes))
        digest.update(chunk)
        if dest is not None:
            dest.write(chunk)
    return digest.hexdigest()


def hash_file(path: Path, max_bytes: int) -> str:
    """sha256 hex digest of a local file, read in chunks, at most `max_bytes` of it."""
    with path.open("rb") as f:
        return copy_hashing(f, None, max_bytes)


def download_s3(client: Any, location: S3Location, dest: BinaryIO, max_bytes: int) -> str:
    """Stream the S3 object into `dest`; return the sha256 hex digest of its bytes."""
    # Imported here: botocore costs ~30 ms to import, paid only once an s3:// artifact shows up.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as err:
        raise ArtifactError(_client_error(err)) from err
    except BotoCoreError as err:  # no credentials, endpoint unreachable, ...
        raise ArtifactError(f"could not reach S3 ({err})") from err
    body = response["Body"]
    try:
        # Refuse at once what could never unpack within the limits, rather than after downloading it.
        if int(response.get("ContentLength", 0)) > max_bytes:
            raise ArtifactError(_too_big(max_bytes))
        return copy_hashing(body, dest, max_bytes)
    except (BotoCoreError, ClientError) as err:
        raise ArtifactError(f"download was interrupted ({err})") from err
    finally:
        body.close()


def _client_error(err: Any) -> str:
    error = err.response.get("Error", {})
    code = str(error.get("Code") or "S3 error")
    message = str(error.get("Message") or "")
    return f"{code} ({message})" if message and message != code else code


def _too_big(max_bytes: int) -> str:
    return f"archive is larger than {max_bytes} bytes, more than any artifact within the unpack limits"
