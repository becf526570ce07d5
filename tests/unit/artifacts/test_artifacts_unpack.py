"""Hostile and malformed tarballs: each is refused with a message that names what was wrong, and nothing is
written outside the cache or left behind in it."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Literal

import pytest

from zeroserve.artifacts.cache import ArtifactCache
from zeroserve.errors import ArtifactError

CONFIG = b'{"architectures": ["BertForSequenceClassification"]}'

Entry = tuple[str, bytes] | tarfile.TarInfo


def write_tarball(path: Path, *entries: Entry, mode: Literal["w:gz", "w"] = "w:gz") -> Path:
    """A tarball of (name, bytes) files and hand-made TarInfo entries (links, devices, folders), in order."""
    with tarfile.open(path, mode) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache", max_unpacked_bytes=10_000, max_members=20)


def refusal(cache: ArtifactCache, archive: Path) -> str:
    with pytest.raises(ArtifactError) as caught:
        cache.resolve(str(archive))
    return caught.value.message


def test_member_climbing_out_with_dotdot_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), ("../x", b"pwned"))
    expected = f"ModelDataUrl {archive}: member '../x' would land outside the model folder"
    assert refusal(cache, archive) == expected
    assert not list(tmp_path.rglob("x"))


def test_member_climbing_out_through_a_subfolder_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), ("a/../../../x", b"pwned"))
    assert "member 'a/../../../x' would land outside the model folder" in refusal(cache, archive)


def test_member_with_absolute_path_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    target = tmp_path / "evil"
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), (str(target), b"pwned"))
    assert f"member '{target}' has an absolute path" in refusal(cache, archive)
    assert not target.exists()


def test_symlink_pointing_outside_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(
        tmp_path / "m.tar.gz",
        ("config.json", CONFIG),
        special("escape", tarfile.SYMTYPE, "../../.."),
        ("escape/x", b"pwned"),
    )
    assert "member 'escape' is a symlink to '../../..'; a model may not hold links" in refusal(cache, archive)


def test_symlink_pointing_inside_is_refused_too(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(
        tmp_path / "m.tar.gz", ("config.json", CONFIG), special("alias.json", tarfile.SYMTYPE, "config.json")
    )
    assert "member 'alias.json' is a symlink" in refusal(cache, archive)


def test_hard_link_to_a_file_outside_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(
        tmp_path / "m.tar.gz", ("config.json", CONFIG), special("passwd", tarfile.LNKTYPE, "/etc/passwd")
    )
    expected = "member 'passwd' is a hard link to '/etc/passwd', which is not a file earlier in the archive"
    assert expected in refusal(cache, archive)


def test_hard_link_to_an_earlier_file_is_extracted(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(
        tmp_path / "m.tar.gz", ("config.json", CONFIG), special("copy.json", tarfile.LNKTYPE, "config.json")
    )
    model_dir = cache.resolve(str(archive)).model_dir
    assert (model_dir / "copy.json").read_bytes() == CONFIG


def test_character_device_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    device = special("null", tarfile.CHRTYPE)
    device.devmajor, device.devminor = 1, 3
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), device)
    expected = "member 'null' is a character device; only files and folders are allowed"
    assert expected in refusal(cache, archive)


def test_fifo_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), special("pipe", tarfile.FIFOTYPE))
    assert "member 'pipe' is a fifo" in refusal(cache, archive)


def test_archive_unpacking_past_the_size_cap_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    # 20 kB of zeros compress to almost nothing: the cap is on what unpacks, not on the download.
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), ("weights.bin", bytes(20_000)))
    assert archive.stat().st_size < 1_000
    assert "archive unpacks to more than 10000 bytes (the limit)" in refusal(cache, archive)


def test_archive_with_too_many_members_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    files = [(f"vocab/{i}.txt", b"x") for i in range(25)]
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), *files)
    assert "archive has more than 20 members (the limit)" in refusal(cache, archive)


def test_random_bytes_are_not_a_tarball(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"this is not an archive at all" * 40)
    assert refusal(cache, archive) == f"ModelDataUrl {archive}: not a gzip tarball " + (
        "(make it with `tar czf model.tar.gz -C model_dir .`)"
    )


def test_zip_file_is_named_as_such(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", CONFIG)
    assert "not a gzip tarball but a zip file" in refusal(cache, archive)


def test_gzip_of_something_else_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip.compress(b"plain text, no tar headers" * 40))
    assert "gzip file does not hold a tar archive, or is truncated" in refusal(cache, archive)


def test_empty_file_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"")
    assert "archive is empty (0 bytes)" in refusal(cache, archive)


def test_truncated_tarball_is_refused(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    whole = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), ("w.bin", bytes(range(256)) * 400))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:300])
    assert "archive is corrupt or truncated" in refusal(cache, cut)


def test_plain_uncompressed_tar_is_accepted(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "model.tar", ("config.json", CONFIG), mode="w")
    assert (cache.resolve(str(archive)).model_dir / "config.json").read_bytes() == CONFIG


def test_artifact_without_config_json_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("weights.bin", b"w"), ("vocab.txt", b"v"))
    assert refusal(cache, archive) == (
        f"ModelDataUrl {archive}: artifact has no config.json at its top level (and no code/inference.py); "
        "it holds vocab.txt, weights.bin"
    )


def test_custom_code_without_config_json_is_accepted(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("code/inference.py", b"def model_fn(d): return d\n"))
    assert (cache.resolve(str(archive)).model_dir / "code" / "inference.py").is_file()


def test_single_wrapping_folder_is_descended_into(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(
        tmp_path / "m.tar.gz",
        ("my-model/config.json", CONFIG),
        ("my-model/vocab.txt", b"v"),
        ("._my-model", b"macOS metadata"),
    )
    model_dir = cache.resolve(str(archive)).model_dir
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "vocab.txt"]


def test_single_wrapping_folder_without_config_json_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("my-model/weights.bin", b"w"))
    message = refusal(cache, archive)
    assert "artifact has no config.json at its top level, nor inside its only folder 'my-model'" in message


def test_empty_tarball_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    assert "artifact is empty" in refusal(cache, write_tarball(tmp_path / "m.tar.gz"))


def test_refused_artifact_leaves_nothing_in_the_cache(cache: ArtifactCache, tmp_path: Path) -> None:
    archive = write_tarball(tmp_path / "m.tar.gz", ("config.json", CONFIG), ("../x", b"pwned"))
    refusal(cache, archive)
    for folder in ("models", "staging", "downloads"):
        assert list((cache.root / folder).iterdir()) == [], folder
