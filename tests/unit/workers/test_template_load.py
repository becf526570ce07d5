"""What a template refuses to hold: a bundle whose own model_fn loads the model (what user code opened must
not be shared by every worker forked from it). Checked before any user code runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from zeroserve.runtimes.manifest import BundleManifest, write_manifest
from zeroserve.workers import template
from zeroserve.workers.spec import WorkerSpec


def bundle(folder: Path, functions: tuple[str, ...]) -> Path:
    (folder / "code").mkdir()
    # Exits the test process if it runs: the refusal must come before the script is imported.
    (folder / "code" / "inference.py").write_text("raise SystemExit('user code ran')\n")
    manifest = BundleManifest(
        runtime="onnx", task="text-classification", model_file="model.onnx", max_length=8,
        input_names=("input_ids",), output_names=("logits",), uses_token_type_ids=False,
        custom_code="code/inference.py", custom_functions=functions,
    )
    write_manifest(folder, manifest)
    return folder


def test_a_bundle_whose_model_fn_loads_the_model_gets_no_template(tmp_path: Path) -> None:
    spec = WorkerSpec("t", str(bundle(tmp_path, ("model_fn", "predict_fn"))), 1024, threads=1)
    with pytest.raises(RuntimeError, match="model_fn"):
        template.load(spec)


def test_a_bundle_with_only_predict_fn_gets_past_the_check(tmp_path: Path) -> None:
    spec = WorkerSpec("t", str(bundle(tmp_path, ("predict_fn",))), 1024, threads=1)
    with pytest.raises(BaseException) as caught:  # this bundle has no tokenizer: the load itself fails
        template.load(spec)
    assert "model_fn" not in str(caught.value) and "No such file" in str(caught.value)
