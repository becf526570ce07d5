"""A job's bytes in and out: channels and the source tarball into the job folder, the model and output
data out to `<S3OutputPath>/<job>/output/{model,output}.tar.gz`. S3 or file:// on both sides.

Blocking (boto3, tarfile): callers run these in a thread. Failures are TrainingJobFailed with SageMaker's
kind of reason ("ClientError: ..."), which the job records as its FailureReason.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from zeroserve.artifacts.fetch import S3Location, parse_model_data_url
from zeroserve.artifacts.unpack import UnpackLimits, extract_tarball
from zeroserve.errors import ArtifactError, TrainingJobFailed
from zeroserve.training_jobs.spec import ChannelSpec

_SOURCE_LIMITS = UnpackLimits(max_bytes=1024**3, max_members=20_000)


def _location(uri: str) -> S3Location | Path:
    if uri.startswith("s3://") and "/" not in uri[len("s3://") :].rstrip("/"):
        return S3Location(uri[len("s3://") :].rstrip("/"), "")  # a whole bucket
    try:
        return parse_model_data_url(uri)
    except ArtifactError as err:
        raise TrainingJobFailed(f"ClientError: {uri}: {err.message}") from None


def _client_error(err: Any) -> str:
    error = err.response.get("Error", {})
    return str(error.get("Code") or "S3 error")


def download_channel(channel: ChannelSpec, dest: Path, s3: Any) -> int:
    """Every object under the channel's prefix (or the file:// folder) into `dest`; returns the file count."""
    dest.mkdir(parents=True, exist_ok=True)
    where = _location(channel.uri)
    if isinstance(where, Path):
        return _copy_local(where, dest, channel.uri)
    return _download_prefix(s3, where, dest, channel)


def _copy_local(source: Path, dest: Path, uri: str) -> int:
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True, symlinks=False)
        return sum(1 for p in dest.rglob("*") if p.is_file())
    if source.is_file():
        shutil.copy2(source, dest / source.name)
        return 1
    raise TrainingJobFailed(f"ClientError: No file or folder found at {uri} given in input data source.")


def _download_prefix(s3: Any, where: S3Location, dest: Path, channel: ChannelSpec) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    count = 0
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=where.bucket, Prefix=where.key):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith("/"):
                    continue
                target = dest / _relative_name(key, where.key)
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(where.bucket, key, str(target))
                count += 1
    except ClientError as err:
        code = _client_error(err)
        if code == "NoSuchBucket":
            raise TrainingJobFailed(
                f'ClientError: Data download failed: the bucket "{where.bucket}" of channel '
                f'"{channel.name}" ({channel.uri}) does not exist.'
            ) from None
        raise TrainingJobFailed(f"ClientError: Data download failed for {channel.uri}: {code}") from None
    except BotoCoreError as err:
        raise TrainingJobFailed(f"ClientError: Data download failed: could not reach S3 ({err})") from None
    if count == 0:
        raise TrainingJobFailed(
            f'ClientError: No S3 objects found under S3 URL "{channel.uri}" given in input data source '
            f'"{channel.name}". Please ensure that the bucket exists and that objects exist under it.'
        )
    return count


def _relative_name(key: str, prefix: str) -> str:
    """Where an object lands under the channel folder; never outside it."""
    rest = key[len(prefix) :] if prefix and key != prefix else PurePosixPath(key).name
    parts = [p for p in PurePosixPath(rest.lstrip("/")).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise TrainingJobFailed(
            f"ClientError: refused S3 key {key!r}: it would land outside its channel folder."
        )
    return str(PurePosixPath(*parts))


def fetch_source(uri: str, code_dir: Path, s3: Any) -> None:
    """The SDK's sourcedir.tar.gz (s3:// or file://), or a file:// folder, into the code folder."""
    where = _location(uri)
    if isinstance(where, Path) and where.is_dir():
        shutil.copytree(where, code_dir, dirs_exist_ok=True, symlinks=False)
        return
    with tempfile.TemporaryDirectory(dir=code_dir.parent) as scratch:
        archive = Path(scratch) / "sourcedir.tar.gz"
        if isinstance(where, Path):
            if not where.is_file():
                raise TrainingJobFailed(f"ClientError: the source directory {uri} does not exist.")
            shutil.copy2(where, archive)
        else:
            _download_object(s3, where, archive, what="source directory")
        try:
            extract_tarball(archive, code_dir, _SOURCE_LIMITS)
        except ArtifactError as err:
            raise TrainingJobFailed(
                f"ClientError: the source tarball {uri} was refused: {err.message}"
            ) from None


def _download_object(s3: Any, where: S3Location, dest: Path, *, what: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.download_file(where.bucket, where.key, str(dest))
    except ClientError as err:
        raise TrainingJobFailed(
            f"ClientError: could not download the {what} {where}: {_client_error(err)}"
        ) from None
    except BotoCoreError as err:
        raise TrainingJobFailed(f"ClientError: could not reach S3 for the {what} ({err})") from None


def pack_folder(folder: Path, archive: Path) -> None:
    """A flat tar.gz of `folder`'s contents (SageMaker's model.tar.gz has the files at its top level)."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                continue  # a link could point anywhere on this machine
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)


def output_prefix(output_path: str, job: str) -> str:
    return f"{output_path.rstrip('/')}/{job}/output"


def upload_outputs(model_dir: Path, output_data_dir: Path, output_path: str, job: str, s3: Any) -> str:
    """Pack and upload model.tar.gz and output.tar.gz; return the model's URL (ModelArtifacts)."""
    prefix = output_prefix(output_path, job)
    with tempfile.TemporaryDirectory() as scratch:
        for folder, name in ((model_dir, "model.tar.gz"), (output_data_dir, "output.tar.gz")):
            archive = Path(scratch) / name
            pack_folder(folder, archive)
            _upload(archive, f"{prefix}/{name}", s3)
    return f"{prefix}/model.tar.gz"


def _upload(archive: Path, url: str, s3: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    where = _location(url)
    if isinstance(where, Path):
        where.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, where)
        return
    try:
        s3.upload_file(str(archive), where.bucket, where.key)
    except (ClientError, BotoCoreError, OSError) as err:
        reason = _client_error(err) if isinstance(err, ClientError) else str(err)
        raise TrainingJobFailed(f"ClientError: could not upload {url}: {reason}") from None
