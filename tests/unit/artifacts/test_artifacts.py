"""The artifact cache with local sources: paths, file:// URLs and plain folders; sharing one unpacked folder
between models of the same bytes; concurrent resolves from threads and processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from zeroserve.artifacts.cache import ArtifactCache, ResolvedArtifact
from zeroserve.errors import ArtifactError

CONFIG = {"architectures": ["BertForSequenceClassification"], "id2label": {"0": "NEG", "1": "POS"}}


def make_model_dir(folder: Path) -> Path:
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "model.onnx").write_bytes(bytes(range(256)) * 64)
    (folder / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    return folder


def make_tarball(model_dir: Path, archive: Path) -> Path:
    """The SageMaker layout: the folder's contents at the top level of a gzip tarball."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "model")


@pytest.fixture
def archive(model_dir: Path, tmp_path: Path) -> Path:
    return make_tarball(model_dir, tmp_path / "model.tar.gz")


@pytest.fixture
def big_archive(tmp_path: Path) -> Path:
    """Slow enough to unpack (a few ms) that concurrent resolves really overlap."""
    model_dir = make_model_dir(tmp_path / "big-model")
    (model_dir / "model.onnx").write_bytes(os.urandom(2_000_000))
    return make_tarball(model_dir, tmp_path / "big-model.tar.gz")


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def same_files(a: Path, b: Path) -> bool:
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    return files(a) == files(b)


def test_tarball_path_resolves_to_its_unpacked_folder(
    cache: ArtifactCache, archive: Path, model_dir: Path
) -> None:
    resolved = cache.resolve(str(archive))
    assert resolved.digest == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert resolved.model_dir == cache.root / "models" / resolved.digest
    assert resolved.source_url == str(archive)
    assert resolved.fresh
    assert same_files(resolved.model_dir, model_dir)


def test_file_url_resolves_like_the_path(cache: ArtifactCache, archive: Path) -> None:
    by_url = cache.resolve(archive.as_uri())
    assert by_url.source_url == archive.as_uri()
    assert by_url == ResolvedArtifact(cache.resolve(str(archive)).digest, by_url.model_dir, archive.as_uri())


def test_file_url_with_escaped_characters_is_decoded(
    cache: ArtifactCache, model_dir: Path, tmp_path: Path
) -> None:
    archive = make_tarball(model_dir, tmp_path / "my model #1.tar.gz")
    assert (cache.resolve(archive.as_uri()).model_dir / "config.json").is_file()


def test_plain_folder_resolves_to_a_cached_copy(cache: ArtifactCache, model_dir: Path) -> None:
    resolved = cache.resolve(str(model_dir), label="HF_MODEL_ID")
    assert resolved.model_dir.parent == cache.root / "models"
    assert same_files(resolved.model_dir, model_dir)


def test_folder_digest_depends_on_contents_not_location(cache: ArtifactCache, tmp_path: Path) -> None:
    first = cache.resolve(str(make_model_dir(tmp_path / "a")))
    second = cache.resolve(str(make_model_dir(tmp_path / "b")))
    assert second.digest == first.digest
    assert not second.fresh
    (tmp_path / "b" / "tokenizer" / "vocab.txt").write_text("changed\n")
    assert cache.resolve(str(tmp_path / "b")).digest != first.digest


def test_folder_symlinks_to_files_are_followed(cache: ArtifactCache, tmp_path: Path) -> None:
    # A Hugging Face hub snapshot: every file is a symlink into the blob store next to it.
    blobs = make_model_dir(tmp_path / "blobs")
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "config.json").symlink_to(blobs / "config.json")
    model_dir = cache.resolve(str(snapshot)).model_dir
    config = model_dir / "config.json"
    assert not config.is_symlink()
    assert json.loads(config.read_text()) == CONFIG


def test_folder_holding_a_fifo_is_refused(cache: ArtifactCache, model_dir: Path) -> None:
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(ArtifactError, match="'pipe' is not a regular file"):
        cache.resolve(str(model_dir))


def test_folder_past_the_size_cap_is_refused(model_dir: Path, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", max_unpacked_bytes=1_000)
    with pytest.raises(ArtifactError, match=r"folder holds more than 1000 bytes \(the limit\)"):
        cache.resolve(str(model_dir))


def test_tarball_too_big_to_unpack_within_the_cap_is_refused_before_unpacking(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", max_unpacked_bytes=100, max_members=1)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(bytes(2 * 1024 * 1024))
    with pytest.raises(ArtifactError, match=r"archive is larger than \d+ bytes, more than any artifact"):
        cache.resolve(str(archive))


def test_same_bytes_under_two_paths_share_one_unpacked_folder(cache: ArtifactCache, archive: Path) -> None:
    copy = archive.parent / "elsewhere" / "copy.tgz"
    copy.parent.mkdir()
    copy.write_bytes(archive.read_bytes())
    first = cache.resolve(str(archive))
    second = cache.resolve(copy.as_uri())
    assert (first.fresh, second.fresh) == (True, False)
    assert second.model_dir == first.model_dir
    assert len(list((cache.root / "models").iterdir())) == 1


def test_cached_finds_a_resolved_digest_only(cache: ArtifactCache, archive: Path) -> None:
    resolved = cache.resolve(str(archive))
    assert cache.cached(resolved.digest) == resolved.model_dir
    assert cache.cached("0" * 64) is None
    assert cache.cached("../models") is None


def test_missing_file_names_the_url(cache: ArtifactCache, tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(ArtifactError) as caught:
        cache.resolve(missing.as_uri())
    assert caught.value.message == f"ModelDataUrl {missing.as_uri()}: no such file or folder"


def test_label_names_the_setting_the_url_came_from(cache: ArtifactCache, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"^HF_MODEL_ID /nonexistent/model: no such file or folder$"):
        cache.resolve("/nonexistent/model", label="HF_MODEL_ID")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://example.com/model.tar.gz",
            "unsupported URL scheme 'https'; use s3://, file:// or a local path",
        ),
        ("s3://bucket-only", "an S3 URL needs a bucket and a key: s3://bucket/path/model.tar.gz"),
        ("file://host/x.tar.gz", "file URL names host 'host'; only local files can be read"),
        ("", "is empty"),
    ],
)
def test_malformed_urls_are_refused(cache: ArtifactCache, url: str, problem: str) -> None:
    with pytest.raises(ArtifactError) as caught:
        cache.resolve(url)
    assert caught.value.message == f"ModelDataUrl {url}: {problem}"


def test_sweep_stale_removes_only_old_leftovers(cache: ArtifactCache) -> None:
    old_file = cache.root / "downloads" / "artifact-old.part"
    old_folder = cache.root / "staging" / "abc-old"
    new_file = cache.root / "downloads" / "artifact-new.part"
    for path in (old_file, new_file):
        path.write_bytes(b"partial")
    (old_folder / "sub").mkdir(parents=True)
    for path in (old_file, old_folder):
        os.utime(path, (0, 0))
    assert cache.sweep_stale(older_than_s=3600) == 2
    assert [p.name for p in (cache.root / "downloads").iterdir()] == ["artifact-new.part"]
    assert list((cache.root / "staging").iterdir()) == []


def test_concurrent_resolves_from_threads_unpack_once(cache: ArtifactCache, big_archive: Path) -> None:
    start = threading.Barrier(8)
    results: list[ResolvedArtifact] = []

    def resolve() -> None:
        start.wait()
        results.append(cache.resolve(str(big_archive)))

    threads = [threading.Thread(target=resolve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert sum(r.fresh for r in results) == 1
    assert len({r.model_dir for r in results}) == 1
    assert list((cache.root / "staging").iterdir()) == []


def test_concurrent_resolves_from_processes_unpack_once(big_archive: Path, tmp_path: Path) -> None:
    # Each process says it is ready, then waits for the go file, so all reach the cache at about one moment.
    go = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from zeroserve.artifacts.cache import ArtifactCache\n"
        "cache = ArtifactCache(Path(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
        "r = cache.resolve(sys.argv[2])\n"
        "print(r.fresh, r.model_dir)\n"
    )
    args = [sys.executable, "-c", script, str(tmp_path / "cache"), str(big_archive), str(go)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    go.touch()
    outputs = [p.communicate(timeout=60)[0].split() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0]
    assert sorted(fresh for fresh, _ in outputs) == ["False", "False", "True"]
    assert len({folder for _, folder in outputs}) == 1
