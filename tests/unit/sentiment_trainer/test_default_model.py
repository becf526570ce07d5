"""The real default model (MiniLM fine-tuned with the default budget, trained once into the cache)."""

from __future__ import annotations

import json
import tarfile

import pytest

from zeroserve.sentiment_trainer.defaults import ensure_default_model
from zeroserve.sentiment_trainer.package import REQUIRED_FILES, metrics_path_for

pytestmark = pytest.mark.slow


def test_default_model_reaches_its_accuracy_floor_on_heldout_imdb() -> None:
    metrics = json.loads(metrics_path_for(ensure_default_model(progress=False)).read_text())
    assert metrics["heldout_imdb"]["count"] >= 2500
    assert metrics["heldout_imdb"]["accuracy"] >= 0.84


def test_default_model_archive_is_flat_and_names_its_labels() -> None:
    with tarfile.open(ensure_default_model(progress=False)) as tar:
        assert set(REQUIRED_FILES) <= set(tar.getnames())
        config_file = tar.extractfile("config.json")
        assert config_file is not None
        config = json.load(config_file)
    assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
