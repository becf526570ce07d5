"""`load_handler(bundle_dir)`: bundle on disk -> ready Handler, on the cold-start path.

Reads bundle.json, opens the tokenizer and the model session, and wraps them in the default or the
custom-code handler. Importing this module pulls in onnxruntime, tokenizers and numpy (what the zygote
should pre-import) but never torch; torch is imported only for a bundle whose runtime is "torch".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zeroserve.errors import ArtifactError
from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.base import Handler
from zeroserve.runtimes.custom_handler import CustomCodeHandler
from zeroserve.runtimes.handler import DefaultHandler
from zeroserve.runtimes.manifest import (
    CHECKPOINT_DIR,
    RUNTIME_ONNX,
    RUNTIME_TORCH,
    BundleManifest,
    read_manifest,
)
from zeroserve.runtimes.onnx import OnnxModel, worker_threads
from zeroserve.runtimes.pipeline import Model, Pipeline
from zeroserve.runtimes.requirements import check_requirements
from zeroserve.runtimes.tasks import TaskContext, make_task, task_class
from zeroserve.runtimes.tokenizer import TextEncoder
from zeroserve.runtimes.user_script import import_script

MAX_NEW_TOKENS_ENV = "ZEROSERVE_MAX_NEW_TOKENS"
DEFAULT_MAX_NEW_TOKENS = 1024


def load_handler(bundle_dir: Path, *, threads: int | None = None, parallel: bool = True) -> Handler:
    """The handler for the bundle at `bundle_dir`; `threads` defaults to ZEROSERVE_WORKER_THREADS or all
    cores. `parallel=False` loads with no helper thread (a template, which must hold none when it forks).
    Raises ArtifactError with a user-facing reason when the bundle cannot be served."""
    manifest = read_manifest(bundle_dir)
    if t.is_generative(manifest.task):
        return load_generative_handler(bundle_dir, manifest, threads=threads)
    if manifest.custom_code is None:
        return DefaultHandler(load_pipeline(bundle_dir, manifest, threads=threads, parallel=parallel))
    script = bundle_dir / manifest.custom_code
    check_requirements(script.parent)
    # A user model_fn replaces our model, so do not spend cold-start time loading one.
    pipeline = (
        None
        if "model_fn" in manifest.custom_functions
        else load_pipeline(bundle_dir, manifest, threads=threads, parallel=parallel)
    )
    checkpoint = bundle_dir / CHECKPOINT_DIR
    return CustomCodeHandler(
        import_script(script), checkpoint if checkpoint.is_dir() else bundle_dir, pipeline
    )


def load_generative_handler(
    bundle_dir: Path, manifest: BundleManifest, *, threads: int | None = None
) -> Handler:
    """The exported graphs (runtimes/generation/graphs.py) and the checkpoint's tokenizer and generation
    files, all in the bundle. No helper thread: opening two sessions and a tokenizer overlaps little.
    Imported here, not by the zygote: an encoder model's cold start forks a process without them (the
    generative variant's template imports them once)."""
    from zeroserve.runtimes.generation.onnx_model import OnnxNextTokenModel
    from zeroserve.runtimes.generative_handler import GenerativeModelHandler
    from zeroserve.runtimes.tasks.generative import load_context, make_generative_task

    if manifest.custom_code is not None:
        raise ArtifactError("code/inference.py is not supported for generative tasks yet")
    context = load_context(
        bundle_dir,
        manifest.task,
        max_new_tokens=max_new_tokens_ceiling(),
        truncate_by_default=manifest.truncation,
    )
    model = OnnxNextTokenModel(bundle_dir, threads=threads or worker_threads())
    return GenerativeModelHandler(make_generative_task(context), model)


def max_new_tokens_ceiling() -> int:
    """ZEROSERVE_MAX_NEW_TOKENS: the most tokens one request may ask for (default 1024)."""
    value = os.environ.get(MAX_NEW_TOKENS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_NEW_TOKENS


def load_pipeline(
    bundle_dir: Path, manifest: BundleManifest, *, threads: int | None = None, parallel: bool = True
) -> Pipeline:
    if not parallel:
        encoder = load_encoder(bundle_dir, manifest)
        loaded = _load_model(bundle_dir, manifest, threads)
        return Pipeline(make_task(manifest.task, task_context(manifest, encoder)), encoder, loaded)
    # onnxruntime releases the GIL while it opens a session and tokenizers holds it while it parses
    # tokenizer.json, so the two overlap: cold start pays for the slower one, not their sum.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zeroserve-load") as pool:
        model = pool.submit(_load_model, bundle_dir, manifest, threads)
        encoder = load_encoder(bundle_dir, manifest)
        return Pipeline(make_task(manifest.task, task_context(manifest, encoder)), encoder, model.result())


def load_encoder(bundle_dir: Path, manifest: BundleManifest) -> TextEncoder:
    """The bundle's tokenizer, set up for its task (window, stride, which side of a pair gives way)."""
    task = task_class(manifest.task)
    window = task.window_length
    return TextEncoder.from_file(
        bundle_dir / manifest.tokenizer_file,
        max_length=manifest.max_length if window is None else min(window, manifest.max_length),
        pad_token=manifest.pad_token,
        pad_token_id=manifest.pad_token_id,
        truncation_strategy=task.truncation_strategy,
        input_names=manifest.input_names,
        stride=task.window_stride,
    )


def task_context(manifest: BundleManifest, encoder: TextEncoder) -> TaskContext:
    return TaskContext(
        encoder=encoder,
        labels=manifest.labels,
        problem_type=manifest.problem_type,
        mask_token=manifest.mask_token,
        mask_token_id=manifest.mask_token_id,
        unk_token_id=manifest.unk_token_id,
        truncate_by_default=manifest.truncation,
    )


def _load_model(bundle_dir: Path, manifest: BundleManifest, threads: int | None) -> Model:
    threads = threads or worker_threads()
    path = bundle_dir / manifest.model_file
    if manifest.runtime == RUNTIME_ONNX:
        return OnnxModel(path, manifest.output_names, threads=threads)
    if manifest.runtime == RUNTIME_TORCH:
        from zeroserve.runtimes.torch_runtime import TorchModel

        return TorchModel(path, manifest.task, manifest.output_names, threads=threads)
    raise ArtifactError(f"bundle runtime {manifest.runtime!r} is not one of onnx, torch")
