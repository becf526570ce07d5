"""Deploy-time conversion: an unpacked Hugging Face checkpoint -> a bundle a worker can cold-start from.

`build_bundle` owns the bundle layout and its atomic publication; the conversion steps live in `convert`.
The deployer runs `python -m zeroserve.conversion.export SOURCE BUNDLE` in a subprocess (torch is imported
there, never in the server): the manifest is printed as JSON on success; on failure the exit status is
non-zero and stderr holds one line, the endpoint's FailureReason. With `--stdin` instead of SOURCE BUNDLE,
it imports the conversion stack first and then reads them from stdin, so the deployer can start it before the
artifact is unpacked (control/bundles.py).

Bundle layout::

    bundle.json      manifest (see manifest.py)
    model.onnx       int8, pre-optimized (runtime "onnx")
    tokenizer.json   padding/truncation cleared; the worker sets them
    config.json      copied for reference
    code/            the user's inference script, if any
    checkpoint/      the original files, for the torch runtime or a user model_fn
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import zeroserve
from zeroserve.conversion import convert, int8_gate
from zeroserve.conversion.generative.bundle import build_generative_into
from zeroserve.errors import ArtifactError, one_line
from zeroserve.runtimes import task_names as t
from zeroserve.runtimes import user_script
from zeroserve.runtimes.manifest import (
    CHECKPOINT_DIR,
    RUNTIME_ONNX,
    RUNTIME_TORCH,
    BundleManifest,
    write_manifest,
)
from zeroserve.runtimes.requirements import check_requirements
from zeroserve.runtimes.tokenizer import TextEncoder
from zeroserve.runtimes.torch_model import load_torch_model

MODEL_FILE = "model.onnx"
SOURCE_DIGEST_ENV = "ZEROSERVE_SOURCE_DIGEST"

# Position embeddings these models reserve for padding offsets (RoBERTa family: pad_token_id + 1).
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "ibert", "data2vec-text"}
_DEFAULT_MAX_LENGTH = 512


def build_bundle(
    source_dir: Path,
    bundle_dir: Path,
    *,
    task: str | None = None,
    runtime: str = RUNTIME_ONNX,
    quantize: bool | str | None = None,
    truncation: bool = False,
    env: Mapping[str, str] | None = None,
) -> BundleManifest:
    """Convert `source_dir` into `bundle_dir` (replacing any previous bundle there, atomically).
    `quantize`: True or False forces int8 (dynamic) or fp32, an int8 scheme's name ("dynamic", "blockwise")
    forces that scheme; None (the default) serves int8 only if a scheme passes the fidelity gate.
    `truncation`: truncate over-long inputs by default (the model's ZEROSERVE_TRUNCATION)."""
    started_s = time.perf_counter()
    env = dict(env or {})
    if runtime not in (RUNTIME_ONNX, RUNTIME_TORCH):
        raise ArtifactError(f"unknown runtime {runtime!r}; use onnx or torch")
    if isinstance(quantize, str) and quantize not in convert.INT8_SCHEMES:
        schemes = ", ".join(convert.INT8_SCHEMES)
        raise ArtifactError(f"unknown int8 scheme {quantize!r}; use true, false or one of {schemes}")
    config = _read_config(source_dir)
    try:
        task = t.normalize_task(task) if task else t.infer_task(config, env)
    except t.UnknownTask as exc:
        raise ArtifactError(str(exc)) from exc

    script = user_script.find_script(source_dir, env)
    hooks = user_script.defined_hooks(script) if script else ()
    if script is not None:
        check_requirements(script.parent)

    bundle_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{bundle_dir.name}.build-", dir=bundle_dir.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the bundle is an ordinary read-only data folder
    try:
        if t.is_generative(task):
            if script is not None:
                raise ArtifactError("code/inference.py is not supported for generative tasks yet")
            source_digest = env.get(SOURCE_DIGEST_ENV) or None
            manifest = build_generative_into(work, source_dir, config, task, source_digest)
        else:
            manifest = _build_into(work, source_dir, config, task, runtime, quantize, env)
        manifest = replace(manifest, truncation=truncation)
        if script is not None:
            shutil.copytree(source_dir / "code", work / "code", copy_function=_link_or_copy)
            manifest = replace(manifest, custom_code=f"code/{script.name}", custom_functions=hooks)
        if manifest.runtime == RUNTIME_TORCH or "model_fn" in hooks:
            # A user model_fn(model_dir) expects the artifact as uploaded, weights and all.
            shutil.copytree(source_dir, work / CHECKPOINT_DIR, copy_function=_link_or_copy)
        manifest = replace(manifest, build_s=round(time.perf_counter() - started_s, 3))
        write_manifest(work, manifest)
        _publish(work, bundle_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _build_into(
    work: Path,
    source_dir: Path,
    config: Mapping[str, Any],
    task: str,
    runtime: str,
    quantize: bool | str | None,
    env: Mapping[str, str],
) -> BundleManifest:
    tokenizer_info = _write_tokenizer(source_dir, work / "tokenizer.json")
    shutil.copy(source_dir / "config.json", work / "config.json")
    max_length = _max_length(config, tokenizer_info["model_max_length"])
    try:
        model = load_torch_model(source_dir, task)
    except Exception as exc:
        raise ArtifactError(f"cannot load the model for {task}: {type(exc).__name__}: {exc}") from exc
    # From the loaded config, not config.json: transformers fills in LABEL_<i> defaults that files omit.
    id2label: dict[int, str] = {}
    if task in (t.TEXT_CLASSIFICATION, t.ZERO_SHOT_CLASSIFICATION, t.TOKEN_CLASSIFICATION):
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
    input_names = ["input_ids", "attention_mask"]
    if convert.accepts_token_type_ids(model) and "token_type_ids" in tokenizer_info["model_input_names"]:
        input_names.append("token_type_ids")
    manifest = BundleManifest(
        runtime=runtime,
        task=task,
        model_file=CHECKPOINT_DIR,
        max_length=max_length,
        input_names=tuple(input_names),
        output_names=convert.OUTPUT_NAMES[task],
        uses_token_type_ids="token_type_ids" in input_names,
        id2label=id2label,
        problem_type=getattr(model.config, "problem_type", None),
        pad_token=tokenizer_info["pad_token"],
        pad_token_id=tokenizer_info["pad_token_id"],
        mask_token=tokenizer_info["mask_token"],
        mask_token_id=tokenizer_info["mask_token_id"],
        unk_token_id=tokenizer_info["unk_token_id"],
        source_digest=env.get(SOURCE_DIGEST_ENV) or None,
        zeroserve_version=zeroserve.__version__,
    )
    if task == t.ZERO_SHOT_CLASSIFICATION and _entailment_id(id2label) == -1:
        raise ArtifactError(
            "zero-shot-classification needs an NLI model whose config id2label has an 'entailment' label"
        )
    if runtime != RUNTIME_ONNX:
        return manifest
    try:
        quantization = _convert_to_onnx(work, model, task, manifest, quantize)
    except Exception as exc:  # any exporter failure: serve with PyTorch rather than fail the deploy
        reason = f"ONNX export failed, serving with PyTorch: {type(exc).__name__}: {exc}"
        return replace(manifest, runtime=RUNTIME_TORCH, fallback_reason=one_line(reason))
    return replace(
        manifest, model_file=MODEL_FILE, quantized=quantization["served"] == "int8", quantization=quantization
    )


def _convert_to_onnx(
    work: Path, model: Any, task: str, manifest: BundleManifest, quantize: bool | str | None
) -> dict[str, Any]:
    """Export, then int8 or not: `quantize` True/False or a scheme's name forces it (ZEROSERVE_QUANTIZE),
    None lets the fidelity gate decide. Returns the decision for the manifest."""
    encoder = TextEncoder.from_file(
        work / "tokenizer.json",
        max_length=manifest.max_length,
        pad_token=manifest.pad_token,
        pad_token_id=manifest.pad_token_id,
        input_names=manifest.input_names,
    )
    sample = convert.sample_inputs(lambda texts: encoder.encode(texts).arrays, manifest.input_names)
    scratch = work / ".convert"
    scratch.mkdir()
    fp32 = scratch / "model.fp32.onnx"
    convert.export_onnx(model, task, sample, fp32)
    decision: dict[str, Any]
    if quantize is False:
        decision = {"mode": "off", "served": "fp32", "reason": "ZEROSERVE_QUANTIZE=false"}
        chosen = int8_gate.optimized(fp32)
    elif quantize is None:
        decision, chosen = int8_gate.choose(
            work, manifest, fp32, scratch, int8_gate.calibration_inputs(encoder, manifest)
        )
    else:
        scheme = convert.DYNAMIC if quantize is True else quantize
        chosen = int8_gate.int8(fp32, scratch, scheme, int8_gate.calibration_inputs(encoder, manifest))
        setting = "true" if quantize is True else scheme
        decision = {
            "mode": "forced",
            "served": "int8",
            "scheme": scheme,
            "reason": f"ZEROSERVE_QUANTIZE={setting}",
        }
    os.replace(chosen, work / MODEL_FILE)
    if "report" not in decision:
        # Open the final file exactly as a worker will, so a bundle that cannot load never gets published.
        # (A gate that reported has already done so: it judged this very file through a worker's pipeline.)
        convert.run_onnx(work / MODEL_FILE, sample, disable_optimizations=True)
    shutil.rmtree(scratch)
    return decision


def _read_config(source_dir: Path) -> dict[str, Any]:
    path = source_dir / "config.json"
    if not path.is_file():
        raise ArtifactError(f"the model artifact has no config.json (looked in {source_dir})")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ArtifactError(f"config.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ArtifactError("config.json is not a JSON object")
    return config


def _write_tokenizer(source_dir: Path, dest: Path) -> dict[str, Any]:
    """Save the checkpoint's fast tokenizer as tokenizer.json (transformers converts vocab-only
    checkpoints), with padding and truncation cleared, and return the special tokens the worker needs."""
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source_dir)
    except Exception as exc:
        raise ArtifactError(f"cannot load the tokenizer: {type(exc).__name__}: {exc}") from exc
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ArtifactError("the tokenizer has no fast (tokenizers) version; zeroserve needs tokenizer.json")
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(dest))
    if tokenizer.pad_token is None:
        raise ArtifactError("the tokenizer defines no pad token, so requests cannot be batched")
    return {
        "model_max_length": tokenizer.model_max_length,
        "model_input_names": list(tokenizer.model_input_names),
        "pad_token": str(tokenizer.pad_token),
        "pad_token_id": int(tokenizer.pad_token_id),
        "mask_token": None if tokenizer.mask_token is None else str(tokenizer.mask_token),
        "mask_token_id": None if tokenizer.mask_token_id is None else int(tokenizer.mask_token_id),
        "unk_token_id": None if tokenizer.unk_token_id is None else int(tokenizer.unk_token_id),
    }


def _max_length(config: Mapping[str, Any], tokenizer_max: Any) -> int:
    limits: list[int] = []
    # transformers uses a huge sentinel (int(1e30)) for "no limit".
    if isinstance(tokenizer_max, int) and 0 < tokenizer_max < 1_000_000:
        limits.append(tokenizer_max)
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        offset = 2 if config.get("model_type") in _POSITION_OFFSET_MODELS else 0
        limits.append(positions - offset)
    return min(limits) if limits else _DEFAULT_MAX_LENGTH


def _entailment_id(id2label: Mapping[int, str]) -> int:
    for index, label in sorted(id2label.items()):
        if label.lower().startswith("entail"):
            return index
    return -1


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link when possible: checkpoints are large, immutable once unpacked, and on the same disk."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _publish(work: Path, bundle_dir: Path) -> None:
    """Make `work` appear as `bundle_dir` in one rename, so readers see the old bundle or the new one."""
    try:
        os.rename(work, bundle_dir)
        return
    except OSError:
        if not bundle_dir.exists():
            raise
    retired = bundle_dir.with_name(f".{bundle_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(bundle_dir, retired)
    os.rename(work, bundle_dir)
    shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence library chatter (tracer warnings, progress bars, onnxruntime's C++ logger), both Python's
    sys.stderr and file descriptor 2, so the deployer's stderr holds only our one-line reason."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            with contextlib.redirect_stderr(devnull):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _preimport() -> None:
    """What every conversion imports, whatever the model: with these, a model's own modeling module (BERT's,
    RoBERTa's) adds ~15 ms. ~2 s on 2 cores, mostly torch and transformers."""
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import torch.onnx  # noqa: F401
    import transformers.masking_utils
    import transformers.modeling_utils
    import transformers.models.auto.modeling_auto
    import transformers.models.auto.tokenization_auto  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeroserve.conversion.export",
        description="Convert a checkpoint into a zeroserve bundle.",
    )
    parser.add_argument("source", type=Path, nargs="?", help="unpacked Hugging Face checkpoint")
    parser.add_argument("bundle", type=Path, nargs="?", help="bundle directory to (re)create")
    parser.add_argument(
        "--stdin",
        action="store_true",
        help='import the conversion stack, then read {"source", "bundle", "digest"} as one JSON line from '
        "stdin (end of input: exit without converting)",
    )
    parser.add_argument("--task", default=None, help="pipeline task (default: HF_TASK, else config.json)")
    parser.add_argument("--runtime", choices=(RUNTIME_ONNX, RUNTIME_TORCH), default=RUNTIME_ONNX)
    parser.add_argument(
        "--quantize",
        choices=("auto", "true", "false", *convert.INT8_SCHEMES),
        default="auto",
        help="int8 weights: auto = only if an int8 scheme passes the fidelity gate (default), true/false "
        "force int8 (dynamic) or fp32, dynamic/blockwise force that int8 scheme",
    )
    parser.add_argument("--no-quantize", action="store_true", help="same as --quantize false")
    parser.add_argument("--truncation", action="store_true", help="truncate over-long inputs by default")
    parser.add_argument("--verbose", action="store_true", help="let library warnings through to stderr")
    args = parser.parse_args(argv)
    if (args.source is not None) if args.stdin else (args.bundle is None):
        parser.error("give SOURCE and BUNDLE, or --stdin")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet = contextlib.nullcontext() if args.verbose else _quiet_stderr()
    try:
        with quiet:
            if args.stdin:
                _preimport()
                line = sys.stdin.readline()
                if not line.strip():
                    return 0
                request = json.loads(line)
                args.source, args.bundle = Path(request["source"]), Path(request["bundle"])
                os.environ[SOURCE_DIGEST_ENV] = str(request.get("digest") or "")
            manifest = build_bundle(
                args.source,
                args.bundle,
                task=args.task,
                runtime=args.runtime,
                quantize=False
                if args.no_quantize
                else {"auto": None, "true": True, "false": False}.get(args.quantize, args.quantize),
                truncation=args.truncation,
                env=os.environ,
            )
    except ArtifactError as exc:
        print(one_line(exc.message), file=sys.stderr)
        return 1
    except Exception as exc:
        print(one_line(f"{type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    print(manifest.to_json())
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: with torch and transformers loaded it takes ~0.5 s (measured), all of
    # it on the deploy's critical path, and there is nothing left to clean up (the bundle is published).
    os._exit(code)
