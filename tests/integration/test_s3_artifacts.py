"""s3:// artifacts against a real S3 server (moto, on a local port): download, errors named as S3 names them,
boto3's own endpoint configuration, and sharing the cache with local copies of the same bytes."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3server import put_object, s3_client, s3_server
from zeroserve.artifacts.cache import ArtifactCache
from zeroserve.errors import ArtifactError

CONFIG = b'{"architectures": ["BertForSequenceClassification"]}'


def tarball_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MODEL = tarball_bytes({"config.json": CONFIG, "vocab.txt": b"[PAD]\n[UNK]\n"})


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture
def cache(endpoint_url: str, tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache", s3_client_factory=lambda: s3_client(endpoint_url))


def test_s3_artifact_is_downloaded_and_unpacked(cache: ArtifactCache, endpoint_url: str) -> None:
    url = put_object(endpoint_url, "models", "sentiment/model.tar.gz", MODEL)
    resolved = cache.resolve(url)
    assert resolved.source_url == url
    assert (resolved.model_dir / "config.json").read_bytes() == CONFIG
    assert list((cache.root / "downloads").iterdir()) == []


def test_default_client_follows_aws_endpoint_url_s3(
    endpoint_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = put_object(endpoint_url, "models", "default-client/model.tar.gz", MODEL)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint_url)
    resolved = ArtifactCache(tmp_path / "cache").resolve(url)
    assert (resolved.model_dir / "config.json").is_file()


def test_missing_key_fails_with_no_such_key(cache: ArtifactCache, endpoint_url: str) -> None:
    put_object(endpoint_url, "models", "other/model.tar.gz", MODEL)
    with pytest.raises(ArtifactError) as caught:
        cache.resolve("s3://models/missing/model.tar.gz")
    assert caught.value.message.startswith("ModelDataUrl s3://models/missing/model.tar.gz: NoSuchKey")
    assert list((cache.root / "downloads").iterdir()) == []


def test_missing_bucket_fails_with_no_such_bucket(cache: ArtifactCache) -> None:
    with pytest.raises(ArtifactError) as caught:
        cache.resolve("s3://no-such-bucket/model.tar.gz")
    assert caught.value.message.startswith("ModelDataUrl s3://no-such-bucket/model.tar.gz: NoSuchBucket")


def test_hostile_s3_artifact_is_refused_after_download(cache: ArtifactCache, endpoint_url: str) -> None:
    url = put_object(endpoint_url, "models", "evil/model.tar.gz", tarball_bytes({"../../x": b"pwned"}))
    with pytest.raises(ArtifactError, match=r"member '\.\./\.\./x' would land outside the model folder"):
        cache.resolve(url)
    assert list((cache.root / "downloads").iterdir()) == []
    assert list((cache.root / "staging").iterdir()) == []


class CountingBody:
    """An S3 object's body that counts the bytes its reader took from it."""

    def __init__(self, body: Any) -> None:
        self.body, self.read_bytes, self.closed = body, 0, False

    def read(self, amt: int | None = None) -> bytes:
        chunk: bytes = self.body.read(amt)
        self.read_bytes += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True
        self.body.close()


def counting_client(endpoint_url: str, bodies: list[CountingBody]) -> Any:
    """A real client whose GetObject answers hand out CountingBody (kept in `bodies`), through botocore's own
    after-call event, so that a test sees how much of each object was actually downloaded."""
    client = s3_client(endpoint_url)

    def count(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" in parsed:
            parsed["Body"] = CountingBody(parsed["Body"])
            bodies.append(parsed["Body"])

    client.meta.events.register("after-call.s3.GetObject", count)
    return client


def test_object_too_big_to_unpack_within_the_cap_is_not_downloaded(endpoint_url: str, tmp_path: Path) -> None:
    bodies: list[CountingBody] = []
    cache = ArtifactCache(
        tmp_path / "cache",
        s3_client_factory=lambda: counting_client(endpoint_url, bodies),
        max_unpacked_bytes=100,
        max_members=1,
    )
    url = put_object(endpoint_url, "models", "huge/model.tar.gz", bytes(2 * 1024 * 1024))
    with pytest.raises(ArtifactError, match=r"archive is larger than \d+ bytes, more than any artifact"):
        cache.resolve(url)
    # Refused on the size S3 declared: the object was asked for, and not one byte of its body was read.
    [body] = bodies
    assert (body.read_bytes, body.closed) == (0, True)
    assert list((cache.root / "downloads").iterdir()) == []
    assert list((cache.root / "models").iterdir()) == []


def test_s3_and_local_copies_of_the_same_bytes_share_one_folder(
    cache: ArtifactCache, endpoint_url: str, tmp_path: Path
) -> None:
    url = put_object(endpoint_url, "models", "shared/model.tar.gz", MODEL)
    local = tmp_path / "model.tar.gz"
    local.write_bytes(MODEL)
    from_s3 = cache.resolve(url)
    from_disk = cache.resolve(str(local))
    assert (from_s3.fresh, from_disk.fresh) == (True, False)
    assert from_disk.model_dir == from_s3.model_dir
