"""`bundle.json`: what a converted model bundle holds and how a worker must run it.

Written once at deploy by `export.build_bundle`, read on every cold start by `loader.load_handler`, so it
carries everything the worker needs without opening config.json or importing transformers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from zeroserve.errors import ArtifactError

MANIFEST_NAME = "bundle.json"
# Folder of a bundle holding the checkpoint as uploaded (torch runtime, or a user model_fn).
CHECKPOINT_DIR = "checkpoint"
FORMAT_VERSION = 1

RUNTIME_ONNX = "onnx"
RUNTIME_TORCH = "torch"


@dataclass(frozen=True)
class BundleManifest:
    runtime: str
    task: str
    # Relative to the bundle: an .onnx file, or the checkpoint folder for the torch runtime.
    model_file: str
    max_length: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    uses_token_type_ids: bool
    # Class index -> label, from config.json id2label (empty for tasks without class labels).
    id2label: dict[int, str] = field(default_factory=dict)
    problem_type: str | None = None
    tokenizer_file: str = "tokenizer.json"
    pad_token: str = "[PAD]"
    pad_token_id: int = 0
    mask_token: str | None = None
    mask_token_id: int | None = None
    unk_token_id: int | None = None
    quantized: bool = False
    # How int8 was chosen or declined at deploy (the fidelity gate's report; see conversion/fidelity.py).
    quantization: dict[str, Any] = field(default_factory=dict)
    # Truncate over-long inputs unless a request says otherwise (model Environment ZEROSERVE_TRUNCATION).
    truncation: bool = False
    # Path of the user's inference script relative to the bundle (SageMaker `code/inference.py`).
    custom_code: str | None = None
    # Top-level functions that script defines, found without running it.
    custom_functions: tuple[str, ...] = ()
    source_digest: str | None = None
    zeroserve_version: str = ""
    # Why the ONNX export was not used, when the bundle fell back to the torch runtime.
    fallback_reason: str | None = None
    build_s: float = 0.0
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BundleManifest:
        data: dict[str, Any] = json.loads(text)
        if data.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"bundle format {data.get('format_version')!r} is not {FORMAT_VERSION}; rebuild the bundle"
            )
        known = {f.name for f in fields(cls)}
        # Newer writers may add fields; an older reader ignores them rather than refusing the bundle.
        values = {k: v for k, v in data.items() if k in known}
        values["id2label"] = {int(k): str(v) for k, v in data.get("id2label", {}).items()}
        for name in ("input_names", "output_names", "custom_functions"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)

    @property
    def labels(self) -> list[str]:
        """Labels by class index; gaps (never seen in practice) get transformers' LABEL_<i> default."""
        if not self.id2label:
            return []
        return [self.id2label.get(i, f"LABEL_{i}") for i in range(max(self.id2label) + 1)]


def read_manifest(bundle_dir: Path) -> BundleManifest:
    path = bundle_dir / MANIFEST_NAME
    try:
        text = path.read_text()
    except OSError as exc:
        raise ArtifactError(f"no model bundle at {bundle_dir}: {exc.strerror or exc}") from exc
    try:
        return BundleManifest.from_json(text)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path} is not a valid bundle manifest: {exc}") from exc


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> None:
    (bundle_dir / MANIFEST_NAME).write_text(manifest.to_json() + "\n")
