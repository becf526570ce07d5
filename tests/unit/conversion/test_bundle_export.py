"""Deploy-time conversion: the bundle's files and manifest, task inference, the CLI's contract."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from models import make_tiny_bert, minilm_dir, source_of
from runtime_helpers import answer, invoke
from zeroserve.conversion.export import build_bundle, main
from zeroserve.errors import ArtifactError
from zeroserve.runtimes.loader import load_handler
from zeroserve.runtimes.manifest import read_manifest
from zeroserve.runtimes.task_names import UnknownTask, infer_task
from zeroserve.runtimes.tokenizer import TextEncoder


def test_int8_bundle_holds_a_preoptimized_model_and_a_complete_manifest(
    bundle_for: Callable[..., Path],
) -> None:
    bundle = bundle_for("text-classification", quantize=True, id2label={0: "NEGATIVE", 1: "POSITIVE"})
    manifest = read_manifest(bundle)
    assert manifest.runtime == "onnx" and manifest.quantized and manifest.fallback_reason is None
    assert manifest.task == "text-classification"
    assert manifest.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert manifest.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert manifest.uses_token_type_ids and manifest.max_length == 512
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json",
        "config.json",
        "model.onnx",
        "tokenizer.json",
    ]
    tokenizer = json.loads((bundle / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None and tokenizer["truncation"] is None


def test_int8_model_is_smaller_and_answers_with_the_right_shapes(bundle_for: Callable[..., Path]) -> None:
    int8 = bundle_for("text-classification", quantize=True, id2label={0: "NEGATIVE", 1: "POSITIVE"})
    fp32 = bundle_for("text-classification", quantize=False, id2label={0: "NEGATIVE", 1: "POSITIVE"})
    assert (int8 / "model.onnx").stat().st_size < (fp32 / "model.onnx").stat().st_size
    result = answer(
        load_handler(int8).handle_batch([invoke({"inputs": ["good", "bad"], "parameters": {"top_k": None}})])[
            0
        ]
    )
    assert [[entry["label"] for entry in row] for row in result] == [
        sorted([e["label"] for e in row], key=lambda lbl: -next(x["score"] for x in row if x["label"] == lbl))
        for row in result
    ]
    assert all(abs(sum(entry["score"] for entry in row) - 1.0) < 1e-5 for row in result)


def test_onnx_fp32_logits_match_pytorch(bundle_for: Callable[..., Path]) -> None:
    import torch
    import transformers

    bundle = bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    handler = load_handler(bundle)
    texts = ["short", "a much longer review of a film that goes on for quite a few words"]
    batch = handler.pipeline.encoder.encode(texts)  # type: ignore[attr-defined]
    onnx_logits = handler.pipeline.model.forward(batch.arrays)["logits"]  # type: ignore[attr-defined]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(source_of(bundle)).eval()
    with torch.no_grad():
        torch_logits = model(**{k: torch.from_numpy(v) for k, v in batch.arrays.items()}).logits.numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=1e-4)


def test_torch_runtime_bundle_answers_like_the_onnx_one(bundle_for: Callable[..., Path]) -> None:
    onnx_bundle = bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    torch_bundle = bundle_for("text-classification", runtime="torch", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    manifest = read_manifest(torch_bundle)
    assert manifest.runtime == "torch" and (torch_bundle / "checkpoint" / "model.safetensors").is_file()
    request = invoke({"inputs": ["fine", "terrible, truly"], "parameters": {"top_k": None}})
    via_torch = answer(load_handler(torch_bundle).handle_batch([request])[0])
    via_onnx = answer(load_handler(onnx_bundle).handle_batch([request])[0])
    assert [[e["label"] for e in row] for row in via_torch] == [[e["label"] for e in row] for row in via_onnx]
    np.testing.assert_allclose(
        [[e["score"] for e in row] for row in via_torch],
        [[e["score"] for e in row] for row in via_onnx],
        atol=1e-4,
    )


def test_vocab_only_checkpoint_gets_a_tokenizer_json(tmp_path: Path) -> None:
    source = make_tiny_bert(tmp_path / "src", tokenizer_json=False)
    assert not (source / "tokenizer.json").exists()
    manifest = build_bundle(source, tmp_path / "bundle", quantize=False)
    encoder = TextEncoder.from_file(
        tmp_path / "bundle" / "tokenizer.json",
        max_length=manifest.max_length,
        pad_token="[PAD]",
        pad_token_id=0,
    )
    reference = TextEncoder.from_file(
        minilm_dir() / "tokenizer.json", max_length=512, pad_token="[PAD]", pad_token_id=0
    )
    text = "Hello, unaffable world"
    assert encoder.encode([text]).encodings[0].tokens == reference.encode([text]).encodings[0].tokens


def test_fixed_padding_in_a_checkpoints_tokenizer_json_is_overridden() -> None:
    # The packaged MiniLM's tokenizer.json pads every input to 128 tokens.
    encoder = TextEncoder.from_file(
        minilm_dir() / "tokenizer.json", max_length=512, pad_token="[PAD]", pad_token_id=0
    )
    batch = encoder.encode(["hi", "hello there"])
    assert batch.arrays["input_ids"].shape == (2, 4)
    assert encoder.encode(["word " * 600]).arrays["input_ids"].shape == (1, 512)


def test_rebuilding_replaces_the_bundle_and_leaves_no_scratch(
    tmp_path: Path, bundle_for: Callable[..., Path]
) -> None:
    source = source_of(bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"}))
    target = tmp_path / "bundles" / "b"
    build_bundle(source, target, quantize=False, env={"ZEROSERVE_SOURCE_DIGEST": "sha256:abc"})
    (target / "stale").write_text("from the previous build")
    manifest = build_bundle(source, target, quantize=False, env={"ZEROSERVE_SOURCE_DIGEST": "sha256:abc"})
    assert manifest.source_digest == "sha256:abc" and manifest.zeroserve_version
    assert not (target / "stale").exists()
    assert [p.name for p in target.parent.iterdir()] == ["b"]


def test_task_is_inferred_like_the_inference_toolkit() -> None:
    assert infer_task({"architectures": ["BertForSequenceClassification"]}) == "text-classification"
    assert infer_task({"architectures": ["DistilBertForTokenClassification"]}) == "token-classification"
    assert infer_task({"architectures": ["RobertaForQuestionAnswering"]}) == "question-answering"
    assert infer_task({"architectures": ["BertForMaskedLM"]}) == "fill-mask"
    assert infer_task({"architectures": ["BertModel"]}) == "feature-extraction"
    nli = {"architectures": ["BertForSequenceClassification"]}
    assert infer_task(nli, {"HF_TASK": "zero-shot-classification"}) == "zero-shot-classification"
    assert infer_task(nli, {"HF_TASK": "sentiment-analysis"}) == "text-classification"
    with pytest.raises(UnknownTask, match="HF_TASK"):
        infer_task({"architectures": ["BertForMultipleChoice"]})
    with pytest.raises(UnknownTask):
        infer_task(nli, {"HF_TASK": "table-question-answering"})


def test_zero_shot_needs_an_entailment_label(tmp_path: Path, bundle_for: Callable[..., Path]) -> None:
    source = source_of(bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"}))
    with pytest.raises(ArtifactError, match="entailment"):
        build_bundle(source, tmp_path / "b", task="zero-shot-classification")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zeroserve.conversion.export", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_the_manifest(
    tmp_path: Path, bundle_for: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: a fresh interpreter would spend most of this test importing torch.
    source = source_of(bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"}))
    assert main([str(source), str(tmp_path / "b"), "--no-quantize"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["task"] == "text-classification"
    assert printed.err == ""


def test_cli_failure_is_one_clear_line_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = run_cli(str(tmp_path / "empty"), str(tmp_path / "b"))
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "no config.json" in done.stderr
    assert not (tmp_path / "b").exists()
