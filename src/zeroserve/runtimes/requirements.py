"""`code/requirements.txt`: accepted only when everything it asks for is already installed.

SageMaker pip-installs these at container start; zeroserve runs offline and forks workers from a shared
interpreter, so it checks instead of installing and fails the deploy with a reason the user can act on.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from zeroserve.errors import ArtifactError


def missing_requirements(path: Path) -> list[str]:
    """Requirement lines of `path` that the current environment does not satisfy."""
    missing: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            # pip options (-r, --index-url, -e) cannot be honoured offline.
            missing.append(line)
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{line} (installed: {installed})")
    return missing


def check_requirements(code_dir: Path) -> None:
    """Raise ArtifactError naming what is missing when `code_dir/requirements.txt` is not satisfied."""
    path = code_dir / "requirements.txt"
    if not path.is_file():
        return
    missing = missing_requirements(path)
    if missing:
        raise ArtifactError(f"code/requirements.txt is not supported offline: missing {', '.join(missing)}")
