"""Safe extraction of untrusted model tarballs, within size and member-count limits.

Artifacts come from whoever may call CreateModel, so a tarball is hostile until proven otherwise: members must
stay inside the destination folder, only files, folders and hard links to earlier files are extracted, and the
unpacked size and member count are capped. Every refusal is an `ArtifactError` whose message names the member
and the rule, because it becomes the endpoint's FailureReason.
"""

from __future__ import annotations

import gzip
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zeroserve.errors import ArtifactError

MiB = 1024 * 1024
GiB = 1024 * MiB

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"

# Errors a damaged or truncated archive raises while it is read (decompressors raise their own types).
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int = 10 * GiB
    max_members: int = 20_000

    @property
    def max_archive_bytes(self) -> int:
        """The largest archive that could still unpack within the limits, so that a download can be cut short
        instead of filling the disk: the data, tar's per-member overhead (header, padding, room for a pax
        header) and gzip's worst-case growth on incompressible data (well under 1%)."""
        return self.max_bytes + self.max_bytes // 100 + self.max_members * 4096 + MiB


def extract_tarball(archive: Path, dest: Path, limits: UnpackLimits) -> None:
    """Extract `archive` (gzip, plain, bz2 or xz tar) into the existing empty folder `dest`."""
    with _open(archive) as tar:
        # errorlevel 2: an entry tarfile cannot extract fails the artifact, instead of a log line and a gap.
        tar.errorlevel = 2
        try:
            # Members stream through `_checked` one by one, so nothing is written past the first bad member
            # and the archive is read once, front to back. tarfile's "data" filter re-checks paths and links
            # against the real filesystem and drops modes and owners we do not want; our own checks run
            # first so that the user gets our messages.
            tar.extractall(dest, members=_checked(tar, limits), filter="data")
        except ArtifactError:
            raise
        except tarfile.FilterError as err:
            raise ArtifactError(f"unsafe member refused ({err})") from err
        except _CORRUPT as err:
            raise ArtifactError(f"archive is corrupt or truncated ({err})") from err
        except OSError as err:
            raise ArtifactError(f"could not unpack archive ({err})") from err


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except _CORRUPT:
        raise ArtifactError(_not_a_tarball(archive)) from None


def _not_a_tarball(archive: Path) -> str:
    with archive.open("rb") as f:
        head = f.read(4)
    if not head:
        return "archive is empty (0 bytes)"
    if head.startswith(_GZIP_MAGIC):
        return "gzip file does not hold a tar archive, or is truncated"
    if head == _ZIP_MAGIC:
        return "not a gzip tarball but a zip file (make a tarball with `tar czf model.tar.gz -C model_dir .`)"
    return "not a gzip tarball (make it with `tar czf model.tar.gz -C model_dir .`)"


def _checked(tar: tarfile.TarFile, limits: UnpackLimits) -> Iterator[tarfile.TarInfo]:
    """Yield the members of `tar` in order, raising ArtifactError at the first one that breaks a rule."""
    total_bytes = 0
    files: set[str] = set()  # normalized names of regular files seen so far: the only valid hard-link targets
    for members, member in enumerate(tar, start=1):
        if members > limits.max_members:
            raise ArtifactError(f"archive has more than {limits.max_members} members (the limit)")
        name = _inside_name(member.name)
        if member.isreg():
            total_bytes += member.size
            if total_bytes > limits.max_bytes:
                raise ArtifactError(f"archive unpacks to more than {limits.max_bytes} bytes (the limit)")
            files.add(name)
        elif member.islnk():
            # A hard link to a file this archive already wrote inside the folder cannot reach anything else
            # (there are no symlinks to go through), and `tar` writes these for duplicate files.
            if posixpath.normpath(member.linkname) not in files:
                raise ArtifactError(
                    f"member {member.name!r} is a hard link to {member.linkname!r}, "
                    "which is not a file earlier in the archive"
                )
        elif member.issym():
            # Refused outright: deciding where a symlink lands needs every other link resolved first, and
            # Hugging Face models never need one.
            raise ArtifactError(
                f"member {member.name!r} is a symlink to {member.linkname!r}; a model may not hold links"
            )
        elif not member.isdir():
            raise ArtifactError(
                f"member {member.name!r} is a {_kind(member)}; only files and folders are allowed in a model"
            )
        yield member


def _inside_name(name: str) -> str:
    """`name` normalized, if it stays inside the destination folder."""
    if name.startswith("/"):
        raise ArtifactError(f"member {name!r} has an absolute path")
    normalized = posixpath.normpath(name)
    if normalized == ".." or normalized.startswith("../"):
        raise ArtifactError(f"member {name!r} would land outside the model folder")
    return normalized


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return "character device"
    if member.isblk():
        return "block device"
    if member.isfifo():
        return "fifo"
    return f"entry of unsupported tar type {member.type!r}"
