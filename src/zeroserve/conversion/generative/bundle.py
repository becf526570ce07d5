"""A generative model's bundle: the exported graphs (decoder.onnx, encoder.onnx, generation.json) beside the
checkpoint's own tokenizer and generation files, which the worker's generative task reads as transformers
would (runtimes/tasks/generative.py).

The tokenizer files are copied as uploaded when the checkpoint has a tokenizer.json; a checkpoint with only
a slow tokenizer's files (GPT-2's vocab.json + merges.txt) gets one written by transformers' converter.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zeroserve
from zeroserve.conversion.generative.exporter import export_generative
from zeroserve.errors import ArtifactError
from zeroserve.runtimes.generation.graphs import METADATA_FILE
from zeroserve.runtimes.manifest import RUNTIME_ONNX, BundleManifest

# What the serve side reads besides the graphs (the ones a checkpoint has; all but config.json optional).
CHECKPOINT_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


def build_generative_into(
    work: Path, source_dir: Path, config: Mapping[str, Any], task: str, source_digest: str | None
) -> BundleManifest:
    for name in CHECKPOINT_FILES:
        if (source_dir / name).is_file():
            shutil.copy(source_dir / name, work / name)
    if not (work / "tokenizer.json").is_file():
        _convert_tokenizer(source_dir, work)
    graphs = export_generative(source_dir, work)
    positions = config.get("max_position_embeddings") or config.get("n_positions") or 0
    return BundleManifest(
        runtime=RUNTIME_ONNX,
        task=task,
        model_file=METADATA_FILE,
        max_length=int(positions) if isinstance(positions, int) else 0,
        input_names=("input_ids", "attention_mask"),
        output_names=("logits",),
        uses_token_type_ids=False,
        pad_token_id=graphs.pad_token_id if graphs.pad_token_id is not None else 0,
        pad_token="",
        source_digest=source_digest,
        zeroserve_version=zeroserve.__version__,
    )


def _convert_tokenizer(source_dir: Path, work: Path) -> None:
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source_dir)
    except Exception as exc:
        raise ArtifactError(f"cannot load the tokenizer: {type(exc).__name__}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ArtifactError("the tokenizer has no fast (tokenizers) version; zeroserve needs tokenizer.json")
    tokenizer.save_pretrained(work)
