"""Loading a checkpoint with its task's head as a PyTorch module: what the converter exports at deploy and
what the torch fallback runtime serves. transformers is imported only when a model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zeroserve.runtimes import task_names as t

HEAD_CLASSES = {
    t.TEXT_CLASSIFICATION: "AutoModelForSequenceClassification",
    t.ZERO_SHOT_CLASSIFICATION: "AutoModelForSequenceClassification",
    t.TOKEN_CLASSIFICATION: "AutoModelForTokenClassification",
    t.QUESTION_ANSWERING: "AutoModelForQuestionAnswering",
    t.FILL_MASK: "AutoModelForMaskedLM",
    t.FEATURE_EXTRACTION: "AutoModel",
}


def load_torch_model(checkpoint: Path, task: str) -> Any:
    """The checkpoint with the task's head, in eval mode. Eager attention traces into plain ONNX ops."""
    import transformers

    head = getattr(transformers, HEAD_CLASSES[task])
    try:
        model = head.from_pretrained(checkpoint, attn_implementation="eager")
    except (TypeError, ValueError):
        model = head.from_pretrained(checkpoint)
    return model.eval()
