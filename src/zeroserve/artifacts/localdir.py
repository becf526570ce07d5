"""Plain model directories (an `HF_MODEL_ID` folder, or a ModelDataUrl naming a folder): hash their files and
copy them into the cache, within the same limits as a tarball.

The digest covers each file's relative path and contents, in a fixed order, so the same tree hashes the same
wherever it lives. Symlinks to files are followed (a Hugging Face hub snapshot is a folder of symlinks into
its blob store); symlinks to folders, devices and fifos are refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from zeroserve.artifacts.fetch import CHUNK_BYTES
from zeroserve.artifacts.unpack import UnpackLimits
from zeroserve.errors import ArtifactError

# Keeps a folder's digest apart from any tarball's (whose digest is of its raw bytes).
_DIGEST_TAG = b"zeroserve-dir-v1\0"


def hash_tree(root: Path, limits: UnpackLimits) -> str:
    """sha256 hex digest of the files under `root`."""
    return _digest(root, limits, dest=None)


def copy_tree(root: Path, dest: Path, limits: UnpackLimits) -> str:
    """Copy the files under `root` into the existing folder `dest`; return the digest of what was copied."""
    return _digest(root, limits, dest=dest)


def _digest(root: Path, limits: UnpackLimits, dest: Path | None) -> str:
    tree = hashlib.sha256(_DIGEST_TAG)
    copied_bytes = 0
    for relative, path in _files(root, limits):
        file_digest = hashlib.sha256()
        target = None
        if dest is not None:
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            target = (dest / relative).open("wb")
        try:
            with path.open("rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    # Counted as read, not as stat() said: a file may grow while we copy it.
                    copied_bytes += len(chunk)
                    if copied_bytes > limits.max_bytes:
                        raise ArtifactError(_too_big(limits))
                    file_digest.update(chunk)
                    if target is not None:
                        target.write(chunk)
        finally:
            if target is not None:
                target.close()
        tree.update(relative.encode() + b"\0" + file_digest.digest())
    return tree.hexdigest()


def _files(root: Path, limits: UnpackLimits) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every file under `root`, in a fixed order, checked against the rules."""
    members = 0
    total_bytes = 0

    def fail(err: OSError) -> None:
        raise ArtifactError(f"could not read folder {err.filename!r} ({err.strerror})")

    for folder, subfolders, names in os.walk(root, onerror=fail):
        subfolders.sort()  # os.walk descends in this list's order
        base = Path(folder)
        for name in subfolders:
            if (base / name).is_symlink():
                raise ArtifactError(
                    f"{_rel(root, base / name)!r} is a symlink to a folder; a model may not hold one"
                )
        members += len(subfolders)
        if members > limits.max_members:
            raise ArtifactError(_too_many(limits))
        for name in sorted(names):
            path = base / name
            relative = _rel(root, path)
            try:
                info = path.stat()
            except FileNotFoundError:
                raise ArtifactError(f"{relative!r} is a broken symlink") from None
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(f"{relative!r} is not a regular file; only files and folders are allowed")
            members += 1
            total_bytes += info.st_size
            if members > limits.max_members:
                raise ArtifactError(_too_many(limits))
            if total_bytes > limits.max_bytes:
                raise ArtifactError(_too_big(limits))
            yield relative, path


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _too_many(limits: UnpackLimits) -> str:
    return f"folder has more than {limits.max_members} entries (the limit)"


def _too_big(limits: UnpackLimits) -> str:
    return f"folder holds more than {limits.max_bytes} bytes (the limit)"
