"""Writing a trained model as a SageMaker artifact: `model.tar.gz` with `metrics.json` beside it.

SageMaker's Hugging Face containers expect the `save_pretrained` files at the top of the archive, with no
folder around them. Both files are written to a temporary name and renamed, so a reader (or a crashed run)
never sees half a file.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

#: What the serving side relies on; anything else `save_pretrained` writes is packaged too.
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def metrics_path_for(artifact: Path) -> Path:
    return artifact.with_name("metrics.json")


def write_artifact(model: Any, tokenizer: Any, output: Path, *, max_length: int) -> None:
    """Save model and tokenizer as `output` (a .tar.gz), replacing any previous file atomically."""
    # Deferred: `metrics_path_for` is used by the default-model cache check, which must not pull in torch.
    from zeroserve.sentiment_trainer.base_model import quiet_transformers

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".package-") as tmp:
        stage = Path(tmp) / "model"
        with quiet_transformers():
            model.save_pretrained(str(stage))
        _write_label_maps(stage / "config.json", model.config.id2label)
        _configure_serving_tokenizer(tokenizer, max_length)
        tokenizer.save_pretrained(str(stage))
        _write_legacy_tokenizer_files(tokenizer, stage)
        missing = [name for name in REQUIRED_FILES if not (stage / name).is_file()]
        if missing:
            raise RuntimeError(f"save_pretrained did not produce {', '.join(missing)}")
        partial = Path(tmp) / "model.tar.gz"
        _tar_flat(stage, partial)
        os.replace(partial, output)


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _write_label_maps(config_path: Path, id2label: dict[int, str]) -> None:
    """transformers 5 leaves id2label/label2id out of config.json when they equal its defaults (LABEL_0,
    LABEL_1); runtimes that read config.json without transformers need them spelled out."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["id2label"] = {str(i): label for i, label in sorted(id2label.items())}
    config["label2id"] = {label: int(i) for i, label in sorted(id2label.items())}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_legacy_tokenizer_files(tokenizer: Any, folder: Path) -> None:
    """transformers 5 writes only tokenizer.json for a fast tokenizer; slow tokenizers, older transformers
    and the SageMaker layout also expect vocab.txt and special_tokens_map.json. Both are derived from the
    tokenizer itself, so they cannot disagree with tokenizer.json."""
    if not (folder / "vocab.txt").exists():
        by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (folder / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in by_id), encoding="utf-8")
    if not (folder / "special_tokens_map.json").exists():
        names = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        special = {name: value for name in names if (value := getattr(tokenizer, name, None))}
        (folder / "special_tokens_map.json").write_text(
            json.dumps(special, indent=2) + "\n", encoding="utf-8"
        )


def _configure_serving_tokenizer(tokenizer: Any, max_length: int) -> None:
    """tokenizer.json stores truncation and padding, and the base pins both to 128 (every input padded to
    128 tokens). Store what the model was trained and evaluated with instead: truncate at `max_length`, pad
    a batch only to its longest member, so that a 16-token request costs 16 tokens."""
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=max_length)
    backend.enable_padding(pad_id=tokenizer.pad_token_id or 0, pad_token=tokenizer.pad_token or "[PAD]")


def _tar_flat(folder: Path, archive: Path) -> None:
    # compresslevel 1: fp32 weights barely compress (~7%), and level 9 takes several times longer for it.
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name, filter=_normalize_member)


def _normalize_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info
