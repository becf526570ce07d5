"""What every section gets: run mode (quick or full), where plots go, and the models, built lazily once."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from bench import models


@dataclass
class Context:
    quick: bool
    plots_dir: Path
    allow_training: bool = True

    def pick(self, full: int, quick: int) -> int:
        """A sample count or repetition: `quick` in a smoke run, `full` otherwise."""
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    @functools.cached_property
    def sentiment(self) -> models.ModelSource:
        return models.sentiment(allow_training=self.allow_training and not self.quick)

    @functools.cached_property
    def sentiment_bundle(self) -> Path:
        return models.bundle(self.sentiment)

    def plot(self, name: str) -> Path:
        return self.plots_dir / f"{name}.png"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
