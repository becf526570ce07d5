"""A real fine-tuning run produces a SageMaker artifact that transformers loads back.

The run trains a tiny random BERT with MiniLM's vocabulary (tests/models.py) on 32 real reviews: the same
code path as MiniLM (data, batching, optimizer, evaluation, packaging) in seconds instead of a minute. The
real MiniLM artifact is checked by test_default_model.py (marked slow).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from models import make_tiny_bert
from zeroserve.sentiment_trainer.finetune import TrainResult, train
from zeroserve.sentiment_trainer.options import TrainOptions
from zeroserve.sentiment_trainer.package import REQUIRED_FILES

TINY = TrainOptions(max_examples=32, max_length=32, eval_imdb_limit=16, eval_rt_limit=16, seed=3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    base = make_tiny_bert(tmp_path_factory.mktemp("base") / "tiny-bert", id2label={0: "NEG", 1: "POS"})
    output = tmp_path_factory.mktemp("train") / "out" / "model.tar.gz"
    return train(TINY.with_overrides(output=output, base_model=base), progress=False)


@pytest.fixture(scope="module")
def unpacked(tiny_run: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tiny_run.artifact) as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_archive_holds_the_save_pretrained_files_at_top_level(tiny_run: TrainResult) -> None:
    with tarfile.open(tiny_run.artifact) as tar:
        members = tar.getmembers()
    names = {member.name for member in members}
    assert set(REQUIRED_FILES) <= names
    assert all(member.isfile() and "/" not in member.name for member in members)


def test_artifact_loads_back_with_sagemaker_label_names(unpacked: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(unpacked)
    tokenizer = AutoTokenizer.from_pretrained(unpacked)
    assert model.config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    with torch.inference_mode():
        logits = model(**tokenizer(["a fine film", "dull"], padding=True, return_tensors="pt")).logits
    assert tuple(logits.shape) == (2, 2)


def test_config_json_spells_out_the_labels_for_runtimes_without_transformers(unpacked: Path) -> None:
    config = json.loads((unpacked / "config.json").read_text())
    assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    assert config["label2id"] == {"LABEL_0": 0, "LABEL_1": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]


def test_packaged_tokenizer_truncates_at_the_trained_length_and_pads_per_batch(unpacked: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(unpacked / "tokenizer.json"))
    short, long = tokenizer.encode_batch(["good", "word " * 200])
    assert len(long.ids) == len(short.ids) == TINY.max_length
    assert len(tokenizer.encode("good").ids) == 3  # [CLS] good [SEP]: no padding to a fixed width


def test_metrics_record_accuracies_counts_options_and_timings(tiny_run: TrainResult) -> None:
    metrics = json.loads(tiny_run.metrics_path.read_text())
    assert tiny_run.metrics_path == tiny_run.artifact.with_name("metrics.json")
    assert metrics["heldout_imdb"]["count"] == 16
    assert metrics["rotten_tomatoes"]["count"] == 16
    assert 0.0 <= metrics["heldout_imdb"]["accuracy"] <= 1.0
    assert metrics["train"]["examples"] == 32
    assert metrics["options"]["max_length"] == 32
    assert metrics["seed"] == 3
    assert metrics["labels"] == {"0": "LABEL_0", "1": "LABEL_1"}
    assert {"load", "train", "eval", "package", "total"} <= set(metrics["durations_s"])
    assert {"started_at", "finished_at", "versions", "precision", "dataset"} <= set(metrics)
    assert metrics["dataset"]["heldout_imdb_size"] >= 2500


def test_no_temporary_files_are_left_beside_the_artifact(tiny_run: TrainResult) -> None:
    assert sorted(p.name for p in tiny_run.artifact.parent.iterdir()) == ["metrics.json", "model.tar.gz"]


def test_summary_names_the_accuracy_and_the_artifact(tiny_run: TrainResult) -> None:
    assert "held-out IMDB accuracy" in tiny_run.summary()
    assert str(tiny_run.artifact) in tiny_run.summary()
