"""Which local folders the control plane may read artifacts from (`ZEROSERVE_ALLOWED_PATHS`).

A `file://` or plain-path ModelDataUrl (or HF_MODEL_ID folder) names a path on the server's machine; anyone
who may call CreateModel could otherwise make the server read any folder its user can. Paths are compared
after resolving symlinks, so a link inside an allowed root cannot point out of it.

Default, when the setting is empty: the home directory of the user running the server, the system temporary
directory, and zeroserve's data and cache directories; enough for `zeroserve up`, `zeroserve deploy ./model`
and the test suite, while /etc, /proc, /root and other users' files stay out of reach.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from zeroserve.errors import ArtifactError

SETTING = "ZEROSERVE_ALLOWED_PATHS"


class AllowedRoots:
    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = tuple(dict.fromkeys(Path(root).expanduser().resolve() for root in roots))

    @classmethod
    def parse(cls, setting: str, defaults: Iterable[Path]) -> AllowedRoots:
        """`setting` is os.pathsep-separated roots (`/srv/models:/data`); empty means `defaults`."""
        given = [Path(part) for part in setting.split(os.pathsep) if part.strip()]
        return cls(given or defaults)

    def allows(self, path: Path) -> bool:
        try:
            resolved = path.expanduser().resolve()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a symlink loop
            return False
        return any(resolved.is_relative_to(root) for root in self.roots)

    def check(self, path: Path) -> None:
        if "\0" in str(path):
            raise ArtifactError("is not a valid path (it contains a NUL character)")
        if not self.allows(path):
            roots = os.pathsep.join(str(root) for root in self.roots)
            raise ArtifactError(
                f"is outside the folders this server may read ({roots}); add its folder to {SETTING} "
                "to allow it"
            )


def default_roots(data_dir: Path, cache_dir: Path) -> list[Path]:
    return [Path.home(), Path(tempfile.gettempdir()), data_dir, cache_dir]
