"""Local artifacts are read only from the allowed roots, symlinks resolved; the default covers home, temp
and zeroserve's own folders."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from zeroserve.artifacts.allowed_paths import AllowedRoots, default_roots
from zeroserve.artifacts.cache import ArtifactCache
from zeroserve.errors import ArtifactError


def test_paths_inside_a_root_are_allowed_and_others_refused(tmp_path: Path) -> None:
    roots = AllowedRoots([tmp_path / "models"])
    assert roots.allows(tmp_path / "models" / "a" / "model.tar.gz")
    assert not roots.allows(tmp_path / "elsewhere")
    assert not roots.allows(tmp_path / "models" / ".." / "elsewhere")
    assert not roots.allows(Path("/etc/passwd"))


def test_a_symlink_out_of_a_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "models" / "link").symlink_to(tmp_path / "secret")
    assert not AllowedRoots([tmp_path / "models"]).allows(tmp_path / "models" / "link")


def test_the_setting_replaces_the_defaults(tmp_path: Path) -> None:
    defaults = default_roots(tmp_path / "data", tmp_path / "cache")
    assert AllowedRoots.parse("", defaults).roots == AllowedRoots(defaults).roots
    assert Path(tempfile.gettempdir()).resolve() in AllowedRoots.parse("", defaults).roots
    assert Path.home().resolve() in AllowedRoots.parse("", defaults).roots
    assert AllowedRoots.parse(f"{tmp_path}/a:{tmp_path}/b", defaults).roots == (
        tmp_path / "a",
        tmp_path / "b",
    )


def test_the_cache_refuses_a_folder_outside_the_roots_before_reading_it(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", allowed=AllowedRoots([tmp_path / "models"]))
    with pytest.raises(ArtifactError) as caught:
        cache.resolve("file:///etc")
    assert caught.value.message.startswith(
        "ModelDataUrl file:///etc: is outside the folders this server may read"
    )
    assert "ZEROSERVE_ALLOWED_PATHS" in caught.value.message
    with pytest.raises(ArtifactError, match="HF_MODEL_ID /proc/self: is outside"):
        cache.check_source("/proc/self", label="HF_MODEL_ID")
    cache.check_source("s3://bucket/model.tar.gz")  # not a local path: not this rule's business


def test_paths_no_file_system_can_hold_are_refused_not_crashed_on(tmp_path: Path) -> None:
    roots = AllowedRoots([tmp_path])
    assert not roots.allows(tmp_path / "a\0b")
    roots.check(tmp_path / ("x" * 5000))  # too long for the file system: its read fails later, with a reason
    with pytest.raises(ArtifactError, match="NUL"):
        roots.check(tmp_path / "a\0b")
