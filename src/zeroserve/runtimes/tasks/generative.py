"""The generative tasks by name, and the context they run with, read from a checkpoint's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.tasks.generation_parameters import CheckpointGeneration, Limits
from zeroserve.runtimes.tasks.generation_plan import GenerationContext
from zeroserve.runtimes.tasks.generative_tokenizer import GenerativeTokenizer
from zeroserve.runtimes.tasks.text2text import Text2TextGeneration
from zeroserve.runtimes.tasks.text_generation import TextGeneration

GenerativeTask = TextGeneration | Text2TextGeneration


def load_context(
    directory: Path, task: str, *, max_new_tokens: int = 1024, truncate_by_default: bool = False
) -> GenerationContext:
    """From config.json, generation_config.json (if any) and the tokenizer files of a save_pretrained folder.
    `max_new_tokens`: the server's ceiling (ZEROSERVE_MAX_NEW_TOKENS)."""
    task = t.normalize_task(task)
    config = _read_json(directory / "config.json") or {}
    tokenizer = GenerativeTokenizer.from_dir(directory)
    checkpoint = CheckpointGeneration.from_configs(
        config, _read_json(directory / "generation_config.json"), task, tokenizer.token_id("pad_token")
    )
    return GenerationContext(
        tokenizer=tokenizer,
        checkpoint=checkpoint,
        task=task,
        limits=Limits(max_new_tokens=max_new_tokens),
        truncate_by_default=truncate_by_default,
    )


def make_generative_task(context: GenerationContext) -> GenerativeTask:
    if t.pipeline_task(context.task) == t.TEXT_GENERATION:
        return TextGeneration(context)
    return Text2TextGeneration(context)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
