"""The artifact cache: turns a ModelDataUrl into an unpacked, validated model folder, shared by every model
whose artifact has the same bytes.

Layout under the cache root:

    models/<digest>/      unpacked model folders; complete once present, because they appear by rename
    staging/              folders being unpacked or copied (beside models/, so the rename is atomic)
    downloads/            archives being downloaded or copied, hashed as they stream
    locks/<digest>.lock   flock files: one thread or process unpacks a digest, the others wait and reuse it

A failed resolve leaves nothing behind in staging/ or downloads/; `sweep_stale` clears what a killed process
left there.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from zeroserve.artifacts.allowed_paths import AllowedRoots
from zeroserve.artifacts.fetch import S3Location, copy_hashing, download_s3, hash_file, parse_model_data_url
from zeroserve.artifacts.layout import find_model_root
from zeroserve.artifacts.localdir import copy_tree, hash_tree
from zeroserve.artifacts.s3client import s3_client
from zeroserve.artifacts.unpack import GiB, UnpackLimits, extract_tarball
from zeroserve.errors import ArtifactError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ResolvedArtifact:
    digest: str  # sha256 hex of the tarball's bytes, or of a plain folder's files (see localdir)
    model_dir: Path  # shared with other models of the same bytes: read it, never write into it
    source_url: str
    # True when this call unpacked the artifact, False when it found it cached (for logs and tests).
    fresh: bool = field(default=False, compare=False)


class ArtifactCache:
    def __init__(
        self,
        root: Path,
        *,
        s3_client_factory: Callable[[], Any] | None = None,
        max_unpacked_bytes: int = 10 * GiB,
        max_members: int = 20_000,
        allowed: AllowedRoots | None = None,
    ) -> None:
        self.root = root
        self.allowed = allowed  # None: any local path (library use); the server always passes its roots
        self.limits = UnpackLimits(max_bytes=max_unpacked_bytes, max_members=max_members)
        self._s3_client_factory = s3_client_factory or s3_client
        self._s3_client: Any = None
        self._s3_client_lock = threading.Lock()
        # Digests of local tarballs by (inode, size, mtime): a thousand endpoints of one model.tar.gz hash
        # it once, not a thousand times. A rewritten file has a new mtime and is hashed again.
        self._local_digests: dict[tuple[int, int, int, int], str] = {}
        self._memo_lock = threading.Lock()
        self._models = root / "models"
        self._staging = root / "staging"
        self._downloads = root / "downloads"
        self._locks = root / "locks"
        for folder in (self._models, self._staging, self._downloads, self._locks):
            folder.mkdir(parents=True, exist_ok=True)

    def resolve(self, model_data_url: str, *, label: str = "ModelDataUrl") -> ResolvedArtifact:
        """Fetch, check and unpack the artifact at `model_data_url`, or find it already cached.

        Blocking (downloads, hashing, unpacking): call it from a worker thread. Raises ArtifactError with a
        message fit for FailureReason, e.g. `ModelDataUrl s3://b/k: NoSuchKey`; `label` names the setting the
        URL came from (`HF_MODEL_ID` for a local model folder).
        """
        try:
            source = parse_model_data_url(model_data_url)
            if isinstance(source, S3Location):
                return self._resolve_s3(source, model_data_url)
            return self._resolve_local(source, model_data_url)
        except ArtifactError as err:
            raise ArtifactError(f"{label} {model_data_url}: {err.message}") from err
        except OSError as err:  # unreadable source, or our own disk full: still the endpoint's FailureReason
            where = f" ({err.filename})" if err.filename else ""
            raise ArtifactError(f"{label} {model_data_url}: {err.strerror or err}{where}") from err

    def check_source(self, model_data_url: str, *, label: str = "ModelDataUrl") -> None:
        """Refuse, before anything is read, a URL this server may not read (a local path outside the allowed
        roots, a malformed URL), with the message resolve would give."""
        try:
            source = parse_model_data_url(model_data_url)
            if isinstance(source, Path) and self.allowed is not None:
                self.allowed.check(source)
        except ArtifactError as err:
            raise ArtifactError(f"{label} {model_data_url}: {err.message}") from err

    def cached(self, digest: str) -> Path | None:
        """The model folder of an artifact resolved before (by a digest kept in the database), if cached."""
        folder = self._models / digest
        return folder if _DIGEST.match(digest) and folder.is_dir() else None

    def sweep_stale(self, older_than_s: float = 24 * 3600.0) -> int:
        """Remove downloads and staging folders left by a killed process; returns how many were removed.
        The age guard keeps it from touching the work of a resolve running in another process."""
        removed = 0
        cutoff = time.time() - older_than_s
        for folder in (self._staging, self._downloads):
            for entry in folder.iterdir():
                if entry.lstat().st_mtime < cutoff:
                    _remove(entry)
                    removed += 1
        return removed

    # --- per source ---------------------------------------------------------------------------

    def _resolve_s3(self, location: S3Location, url: str) -> ResolvedArtifact:
        # The digest is known only once the bytes are here, so concurrent resolves of one URL each download;
        # they still unpack once (see _install).
        with self._download() as (archive, sink):
            digest = download_s3(self._s3(), location, sink, self.limits.max_archive_bytes)
            sink.close()
            return self._install(digest, url, lambda staging: extract_tarball(archive, staging, self.limits))

    def _resolve_local(self, path: Path, url: str) -> ResolvedArtifact:
        if self.allowed is not None:
            self.allowed.check(path)
        if path.is_dir():
            return self._resolve_folder(path, url)
        if path.is_file():
            return self._resolve_local_tarball(path, url)
        if path.exists():
            raise ArtifactError("is neither a file nor a folder")
        raise ArtifactError("no such file or folder")

    def _resolve_local_tarball(self, path: Path, url: str) -> ResolvedArtifact:
        # Hash in place first so that a cache hit costs one read; on a miss, unpack from a copy hashed as it
        # is made, so that the cached folder is exactly the bytes its digest names even if the file changes.
        identity = _file_identity(path)
        with self._memo_lock:
            digest = self._local_digests.get(identity)
        if digest is None:
            digest = hash_file(path, self.limits.max_archive_bytes)
            with self._memo_lock:
                self._local_digests[identity] = digest

        def unpack(staging: Path) -> None:
            with self._download() as (archive, sink), path.open("rb") as source:
                copied = copy_hashing(source, sink, self.limits.max_archive_bytes)
                sink.close()
                _same_or_fail(digest, copied)
                extract_tarball(archive, staging, self.limits)

        return self._install(digest, url, unpack)

    def _resolve_folder(self, path: Path, url: str) -> ResolvedArtifact:
        # Copied rather than used in place, for the reason above and so that every model_dir is ours.
        digest = hash_tree(path, self.limits)

        def copy(staging: Path) -> None:
            _same_or_fail(digest, copy_tree(path, staging, self.limits))

        return self._install(digest, url, copy)

    # --- the cache ----------------------------------------------------------------------------

    def _install(self, digest: str, url: str, build: Callable[[Path], None]) -> ResolvedArtifact:
        """Return models/<digest>, first running `build` into an empty staging folder if it is not cached."""
        final = self._models / digest
        if final.is_dir():
            return ResolvedArtifact(digest, final, url)
        with self._locked(digest):
            if final.is_dir():  # another thread or process built it while we waited for the lock
                return ResolvedArtifact(digest, final, url)
            staging = Path(tempfile.mkdtemp(prefix=f"{digest[:16]}-", dir=self._staging))
            try:
                build(staging)
                os.rename(find_model_root(staging), final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return ResolvedArtifact(digest, final, url, fresh=True)

    @contextmanager
    def _locked(self, digest: str) -> Iterator[None]:
        # flock on a file opened per call excludes other threads of this process as well as other processes.
        # Lock files stay: deleting one while another process waits on it would let two holders in.
        with (self._locks / f"{digest}.lock").open("a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield

    @contextmanager
    def _download(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A new file under downloads/, removed on the way out whatever happens."""
        fd, name = tempfile.mkstemp(prefix="artifact-", suffix=".part", dir=self._downloads)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as sink:
                yield path, sink
        finally:
            path.unlink(missing_ok=True)

    def _s3(self) -> Any:
        with self._s3_client_lock:  # boto3 clients are thread-safe once made, but making one is not
            if self._s3_client is None:
                self._s3_client = self._s3_client_factory()
            return self._s3_client


def _same_or_fail(expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactError("changed while it was being read; try again once it is complete")


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def _file_identity(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
