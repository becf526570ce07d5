"""The default model is trained once per cache folder, even when several processes ask at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from processes import wait_until
from zeroserve.sentiment_trainer import defaults
from zeroserve.sentiment_trainer.options import TrainOptions


def blocked_on(lock: Path) -> int:
    """How many callers wait for the flock on `lock`: the kernel lists each waiter in /proc/locks, "->"."""
    inode = lock.stat().st_ino
    return sum(
        1
        for line in Path("/proc/locks").read_text().splitlines()
        if "->" in line and any(field.endswith(f":{inode}") for field in line.split())
    )


class _FakeTrainer:
    """Stands in for `finetune.train`: writes the two files a real run writes and counts runs. With
    `waiters`, it first waits (holding the cache's lock) until that many other callers wait for the lock."""

    def __init__(self) -> None:
        self.runs: list[TrainOptions] = []
        self.waiters = 0
        self.saw_waiters = False

    def __call__(self, options: TrainOptions, progress: bool = True) -> object:
        self.runs.append(options)
        if self.waiters:
            lock = options.output.with_name(".lock")
            self.saw_waiters = wait_until(lambda: blocked_on(lock) == self.waiters, 10)
        options.output.write_bytes(b"tarball")
        options.output.with_name("metrics.json").write_text("{}")

        class _Result:
            artifact = options.output

        return _Result()


@pytest.fixture
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> _FakeTrainer:
    import zeroserve.sentiment_trainer.finetune

    trainer = _FakeTrainer()
    monkeypatch.setattr(zeroserve.sentiment_trainer.finetune, "train", trainer)
    return trainer


def test_a_cached_model_is_returned_without_training(tmp_path: Path, fake_trainer: _FakeTrainer) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"x")
    (tmp_path / "metrics.json").write_text("{}")
    assert defaults.ensure_default_model(tmp_path, progress=False) == tmp_path / "model.tar.gz"
    assert fake_trainer.runs == []


def test_a_missing_model_is_trained_into_the_cache_with_the_default_budget(
    tmp_path: Path, fake_trainer: _FakeTrainer
) -> None:
    path = defaults.ensure_default_model(tmp_path / "cache", progress=False)
    assert path == tmp_path / "cache" / "model.tar.gz"
    assert fake_trainer.runs == [TrainOptions(output=path)]


def test_a_tarball_without_metrics_counts_as_an_interrupted_run(
    tmp_path: Path, fake_trainer: _FakeTrainer
) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"x")
    defaults.ensure_default_model(tmp_path, progress=False)
    assert len(fake_trainer.runs) == 1


def test_concurrent_callers_train_once(tmp_path: Path, fake_trainer: _FakeTrainer) -> None:
    fake_trainer.waiters = 2  # the other two callers arrive while the first one trains
    results: list[Path] = []
    callers = [
        threading.Thread(
            target=lambda: results.append(defaults.ensure_default_model(tmp_path, progress=False))
        )
        for _ in range(3)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert fake_trainer.saw_waiters, "the other callers never waited for the lock"
    assert len(fake_trainer.runs) == 1
    assert results == [tmp_path / "model.tar.gz"] * 3


def test_overridden_options_apply_but_the_artifact_still_lands_in_the_cache(
    tmp_path: Path, fake_trainer: _FakeTrainer
) -> None:
    defaults.ensure_default_model(tmp_path, progress=False, options=TrainOptions(max_examples=10))
    assert fake_trainer.runs[0].max_examples == 10
    assert fake_trainer.runs[0].output == tmp_path / "model.tar.gz"


def test_the_default_cache_lives_under_the_zeroserve_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROSERVE_CACHE_DIR", str(tmp_path))
    assert defaults.default_model_dir() == tmp_path / "default-model"


def test_checking_the_cache_imports_no_torch() -> None:
    """The server and CLI call ensure_default_model; the server process must never import torch."""
    code = (
        "import sys, zeroserve.sentiment_trainer.defaults as d; d.cached_default_model(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
