"""The default sentiment model: trained once per machine with the default budget, then cached.

`make run`, CI and the tests that need a real model all call `ensure_default_model()`. A file lock makes
concurrent callers (parallel test workers, two terminals) wait for one training run instead of each
starting their own. This module imports no torch: the training stack loads only when a run is needed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from zeroserve.config import default_cache_dir
from zeroserve.sentiment_trainer.options import TrainOptions
from zeroserve.sentiment_trainer.package import metrics_path_for

ARTIFACT_NAME = "model.tar.gz"


def default_model_dir() -> Path:
    return default_cache_dir() / "default-model"


def cached_default_model(cache_dir: Path | None = None) -> Path | None:
    """The cached artifact if a complete one exists (metrics.json is written last), else None."""
    artifact = (cache_dir or default_model_dir()) / ARTIFACT_NAME
    return artifact if artifact.is_file() and metrics_path_for(artifact).is_file() else None


def ensure_default_model(
    cache_dir: Path | None = None, *, progress: bool = True, options: TrainOptions | None = None
) -> Path:
    """Path of the cached default `model.tar.gz`, training it first if it is missing.

    `options` overrides the default budget for that first training (its `output` is ignored: the artifact
    always lands in the cache). An existing cached model is returned as is, whatever `options` say; delete
    the cache folder to retrain."""
    folder = (cache_dir or default_model_dir()).expanduser()
    found = cached_default_model(folder)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        found = cached_default_model(folder)  # another process may have trained it while we waited
        if found is not None:
            return found
        from zeroserve.sentiment_trainer.finetune import train  # deferred: pulls in torch and transformers

        chosen = (options or TrainOptions()).with_overrides(output=folder / ARTIFACT_NAME)
        return train(chosen, progress=progress).artifact
