"""The checkpoints and bundles the benchmarks time, built once and cached under `<zeroserve cache>/bench`.

- the sentiment model: the trained default model (`zeroserve.sentiment_trainer`) when it is cached or can be
  trained, else the packaged MiniLM with a random classification head (same architecture and size, fine
  for timing);
- a MiniLM classifier with the full 512-token window (the trained model's tokenizer truncates shorter);
- DistilBERT-size (66M) and BERT-base-size (110M) classifiers from configs, random weights;
- bundles of any of them (ONNX int8, ONNX fp32, PyTorch) via zeroserve's own `build_bundle`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.models import minilm_dir
from tests.server import pack_model

# name -> (layers, hidden, heads, intermediate): the random-weight classifiers of the model-size section.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "distilbert-size": (6, 768, 12, 3072),
    "bert-base-size": (12, 768, 12, 3072),
}


def cache_root() -> Path:
    from zeroserve.config import default_cache_dir

    root = default_cache_dir() / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint folder and the SageMaker `model.tar.gz` made of it."""

    name: str
    checkpoint: Path
    tarball: Path
    description: str
    trained: bool = False

    @property
    def url(self) -> str:
        return f"file://{self.tarball}"

    def parameters_m(self) -> float:
        from safetensors import safe_open

        total = 0
        with safe_open(str(self.checkpoint / "model.safetensors"), "np") as weights:
            for key in weights.keys():  # noqa: SIM118 - safe_open is not a dict
                shape = weights.get_slice(key).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
        return total / 1e6


def _build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """Build into a scratch folder and rename, so a crashed build never leaves half a checkpoint."""
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build(scratch)
        os.rename(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _with_tarball(name: str, checkpoint: Path, description: str, trained: bool = False) -> ModelSource:
    tarball = checkpoint.with_suffix(".tar.gz")
    if not tarball.is_file():
        pack_model(checkpoint, tarball)
    return ModelSource(name, checkpoint, tarball, description, trained)


def minilm_classifier() -> ModelSource:
    """all-MiniLM-L6-v2 (22M) with a random 2-label head; tokenizer window 512."""

    def build(out: Path) -> None:
        import torch
        import transformers

        torch.manual_seed(0)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
        model.save_pretrained(out)
        transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)

    folder = _build_once(cache_root() / "minilm-classifier", build)
    return _with_tarball("minilm", folder, "all-MiniLM-L6-v2 (22M), random 2-label head")


def sized_classifier(name: str) -> ModelSource:
    """A BERT classifier of one of `SIZES`, random weights, MiniLM's WordPiece vocabulary."""
    layers, hidden, heads, intermediate = SIZES[name]

    def build(out: Path) -> None:
        import torch
        import transformers

        torch.manual_seed(0)
        config = transformers.BertConfig(
            vocab_size=30522,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=intermediate,
            max_position_embeddings=512,
            num_labels=2,
        )
        config.architectures = ["BertForSequenceClassification"]
        transformers.BertForSequenceClassification(config).save_pretrained(out)
        transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)

    folder = _build_once(cache_root() / name, build)
    return _with_tarball(name, folder, f"BERT {layers} layers, hidden {hidden}, random weights")


def _train_defaults() -> Any:
    """The module of `ensure_default_model()` (its name moved once; accept both)."""
    for name in ("zeroserve.sentiment_trainer.defaults", "zeroserve.sentiment_trainer.default_model"):
        if importlib.util.find_spec(name) is not None:
            return importlib.import_module(name)
    raise ModuleNotFoundError("zeroserve.sentiment_trainer has no ensure_default_model()")


def sentiment(allow_training: bool) -> ModelSource:
    """The trained sentiment model if available (training it first when `allow_training`), else the MiniLM
    classifier with a random head."""
    artifact: Path | None = None
    try:
        defaults = _train_defaults()
        artifact = defaults.cached_default_model()
        if artifact is None and allow_training:
            print("bench: training the default sentiment model once (cached afterwards)...", flush=True)
            artifact = defaults.ensure_default_model(progress=False)
    except Exception as exc:  # training is another module's job; time the untrained model instead
        print(f"bench: no trained sentiment model ({type(exc).__name__}: {exc}); using MiniLM + random head")
    if artifact is None:
        return minilm_classifier()
    found = artifact

    def unpack(out: Path) -> None:
        with tarfile.open(found) as archive:
            archive.extractall(out, filter="data")

    folder = _build_once(cache_root() / f"sentiment-{file_digest(artifact)[:12]}", unpack)
    description = "MiniLM fine-tuned on IMDB (zeroserve.sentiment_trainer)"
    return ModelSource("sentiment", folder, artifact, description, True)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _exporter_key() -> str:
    """Changes with zeroserve's conversion code, so a cached bundle never outlives the code that made it."""
    spec = importlib.util.find_spec("zeroserve.runtimes")
    assert spec is not None and spec.submodule_search_locations
    digest = hashlib.sha256()
    for path in sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*")):
        if path.suffix in {".py", ".txt"}:  # the code and the calibration texts
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def bundle(source: ModelSource, runtime: str = "onnx", quantize: bool | str | None = True) -> Path:
    """A zeroserve bundle of `source` (what a worker loads), built by `build_bundle` and cached.
    `quantize` as build_bundle takes it: True/False, an int8 scheme's name, or None (the fidelity gate's
    choice, what a default deploy serves)."""
    from zeroserve.conversion.export import build_bundle

    if runtime != "onnx":
        kind = "torch"
    else:
        named = {True: "int8", False: "fp32", None: "gate"}
        kind = named.get(quantize, f"int8-{quantize}")
    folder = cache_root() / "bundles" / f"{source.checkpoint.name}-{kind}-{_exporter_key()}"
    if not (folder / "bundle.json").is_file():
        print(f"bench: converting {source.name} to a {kind} bundle...", flush=True)
        build_bundle(
            source.checkpoint, folder, task="text-classification", runtime=runtime, quantize=quantize
        )
    return folder


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
