"""Task names and inference for the generative tasks, as the toolkit's ARCHITECTURES_2_TASK reads
config.json."""

from __future__ import annotations

import pytest

from zeroserve.runtimes import task_names as t


@pytest.mark.parametrize(
    ("architecture", "task"),
    [
        ("LlamaForCausalLM", t.TEXT_GENERATION),
        ("Qwen2ForCausalLM", t.TEXT_GENERATION),
        ("GPT2LMHeadModel", t.TEXT_GENERATION),
        ("T5ForConditionalGeneration", t.TEXT2TEXT_GENERATION),
        ("BartForConditionalGeneration", t.TEXT2TEXT_GENERATION),
        ("MarianMTModel", t.TEXT2TEXT_GENERATION),
        ("EncoderDecoderModel", t.TEXT2TEXT_GENERATION),
        ("BertModel", t.FEATURE_EXTRACTION),
        ("BertForSequenceClassification", t.TEXT_CLASSIFICATION),
    ],
)
def test_task_is_inferred_from_the_architecture_as_the_toolkit_does(architecture: str, task: str) -> None:
    assert t.infer_task({"architectures": [architecture]}) == task


def test_translation_with_languages_is_a_translation_task_that_keeps_its_name() -> None:
    assert t.normalize_task("translation_en_to_de") == "translation_en_to_de"
    assert t.pipeline_task("translation_en_to_de") == t.TRANSLATION
    assert t.is_generative("translation_en_to_de") and t.is_generative(t.SUMMARIZATION)
    with pytest.raises(t.UnknownTask, match="translation_XX_to_YY"):
        t.normalize_task("translation_en_de")


def test_hf_task_wins_over_the_architecture() -> None:
    assert t.infer_task({"architectures": ["T5ForConditionalGeneration"]}, {"HF_TASK": "summarization"}) == (
        t.SUMMARIZATION
    )
