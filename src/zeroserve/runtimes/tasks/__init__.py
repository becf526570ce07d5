"""Pre- and post-processing for each pipeline task, compatible with transformers' pipelines and the
SageMaker Hugging Face inference toolkit. numpy and tokenizers only: no torch, no transformers. May import
the rest of `runtimes` and the foundation.
"""

from __future__ import annotations

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.tasks.feature_extraction import FeatureExtraction
from zeroserve.runtimes.tasks.fill_mask import FillMask
from zeroserve.runtimes.tasks.plan import Plan, Rows, Task, TaskBase, TaskContext
from zeroserve.runtimes.tasks.question_answering import QuestionAnswering
from zeroserve.runtimes.tasks.text_classification import TextClassification
from zeroserve.runtimes.tasks.token_classification import TokenClassification
from zeroserve.runtimes.tasks.zero_shot import ZeroShotClassification

_TASKS: dict[str, type[TaskBase]] = {
    t.TEXT_CLASSIFICATION: TextClassification,
    t.TOKEN_CLASSIFICATION: TokenClassification,
    t.QUESTION_ANSWERING: QuestionAnswering,
    t.FILL_MASK: FillMask,
    t.FEATURE_EXTRACTION: FeatureExtraction,
    t.ZERO_SHOT_CLASSIFICATION: ZeroShotClassification,
}


def task_class(name: str) -> type[TaskBase]:
    return _TASKS[t.normalize_task(name)]


def make_task(name: str, context: TaskContext) -> Task:
    return task_class(name)(context)


__all__ = ["Plan", "Rows", "Task", "TaskContext", "make_task", "task_class"]
